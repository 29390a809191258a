//! `features`: what this runtime implements, in the runtime-spec's features.json shape.
//! Every entry must be true of this build on this host; nothing is claimed that fails.

use serde_json::{Value, json};

use berth_container::spec::mount_options::parse_mount_options;

/// Mount option words we interpret ourselves (everything else goes to the filesystem).
const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// The features document.
pub fn features() -> Value {
    // Keep the list honest: each word must be one the parser handles itself.
    debug_assert!(
        MOUNT_OPTIONS
            .iter()
            .all(|o| *o == "defaults" || parse_mount_options(&[o]).data.is_empty())
    );
    let last_cap = berth_container::spec::last_cap();
    let lsms = berth_container::lsm::Lsms::probe();
    let (memory_policy_modes, memory_policy_flags) =
        berth_container::spec::memory_policy::supported();
    let capabilities: Vec<&str> = berth_container::spec::CAPABILITIES
        .iter()
        .take(last_cap as usize + 1)
        .map(|(_, name)| *name)
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": berth_container::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": berth_seccomp::Arch::ALL.iter().map(|a| a.oci_name()).collect::<Vec<_>>(),
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ]
            },
            "apparmor": {"enabled": lsms.apparmor},
            "selinux": {"enabled": lsms.selinux},
            "intelRdt": {"enabled": false},
            "memoryPolicy": {"modes": memory_policy_modes, "flags": memory_policy_flags},
            "mountExtensions": {"idmap": {"enabled": false}},
            "netDevices": {"enabled": false}
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION"),
            // The runtime-spec's features have no field for process.scheduler.
            "io.github.berth.process.scheduler.policies":
                berth_container::spec::scheduler::POLICIES.join(","),
            "io.github.berth.process.scheduler.flags":
                berth_container::spec::scheduler::FLAGS.join(",")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_options_are_all_interpreted() {
        for option in MOUNT_OPTIONS {
            if *option != "defaults" {
                assert!(parse_mount_options(&[option]).data.is_empty(), "{option}");
            }
        }
    }
}
