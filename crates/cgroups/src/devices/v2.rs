//! Installing the device program on a cgroup v2 directory.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::ebpf;
use super::emulator::DeviceState;
use crate::error::{Error, Result};
use crate::sys;

fn bpf_err(cmd: &'static str, dir: &Path, source: io::Error) -> Error {
    Error::Bpf {
        cmd,
        path: dir.to_path_buf(),
        source,
        log: String::new(),
    }
}

/// Open a cgroup directory read-only (what bpf attach and clone3's
/// CLONE_INTO_CGROUP take; O_PATH is not accepted by every kernel for both).
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::OpenDir {
        path: dir.to_path_buf(),
        source: e.into(),
    })
}

fn load(dir: &Path, insns: &[ebpf::Insn]) -> Result<OwnedFd> {
    match sys::prog_load_cgroup_device(insns, &mut []) {
        Ok(fd) => Ok(fd),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EACCES)) => {
            // Load again with a log so the error says what the verifier
            // disliked; a bug in the generator should not be a mystery.
            let mut log = vec![0u8; 64 * 1024];
            let _ = sys::prog_load_cgroup_device(insns, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(Error::Bpf {
                cmd: "BPF_PROG_LOAD",
                path: dir.to_path_buf(),
                source: e,
                log: format!("\nverifier log:\n{}", String::from_utf8_lossy(&log[..end])),
            })
        }
        Err(e) => Err(bpf_err("BPF_PROG_LOAD", dir, e)),
    }
}

/// Compile `state`, load it and make it the cgroup's only device program.
///
/// Replacement never leaves the cgroup without a filter: with exactly one
/// old program we swap atomically (BPF_F_REPLACE); otherwise the new one is
/// attached first and the old ones detached after (while both are attached
/// the kernel requires every program to allow, so the window is stricter,
/// never looser).
pub fn apply(dir: &Path, state: &DeviceState) -> Result<()> {
    let insns = ebpf::compile(state);
    let prog = load(dir, &insns)?;
    let cg = open_dir(dir)?;
    let (flags, old_ids) =
        sys::prog_query(cg.as_fd()).map_err(|e| bpf_err("BPF_PROG_QUERY", dir, e))?;
    // A program attached without ALLOW_MULTI (by some other tool) can only
    // be replaced by attaching with the same flags; that also replaces it.
    let multi = old_ids.is_empty() || flags & sys::BPF_F_ALLOW_MULTI != 0;
    if !multi {
        return sys::prog_attach(cg.as_fd(), prog.as_fd(), flags, None)
            .map_err(|e| bpf_err("BPF_PROG_ATTACH", dir, e));
    }
    if let [only] = old_ids[..]
        && let Ok(old) = sys::prog_get_fd_by_id(only)
    {
        match sys::prog_attach(
            cg.as_fd(),
            prog.as_fd(),
            sys::BPF_F_ALLOW_MULTI,
            Some(old.as_fd()),
        ) {
            Ok(()) => return Ok(()),
            // Kernels before 5.6 lack BPF_F_REPLACE; fall through.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(bpf_err("BPF_PROG_ATTACH", dir, e)),
        }
    }
    sys::prog_attach(cg.as_fd(), prog.as_fd(), sys::BPF_F_ALLOW_MULTI, None)
        .map_err(|e| bpf_err("BPF_PROG_ATTACH", dir, e))?;
    let new_id =
        sys::prog_id(prog.as_fd()).map_err(|e| bpf_err("BPF_OBJ_GET_INFO_BY_FD", dir, e))?;
    for id in old_ids.into_iter().filter(|&id| id != new_id) {
        let old = match sys::prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            // Already gone (detached and freed concurrently).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err("BPF_PROG_GET_FD_BY_ID", dir, e)),
        };
        match sys::prog_detach(cg.as_fd(), old.as_fd()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_err("BPF_PROG_DETACH", dir, e)),
        }
    }
    Ok(())
}

/// Ids of the device programs attached to `dir` (for tests and debugging).
pub fn attached_program_ids(dir: &Path) -> Result<Vec<u32>> {
    let cg = open_dir(dir)?;
    sys::prog_query(cg.as_fd())
        .map(|(_, ids)| ids)
        .map_err(|e| bpf_err("BPF_PROG_QUERY", dir, e))
}
