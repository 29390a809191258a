//! Every `unsafe` of the engine: fork, the signal mask, and fd plumbing that rustix does
//! not wrap. Each function states its contract.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Which side of a fork we are on.
pub enum Forked {
    Child,
    Parent(i32),
}

/// fork(2).
///
/// # Safety
/// The calling process must be single-threaded (the `berth` command is), so the child
/// does not inherit locks held by other threads.
pub unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees a single-threaded process; fork has no other
    // preconditions.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends the process at once, without running destructors or flushing stdio (for the
/// intermediate child of a double fork).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Blocks every signal in the calling thread; returns the previous mask.
pub fn block_all_signals() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data that sigfillset initializes; the pointers are to
    // locals that live across the calls.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(old)
    }
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Catches every signal that can be caught (but SIGCHLD and the faults) with a handler that does nothing,
/// and unblocks them all: the process cannot be killed by a stray signal (its syscalls see
/// EINTR, a write to a closed pipe EPIPE), while the processes it starts get a clean slate,
/// since exec resets handled signals to their default and a mask would be inherited (a
/// container whose PID 1 had SIGTERM blocked, and its children too, could not be stopped).
pub fn catch_all_signals() -> io::Result<()> {
    // SAFETY: the sigaction is zeroed then filled; the handler is async-signal-safe (it does
    // nothing); SIGKILL, SIGSTOP and the libc-reserved real-time signals are skipped (their
    // sigaction fails harmlessly); the empty mask is a local.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in 1..libc::SIGRTMAX() {
            // Faults stay fatal (a no-op handler would return into the faulting
            // instruction forever), and SIGABRT keeps aborting.
            if matches!(
                sig,
                libc::SIGKILL
                    | libc::SIGSTOP
                    | libc::SIGCHLD
                    | libc::SIGSEGV
                    | libc::SIGBUS
                    | libc::SIGILL
                    | libc::SIGFPE
                    | libc::SIGTRAP
                    | libc::SIGSYS
                    | libc::SIGABRT
            ) {
                continue;
            }
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Restores a mask returned by [`block_all_signals`].
pub fn restore_signals(mask: &libc::sigset_t) {
    // SAFETY: `mask` is a valid sigset_t from block_all_signals.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
    }
}

/// A signalfd for `signals` (which the caller has blocked), non-blocking, close-on-exec.
pub fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    // SAFETY: the set is initialized by sigemptyset before use; signalfd returns a new fd
    // that we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads one signal number from a signalfd; `None` when none is pending.
pub fn read_signal(fd: BorrowedFd<'_>) -> Option<i32> {
    let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    match rustix::io::read(fd, &mut info) {
        Ok(n) if n == info.len() => {
            Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32)
        }
        _ => None,
    }
}

/// Puts `fd` at descriptor number `target` (0, 1 or 2), without close-on-exec.
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        // dup2 onto itself keeps the flags; clear close-on-exec explicitly.
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        return Ok(());
    }
    // SAFETY: dup2 on two descriptor numbers; `fd` is open (borrowed) and `target` is one
    // of the standard descriptors, which the caller means to replace.
    if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every descriptor from 3 up except those in `keep`.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep.iter().map(|f| *f as u32).filter(|f| *f >= 3).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for k in keep.iter().copied().chain(std::iter::once(u32::MAX)) {
        if k > first {
            // SAFETY: close_range only closes descriptors; none of the ones in the range
            // is owned by a live Rust object the caller still uses (the caller's contract:
            // it keeps what it needs in `keep`).
            unsafe {
                libc::syscall(libc::SYS_close_range, first, k - 1, 0);
            }
        }
        first = k.saturating_add(1);
    }
}

