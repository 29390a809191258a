//! The last steps of every container process, the init's and an exec'd one's: limits,
//! identity, capabilities, working directory, no_new_privs and seccomp, then exec.

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;

use rustix::fs::Mode;

use super::procfs::ProcHandle;
use super::{InitError, process};
use crate::plan::ProcessImage;
use crate::spec::ProcessPlan;
use crate::sync::{Message, SyncSocket};
use crate::sys;

/// When the init installs the seccomp filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeccompTiming {
    /// No filter.
    Never,
    /// While the init still holds CAP_SYS_ADMIN (no no_new_privs, and the process will not
    /// keep CAP_SYS_ADMIN): before switching user and capabilities.
    BeforeIdentity,
    /// After everything else but before reporting ready: the notify fd must reach the
    /// runtime, which waits for it only until the init is ready.
    BeforeReady,
    /// As the very last step before exec, so that no setup syscall is filtered.
    BeforeExec,
}

fn seccomp_timing(finish: &Finish<'_>) -> SeccompTiming {
    let Some(program) = finish.seccomp else {
        return SeccompTiming::Never;
    };
    let process = &finish.process.plan;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    let privileged_after = process.capabilities.effective & CAP_SYS_ADMIN != 0;
    if !process.no_new_privileges && !privileged_after {
        SeccompTiming::BeforeIdentity
    } else if program.needs_listener() {
        SeccompTiming::BeforeReady
    } else {
        SeccompTiming::BeforeExec
    }
}

/// Installs the filter; a notify fd goes to the runtime over the sync socket.
fn install_seccomp(finish: &Finish<'_>, sync: &SyncSocket) -> Result<(), InitError> {
    let Some(program) = finish.seccomp else {
        return Ok(());
    };
    let listener = program
        .install()
        .map_err(|e| InitError::Process(format!("install the seccomp filter: {e}")))?;
    if let Some(fd) = listener {
        sync.send_with_fd(&Message::SeccompListener, Some(&fd))?;
    }
    Ok(())
}

/// What the last steps need.
pub struct Finish<'a> {
    pub process: &'a ProcessImage,
    pub last_cap: u32,
    pub seccomp: Option<&'a berth_seccomp::Program>,
    pub preserve_fds: u32,
    pub signal_mask: &'a sys::SignalMask,
}

/// The program, ready to be executed.
pub struct Prepared<'a> {
    program: &'a CStr,
    argv: &'a [CString],
    envp: Vec<CString>,
    timing: SeccompTiming,
    /// The sealed exec trampoline (CVE-2019-5736), when the kernel allows it.
    trampoline: Option<std::os::fd::OwnedFd>,
}

