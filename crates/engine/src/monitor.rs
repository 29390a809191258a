//! The monitor: one per running container, the `berth` process itself forked twice (the
//! second time after setsid, so it belongs to no terminal and outlives the command that
//! started it; no exec, no daemon). It creates the container in-process, so the init is its
//! child and it waits for it (pidfd); it owns the container's stdio (pipes, or the pty
//! master it receives over a console socket), writes the log, serves attach on a unix
//! socket, and at the exit records the exit code and an OOM kill, deletes the runtime state,
//! unmounts the root filesystem, runs `--rm`, and restarts as the policy says (with
//! docker's doubling backoff). Healthchecks run from here too ([`crate::monitor::health`]).
//!
//! When no container runs, no monitor runs. A monitor killed with SIGKILL loses only the
//! exit code: see [`crate::status::settle_lost`].

mod footprint;
mod health;

pub use health::config_of as health_config;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_container::ops::{self, CreateOptions};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::{Mode, OFlags};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::Engine;
use crate::attach::{self, ExitInfo, FrameReader};
use crate::error::{Error, Result, start_exit_code};
use crate::events::Event;
use crate::logfile::{self, LineBuffer};
use crate::loopback_relay::Relay;
use crate::record::ContainerRecord;
use crate::sys;

/// Forks the monitor of container `id` and returns our end of its first attach
/// connection (it gets STARTED or ERROR, then the output and the EXIT). The caller holds
/// the container's start lock so no two monitors start at once.
pub fn spawn(engine: &Engine, id: &str, console_size: Option<(u16, u16)>) -> Result<OwnedFd> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    // SAFETY: the berth command is single-threaded.
    match unsafe { sys::fork() }.map_err(|e| Error::sys("fork the monitor", e))? {
        sys::Forked::Child => {
            drop(ours);
            let _ = rustix::process::setsid();
            // SAFETY: still single-threaded (we are a fresh fork of it).
            match unsafe { sys::fork() } {
                Ok(sys::Forked::Child) => {
                    let code = monitor_main(engine, id, theirs, console_size);
                    sys::exit_now(code)
                }
                _ => sys::exit_now(0),
            }
        }
        sys::Forked::Parent(pid) => {
            drop(theirs);
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            }
            Ok(ours)
        }
    }
}

/// The monitor process. Never returns to the command's code.
fn monitor_main(
    engine: &Engine,
    id: &str,
    first: OwnedFd,
    console_size: Option<(u16, u16)>,
) -> i32 {
    // Nothing of the command stays open here: its stdio would keep a pipe of whoever ran
    // `berth` open for the container's life.
    let devnull = match rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
    {
        Ok(fd) => fd,
        Err(_) => return 1,
    };
    for target in 0..3 {
        let _ = sys::dup_onto(devnull.as_fd(), target);
    }
    sys::close_fds_except(&[first.as_raw_fd(), devnull.as_raw_fd()]);
    // Nor its working directory (it would keep a mount busy).
    let _ = std::env::set_current_dir("/");
    // A stray SIGTERM or SIGHUP must not kill the monitor and lose the exit code. Caught
    // (by a handler that does nothing), not blocked: a blocked mask would be inherited by
    // the container's processes through exec.
    let _ = sys::catch_all_signals();
    // Without a pid namespace the container's orphans become ours, not init's.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let mut monitor = match Monitor::new(engine, id, first, devnull) {
        Ok(m) => m,
        Err(_) => return 1,
    };
    monitor.console_size = console_size;
    monitor.run();
    0
}

struct Client {
    fd: OwnedFd,
    reader: FrameReader,
    /// The connection of the command that started the container: its stdin EOF closes the
    /// container's stdin (docker's StdinOnce).
    first: bool,
    /// A write to it failed: dropped at the end of the poll round, not at once, since the
    /// round holds the clients' indices (dropping it mid-round made the next index point
    /// past the end, and the monitor panicked: the log stopped and the exit was lost).
    gone: bool,
}

