//! The harness of berth-runtime's integration tests: real containers, created as root on the
//! real kernel, from a busybox rootfs built at test time from /bin/busybox.
//!
//! Every test makes a [`TestEnv`]: its own temporary directory (bundles, the `--root` state
//! directory, stdio files) and its own container ids, so tests run in parallel threads. The
//! env's drop cleans up even after a panic: `delete --force` of every id it handed out, a
//! SIGKILL to every process that belongs to the test, a lazy unmount of everything mounted
//! under its directory, the removal of the cgroups named after its ids, and the directory.
//!
//! Not root: [`TestEnv::new`] prints why and returns `None`; the test returns early. With
//! `BERTH_REQUIRE_ROOT=1` (CI) every such skip fails the test instead ([`skip`]).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};
use serde_json::{Value, json};

/// The runtime under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

/// How long one runtime command may take before the test fails (instead of hanging CI).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a container may take to reach a status.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's busybox (Debian package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

// ---------------------------------------------------------------------------------------
// Children, reaping
// ---------------------------------------------------------------------------------------

/// Pids of children that some thread of this test binary waits for itself (runtime
/// commands, helpers). The orphan reaper leaves them alone; every spawn holds the lock from
/// fork to registration, so the reaper never sees one of them unregistered.
static OWN_CHILDREN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn own_children() -> MutexGuard<'static, BTreeSet<i32>> {
    OWN_CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spawns a command whose exit this process will wait for.
pub fn spawn(cmd: &mut Command) -> Child {
    try_spawn(cmd).unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn try_spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut own = own_children();
    let child = cmd.spawn()?;
    own.insert(child.id() as i32);
    Ok(child)
}

fn forget_child(pid: i32) {
    own_children().remove(&pid);
}

/// Reaps exited children that nobody waits for: container inits, which the runtime leaves
/// behind after `create` and which are re-parented to us (we are a child subreaper).
pub fn reap_orphans() {
    let own = own_children();
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if own.contains(&pid) {
            continue;
        }
        if let Some((state, ppid)) = proc_state_ppid(pid)
            && ppid == me
            && state == 'Z'
            && let Some(p) = Pid::from_raw(pid)
        {
            let _ = rustix::process::waitpid(Some(p), WaitOptions::NOHANG);
        }
    }
}