impl Finish<'_> {
    /// Everything from limits to capabilities. Afterwards only the wait for `start` (for the
    /// init) and [`Finish::exec`] remain.
    pub fn prepare(&self, proc: &ProcHandle, sync: &SyncSocket) -> Result<Prepared<'_>, InitError> {
        let process = &self.process.plan;
        let timing = seccomp_timing(self);
        if let Some(score) = process.oom_score_adj {
            proc.write_self("oom_score_adj", score.to_string().as_bytes())
                .map_err(|e| InitError::sys(format!("set oom_score_adj to {score}"), e))?;
        }
        if let Some((class, priority)) = process.io_priority {
            sys::set_ioprio(class, priority).map_err(|e| InitError::sys("ioprio_set", e))?;
        }
        // While the capabilities are still whole: real-time policies and negative nice
        // values need CAP_SYS_NICE. Both are kept across the exec.
        if let Some(s) = &process.scheduler {
            sys::sched_setattr(
                s.policy,
                s.flags,
                s.nice,
                s.priority,
                (s.runtime, s.deadline, s.period),
            )
            .map_err(|e| InitError::sys("sched_setattr (process.scheduler)", e))?;
        }
        if let Some(m) = &process.memory_policy {
            sys::set_mempolicy(m.mode, &m.nodemask).map_err(|e| {
                InitError::sys(format!("set_mempolicy {} (linux.memoryPolicy)", m.name), e)
            })?;
        }
        process::set_rlimits(process)?;
        apply_lsm_labels(process, proc)?;
        // Everything that needs a syscall a seccomp profile may not allow (openat2 for the
        // in-root lookup of the cwd, memfd_create, close_range) happens before the filter
        // can be installed; after it only ordinary calls remain.
        process::enter_cwd(&process.cwd)?;
        let trampoline = super::trampoline::sealed_memfd()
            .map_err(|e| InitError::sys("prepare the exec trampoline", e))?;
        // Whatever the runtime still had open is closed by the exec; preserved fds stay.
        // SAFETY: close-on-exec only; the fds the init still uses until its exec (the
        // trampoline, the sync socket) are needed up to the exec and not after it.
        unsafe { sys::close_range(3 + self.preserve_fds, u32::MAX, true) }
            .map_err(|e| InitError::sys("close_range", e))?;
        // A user namespace mapped by an unprivileged runtime has setgroups denied (the
        // kernel's condition for its gid map): then the groups cannot be set, nor dropped.
        let setgroups_allowed =
            std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny");
        if timing == SeccompTiming::BeforeIdentity {
            install_seccomp(self, sync)?;
        }
        process::set_identity(process, self.last_cap, setgroups_allowed)?;
        rustix::process::umask(Mode::from_raw_mode(process.umask.unwrap_or(0o022)));
        process::set_no_new_privs(process)?;
        if timing == SeccompTiming::BeforeReady {
            install_seccomp(self, sync)?;
        }
        let prepared = Prepared {
            program: process::find_executable(self.process)?,
            argv: &self.process.argv,
            envp: process::exec_environment(self.process),
            timing,
            trampoline,
        };
        Ok(prepared)
    }

    /// Restores signals and execs. With a late seccomp filter, nothing but the exec runs
    /// after it is installed. Only returns on failure.
    pub fn exec(&self, prepared: Prepared<'_>, sync: &SyncSocket) -> InitError {
        if let Err(e) = sys::restore_signal_mask(self.signal_mask) {
            return InitError::sys("sigprocmask", e);
        }
        sys::reset_signal_disposition(libc::SIGPIPE);
        if prepared.timing == SeccompTiming::BeforeExec
            && let Err(e) = install_seccomp(self, sync)
        {
            return e;
        }
        if let Some(trampoline) = &prepared.trampoline {
            let argv = super::trampoline::arguments(prepared.program, prepared.argv);
            let error = sys::execveat_fd(trampoline.as_fd(), &argv, &prepared.envp);
            // A seccomp profile or an LSM may forbid execveat (or exec from a memfd) while
            // allowing execve: then exec the program directly, as every runtime before did.
            if !matches!(
                error.raw_os_error(),
                Some(libc::EPERM | libc::EACCES | libc::ENOSYS)
            ) {
                return InitError::Exec(format!(
                    "exec {}: {}",
                    prepared.program.to_string_lossy(),
                    crate::error::os_text(&error)
                ));
            }
        }
        InitError::Exec(format!(
            "exec {}: {}",
            prepared.program.to_string_lossy(),
            crate::error::os_text(&sys::execve(
                prepared.program,
                prepared.argv,
                &prepared.envp
            ))
        ))
    }
}

/// Asks the LSMs to confine the process from its exec on (checked against the host when
/// the container was planned).
fn apply_lsm_labels(process: &ProcessPlan, proc: &ProcHandle) -> Result<(), InitError> {
    use crate::lsm::{APPARMOR_ATTR_FILES, SELINUX_ATTR_FILE, apparmor_exec_attr};
    if let Some(profile) = &process.apparmor_profile {
        let value = apparmor_exec_attr(profile);
        let mut last = None;
        for file in APPARMOR_ATTR_FILES {
            match proc.write_self(file, value.as_bytes()) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(InitError::sys(
                format!("apply AppArmor profile {profile:?}"),
                e,
            ));
        }
    }
    if let Some(label) = &process.selinux_label {
        proc.write_self(SELINUX_ATTR_FILE, label.as_bytes())
            .map_err(|e| InitError::sys(format!("apply SELinux label {label:?}"), e))?;
    }
    Ok(())
}
