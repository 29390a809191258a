//! start, state, kill, delete and list. Each reads the record, asks the kernel for the
//! truth (is the init alive, is it frozen) and acts under the container's lock.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use serde::Serialize;

use crate::cgroup::ContainerCgroup;
use crate::error::{Error, Result};
use crate::hooks::{HookKind, SpecState, run_hooks_warning};
use crate::kill_point::kill_point;
use crate::state::{ContainerDir, Pending, Record, START_SOCKET, StateRoot, Status};

/// The status of a recorded container, read from the kernel.
pub fn status_of(record: &Record, dir: &Path) -> Status {
    if !record.init_alive() {
        return Status::Stopped;
    }
    if record.creating {
        return Status::Creating;
    }
    if dir.join(START_SOCKET).exists() {
        return Status::Created;
    }
    if ContainerCgroup::from_record(&record.cgroup).is_ok_and(|c| c.is_frozen()) {
        return Status::Paused;
    }
    Status::Running
}

/// What `state` prints (the runtime-spec state plus runc's extra fields).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateOutput {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: std::path::PathBuf,
    pub rootfs: std::path::PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

impl StateOutput {
    fn new(record: &Record, status: Status) -> Self {
        StateOutput {
            oci_version: record.oci_version.clone(),
            id: record.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                record.pid
            },
            status,
            bundle: record.bundle.clone(),
            rootfs: record.rootfs.clone(),
            created: record.created.clone(),
            owner: String::new(),
            annotations: record.annotations.clone(),
        }
    }
}

/// Reads a container's record without taking its lock (state and list must not wait for a
/// long operation such as a create in progress).
fn read_record(root: &StateRoot, id: &str) -> Result<Option<Record>> {
    crate::spec::validate_id(id)?;
    let path = root.path().join(id);
    if !path.is_dir() {
        return Err(Error::NotFound(id.to_string()));
    }
    let file = path.join(crate::state::STATE_FILE);
    match std::fs::read(&file) {
        Ok(data) => crate::spec::parse(&file, &data).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path("read", &file, e)),
    }
}

/// `state ID`.
pub fn state(root: &StateRoot, id: &str) -> Result<StateOutput> {
    match read_record(root, id)? {
        Some(record) => {
            let status = status_of(&record, &root.path().join(id));
            let mut state = StateOutput::new(&record, status);
            if let Ok(cgroup) = ContainerCgroup::from_record(&record.cgroup)
                && let Some(oom) = super::oom::OomKill::of(id, &cgroup, false)
            {
                state.annotations.insert(
                    super::oom::OOM_KILLS_ANNOTATION.to_string(),
                    oom.kills.to_string(),
                );
            }
            Ok(state)
        }
        None => Err(Error::WrongStatus {
            id: id.to_string(),
            status: Status::Creating.to_string(),
            message: "it is still being created".into(),
        }),
    }
}

/// `list`: every container under the root, skipping ones still being created.
pub fn list(root: &StateRoot) -> Result<Vec<StateOutput>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        if let Ok(Some(record)) = read_record(root, &id) {
            let status = status_of(&record, &root.path().join(&id));
            out.push(StateOutput::new(&record, status));
        }
    }
    Ok(out)
}

fn load_locked(root: &StateRoot, id: &str) -> Result<(ContainerDir, Option<Record>)> {
    let dir = root.open(id)?;
    let record = dir.load()?;
    Ok((dir, record))
}

fn wrong(id: &str, status: Status, message: &str) -> Error {
    Error::WrongStatus {
        id: id.to_string(),
        status: status.to_string(),
        message: message.to_string(),
    }
}

/// A pidfd of the container's init, checked to be the recorded process (not a recycled
/// pid): after pidfd_open the identity cannot change any more, so it is checked once after.
fn init_pidfd(record: &Record) -> Option<OwnedFd> {
    let pid = Pid::from_raw(record.pid)?;
    let fd = pidfd_open(pid, PidfdFlags::empty()).ok()?;
    record.init_alive().then_some(fd)
}

