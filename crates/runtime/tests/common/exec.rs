//! Helpers of the exec, terminal and socket-activation tests: long-running containers to
//! exec into, runtime commands left running in the background (to signal them or read what
//! they print while they run), a pty pair to stand for the caller's terminal, and a console
//! socket that receives a pty master.
//!
//! The pty and poll helpers use rustix's `pty`, `termios` and `event` modules: the runtime
//! crate's own rustix dependency does not name those features, but berth-container's does,
//! and cargo builds one rustix with the union of the features.

use std::fs;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal};
use serde_json::Value;

use super::*;

// ---------------------------------------------------------------------------------------
// Containers to exec into
// ---------------------------------------------------------------------------------------

/// The process of a container that stays up until it is killed.
pub const SLEEP_FOREVER: &[&str] = &["sleep", "1000000"];

/// Creates and starts a container whose process sleeps, after `edit` changed its bundle.
#[track_caller]
pub fn sleeper_with(env: &TestEnv, edit: impl FnOnce(&mut Bundle)) -> Container<'_> {
    let mut bundle = env.bundle();
    bundle.args(SLEEP_FOREVER);
    edit(&mut bundle);
    let c = env.create_started(&bundle);
    c.wait_status("running", STATUS_TIMEOUT);
    c
}

/// A started container whose process sleeps.
#[track_caller]
pub fn sleeper(env: &TestEnv) -> Container<'_> {
    sleeper_with(env, |_| {})
}

/// `exec [flags] ID command...` with piped output (the exec'd process must not leave
/// anything running that keeps the pipes open).
pub fn exec(c: &Container<'_>, flags: &[&str], command: &[&str]) -> Out {
    c.env.runtime(&exec_args(c, flags, command))
}

/// `exec [flags] ID command...` with stdout and stderr in files: for a detached process, or
/// one that leaves a child behind.
pub fn exec_to_files(c: &Container<'_>, flags: &[&str], command: &[&str]) -> (Out, IoFiles) {
    c.env
        .runtime_to_files(&exec_args(c, flags, command), COMMAND_TIMEOUT)
}

fn exec_args<'a>(c: &'a Container<'_>, flags: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&c.id);
    args.extend_from_slice(command);
    args
}

/// `exec --detach --pid-file F [flags] ID command...`: the result, and the pid file's exact
/// text (empty if it was not written).
pub fn exec_detached(c: &Container<'_>, flags: &[&str], command: &[&str]) -> (Out, String) {
    let pid_file = c.env.new_dir("exec-pid").join("pid");
    let pid_path = pid_file.to_str().unwrap();
    let mut all = vec!["--detach", "--pid-file", pid_path];
    all.extend_from_slice(flags);
    let (out, _) = exec_to_files(c, &all, command);
    let text = fs::read_to_string(&pid_file).unwrap_or_default();
    (out, text)
}

/// Starts `command` detached in the container and returns its host pid.
#[track_caller]
pub fn exec_detached_pid(c: &Container<'_>, flags: &[&str], command: &[&str]) -> i32 {
    let (out, text) = exec_detached(c, flags, command);
    out.ok();
    text.parse()
        .unwrap_or_else(|_| panic!("the pid file holds {text:?}, not a pid\n{out}"))
}

/// The target of every /proc/<pid>/ns/* link, by name.
pub fn namespaces_of(pid: i32) -> Vec<(String, String)> {
    let dir = format!("/proc/{pid}/ns");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let link = ns_link(format!("{dir}/{n}"));
            (n, link)
        })
        .collect()
}

/// The pids of a /proc/<pid>/status `NSpid:` line, outermost first.
pub fn ns_pids(pid: i32) -> Vec<i32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status_field(&status, "NSpid")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The descriptors a process has open, sorted.
pub fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort();
    fds
}

/// A capability set as a bit mask, from the numbers of linux/capability.h.
pub fn cap_mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1 << c)
}

pub const CAP_CHOWN: u32 = 0;
pub const CAP_KILL: u32 = 5;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_ADMIN: u32 = 21;

/// The CapBnd, CapEff, CapPrm, CapInh and CapAmb masks of a /proc/<pid>/status text.
#[track_caller]
pub fn cap_sets(status: &str) -> [u64; 5] {
    ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"].map(|field| {
        let hex = status_field(status, field).unwrap_or_else(|| panic!("no {field}:\n{status}"));
        u64::from_str_radix(&hex, 16).unwrap()
    })
}

/// The capabilities object of a process: `effective` also as permitted.
pub fn caps_json(bounding: &[&str], effective: &[&str], inheritable: &[&str]) -> Value {
    serde_json::json!({
        "bounding": bounding,
        "effective": effective,
        "permitted": effective,
        "inheritable": inheritable,
        "ambient": inheritable,
    })
}

