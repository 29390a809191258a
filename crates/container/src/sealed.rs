//! Running the runtime itself from a sealed copy, for containers where non-dumpable is not
//! enough (CVE-2019-5736, the privileged variant).
//!
//! The container's init and exec'd processes are forks of the runtime, so until their exec
//! /proc/<pid>/exe is the runtime's binary. Non-dumpable keeps ordinary container processes
//! from opening it, but not one holding CAP_SYS_PTRACE (in a container whose bounding set has
//! it, or in another container sharing the pid namespace). For those containers the runtime
//! first re-executes itself from a sealed memfd copy of its binary, as runc does for every
//! container: then every process the container can see runs an image nobody can write to.
//! Everyone else keeps the fast path.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

use crate::sys;

/// The name of the memfd; `/proc/self/exe` then reads `/memfd:berth-runtime (deleted)`.
const MEMFD_NAME: &str = "berth-runtime";

/// Whether a container's processes could reach a runtime process's exe despite it being
/// non-dumpable: CAP_SYS_PTRACE in its bounding set, a pid namespace shared with others, or
/// a seccomp profile that keeps the init from exec'ing through its trampoline.
pub fn required(config: &Spec) -> bool {
    let ptrace = config
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|set| set.contains(&Capability::SysPtrace));
    let shared_pid_namespace = config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|list| {
            list.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_some())
        });
    ptrace || shared_pid_namespace || !seccomp_allows_execveat(config)
}

/// Whether the seccomp profile plainly lets execveat through. The init execs the program
/// through a sealed trampoline with execveat; where the profile forbids that, it falls back
/// to execve of the program, and a script whose interpreter is /proc/self/exe then runs the
/// runtime's own binary inside the container (for a dynamically linked runtime only if the
/// rootfs has its ELF interpreter; always for the static build). Anything but a plain allow
/// (a rule with arguments, two rules, a non-allow default without an allow rule) counts
/// as forbidding.
fn seccomp_allows_execveat(config: &Spec) -> bool {
    match config.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(seccomp) => profile_allows_execveat(seccomp),
        None => true,
    }
}

/// [`seccomp_allows_execveat`] for one profile (the engine asks it of a `--security-opt
/// seccomp=FILE` before it decides whether to run sealed).
pub fn profile_allows_execveat(seccomp: &oci_spec::runtime::LinuxSeccomp) -> bool {
    use oci_spec::runtime::LinuxSeccompAction;
    let rules: Vec<_> = seccomp
        .syscalls()
        .iter()
        .flatten()
        .filter(|rule| rule.names().iter().any(|n| n == "execveat"))
        .collect();
    match rules.as_slice() {
        [] => seccomp.default_action() == LinuxSeccompAction::ScmpActAllow,
        [rule] => {
            rule.action() == LinuxSeccompAction::ScmpActAllow
                && rule.args().as_ref().is_none_or(|args| args.is_empty())
        }
        _ => false,
    }
}

/// Whether this process already runs from the sealed copy.
pub fn is_sealed() -> bool {
    rustix::fs::readlinkat(rustix::fs::CWD, "/proc/self/exe", Vec::new()).is_ok_and(|link| {
        link.to_bytes()
            .starts_with(format!("/memfd:{MEMFD_NAME}").as_bytes())
    })
}

/// Re-executes this program, with the same arguments and environment, from a sealed memfd
/// copy of its binary. Only returns on failure.
pub fn reexec() -> io::Error {
    let copy = match sealed_copy() {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    // The kernel's copies, not std::env: a binary entered through its own C `main` (as
    // berth-runtime is) or built static need not have filled std's argument list, and the
    // entries read here are NUL-separated, so none can hold a NUL.
    let argv = match nul_separated("/proc/self/cmdline") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let envp = match nul_separated("/proc/self/environ") {
        Ok(v) => v,
        Err(e) => return e,
    };
    sys::execveat_fd(copy.as_fd(), &argv, &envp)
}

/// The NUL-separated entries of a /proc file, each as a C string.
fn nul_separated(path: &str) -> io::Result<Vec<CString>> {
    let bytes = std::fs::read(path)?;
    // Every entry ends with a NUL; an empty entry before it is a real (empty) argument.
    let Some(body) = bytes.strip_suffix(&[0]) else {
        return Ok(Vec::new());
    };
    Ok(body
        .split(|&b| b == 0)
        .filter_map(|entry| CString::new(entry).ok())
        .collect())
}

fn sealed_copy() -> io::Result<OwnedFd> {
    let exe = rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let size = rustix::fs::fstat(&exe)?.st_size as usize;
    let copy =
        rustix::fs::memfd_create(MEMFD_NAME, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut copied = 0;
    while copied < size {
        // sendfile: copy_file_range refuses copies between filesystems.
        let n = rustix::fs::sendfile(&copy, &exe, None, size - copied)?;
        if n == 0 {
            break;
        }
        copied += n;
    }
    rustix::fs::fcntl_add_seals(
        &copy,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_profile_that_does_not_plainly_allow_execveat_requires_it() {
        let with = |seccomp: serde_json::Value| {
            required(&spec(serde_json::json!({"ociVersion": "1.2.1",
                "linux": {"seccomp": seccomp}})))
        };
        let allow = |names: &[&str]| {
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]})
        };
        assert!(!with(allow(&["read", "execve", "execveat"])));
        assert!(with(allow(&["read", "execve"])));
        assert!(!with(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"})
        ));
        assert!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO"}]})));
        assert!(with(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 4, "value": 0, "op": "SCMP_CMP_EQ"}]}]})));
    }

    #[test]
    fn ptrace_or_a_shared_pid_namespace_require_it() {
        let plain = spec(serde_json::json!({"ociVersion": "1.2.1",
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["true"],
                        "capabilities": {"bounding": ["CAP_KILL"]}},
            "linux": {"namespaces": [{"type": "pid"}]}}));
        assert!(!required(&plain));
        let ptrace = spec(serde_json::json!({"ociVersion": "1.2.1",
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["true"],
                        "capabilities": {"bounding": ["CAP_KILL", "CAP_SYS_PTRACE"]}}}));
        assert!(required(&ptrace));
        let shared = spec(serde_json::json!({"ociVersion": "1.2.1",
            "linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}));
        assert!(required(&shared));
    }

    #[test]
    fn a_sealed_copy_refuses_writes_and_is_the_same_program() {
        let copy = sealed_copy().unwrap();
        assert_eq!(
            rustix::io::write(&copy, b"x").unwrap_err(),
            rustix::io::Errno::PERM
        );
        let original = std::fs::read("/proc/self/exe").unwrap();
        let mut sealed = Vec::new();
        let mut file = std::fs::File::from(copy);
        std::io::Seek::rewind(&mut file).unwrap();
        std::io::Read::read_to_end(&mut file, &mut sealed).unwrap();
        assert_eq!(original, sealed);
    }

    #[test]
    fn this_test_binary_is_not_sealed() {
        assert!(!is_sealed());
    }
}
