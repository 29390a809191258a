//! `exec`: a new process in a running container. It joins every namespace of the container
//! (through the init's pidfd) and its cgroup (cloned straight into it on cgroup v2), gets
//! the container's seccomp filter and the capabilities, user and limits of its process
//! object, and is never a way back to the host: it keeps no runtime descriptor and stays
//! non-dumpable until it execs.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::Process;
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use super::lifecycle::status_of;
use super::supervise::{TtyRelay, receive_master, supervise};
use crate::cgroup::ContainerCgroup;
use crate::error::{Error, Result};
use crate::init::{ExecContext, exec_child_main};
use crate::kill_point::kill_point;
use crate::plan::ProcessImage;
use crate::spawn::kill_and_reap;
use crate::spec::{self, NamespaceKind, Namespaces};
use crate::state::{self, StateRoot, Status};
use crate::sync::{Message, SyncSocket};
use crate::sys::{self, Forked};

/// The process to run: a whole runtime-spec process object (`--process FILE`), or a command
/// line whose unset parts come from the container's own process (as runc does).
#[derive(Debug)]
pub enum ExecProcess {
    File(Box<Process>),
    Args(ExecArgs),
}

/// runc's `exec` flags.
#[derive(Debug, Default)]
pub struct ExecArgs {
    pub args: Vec<String>,
    /// Added to (and overriding) the container's environment.
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// `uid[:gid]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the process's sets.
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub tty: bool,
    /// The terminal's size (rows, cols) with `tty`; `None`: the size of the caller's stdin
    /// when it is a terminal.
    pub console_size: Option<(u16, u16)>,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
}

/// What to run and how.
#[derive(Debug)]
pub struct ExecOptions {
    pub process: ExecProcess,
    /// A connected console socket; without one a terminal process is relayed by us.
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub ignore_paused: bool,
}

/// Runs a process in container `id`. In the foreground the result is its exit code; with
/// `detach`, 0 once it runs. Three steps: [`plan`] reads and checks everything and starts
/// nothing, [`spawn`] makes the process and waits until it has exec'd, and the caller's
/// side ends in [`supervise`] (or returns at once with `detach`).
pub fn exec(root: &StateRoot, id: &str, options: ExecOptions) -> Result<i32> {
    let plan = plan(root, id, &options)?;
    let started = spawn(&plan, options.console_socket, options.preserve_fds)?;
    if let Some(path) = &options.pid_file {
        state::write_pid_file(path, started.pid)?;
    }
    if options.detach {
        sys::restore_signal_mask(&started.signal_mask).map_err(|e| Error::sys("sigprocmask", e))?;
        return Ok(0);
    }
    let tty = match &started.relay_socket {
        Some(socket) => Some(TtyRelay::new(receive_master(socket.as_fd())?)),
        None => None,
    };
    supervise(started.pid, &started.pidfd, tty)
}

/// What an exec needs, read from the container's state and checked: nothing is started
/// yet, and a bad process object or a container in the wrong state fails here.
struct ExecPlan {
    id: String,
    record: state::Record,
    process: ProcessImage,
    namespaces: Namespaces,
    seccomp: Option<berth_seccomp::Program>,
    cgroup: ContainerCgroup,
    init_pidfd: OwnedFd,
}

