//! Helpers of the attack tests (tests/security.rs): a private copy of the runtime binary that
//! an attack may hit, tiny static probe programs (one system call, the result as the exit
//! code), a console-socket receiver, a guard of the host's core_pattern, and a thread that
//! swaps a directory and a symlink in a tight loop.

use std::fs;
use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------
// A copy of the runtime for attacks on the runtime binary
// ---------------------------------------------------------------------------------------

/// A private copy of berth-runtime, used as the runtime of a test that attacks the runtime
/// binary (CVE-2019-5736): the binary under test is never exposed to the container.
pub struct RuntimeCopy {
    pub path: PathBuf,
    original: Vec<u8>,
}

impl RuntimeCopy {
    /// Copies the runtime into `<test dir>/runtime-under-attack/berth-runtime-under-attack`.
    pub fn new(env: &TestEnv) -> Self {
        let dir = env.new_dir("runtime-under-attack");
        let path = dir.join("berth-runtime-under-attack");
        fs::copy(BIN, &path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let original = fs::read(&path).unwrap();
        RuntimeCopy { path, original }
    }

    /// The copy with `--root` of the test and `args`.
    pub fn command(&self, env: &TestEnv, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(env.state_root()).args(args);
        cmd.env(RUNTIME_ENV_MARKER, "leaked");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs the copy with piped output.
    pub fn run(&self, env: &TestEnv, args: &[&str]) -> Out {
        run_piped(&mut self.command(env, args), COMMAND_TIMEOUT)
    }

    /// `create` through the copy, the container's stdio in files.
    pub fn create<'e>(
        &self,
        env: &'e TestEnv,
        bundle: &Bundle,
        extra: &[&str],
    ) -> (Out, Container<'e>) {
        bundle.save();
        let id = env.new_id();
        let io = env.io_files();
        let mut args = vec!["create", "--bundle", bundle.dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = run_to_files(&mut self.command(env, &args), &io, COMMAND_TIMEOUT);
        (out, Container { env, id, io })
    }

    /// Whether the copy still has exactly its original bytes; otherwise a description.
    pub fn changed(&self) -> Option<String> {
        let now = fs::read(&self.path).unwrap_or_default();
        if now == self.original {
            return None;
        }
        let tail_start = now.len().saturating_sub(64);
        Some(format!(
            "{} changed: {} bytes before, {} now (fnv {:016x} -> {:016x}); last bytes now: {:?}",
            self.path.display(),
            self.original.len(),
            now.len(),
            fnv1a(&self.original),
            fnv1a(&now),
            String::from_utf8_lossy(&now[tail_start..])
        ))
    }

    /// A 64-bit FNV-1a digest of the original bytes (for messages).
    pub fn digest(&self) -> u64 {
        fnv1a(&self.original)
    }
}

/// FNV-1a over `data`: enough to tell two versions of a file apart in a message.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------------------
// Probe programs
// ---------------------------------------------------------------------------------------

/// An argument of a probed system call: a number, or a string placed in the program.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(i64),
    Str(&'a str),
}

/// What the probe's exit code reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The errno of a failure (1 = EPERM), 0 on success.
    Errno,
    /// The return value itself (its low 8 bits), e.g. geteuid.
    Value,
}

/// System call numbers the tests probe (x86_64).
pub mod nr {
    pub const MOUNT: u32 = 165;
    pub const GETEUID: u32 = 107;
    pub const UNSHARE: u32 = 272;
    pub const KEYCTL: u32 = 250;
    pub const OPENAT: u32 = 257;
    pub const MKNODAT: u32 = 259;
}

pub const AT_FDCWD: i64 = -100;
pub const CLONE_NEWNS: i64 = 0x0002_0000;
pub const CLONE_NEWUSER: i64 = 0x1000_0000;
pub const KEYCTL_GET_KEYRING_ID: i64 = 0;
pub const KEY_SPEC_SESSION_KEYRING: i64 = -3;
pub const S_IFBLK: i64 = 0o060000;

/// A complete static x86-64 ELF program that makes one system call and exits with its
/// result (see [`Report`]); `None` on other architectures (the tests then skip, saying so).
/// Up to five arguments, strings are NUL-terminated copies inside the program.
pub fn probe_program(nr: u32, args: &[Arg<'_>], report: Report) -> Option<Vec<u8>> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    assert!(args.len() <= 5, "at most five arguments");
    const BASE: u64 = 0x40_0000;
    const HEADERS: usize = 64 + 56;
    // movabs rdi, rsi, rdx, r10, r8 (10 bytes each), mov eax (5), syscall (2), the report
    // (13 or 3), mov eax 231 (5), syscall (2).
    let code_len = 5 * 10 + 5 + 2 + if report == Report::Errno { 13 } else { 3 } + 5 + 2;
    let mut strings = Vec::new();
    let mut values = [0u64; 5];
    for (i, arg) in args.iter().enumerate() {
        values[i] = match arg {
            Arg::Int(v) => *v as u64,
            Arg::Str(s) => {
                let addr = BASE + (HEADERS + code_len + strings.len()) as u64;
                strings.extend_from_slice(s.as_bytes());
                strings.push(0);
                addr
            }
        };
    }
    let mut code = Vec::with_capacity(code_len);
    for (prefix, value) in [
        [0x48, 0xbf],
        [0x48, 0xbe],
        [0x48, 0xba],
        [0x49, 0xba],
        [0x49, 0xb8],
    ]
    .iter()
    .zip(values)
    {
        code.extend_from_slice(prefix);
        code.extend_from_slice(&value.to_le_bytes());
    }
    code.push(0xb8); // mov eax, nr
    code.extend_from_slice(&nr.to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    match report {
        Report::Errno => code.extend_from_slice(&[
            0x31, 0xff, // xor edi, edi
            0x48, 0x85, 0xc0, // test rax, rax
            0x79, 0x06, // jns +6
            0x48, 0x89, 0xc7, // mov rdi, rax
            0x48, 0xf7, 0xdf, // neg rdi
        ]),
        Report::Value => code.extend_from_slice(&[0x48, 0x89, 0xc7]), // mov rdi, rax
    }
    code.extend_from_slice(&[0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05]); // exit_group
    assert_eq!(code.len(), code_len);
    code.extend_from_slice(&strings);
    Some(elf64(&code, 62, BASE))
}

/// A static ELF64 executable: one read+execute PT_LOAD segment mapping the whole file.
fn elf64(code: &[u8], machine: u16, base: u64) -> Vec<u8> {
    let total = (64 + 56 + code.len()) as u64;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(base + 64 + 56).to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    out.extend_from_slice(&5u32.to_le_bytes()); // R | X
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&0x1000u64.to_le_bytes());
    out.extend_from_slice(code);
    out
}

/// Writes a probe program into the rootfs at `name` (mode `mode`, owned by root). Returns
/// false (after saying why, see [`super::skip`]) where there is no probe for this
/// architecture.
#[track_caller]
pub fn install_probe(
    rootfs: &Path,
    name: &str,
    mode: u32,
    nr: u32,
    args: &[Arg<'_>],
    report: Report,
) -> bool {
    let Some(program) = probe_program(nr, args, report) else {
        super::skip("the probe programs exist for x86_64 only");
        return false;
    };
    let path = rootfs.join(name.trim_start_matches('/'));
    fs::write(&path, program).unwrap();
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    true
}

// ---------------------------------------------------------------------------------------
// Configuration pieces
// ---------------------------------------------------------------------------------------

/// Docker's default capabilities (what `docker run` gives a container).
pub const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Sets every capability set but ambient to `caps` (ambient empty).
pub fn set_all_caps(bundle: &mut Bundle, caps: &[&str]) {
    bundle.process()["capabilities"] = json!({
        "bounding": caps,
        "effective": caps,
        "permitted": caps,
        "inheritable": caps,
        "ambient": [],
    });
}

/// Docker's default capabilities plus `extra`, and no no_new_privs (docker's default).
pub fn docker_like(bundle: &mut Bundle, extra: &[&str]) {
    let mut caps: Vec<&str> = DOCKER_CAPS.to_vec();
    caps.extend_from_slice(extra);
    set_all_caps(bundle, &caps);
    bundle.process()["noNewPrivileges"] = json!(false);
}

/// Drops every mount at or below `destination` from the config.
pub fn without_mounts_under(bundle: &mut Bundle, destination: &str) {
    let prefix = format!("{destination}/");
    bundle.config["mounts"].as_array_mut().unwrap().retain(|m| {
        let d = m["destination"].as_str().unwrap_or("");
        d != destination && !d.starts_with(&prefix)
    });
}

/// Drops the mount at exactly `destination`.
pub fn without_mount(bundle: &mut Bundle, destination: &str) {
    bundle.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != destination);
}

/// A createContainer hook that copies the container's mountinfo (as the init sees it after
/// all mounts, before masking and pivot_root) to `out`.
pub fn mountinfo_hook(out: &Path) -> Value {
    json!([{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat /proc/self/mountinfo > '{}'", out.display())],
    }])
}

/// The docker default seccomp profile of tests/data.
pub fn docker_seccomp_profile() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/docker-default-seccomp.json");
    serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// The host's core_pattern
// ---------------------------------------------------------------------------------------

pub const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// Serializes the tests that could change the host's core_pattern, remembers its value
/// (once per test binary, before any of them ran) and puts it back on drop if an attack
/// changed it.
pub struct CorePatternGuard {
    _lock: MutexGuard<'static, ()>,
}

fn core_pattern_original() -> &'static String {
    static ORIGINAL: OnceLock<String> = OnceLock::new();
    ORIGINAL.get_or_init(|| fs::read_to_string(CORE_PATTERN).unwrap())
}

impl CorePatternGuard {
    pub fn new() -> Self {
        static LOCK: Mutex<()> = Mutex::new(());
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        core_pattern_original();
        CorePatternGuard { _lock: lock }
    }

