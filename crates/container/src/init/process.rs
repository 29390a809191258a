//! Turning the init (or an exec'd process) into the configured process: limits, identity,
//! capabilities, no_new_privs, and finally exec. Order matters and follows runc: rlimits
//! while still privileged, drop the bounding set, switch ids keeping capabilities, set the
//! capability sets, then no_new_privs.

use std::ffi::{CStr, CString};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{Access, AtFlags, Mode, OFlags};

use super::InitError;
use crate::error::os_text;
use crate::plan::ProcessImage;
use crate::spec::ProcessPlan;
use crate::sys;

type Result<T> = std::result::Result<T, InitError>;

/// Applies rlimits. Raising a hard limit needs CAP_SYS_RESOURCE; the error names the limit.
pub fn set_rlimits(process: &ProcessPlan) -> Result<()> {
    for limit in &process.rlimits {
        sys::set_rlimit(limit.resource, limit.soft, limit.hard).map_err(|e| {
            InitError::Process(format!(
                "set {} to soft {} hard {}: {e}",
                limit.name, limit.soft, limit.hard
            ))
        })?;
    }
    Ok(())
}

/// Drops the bounding set, switches to the process's user and groups, and sets the
/// remaining capability sets and the ambient set.
pub fn set_identity(process: &ProcessPlan, last_cap: u32, setgroups_allowed: bool) -> Result<()> {
    let caps = &process.capabilities;
    for cap in 0..=last_cap {
        if caps.bounding & (1u64 << cap) == 0 {
            sys::drop_bounding_capability(cap).map_err(|e| {
                InitError::Process(format!("drop capability {cap} from the bounding set: {e}"))
            })?;
        }
    }
    // Keep the permitted set across the uid change; the effective set is rebuilt below.
    rustix::thread::set_keep_capabilities(true)
        .map_err(|e| InitError::Process(format!("PR_SET_KEEPCAPS: {e}")))?;
    if setgroups_allowed {
        sys::set_groups(&process.additional_gids).map_err(|e| {
            InitError::Process(format!("setgroups {:?}: {e}", process.additional_gids))
        })?;
    } else if !process.additional_gids.is_empty() {
        return Err(InitError::Process(
            "additionalGids cannot be set: setgroups is denied in this user namespace".into(),
        ));
    }
    sys::set_ids(process.uid, process.gid).map_err(|e| {
        InitError::Process(format!(
            "switch to uid {} gid {}: {e}",
            process.uid, process.gid
        ))
    })?;
    rustix::thread::set_keep_capabilities(false)
        .map_err(|e| InitError::Process(format!("PR_SET_KEEPCAPS: {e}")))?;
    sys::set_capabilities(caps.effective, caps.permitted, caps.inheritable)
        .map_err(|e| InitError::Process(format!("set capabilities: {e}")))?;
    // The kernel only lets a capability be ambient when it is permitted and inheritable;
    // runc's own default config lists ambient capabilities without inheritable ones, and
    // like runc we skip what cannot be raised instead of failing.
    let ambient = caps.ambient & caps.permitted & caps.inheritable;
    for cap in 0..=last_cap {
        if ambient & (1u64 << cap) != 0 {
            sys::raise_ambient_capability(cap).map_err(|e| {
                InitError::Process(format!(
                    "raise ambient capability {cap} (it must be permitted and inheritable): {e}"
                ))
            })?;
        }
    }
    Ok(())
}

/// Sets no_new_privs when asked.
pub fn set_no_new_privs(process: &ProcessPlan) -> Result<()> {
    if process.no_new_privileges {
        rustix::thread::set_no_new_privs(true)
            .map_err(|e| InitError::Process(format!("PR_SET_NO_NEW_PRIVS: {e}")))?;
    }
    Ok(())
}

/// Changes into the working directory. The lookup stays inside the container's root and
/// follows no magic link, so a cwd like /proc/self/fd/N cannot reach a leaked host
/// directory (CVE-2024-21626). Done while still root (as runc tries first), so a directory
/// the process's user could not enter is still its cwd.
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    let fail = |e: std::io::Error| InitError::Process(format!("cwd {}: {e}", cwd.display()));
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(e.into()))?;
    let dir = super::fs::open_in_root_with(root.as_fd(), cwd, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(fail)?;
    rustix::process::fchdir(&dir).map_err(|e| fail(e.into()))
}

/// The program to exec: the first of the plan's candidates that is an executable file
/// (`args[0]` itself when it has a slash, else its PATH lookup, like runc's exec.LookPath).
pub fn find_executable(image: &ProcessImage) -> Result<&CStr> {
    let name = &image.plan.args[0];
    // runc's words (Go's exec.LookPath), which clients match.
    let not_found = |detail: String| InitError::Exec(format!("exec: {name:?}: {detail}"));
    let mut last = None;
    for candidate in &image.candidates {
        match check_executable(candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) => last = Some(e),
        }
    }
    if image.searched_path {
        return Err(not_found("executable file not found in $PATH".into()));
    }
    let e = last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT));
    Err(match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => not_found(format!("stat {name}: {}", os_text(&e))),
        _ => not_found(os_text(&e)),
    })
}

fn check_executable(path: &CStr) -> std::io::Result<()> {
    let st = rustix::fs::stat(path)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    }
    // Real and effective ids are the same by now: plain faccessat is enough (faccessat2,
    // which AT_EACCESS needs, is missing from older seccomp profiles).
    rustix::fs::accessat(rustix::fs::CWD, path, Access::EXEC_OK, AtFlags::empty())
        .map_err(Into::into)
}

/// The environment for exec: the configured one, plus HOME from the container's
/// /etc/passwd (or `/`) when it is missing, as runc does.
pub fn exec_environment(image: &ProcessImage) -> Vec<CString> {
    let mut env = image.envp.clone();
    if image.add_home {
        let home = home_of(image.plan.uid).unwrap_or_else(|| "/".into());
        // The container's file is its data, not the plan's: a home with a NUL byte in it
        // cannot be passed on, and the process gets `/` as with no entry at all.
        env.push(CString::new(format!("HOME={home}")).unwrap_or_else(|_| c"HOME=/".into()));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2].parse::<u32>().ok()? == uid)
            .then(|| fields[5].to_string())
            .filter(|h| !h.is_empty())
    })
}
