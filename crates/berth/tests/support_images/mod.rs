//! Helpers for the image command tests: a temporary store, the berth binary, a busybox
//! root filesystem tarball as the seed's workflow makes it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Berth {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Berth {
    pub fn new() -> Berth {
        Berth {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.env("BERTH_DEFAULT_NETWORK", "none");
        cmd.arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(args)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUNROOT")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        from_output(self.command(args).output().unwrap())
    }

    /// Runs and insists on exit 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "berth {args:?}: {}{}", run.stdout, run.stderr);
        run.stdout
    }

    /// A busybox root filesystem (scripts/busybox-rootfs.sh) tarred as `docker export` does.
    pub fn busybox_tar(&self) -> PathBuf {
        let rootfs = self.busybox_dir();
        let tar = self.dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        tar
    }

    pub fn busybox_dir(&self) -> PathBuf {
        let rootfs = self.dir.path().join("rootfs");
        if !rootfs.exists() {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
            let status = Command::new("bash")
                .arg(script)
                .arg(&rootfs)
                .status()
                .unwrap();
            assert!(status.success(), "busybox-rootfs.sh");
        }
        rootfs
    }
}

pub fn from_output(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Whether the test may do what needs root; prints why not (panics under BERTH_REQUIRE_ROOT=1).
pub fn root_or_skip(what: &str) -> bool {
    // /proc/self belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if root {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{what}: needs root (BERTH_REQUIRE_ROOT=1)");
    }
    eprintln!("skipped: {what} needs root");
    false
}

pub fn busybox_available() -> bool {
    if Path::new("/bin/busybox").exists() {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("busybox-static is not installed");
    }
    eprintln!("skipped: busybox-static is not installed");
    false
}