fn plan(root: &StateRoot, id: &str, options: &ExecOptions) -> Result<ExecPlan> {
    let dir = root.open(id)?;
    let record = dir.load()?.ok_or_else(|| Error::WrongStatus {
        id: id.to_string(),
        status: Status::Creating.to_string(),
        message: "cannot exec into a container that is being created".into(),
    })?;
    if crate::sealed::required(&record.config) && !crate::sealed::is_sealed() {
        return Err(Error::NeedsSealedRuntime);
    }
    let status = status_of(&record, &dir.path);
    // The lock is not held while the process is set up: a frozen container would freeze
    // the new process and keep `resume` from ever getting the lock.
    drop(dir);
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if options.ignore_paused => {}
        Status::Paused => {
            return Err(Error::WrongStatus {
                id: id.to_string(),
                status: status.to_string(),
                message: "cannot exec into a paused container (use --ignore-paused)".into(),
            });
        }
        other => {
            return Err(Error::WrongStatus {
                id: id.to_string(),
                status: other.to_string(),
                message: "cannot exec into a stopped container".into(),
            });
        }
    }
    let process = match &options.process {
        ExecProcess::File(p) => (**p).clone(),
        ExecProcess::Args(args) => process_from_args(record.config.process().as_ref(), args)?,
    };
    let mut process = spec::plan_process(&process, "process", spec::last_cap())?;
    // The container's memory policy holds for every process of it.
    process.memory_policy = record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
        .map(spec::memory_policy::plan_memory_policy)
        .transpose()?;
    if process.terminal && options.console_socket.is_none() && process.console_size.is_none() {
        let asked = match &options.process {
            ExecProcess::Args(a) => a.console_size,
            ExecProcess::File(_) => None,
        };
        process.console_size = asked.or_else(super::supervise::caller_window_size);
    }
    crate::lsm::check(
        crate::lsm::Lsms::probe(),
        process.apparmor_profile.as_deref(),
        process.selinux_label.as_deref(),
        "process",
    )?;
    let config_namespaces = record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let namespaces = Namespaces::from_spec(&config_namespaces)?;
    let seccomp = match record
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
    {
        Some(profile) => Some(
            berth_seccomp::Cache::new(root.path().join(crate::seccomp::CACHE_DIR))
                .load_or_compile(&profile, berth_seccomp::native_arch())
                .map_err(Error::SeccompProfile)?,
        ),
        None => None,
    };
    let process = ProcessImage::new(process, "process")?;
    let cgroup = ContainerCgroup::from_record(&record.cgroup)?;
    let init_pidfd = Pid::from_raw(record.pid)
        .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        .filter(|_| record.init_alive())
        .ok_or_else(|| Error::WrongStatus {
            id: id.to_string(),
            status: Status::Stopped.to_string(),
            message: "its init is gone".into(),
        })?;
    Ok(ExecPlan {
        id: id.to_string(),
        record,
        process,
        namespaces,
        seccomp,
        cgroup,
        init_pidfd,
    })
}

/// The exec'd process, running the program: its pid and pidfd, the signal mask the runtime
/// had (every signal is blocked until it supervises), and the socket a relayed terminal's
/// master arrives on.
struct Started {
    pid: i32,
    pidfd: OwnedFd,
    signal_mask: sys::SignalMask,
    relay_socket: Option<SyncSocket>,
}

/// Forks the process into the container's namespaces and cgroup, and waits until it has
/// exec'd (passing signals on, and a seccomp listener to its agent).
fn spawn(plan: &ExecPlan, console_socket: Option<OwnedFd>, preserve_fds: u32) -> Result<Started> {
    let ExecPlan {
        record,
        process,
        namespaces,
        seccomp,
        cgroup,
        init_pidfd,
        ..
    } = plan;
    // A terminal without a console socket is relayed by us, over a socketpair.
    let mut relay_socket = None;
    let console_socket = match (process.plan.terminal, console_socket) {
        (true, None) => {
            let (ours, theirs) = SyncSocket::pair()?;
            relay_socket = Some(ours);
            Some(theirs.into_fd())
        }
        (_, socket) => socket,
    };

    // Without a mount namespace the container's root is the init's chroot.
    let chroot = if namespaces.has(NamespaceKind::Mount) {
        None
    } else {
        let path = format!("/proc/{}/root", record.pid);
        Some(
            rustix::fs::open(
                path.as_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::path("open", &path, e.into()))?,
        )
    };
    // The child joins the v1 hierarchies itself (no global cgroup lock, see V1SelfJoin).
    let v1_self_join = Some(cgroup.inner().open_v1_self_join()?).filter(|j| !j.is_empty());
    let (parent_sync, child_sync) = SyncSocket::pair()?;
    let signal_mask = sys::block_all_signals().map_err(|e| Error::sys("block signals", e))?;
    let joined_user = join_user_namespace_first(init_pidfd, namespaces, record.pid)?;
    let child_flags = join_flags(namespaces, record.pid)?;
    let parent_ns = enter_for_children(init_pidfd, namespaces)?;
    let unified = cgroup.inner().open_unified_dir()?;
    // SAFETY: exec runs single-threaded; the child side ends in exec_child_main, which
    // never returns.
    let forked = match unsafe { sys::clone3(0, unified.as_ref().map(|fd| fd.as_fd())) } {
        Ok(f) => Ok((f, unified.is_some())),
        // The container's top cgroup may have delegated its controllers to sub-cgroups it
        // made (EBUSY): join like the init instead, after the fork.
        Err(e)
            if unified.is_some()
                && matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EINVAL)) =>
        {
            // SAFETY: as for the first attempt.
            unsafe { sys::clone3(0, None) }.map(|f| (f, false))
        }
        Err(e) => Err(e),
    };
    // Without the host's root (rootless, or having joined the container's user namespace)
    // the runtime cannot go back to the pid namespace it came from, which needs privilege
    // over the host's: it forks nothing else, and ends with the process it supervises.
    let leave = if joined_user || crate::privilege::unprivileged() {
        drop(parent_ns);
        Ok(())
    } else {
        parent_ns.leave()
    };
    let (forked, cloned_into) = forked.map_err(|e| Error::sys("clone3", e))?;
    let (pid, pidfd) = match forked {
        Forked::Child => {
            drop(parent_sync);
            let ctx = ExecContext {
                process,
                init_pidfd: init_pidfd.as_fd(),
                namespaces: child_flags,
                console_socket,
                chroot,
                preserve_fds,
                last_cap: spec::last_cap(),
                seccomp: seccomp.as_ref(),
                signal_mask: &signal_mask,
                v1_self_join: v1_self_join.as_ref(),
            };
            exec_child_main(&ctx, &child_sync)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_sync);
    drop(console_socket);
    let guard = ChildGuard {
        pid,
        pidfd: &pidfd,
        armed: true,
    };
    leave?;
    let v1_joined = v1_self_join.is_some();
    drop(v1_self_join);
    let attach = match (cloned_into, v1_joined) {
        (true, true) => Ok(()),
        (true, false) => cgroup
            .inner()
            .add_pid(pid, berth_cgroups::Join::SkipUnified),
        // The unified tree may need the init's sub-cgroup (EBUSY); that path writes the v1
        // membership again, which is harmless.
        (false, _) => cgroup.inner().add_pid_like(pid, record.pid),
    };
    kill_point("exec:forked");
    attach?;
    kill_point("exec:attached");
    parent_sync.send(&Message::Continue)?;
    wait_until_execd(plan, pid, &pidfd, &parent_sync)?;
    // EOF: the process exec'd (the sync socket is close-on-exec).
    kill_point("exec:execd");
    let mut guard = guard;
    guard.armed = false;
    drop(guard);
    Ok(Started {
        pid,
        pidfd,
        signal_mask,
        relay_socket,
    })
}

