//! A compiled filter: instructions plus the flags to install it with.

use std::os::fd::OwnedFd;

use crate::bpf::{self, SockFilter};
use crate::compile::{FLAG_NEW_LISTENER, FLAG_TSYNC, FLAG_TSYNC_ESRCH};
use crate::error::InstallError;
use crate::sys;

/// A verified seccomp program, ready to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<SockFilter>,
    flags: u32,
    needs_listener: bool,
}

impl Program {
    pub(crate) fn from_parts(insns: Vec<SockFilter>, flags: u32, needs_listener: bool) -> Self {
        Program {
            insns,
            flags,
            needs_listener,
        }
    }

    /// The cBPF instructions.
    pub fn instructions(&self) -> &[SockFilter] {
        &self.insns
    }

    /// Whether the profile uses SCMP_ACT_NOTIFY: [`Program::install`] then
    /// returns the listener fd, which must go to `listenerPath`
    /// (see [`crate::send_listener_fd`]).
    pub fn needs_listener(&self) -> bool {
        self.needs_listener
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2), including
    /// NEW_LISTENER (and TSYNC_ESRCH with TSYNC) when a listener is needed.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The instructions as the kernel's `struct sock_filter` array.
    pub fn to_bytes(&self) -> Vec<u8> {
        bpf::to_bytes(&self.insns)
    }

    /// Load the filter into the calling thread (all threads with TSYNC).
    ///
    /// The caller must have set no_new_privs or hold CAP_SYS_ADMIN; this is
    /// meant to be the last step before exec, since every later syscall of
    /// the caller is filtered too. Returns the notify listener fd when
    /// [`Program::needs_listener`].
    pub fn install(&self) -> Result<Option<OwnedFd>, InstallError> {
        let rc = match sys::seccomp_set_mode_filter(&self.insns, self.flags) {
            Ok(rc) => rc,
            Err(e) => {
                return Err(match e.raw_os_error() {
                    Some(libc::EACCES) => InstallError::NeedsNoNewPrivs,
                    Some(libc::EINVAL) => InstallError::Rejected {
                        flags: self.flags,
                        source: e,
                    },
                    // With TSYNC_ESRCH a thread that cannot be synchronised is reported as ESRCH.
                    Some(libc::ESRCH) if self.flags & FLAG_TSYNC_ESRCH != 0 => {
                        InstallError::TsyncFailed(0)
                    }
                    _ => InstallError::Os(e),
                });
            }
        };
        if self.flags & FLAG_NEW_LISTENER != 0 {
            return Ok(Some(sys::owned_fd(rc)?));
        }
        if self.flags & FLAG_TSYNC != 0 && rc > 0 {
            // Plain TSYNC reports the id of the thread it could not synchronise.
            return Err(InstallError::TsyncFailed(rc));
        }
        Ok(None)
    }
}