/// The runtime (`--root` and `args`) started through `sh -c 'exec 3<&0 </dev/null; VARS exec
/// "$@"'` with `fd3` as the shell's stdin: the runtime gets `fd3` as its fd 3 and /dev/null
/// as its stdin. `vars` are assignments for the runtime's environment, where `$$` is the
/// runtime's own pid (the shell execs it).
pub fn runtime_with_fd3(env: &TestEnv, fd3: Stdio, vars: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("exec 3<&0 </dev/null; {vars} exec \"$@\""))
        .arg("sh")
        .arg(BIN)
        .arg("--root")
        .arg(env.state_root())
        .args(args)
        .env(RUNTIME_ENV_MARKER, "leaked")
        .stdin(fd3);
    cmd
}

// ---------------------------------------------------------------------------------------
// Commands running in the background
// ---------------------------------------------------------------------------------------

/// A command left running: its stdout and stderr (when piped) are collected by threads, so
/// a test can wait for a line while it runs, signal it, then wait for its exit.
pub struct Background {
    pub pid: i32,
    pub what: String,
    done: mpsc::Receiver<Option<ExitStatus>>,
    /// The exit, once received from `done`.
    status: std::cell::Cell<Option<Option<ExitStatus>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Spawns `cmd` as it is set up (pipe its stdout/stderr to collect them).
    pub fn spawn(cmd: &mut Command) -> Self {
        let what = format!("{cmd:?}").replace(BIN, "berth-runtime");
        let mut child = spawn(cmd);
        let pid = child.id() as i32;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(collect(pipe, stdout.clone()));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, stderr.clone()));
        }
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            // Only the exit: the pipes were taken.
            let status = wait_child(child, COMMAND_TIMEOUT * 2).map(|(s, _, _)| s);
            let _ = tx.send(status);
        });
        Background {
            pid,
            what,
            done,
            status: std::cell::Cell::new(None),
            stdout,
            stderr,
            readers,
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stdout contains `text`.
    #[track_caller]
    pub fn wait_stdout(&self, text: &str, timeout: Duration) {
        if wait_until(timeout, || self.stdout().contains(text)).is_none() {
            panic!(
                "{} did not print {text:?} within {timeout:?}\n  stdout: {:?}\n  stderr: {:?}",
                self.what,
                self.stdout(),
                self.stderr()
            );
        }
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.pid).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits for the exit (the command is killed after `timeout`), then for the end of its
    /// output.
    #[track_caller]
    pub fn wait(self, timeout: Duration) -> Out {
        let received = match self.status.take() {
            Some(status) => Ok(status),
            None => self.done.recv_timeout(timeout),
        };
        let status = match received {
            Ok(Some(status)) => status,
            _ => {
                let _ =
                    rustix::process::kill_process(Pid::from_raw(self.pid).unwrap(), Signal::KILL);
                panic!(
                    "{} did not exit within {timeout:?}\n  stdout: {:?}\n  stderr: {:?}",
                    self.what,
                    self.stdout(),
                    self.stderr()
                );
            }
        };
        for reader in self.readers {
            let _ = reader.join();
        }
        Out {
            what: self.what,
            code: exit_code(status),
            stdout: String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned(),
        }
    }

    /// Its exit status if it exits within `within` (then [`Background::wait`] returns at
    /// once).
    pub fn exited(&self, within: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.status.get() {
            return status;
        }
        let status = self.done.recv_timeout(within).ok()?;
        self.status.set(Some(status));
        status
    }
}

fn collect(
    mut pipe: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

// ---------------------------------------------------------------------------------------
// Reading a descriptor with timeouts
// ---------------------------------------------------------------------------------------

/// Waits up to `timeout` for `fd` to be readable.
pub fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    match poll(&mut fds, Some(&ts)) {
        Ok(n) => n > 0,
        Err(rustix::io::Errno::INTR) => false,
        Err(e) => panic!("poll: {e}"),
    }
}

/// What was read from a pty master or a socket, with `\r` dropped.
pub struct Transcript {
    bytes: Vec<u8>,
    closed: bool,
}

impl Default for Transcript {
    fn default() -> Self {
        Self::new()
    }
}

impl Transcript {
    pub fn new() -> Self {
        Transcript {
            bytes: Vec::new(),
            closed: false,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).replace('\r', "")
    }

    /// Reads what `fd` has within `timeout`; false once it is closed (EOF, or EIO from a
    /// master whose peer is closed everywhere).
    pub fn read_some(&mut self, fd: BorrowedFd<'_>, timeout: Duration) -> bool {
        if self.closed {
            return false;
        }
        if !readable(fd, timeout) {
            return true;
        }
        let mut buf = [0u8; 4096];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => self.closed = true,
            Ok(n) => self.bytes.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => self.closed = true,
        }
        !self.closed
    }

    /// Reads until the text contains `needle`; the error is the text so far.
    pub fn read_until(
        &mut self,
        fd: BorrowedFd<'_>,
        needle: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while !self.text().contains(needle) {
            let now = Instant::now();
            if now >= deadline || self.closed {
                return Err(self.text());
            }
            self.read_some(fd, (deadline - now).min(Duration::from_millis(100)));
        }
        Ok(())
    }

    /// Reads whatever arrives until `quiet` passes without data.
    pub fn drain(&mut self, fd: BorrowedFd<'_>, quiet: Duration) {
        let before = |t: &Self| t.bytes.len();
        loop {
            let n = before(self);
            if !self.read_some(fd, quiet) || before(self) == n {
                return;
            }
        }
    }
}

