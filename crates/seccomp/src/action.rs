//! Seccomp return values (`SECCOMP_RET_*`) and the kernel's precedence
//! between them.

use oci_spec::runtime::LinuxSeccompAction;

/// `SECCOMP_RET_KILL_PROCESS`
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_KILL_THREAD` (libseccomp's `SCMP_ACT_KILL`)
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
/// `SECCOMP_RET_TRAP`
pub const RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO` (low 16 bits: the errno)
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE` (low 16 bits: the message for the tracer)
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`
pub const RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// `SECCOMP_RET_ACTION_FULL`
const ACTION_FULL: u32 = 0xffff_0000;

/// `EPERM`: what runc uses when ERRNO or TRACE comes without `errnoRet`.
pub const EPERM: u32 = 1;

/// The seccomp return value of an OCI action. `data` is `errnoRet`, already
/// checked to fit in 16 bits; ERRNO and TRACE default to EPERM as in runc
/// (the runtime-spec leaves the TRACE default open).
pub fn ret_value(action: LinuxSeccompAction, data: Option<u16>) -> u32 {
    let data = u32::from(data.unwrap_or(EPERM as u16));
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
    }
}

/// Precedence rank: smaller wins. This is the kernel's own rule for
/// combining stacked filters (`(s32)(ret & SECCOMP_RET_ACTION_FULL)`, lowest
/// first): KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF > TRACE >
/// LOG > ALLOW. The data bits do not take part.
pub fn rank(ret: u32) -> i32 {
    (ret & ACTION_FULL) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_order_matches_the_kernel() {
        let order = [
            RET_KILL_PROCESS,
            RET_KILL_THREAD,
            RET_TRAP,
            RET_ERRNO | 5,
            RET_USER_NOTIF,
            RET_TRACE | 3,
            RET_LOG,
            RET_ALLOW,
        ];
        assert!(order.windows(2).all(|w| rank(w[0]) < rank(w[1])));
        assert_eq!(rank(RET_ERRNO | 1), rank(RET_ERRNO | 38));
    }

    #[test]
    fn errno_and_trace_default_to_eperm() {
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActErrno, None),
            0x0005_0001
        );
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActErrno, Some(38)),
            0x0005_0026
        );
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActTrace, None),
            0x7ff0_0001
        );
        assert_eq!(ret_value(LinuxSeccompAction::ScmpActKill, None), 0);
        assert_eq!(
            ret_value(LinuxSeccompAction::ScmpActNotify, Some(9)),
            RET_USER_NOTIF
        );
    }
}