/// A started container's process and stdio.
struct Running {
    pid: i32,
    pidfd: OwnedFd,
    cgroup: berth_container::cgroup::ContainerCgroup,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// The pty master (terminal containers): output and input both.
    master: Option<OwnedFd>,
    /// Where client input goes: the stdin pipe, or the master (a dup).
    stdin: Option<OwnedFd>,
    stdin_pending: Vec<u8>,
    out_lines: LineBuffer,
    err_lines: LineBuffer,
    started: Instant,
    /// Serves the container's ports on `[::1]` while it runs (killed when dropped).
    _relay: Option<Relay>,
}

struct Monitor {
    engine: Engine,
    id: String,
    name: String,
    dir: PathBuf,
    log: logfile::Writer,
    listener: Option<OwnedFd>,
    clients: Vec<Client>,
    devnull: OwnedFd,
    /// The terminal size of whoever started the container (the first start only: a
    /// restart gets the size clients send).
    console_size: Option<(u16, u16)>,
    /// What the last start had to warn about (sent with STARTED or ERROR).
    warnings: Vec<String>,
}

impl Monitor {
    fn new(engine: &Engine, id: &str, first: OwnedFd, devnull: OwnedFd) -> Result<Monitor> {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let start_time = berth_container::state::proc_stat(me)
            .map(|s| s.start_time)
            .unwrap_or(0);
        let record = engine.records.update(id, |r| {
            r.state.monitor_pid = me;
            r.state.monitor_start_time = start_time;
            r.clone()
        })?;
        let dir = engine.container_dir(id);
        let log = logfile::Writer::open(logfile::path(&dir, id), record.config.log.clone())
            .map_err(|e| Error::path("open the log", logfile::path(&dir, id), e))?;
        let listener = listen(&engine.run_dir(id)).ok();
        Ok(Monitor {
            engine: engine.clone(),
            id: id.to_string(),
            name: record.name.clone(),
            dir,
            log,
            listener,
            clients: vec![Client {
                fd: first,
                reader: FrameReader::default(),
                first: true,
                gone: false,
            }],
            devnull,
            console_size: None,
            warnings: Vec::new(),
        })
    }

    fn broadcast(&mut self, kind: u8, payload: &[u8]) {
        for c in self.clients.iter_mut().filter(|c| !c.gone) {
            c.gone = attach::write_frame(c.fd.as_fd(), kind, payload).is_err();
        }
    }

