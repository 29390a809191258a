//! The thin syscall layer: every `unsafe` of this crate lives here.
//!
//! Everything rustix already wraps safely is used directly by the callers; this module only
//! holds what rustix does not offer (clone3, mount(2) with raw flags, mount_setattr,
//! close_range, execve, signal masks, keyctl, personality).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What [`clone3`] returns on each side of the fork.
pub enum Forked {
    /// We are the new process.
    Child,
    /// We are the caller; `pid` is the child's pid in our pid namespace.
    Parent { pid: i32, pidfd: OwnedFd },
}

/// clone3(2) with fork semantics (no new stack, SIGCHLD on exit) and a pidfd for the child.
///
/// `flags` are namespace flags (CLONE_NEW*) and CLONE_PARENT; `cgroup` places the child in a
/// cgroup v2 directory atomically (CLONE_INTO_CGROUP).
///
/// # Safety
/// A fork of the whole process. The caller must be single-threaded (the runtime is by
/// construction: no thread is spawned before the container's init is forked), so that the
/// child, which goes on running ordinary Rust code on a copy of the caller's memory, finds
/// no lock held by a thread that did not come along. On the [`Forked::Child`] side the
/// caller must never return into the parent's code: the child ends in exec or
/// [`exit_now`], so that no destructor of the parent's objects (guards that kill or remove
/// things) runs twice.
pub unsafe fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size we pass, `pidfd` outlives the call,
    // and with a null stack clone3 behaves like fork: the child continues on a copy of our
    // stack. The process is single-threaded, so no lock can be held by a vanished thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: CLONE_PIDFD made the kernel store a new, owned pidfd in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// mount(2) with raw flags and an optional data string.
pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is either null or a NUL-terminated string that outlives the call.
    let ret = unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    };
    check_int(ret).map(drop)
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on `path` relative to `dirfd` (use `AT_EMPTY_PATH` with an empty path to
/// change the mount the fd refers to).
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: u32,
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
) -> io::Result<()> {
    let mut attr = MountAttr {
        attr_set,
        attr_clr,
        propagation,
        userns_fd: 0,
    };
    // SAFETY: `attr` is a valid mount_attr of the size passed, `path` is NUL-terminated.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

/// close_range(2): with `cloexec`, marks the range close-on-exec instead of closing it.
///
/// # Safety
/// It acts on every descriptor of the process in the range, owned or not. Without
/// `cloexec`, no live object may still use one of them (an `OwnedFd` would close a number
/// that is reused); with it, nothing may rely on one of them surviving the next exec. Used
/// right before the exec of a container's process, when no such object is left.
pub unsafe fn close_range(first: u32, last: u32, cloexec: bool) -> io::Result<()> {
    let flags = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // SAFETY: close_range takes plain integers; closing fds we do not own is exactly its job,
    // and callers only use it right before exec, when no Rust object relies on those fds.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    check(ret).map(drop)
}

/// execve(2). Only returns on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv = null_terminated(argv);
    let envp = null_terminated(envp);
    // SAFETY: `path` and every element of the two null-terminated pointer arrays are valid
    // NUL-terminated strings that live until the call returns (it only returns on failure).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// execveat(2) of the file `fd` refers to (AT_EMPTY_PATH). Only returns on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv = null_terminated(argv);
    let envp = null_terminated(envp);
    // SAFETY: as for execve; the empty path with AT_EMPTY_PATH names the file of `fd`.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A saved signal mask, restored by [`restore_signal_mask`].
pub struct SignalMask(libc::sigset_t);

/// Blocks every signal and returns the previous mask. Blocking before a fork means a
/// SIGCHLD (or a signal to forward) that arrives before we wait stays pending instead of
/// being lost.
pub fn block_all_signals() -> io::Result<SignalMask> {
    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask only write the sets we own.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        check_int(libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old))?;
        Ok(SignalMask(old))
    }
}

/// Restores a mask saved by [`block_all_signals`].
pub fn restore_signal_mask(mask: &SignalMask) -> io::Result<()> {
    // SAFETY: `mask.0` is a sigset_t filled in by the kernel.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &mask.0, std::ptr::null_mut()) };
    check_int(ret).map(drop)
}