    /// The host's core_pattern now, when it differs from before.
    pub fn changed(&self) -> Option<String> {
        let now = fs::read_to_string(CORE_PATTERN).unwrap();
        (now != *core_pattern_original()).then_some(now)
    }
}

impl Drop for CorePatternGuard {
    fn drop(&mut self) {
        if self.changed().is_some() {
            let original = core_pattern_original();
            eprintln!("restoring the host's core_pattern to {original:?}");
            let _ = fs::write(CORE_PATTERN, original.trim_end_matches('\n'));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Console socket
// ---------------------------------------------------------------------------------------

/// A console socket (runc's protocol: one connection, the pty master as SCM_RIGHTS) and a
/// thread that reads everything the container writes to its terminal.
pub struct ConsoleReceiver {
    pub path: PathBuf,
    result: mpsc::Receiver<ConsoleOutcome>,
    stop: Arc<AtomicBool>,
}

/// What the receiver got.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOutcome {
    /// A pty master arrived.
    pub got_master: bool,
    /// Everything read from it until the terminal closed ('\r' removed).
    pub output: String,
}

impl ConsoleReceiver {
    pub fn new(env: &TestEnv) -> Self {
        let path = env.new_dir("console").join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread_stop = stop.clone();
        std::thread::spawn(move || {
            let _ = tx.send(receive(listener, &thread_stop));
        });
        ConsoleReceiver {
            path,
            result: rx,
            stop,
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Waits until the terminal is closed (all its users exited) or `timeout` passes.
    pub fn finish(self, timeout: Duration) -> ConsoleOutcome {
        let outcome = self.result.recv_timeout(timeout);
        self.stop.store(true, Ordering::Relaxed);
        outcome.unwrap_or_else(|_| panic!("the console receiver did not finish in {timeout:?}"))
    }
}

fn receive(listener: UnixListener, stop: &AtomicBool) -> ConsoleOutcome {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut outcome = ConsoleOutcome::default();
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return outcome,
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 256];
    let received = rustix::net::recvmsg(
        &stream,
        &mut [IoSliceMut::new(&mut buf)],
        &mut ancillary,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    );
    if received.is_err() {
        return outcome;
    }
    let mut master: Option<OwnedFd> = None;
    for message in ancillary.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                master.get_or_insert(fd);
            }
        }
    }
    let Some(master) = master else {
        return outcome;
    };
    outcome.got_master = true;
    let mut file = fs::File::from(master);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the last user of the terminal closes it (EIO) or the stream ends.
    while let Ok(n) = file.read(&mut chunk) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    outcome.output = String::from_utf8_lossy(&bytes).replace('\r', "");
    outcome
}

// ---------------------------------------------------------------------------------------
// The symlink-exchange race
// ---------------------------------------------------------------------------------------

/// Exchanges two paths (a directory and a symlink) with renameat2(RENAME_EXCHANGE) in a
/// tight loop until dropped or stopped.
pub struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Swapper {
    pub fn start(a: PathBuf, b: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), swaps.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &a,
                    rustix::fs::CWD,
                    &b,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .is_ok()
                {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Swapper {
            stop,
            swaps,
            handle: Some(handle),
        }
    }

    /// Stops the loop; returns how many exchanges it made.
    pub fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.swaps.load(Ordering::Relaxed)
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop();
    }
}
