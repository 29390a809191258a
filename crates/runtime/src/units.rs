//! Values as runc's command line writes them: sizes (`512m`, `1g`, `-1`) and durations
//! (`5s`, `250ms`, `1m`).

use std::time::Duration;

/// Parses a byte size with an optional binary suffix (k, m, g, t; with or without `b`),
/// or `-1` for unlimited.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, multiplier) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1i64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        Some((i, 't')) => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    let value: i64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("invalid size {text:?} (expected e.g. 512m, 1g or -1)"))?;
    if value < 0 {
        return Err(format!("invalid size {text:?}: negative"));
    }
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

/// Parses a duration like Go's: `5s`, `250ms`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let invalid = || format!("invalid duration {text:?} (expected e.g. 5s or 250ms)");
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    if value.is_nan() || value <= 0.0 {
        return Err(invalid());
    }
    let seconds = match unit {
        "ns" => value / 1e9,
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(invalid()),
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("2kb").unwrap(), 2048);
        assert_eq!(parse_size("-1").unwrap(), -1);
        for bad in ["", "m", "-5", "12q", "99999999999999t"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        for bad in ["", "0s", "-1s", "5x", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