/// The command line a C `main` was given, as strings (an argument that is not UTF-8 is
/// converted lossily; `std::env::args` would panic on it). A binary with its own C `main`
/// reads its arguments from there: `std::env::args` depends on glibc passing them to
/// initializers of dynamically linked code, which a static build does not get.
///
/// # Safety
/// `argv` must point to `argc` valid pointers to NUL-terminated strings that live for the
/// whole call, as the C runtime passes them to `main`.
pub unsafe fn command_line(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
) -> Vec<String> {
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            // SAFETY: i < argc, and the caller guarantees argc valid pointers at argv.
            let arg = unsafe { *argv.add(i) };
            if arg.is_null() {
                return String::new();
            }
            // SAFETY: a non-null pointer from argv is a NUL-terminated string (caller).
            unsafe { std::ffi::CStr::from_ptr(arg) }
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// What Rust's own `fn main` start-up does that a runtime needs, for a binary that skips
/// it (berth-runtime does, to save the read of /proc/self/maps that start-up makes): the
/// standard descriptors 0-2 are open, on /dev/null where the caller closed them (so that no
/// file opened later becomes someone's stdout), and SIGPIPE is ignored (a closed pipe is an
/// error to report, not a reason to die).
pub fn standard_process_prologue() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    loop {
        // SAFETY: `fds` is an array of 3 initialised pollfd that outlives the call.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
        if ret >= 0 {
            break;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::abort();
        }
    }
    for slot in fds {
        if slot.revents & libc::POLLNVAL != 0 {
            // The lowest free number is the closed one. Not close-on-exec: the container's
            // process inherits its stdio from us.
            // SAFETY: a NUL-terminated literal path; the descriptor is deliberately kept.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd != slot.fd {
                std::process::abort();
            }
        }
    }
    // SAFETY: installing SIG_IGN has no memory-safety requirements.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Puts the disposition of `signal` back to the default. Rust's runtime ignores SIGPIPE,
/// and an ignored signal would stay ignored in the container's process across exec.
pub fn reset_signal_disposition(signal: i32) {
    // SAFETY: installing SIG_DFL has no memory-safety requirements.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): gives the container its own session keyring
/// so it cannot read the keys of the host's session.
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    check(ret).map(drop)
}

/// personality(2).
pub fn set_personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: personality takes a plain integer.
    let ret = unsafe { libc::personality(persona) };
    check_int(ret).map(drop)
}

/// setgroups(2) for the whole process (we are single-threaded at this point).
pub fn set_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: the pointer and length describe a valid slice; the raw syscall avoids glibc's
    // cross-thread broadcast, which is unnecessary in our single-threaded child.
    let ret = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    check(ret).map(drop)
}

/// setresuid/setresgid for the whole process (single-threaded).
pub fn set_ids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integer syscalls.
    let ret = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    check(ret)?;
    // SAFETY: plain integer syscalls.
    let ret = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    check(ret).map(drop)
}

/// `struct __user_cap_header_struct` / `__user_cap_data_struct` for capget/capset v3.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capset(2) with 64-bit sets.
pub fn set_capabilities(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    const V3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and the two-element data array are the layout capset v3 expects.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(ret).map(drop)
}

/// prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap).
pub fn raise_ambient_capability(cap: u32) -> io::Result<()> {
    // SAFETY: plain integer prctl.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check_int(ret).map(drop)
}

/// prctl(PR_CAPBSET_DROP, cap).
pub fn drop_bounding_capability(cap: u32) -> io::Result<()> {
    // SAFETY: plain integer prctl.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    check_int(ret).map(drop)
}

/// setrlimit(2) through prlimit on ourselves, taking raw resource numbers from the plan.
pub fn set_rlimit(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a valid rlimit64; the old-limit pointer is null.
    let ret = unsafe { libc::prlimit64(0, resource as _, &limit, std::ptr::null_mut()) };
    check_int(ret).map(drop)
}

/// The I/O priority of the calling process (ioprio_set has no libc or rustix wrapper).
pub fn set_ioprio(class: u32, priority: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let value = ((class as libc::c_long) << 13) | priority as libc::c_long;
    // SAFETY: plain integer syscall on ourselves (who = 0).
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    check(ret).map(drop)
}

