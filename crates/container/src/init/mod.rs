//! The child side: what the container's init does between clone and exec.
//!
//! The init is a fork of the runtime (no re-exec of the runtime binary): it already holds
//! the plan in memory. It waits for the runtime to place it (id maps, cgroups), joins and
//! creates namespaces, builds the root filesystem, asks the runtime to run the hooks that
//! belong outside, pivots, becomes the configured process, reports ready, waits for start,
//! and execs. Any failure is sent to the runtime as text and the init exits.

mod console;
mod dev;
mod exec;
mod finish;
mod fs;
mod mount_fd;
mod process;
mod procfs;
mod rootfs;
mod trampoline;

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::hooks::{HookKind, SpecState, run_hooks};
use crate::plan::ContainerPlan;
use crate::spec::{NamespaceKind, Plan};
use crate::state::Status;
use crate::sync::{Message, SyncSocket};
use crate::sys;

pub use exec::{ExecContext, exec_child_main};
pub use procfs::ProcHandle;
pub use rootfs::mounts_below;

/// What went wrong inside the init, as text for the runtime.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{op}: {}", crate::error::os_text(source))]
    Sys {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {}: {}", path.display(), crate::error::os_text(source))]
    Path {
        op: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Mount(String),
    #[error("device {0}")]
    Device(String),
    #[error("console: {0}")]
    Console(String),
    #[error("{0}")]
    Process(String),
    #[error("{0}")]
    Exec(String),
    #[error("{0}")]
    Runtime(#[from] crate::error::Error),
}

impl InitError {
    fn sys(op: impl Into<String>, source: std::io::Error) -> Self {
        InitError::Sys {
            op: op.into(),
            source,
        }
    }
    fn path(op: impl Into<String>, path: &Path, source: std::io::Error) -> Self {
        InitError::Path {
            op: op.into(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A cgroup hierarchy as the container should see it under a `cgroup` mount, in the
/// kernel's strings (made by the runtime before the clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMountSource {
    /// Directory name under the mount point (`memory`, `cpu,cpuacct`, `systemd`, `unified`).
    pub name: CString,
    /// The container's own directory in the host's hierarchy.
    pub host_dir: CString,
    /// Symlinks to `name` (`cpu` and `cpuacct` for a co-mounted `cpu,cpuacct`).
    pub aliases: Vec<CString>,
}

/// How `cgroup` mounts are laid out for this container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CgroupView {
    /// No cgroup filesystem on the host.
    #[default]
    None,
    /// Pure cgroup v2: a fresh cgroup2 mount when the container has a cgroup namespace
    /// (`fresh`), else a bind of its own directory.
    Unified {
        source: CgroupMountSource,
        fresh: bool,
    },
    /// v1 or hybrid: one bind per hierarchy under a tmpfs.
    Hierarchies(Vec<CgroupMountSource>),
}

/// How the init learns that it may exec.
#[derive(Debug)]
pub enum StartSignal {
    /// `create`: a connection of `start` on this listening socket (in the state directory).
    Socket(OwnedFd),
    /// `run`: a Start message on the sync socket.
    Sync,
}

/// What the init gets: the plan, its descriptors, and how the runtime placed it.
pub struct InitContext<'a> {
    pub plan: &'a ContainerPlan,
    pub start: StartSignal,
    pub console_socket: Option<OwnedFd>,
    pub cgroups: CgroupView,
    /// The init has no user namespace of its own to set up but must first prepare
    /// namespaces in an intermediate process (see `spawn`).
    pub staged: bool,
    /// The runtime's signal mask before it blocked everything.
    pub signal_mask: &'a sys::SignalMask,
    /// The clone made the cgroup namespace (cloned straight into the container's cgroup on
    /// a pure cgroup v2 host).
    pub cgroupns_at_clone: bool,
    /// The container's v1 cgroups, for the init to join itself before anything else.
    pub v1_self_join: Option<&'a berth_cgroups::V1SelfJoin>,
    /// The container's cgroup is made when the runtime places the init (the systemd
    /// driver's unit needs the init's pid): a `cgroup` mount waits for the placement.
    pub cgroup_made_at_placement: bool,
}

/// The entry point of the child after clone. Never returns.
pub fn child_main(ctx: &InitContext<'_>, sync: &SyncSocket) -> ! {
    let error = match run(ctx, sync) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = sync.send(&Message::Error(error.to_string()));
    sys::exit_now(1)
}

fn run(ctx: &InitContext<'_>, sync: &SyncSocket) -> Result<Infallible, InitError> {
    // First, while its files are open and before the pages we touch are charged elsewhere
    // (v1 memory charges stay where they were made) or anything can fork.
    if let Some(join) = ctx.v1_self_join {
        join.join_calling_thread()
            .map_err(|e| InitError::Process(format!("join the container's cgroups: {e}")))?;
    }
    close_inherited_fds(ctx, sync)?;
    // Until exec, nobody in the container may ptrace us or open /proc/<pid>/exe (the
    // runtime binary): CVE-2019-5736. With a new user namespace, not before its id maps are
    // written: a non-dumpable process's /proc files belong to the host's root while its
    // namespace maps no root, and an unprivileged runtime could not write the maps. No
    // process of the container exists until then.
    let new_user = ctx.plan.spec.namespaces.is_new(NamespaceKind::User);
    if !new_user {
        not_dumpable()?;
    }
    // Device nodes and mount points get exactly the modes we ask for.
    rustix::process::umask(Mode::empty());
    let kernel = ctx.plan;
    let plan = &kernel.spec;

    // A new user namespace needs its id maps before we do anything privileged. Otherwise
    // the runtime finishes placing us (the cgroup2 tree when the clone could not) while we
    // build the root filesystem, and we wait for that only before anything is forked or the
    // cgroup namespace is made.
    let placed_first = ctx.staged || plan.namespaces.is_new(NamespaceKind::User);
    if ctx.staged {
        enter_namespaces_staged(ctx, sync)?;
    } else {
        if placed_first {
            sync.expect(Message::Continue)?;
            become_userns_root(plan)?;
        }
        join_namespaces(plan, |k| {
            !matches!(k, NamespaceKind::Pid | NamespaceKind::Time)
        })?;
    }
    if new_user {
        not_dumpable()?;
    }
    // A fresh cgroup2 mount shows the cgroup namespace, which must exist before it.
    let cgroupns_early =
        matches!(ctx.cgroups, CgroupView::Unified { fresh: true, .. }) && !ctx.cgroupns_at_clone;
    // Whether the runtime's Continue (placement finished) has been received.
    let mut placed = placed_first;
    if cgroupns_early {
        if !placed {
            sync.expect(Message::Continue)?;
            placed = true;
        }
        unshare_cgroupns(plan)?;
    }

    let proc = ProcHandle::open().map_err(|e| InitError::sys("open a private procfs handle", e))?;
    // mknod is refused in a user namespace: ours, or the one an unprivileged runtime runs in
    // (podman run by a user runs the runtime as root of its own).
    let in_userns = plan.namespaces.has(NamespaceKind::User) || crate::privilege::unprivileged();

    if ctx.cgroup_made_at_placement
        && !placed
        && plan
            .mounts
            .iter()
            .any(|m| matches!(m.kind, crate::spec::MountKind::Cgroup))
    {
        sync.expect(Message::Continue)?;
        placed = true;
    }
    let root = rootfs::prepare_root(kernel)?;
    for m in &kernel.mounts {
        rootfs::mount_one(root.as_fd(), m, &ctx.cgroups)?;
    }
    if plan.setup_dev {
        dev::create_devices(root.as_fd(), &kernel.devices, in_userns)?;
        dev::create_dev_symlinks(root.as_fd())?;
    }
    fs::mkdir_all_in_root(root.as_fd(), &kernel.cwd)
        .map_err(|e| InitError::path("create cwd", &plan.process.cwd, e))?;

    if plan.process.terminal {
        let socket = ctx.console_socket.as_ref().ok_or_else(|| {
            InitError::Console("process.terminal is set but there is no console socket".into())
        })?;
        let pty = console::open_console(root.as_fd(), plan.process.console_size)?;
        console::send_master(socket.as_fd(), &pty.master)?;
        drop(pty.master);
        console::become_console(&pty.peer)?;
    }

    if !placed {
        sync.expect(Message::Continue)?;
    }
    // Made only once we are in the container's cgroups, so that they are its root (unless
    // the clone made it, straight into the cgroup, on cgroup v2).
    if !cgroupns_early && !ctx.cgroupns_at_clone {
        unshare_cgroupns(plan)?;
    }

    // prestart and createRuntime hooks run in the runtime's namespaces.
    sync.send(&Message::RunHooks)?;
    sync.expect(Message::Continue)?;
    let host_pid: i32 = proc
        .self_pid()
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if let Some(hooks) = plan.hooks.create_container() {
        let state = SpecState::new(
            &plan.id,
            Status::Creating,
            host_pid,
            &plan.bundle,
            &plan.annotations,
        );
        run_hooks(HookKind::CreateContainer, hooks, &state.to_json()?)?;
    }

    let dev_null = rootfs::open_dev_null()?;
    for path in &plan.masked_paths {
        rootfs::mask_path(root.as_fd(), path, &dev_null)?;
    }
    for path in &plan.readonly_paths {
        rootfs::readonly_path(root.as_fd(), path)?;
    }
    drop(dev_null);
    if !plan.namespaces.has(NamespaceKind::Mount) {
        rootfs::chroot_root(&root)?;
    } else if kernel.no_pivot {
        rootfs::move_root(&root)?;
    } else {
        rootfs::pivot_root(&root)?;
    }
    drop(root);
    rootfs::finish_root(plan)?;

    if let Some(name) = &plan.hostname {
        rustix::system::sethostname(name.as_bytes())
            .map_err(|e| InitError::sys(format!("sethostname {name:?}"), e.into()))?;
    }
    if let Some(name) = &plan.domainname {
        rustix::system::setdomainname(name.as_bytes())
            .map_err(|e| InitError::sys(format!("setdomainname {name:?}"), e.into()))?;
    }
    for sysctl in &kernel.sysctls {
        proc.write(&sysctl.path, sysctl.value.as_bytes())
            .map_err(|e| InitError::sys(format!("sysctl {}={}", sysctl.key, sysctl.value), e))?;
    }
    if let Some(name) = &kernel.session_keyring {
        // Kernels or seccomp policies without keyrings: runc also carries on.
        if let Err(e) = sys::join_session_keyring(name)
            && !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM))
        {
            return Err(InitError::sys("join a new session keyring", e));
        }
    }
    if let Some(persona) = plan.personality {
        sys::set_personality(persona).map_err(|e| InitError::sys("personality", e))?;
    }
    let finish = finish::Finish {
        process: &kernel.process,
        last_cap: kernel.last_cap,
        seccomp: kernel.seccomp.as_ref(),
        preserve_fds: kernel.preserve_fds,
        signal_mask: ctx.signal_mask,
    };
    let prepared = finish.prepare(&proc, sync)?;
    drop(proc);

    sync.send(&Message::Ready)?;
    sys::restore_signal_mask(ctx.signal_mask).map_err(|e| InitError::sys("sigprocmask", e))?;
    // `start` stays connected until we exec (the connection is close-on-exec), so it knows
    // when the process runs, and it gets the error text if we fail before.
    let start = match &ctx.start {
        StartSignal::Socket(listener) => Some(accept_start(listener)?),
        StartSignal::Sync => {
            sync.expect(Message::Start)?;
            None
        }
    };
    let error = (|| {
        if let Some(hooks) = plan.hooks.start_container() {
            let state = SpecState::new(
                &plan.id,
                Status::Created,
                host_pid,
                &plan.bundle,
                &plan.annotations,
            );
            run_hooks(HookKind::StartContainer, hooks, &state.to_json()?)?;
        }
        Ok::<InitError, InitError>(finish.exec(prepared, sync))
    })()
    .unwrap_or_else(|e| e);
    if let Some(connection) = &start {
        let _ = rustix::net::send(
            connection,
            error.to_string().as_bytes(),
            rustix::net::SendFlags::NOSIGNAL,
        );
    }
    Err(error)
}

/// Closes every descriptor the runtime had open except the ones the init needs.
fn close_inherited_fds(ctx: &InitContext<'_>, sync: &SyncSocket) -> Result<(), InitError> {
    use std::os::fd::AsRawFd;
    let mut keep = vec![sync.as_fd().as_raw_fd()];
    if let Some(socket) = &ctx.console_socket {
        keep.push(socket.as_raw_fd());
    }
    if let StartSignal::Socket(socket) = &ctx.start {
        keep.push(socket.as_raw_fd());
    }
    // SAFETY: the init never returns into the runtime's code (it execs or exits), so nothing
    // uses or drops what owned the closed descriptors.
    unsafe { sys::close_fds_except(3 + ctx.plan.preserve_fds, &keep) }
        .map_err(|e| InitError::sys("close the runtime's descriptors", e))
}

fn unshare_cgroupns(plan: &Plan) -> Result<(), InitError> {
    if plan.namespaces.is_new(NamespaceKind::Cgroup) {
        // SAFETY: the init is single-threaded, and in its cgroups already (the namespace's
        // root is where it is now).
        unsafe { sys::unshare(NamespaceKind::Cgroup.clone_flag()) }
            .map_err(|e| InitError::sys("unshare cgroup namespace", e))?;
    }
    Ok(())
}

fn not_dumpable() -> Result<(), InitError> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| InitError::sys("PR_SET_DUMPABLE", e.into()))
}

