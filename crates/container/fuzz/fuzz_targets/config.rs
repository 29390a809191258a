//! Arbitrary bytes -> config.json parser -> planner. Must never panic.
//!
//! Beyond "no panic", every plan that comes out is checked for what the init relies on
//! without checking again (its `expect`s and its path handling): strings it turns into C
//! strings have no NUL byte, paths inside the container are relative and free of `..`,
//! device paths have a file name, and mount destinations are never the root itself.
#![no_main]

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use berth_container::spec::{MountKind, Plan, parse, plan};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;

/// A bundle with an empty `rootfs/`, made once (one directory shared by every fuzzing
/// process: planning only reads it).
fn bundle() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("berth-fuzz-bundle");
        std::fs::create_dir_all(dir.join("rootfs")).expect("make the fuzz bundle");
        dir
    })
}

fn no_nul(what: &str, bytes: &[u8]) {
    assert!(!bytes.contains(&0), "{what} has a NUL byte: {bytes:?}");
}

fn inside(what: &str, path: &Path) {
    no_nul(what, path.as_os_str().as_bytes());
    for c in path.components() {
        assert!(
            matches!(c, Component::Normal(_)),
            "{what} {path:?} is not a clean relative path"
        );
    }
}

fn check(plan: &Plan) {
    no_nul("rootfs", plan.rootfs.as_os_str().as_bytes());
    // Appended to tmpfs/mqueue mount data (context=...) when SELinux is on.
    if let Some(label) = &plan.mount_label {
        no_nul("mountLabel", label.as_bytes());
    }
    for m in &plan.mounts {
        inside("mount destination", &m.destination);
        assert!(!m.destination.as_os_str().is_empty(), "a mount on the root");
        no_nul("mount data", m.options.data_string().as_bytes());
        match &m.kind {
            MountKind::Bind { source } => {
                assert!(source.is_absolute(), "bind source {source:?} is relative");
                no_nul("bind source", source.as_os_str().as_bytes());
            }
            MountKind::Filesystem { fstype, source } => {
                no_nul("fstype", fstype.as_bytes());
                no_nul("mount source", source.as_bytes());
            }
            MountKind::Cgroup => {}
        }
    }
    for d in &plan.devices {
        inside("device path", &d.path);
        assert!(
            d.path.file_name().is_some(),
            "device {:?} has no name",
            d.path
        );
    }
    for p in plan.masked_paths.iter().chain(&plan.readonly_paths) {
        inside("masked/readonly path", p);
    }
    let process = &plan.process;
    assert!(!process.args.is_empty(), "no args");
    for s in process.args.iter().chain(&process.env) {
        no_nul("args/env", s.as_bytes());
    }
    for s in &plan.sysctls {
        inside("sysctl path", Path::new(&s.path));
    }
    // Sysctl values and the host/domain name go to the kernel as bytes, no C strings.
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = parse::<Spec>(Path::new("config.json"), data) else {
        return;
    };
    if let Ok(plan) = plan("fuzz", bundle(), &spec) {
        check(&plan);
    }
});
