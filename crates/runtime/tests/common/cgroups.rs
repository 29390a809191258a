//! Helpers of the cgroup tests (tests/cgroups.rs, tests/oom_redis.rs): where a process's
//! cgroups are on this host (v1, hybrid or v2, read from mountinfo and /proc/<pid>/cgroup),
//! the limits in them read back in the spec's units, cgroups made by a test (removed on
//! drop), `update` with a body on stdin, `events` in the background, and a free TCP port.
//!
//! Everything here reads the layout it finds, so the same test binary checks v1/hybrid on
//! the host and v2 in scripts/v2-vm-tests.sh's VM.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{COMMAND_TIMEOUT, Out, TestEnv, describe_process, exit_code, spawn, wait_child};

// ---------------------------------------------------------------------------------------
// The test environment
// ---------------------------------------------------------------------------------------

/// [`TestEnv::new`], after making sure every container id of this test binary has three
/// digits after the pid. The harness matches cgroups by substring (`find_cgroups`), so the
/// cleanup of `berth-test-P-1` would also kill and remove the cgroup of a concurrent test's
/// `berth-test-P-12`; ids of one width are never substrings of each other.
pub fn cg_env() -> Option<TestEnv> {
    let env = TestEnv::new()?;
    static PAD: Once = Once::new();
    PAD.call_once(|| {
        loop {
            let dir = env.new_dir("pad");
            let _ = fs::remove_dir(&dir);
            let n: usize = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.rsplit('-').next())
                .and_then(|n| n.parse().ok())
                .expect("new_dir names end in a number");
            if n >= 100 {
                break;
            }
        }
    });
    Some(env)
}

// ---------------------------------------------------------------------------------------
// The host's cgroup layout
// ---------------------------------------------------------------------------------------

/// A mounted cgroup hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// The mount's root inside the hierarchy (`/` on the host).
    pub root: String,
    /// v1: the controllers of the mount (`cpu`, `name=systemd`); v2: cgroup.controllers
    /// of the mount's root.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// The v1 controller names a mount option can be (other options are flags).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The cgroup hierarchies mounted in this process's mount namespace (first mount of each).
pub fn hierarchies() -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in super::host_mountinfo() {
        let h = match m.fstype.as_str() {
            "cgroup" => Hierarchy {
                mount: PathBuf::from(&m.mount_point),
                root: m.root.clone(),
                controllers: m
                    .super_options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(String::from)
                    .collect(),
                v2: false,
            },
            "cgroup2" => Hierarchy {
                mount: PathBuf::from(&m.mount_point),
                root: m.root.clone(),
                controllers: fs::read_to_string(
                    Path::new(&m.mount_point).join("cgroup.controllers"),
                )
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect(),
                v2: true,
            },
            _ => continue,
        };
        let dup = out
            .iter()
            .any(|o| o.v2 == h.v2 && (h.v2 || o.controllers == h.controllers) && o.root == h.root);
        if !dup {
            out.push(h);
        }
    }
    out
}

/// Whether the host is cgroup v2 only (no v1 hierarchy mounted).
pub fn is_v2() -> bool {
    let hs = hierarchies();
    hs.iter().any(|h| h.v2) && hs.iter().all(|h| h.v2)
}

/// One line of /proc/<pid>/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// The controller list as the line has it (`cpu`, `name=systemd`, empty for v2).
    pub controllers: String,
    pub path: String,
}

/// The lines of /proc/<pid>/cgroup.
pub fn proc_cgroups(pid: i32) -> Vec<ProcCgroup> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_string();
            let path = parts.next()?.to_string();
            Some(ProcCgroup { controllers, path })
        })
        .collect()
}

/// The hierarchy a /proc/<pid>/cgroup line is about, if it is mounted.
pub fn hierarchy_of(line: &ProcCgroup, hierarchies: &[Hierarchy]) -> Option<Hierarchy> {
    if line.controllers.is_empty() {
        return hierarchies.iter().find(|h| h.v2).cloned();
    }
    let mut want: Vec<&str> = line.controllers.split(',').collect();
    want.sort_unstable();
    hierarchies
        .iter()
        .find(|h| {
            let mut have: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
            have.sort_unstable();
            !h.v2 && have == want
        })
        .cloned()
}

/// The host directory of a cgroup path of a hierarchy.
pub fn host_dir(h: &Hierarchy, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(h.root.trim_end_matches('/'))
        .unwrap_or(path)
        .trim_start_matches('/');
    if rel.is_empty() {
        h.mount.clone()
    } else {
        h.mount.join(rel)
    }
}

