//! Mounts handled as file descriptors, with the kernel's new mount API: a mount is built
//! detached (open_tree for binds, fsopen/fsmount for filesystems), given its flags while no
//! one can see it, attached with move_mount to a target fd, and changed afterwards (its
//! propagation) through the same fd. No path is ever resolved twice, so nothing swapped in
//! between (CVE-2021-30465) can receive a mount or its options.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use libc::c_ulong;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags, fsconfig_create,
    fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
};

use crate::plan::FsOption;
use crate::spec::mount_options::attr;
use crate::sys;

/// The per-mount attributes (`MOUNT_ATTR_*`) of MS_* flags: what to set, and what to clear so
/// that an atime mode can be set.
pub fn attributes(flags: c_ulong) -> (u64, u64) {
    let mut set = 0;
    let mut clear = 0;
    for (ms, bit) in [
        (libc::MS_RDONLY, attr::RDONLY),
        (libc::MS_NOSUID, attr::NOSUID),
        (libc::MS_NODEV, attr::NODEV),
        (libc::MS_NOEXEC, attr::NOEXEC),
        (libc::MS_NODIRATIME, attr::NODIRATIME),
        (256, attr::NOSYMFOLLOW),
    ] {
        if flags & ms != 0 {
            set |= bit;
        }
    }
    let atime = if flags & libc::MS_NOATIME != 0 {
        Some(attr::NOATIME)
    } else if flags & libc::MS_STRICTATIME != 0 {
        Some(attr::STRICTATIME)
    } else if flags & libc::MS_RELATIME != 0 {
        Some(attr::RELATIME)
    } else {
        None
    };
    if let Some(mode) = atime {
        set |= mode;
        clear |= attr::ATIME_MASK;
    }
    (set, clear)
}

/// A detached copy of the tree at `path` (relative to `dir`; empty for `dir` itself).
pub fn clone_tree(dir: BorrowedFd<'_>, path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    if path.is_empty() {
        flags |= OpenTreeFlags::AT_EMPTY_PATH;
    }
    Ok(open_tree(dir, path, flags)?)
}

/// Sets (and clears) attributes of the mount `mount` refers to, or of its whole tree.
pub fn set_attributes(
    mount: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
) -> io::Result<()> {
    if set == 0 && clear == 0 {
        return Ok(());
    }
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    sys::mount_setattr(mount, c"", flags, set, clear, 0)
}

/// Changes the propagation of an attached mount (MS_SHARED, MS_SLAVE, MS_PRIVATE or
/// MS_UNBINDABLE, with MS_REC for the whole tree).
pub fn set_propagation(mount: BorrowedFd<'_>, propagation: c_ulong) -> io::Result<()> {
    let recursive = propagation & libc::MS_REC != 0;
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    sys::mount_setattr(mount, c"", flags, 0, 0, propagation & !libc::MS_REC)
}

/// Attaches a detached mount on top of `target`.
pub fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    Ok(move_mount(
        mount,
        c"",
        target,
        c"",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?)
}

/// A new, detached instance of a filesystem; each option (mount(2)'s data, split by the
/// plan) is handed to the filesystem with fsconfig.
pub fn new_filesystem(
    fstype: &CStr,
    source: &CStr,
    flags: c_ulong,
    options: &[FsOption],
) -> io::Result<OwnedFd> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, c"source", source)?;
    for option in options {
        match option {
            FsOption::Value(key, value) => {
                fsconfig_set_string(&fs, key.as_c_str(), value.as_c_str())?
            }
            FsOption::Flag(word) => fsconfig_set_flag(&fs, word.as_c_str())?,
        }
    }
    // Superblock flags travel as flag words; the per-mount ones are attributes of fsmount.
    for (ms, word) in [
        (libc::MS_SYNCHRONOUS, c"sync"),
        (libc::MS_DIRSYNC, c"dirsync"),
        (libc::MS_LAZYTIME, c"lazytime"),
        (libc::MS_MANDLOCK, c"mand"),
    ] {
        if flags & ms != 0 {
            fsconfig_set_flag(&fs, word)?;
        }
    }
    fsconfig_create(&fs)?;
    let (set, _) = attributes(flags);
    Ok(fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::from_bits_retain(set as u32),
    )?)
}

/// Whether two fds name the same inode of the same mount (a mount target that resolved to
/// the container's root itself).
pub fn same_place(a: impl AsFd, b: impl AsFd) -> io::Result<bool> {
    use rustix::fs::{AtFlags, StatxFlags, statx};
    let what = StatxFlags::INO | StatxFlags::MNT_ID;
    let x = statx(a, c"", AtFlags::EMPTY_PATH, what)?;
    let y = statx(b, c"", AtFlags::EMPTY_PATH, what)?;
    Ok(x.stx_ino == y.stx_ino
        && x.stx_dev_major == y.stx_dev_major
        && x.stx_dev_minor == y.stx_dev_minor
        && x.stx_mnt_id == y.stx_mnt_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_attributes() {
        assert_eq!(attributes(0), (0, 0));
        let (set, clear) = attributes(libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(set, attr::RDONLY | attr::NOSUID | attr::STRICTATIME);
        assert_eq!(clear, attr::ATIME_MASK);
        let (set, _) = attributes(libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOATIME);
        assert_eq!(set, attr::NODEV | attr::NOEXEC | attr::NOATIME);
    }
}
