//! Planning tests: a config goes in, a plan or an error naming the field comes out.

use super::*;
use serde_json::json;

struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        Bundle { dir }
    }

    fn plan(&self, config: serde_json::Value) -> Result<Plan> {
        let spec: Spec = serde_json::from_value(config).unwrap();
        plan("test-1", self.dir.path(), &spec)
    }
}

fn base() -> serde_json::Value {
    json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs", "readonly": true},
        "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"]},
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]}
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network"}]}
    })
}

fn err(result: Result<Plan>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn plans_a_minimal_container() {
    let b = Bundle::new();
    let p = b.plan(base()).unwrap();
    assert_eq!(p.rootfs, b.dir.path().join("rootfs"));
    assert!(p.root_readonly);
    assert_eq!(p.hostname.as_deref(), Some("box"));
    assert_eq!(p.mounts.len(), 2);
    assert_eq!(p.mounts[0].destination, Path::new("proc"));
    assert!(p.setup_dev);
    assert_eq!(
        p.namespaces.new_flags(),
        (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWNET) as u64
    );
    assert_eq!(p.devices.len(), 6);
}

#[test]
fn missing_rootfs_is_named() {
    let b = Bundle::new();
    let mut c = base();
    c["root"]["path"] = json!("nope");
    let e = err(b.plan(c));
    assert!(e.contains("root.path") && e.contains("nope"), "{e}");
}

#[test]
fn mount_destination_escaping_the_root_is_refused() {
    let b = Bundle::new();
    let mut c = base();
    c["mounts"][1]["destination"] = json!("/dev/../../etc");
    let e = err(b.plan(c));
    assert!(e.contains("mounts[1].destination"), "{e}");
    assert!(e.contains("escapes"), "{e}");
}

#[test]
fn bind_source_must_exist_and_is_relative_to_the_bundle() {
    let b = Bundle::new();
    let mut c = base();
    c["mounts"] = json!([{"destination": "/data", "type": "bind", "source": "missing", "options": ["rbind"]}]);
    let e = err(b.plan(c.clone()));
    assert!(e.contains("mounts[0].source"), "{e}");
    std::fs::create_dir(b.dir.path().join("missing")).unwrap();
    let p = b.plan(c).unwrap();
    assert_eq!(
        p.mounts[0].kind,
        MountKind::Bind {
            source: b.dir.path().join("missing")
        }
    );
}

#[test]
fn duplicate_namespace_is_refused() {
    let b = Bundle::new();
    let mut c = base();
    c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "pid", "path": "/proc/1/ns/pid"}]);
    let e = err(b.plan(c));
    assert!(e.contains("linux.namespaces[1].type"), "{e}");
}

#[test]
fn joined_namespaces_are_ordered_user_first() {
    let b = Bundle::new();
    let mut c = base();
    c["linux"]["namespaces"] = json!([
        {"type": "network", "path": "/proc/1/ns/net"},
        {"type": "user", "path": "/proc/1/ns/user"},
        {"type": "uts"}
    ]);
    let p = b.plan(c).unwrap();
    assert_eq!(p.namespaces.join[0].0, NamespaceKind::User);
    assert_eq!(p.namespaces.join[1].0, NamespaceKind::Network);
}

#[test]
fn hostname_needs_uts_namespace() {
    let b = Bundle::new();
    let mut c = base();
    c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
    let e = err(b.plan(c));
    assert!(e.contains("hostname"), "{e}");
}

#[test]
fn new_user_namespace_needs_mappings() {
    let b = Bundle::new();
    let mut c = base();
    c["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "mount"}, {"type": "uts"}]);
    let e = err(b.plan(c.clone()));
    assert!(e.contains("uidMappings"), "{e}");
    c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let p = b.plan(c).unwrap();
    assert_eq!(p.uid_mappings[0].host_id, 100000);
}

#[test]
fn sysctl_outside_container_namespaces_is_refused() {
    let b = Bundle::new();
    let mut c = base();
    c["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    let e = err(b.plan(c.clone()));
    assert!(e.contains("linux.sysctl.vm.swappiness"), "{e}");
    c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"});
    let e = err(b.plan(c.clone()));
    assert!(e.contains("kernel.shmmax") && e.contains("ipc"), "{e}");
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "ipc"}));
    let p = b.plan(c).unwrap();
    assert_eq!(p.sysctls[1].path, "net/ipv4/ip_forward");
}

#[test]
fn empty_args_and_relative_cwd_are_refused() {
    let b = Bundle::new();
    let mut c = base();
    c["process"]["args"] = json!([]);
    assert!(err(b.plan(c)).contains("process.args"));
    let mut c = base();
    c["process"]["cwd"] = json!("tmp");
    assert!(err(b.plan(c)).contains("process.cwd"));
}

