//! A model of the v1 devices controller: a default policy plus exceptions
//! keyed by (kind, major, minor), updated exactly as the kernel's
//! `devcgroup_update_access` does, so v1 and v2 enforce the same thing.

use std::collections::BTreeMap;

use super::{Access, DevKind, Rule};

/// Key of an exception: kind is `Block` or `Char` (an `a` rule resets
/// instead), `None` is the `*` wildcard.
pub type Key = (DevKind, Option<u32>, Option<u32>);

/// Default policy + exceptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    /// true: everything allowed except the exceptions (kernel "blacklist").
    /// false: everything denied except the exceptions ("whitelist").
    pub default_allow: bool,
    pub exceptions: BTreeMap<Key, Access>,
}

fn matches_num(rule: Option<u32>, dev: u32) -> bool {
    rule.is_none_or(|r| r == dev)
}

/// Whether two keys can describe a common device.
fn overlaps(a: &Key, b: &Key) -> bool {
    a.0 == b.0
        && (a.1.is_none() || b.1.is_none() || a.1 == b.1)
        && (a.2.is_none() || b.2.is_none() || a.2 == b.2)
}

impl DeviceState {
    /// Everything denied, no exceptions. runc starts its emulator here, so a
    /// spec without a leading deny-all rule still gets deny-by-default.
    pub fn deny_all() -> DeviceState {
        DeviceState {
            default_allow: false,
            exceptions: BTreeMap::new(),
        }
    }

    /// Apply rules in order, starting from [`DeviceState::deny_all`]. On a
    /// rule the kernel would accept but not honour, returns its index and
    /// the reason.
    pub fn from_rules(rules: &[Rule]) -> Result<DeviceState, (usize, String)> {
        let mut s = DeviceState::deny_all();
        for (i, r) in rules.iter().enumerate() {
            s.apply(r).map_err(|e| (i, e))?;
        }
        Ok(s)
    }

    /// Apply one rule.
    ///
    /// Kernel semantics: an `a` rule resets to allow-all or deny-all. A rule
    /// of the default's polarity (deny on a deny-default cgroup) removes the
    /// given access from the exception with exactly the same key; a rule of
    /// the other polarity adds to (merges into) that exception.
    ///
    /// Because removal only touches the exact key, "deny c 1:3" after
    /// "allow c *:*" would leave 1:3 allowed. The kernel accepts that
    /// silently; we refuse it, since the resulting policy is more permissive
    /// than the rule list says.
    pub fn apply(&mut self, r: &Rule) -> Result<(), String> {
        if r.kind == DevKind::All {
            *self = DeviceState {
                default_allow: r.allow,
                exceptions: BTreeMap::new(),
            };
            return Ok(());
        }
        let key = (r.kind, r.major, r.minor);
        if r.allow != self.default_allow {
            let e = self.exceptions.entry(key).or_default();
            *e = e.union(r.access);
            return Ok(());
        }
        if let Some(e) = self.exceptions.get_mut(&key) {
            *e = e.minus(r.access);
            if e.is_empty() {
                self.exceptions.remove(&key);
            }
        }
        // Only a deny that fails to take effect weakens the policy; an allow
        // that cannot punch through a broader deny leaves it stricter,
        // which the kernel does silently and so do we.
        if r.allow {
            return Ok(());
        }
        if let Some((k, a)) = self
            .exceptions
            .iter()
            .find(|(k, a)| overlaps(k, &key) && a.intersects(r.access))
        {
            let other = Rule {
                allow: !r.allow,
                kind: k.0,
                major: k.1,
                minor: k.2,
                access: *a,
            };
            return Err(format!(
                "rule \"{r}\" cannot be enforced: the earlier rule \"{other}\" overlaps it and the device \
                 cgroup can only remove exact matches (reorder the rules or make them disjoint)"
            ));
        }
        Ok(())
    }

    /// Would the kernel allow `access` to this device? (v1's
    /// `match_exception` for deny-default, `match_exception_partial` for
    /// allow-default: one deny exception touching any requested bit denies.)
    pub fn allows(&self, kind: DevKind, major: u32, minor: u32, access: Access) -> bool {
        let hit = |k: &Key, a: &Access| {
            k.0 == kind
                && matches_num(k.1, major)
                && matches_num(k.2, minor)
                && if self.default_allow {
                    a.intersects(access)
                } else {
                    a.contains(access)
                }
        };
        let matched = self.exceptions.iter().any(|(k, a)| hit(k, a));
        if self.default_allow {
            !matched
        } else {
            matched
        }
    }