/// Waits for the EOF of the sync socket (close-on-exec: the child has exec'd), handing a
/// seccomp listener to the container's agent on the way.
fn wait_until_execd(
    plan: &ExecPlan,
    pid: i32,
    pidfd: &OwnedFd,
    parent_sync: &SyncSocket,
) -> Result<()> {
    let record = &plan.record;
    let id = plan.id.as_str();
    let signals = sys::signalfd_all().map_err(|e| Error::sys("signalfd", e))?;
    // A terminating signal before the exec gives up (the child may never get there: one
    // frozen in a paused container, say); any other signal is passed on, and the child keeps
    // it pending until its exec, so the program gets it. Once the child has exec'd, the
    // socket's EOF is taken before any signal.
    let mut on_signal = |signal: i32| {
        if SyncSocket::is_terminating(signal) {
            return Err(Error::Interrupted(signal));
        }
        if let Some(sig) = rustix::process::Signal::from_named_raw(signal)
            && signal != libc::SIGCHLD
        {
            let _ = rustix::process::pidfd_send_signal(pidfd, sig);
        }
        Ok(())
    };
    loop {
        match parent_sync.recv_or_signal(signals.as_fd(), &mut on_signal)? {
            None => return Ok(()),
            Some((Message::SeccompListener, Some(fd))) => {
                if let Some(profile) = record
                    .config
                    .linux()
                    .as_ref()
                    .and_then(|l| l.seccomp().clone())
                {
                    let plan_like = crate::seccomp::ListenerTarget {
                        id,
                        bundle: &record.bundle,
                        annotations: &record.annotations,
                    };
                    crate::seccomp::send_listener_to(&profile, &plan_like, pid, &fd)?;
                }
            }
            Some((Message::Error(text), _)) => return Err(Error::Init(text)),
            Some((other, _)) => {
                return Err(Error::Init(format!(
                    "unexpected {other:?} from the exec'd process"
                )));
            }
        }
    }
}

