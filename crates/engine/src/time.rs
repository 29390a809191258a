//! Times as the records keep them: RFC 3339 in UTC with nanoseconds (docker's
//! `RFC3339Nano`, what `inspect` shows), and back to a `SystemTime` for ages and filters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, as RFC 3339 UTC with nanoseconds.
pub fn now() -> String {
    berth_container::state::rfc3339_now()
}

/// A `SystemTime` as RFC 3339 UTC with nanoseconds.
pub fn format(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    berth_container::state::rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn parse(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        let digits = &frac[..end.min(9)];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &frac[end..];
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    if secs < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

/// How long ago `text` was (zero for the future or an unreadable time).
pub fn age(text: &str) -> Duration {
    parse(text)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A `--since`/`--until` value: RFC 3339, a Unix time (`1700000000[.5]`), or a duration
/// before now (`10m`).
pub fn parse_point(text: &str) -> Option<SystemTime> {
    if let Some(t) = parse(text) {
        return Some(t);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Some(UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)));
    }
    let ago = crate::units::parse_duration(text)?;
    SystemTime::now().checked_sub(ago)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_our_format() {
        let t = UNIX_EPOCH + Duration::new(1_798_761_599, 123_456_789);
        assert_eq!(parse(&format(t)), Some(t));
        assert_eq!(
            parse("2026-12-31T23:59:59+01:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_798_761_599 - 3600))
        );
        assert_eq!(parse("yesterday"), None);
    }
}