#[test]
fn rlimits_are_checked() {
    let b = Bundle::new();
    let mut c = base();
    c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]);
    let e = err(b.plan(c.clone()));
    assert!(
        e.contains("process.rlimits[0]") && e.contains("RLIMIT_NOFILE"),
        "{e}"
    );
    c["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10}
    ]);
    let e = err(b.plan(c));
    assert!(e.contains("process.rlimits[1].type"), "{e}");
}

#[test]
fn devices_override_defaults_and_are_validated() {
    let b = Bundle::new();
    let mut c = base();
    c["linux"]["devices"] =
        json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}]);
    let p = b.plan(c.clone()).unwrap();
    let null = p
        .devices
        .iter()
        .find(|d| d.path == Path::new("dev/null"))
        .unwrap();
    assert_eq!(null.mode, 0o600);
    assert_eq!(p.devices.len(), 6);
    c["linux"]["devices"] = json!([{"path": "dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    assert!(err(b.plan(c)).contains("linux.devices[0].path"));
}

#[test]
fn hooks_need_absolute_paths() {
    let b = Bundle::new();
    let mut c = base();
    c["hooks"] = json!({"poststop": [{"path": "true"}]});
    assert!(err(b.plan(c)).contains("hooks.poststop[0].path"));
}

#[test]
fn bind_mounted_dev_disables_device_setup() {
    let b = Bundle::new();
    let mut c = base();
    c["mounts"] =
        json!([{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}]);
    assert!(!b.plan(c).unwrap().setup_dev);
}

#[test]
fn invalid_id_is_refused_before_anything_else() {
    let b = Bundle::new();
    let spec: Spec = serde_json::from_value(base()).unwrap();
    let e = plan("../x", b.dir.path(), &spec).unwrap_err().to_string();
    assert!(e.contains("invalid container id"), "{e}");
}

#[test]
fn real_docker_and_podman_configs_plan() {
    // The bundles these were written for do not exist here; only the rootfs path is swapped.
    for file in ["docker-config.json", "podman-config.json"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file);
        let data = std::fs::read(&path).unwrap();
        let mut spec: Spec = parse(&path, &data).unwrap();
        let b = Bundle::new();
        let mut root = spec.root().clone().unwrap();
        root.set_path(PathBuf::from("rootfs"));
        spec.set_root(Some(root));
        // Bind sources of these configs point into the original hosts' /var/lib.
        let mounts: Vec<_> = spec
            .mounts()
            .clone()
            .unwrap()
            .into_iter()
            .filter(|m| {
                !m.source()
                    .as_ref()
                    .is_some_and(|s| s.starts_with("/var/lib"))
            })
            .collect();
        spec.set_mounts(Some(mounts));
        let p = plan("real", b.dir.path(), &spec).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(p.namespaces.is_new(NamespaceKind::Pid), "{file}");
        assert!(!p.masked_paths.is_empty(), "{file}");
    }
}

// Found by fuzzing crates/container/fuzz: NUL bytes used to pass planning and make the init
// fail (or panic) late.
#[test]
fn nul_bytes_in_mount_fields_are_refused() {
    let b = Bundle::new();
    for mount in [
        json!({"destination": "/x", "type": "tmp\u{0}fs"}),
        json!({"destination": "/x", "type": "tmpfs", "source": "tm\u{0}p"}),
        json!({"destination": "/x", "type": "tmpfs", "options": ["size=1\u{0}"]}),
        json!({"destination": "/x\u{0}y", "type": "tmpfs"}),
    ] {
        let mut c = base();
        c["mounts"] = json!([mount]);
        let e = err(b.plan(c));
        assert!(e.contains("mounts[0]") && e.contains("NUL"), "{e}");
    }
}

#[test]
fn nul_bytes_in_paths_and_labels_are_refused() {
    let b = Bundle::new();
    let mut c = base();
    c["linux"]["maskedPaths"] = json!(["/p\u{0}roc/kcore"]);
    assert!(err(b.plan(c)).contains("linux.maskedPaths[0]"));
    let mut c = base();
    c["linux"]["devices"] = json!([{"path": "/dev/f\u{0}oo", "type": "c", "major": 1, "minor": 3}]);
    assert!(err(b.plan(c)).contains("linux.devices[0].path"));
    let mut c = base();
    c["linux"]["mountLabel"] = json!("a\u{0}b");
    assert!(err(b.plan(c)).contains("linux.mountLabel"));
    let mut c = base();
    c["hostname"] = json!("h\u{0}");
    assert!(err(b.plan(c)).contains("hostname"));
}

/// JSON documents (state.json, the hooks' state, which the init writes too) name the bundle:
/// one that is not UTF-8 fails here, not as an abort of the forked init.
#[test]
fn a_bundle_path_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let parent = tempfile::tempdir().unwrap();
    let bundle = parent
        .path()
        .join(std::ffi::OsStr::from_bytes(b"bundle-\xff"));
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let spec: Spec = serde_json::from_value(base()).unwrap();
    let e = err(plan("test-1", &bundle, &spec));
    assert!(e.contains("bundle") && e.contains("UTF-8"), "{e}");
}