/// Writes all of `data`.
pub fn write_all(fd: BorrowedFd<'_>, data: &[u8]) {
    let mut done = 0;
    while done < data.len() {
        match rustix::io::write(fd, &data[done..]) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// A pty for the caller's terminal
// ---------------------------------------------------------------------------------------

/// A pty pair of the host's devpts: the slave is what the runtime gets as its terminal; the
/// test types into and reads from the master. The test keeps its own slave descriptor, so
/// the master never sees a hang-up while a runtime comes and goes.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Pty {
    /// A new pair with a window of `rows` x `cols`.
    pub fn open(rows: u16, cols: u16) -> Self {
        use rustix::pty::{OpenptFlags, ioctl_tiocgptpeer, openpt, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open /dev/ptmx");
        unlockpt(&master).expect("unlockpt");
        let slave = ioctl_tiocgptpeer(
            &master,
            OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
        )
        .expect("TIOCGPTPEER");
        let pty = Pty { master, slave };
        pty.set_size(rows, cols);
        pty
    }

    /// TIOCSWINSZ on the pair (the window the slave's reader sees).
    pub fn set_size(&self, rows: u16, cols: u16) {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.slave, size).expect("TIOCSWINSZ");
    }

    /// The slave's termios, as text (rustix's Termios has no PartialEq).
    pub fn termios(&self) -> String {
        format!(
            "{:?}",
            rustix::termios::tcgetattr(&self.slave).expect("tcgetattr")
        )
    }

    /// Whether the slave is in canonical (line) mode.
    pub fn canonical(&self) -> bool {
        rustix::termios::tcgetattr(&self.slave)
            .expect("tcgetattr")
            .local_modes
            .contains(rustix::termios::LocalModes::ICANON)
    }

    /// A copy of the slave for a child's stdio.
    pub fn stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().unwrap())
    }

    /// Sets `cmd`'s stdin, stdout and stderr to the slave.
    pub fn attach(&self, cmd: &mut Command) {
        cmd.stdin(self.stdio())
            .stdout(self.stdio())
            .stderr(self.stdio());
    }

    pub fn type_text(&self, text: &str) {
        write_all(self.master.as_fd(), text.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// A console socket
// ---------------------------------------------------------------------------------------

/// A listening unix socket for `--console-socket`.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: OwnedFd,
}

/// What arrived on a console socket: the payload (the pty's name) and the descriptor.
pub struct ReceivedConsole {
    pub name: String,
    pub master: OwnedFd,
}

impl ConsoleSocket {
    pub fn new(env: &TestEnv) -> Self {
        let path = env.new_dir("console").join("sock");
        ConsoleSocket {
            listener: listen_unix(&path),
            path,
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Accepts one connection and receives one descriptor from it.
    #[track_caller]
    pub fn receive(&self, timeout: Duration) -> ReceivedConsole {
        use rustix::net::{
            RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags, accept_with, recvmsg,
        };
        assert!(
            readable(self.listener.as_fd(), timeout),
            "nobody connected to the console socket within {timeout:?}"
        );
        let conn = accept_with(&self.listener, SocketFlags::CLOEXEC).expect("accept");
        assert!(
            readable(conn.as_fd(), timeout),
            "nothing arrived on the console socket within {timeout:?}"
        );
        let mut buf = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let msg = recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut ancillary,
            RecvFlags::CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        let mut fds: Vec<OwnedFd> = Vec::new();
        for message in ancillary.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        assert_eq!(fds.len(), 1, "the console socket carried {} fds", fds.len());
        ReceivedConsole {
            name: String::from_utf8_lossy(&buf[..msg.bytes]).into_owned(),
            master: fds.pop().unwrap(),
        }
    }
}

/// A unix stream socket listening at `path`.
pub fn listen_unix(path: &Path) -> OwnedFd {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, bind, listen};
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socket");
    bind(&socket, &SocketAddrUnix::new(path).unwrap()).expect("bind");
    listen(&socket, 8).expect("listen");
    socket
}

/// The inode of a descriptor (what /proc/<pid>/fd/N shows as socket:[INODE]).
pub fn inode_of(fd: BorrowedFd<'_>) -> u64 {
    rustix::fs::fstat(fd).expect("fstat").st_ino
}

/// The major device number of a character device's st_rdev.
pub fn rdev_major(rdev: u64) -> u64 {
    rustix::fs::major(rdev) as u64
}
