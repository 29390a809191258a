//! What the extra_* tests share: a temp `--root`/`--runroot` with a busybox root
//! filesystem (and an image imported from it), the real `berth` binary, and a Drop guard
//! that removes every container, mount, limit cgroup and process the test made, also when
//! it fails.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// Root is needed (namespaces, cgroups, mounts). Without it: skipped, or a failure when
/// BERTH_REQUIRE_ROOT=1.
pub fn can_run(test: &str) -> bool {
    let root = rustix_free_is_root();
    if root {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test}: needs root");
    }
    eprintln!("skipped: {test}: needs root");
    false
}

fn rustix_free_is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub rootfs: PathBuf,
    /// Host processes started by the test (killed and reaped on drop).
    pub children: Vec<Child>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-extra-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        let out = Command::new(script).arg(&rootfs).output().unwrap();
        assert!(
            out.status.success(),
            "busybox-rootfs.sh: {}",
            text(&out.stderr)
        );
        Env {
            root: dir.path().join("root"),
            runroot: dir.path().join("run"),
            rootfs,
            dir,
            children: Vec::new(),
        }
    }

    /// With an image `bb` imported from the busybox root filesystem.
    pub fn with_image() -> Env {
        let env = Env::new();
        env.ok(&["import", env.rootfs.to_str().unwrap(), "bb"]);
        env
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BERTH);
        // These tests predate bridge networks: a private namespace with loopback, unless a
        // test asks (network_run.rs covers the default bridge).
        c.env("BERTH_DEFAULT_NETWORK", "none");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs and requires failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.berth(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "berth {args:?}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// `run -d` of the busybox root filesystem; returns the id.
    pub fn run_d(&self, name: &str, extra: &[&str], command: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        let rootfs = self.rootfs.to_str().unwrap().to_string();
        args.push("--rootfs");
        args.push(&rootfs);
        args.extend_from_slice(command);
        self.ok(&args).trim().to_string()
    }

    pub fn spawn(&mut self, cmd: &mut Command) -> u32 {
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Mounts under our temp dir, from /proc/self/mountinfo.
    pub fn mounts(&self) -> Vec<String> {
        let prefix = self.dir.path().to_string_lossy().into_owned();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["ps", "-aq", "--no-trunc"]).output() {
            for id in text(&out.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        if let Ok(out) = self
            .cmd(&["limit", "--list", "--format", "{{.Pid}}"])
            .output()
        {
            for pid in text(&out.stdout).split_whitespace() {
                let _ = self.cmd(&["limit", "--release", pid]).output();
            }
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut mounts = self.mounts();
        mounts.reverse();
        for m in mounts {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        // The engine's `/berth` and `/berth-limit` parents, once nothing is left below.
        berth_engine::cgroup_parents::remove_if_empty();
    }
}
