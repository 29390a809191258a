//! Helpers for the root integration tests: cgroups named `berth-test-*`
//! that are removed on drop (also when the test panicked), and child
//! processes that are killed on drop.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use berth_cgroups::{Cgroup, CgroupsPath, Controller, Join, Layout, Mode, PlanOptions, Version};
use oci_spec::runtime::LinuxResources;

/// Tests that change the unified root's subtree_control (hugetlb on a
/// hybrid host) take this, so one's restore cannot pull a controller from
/// under the other.
pub static UNIFIED_ROOT: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The variable that turns a skipped test into a failed one (CI sets it to 1).
pub const REQUIRE_ENV: &str = "BERTH_REQUIRE_ROOT";

/// A test that cannot run here (not root, a host feature missing): with
/// `BERTH_REQUIRE_ROOT=1` that is a failure naming the reason; otherwise it prints
/// `skipped: <why>` and the caller returns.
#[track_caller]
pub fn skip(why: &str) {
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") {
        panic!("this test cannot run here and {REQUIRE_ENV}=1 forbids skipping it: {why}");
    }
    eprintln!("skipped: {why}");
}

/// A test of another cgroup layout than this host's (v1-only behaviour on a v2 host, v2
/// rules on a hybrid one): it does not run here, never fails for it, and says so. Each such
/// test runs where its layout is: on the hybrid CI host or in scripts/v2-vm-tests.sh's VM.
pub fn other_layout(why: &str) {
    eprintln!("not on this cgroup layout: {why}");
}

/// Skip (see [`skip`]) when not root: these tests need a real cgroupfs.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            common::skip("needs root (a real cgroupfs)");
            return;
        }
    };
}

pub fn unique(name: &str) -> String {
    format!("berth-test-{name}-{}", std::process::id())
}

pub fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// A running `sh -c SCRIPT`, killed and reaped on drop. Scripts that start
/// with `read go;` wait until [`Proc::go`] so they run inside the cgroup.
pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
}

impl Proc {
    pub fn spawn(script: &str) -> Proc {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let stdin = child.stdin.take();
        Proc { child, stdin }
    }

    /// Like [`Proc::spawn`], but the child runs `before_exec` after the fork.
    pub fn spawn_with(
        script: &str,
        before_exec: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Proc {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the callers' closures only write to files opened before the fork.
        let mut child = unsafe { command.pre_exec(before_exec) }
            .spawn()
            .expect("spawn sh");
        let stdin = child.stdin.take();
        Proc { child, stdin }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Let a `read go;` script continue.
    pub fn go(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            s.write_all(b"go\n").unwrap();
        }
    }

    /// Wait for exit up to `timeout`; returns (exited, stdout, stderr).
    pub fn wait_output(mut self, timeout: Duration) -> (bool, String, String) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.child.try_wait().unwrap().is_some() {
                let mut out = String::new();
                let mut err = String::new();
                use std::io::Read;
                if let Some(mut o) = self.child.stdout.take() {
                    o.read_to_string(&mut out).unwrap();
                }
                if let Some(mut e) = self.child.stderr.take() {
                    e.read_to_string(&mut err).unwrap();
                }
                return (true, out, err);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (false, String::new(), String::new())
    }

    /// CPU time (utime + stime, clock ticks) from /proc/<pid>/stat.
    pub fn cpu_ticks(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let rest = &s[s.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test cgroup. Drop kills whatever is left inside, removes the
/// container cgroup and the `berth-test-*` top directory it lives under in
/// every hierarchy, and undoes subtree_control changes it recorded.
pub struct TestCg {
    pub cg: Cgroup,
    pub procs: Vec<Proc>,
    tops: Vec<PathBuf>,
    restore_subtree: Vec<(PathBuf, String)>,
}

impl TestCg {
    /// `/berth-test-<name>-<pid>/<sub>` (or just the top when `sub` is empty).
    pub fn new(name: &str, sub: &str) -> TestCg {
        let top = unique(name);
        let path = if sub.is_empty() {
            format!("/{top}")
        } else {
            format!("/{top}/{sub}")
        };
        TestCg::at(&path)
    }

    pub fn at(path: &str) -> TestCg {
        let layout = Layout::probe().unwrap();
        let cg = Cgroup::new(&layout, &CgroupsPath::parse(path).unwrap()).unwrap();
        let tops = cg
            .mounts()
            .iter()
            .filter_map(|m| {
                m.host_dir
                    .ancestors()
                    .filter(|a| {
                        a.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("berth-test-"))
                    })
                    .last()
                    .map(Path::to_path_buf)
            })
            .collect::<Vec<_>>();
        assert!(
            !tops.is_empty(),
            "test cgroups must live under a berth-test-* directory: {path}"
        );
        TestCg {
            cg,
            procs: Vec::new(),
            tops,
            restore_subtree: Vec::new(),
        }
    }

    /// Plan + create.
    pub fn create(&self, json: &str) -> berth_cgroups::Result<()> {
        let plan = self
            .cg
            .plan(&res(json), Mode::Create, PlanOptions::default())?;
        self.cg.create(&plan)
    }

    /// Spawn `sh -c script`, move it into the cgroup, let it go.
    pub fn run(&mut self, script: &str) -> usize {
        let mut p = Proc::spawn(script);
        self.cg.add_pid(p.pid(), Join::All).unwrap();
        p.go();
        self.procs.push(p);
        self.procs.len() - 1
    }

    /// Read a control file of the controller `c`, v1 or v2 name as bound.
    pub fn read(&self, c: Controller, v1: &str, v2: &str) -> String {
        let (ver, dir) = self
            .cg
            .controller_dir(c)
            .unwrap_or_else(|| panic!("{c} not available"));
        let f = if ver == Version::V1 { v1 } else { v2 };
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()))
            .trim()
            .to_string()
    }

    pub fn version_of(&self, c: Controller) -> Option<Version> {
        self.cg.controller_dir(c).map(|(v, _)| v)
    }

    /// Remember `dir`'s cgroup.subtree_control so drop can put it back.
    pub fn remember_subtree_control(&mut self, dir: &Path) {
        let s = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap();
        self.restore_subtree
            .push((dir.to_path_buf(), s.trim().to_string()));
    }
}

/// rmdir deepest first, retrying while killed processes leave.
pub fn rm_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rm_tree(&e.path());
            }
        }
    }
    for _ in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    eprintln!("warning: could not remove {}", dir.display());
}

impl Drop for TestCg {
    fn drop(&mut self) {
        self.procs.clear();
        let _ = self.cg.signal_all(libc::SIGKILL);
        let _ = self.cg.thaw();
        for top in &self.tops {
            assert!(top.to_string_lossy().contains("berth-test-"));
            rm_tree(top);
        }
        for (dir, before) in &self.restore_subtree {
            let now =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            for c in now
                .split_whitespace()
                .filter(|c| !before.split_whitespace().any(|b| b == *c))
            {
                let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("-{c}"));
            }
        }
    }
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}