    /// Parse a v1 `devices.list`. An allow-all cgroup lists only `a *:* rwm`
    /// and hides its deny exceptions, so such a state is "allow, exceptions
    /// unknown" and [`DeviceState::transition_to`] resets it.
    pub fn parse_v1_list(text: &str) -> Result<DeviceState, String> {
        let mut s = DeviceState::deny_all();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut f = line.split_whitespace();
            let (Some(t), Some(mm), Some(acc)) = (f.next(), f.next(), f.next()) else {
                return Err(format!("malformed devices.list line {line:?}"));
            };
            let kind = match t {
                "a" => {
                    s.default_allow = true;
                    continue;
                }
                "b" => DevKind::Block,
                "c" => DevKind::Char,
                _ => return Err(format!("unknown device type in {line:?}")),
            };
            let (ma, mi) = mm
                .split_once(':')
                .ok_or_else(|| format!("malformed major:minor in {line:?}"))?;
            let num = |x: &str| -> Result<Option<u32>, String> {
                if x == "*" {
                    Ok(None)
                } else {
                    x.parse()
                        .map(Some)
                        .map_err(|_| format!("bad number {x:?} in {line:?}"))
                }
            };
            let access =
                Access::parse(acc).ok_or_else(|| format!("bad access {acc:?} in {line:?}"))?;
            let e = s.exceptions.entry((kind, num(ma)?, num(mi)?)).or_default();
            *e = e.union(access);
        }
        Ok(s)
    }

    /// The fewest v1 writes that take a cgroup from `self` to `target`
    /// without passing through a state more permissive than both: drops
    /// come before additions, and a reset is used only when the default
    /// policy changes (or when the current exceptions are unknowable).
    pub fn transition_to(&self, target: &DeviceState) -> Vec<Rule> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let old = if self.default_allow || self.default_allow != target.default_allow {
            out.push(Rule {
                allow: target.default_allow,
                kind: DevKind::All,
                major: None,
                minor: None,
                access: Access::RWM,
            });
            &empty
        } else {
            &self.exceptions
        };
        let rule = |k: &Key, access: Access, allow: bool| Rule {
            allow,
            kind: k.0,
            major: k.1,
            minor: k.2,
            access,
        };
        for (k, a) in old {
            let keep = target.exceptions.get(k).copied().unwrap_or_default();
            let dropped = a.minus(keep);
            if !dropped.is_empty() {
                out.push(rule(k, dropped, target.default_allow));
            }
        }
        for (k, a) in &target.exceptions {
            let had = old.get(k).copied().unwrap_or_default();
            let gained = a.minus(had);
            if !gained.is_empty() {
                out.push(rule(k, gained, !target.default_allow));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DENY_ALL, container_rules};
    use super::*;

    fn rule(allow: bool, kind: DevKind, major: Option<u32>, minor: Option<u32>, acc: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: Access::parse(acc).unwrap(),
        }
    }

    #[test]
    fn default_container_state() {
        let s = DeviceState::from_rules(&container_rules(&[]).unwrap()).unwrap();
        assert!(!s.default_allow);
        assert!(s.allows(DevKind::Char, 1, 3, Access::READ.union(Access::WRITE)));
        assert!(s.allows(DevKind::Char, 136, 7, Access::RWM));
        assert!(s.allows(DevKind::Block, 8, 0, Access::MKNOD));
        assert!(!s.allows(DevKind::Block, 8, 0, Access::READ));
        assert!(!s.allows(DevKind::Char, 1, 1, Access::READ)); // /dev/mem
        assert!(!s.allows(DevKind::Char, 10, 229, Access::WRITE)); // fuse
    }

    #[test]
    fn merges_and_partial_removal_like_the_kernel() {
        let mut s = DeviceState::deny_all();
        s.apply(&rule(true, DevKind::Char, Some(1), Some(3), "r"))
            .unwrap();
        s.apply(&rule(true, DevKind::Char, Some(1), Some(3), "w"))
            .unwrap();
        assert_eq!(
            s.exceptions[&(DevKind::Char, Some(1), Some(3))],
            Access::parse("rw").unwrap()
        );
        s.apply(&rule(false, DevKind::Char, Some(1), Some(3), "w"))
            .unwrap();
        assert!(s.allows(DevKind::Char, 1, 3, Access::READ));
        assert!(!s.allows(DevKind::Char, 1, 3, Access::WRITE));
        s.apply(&rule(false, DevKind::Char, Some(1), Some(3), "rwm"))
            .unwrap();
        assert!(s.exceptions.is_empty());
    }

    #[test]
    fn reset_rules() {
        let mut s = DeviceState::deny_all();
        s.apply(&rule(true, DevKind::Char, Some(1), Some(3), "r"))
            .unwrap();
        s.apply(&rule(true, DevKind::All, None, None, "rwm"))
            .unwrap();
        assert!(s.default_allow && s.exceptions.is_empty());
        s.apply(&rule(false, DevKind::Block, Some(8), None, "w"))
            .unwrap();
        assert!(!s.allows(DevKind::Block, 8, 1, Access::READ.union(Access::WRITE)));
        assert!(s.allows(DevKind::Block, 8, 1, Access::READ));
        assert!(s.allows(DevKind::Char, 8, 1, Access::WRITE));
        s.apply(&DENY_ALL).unwrap();
        assert_eq!(s, DeviceState::deny_all());
    }

    #[test]
    fn refuses_holes_the_kernel_would_ignore() {
        let mut s = DeviceState::deny_all();
        s.apply(&rule(true, DevKind::Char, None, None, "rwm"))
            .unwrap();
        let err = s
            .apply(&rule(false, DevKind::Char, Some(1), Some(3), "w"))
            .unwrap_err();
        assert!(err.contains("allow c *:* rwm"), "{err}");
        // Disjoint access is fine.
        let mut s = DeviceState::deny_all();
        s.apply(&rule(true, DevKind::Char, None, None, "m"))
            .unwrap();
        s.apply(&rule(false, DevKind::Char, Some(1), Some(3), "r"))
            .unwrap();
        // An allow that cannot carve into a broader deny is accepted (the
        // result is stricter than asked, as with the kernel).
        let mut s = DeviceState::deny_all();
        s.apply(&rule(true, DevKind::All, None, None, "rwm"))
            .unwrap();
        s.apply(&rule(false, DevKind::Char, Some(1), None, "rwm"))
            .unwrap();
        s.apply(&rule(true, DevKind::Char, Some(1), Some(3), "rwm"))
            .unwrap();
        assert!(!s.allows(DevKind::Char, 1, 3, Access::READ));
        // A rule list with the problem reports the index.
        let rules = [
            DENY_ALL,
            rule(true, DevKind::Block, Some(8), None, "r"),
            rule(false, DevKind::Block, Some(8), Some(0), "r"),
        ];
        assert_eq!(DeviceState::from_rules(&rules).unwrap_err().0, 2);
    }

    #[test]
    fn parse_devices_list() {
        let s = DeviceState::parse_v1_list("a *:* rwm\n").unwrap();
        assert!(s.default_allow);
        let s = DeviceState::parse_v1_list("c 1:3 rwm\nc *:* m\nb 8:* r\n").unwrap();
        assert!(!s.default_allow);
        assert_eq!(s.exceptions.len(), 3);
        assert!(s.allows(DevKind::Block, 8, 16, Access::READ));
        assert_eq!(
            DeviceState::parse_v1_list("").unwrap(),
            DeviceState::deny_all()
        );
        assert!(DeviceState::parse_v1_list("x 1:3 rwm").is_err());
        assert!(DeviceState::parse_v1_list("c 1:3").is_err());
    }

    #[test]
    fn transitions() {
        let target = DeviceState::from_rules(&container_rules(&[]).unwrap()).unwrap();
        // From the root's allow-all: reset, then every exception.
        let from_root = DeviceState::parse_v1_list("a *:* rwm\n").unwrap();
        let t = from_root.transition_to(&target);
        assert_eq!(t[0].v1_line(), "a");
        assert!(!t[0].allow);
        assert_eq!(t.len(), 1 + target.exceptions.len());
        assert!(t[1..].iter().all(|r| r.allow));
        // Already there: nothing to write.
        assert!(target.transition_to(&target).is_empty());
        // Narrowing one exception and adding another: drop first, then add.
        let mut next = target.clone();
        next.apply(&rule(false, DevKind::Char, Some(1), Some(3), "w"))
            .unwrap();
        next.apply(&rule(true, DevKind::Block, Some(8), Some(0), "r"))
            .unwrap();
        let t = target.transition_to(&next);
        let lines: Vec<String> = t.iter().map(|r| r.to_string()).collect();
        assert_eq!(lines, ["deny c 1:3 w", "allow b 8:0 r"]);
        // Replaying a transition on the model reaches the target.
        let mut s = target.clone();
        for r in &t {
            s.apply(r).unwrap();
        }
        assert_eq!(s, next);
    }
}