/// The host directory of `pid`'s cgroup in the hierarchy that drives `controller` (a v1
/// hierarchy that has it, else the unified one if it has it; `""` means the unified one).
pub fn cgroup_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    let hs = hierarchies();
    let lines = proc_cgroups(pid);
    if !controller.is_empty() {
        for line in &lines {
            if line.controllers.split(',').any(|c| c == controller)
                && let Some(h) = hierarchy_of(line, &hs)
            {
                return Some(host_dir(&h, &line.path));
            }
        }
    }
    let h = hs.iter().find(|h| {
        h.v2 && (controller.is_empty() || h.controllers.iter().any(|c| c == controller))
    })?;
    let line = lines.iter().find(|l| l.controllers.is_empty())?;
    Some(host_dir(h, &line.path))
}

/// Every (hierarchy, host dir) of `pid`'s cgroups that is mounted.
pub fn cgroup_dirs(pid: i32) -> Vec<(Hierarchy, PathBuf)> {
    let hs = hierarchies();
    proc_cgroups(pid)
        .iter()
        .filter_map(|line| {
            let h = hierarchy_of(line, &hs)?;
            let dir = host_dir(&h, &line.path);
            Some((h, dir))
        })
        .collect()
}

/// A file of `pid`'s cgroup of `controller`, trimmed; panics naming the file when missing.
#[track_caller]
pub fn read_cg(pid: i32, controller: &str, file: &str) -> String {
    let dir = cgroup_dir(pid, controller)
        .unwrap_or_else(|| panic!("{}: no {controller} cgroup", describe_process(pid)));
    let path = dir.join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A cgroup file of `pid` if it exists.
pub fn try_read_cg(pid: i32, controller: &str, file: &str) -> Option<String> {
    let dir = cgroup_dir(pid, controller)?;
    fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// v1 writes "unlimited" as a page-aligned i64::MAX, v2 as "max": both become -1.
pub fn parse_limit(text: &str) -> i64 {
    if text == "max" {
        return -1;
    }
    let n: i64 = text
        .parse()
        .unwrap_or_else(|e| panic!("not a cgroup limit: {text:?}: {e}"));
    if n >= (1i64 << 62) { -1 } else { n }
}

/// What `pid`'s cgroups enforce, in the spec's units.
pub struct Limits {
    pub pid: i32,
    pub v2: bool,
}

impl Limits {
    pub fn of(pid: i32) -> Self {
        Limits { pid, v2: is_v2() }
    }

    /// `memory.limit` (-1 unlimited).
    pub fn memory_limit(&self) -> i64 {
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        parse_limit(&read_cg(self.pid, "memory", file))
    }

    /// `memory.swap`, memory+swap (-1 unlimited); None where swap is not accounted.
    pub fn memory_swap(&self) -> Option<i64> {
        if self.v2 {
            let swap = parse_limit(&try_read_cg(self.pid, "memory", "memory.swap.max")?);
            let mem = self.memory_limit();
            Some(if swap < 0 || mem < 0 { -1 } else { swap + mem })
        } else {
            try_read_cg(self.pid, "memory", "memory.memsw.limit_in_bytes").map(|s| parse_limit(&s))
        }
    }

    /// `memory.reservation` (-1 unlimited; v2: memory.low, whose default is 0).
    pub fn memory_reservation(&self) -> i64 {
        let file = if self.v2 {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        parse_limit(&read_cg(self.pid, "memory", file))
    }

    /// `memory.swappiness` (v1 only).
    pub fn swappiness(&self) -> Option<u64> {
        if self.v2 {
            return None;
        }
        Some(
            read_cg(self.pid, "memory", "memory.swappiness")
                .parse()
                .unwrap(),
        )
    }

    /// (`cpu.quota`, `cpu.period`), quota -1 for unlimited.
    pub fn cpu_quota_period(&self) -> (i64, u64) {
        if self.v2 {
            let max = read_cg(self.pid, "cpu", "cpu.max");
            let (q, p) = max.split_once(' ').expect("cpu.max is 'quota period'");
            (parse_limit(q), p.parse().unwrap())
        } else {
            (
                read_cg(self.pid, "cpu", "cpu.cfs_quota_us")
                    .parse()
                    .unwrap(),
                read_cg(self.pid, "cpu", "cpu.cfs_period_us")
                    .parse()
                    .unwrap(),
            )
        }
    }

    /// v1: `cpu.shares`; v2: cpu.weight.
    pub fn cpu_shares_or_weight(&self) -> u64 {
        let file = if self.v2 { "cpu.weight" } else { "cpu.shares" };
        read_cg(self.pid, "cpu", file).parse().unwrap()
    }

    /// What [`Self::cpu_shares_or_weight`] reads for `shares`.
    pub fn expected_shares(&self, shares: u64) -> u64 {
        if self.v2 {
            shares_to_weight(shares)
        } else {
            shares
        }
    }

    pub fn cpuset_cpus(&self) -> String {
        read_cg(self.pid, "cpuset", "cpuset.cpus")
    }

    /// `pids.limit` (-1 unlimited).
    pub fn pids_limit(&self) -> i64 {
        parse_limit(&read_cg(self.pid, "pids", "pids.max"))
    }

    /// v1: blkio.weight; v2: io.weight's default line (None where neither exists: the
    /// host's scheduler has no weights).
    pub fn blkio_weight(&self) -> Option<String> {
        if self.v2 {
            try_read_cg(self.pid, "io", "io.weight")
        } else {
            try_read_cg(self.pid, "blkio", "blkio.weight")
                .or_else(|| try_read_cg(self.pid, "blkio", "blkio.bfq.weight"))
        }
    }

    /// Every value above, for "a rejected update changed nothing".
    pub fn snapshot(&self) -> String {
        format!(
            "memory.limit={} swap={:?} reservation={} swappiness={:?} cpu={:?} shares={} cpus={} pids={} blkio={:?}",
            self.memory_limit(),
            self.memory_swap(),
            self.memory_reservation(),
            self.swappiness(),
            self.cpu_quota_period(),
            self.cpu_shares_or_weight(),
            self.cpuset_cpus(),
            self.pids_limit(),
            self.blkio_weight(),
        )
    }
}

/// runc's (>= 1.3) and Berth's cpu.shares -> cpu.weight mapping.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        s if s >= 262_144 => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// The kernel counted an OOM kill in `memory_dir`, and `events` (a running `events`
/// command) reported it for container `id` within 10 s.
pub fn assert_oom_reported(memory_dir: &Path, events: &Background, id: &str) {
    let kills = oom_kills(memory_dir);
    assert!(
        kills.is_some_and(|k| k >= 1),
        "the memory cgroup counts {kills:?} OOM kills"
    );
    let oom = super::wait_until(Duration::from_secs(10), || {
        event_lines(&events.stdout())
            .iter()
            .any(|e| e["type"] == "oom" && e["id"] == id)
    });
    assert!(
        oom.is_some(),
        "events reported no oom: {}",
        events.describe()
    );
}

/// The number of OOM kills the kernel counted in `pid`'s memory cgroup (v1:
/// memory.oom_control's oom_kill, v2: memory.events' oom_kill), from a cgroup dir.
pub fn oom_kills(memory_dir: &Path) -> Option<u64> {
    for file in ["memory.events", "memory.oom_control"] {
        if let Ok(text) = fs::read_to_string(memory_dir.join(file))
            && let Some(n) = text
                .lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse().ok())
        {
            return Some(n);
        }
    }
    None
}

/// The CPUs the host has online (`0-1`).
pub fn online_cpus() -> String {
    fs::read_to_string("/sys/devices/system/cpu/online")
        .unwrap()
        .trim()
        .to_string()
}

/// The huge page sizes of the host, as the spec writes them (`2MB`, `1GB`).
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut sizes: Vec<(u64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let text = if kb >= 1 << 20 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1 << 10 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            };
            Some((kb, text))
        })
        .collect();
    sizes.sort();
    sizes.into_iter().map(|(_, t)| t).collect()
}

