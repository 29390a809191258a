//! Every `unsafe` of the crate: the raw seccomp(2) call.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::bpf::SockFilter;
use crate::error::InstallError;

/// `SECCOMP_SET_MODE_FILTER`
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

// Our SockFilter is passed to the kernel as `struct sock_filter`.
const _: () = {
    assert!(size_of::<SockFilter>() == size_of::<libc::sock_filter>());
    assert!(align_of::<SockFilter>() == align_of::<libc::sock_filter>());
    assert!(
        std::mem::offset_of!(SockFilter, code) == std::mem::offset_of!(libc::sock_filter, code)
    );
    assert!(std::mem::offset_of!(SockFilter, jt) == std::mem::offset_of!(libc::sock_filter, jt));
    assert!(std::mem::offset_of!(SockFilter, jf) == std::mem::offset_of!(libc::sock_filter, jf));
    assert!(std::mem::offset_of!(SockFilter, k) == std::mem::offset_of!(libc::sock_filter, k));
};

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`; returns the syscall's
/// non-negative result (a listener fd with NEW_LISTENER, a thread id on a
/// TSYNC failure, else 0).
pub(crate) fn seccomp_set_mode_filter(prog: &[SockFilter], flags: u32) -> io::Result<i64> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads the program (it copies it in).
        filter: prog.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `fprog` points to `prog.len()` initialised instructions whose
    // layout equals `struct sock_filter` (checked at compile time above);
    // both outlive the call, and the kernel copies the program before
    // returning. The call has no memory effects on this process otherwise.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            libc::c_uint::from(flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as i64)
    }
}

/// Take ownership of the listener fd seccomp(2) returned.
pub(crate) fn owned_fd(rc: i64) -> Result<OwnedFd, InstallError> {
    let fd = RawFd::try_from(rc)
        .map_err(|_| InstallError::Os(io::Error::other(format!("bad listener fd {rc}"))))?;
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a non-negative return is a
    // new file descriptor that nothing else owns; we take sole ownership here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