/// The container's process with the command line's changes applied.
pub fn process_from_args(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    use oci_spec::runtime::{Capability, LinuxCapabilities};
    let mut p = base.cloned().unwrap_or_default();
    if a.args.is_empty() {
        return Err(Error::invalid("exec", "no command given"));
    }
    p.set_args(Some(a.args.clone()));
    let mut env = p.env().clone().unwrap_or_default();
    for var in &a.env {
        let key = var.split('=').next().unwrap_or(var);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(var.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut user = p.user().clone();
    if let Some(spec) = &a.user {
        let (uid, gid) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec.as_str(), None),
        };
        let number = |s: &str| {
            s.parse::<u32>().map_err(|_| {
                Error::invalid("--user", format!("{spec:?}: expected uid[:gid] as numbers"))
            })
        };
        user.set_uid(number(uid)?);
        user.set_gid(match gid {
            Some(g) => number(g)?,
            None => 0,
        });
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.capabilities.is_empty() {
        let mut caps: LinuxCapabilities = p.capabilities().clone().unwrap_or_default();
        for name in &a.capabilities {
            let cap: Capability = spec::parse_capability(name)
                .ok_or_else(|| Error::invalid("--cap", format!("unknown capability {name:?}")))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            let (b, e, p2, a2) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
                add(caps.ambient()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(p2);
            caps.set_ambient(a2);
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privileges {
        p.set_no_new_privileges(Some(true));
    }
    p.set_terminal(Some(a.tty));
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

/// Kills and reaps the exec'd child if we fail before it runs.
struct ChildGuard<'a> {
    pid: i32,
    pidfd: &'a OwnedFd,
    armed: bool,
}

impl Drop for ChildGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            kill_and_reap(self.pid, self.pidfd);
        }
    }
}

/// An unprivileged runtime (rootless) may join the container's pid namespace only from
/// inside the container's user namespace, where it holds every capability: it joins that
/// first, for good (it has no way back), and its child then joins the rest. Returns whether
/// it did; a privileged runtime joins from where it is, and so does one already in the
/// container's user namespace (berth's rootless mode).
fn join_user_namespace_first(
    init_pidfd: &OwnedFd,
    namespaces: &Namespaces,
    init_pid: i32,
) -> Result<bool> {
    if !namespaces.has(NamespaceKind::User)
        || !crate::privilege::unprivileged()
        || same_namespace(init_pid, NamespaceKind::User)?
    {
        return Ok(false);
    }
    sys::set_namespace(init_pidfd.as_fd(), NamespaceKind::User.clone_flag())
        .map_err(|e| Error::sys("join the container's user namespace", e))?;
    Ok(true)
}

/// The namespaces the child joins itself: those the container has, except pid and time
/// (joined by the runtime for its children) and a user namespace that is our own (joining
/// one's own user namespace is an error).
fn join_flags(namespaces: &Namespaces, init_pid: i32) -> Result<u64> {
    let mut flags = 0;
    for kind in [
        NamespaceKind::User,
        NamespaceKind::Mount,
        NamespaceKind::Network,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Cgroup,
    ] {
        if !namespaces.has(kind) {
            continue;
        }
        if kind == NamespaceKind::User && same_namespace(init_pid, kind)? {
            continue;
        }
        flags |= kind.clone_flag();
    }
    Ok(flags)
}

fn same_namespace(pid: i32, kind: NamespaceKind) -> Result<bool> {
    let theirs = format!("/proc/{pid}/ns/{}", kind.proc_name());
    let ours = format!("/proc/self/ns/{}", kind.proc_name());
    let a = std::fs::metadata(&theirs).map_err(|e| Error::path("stat", &theirs, e))?;
    let b = std::fs::metadata(&ours).map_err(|e| Error::path("stat", &ours, e))?;
    use std::os::unix::fs::MetadataExt;
    Ok(a.ino() == b.ino() && a.dev() == b.dev())
}

/// The pid and time namespaces of the container, entered by the runtime so that its next
/// child is born in them; [`ForChildren::leave`] goes back.
struct ForChildren {
    saved: Vec<(OwnedFd, u64)>,
}

fn enter_for_children(init_pidfd: &OwnedFd, namespaces: &Namespaces) -> Result<ForChildren> {
    let mut saved = Vec::new();
    for kind in [NamespaceKind::Pid, NamespaceKind::Time] {
        if !namespaces.has(kind) {
            continue;
        }
        let own = format!("/proc/self/ns/{}", kind.proc_name());
        let fd = rustix::fs::open(&own, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::path("open", &own, e.into()))?;
        sys::set_namespace(init_pidfd.as_fd(), kind.clone_flag()).map_err(|e| {
            Error::sys(
                format!("join the container's {} namespace", kind.spec_name()),
                e,
            )
        })?;
        saved.push((fd, kind.clone_flag()));
    }
    Ok(ForChildren { saved })
}

impl ForChildren {
    fn leave(self) -> Result<()> {
        for (fd, flag) in self.saved {
            sys::set_namespace(fd.as_fd(), flag)
                .map_err(|e| Error::sys("return to the runtime's namespace", e))?;
        }
        Ok(())
    }
}