/// Sets the loopback interface up in the network namespace of process `pid` (a private
/// namespace starts with `lo` down; podman and docker bring it up). The calling thread
/// enters that namespace for the two ioctls and returns to its own.
pub fn loopback_up_in(pid: i32) -> io::Result<()> {
    use std::fs::File;
    let theirs = File::open(format!("/proc/{pid}/ns/net"))?;
    if crate::userns::active() {
        return loopback_up_from_child(theirs.as_fd());
    }
    let ours = File::open("/proc/self/ns/net")?;
    // SAFETY: setns with a namespace fd we opened; it affects only this (single) thread.
    if unsafe { libc::setns(theirs.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let result = set_loopback_up();
    // SAFETY: as above, back to the namespace we came from.
    let back = unsafe { libc::setns(ours.as_raw_fd(), libc::CLONE_NEWNET) };
    if back != 0 {
        return Err(io::Error::last_os_error());
    }
    result
}

/// Rootless: root of the user's namespace may enter the container's network namespace but
/// not go back to the host's (the host's user namespace owns that), so a child does it and
/// exits, with the errno as its exit status.
fn loopback_up_from_child(theirs: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: the monitor is single-threaded; the child only makes syscalls and _exits.
    match unsafe { fork() }? {
        Forked::Child => {
            // SAFETY: setns with a namespace fd we opened, in the child's single thread.
            let entered = unsafe { libc::setns(theirs.as_raw_fd(), libc::CLONE_NEWNET) } == 0;
            let code = match entered.then(set_loopback_up) {
                Some(Ok(())) => 0,
                Some(Err(e)) => e.raw_os_error().unwrap_or(libc::EIO).min(255),
                None => io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO)
                    .min(255),
            };
            exit_now(code)
        }
        Forked::Parent(child) => {
            let mut status = 0;
            loop {
                // SAFETY: waits for our own child; status is a valid out pointer.
                let r = unsafe { libc::waitpid(child, &mut status, 0) };
                if r == child {
                    break;
                }
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
            match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
                (true, 0) => Ok(()),
                (true, errno) => Err(io::Error::from_raw_os_error(errno)),
                _ => Err(io::Error::other("the loopback helper was killed")),
            }
        }
    }
}

fn set_loopback_up() -> io::Result<()> {
    let socket = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data; the name is NUL-terminated within IFNAMSIZ; the two
    // ioctls read and write only that struct.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Gives the heap's free pages back to the kernel (the monitor inherits the command's
/// heap, most of it freed after the start: the spec, the parsed flags).
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory of the allocator; no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drops the pages of `range` from the process (MADV_DONTNEED): a file's private mapping
/// reads the file again, an anonymous one reads zeros.
///
/// # Safety
/// Nothing may rely on what `range` holds now beyond what it will read afterwards: for a
/// file mapping no page may have been written (copy-on-write), for anonymous memory no
/// live object may be there.
pub unsafe fn drop_pages(range: std::ops::Range<usize>) -> io::Result<()> {
    // SAFETY: the caller vouches for the range's content (above); madvise itself checks
    // that the range is mapped.
    let r = unsafe {
        libc::madvise(
            range.start as *mut libc::c_void,
            range.end - range.start,
            libc::MADV_DONTNEED,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Clones the mount at `source` in the mount namespace of process `pid` (another container's
/// /dev/shm) onto `target` in ours. The kernel clones (open_tree, bind) only mounts of the
/// caller's own namespace, so the tree is cloned from inside theirs and attached here. The
/// calling thread enters their namespace for the one open_tree and returns; `source` is
/// resolved there, against their root.
pub fn clone_mount_from(pid: i32, source: &str, target: &std::path::Path) -> io::Result<()> {
    use rustix::mount::{MoveMountFlags, OpenTreeFlags};
    use std::fs::File;
    let ours = File::open("/proc/self/ns/mnt")?;
    let theirs = File::open(format!("/proc/{pid}/ns/mnt"))?;
    // SAFETY: setns with a namespace fd we opened. The monitor is single-threaded (a mount
    // namespace cannot be entered by a thread sharing its fs with others: EINVAL), and it
    // goes back below before anything else runs.
    if unsafe { libc::setns(theirs.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    );
    // SAFETY: as above, back to the namespace we came from (entering it resets our root
    // and working directory to its root: the monitor works from / anyway).
    if unsafe { libc::setns(ours.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    rustix::mount::move_mount(
        tree?,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// unshare(2) of the user namespace: the calling process gets a new, unmapped one.
///
/// # Safety
/// The process must be single-threaded (the kernel refuses otherwise, and a thread that
/// shared our credentials would keep the old ones).
pub unsafe fn unshare_user_namespace() -> io::Result<()> {
    // SAFETY: no pointers; the caller guarantees a single thread.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// unshare(2) of the mount namespace (a copy of the current one).
pub fn unshare_mount_namespace() -> io::Result<()> {
    // SAFETY: no pointers; a new mount namespace affects only the calling thread's view,
    // and the callers are single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// setns(2) into the namespace of `fd` (`flag`: its CLONE_NEW* type).
///
/// # Safety
/// For a user namespace, the process must be single-threaded (the kernel refuses otherwise).
pub unsafe fn set_namespace(fd: BorrowedFd<'_>, flag: i32) -> io::Result<()> {
    // SAFETY: fd is a valid, open descriptor for the call's duration.
    if unsafe { libc::setns(fd.as_raw_fd(), flag) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sleeps until a signal ends the process: the holder of a rootless user's namespaces.
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause takes no arguments and only returns on a caught signal.
        unsafe { libc::pause() };
    }
}