/// `start ID`: releases the init through the exec fifo, then runs the poststart hooks.
pub fn start(root: &StateRoot, id: &str) -> Result<Vec<Error>> {
    let (dir, record) = load_locked(root, id)?;
    let record = record.ok_or_else(|| wrong(id, Status::Creating, "cannot start it yet"))?;
    match status_of(&record, &dir.path) {
        Status::Created => {}
        Status::Stopped => {
            return Err(wrong(
                id,
                Status::Stopped,
                "cannot start a stopped container",
            ));
        }
        other => return Err(wrong(id, other, "it was already started")),
    }
    let socket_path = dir.start_socket_path();
    let connection = dir
        .connect_start_socket()?
        .ok_or_else(|| wrong(id, Status::Stopped, "its init is gone"))?;
    kill_point("start:connected");
    std::fs::remove_file(&socket_path)
        .map_err(|e| Error::path("remove start socket", &socket_path, e))?;
    kill_point("start:socket-removed");
    rustix::net::send(&connection, b"0", rustix::net::SendFlags::NOSIGNAL)
        .map_err(|e| Error::path("write to start socket", &socket_path, e.into()))?;
    kill_point("start:sent");
    // The init keeps the connection until it execs (close-on-exec): EOF means the process
    // runs, text means it failed first (a startContainer hook, the exec itself).
    let mut message = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&connection, &mut buf) {
            Ok(0) => break,
            Ok(n) => message.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    if !message.is_empty() {
        return Err(Error::Init(String::from_utf8_lossy(&message).into_owned()));
    }
    Ok(recorded_hooks(
        &record,
        HookKind::Poststart,
        Status::Running,
    ))
}

/// Runs the poststart or poststop hooks of a recorded container; failures are warnings (the
/// runtime-spec lets the lifecycle go on).
pub(crate) fn recorded_hooks(record: &Record, kind: HookKind, status: Status) -> Vec<Error> {
    let hooks = record.config.hooks().as_ref().and_then(|h| match kind {
        HookKind::Poststart => h.poststart().clone(),
        HookKind::Poststop => h.poststop().clone(),
        _ => None,
    });
    let Some(hooks) = hooks.filter(|h| !h.is_empty()) else {
        return Vec::new();
    };
    if kind == HookKind::Poststart {
        let_the_process_run(record.pid);
    }
    let state = SpecState::new(
        &record.id,
        status,
        record.pid,
        &record.bundle,
        &record.annotations,
    );
    match state.to_json() {
        Ok(json) => run_hooks_warning(kind, &hooks, &json),
        Err(e) => vec![e],
    }
}

/// The process has just been exec'd. Before poststart hooks compete with it for the CPU,
/// wait (at most 50 ms) until it leaves the runnable state for the first time (it blocks or
/// exits): on a loaded host a hook would otherwise often overtake the program it follows.
fn let_the_process_run(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    while std::time::Instant::now() < deadline {
        match crate::state::proc_stat(pid) {
            Some(stat) if stat.state == 'R' => {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            _ => return,
        }
    }
}

/// `kill ID SIGNAL [--all]`.
pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    let (dir, record) = load_locked(root, id)?;
    let record = record.ok_or_else(|| wrong(id, Status::Creating, "cannot signal it yet"))?;
    let status = status_of(&record, &dir.path);
    let cgroup = ContainerCgroup::from_record(&record.cgroup)?;
    // Without a cgroup (rootless) nothing lists every process: --all signals the init,
    // whose death ends the rest of its pid namespace.
    let all = all && !cgroup.inner().is_none();
    if all {
        cgroup.signal_all(signal)?;
        // Frozen processes cannot die; let SIGKILL take effect (as runc does).
        if status == Status::Paused && signal == libc::SIGKILL {
            cgroup.thaw()?;
        }
        return Ok(());
    }
    if status == Status::Stopped {
        return Err(wrong(id, status, "container not running"));
    }
    let pidfd =
        init_pidfd(&record).ok_or_else(|| wrong(id, Status::Stopped, "container not running"))?;
    let sig =
        Signal::from_named_raw(signal).ok_or_else(|| Error::InvalidSignal(signal.to_string()))?;
    pidfd_send_signal(&pidfd, sig).map_err(|e| Error::sys(format!("send signal {signal}"), e))?;
    // A frozen process cannot die; let SIGKILL take effect.
    if status == Status::Paused && signal == libc::SIGKILL {
        cgroup.thaw()?;
    }
    Ok(())
}

