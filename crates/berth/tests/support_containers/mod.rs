//! What the container tests share: a temp `--root`/`--runroot` with a busybox root
//! filesystem, the real `berth` binary, and a guard that removes every container, mount,
//! cgroup and process the test made, also when it fails.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// What `--network` means when a test does not say (network_run.rs tests the default bridge).
pub const NETWORK_ENV: &str = "BERTH_DEFAULT_NETWORK";

/// Root, and the tools a test needs: else skipped (or failed with BERTH_REQUIRE_ROOT=1).
pub fn can_run(test: &str, tools: &[&str]) -> bool {
    let root = fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    let have = |t: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
    };
    let mut missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if !root {
        missing.push("root");
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("/bin/busybox (busybox-static)");
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test}: needs {}", missing.join(", "));
    }
    eprintln!("skipped: {test}: needs {}", missing.join(", "));
    false
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A test's world: its roots, a busybox rootfs, and cleanup on drop.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub rootfs: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("berth-ct-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("busybox");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/busybox-rootfs.sh"
        );
        let out = Command::new("bash")
            .arg(script)
            .arg(&rootfs)
            .output()
            .unwrap();
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
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BERTH);
        // These tests predate bridge networks: a private namespace with loopback, unless a
        // test asks (network_run.rs covers the default bridge).
        c.env(NETWORK_ENV, "none");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot);
        c.args(args);
        c.stdin(Stdio::null());
        c
    }

    /// What [`Env::cmd`] runs, as a shell command line, for tests that hand berth to another
    /// program (`script` for a pty).
    pub fn shell_command(&self) -> String {
        format!(
            "{NETWORK_ENV}=none {BERTH} --root {} --runroot {}",
            self.root.display(),
            self.runroot.display()
        )
    }

    /// Runs berth; the whole output.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs berth, which must succeed; its stdout.
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

    /// `berth run --rm --rootfs <busybox> [flags...] -- command`: (exit code, stdout, stderr).
    pub fn run(&self, flags: &[&str], command: &[&str]) -> (i32, String, String) {
        let rootfs = self.rootfs.to_str().unwrap();
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--rootfs", rootfs]);
        args.extend_from_slice(command);
        let out = self.berth(&args);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// Like [`Env::run`] but the container must exit 0; its stdout.
    pub fn run_ok(&self, flags: &[&str], command: &[&str]) -> String {
        let (code, out, err) = self.run(flags, command);
        assert_eq!(
            code, 0,
            "run {flags:?} {command:?}: stdout {out} stderr {err}"
        );
        out
    }

    /// `run -d` of a busybox container; its id.
    pub fn run_detached(&self, flags: &[&str], command: &[&str]) -> String {
        let rootfs = self.rootfs.to_str().unwrap();
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--rootfs", rootfs]);
        args.extend_from_slice(command);
        self.ok(&args).trim().to_string()
    }

    /// A container's record, as JSON.
    pub fn record(&self, id: &str) -> serde_json::Value {
        let path = self.root.join("containers").join(id).join("container.json");
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    pub fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "--format", template, name])
            .trim()
            .to_string()
    }

    /// Polls `check` for up to `timeout`.
    pub fn eventually(&self, timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        check()
    }

    /// The ids of every container record.
    pub fn ids(&self) -> Vec<String> {
        match fs::read_dir(self.root.join("containers")) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Asserts nothing of container `id` is left: record, runtime state, cgroups, mounts.
    pub fn assert_gone(&self, id: &str) {
        assert!(
            !self.root.join("containers").join(id).exists(),
            "record of {id} left"
        );
        assert!(
            !self.runroot.join("runtime").join(id).exists(),
            "runtime state of {id} left"
        );
        for cg in cgroup_dirs(id) {
            assert!(!cg.exists(), "cgroup {} left", cg.display());
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(id), "a mount of {id} is left");
    }
}

/// The cgroup directories a container gets (`/berth/<id>` in every hierarchy).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            out.push(e.path().join("berth").join(id));
        }
    }
    out.push(PathBuf::from("/sys/fs/cgroup/berth").join(id));
    out
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids() {
            let record: Option<serde_json::Value> = fs::read(
                self.root
                    .join("containers")
                    .join(&id)
                    .join("container.json"),
            )
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok());
            let _ = self.cmd(&["rm", "-f", &id]).output();
            // A monitor the test left (or broke) goes too.
            if let Some(pid) = record
                .as_ref()
                .and_then(|r| r["state"]["monitor_pid"].as_i64())
                && pid > 0
                && let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/cmdline"))
                && stat.contains("berth")
            {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            for cg in cgroup_dirs(&id) {
                let _ = fs::remove_dir(&cg);
            }
        }
        // Mounts below the temp dir (an image rootfs the test left mounted).
        let dir = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mounts) = fs::read_to_string("/proc/self/mountinfo") {
            for line in mounts.lines() {
                if let Some(point) = line.split_whitespace().nth(4)
                    && point.starts_with(&dir)
                {
                    let _ = Command::new("umount").arg("-l").arg(point).status();
                }
            }
        }
        // The engine's `/berth` parents, once no test's container is left below them.
        berth_engine::cgroup_parents::remove_if_empty();
    }
}

/// Runs shell command line `cmd` on a pty of script(1), typing `input` into it; its output.
pub fn in_pty(cmd: &str, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