/// The kernel's `struct sched_attr` (include/uapi/linux/sched/types.h, version 1).
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// sched_setattr(2) on the calling thread (no libc wrapper). The utilization clamps are
/// not part of the runtime-spec: with their flags set the kernel gets 0 and 1024 (no
/// clamp); without them the first version of the struct is passed, which every kernel
/// with sched_setattr reads.
pub fn sched_setattr(
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    (runtime, deadline, period): (u64, u64, u64),
) -> io::Result<()> {
    const SCHED_FLAG_UTIL_CLAMP: u64 = 0x20 | 0x40;
    const SCHED_ATTR_SIZE_VER0: u32 = 48;
    let attr = SchedAttr {
        size: if flags & SCHED_FLAG_UTIL_CLAMP != 0 {
            std::mem::size_of::<SchedAttr>() as u32
        } else {
            SCHED_ATTR_SIZE_VER0
        },
        policy,
        flags,
        nice,
        priority,
        runtime,
        deadline,
        period,
        util_min: 0,
        util_max: 1024,
    };
    // SAFETY: `attr` is a valid, initialized sched_attr whose `size` says how much the
    // kernel may read; pid 0 is the calling thread; flags 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    check(ret).map(drop)
}

/// set_mempolicy(2) for the calling thread (inherited by fork and kept across exec).
pub fn set_mempolicy(mode: i32, nodemask: &[u64]) -> io::Result<()> {
    let maxnode = (nodemask.len() * 64) as libc::c_ulong;
    let mask = if nodemask.is_empty() {
        std::ptr::null()
    } else {
        nodemask.as_ptr()
    };
    // SAFETY: `mask` is null (maxnode 0) or points to `nodemask.len()` words, which hold
    // `maxnode` bits; the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            mode as libc::c_int,
            mask,
            // The kernel reads maxnode - 1 bits (a historical off-by-one every caller
            // compensates for).
            if maxnode == 0 { 0 } else { maxnode + 1 },
        )
    };
    check(ret).map(drop)
}

/// setns(2) with a raw CLONE_NEW* flag (0 accepts any type).
pub fn set_namespace(fd: BorrowedFd<'_>, flag: u64) -> io::Result<()> {
    // SAFETY: plain integer syscall on a borrowed, open fd.
    let ret = unsafe { libc::setns(fd.as_raw_fd(), flag as libc::c_int) };
    check_int(ret).map(drop)
}

/// unshare(2) with raw CLONE_NEW* flags.
///
/// # Safety
/// It moves the calling thread (and, for a new pid or time namespace, its future children)
/// into new namespaces. The caller must be single-threaded: a new user namespace needs it,
/// and with other threads the process would live in two sets of namespaces at once. What
/// the caller holds that means something only in the old namespaces (paths under /proc,
/// ids, mounts it resolved) must not be used as if it were in the new ones.
pub unsafe fn unshare(flags: u64) -> io::Result<()> {
    if flags == 0 {
        return Ok(());
    }
    // SAFETY: plain integer syscall; the process is single-threaded.
    let ret = unsafe { libc::unshare(flags as libc::c_int) };
    check_int(ret).map(drop)
}

/// Exits immediately without running atexit handlers or flushing stdio buffers that belong
/// to the parent we were forked from.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Closes every fd from `first` up, except those in `keep`. The init calls this first thing
/// so that no descriptor of the runtime (the state dir lock, a cgroup directory, ...) stays
/// open in the container, not even during setup.
///
/// # Safety
/// As for [`close_range`] without `cloexec`: the objects of the forked runtime that own
/// the closed descriptors (the state-dir lock, cgroup fds) must never be used or dropped
/// afterwards, which holds in a forked child that ends in exec or [`exit_now`].
pub unsafe fn close_fds_except(first: u32, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut start = first;
    for fd in keep {
        if fd > start {
            // SAFETY: the caller's contract covers every descriptor outside `keep`.
            unsafe { close_range(start, fd - 1, false) }?;
        }
        start = fd + 1;
    }
    // SAFETY: as above.
    unsafe { close_range(start, u32::MAX, false) }
}

/// A signalfd for every signal (they must be blocked already), non-blocking, close-on-exec.
pub fn signalfd_all() -> io::Result<OwnedFd> {
    // SAFETY: the sigset is plain data filled by sigfillset; signalfd returns a new fd that
    // we take ownership of.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let fd = check_int(libc::signalfd(
            -1,
            &all,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Reads one pending signal from a signalfd; `None` when nothing is pending.
pub fn read_signal(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    // SAFETY: signalfd_siginfo is plain data of the size we read into.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = libc::read(
            fd.as_raw_fd(),
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        );
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::EAGAIN) => Ok(None),
                _ => Err(err),
            };
        }
        Ok((n as usize == size).then_some(info.ssi_signo as i32))
    }
}