// ---------------------------------------------------------------------------------------
// cgroups made by a test
// ---------------------------------------------------------------------------------------

/// Directories a test made in the cgroup hierarchies, removed (deepest first, after
/// killing what is left in them) on drop. Name them after an id from
/// [`TestEnv::new_id`], so the harness's cleanup would find them too.
#[derive(Default)]
pub struct TestCgroups {
    dirs: Vec<PathBuf>,
}

impl TestCgroups {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `path` (absolute in the hierarchy) in the hierarchy that drives `controller`
    /// and returns its host directory. On v2 the controller is enabled for it in its parent.
    pub fn make(&mut self, controller: &str, path: &str) -> PathBuf {
        let hs = hierarchies();
        let h = hs
            .iter()
            .find(|h| !h.v2 && h.controllers.iter().any(|c| c == controller))
            .or_else(|| {
                hs.iter()
                    .find(|h| h.v2 && h.controllers.iter().any(|c| c == controller))
            })
            .unwrap_or_else(|| panic!("no hierarchy has the {controller} controller"))
            .clone();
        let dir = host_dir(&h, path);
        if h.v2 {
            let _ = fs::write(
                dir.parent().unwrap().join("cgroup.subtree_control"),
                format!("+{controller}"),
            );
        }
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.dirs.push(dir.clone());
        dir
    }