    /// Start, supervise, record, restart or finish, until the container is done.
    fn run(&mut self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let running = match self.start() {
                Ok(r) => r,
                Err(e) => {
                    self.start_failed(&e);
                    return;
                }
            };
            let warnings = serde_json::to_vec(&self.warnings).expect("strings serialize");
            self.broadcast(attach::STARTED, &warnings);
            footprint::shrink();
            let (code, running) = self.supervise(running);
            let ran_for = running.started.elapsed();
            let (info, restart, record) = self.finish(running, code);
            // docker: a container that ran 10 s resets the backoff.
            if ran_for > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            // --rm: the container is gone for everyone before the exit is told; only the
            // deletion of its directory tree (the overlay's upper and work dirs, the log)
            // waits until the client has its exit code.
            let mut removed_tree = None;
            if !restart && let Some(record) = record.filter(|r| r.config.auto_remove) {
                removed_tree = crate::ops::remove_record_deferred(&self.engine, &record);
                crate::volume::remove_anonymous(&self.engine, &record);
            }
            let payload = serde_json::to_vec(&info).expect("exit info serializes");
            self.broadcast(attach::EXIT, &payload);
            self.clients.clear();
            if let Some(tree) = removed_tree {
                let _ = std::fs::remove_dir_all(tree);
            }
            if !restart {
                let _ = std::fs::remove_dir_all(self.engine.run_dir(&self.id));
                return;
            }
            if !self.wait_backoff(backoff) {
                return;
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    /// Sleeps before a restart, serving attach connections; false when a user stopped
    /// (or removed) the container meanwhile.
    fn wait_backoff(&mut self, backoff: Duration) -> bool {
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            self.accept_clients();
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now().min(until)));
            match self.engine.records.load(&self.id) {
                Ok(r) if !r.state.stopped_by_user => {}
                Ok(_) => {
                    let _ = self.engine.records.update(&self.id, |r| {
                        r.state.restarting = false;
                        r.state.monitor_pid = 0;
                    });
                    let _ = std::fs::remove_dir_all(self.engine.run_dir(&self.id));
                    return false;
                }
                Err(_) => return false,
            }
        }
        true
    }

    fn accept_clients(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok(fd) = rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
            self.clients.push(Client {
                fd,
                reader: FrameReader::default(),
                first: false,
                gone: false,
            });
        }
    }

    fn start_failed(&mut self, e: &Error) {
        let message = e.to_string();
        let code = match e {
            Error::Start { exit_code, .. } => *exit_code,
            _ => 125,
        };
        cleanup_runtime_by_id(&self.engine, &self.id, &self.dir);
        let auto_remove = self
            .engine
            .records
            .update(&self.id, |r| {
                r.state.error = message.clone();
                r.state.exit_code = Some(i32::from(code));
                r.state.pid = 0;
                r.state.monitor_pid = 0;
                r.state.restarting = false;
                r.state.rootfs_mounted = false;
                if r.state.started_at.is_some() {
                    r.state.finished_at = Some(crate::time::now());
                }
                r.config.auto_remove
            })
            .unwrap_or(false);
        if auto_remove && let Ok(record) = self.engine.records.load(&self.id) {
            crate::ops::remove_record(&self.engine, &record);
            crate::volume::remove_anonymous(&self.engine, &record);
        }
        let payload = serde_json::to_vec(
            &serde_json::json!({"message": message, "exit_code": code, "warnings": self.warnings}),
        )
        .expect("serializes");
        self.broadcast(attach::ERROR, &payload);
        let _ = std::fs::remove_dir_all(self.engine.run_dir(&self.id));
    }

    /// Sets the container up and starts its process.
    fn start(&mut self) -> Result<Running> {
        self.warnings.clear();
        let record = self.engine.records.load(&self.id)?;
        let rootfs = match &record.config.rootfs {
            Some(dir) => dir.clone(),
            None => {
                // Recorded as mounted with the start below (one record write less): a
                // monitor lost before that is settled by the unmount of the container dir,
                // which does not look at the flag.
                let shift = crate::userns::shift_of(&record)?;
                crate::image::mount(
                    &self.engine.root,
                    &record.image_id,
                    &self.dir,
                    record.config.auto_remove,
                    shift.as_ref(),
                )?
            }
        };
        crate::volume::copy_up(&rootfs, &record.config.mounts)?;
        // Detaches an IPC peer's /dev/shm that build_spec exposed, on every way out.
        let peer_shm = crate::namespaces::PeerShmGuard::new(&self.engine, &self.id);
        let (spec, warnings) =
            crate::ops::build_spec(&self.engine, &record, &rootfs, self.console_size)?;
        self.warnings = warnings;
        let bundle_config = self.dir.join(crate::record::BUNDLE_CONFIG);
        let data = serde_json::to_vec(&spec).expect("a spec serializes");
        berth_container::state::write_atomically(&bundle_config, &data, 0o600)?;

        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| Error::sys("pipe", e))
        };
        let mut console = None;
        let mut stdin_w = None;
        let mut out_r = None;
        let mut err_r = None;
        let options = if record.config.tty {
            let (ours, theirs) = rustix::net::socketpair(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| Error::sys("socketpair", e))?;
            console = Some(ours);
            CreateOptions {
                console_socket: Some(theirs),
                ..Default::default()
            }
        } else {
            if record.config.interactive {
                let (r, w) = pipe()?;
                sys::dup_onto(r.as_fd(), 0).map_err(|e| Error::sys("dup2", e))?;
                stdin_w = Some(w);
            }
            let (r, w) = pipe()?;
            sys::dup_onto(w.as_fd(), 1).map_err(|e| Error::sys("dup2", e))?;
            out_r = Some(r);
            let (r, w) = pipe()?;
            sys::dup_onto(w.as_fd(), 2).map_err(|e| Error::sys("dup2", e))?;
            err_r = Some(r);
            CreateOptions::default()
        };
        let runtime = self.engine.runtime();
        // Created first, started after: a private network namespace gets its loopback up
        // in between, before the program can look.
        // What the runtime core logs as a warning is the user's to see, not the log's (fd 2
        // is the container's stderr during the create).
        let capture = crate::warnings::Capture::start();
        let created = ops::create_container(&runtime, &self.id, &self.dir, options, false);
        self.warnings.extend(capture.finish());
        // The container's mount namespace has its own bind of an IPC peer's /dev/shm now.
        drop(peer_shm);
        // Our copies of the container's stdio go: EOF must come when the container's go.
        for target in 0..3 {
            let _ = sys::dup_onto(self.devnull.as_fd(), target);
        }
        let created = created.map_err(start_error)?;
        let berth_container::ops::Created {
            dir,
            cgroup,
            mut spawned,
            ..
        } = created;
        drop(dir);
        // The private network namespace is made ready before the program can look: loopback
        // up, and the container attached to its network (nothing for none, host, container:).
        let hostname = crate::spec::hostname(&record);
        let mut relay = None;
        let prepared = if record.config.network == crate::config::NetworkMode::Host {
            Ok(())
        } else {
            sys::loopback_up_in(spawned.pid)
                .map_err(|e| format!("set up the loopback interface: {e}"))
                .and_then(|()| {
                    let container = crate::network::Container {
                        id: &record.id,
                        name: &record.name,
                        hostname: &hostname,
                        opts: &record.config.net,
                        exposed_ports: &record.image.exposed_ports,
                        pid: spawned.pid,
                        container_dir: &self.dir,
                        enable_forwarding: true,
                    };
                    crate::network::setup(&self.engine, &container)
                        .map_err(|e| format!("set up the network: {e}"))
                })
                .and_then(|set| {
                    relay = Relay::start(&set.attachments, spawned.pid, set.keep_alive)
                        .map_err(|e| e.to_string())?;
                    Ok(())
                })
        };
        if let Err(message) = prepared {
            drop(relay);
            drop(spawned);
            let _ = ops::delete(&runtime, &self.id, true);
            return Err(Error::Start {
                message,
                exit_code: 125,
            });
        }
        spawned.disarm();
        if let Err(e) = ops::start(&runtime, &self.id) {
            drop(relay);
            let _ = ops::delete(&runtime, &self.id, true);
            return Err(start_error(e));
        }
        spawned.disarm();
        let pid = spawned.pid;
        let pidfd = rustix::io::fcntl_dupfd_cloexec(&spawned.pidfd, 3)
            .map_err(|e| Error::sys("dup pidfd", e))?;
        drop(spawned);
        let mut master = None;
        let mut stdin = stdin_w;
        if let Some(socket) = &console {
            let m = ops::receive_master(socket.as_fd())?;
            stdin = rustix::io::fcntl_dupfd_cloexec(&m, 3).ok();
            master = Some(m);
        }
        for fd in [&out_r, &err_r, &master, &stdin].into_iter().flatten() {
            set_nonblocking(fd);
        }
        let now = crate::time::now();
        let image_rootfs = record.config.rootfs.is_none();
        self.engine.records.update(&self.id, |r| {
            r.state.rootfs_mounted = image_rootfs;
            r.state.started_at = Some(now);
            r.state.finished_at = None;
            r.state.exit_code = None;
            r.state.oom_killed = false;
            r.state.error.clear();
            r.state.pid = pid;
            r.state.restarting = false;
            r.state.health = health::initial(r);
        })?;
        if let Ok(record) = self.engine.records.load(&self.id) {
            crate::events::append(&self.engine, &Event::container(&record, "start", &[]));
        }
        Ok(Running {
            pid,
            pidfd,
            cgroup,
            stdout: out_r,
            stderr: err_r,
            master,
            stdin,
            stdin_pending: Vec::new(),
            out_lines: LineBuffer::default(),
            err_lines: LineBuffer::default(),
            started: Instant::now(),
            _relay: relay,
        })
    }

    /// Relays and logs until the process exits; returns its exit code (128+signal).
    fn supervise(&mut self, mut r: Running) -> (i32, Running) {
        let record = self.engine.records.load(&self.id).unwrap_or_default();
        let mut checker = health::Checker::new(&record);
        let mut exit_code: Option<i32> = None;
        // conmon reads 8 KiB at a time; 16 KiB keeps a busy container's reads few while the
        // monitor's resident memory stays small
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if exit_code.is_none() {
                exit_code = reap(r.pid);
            }
            if let Some(code) = exit_code {
                // Drain what is left, without waiting for processes that outlived the
                // init (no pid namespace) and still hold the pipes.
                for which in 0..3 {
                    while self.read_output(&mut r, which, &mut buf) == Some(true) {}
                }
                self.flush_lines(&mut r);
                checker.abandon();
                reap_orphans();
                return (code, r);
            }
            // Poll set: 0 pidfd, then listener, outputs, stdin (when pending), clients,
            // the health probe.
            let mut fds: Vec<PollFd<'_>> = vec![PollFd::new(&r.pidfd, PollFlags::IN)];
            let mut slots: Vec<Slot> = vec![Slot::Exit];
            if let Some(l) = &self.listener {
                fds.push(PollFd::new(l, PollFlags::IN));
                slots.push(Slot::Listener);
            }
            for (which, fd) in [&r.stdout, &r.stderr, &r.master].into_iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                    slots.push(Slot::Output(which));
                }
            }
            if !r.stdin_pending.is_empty()
                && let Some(fd) = &r.stdin
            {
                fds.push(PollFd::new(fd, PollFlags::OUT));
                slots.push(Slot::Stdin);
            }
            for (i, c) in self.clients.iter().enumerate() {
                fds.push(PollFd::new(&c.fd, PollFlags::IN));
                slots.push(Slot::Client(i));
            }
            if let Some(fd) = checker.probe_fd() {
                fds.push(PollFd::new(fd, PollFlags::IN));
                slots.push(Slot::Probe);
            }
            let timeout = checker.timeout().map(|d| rustix::event::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: d.subsec_nanos() as i64,
            });
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            let ready: Vec<(Slot, PollFlags)> = slots
                .into_iter()
                .zip(fds.iter().map(|f| f.revents()))
                .filter(|(_, ev)| !ev.is_empty())
                .collect();
            drop(fds);
            let mut gone_clients = Vec::new();
            for (slot, _) in ready {
                match slot {
                    Slot::Exit => {}
                    Slot::Listener => self.accept_clients(),
                    Slot::Output(which) => {
                        let _ = self.read_output(&mut r, which, &mut buf);
                    }
                    Slot::Stdin => flush_stdin(&mut r),
                    Slot::Client(i) => {
                        if !self.client_input(i, &mut r) {
                            gone_clients.push(i);
                        }
                    }
                    Slot::Probe => checker.on_probe_output(),
                }
            }
            for i in gone_clients {
                self.clients[i].gone = true;
            }
            self.clients.retain(|c| !c.gone);
            checker.tick(&self.engine, &self.id);
        }
    }

    /// Reads one chunk of output `which` (0 stdout, 1 stderr, 2 pty): logs and relays it.
    /// `Some(true)` when something was read, `Some(false)` at EOF, `None` when nothing
    /// is there now.
    fn read_output(&mut self, r: &mut Running, which: usize, buf: &mut [u8]) -> Option<bool> {
        let fd = match which {
            0 => r.stdout.as_ref(),
            1 => r.stderr.as_ref(),
            _ => r.master.as_ref(),
        }?;
        let n = match rustix::io::read(fd, &mut *buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => 0,
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return None,
            Err(_) => 0,
        };
        if n == 0 {
            match which {
                0 => r.stdout = None,
                1 => r.stderr = None,
                _ => r.master = None,
            }
            return Some(false);
        }
        let data = &buf[..n];
        let (stream, kind, lines) = match which {
            1 => ("stderr", attach::STDERR, &mut r.err_lines),
            _ => ("stdout", attach::STDOUT, &mut r.out_lines),
        };
        let log = &mut self.log;
        lines.push(data, |line| log.write(stream, line));
        self.broadcast(kind, data);
        Some(true)
    }

    fn flush_lines(&mut self, r: &mut Running) {
        let log = &mut self.log;
        r.out_lines.flush(|l| log.write("stdout", l));
        r.err_lines.flush(|l| log.write("stderr", l));
    }

    /// Handles what client `i` sent; false when it went away.
    fn client_input(&mut self, i: usize, r: &mut Running) -> bool {
        let client = &mut self.clients[i];
        if client.gone {
            return false;
        }
        let open = client.reader.fill(&client.fd).unwrap_or(false);
        while let Some((kind, payload)) = client.reader.next_frame() {
            match kind {
                attach::STDIN if r.stdin.is_some() => {
                    r.stdin_pending.extend_from_slice(&payload);
                }
                attach::STDIN_EOF if client.first && r.master.is_none() => {
                    // What came before the EOF still goes in (blocking: it is the last
                    // input this container gets).
                    if let Some(fd) = &r.stdin {
                        let mut rest = &r.stdin_pending[..];
                        while !rest.is_empty() {
                            match rustix::io::write(fd, rest) {
                                Ok(n) => rest = &rest[n..],
                                Err(rustix::io::Errno::INTR) => {}
                                Err(rustix::io::Errno::AGAIN) => {
                                    let mut p = [PollFd::new(fd, PollFlags::OUT)];
                                    let _ = poll(&mut p, None);
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    r.stdin = None;
                    r.stdin_pending.clear();
                }
                attach::RESIZE if payload.len() == 4 => {
                    if let Some(master) = &r.master {
                        let size = rustix::termios::Winsize {
                            ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                            ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        let _ = rustix::termios::tcsetwinsize(master, size);
                    }
                }
                attach::SIGNAL if payload.len() == 4 => {
                    let sig = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    if let Some(sig) = rustix::process::Signal::from_named_raw(sig) {
                        let _ = rustix::process::pidfd_send_signal(&r.pidfd, sig);
                    }
                }
                _ => {}
            }
        }
        flush_stdin(r);
        open
    }

    /// Records the exit, removes the runtime state and unmounts, and decides (in the same
    /// record write) whether the policy restarts the container; returns what clients are
    /// told, that decision, and the record as it is now.
    fn finish(&mut self, r: Running, code: i32) -> (ExitInfo, bool, Option<ContainerRecord>) {
        let oom_killed = r.cgroup.inner().oom_kill_count().unwrap_or(0) > 0;
        let memory_limit = r.cgroup.inner().memory_limit().ok().flatten();
        drop(r);
        cleanup_runtime_by_id(&self.engine, &self.id, &self.dir);
        let now = crate::time::now();
        let updated = self.engine.records.update(&self.id, |rec| {
            rec.state.finished_at = Some(now);
            rec.state.exit_code = Some(code);
            rec.state.oom_killed = oom_killed;
            rec.state.memory_limit = memory_limit;
            rec.state.pid = 0;
            rec.state.rootfs_mounted = false;
            let restart = !rec.state.stopped_by_user
                && !rec.config.auto_remove
                && rec
                    .config
                    .restart
                    .should_restart(code, rec.state.restart_count);
            if restart {
                rec.state.restarting = true;
                rec.state.restart_count += 1;
            } else {
                rec.state.monitor_pid = 0;
            }
            (restart, rec.clone())
        });
        let (restart, record) = match updated {
            Ok((restart, record)) => (restart, Some(record)),
            Err(_) => (false, None),
        };
        if let Some(record) = &record {
            if oom_killed {
                crate::events::append(&self.engine, &Event::container(record, "oom", &[]));
            }
            let code = code.to_string();
            let died = Event::container(record, "die", &[("exitCode", &code)]);
            crate::events::append(&self.engine, &died);
        }
        let info = ExitInfo {
            exit_code: code,
            oom_killed,
            memory_limit,
            name: self.name.clone(),
        };
        (info, restart, record)
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Exit,
    Listener,
    Output(usize),
    Stdin,
    Client(usize),
    Probe,
}

fn flush_stdin(r: &mut Running) {
    let Some(fd) = &r.stdin else {
        r.stdin_pending.clear();
        return;
    };
    while !r.stdin_pending.is_empty() {
        match rustix::io::write(fd, &r.stdin_pending) {
            Ok(n) => {
                r.stdin_pending.drain(..n);
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return,
            Err(_) => {
                r.stdin = None;
                r.stdin_pending.clear();
                return;
            }
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
        let _ = rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK);
    }
}

/// The exit code of `pid` if it has exited (reaped now).
fn reap(pid: i32) -> Option<i32> {
    let p = rustix::process::Pid::from_raw(pid)?;
    match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG) {
        Ok(Some((_, status))) => Some(match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => 128 + sig,
            _ => 255,
        }),
        Ok(None) => None,
        Err(_) => Some(255),
    }
}

/// Reaps container processes that became ours (we are a subreaper) and exited.
fn reap_orphans() {
    while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
}

/// The runtime's view of a start failure, with docker's exit code for it.
fn start_error(e: berth_container::Error) -> Error {
    let message = e.to_string();
    Error::Start {
        exit_code: start_exit_code(&message),
        message,
    }
}

/// Removes whatever the runtime still has of the container (its state dir, cgroup,
/// processes) and unmounts its image root filesystem.
pub fn cleanup_runtime(engine: &Engine, record: &ContainerRecord) {
    cleanup_runtime_by_id(engine, &record.id, &engine.container_dir(&record.id));
}

fn cleanup_runtime_by_id(engine: &Engine, id: &str, dir: &Path) {
    let runtime = engine.runtime();
    if runtime.path().join(id).exists()
        && let Err(e) = ops::delete(&runtime, id, true)
    {
        log::warn!("container {id}: delete the runtime state: {e}");
    }
    if let Err(e) = crate::network::teardown(engine, id) {
        log::warn!("container {id}: {e}");
    }
    if let Err(e) = crate::image::unmount(dir) {
        log::warn!("container {id}: {e}");
    }
}

/// Binds the attach socket in `run_dir` (through /proc/self/fd: socket paths are limited to
/// 108 bytes and run roots can be deep).
fn listen(run_dir: &Path) -> Result<OwnedFd> {
    std::fs::create_dir_all(run_dir).map_err(|e| Error::path("create", run_dir, e))?;
    let dir = rustix::fs::open(
        run_dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::path("open", run_dir, e.into()))?;
    let path = format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), attach::SOCKET);
    let _ = std::fs::remove_file(run_dir.join(attach::SOCKET));
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    let addr = rustix::net::SocketAddrUnix::new(path.as_str())
        .map_err(|e| Error::sys("socket address", e))?;
    let umask = rustix::process::umask(Mode::from_raw_mode(0o077));
    let bound = rustix::net::bind(&socket, &addr);
    rustix::process::umask(umask);
    bound.map_err(|e| Error::path("bind", run_dir.join(attach::SOCKET), e.into()))?;
    rustix::net::listen(&socket, 16).map_err(|e| Error::sys("listen", e))?;
    Ok(socket)
}

/// Connects to the attach socket of a running container's monitor.
pub fn connect(engine: &Engine, id: &str) -> Result<OwnedFd> {
    let run_dir = engine.run_dir(id);
    let dir = rustix::fs::open(
        &run_dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::path("open", &run_dir, e.into()))?;
    let path = format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), attach::SOCKET);
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::sys("socket", e))?;
    let addr = rustix::net::SocketAddrUnix::new(path.as_str())
        .map_err(|e| Error::sys("socket address", e))?;
    rustix::net::connect(&socket, &addr)
        .map_err(|e| Error::path("connect", run_dir.join(attach::SOCKET), e.into()))?;
    Ok(socket)
}