/// `delete ID [--force]`: removes a stopped (or created) container; with `force`, kills a
/// running one first. Returns the warnings of poststop hooks.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<Vec<Error>> {
    let (dir, record) = load_locked(root, id)?;
    let Some(record) = record else {
        // No record: a create died before writing it (a live create holds the lock until
        // it has). Remove what it had begun to make.
        if let Some(pending) = dir.load_pending() {
            remove_pending(&pending)?;
        }
        kill_point("delete:pending");
        dir.remove()?;
        return Ok(Vec::new());
    };
    let status = status_of(&record, &dir.path);
    let cgroup =
        ContainerCgroup::from_record(&record.cgroup)?.with_unit(record.systemd_unit.clone());
    // The runtime-spec: "Attempting to delete a container that is not stopped MUST have no
    // effect on the container and MUST generate an error." (runc deletes created ones.)
    if status != Status::Stopped && !force {
        return Err(wrong(
            id,
            status,
            "only a stopped container can be deleted: kill it first or use --force",
        ));
    }
    // What the OOM killer did is counted in the cgroup: read it before the cgroup goes,
    // and before the kill below, after which systemd removes an emptied scope's cgroup.
    let oom = super::oom::OomKill::of(id, &cgroup, false);
    match status {
        // Without a pid namespace the init's death does not take the other processes
        // with it; they would keep the cgroup busy forever.
        Status::Stopped if !has_pid_namespace(&record) => cgroup.signal_all(libc::SIGKILL)?,
        Status::Stopped => {}
        _ => kill_and_wait(&record, &cgroup)?,
    }
    kill_point("delete:killed");
    cgroup.destroy()?;
    kill_point("delete:cgroup");
    if !has_namespace(&record, oci_spec::runtime::LinuxNamespaceType::Mount) {
        super::create::unmount_below(&record.rootfs);
    }
    kill_point("delete:unmounted");
    dir.remove()?;
    let mut warnings: Vec<Error> = oom
        .map(|o| Error::OomKilled(Box::new(o)))
        .into_iter()
        .collect();
    warnings.extend(recorded_hooks(&record, HookKind::Poststop, Status::Stopped));
    Ok(warnings)
}

/// Removes what a create that died before writing its record had made: every process in
/// the cgroup (the init joins it before anything else, so a live init is found there), the
/// cgroup, and the mounts of a container without a mount namespace.
fn remove_pending(pending: &Pending) -> Result<()> {
    let cgroup =
        ContainerCgroup::from_record(&pending.cgroup)?.with_unit(pending.systemd_unit.clone());
    // signal_all freezes and thaws around the kill itself; a killed create never froze
    // the cgroup, and part of it may not exist.
    cgroup.signal_all(libc::SIGKILL)?;
    cgroup.destroy()?;
    if let Some(rootfs) = &pending.host_mounts {
        super::create::unmount_below(rootfs);
    }
    Ok(())
}

fn has_pid_namespace(record: &Record) -> bool {
    record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|list| {
            list.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
            })
        })
}

/// The container has a namespace of this type (new or joined).
fn has_namespace(record: &Record, kind: oci_spec::runtime::LinuxNamespaceType) -> bool {
    record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|list| list.iter().any(|n| n.typ() == kind))
}

/// SIGKILL to every process of the container, and wait for the init to be gone.
fn kill_and_wait(record: &Record, cgroup: &ContainerCgroup) -> Result<()> {
    let pidfd = init_pidfd(record);
    if let Some(fd) = &pidfd {
        let _ = pidfd_send_signal(fd, Signal::KILL);
    }
    cgroup.signal_all(libc::SIGKILL)?;
    cgroup.thaw()?;
    if let Some(fd) = pidfd {
        wait_exit(&fd, Duration::from_secs(10))?;
    }
    Ok(())
}

/// Waits until the process of a pidfd has exited (it may still be an unreaped zombie).
pub fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> Result<()> {
    let ts = rustix::event::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    loop {
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => {
                return Err(Error::sys(
                    "wait for the container to exit",
                    std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                ));
            }
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("poll pidfd", e)),
        }
    }
}
