//! Device access control.
//!
//! Both backends share one model, the semantics of the v1 devices
//! controller (as runc does): rules are applied in order to a state made of
//! a default policy plus exceptions ([`emulator::DeviceState`]). On v1 the
//! state is reached by writing the minimal transition to devices.allow /
//! devices.deny; on v2 it is compiled to a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program ([`ebpf`]).
//!
//! What a container gets (runc semantics): deny everything, then the
//! spec's `linux.resources.devices` rules in order, then runc's default
//! allow list ([`default_allowed`]) appended, so a spec cannot take away
//! /dev/null and friends.

pub mod ebpf;
pub mod emulator;
#[cfg(test)]
pub(crate) mod interp;
pub(crate) mod v1;
pub mod v2;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::ResourceError;

/// Device kind as the device cgroup sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DevKind {
    /// `a`: a rule of this kind resets the whole state.
    All,
    Block,
    Char,
}

impl DevKind {
    pub fn as_char(self) -> char {
        match self {
            DevKind::All => 'a',
            DevKind::Block => 'b',
            DevKind::Char => 'c',
        }
    }
}

/// Access bits, valued as the kernel's `BPF_DEVCG_ACC_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Access(pub u8);

impl Access {
    pub const MKNOD: Access = Access(1);
    pub const READ: Access = Access(2);
    pub const WRITE: Access = Access(4);
    pub const RWM: Access = Access(7);

