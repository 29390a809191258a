//! A procfs handle that the container cannot redirect (CVE-2025-52881): a private, detached
//! clone of /proc taken before any container mount exists. Nothing can be mounted on top of
//! a detached mount, and every lookup through it refuses to cross mount points or follow
//! symlinks, so a write meant for /proc/sys/... or /proc/self/... lands exactly there.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
use rustix::mount::{OpenTreeFlags, open_tree};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// A verified handle on procfs.
#[derive(Debug)]
pub struct ProcHandle {
    root: OwnedFd,
}

impl ProcHandle {
    /// Clones the current /proc mount (before the container's mounts exist).
    pub fn open() -> io::Result<Self> {
        let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
        let root = match open_tree(rustix::fs::CWD, "/proc", flags) {
            Ok(fd) => fd,
            // In a new user namespace the host's submounts of /proc are locked to it and a
            // lone clone is refused; a recursive clone is just as private.
            Err(rustix::io::Errno::INVAL) => open_tree(
                rustix::fs::CWD,
                "/proc",
                flags | OpenTreeFlags::AT_RECURSIVE,
            )?,
            // An exec of a rootless runtime: in the container's user namespace but still in
            // the host's mount namespace, which it may not clone from. The host's /proc
            // itself is just as safe from the container, whose mounts cannot reach the
            // host's mount namespace.
            Err(rustix::io::Errno::PERM) => rustix::fs::open(
                "/proc",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
            Err(e) => return Err(e.into()),
        };
        let fs = rustix::fs::fstatfs(&root)?;
        if fs.f_type as i64 != PROC_SUPER_MAGIC {
            return Err(io::Error::other("/proc is not a procfs mount"));
        }
        Ok(ProcHandle { root })
    }

    /// Opens a file below the procfs root without following symlinks or crossing mounts.
    pub fn open_file(&self, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        let resolve = ResolveFlags::BENEATH
            | ResolveFlags::NO_XDEV
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_SYMLINKS;
        loop {
            match openat2(
                &self.root,
                path,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                Err(rustix::io::Errno::AGAIN) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }

    /// Our pid as this procfs sees it (the host's pid when the handle is the host's /proc).
    pub fn self_pid(&self) -> io::Result<String> {
        let link = rustix::fs::readlinkat(&self.root, "self", Vec::new())?;
        Ok(link.to_string_lossy().into_owned())
    }

    /// Writes `value` to a file below the procfs root.
    pub fn write(&self, path: &Path, value: &[u8]) -> io::Result<()> {
        let fd = self.open_file(path, OFlags::WRONLY)?;
        let mut written = 0;
        while written < value.len() {
            written += rustix::io::write(&fd, &value[written..])?;
        }
        Ok(())
    }

    /// Writes a file of our own process (`self/<name>`), resolved without the `self` link.
    pub fn write_self(&self, name: &str, value: &[u8]) -> io::Result<()> {
        let pid = self.self_pid()?;
        self.write(&Path::new(&pid).join(name), value)
    }
}
