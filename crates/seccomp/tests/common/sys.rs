//! The raw calls the kernel tests need (test code only).
#![allow(dead_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

/// A raw syscall with integer arguments: `Ok(ret)` or `Err(errno)`.
/// Only for syscalls that do not write through their arguments (getppid,
/// getpgid, getpriority, kcmp, unshare, keyctl with integer args, mount with
/// null pointers, clone3 with a null struct, personality, ...).
pub fn sys(nr: i64, a: [u64; 6]) -> Result<i64, i32> {
    // SAFETY: per this function's contract the syscall is passed integers
    // only and does not write to our memory through them; a pointer-typed
    // argument is either 0 (the kernel returns EFAULT) or refused by the
    // filter before the kernel dereferences it.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

/// SECCOMP_IOCTL_NOTIF_RECV: wait for one notification.
pub fn notif_recv(fd: BorrowedFd<'_>) -> std::io::Result<libc::seccomp_notif> {
    // SAFETY: seccomp_notif is plain old data; all-zero is a valid value
    // (the kernel requires the buffer to be zeroed).
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `n` is a valid, writable seccomp_notif for the ioctl that
    // expects exactly that type; fd is a live descriptor.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n)
    }
}

/// SECCOMP_IOCTL_NOTIF_SEND: answer notification `id` with `val`/`error`.
pub fn notif_send(fd: BorrowedFd<'_>, id: u64, val: i64, error: i32) -> std::io::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags: 0,
    };
    // SAFETY: `resp` is a valid seccomp_notif_resp that the kernel only
    // reads; fd is a live descriptor.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &resp) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The kernel thread id of the caller.
pub fn gettid() -> i64 {
    sys(libc::SYS_gettid, [0; 6]).unwrap()
}
