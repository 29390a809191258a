//! The child side of `exec`: join the namespaces of a running container through its init's
//! pidfd, then become the requested process. Like the init, it is a fork of the runtime
//! that stays non-dumpable until exec and keeps no descriptor of the runtime.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

use super::finish::Finish;
use super::procfs::ProcHandle;
use super::{InitError, console};
use crate::plan::ProcessImage;
use crate::sync::{Message, SyncSocket};
use crate::sys;

/// What the exec'd process needs.
pub struct ExecContext<'a> {
    pub process: &'a ProcessImage,
    /// The container init's pidfd: the namespaces to join.
    pub init_pidfd: BorrowedFd<'a>,
    /// CLONE_NEW* flags of the namespaces to join here (pid and time were joined by the
    /// runtime before the fork, since they only apply to children).
    pub namespaces: u64,
    pub console_socket: Option<OwnedFd>,
    /// The init's root directory, for a container without a mount namespace of its own
    /// (its root is a chroot, which setns cannot give us).
    pub chroot: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub last_cap: u32,
    pub seccomp: Option<&'a berth_seccomp::Program>,
    pub signal_mask: &'a sys::SignalMask,
    /// The container's v1 cgroups, for the child to join itself before anything else.
    pub v1_self_join: Option<&'a berth_cgroups::V1SelfJoin>,
}

/// The entry point of the exec child. Never returns.
pub fn exec_child_main(ctx: &ExecContext<'_>, sync: &SyncSocket) -> ! {
    let error = match run(ctx, sync) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = sync.send(&Message::Error(error.to_string()));
    sys::exit_now(1)
}

fn run(ctx: &ExecContext<'_>, sync: &SyncSocket) -> Result<Infallible, InitError> {
    if let Some(join) = ctx.v1_self_join {
        join.join_calling_thread()
            .map_err(|e| InitError::Process(format!("join the container's cgroups: {e}")))?;
    }
    let mut keep = vec![sync.as_fd().as_raw_fd(), ctx.init_pidfd.as_raw_fd()];
    if let Some(socket) = &ctx.console_socket {
        keep.push(socket.as_raw_fd());
    }
    if let Some(root) = &ctx.chroot {
        keep.push(root.as_raw_fd());
    }
    // SAFETY: the exec child never returns into the runtime's code (it execs or exits), so
    // nothing uses or drops what owned the closed descriptors.
    unsafe { sys::close_fds_except(3 + ctx.preserve_fds, &keep) }
        .map_err(|e| InitError::sys("close the runtime's descriptors", e))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| InitError::sys("PR_SET_DUMPABLE", e.into()))?;
    // Taken while we still see the host's /proc: the container's own /proc could be
    // covered by its mounts (CVE-2025-52881).
    let proc = ProcHandle::open().map_err(|e| InitError::sys("open a private procfs handle", e))?;
    sync.expect(Message::Continue)?;
    if ctx.namespaces != 0 {
        sys::set_namespace(ctx.init_pidfd, ctx.namespaces)
            .map_err(|e| InitError::sys("join the container's namespaces", e))?;
    }
    if let Some(root) = &ctx.chroot {
        rustix::process::fchdir(root)
            .map_err(|e| InitError::sys("enter the container's root", e.into()))?;
        rustix::process::chroot(".").map_err(|e| InitError::sys("chroot", e.into()))?;
    }

    if ctx.process.plan.terminal {
        let socket = ctx.console_socket.as_ref().ok_or_else(|| {
            InitError::Console("a terminal was requested but there is no console socket".into())
        })?;
        let root = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| InitError::sys("open /", e.into()))?;
        let pty = console::open_pty(root.as_fd(), ctx.process.plan.console_size)?;
        console::send_master(socket.as_fd(), &pty.master)?;
        drop(pty.master);
        console::become_console(&pty.peer)?;
    }

    let finish = Finish {
        process: ctx.process,
        last_cap: ctx.last_cap,
        seccomp: ctx.seccomp,
        preserve_fds: ctx.preserve_fds,
        signal_mask: ctx.signal_mask,
    };
    let prepared = finish.prepare(&proc, sync)?;
    drop(proc);
    Err(finish.exec(prepared, sync))
}
