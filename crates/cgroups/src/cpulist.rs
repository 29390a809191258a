//! The kernel's list format for CPUs and memory nodes: `0-3,5,7-8`.

/// A parsed list, kept as sorted, merged inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdList {
    ranges: Vec<(u32, u32)>,
}

/// Anything above this is not a CPU or node number on any real machine; it
/// keeps a typo like `0-4294967295` from meaning "every CPU".
const MAX_ID: u32 = 1 << 20;

impl IdList {
    /// Parse a list. Whitespace around the whole value (the trailing newline
    /// of a sysfs file) is ignored; an empty value is an empty list.
    pub fn parse(s: &str) -> Result<IdList, String> {
        let s = s.trim();
        let mut ranges = Vec::new();
        if s.is_empty() {
            return Ok(IdList { ranges });
        }
        for part in s.split(',') {
            let num = |x: &str| -> Result<u32, String> {
                let v: u32 = x.parse().map_err(|_| format!("{x:?} is not a number"))?;
                if v > MAX_ID {
                    return Err(format!("{v} is out of range"));
                }
                Ok(v)
            };
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let v = num(part)?;
                    (v, v)
                }
            };
            if a > b {
                return Err(format!("range {part:?} is reversed"));
            }
            ranges.push((a, b));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Ok(IdList { ranges: merged })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, id: u32) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= id && id <= b)
    }

    /// The ids of `self` that are not in `other`, as a list string (for
    /// error messages), or `None` when `self` is a subset.
    pub fn not_in(&self, other: &IdList) -> Option<String> {
        let mut missing = Vec::new();
        for &(a, b) in &self.ranges {
            let mut start = None;
            for id in a..=b {
                match (other.contains(id), start) {
                    (false, None) => start = Some(id),
                    (true, Some(s)) => {
                        missing.push((s, id - 1));
                        start = None;
                    }
                    _ => {}
                }
                // Ranges beyond any real machine would make this loop long;
                // stop once we are past everything `other` has.
                if start.is_some() && id > other.max().unwrap_or(0) {
                    missing.push((start.unwrap_or(id), b));
                    start = None;
                    break;
                }
            }
            if let Some(s) = start {
                missing.push((s, b));
            }
        }
        if missing.is_empty() {
            None
        } else {
            Some(IdList { ranges: missing }.to_string())
        }
    }

    /// Every id of the list, in order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The highest id of the list.
    pub fn max(&self) -> Option<u32> {
        self.ranges.last().map(|r| r.1)
    }
}

impl std::fmt::Display for IdList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let l = IdList::parse("0-3,5,4,7-8\n").unwrap();
        assert_eq!(l.to_string(), "0-5,7-8");
        assert!(l.contains(4) && !l.contains(6));
        assert!(IdList::parse("").unwrap().is_empty());
        for bad in ["3-1", "a", "1,,2", "-1", "0-99999999"] {
            assert!(IdList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subset_check() {
        let host = IdList::parse("0-1").unwrap();
        assert_eq!(IdList::parse("0,1").unwrap().not_in(&host), None);
        assert_eq!(
            IdList::parse("1-3").unwrap().not_in(&host).as_deref(),
            Some("2-3")
        );
        assert_eq!(
            IdList::parse("5,0").unwrap().not_in(&host).as_deref(),
            Some("5")
        );
        assert_eq!(
            IdList::parse("0-1000000").unwrap().not_in(&host).as_deref(),
            Some("2-1000000")
        );
    }
}