    /// Parse `rwm` letters; `None` for an empty string or another letter.
    pub fn parse(s: &str) -> Option<Access> {
        let mut a = 0u8;
        for c in s.chars() {
            a |= match c {
                'r' => Access::READ.0,
                'w' => Access::WRITE.0,
                'm' => Access::MKNOD.0,
                _ => return None,
            };
        }
        (a != 0).then_some(Access(a))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn union(self, o: Access) -> Access {
        Access(self.0 | o.0)
    }
    pub fn minus(self, o: Access) -> Access {
        Access(self.0 & !o.0)
    }
    pub fn intersects(self, o: Access) -> bool {
        self.0 & o.0 != 0
    }
    pub fn contains(self, o: Access) -> bool {
        self.0 & o.0 == o.0
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (bit, c) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.contains(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One device rule. `None` major/minor is the wildcard `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: DevKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

fn fmt_num(n: Option<u32>) -> String {
    n.map_or_else(|| "*".to_string(), |v| v.to_string())
}

impl Rule {
    /// The line for devices.allow / devices.deny (`c 1:3 rwm`; `a` alone
    /// for a reset, which the kernel treats as such whatever follows).
    pub fn v1_line(&self) -> String {
        match self.kind {
            DevKind::All => "a".to_string(),
            k => format!(
                "{} {}:{} {}",
                k.as_char(),
                fmt_num(self.major),
                fmt_num(self.minor),
                self.access
            ),
        }
    }
}

const fn allow(kind: DevKind, major: Option<u32>, minor: Option<u32>, access: Access) -> Rule {
    Rule {
        allow: true,
        kind,
        major,
        minor,
        access,
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            if self.allow { "allow" } else { "deny" },
            self.v1_line()
        )
    }
}

/// The deny-everything rule every container starts from.
pub const DENY_ALL: Rule = Rule {
    allow: false,
    kind: DevKind::All,
    major: None,
    minor: None,
    access: Access::RWM,
};

/// runc's `AllowedDevices`, appended after the spec's rules: mknod of any
/// char/block device, /dev/null, random, full, tty, zero, urandom, every
/// /dev/pts/N, /dev/ptmx, and /dev/net/tun (kept by runc for backward
/// compatibility after a removal broke users).
pub fn default_allowed() -> [Rule; 11] {
    use DevKind::{Block, Char};
    let (m, rwm) = (Access::MKNOD, Access::RWM);
    [
        allow(Char, None, None, m),
        allow(Block, None, None, m),
        allow(Char, Some(1), Some(3), rwm),
        allow(Char, Some(1), Some(8), rwm),
        allow(Char, Some(1), Some(7), rwm),
        allow(Char, Some(5), Some(0), rwm),
        allow(Char, Some(1), Some(5), rwm),
        allow(Char, Some(1), Some(9), rwm),
        allow(Char, Some(136), None, rwm),
        allow(Char, Some(5), Some(2), rwm),
        allow(Char, Some(10), Some(200), rwm),
    ]
}

/// Largest major / minor a dev_t can carry (12 and 20 bits).
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// Convert and validate one OCI rule; `index` names it in errors.
pub fn rule_from_oci(index: usize, d: &LinuxDeviceCgroup) -> Result<Rule, Vec<ResourceError>> {
    let field = |f: &str| format!("linux.resources.devices[{index}].{f}");
    let mut errs = Vec::new();
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => DevKind::All,
        Some(LinuxDeviceType::B) => DevKind::Block,
        // 'u' (unbuffered char) is a char device to the kernel.
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DevKind::Char,
        Some(LinuxDeviceType::P) => {
            errs.push(ResourceError::new(
                field("type"),
                format!(
                    "{} (\"p\") is not a device cgroup type: FIFOs are not governed by it (use a, b or c)",
                    field("type")
                ),
            ));
            DevKind::All
        }
    };
    let mut num = |name: &str, v: Option<i64>, max: i64| -> Option<u32> {
        match v {
            None | Some(-1) => None,
            Some(n) if (0..=max).contains(&n) => Some(n as u32),
            Some(n) => {
                errs.push(ResourceError::new(
                    field(name),
                    format!(
                        "{} ({n}) is out of range (0..={max}, or -1 for any)",
                        field(name)
                    ),
                ));
                None
            }
        }
    };
    let major = num("major", d.major(), MAX_MAJOR);
    let minor = num("minor", d.minor(), MAX_MINOR);
    let access = match d.access().as_deref() {
        Some(s) => match Access::parse(s) {
            Some(a) => a,
            None => {
                errs.push(ResourceError::new(
                    field("access"),
                    format!(
                        "{} ({s:?}) must be a non-empty combination of r, w and m",
                        field("access")
                    ),
                ));
                Access::RWM
            }
        },
        None => {
            // runc refuses a missing access too: guessing "rwm" for a deny
            // rule or "" for an allow rule would both surprise someone.
            errs.push(ResourceError::new(
                field("access"),
                format!(
                    "{} is missing (use a combination of r, w and m)",
                    field("access")
                ),
            ));
            Access::RWM
        }
    };
    if errs.is_empty() {
        Ok(Rule {
            allow: d.allow(),
            kind,
            major,
            minor,
            access,
        })
    } else {
        Err(errs)
    }
}

/// The complete rule list for a container: deny all, the spec's rules, the
/// default allow list.
pub fn container_rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, Vec<ResourceError>> {
    let mut rules = Vec::with_capacity(spec.len() + 12);
    rules.push(DENY_ALL);
    let mut errs = Vec::new();
    for (i, d) in spec.iter().enumerate() {
        match rule_from_oci(i, d) {
            Ok(r) => rules.push(r),
            Err(e) => errs.extend(e),
        }
    }
    rules.extend(default_allowed());
    if errs.is_empty() {
        Ok(rules)
    } else {
        Err(errs)
    }
}

/// The device policy a container gets: [`container_rules`] applied in order. A rule the
/// device cgroup cannot enforce is reported on its own `linux.resources.devices[i]` (the
/// rule list starts with the deny-all the spec does not hold).
pub fn container_state(
    spec: &[LinuxDeviceCgroup],
) -> Result<emulator::DeviceState, Vec<ResourceError>> {
    let rules = container_rules(spec)?;
    emulator::DeviceState::from_rules(&rules).map_err(|(idx, why)| {
        let field = if (1..=spec.len()).contains(&idx) {
            format!("linux.resources.devices[{}]", idx - 1)
        } else {
            "linux.resources.devices".to_string()
        };
        vec![ResourceError::new(field.clone(), format!("{field}: {why}"))]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn converts_oci_rules() {
        let r = rule_from_oci(
            0,
            &oci(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#),
        )
        .unwrap();
        assert_eq!(r.v1_line(), "c 1:3 rw");
        let r = rule_from_oci(0, &oci(r#"{"allow":false,"access":"rwm"}"#)).unwrap();
        assert_eq!(r.kind, DevKind::All);
        assert_eq!(r.v1_line(), "a");
        let r = rule_from_oci(
            0,
            &oci(r#"{"allow":true,"type":"u","major":-1,"access":"m"}"#),
        )
        .unwrap();
        assert_eq!(r.v1_line(), "c *:* m");
    }

    #[test]
    fn rejects_bad_rules_naming_the_field() {
        let e = rule_from_oci(2, &oci(r#"{"allow":true,"type":"p","access":"r"}"#)).unwrap_err();
        assert_eq!(e[0].field, "linux.resources.devices[2].type");
        let e = rule_from_oci(
            0,
            &oci(r#"{"allow":true,"type":"c","major":5000,"minor":-7,"access":"r"}"#),
        )
        .unwrap_err();
        assert_eq!(
            e.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            [
                "linux.resources.devices[0].major",
                "linux.resources.devices[0].minor"
            ]
        );
        let e = rule_from_oci(0, &oci(r#"{"allow":true,"type":"c","access":"rx"}"#)).unwrap_err();
        assert!(e[0].message.contains("\"rx\""));
        let e = rule_from_oci(0, &oci(r#"{"allow":true,"type":"c","access":""}"#)).unwrap_err();
        assert_eq!(e[0].field, "linux.resources.devices[0].access");
        let e = rule_from_oci(0, &oci(r#"{"allow":true,"type":"c"}"#)).unwrap_err();
        assert!(e[0].message.contains("missing"));
    }

    #[test]
    fn container_rules_wrap_the_spec() {
        let rules = container_rules(&[oci(
            r#"{"allow":true,"type":"b","major":8,"minor":0,"access":"r"}"#,
        )])
        .unwrap();
        assert_eq!(rules[0], DENY_ALL);
        assert_eq!(rules[1].v1_line(), "b 8:0 r");
        let lines: Vec<String> = rules[2..].iter().map(Rule::v1_line).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm"
            ]
        );
    }
}