/// After a new user namespace is mapped: become its root (when root is mapped), so that
/// files we create belong to the container's root.
fn become_userns_root(plan: &Plan) -> Result<(), InitError> {
    let uid_mapped = plan.uid_mappings.iter().any(|m| m.container_id == 0);
    let gid_mapped = plan.gid_mappings.iter().any(|m| m.container_id == 0);
    if uid_mapped && gid_mapped {
        sys::set_ids(0, 0).map_err(|e| InitError::sys("become root in the user namespace", e))?;
    }
    Ok(())
}

/// setns into every joined namespace that `select` accepts, in plan order (user first).
fn join_namespaces(plan: &Plan, select: impl Fn(NamespaceKind) -> bool) -> Result<(), InitError> {
    for (kind, path) in &plan.namespaces.join {
        if !select(*kind) {
            continue;
        }
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(
            |e| {
                InitError::path(
                    format!("open {} namespace", kind.spec_name()),
                    path,
                    e.into(),
                )
            },
        )?;
        sys::set_namespace(fd.as_fd(), kind.clone_flag()).map_err(|e| {
            InitError::path(format!("join {} namespace", kind.spec_name()), path, e)
        })?;
    }
    Ok(())
}

/// The staged path, for configurations where namespaces must be joined before new ones are
/// made (a joined user namespace, or a new user namespace plus joined ones): this first
/// child joins, unshares, and — when a new pid namespace is wanted — forks the real init as
/// a sibling (CLONE_PARENT) and exits.
fn enter_namespaces_staged(ctx: &InitContext<'_>, sync: &SyncSocket) -> Result<(), InitError> {
    let plan = &ctx.plan.spec;
    join_namespaces(plan, |k| {
        !matches!(k, NamespaceKind::Pid | NamespaceKind::Time)
    })?;
    if plan.namespaces.is_new(NamespaceKind::User) {
        // SAFETY: the staging child is single-threaded; its id maps are written next.
        unsafe { sys::unshare(NamespaceKind::User.clone_flag()) }
            .map_err(|e| InitError::sys("unshare user namespace", e))?;
        sync.send(&Message::NeedIdMaps)?;
        sync.expect(Message::Continue)?;
        become_userns_root(plan)?;
    }
    let flags = plan.namespaces.new_flags()
        & !(NamespaceKind::User.clone_flag()
            | NamespaceKind::Pid.clone_flag()
            | NamespaceKind::Cgroup.clone_flag()
            | NamespaceKind::Time.clone_flag());
    // SAFETY: the staging child is single-threaded and resolves nothing before the fork.
    unsafe { sys::unshare(flags) }.map_err(|e| InitError::sys("unshare namespaces", e))?;
    if plan.namespaces.is_new(NamespaceKind::Pid) {
        // SAFETY: single-threaded; the child side becomes the init and never returns here.
        match unsafe {
            sys::clone3(
                libc::CLONE_PARENT as u64 | NamespaceKind::Pid.clone_flag(),
                None,
            )
        }
        .map_err(|e| InitError::sys("clone the init into its pid namespace", e))?
        {
            sys::Forked::Child => {}
            sys::Forked::Parent { pid, .. } => {
                let _ = sync.send(&Message::InitPid(pid));
                sys::exit_now(0);
            }
        }
    } else {
        sync.send(&Message::InitPid(
            rustix::process::getpid().as_raw_nonzero().get(),
        ))?;
    }
    sync.expect(Message::Continue)?;
    Ok(())
}

/// Waits for `start`: a connection on the start socket and one byte.
fn accept_start(listener: &OwnedFd) -> Result<OwnedFd, InitError> {
    loop {
        let connection = match rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC)
        {
            Ok(c) => c,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(InitError::sys("accept on the start socket", e.into())),
        };
        let mut byte = [0u8; 1];
        match rustix::io::read(&connection, &mut byte) {
            Ok(1) => return Ok(connection),
            // A connection that closes without the byte (a prober) is not a start.
            Ok(_) | Err(_) => continue,
        }
    }
}
