//! The config.json that `spec` writes: a busybox-friendly container with the hardening
//! runc's default has (masked and read-only paths, a small capability set, no_new_privs,
//! a read-only root), and a variant for users without root.

use serde_json::{Value, json};

/// The default configuration. `rootless` maps the caller's uid and gid to root in a new
/// user namespace and drops what an unprivileged user cannot set up.
pub fn default_spec(rootless: Option<(u32, u32)>) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": berth_container::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    });
    if let Some((uid, gid)) = rootless {
        make_rootless(&mut spec, uid, gid);
    }
    spec
}

fn make_rootless(spec: &mut Value, uid: u32, gid: u32) {
    let linux = &mut spec["linux"];
    linux["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}
    ]);
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    // An unprivileged user owns no cgroup and cannot mount sysfs without a network
    // namespace, nor give devpts a gid it does not map.
    linux.as_object_mut().expect("object").remove("resources");
    let mounts = spec["mounts"].as_array_mut().expect("array");
    mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
    for m in mounts.iter_mut() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        }
        if m["destination"] == "/dev/pts"
            && let Some(options) = m["options"].as_array_mut()
        {
            options.retain(|o| o != "gid=5");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Spec;

    #[test]
    fn default_parses_as_a_spec() {
        let spec: Spec = serde_json::from_value(default_spec(None)).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("berth"));
        assert_eq!(spec.mounts().as_ref().unwrap().len(), 7);
    }

    #[test]
    fn rootless_maps_the_user_and_has_no_cgroup_or_network() {
        let v = default_spec(Some((1000, 1000)));
        let spec: Spec = serde_json::from_value(v.clone()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), 1000);
        assert!(linux.resources().is_none());
        let text = v.to_string();
        assert!(!text.contains("\"network\"") && !text.contains("gid=5"));
        assert!(!text.contains("/sys/fs/cgroup"));
    }
}
