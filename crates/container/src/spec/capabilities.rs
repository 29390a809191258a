//! Capability names to the kernel's numbers, and the five sets of a process as bitmasks.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};
use serde::{Deserialize, Serialize};

/// The kernel's number for a capability (linux/capability.h).
pub fn capability_number(cap: Capability) -> u32 {
    use Capability::*;
    match cap {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
    }
}

/// The five capability sets of a process as bitmasks (bit n = capability n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

fn mask(set: &Option<Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .fold(0, |acc, cap| acc | 1u64 << capability_number(*cap))
}

impl CapabilitySets {
    /// Converts the spec's sets. Capabilities this kernel does not know (above `last_cap`)
    /// are dropped, as runc does, so one config works across kernel versions.
    pub fn from_spec(caps: &LinuxCapabilities, last_cap: u32) -> Self {
        let known = if last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        };
        CapabilitySets {
            bounding: mask(caps.bounding()) & known,
            effective: mask(caps.effective()) & known,
            permitted: mask(caps.permitted()) & known,
            inheritable: mask(caps.inheritable()) & known,
            ambient: mask(caps.ambient()) & known,
        }
    }
}

/// The highest capability number this kernel knows.
pub fn last_cap() -> u32 {
    static LAST_CAP: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST_CAP.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// Parses a capability name as runc's `exec --cap` takes it (`CAP_NET_ADMIN` or `NET_ADMIN`).
pub fn parse_capability(name: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn numbers_match_the_kernel_header() {
        assert_eq!(capability_number(Capability::Chown), 0);
        assert_eq!(capability_number(Capability::SysAdmin), 21);
        assert_eq!(capability_number(Capability::AuditWrite), 29);
        assert_eq!(capability_number(Capability::CheckpointRestore), 40);
    }

    #[test]
    fn sets_become_masks_and_unknown_caps_are_dropped() {
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(Some(HashSet::from([
            Capability::Kill,
            Capability::AuditWrite,
            Capability::Bpf,
        ])));
        caps.set_effective(Some(HashSet::from([Capability::Kill])));
        caps.set_permitted(None);
        caps.set_inheritable(None);
        caps.set_ambient(None);
        let sets = CapabilitySets::from_spec(&caps, 38);
        assert_eq!(sets.bounding, 1 << 5 | 1 << 29);
        assert_eq!(sets.effective, 1 << 5);
        assert_eq!(sets.permitted, 0);
    }

    #[test]
    fn parses_names_with_and_without_prefix() {
        assert_eq!(
            parse_capability("CAP_NET_ADMIN"),
            Some(Capability::NetAdmin)
        );
        assert_eq!(parse_capability("net_admin"), Some(Capability::NetAdmin));
        assert_eq!(parse_capability("CAP_FLY"), None);
    }
}