/// State letter and parent pid from /proc/<pid>/stat.
pub fn proc_state_ppid(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` is a live process (not a zombie).
pub fn process_alive(pid: i32) -> bool {
    proc_state_ppid(pid).is_some_and(|(s, _)| !matches!(s, 'Z' | 'X' | 'x'))
}

fn kill(pid: i32, signal: Signal) {
    if let Some(p) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, signal);
    }
}

/// Waits for a spawned child, killing it after `timeout`. Returns None on a timeout.
pub fn wait_child(child: Child, timeout: Duration) -> Option<(ExitStatus, Vec<u8>, Vec<u8>)> {
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = child.wait_with_output();
        forget_child(pid);
        let _ = tx.send(result);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Some((out.status, out.stdout, out.stderr)),
        Ok(Err(e)) => panic!("wait for pid {pid}: {e}"),
        Err(_) => {
            kill(pid, Signal::KILL);
            None
        }
    }
}

/// The exit code of a status, 128+signal when killed by a signal (as shells report it).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

// ---------------------------------------------------------------------------------------
// The busybox rootfs and the default config
// ---------------------------------------------------------------------------------------

/// The applets of the host's busybox, listed once per test binary.
fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing (install busybox-static)"
        );
        let out = host(BUSYBOX, &["--list"]);
        out.ok();
        out.stdout
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "busybox")
            .map(String::from)
            .collect()
    })
}

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:100:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

pub const GROUP: &str = "root:x:0:\nusers:x:100:user\nnogroup:x:65534:\n";

/// Builds a busybox root filesystem at `dir`: bin/ with the applet symlinks, etc/passwd and
/// group (root, `user` 1000:100, `nobody`), and empty proc sys dev tmp root dirs. A copy per
/// bundle costs a few milliseconds (one static binary and symlinks), and tests may write to
/// it freely.
pub fn build_rootfs(dir: &Path) {
    for sub in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
        "run",
    ] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(BUSYBOX, dir.join("bin/busybox")).unwrap();
    for applet in applets() {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    fs::write(dir.join("etc/group"), GROUP).unwrap();
    std::os::unix::fs::chown(dir.join("home/user"), Some(1000), Some(100)).unwrap();
}

/// `berth-runtime spec` output, once per test binary.
pub fn spec_template() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-spec-")
            .tempdir()
            .unwrap();
        host(BIN, &["spec", "--bundle", dir.path().to_str().unwrap()]).ok();
        let text = fs::read_to_string(dir.path().join("config.json")).unwrap();
        serde_json::from_str(&text).expect("spec writes JSON")
    })
}

/// The config tests start from: `spec`'s output with `process.terminal` false, `true` as the
/// process, a writable `rootfs`, the test's token in the environment, and without the
/// `/sys/fs/cgroup` mount (tests of cgroups are elsewhere; that mount needs the cgroup layer).
pub fn default_config(token: &str) -> Value {
    let mut config = spec_template().clone();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    config["process"]["env"]
        .as_array_mut()
        .expect("spec has process.env")
        .push(json!(format!("{TOKEN_VAR}={token}")));
    config["root"] = json!({"path": "rootfs", "readonly": false});
    config["mounts"]
        .as_array_mut()
        .expect("spec has mounts")
        .retain(|m| m["type"] != "cgroup" && m["type"] != "cgroup2");
    config
}

/// With this set to 1 every runtime command of the tests gets `--systemd-cgroup`.
pub const SYSTEMD_DRIVER_ENV: &str = "BERTH_TEST_SYSTEMD_CGROUP";

/// A variable in the runtime's own environment, which must not reach hooks or containers.
pub const RUNTIME_ENV_MARKER: &str = "BERTH_TEST_RUNTIME_ENV";

/// The variable that marks every container process of a test (for cleanup).
pub const TOKEN_VAR: &str = "BERTH_TEST_TOKEN";

// ---------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------

/// A bundle directory: `rootfs/` (its own busybox copy) and the config, written by
/// [`Bundle::save`] (which every create/run helper calls).
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn save(&self) {
        fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Runs `sh -c script` as the process.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn process(&mut self) -> &mut Value {
        &mut self.config["process"]
    }

    pub fn linux(&mut self) -> &mut Value {
        &mut self.config["linux"]
    }

    /// Appends a mount.
    pub fn mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(mount);
        self
    }

    /// Appends an environment variable.
    pub fn env(&mut self, var: &str) -> &mut Self {
        self.config["process"]["env"]
            .as_array_mut()
            .expect("env")
            .push(json!(var));
        self
    }

    /// Removes a namespace type from `linux.namespaces`.
    pub fn without_namespace(&mut self, kind: &str) -> &mut Self {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .retain(|n| n["type"] != kind);
        self
    }

    /// Sets a namespace (replacing one of the same type), new or joined by path.
    pub fn namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        self.without_namespace(kind);
        let ns = match path {
            Some(p) => json!({"type": kind, "path": p}),
            None => json!({"type": kind}),
        };
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(ns);
        self
    }

    /// Sets `hooks.<kind>`.
    pub fn hooks(&mut self, kind: &str, hooks: Value) -> &mut Self {
        if !self.config["hooks"].is_object() {
            self.config["hooks"] = json!({});
        }
        self.config["hooks"][kind] = hooks;
        self
    }
}

// ---------------------------------------------------------------------------------------
// Command results
// ---------------------------------------------------------------------------------------

/// The result of a command: exit code (128+signal when killed) and output.
#[derive(Debug, Clone)]
pub struct Out {
    pub what: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "{} failed:\n{self}", self.what);
        self
    }

    /// Panics unless the command failed (non-zero).
    #[track_caller]
    pub fn fails(&self) -> &Self {
        assert!(
            !self.success(),
            "{} unexpectedly succeeded:\n{self}",
            self.what
        );
        self
    }

    /// Both streams together, for "the error mentions X".
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics unless stderr (or stdout) mentions every one of `words`.
    #[track_caller]
    pub fn mentions(&self, words: &[&str]) -> &Self {
        let all = self.all();
        for word in words {
            assert!(
                all.contains(word),
                "{}: the output does not mention {word:?}:\n{self}",
                self.what
            );
        }
        self
    }

    /// stdout lines, trimmed.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lines().map(|l| l.trim().to_string()).collect()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  exit code: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A container's stdio files (what `create` or `run` had as stdout and stderr).
#[derive(Debug, Clone)]
pub struct IoFiles {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl IoFiles {
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// The test environment
// ---------------------------------------------------------------------------------------

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn next_number() -> usize {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The variable that turns a skipped test into a failed one (CI sets it to 1).
pub const REQUIRE_ENV: &str = "BERTH_REQUIRE_ROOT";

/// A test that cannot run here (not root, a missing program or host feature): with
/// `BERTH_REQUIRE_ROOT=1` that is a failure, naming the reason, because a test that did not
/// run must not count as passed; otherwise it prints `skipped: <why>` and the caller returns.
#[track_caller]
pub fn skip(why: &str) {
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") {
        panic!("this test cannot run here and {REQUIRE_ENV}=1 forbids skipping it: {why}");
    }
    eprintln!("skipped: {why}");
}

/// Runs test `name` of this test binary again, as user nobody (65534:65534), where every
/// root test must skip: with `BERTH_REQUIRE_ROOT=require` or, for `None`, without it.
pub fn run_self_unprivileged(name: &str, require: Option<&str>) -> Out {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null());
    match require {
        Some(value) => cmd.env(REQUIRE_ENV, value),
        None => cmd.env_remove(REQUIRE_ENV),
    };
    run_piped(&mut cmd, COMMAND_TIMEOUT)
}

/// Whether we run as root; says why not when we do not (see [`skip`]).
#[track_caller]
fn root_or_skip() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    skip("berth-runtime integration tests need root (CI runs them as root)");
    false
}

/// Makes this process a child subreaper, once: after `create` the container's init is
/// orphaned, and pid 1 on this machine does not reap zombies.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// One test's private world. Cleans up on drop.
pub struct TestEnv {
    tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    state_root: PathBuf,
    token: String,
    ids: Mutex<Vec<String>>,
    helpers: Mutex<Vec<Child>>,
}

impl TestEnv {
    /// A new environment, or None (after saying why) when the tests cannot run here.
    #[track_caller]
    pub fn new() -> Option<Self> {
        if !root_or_skip() {
            return None;
        }
        become_subreaper();
        let tmp = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().to_path_buf();
        // Mapped users of user-namespace tests must be able to walk into bundles.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let token = dir.file_name().unwrap().to_string_lossy().into_owned();
        let state_root = dir.join("state");
        Some(TestEnv {
            tmp: Some(tmp),
            dir,
            state_root,
            token,
            ids: Mutex::new(Vec::new()),
            helpers: Mutex::new(Vec::new()),
        })
    }

    /// The test's temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `--root` of every runtime command of this test.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The value of [`TOKEN_VAR`] in this test's containers.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A fresh container id, remembered for cleanup.
    pub fn new_id(&self) -> String {
        let id = format!("berth-test-{}-{}", std::process::id(), next_number());
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A fresh directory inside the test's directory.
    pub fn new_dir(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(format!("{name}-{}", next_number()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A new bundle with its own rootfs and the default config.
    pub fn bundle(&self) -> Bundle {
        let dir = self.new_dir("bundle");
        let rootfs = dir.join("rootfs");
        build_rootfs(&rootfs);
        let bundle = Bundle {
            config: default_config(&self.token),
            dir,
            rootfs,
        };
        bundle.save();
        bundle
    }

    /// The runtime with `--root` and `args`, stdin from /dev/null.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--root").arg(&self.state_root);
        // The systemd guest runs cgroup tests with the systemd driver (scripts/systemd-vm-tests.sh).
        if std::env::var_os(SYSTEMD_DRIVER_ENV).is_some_and(|v| v == "1") {
            cmd.arg("--systemd-cgroup");
        }
        cmd.args(args);
        // Neither hooks nor containers may inherit the runtime's environment.
        cmd.env(RUNTIME_ENV_MARKER, "leaked");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs the runtime with pipes for stdout and stderr. A command that does not return in
    /// [`COMMAND_TIMEOUT`] (or leaves its pipes to a long-lived process) fails the test.
    pub fn runtime(&self, args: &[&str]) -> Out {
        let mut cmd = self.command(args);
        run_piped(&mut cmd, COMMAND_TIMEOUT)
    }

    /// Runs the runtime with stdout and stderr in new files (a container started by the
    /// command keeps them).
    pub fn runtime_to_files(&self, args: &[&str], timeout: Duration) -> (Out, IoFiles) {
        let io = self.io_files();
        let mut cmd = self.command(args);
        let out = run_to_files(&mut cmd, &io, timeout);
        (out, io)
    }

    /// Two new (empty) files for stdout and stderr.
    pub fn io_files(&self) -> IoFiles {
        let n = next_number();
        let io = IoFiles {
            stdout: self.dir.join(format!("io-{n}.out")),
            stderr: self.dir.join(format!("io-{n}.err")),
        };
        fs::write(&io.stdout, "").unwrap();
        fs::write(&io.stderr, "").unwrap();
        io
    }

    /// `create --bundle B ID [extra]`, whatever the result.
    pub fn try_create(&self, bundle: &Bundle, extra: &[&str]) -> (Out, Container<'_>) {
        bundle.save();
        let id = self.new_id();
        let bundle_dir = bundle.dir.to_str().unwrap();
        let mut args = vec!["create", "--bundle", bundle_dir];
        args.extend_from_slice(extra);
        args.push(&id);
        let (out, io) = self.runtime_to_files(&args, COMMAND_TIMEOUT);
        let container = Container {
            env: self,
            id: id.clone(),
            io,
        };
        (out, container)
    }

    /// Creates a container; fails the test if create fails.
    #[track_caller]
    pub fn create(&self, bundle: &Bundle) -> Container<'_> {
        let (out, container) = self.try_create(bundle, &[]);
        out.ok();
        container
    }

    /// Creates and starts a container.
    #[track_caller]
    pub fn create_started(&self, bundle: &Bundle) -> Container<'_> {
        let container = self.create(bundle);
        container.start().ok();
        container
    }

    /// `run --bundle B ID [extra]` in the foreground with the container's stdio in files:
    /// the result's stdout is the container's, its code run's exit code.
    pub fn run_with(&self, bundle: &Bundle, extra: &[&str], timeout: Duration) -> Out {
        bundle.save();
        let id = self.new_id();
        let bundle_dir = bundle.dir.to_str().unwrap();
        let mut args = vec!["run", "--bundle", bundle_dir];
        args.extend_from_slice(extra);
        args.push(&id);
        self.runtime_to_files(&args, timeout).0
    }

    /// Runs a bundle in the foreground.
    pub fn run(&self, bundle: &Bundle) -> Out {
        self.run_with(bundle, &[], COMMAND_TIMEOUT)
    }

    /// Runs `sh -c script` in a default container and returns what it printed.
    pub fn run_sh(&self, script: &str) -> Out {
        let mut bundle = self.bundle();
        bundle.sh(script);
        self.run(&bundle)
    }

    /// Starts a helper process on the host (e.g. `unshare ... sleep`); it is killed and
    /// reaped at cleanup. Returns its pid.
    pub fn helper(&self, args: &[&str]) -> i32 {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..])
            .env(TOKEN_VAR, &self.token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn(&mut cmd);
        let pid = child.id() as i32;
        self.helpers.lock().unwrap().push(child);
        pid
    }

    /// Pids of every process that belongs to this test: container processes (they carry the
    /// token in their environment), helpers, and runtime processes or not-yet-exec'd inits
    /// working on this test's state root (their command line names it).
    pub fn processes(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let needle_env = format!("{TOKEN_VAR}={}", self.token);
        let needle_cmd = self.state_root.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        let Ok(entries) = fs::read_dir("/proc") else {
            return pids;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if pid == me || !process_alive(pid) {
                continue;
            }
            let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let has = |hay: &[u8], needle: &str| {
                hay.split(|b| *b == 0)
                    .any(|part| String::from_utf8_lossy(part).contains(needle))
            };
            if has(&environ, &needle_env) || has(&cmdline, &needle_cmd) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Mount points under the test's directory, as the host sees them.
    pub fn host_mounts(&self) -> Vec<String> {
        mounts_under(&self.dir)
    }

    /// cgroup directories whose name contains `id`.
    pub fn cgroups_of(&self, id: &str) -> Vec<PathBuf> {
        find_cgroups(&[id.to_string()])
    }

    /// Pids of the helpers and of their descendants.
    fn helper_trees(&self) -> BTreeSet<i32> {
        let helpers: Vec<i32> = self
            .helpers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|c| c.id() as i32)
            .collect();
        let mut tree: BTreeSet<i32> = helpers.iter().copied().collect();
        let mut todo = helpers;
        while let Some(pid) = todo.pop() {
            let children =
                fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if tree.insert(child) {
                    todo.push(child);
                }
            }
        }
        tree
    }

    /// Processes of the test that are no helper.
    fn container_processes(&self) -> Vec<i32> {
        let helpers = self.helper_trees();
        self.processes()
            .into_iter()
            .filter(|p| !helpers.contains(p))
            .collect()
    }

    /// Asserts that a failed create of `id` left nothing behind: no state dir, no process,
    /// no mount, no cgroup.
    #[track_caller]
    pub fn assert_nothing_left(&self, id: &str) {
        // A killed init may take a moment to disappear from /proc.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut procs = self.container_processes();
        while !procs.is_empty() && Instant::now() < deadline {
            reap_orphans();
            std::thread::sleep(Duration::from_millis(10));
            procs = self.container_processes();
        }
        let state_dir = self.state_root.join(id);
        assert!(
            !state_dir.exists(),
            "the state directory {} was left behind",
            state_dir.display()
        );
        let described: Vec<String> = procs.iter().map(|p| describe_process(*p)).collect();
        assert!(
            procs.is_empty(),
            "processes were left behind: {described:?}"
        );
        let mounts = self.host_mounts();
        assert!(mounts.is_empty(), "mounts were left behind: {mounts:?}");
        let cgroups = self.cgroups_of(id);
        assert!(cgroups.is_empty(), "cgroups were left behind: {cgroups:?}");
        assert!(
            self.runtime(&["state", id]).code != 0,
            "state {id} still succeeds"
        );
    }

    fn cleanup(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in &ids {
            if self.state_root.join(id).exists() {
                let mut cmd = self.command(&["delete", "--force", id]);
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                if let Ok(child) = try_spawn(&mut cmd) {
                    let _ = wait_child(child, Duration::from_secs(20));
                }
            }
        }
        let helpers = std::mem::take(&mut *self.helpers.lock().unwrap_or_else(|e| e.into_inner()));
        for mut child in helpers {
            kill(child.id() as i32, Signal::KILL);
            let _ = child.wait();
            forget_child(child.id() as i32);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.processes();
            if pids.is_empty() || Instant::now() > deadline {
                if !pids.is_empty() {
                    eprintln!("cleanup: processes survive SIGKILL: {pids:?}");
                }
                break;
            }
            for pid in pids {
                kill(pid, Signal::KILL);
            }
            reap_orphans();
            std::thread::sleep(Duration::from_millis(10));
        }
        reap_orphans();
        unmount_under(&self.dir);
        remove_cgroups(&ids);
        let left = mounts_under(&self.dir);
        if let Some(tmp) = self.tmp.take() {
            if left.is_empty() {
                let _ = tmp.close();
            } else {
                // Never remove a directory something is still mounted under: the mount could
                // be a host directory.
                let kept = tmp.keep();
                eprintln!("cleanup: {} kept, still mounted: {left:?}", kept.display());
            }
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A one-line description of a process for assertion messages.
pub fn describe_process(pid: i32) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    format!("{pid}: {}", cmdline.join(" "))
}

/// Runs a command with piped stdout/stderr and a timeout.
pub fn run_piped(cmd: &mut Command, timeout: Duration) -> Out {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = describe(cmd);
    let child = spawn(cmd);
    match wait_child(child, timeout) {
        Some((status, stdout, stderr)) => Out {
            what,
            code: exit_code(status),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        None => panic!(
            "{what} did not finish within {timeout:?} (or a process it left kept its stdout/stderr open)"
        ),
    }
}

/// Runs a command with stdout/stderr in files and a timeout.
pub fn run_to_files(cmd: &mut Command, io: &IoFiles, timeout: Duration) -> Out {
    let stdout = fs::OpenOptions::new()
        .append(true)
        .open(&io.stdout)
        .unwrap();
    let stderr = fs::OpenOptions::new()
        .append(true)
        .open(&io.stderr)
        .unwrap();
    cmd.stdout(stdout).stderr(stderr);
    let what = describe(cmd);
    let child = spawn(cmd);
    match wait_child(child, timeout) {
        Some((status, _, _)) => Out {
            what,
            code: exit_code(status),
            stdout: io.stdout(),
            stderr: io.stderr(),
        },
        None => panic!(
            "{what} did not finish within {timeout:?}\n  stdout: {:?}\n  stderr: {:?}",
            io.stdout(),
            io.stderr()
        ),
    }
}

fn describe(cmd: &Command) -> String {
    let program = cmd.get_program().to_string_lossy();
    let program = if program == BIN {
        "berth-runtime".into()
    } else {
        program
    };
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("`{program} {}`", args.join(" "))
}

/// Runs a program on the host with piped output. Every child of this test binary must be
/// spawned through the harness: the orphan reaper would otherwise steal its exit status.
pub fn host(program: &str, args: &[&str]) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    run_piped(&mut cmd, COMMAND_TIMEOUT)
}

// ---------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------

/// A container of a test (created or not: the id is cleaned up either way).
pub struct Container<'e> {
    pub env: &'e TestEnv,
    pub id: String,
    /// The stdio files of the command that created it (the container's stdout/stderr).
    pub io: IoFiles,
}

impl Container<'_> {
    pub fn runtime(&self, args: &[&str]) -> Out {
        self.env.runtime(args)
    }

    /// `state ID`, whatever the result.
    pub fn try_state(&self) -> Out {
        self.env.runtime(&["state", &self.id])
    }

    /// `state ID` parsed; fails the test if state fails.
    #[track_caller]
    pub fn state(&self) -> Value {
        let out = self.try_state();
        out.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state printed no JSON ({e}):\n{out}"))
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }

    /// The container process's host pid from `state`.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().expect("state has a pid") as i32
    }

    pub fn start(&self) -> Out {
        self.env.runtime(&["start", &self.id])
    }

    pub fn kill(&self, signal: &str) -> Out {
        self.env.runtime(&["kill", &self.id, signal])
    }

    pub fn delete(&self) -> Out {
        self.env.runtime(&["delete", &self.id])
    }

    pub fn delete_force(&self) -> Out {
        self.env.runtime(&["delete", "--force", &self.id])
    }

    /// Polls `state` until the status is `want`; fails the test after `timeout`.
    #[track_caller]
    pub fn wait_status(&self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            reap_orphans();
            let out = self.try_state();
            if out.success() {
                let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
                last = v["status"].as_str().unwrap_or("").to_string();
                if last == want {
                    return;
                }
            } else {
                last = format!("<state failed: {}>", out.stderr.trim());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "container {} did not become {want} within {timeout:?} (last: {last})\n  stdout: {:?}\n  stderr: {:?}",
            self.id,
            self.io.stdout(),
            self.io.stderr()
        );
    }

    #[track_caller]
    pub fn wait_stopped(&self) {
        self.wait_status("stopped", STATUS_TIMEOUT);
    }

    /// The container's stdout so far.
    pub fn stdout(&self) -> String {
        self.io.stdout()
    }

    pub fn stderr(&self) -> String {
        self.io.stderr()
    }

    /// Waits until the container's stdout contains `text`.
    #[track_caller]
    pub fn wait_output(&self, text: &str, timeout: Duration) {
        wait_until(timeout, || self.stdout().contains(text)).unwrap_or_else(|| {
            panic!(
                "container {} did not print {text:?} within {timeout:?}\n  stdout: {:?}\n  stderr: {:?}",
                self.id,
                self.stdout(),
                self.stderr()
            )
        });
    }

    /// The state directory of the container.
    pub fn state_dir(&self) -> PathBuf {
        self.env.state_root.join(&self.id)
    }
}

/// Polls `cond` until it holds (Some) or `timeout` passes (None).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Some(());
        }
        if Instant::now() >= deadline {
            return None;
        }
        reap_orphans();
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------
// Host inspection and cleanup
// ---------------------------------------------------------------------------------------

/// One line of /proc/<pid>/mountinfo.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    pub root: String,
    pub mount_point: String,
    pub options: String,
    /// The optional fields (shared:N, master:N, unbindable, ...).
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut l = left.split(' ');
            let id = l.next()?.parse().ok()?;
            let parent = l.next()?.parse().ok()?;
            let _dev = l.next()?;
            let root = unescape(l.next()?);
            let mount_point = unescape(l.next()?);
            let options = l.next()?.to_string();
            let optional = l.map(String::from).collect();
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = unescape(r.next().unwrap_or(""));
            let super_options = r.next().unwrap_or("").to_string();
            Some(MountInfo {
                id,
                parent,
                root,
                mount_point,
                options,
                optional,
                fstype,
                source,
                super_options,
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(n);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host's (this process's) mounts.
pub fn host_mountinfo() -> Vec<MountInfo> {
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap())
}

/// Mount points at or under `dir` in this process's mount namespace, in mount order.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    host_mountinfo()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect()
}

/// Lazily unmounts everything under `dir`, most recent first.
pub fn unmount_under(dir: &Path) {
    for _ in 0..5 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts.iter().rev() {
            let mut cmd = Command::new("umount");
            cmd.arg("--lazy").arg(m).stdin(Stdio::null());
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            if let Ok(child) = try_spawn(&mut cmd) {
                let _ = wait_child(child, Duration::from_secs(10));
            }
        }
    }
}

/// cgroup directories under /sys/fs/cgroup/*/ whose name contains one of `ids`.
pub fn find_cgroups(ids: &[String]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if ids.is_empty() {
        return found;
    }
    // From the top: on cgroup v2 a container's cgroup can be a direct child of it.
    walk_cgroups(Path::new("/sys/fs/cgroup"), ids, 0, &mut found);
    found
}

/// `name` contains `id` as a whole word: `berth-test-7-1` must not match a cgroup of
/// `berth-test-7-12`, which belongs to another test running at the same time.
fn names_id(name: &str, id: &str) -> bool {
    name.match_indices(id).any(|(at, _)| {
        !name[at + id.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

fn walk_cgroups(dir: &Path, ids: &[String], depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 12 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if ids.iter().any(|id| names_id(&name, id)) {
            found.push(path.clone());
        }
        walk_cgroups(&path, ids, depth + 1, found);
    }
}

/// Removes the cgroups named after `ids` (and only those), deepest first, after killing
/// their processes and thawing them.
pub fn remove_cgroups(ids: &[String]) {
    let mut dirs = find_cgroups(ids);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        for _ in 0..100 {
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                kill(pid, Signal::KILL);
            }
            let _ = fs::write(dir.join("freezer.state"), "THAWED");
            let _ = fs::write(dir.join("cgroup.freeze"), "0");
            reap_orphans();
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Err(e) = fs::remove_dir(&dir) {
            eprintln!("cleanup: cannot remove cgroup {}: {e}", dir.display());
        }
    }
}

/// The inode text of a namespace link (`net:[4026531833]`).
pub fn ns_link(path: impl AsRef<Path>) -> String {
    fs::read_link(path.as_ref())
        .unwrap_or_else(|e| panic!("readlink {}: {e}", path.as_ref().display()))
        .to_string_lossy()
        .into_owned()
}

/// The first of `candidates` that differs from the host's `current` value: a test that sets
/// something inside a container and checks the host kept its own must not depend on what
/// the host happens to have.
#[track_caller]
pub fn other_than<'a>(current: &str, candidates: &[&'a str]) -> &'a str {
    candidates
        .iter()
        .copied()
        .find(|c| *c != current)
        .unwrap_or_else(|| panic!("no value other than the host's {current:?} in {candidates:?}"))
}

/// Reads a file of the host, trimmed.
pub fn read_trimmed(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("read {}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}

/// The `Name:\tvalue` line of a /proc/<pid>/status text.
pub fn status_field(status: &str, name: &str) -> Option<String> {
    status.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

/// Lines of a file as BufRead, for big files.
pub fn file_lines(path: &Path) -> Vec<String> {
    let Ok(f) = fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f).lines().map_while(Result::ok).collect()
}
pub mod cgroups;
pub mod exec;
pub mod security;
pub mod test_user;

/// Changes the owner of everything under `dir` (not following symlinks).
pub fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(dir).unwrap().is_dir() {
        for entry in fs::read_dir(dir).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

impl Bundle {
    /// A new user namespace with container ids 0-65535 mapped to `host`..; the rootfs is
    /// given to the mapped root.
    pub fn map_user_namespace(&mut self, host: u32) {
        chown_tree(&self.rootfs, host, host);
        self.namespace("user", None);
        self.linux()["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": host, "size": 65536}]);
        self.linux()["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": host, "size": 65536}]);
    }
}
