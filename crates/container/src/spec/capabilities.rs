//! Capability names to the kernel's numbers, and the five sets of a process as bitmasks.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};
use serde::{Deserialize, Serialize};

/// Every capability at its kernel number (the index: linux/capability.h) with its name: the
/// one table of the workspace (`features` lists names from it, planning takes numbers).
pub const CAPABILITIES: [(Capability, &str); 41] = [
    (Capability::Chown, "CAP_CHOWN"),
    (Capability::DacOverride, "CAP_DAC_OVERRIDE"),
    (Capability::DacReadSearch, "CAP_DAC_READ_SEARCH"),
    (Capability::Fowner, "CAP_FOWNER"),
    (Capability::Fsetid, "CAP_FSETID"),
    (Capability::Kill, "CAP_KILL"),
    (Capability::Setgid, "CAP_SETGID"),
    (Capability::Setuid, "CAP_SETUID"),
    (Capability::Setpcap, "CAP_SETPCAP"),
    (Capability::LinuxImmutable, "CAP_LINUX_IMMUTABLE"),
    (Capability::NetBindService, "CAP_NET_BIND_SERVICE"),
    (Capability::NetBroadcast, "CAP_NET_BROADCAST"),
    (Capability::NetAdmin, "CAP_NET_ADMIN"),
    (Capability::NetRaw, "CAP_NET_RAW"),
    (Capability::IpcLock, "CAP_IPC_LOCK"),
    (Capability::IpcOwner, "CAP_IPC_OWNER"),
    (Capability::SysModule, "CAP_SYS_MODULE"),
    (Capability::SysRawio, "CAP_SYS_RAWIO"),
    (Capability::SysChroot, "CAP_SYS_CHROOT"),
    (Capability::SysPtrace, "CAP_SYS_PTRACE"),
    (Capability::SysPacct, "CAP_SYS_PACCT"),
    (Capability::SysAdmin, "CAP_SYS_ADMIN"),
    (Capability::SysBoot, "CAP_SYS_BOOT"),
    (Capability::SysNice, "CAP_SYS_NICE"),
    (Capability::SysResource, "CAP_SYS_RESOURCE"),
    (Capability::SysTime, "CAP_SYS_TIME"),
    (Capability::SysTtyConfig, "CAP_SYS_TTY_CONFIG"),
    (Capability::Mknod, "CAP_MKNOD"),
    (Capability::Lease, "CAP_LEASE"),
    (Capability::AuditWrite, "CAP_AUDIT_WRITE"),
    (Capability::AuditControl, "CAP_AUDIT_CONTROL"),
    (Capability::Setfcap, "CAP_SETFCAP"),
    (Capability::MacOverride, "CAP_MAC_OVERRIDE"),
    (Capability::MacAdmin, "CAP_MAC_ADMIN"),
    (Capability::Syslog, "CAP_SYSLOG"),
    (Capability::WakeAlarm, "CAP_WAKE_ALARM"),
    (Capability::BlockSuspend, "CAP_BLOCK_SUSPEND"),
    (Capability::AuditRead, "CAP_AUDIT_READ"),
    (Capability::Perfmon, "CAP_PERFMON"),
    (Capability::Bpf, "CAP_BPF"),
    (Capability::CheckpointRestore, "CAP_CHECKPOINT_RESTORE"),
];

/// The kernel's number for a capability: its index in [`CAPABILITIES`]. (A capability missing
/// from the table would get `u32::MAX`, above every kernel's `cap_last_cap`, and be dropped
/// like the capabilities this kernel does not know.)
pub fn capability_number(cap: Capability) -> u32 {
    CAPABILITIES
        .iter()
        .position(|(c, _)| *c == cap)
        .map_or(u32::MAX, |n| n as u32)
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
    fn names_parse_to_the_capability_of_their_row() {
        for (number, (cap, name)) in CAPABILITIES.iter().enumerate() {
            assert_eq!(parse_capability(name), Some(*cap), "{name}");
            assert_eq!(capability_number(*cap) as usize, number, "{name}");
        }
    }

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