    /// Also removes `path` in every hierarchy at drop (for the parents the runtime made
    /// below a cgroup of the test, or in the other hierarchies).
    pub fn remove_everywhere_at_drop(&mut self, path: &str) {
        for h in hierarchies() {
            self.dirs.push(host_dir(&h, path));
        }
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for dir in dirs {
            if !dir.exists() {
                continue;
            }
            for _ in 0..100 {
                let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                if procs.trim().is_empty() {
                    break;
                }
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
                let _ = fs::write(dir.join("freezer.state"), "THAWED");
                let _ = fs::write(dir.join("cgroup.freeze"), "0");
                super::reap_orphans();
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Err(e) = fs::remove_dir(&dir) {
                eprintln!("cleanup: cannot remove cgroup {}: {e}", dir.display());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Runtime commands
// ---------------------------------------------------------------------------------------

/// Runs the runtime with `input` on its stdin (`update --resources -`).
pub fn runtime_stdin(env: &TestEnv, args: &[&str], input: &str) -> Out {
    let mut cmd = env.command(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("`berth-runtime {}` (stdin {input:?})", args.join(" "));
    let mut child = spawn(&mut cmd);
    let mut stdin = child.stdin.take().unwrap();
    // A runtime that does not read its stdin may already be gone: not our failure.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    match wait_child(child, COMMAND_TIMEOUT) {
        Some((status, stdout, stderr)) => Out {
            what,
            code: exit_code(status),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        None => panic!("{what} did not finish within {COMMAND_TIMEOUT:?}"),
    }
}

/// `events --stats ID`, parsed.
#[track_caller]
pub fn stats(env: &TestEnv, id: &str) -> Value {
    let out = env.runtime(&["events", "--stats", id]);
    out.ok();
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("events --stats printed no JSON object ({e}):\n{out}"))
}

/// The total CPU time of a stats event, in nanoseconds.
#[track_caller]
pub fn cpu_total_ns(stats: &Value) -> u64 {
    stats["data"]["cpu"]["usage"]["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no data.cpu.usage.total in {stats}"))
}

/// A process of a test running in the background with its stdout and stderr in files;
/// killed (if still running) and reaped on drop.
pub struct Background {
    pub what: String,
    child: Option<Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Background {
    /// Starts the runtime with `args` in the background.
    pub fn runtime(env: &TestEnv, args: &[&str]) -> Self {
        let cmd = env.command(args);
        Self::start(env, cmd, &format!("berth-runtime {}", args.join(" ")))
    }

    /// Starts a host program in the background.
    pub fn host(env: &TestEnv, program: &str, args: &[&str]) -> Self {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args).stdin(Stdio::null());
        Self::start(env, cmd, &format!("{program} {}", args.join(" ")))
    }

    fn start(env: &TestEnv, mut cmd: std::process::Command, what: &str) -> Self {
        let io = env.io_files();
        cmd.stdout(fs::File::create(&io.stdout).unwrap())
            .stderr(fs::File::create(&io.stderr).unwrap());
        let child = spawn(&mut cmd);
        Background {
            what: what.to_string(),
            child: Some(child),
            stdout: io.stdout,
            stderr: io.stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the exit; None after `timeout` (the process is then killed).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.take()?;
        wait_child(child, timeout).map(|(status, _, _)| exit_code(status))
    }

    /// Kills (SIGKILL) and reaps the process; returns its exit code.
    pub fn kill(&mut self) -> Option<i32> {
        let pid = self.pid();
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        self.wait(Duration::from_secs(10))
    }

    /// Whether it still runs.
    pub fn running(&self) -> bool {
        self.child.is_some() && super::process_alive(self.pid())
    }

    /// Waits until its stdout holds `text`.
    pub fn wait_stdout(&self, text: &str, timeout: Duration) -> bool {
        super::wait_until(timeout, || self.stdout().contains(text)).is_some()
    }

    /// stdout and stderr, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{}\n  stdout: {:?}\n  stderr: {:?}",
            self.what,
            tail(&self.stdout(), 2000),
            tail(&self.stderr(), 2000)
        )
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

/// The last `n` bytes of a text (at a char boundary).
pub fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The JSON lines of an `events` output.
pub fn event_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l.trim()).ok())
        .collect()
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        super::reap_orphans();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `create --bundle B ID` with an id the test chose (from [`TestEnv::new_id`], e.g. to
/// put it into `linux.cgroupsPath`), whatever the result.
pub fn create_as<'e>(
    env: &'e TestEnv,
    bundle: &super::Bundle,
    id: &str,
) -> (Out, super::Container<'e>) {
    bundle.save();
    let dir = bundle.dir.to_str().unwrap();
    let (out, io) = env.runtime_to_files(&["create", "--bundle", dir, id], COMMAND_TIMEOUT);
    let container = super::Container {
        env,
        id: id.to_string(),
        io,
    };
    (out, container)
}
