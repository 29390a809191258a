//! Copying layer trees by fd, no symlink followed: what the vfs driver's full copy and the
//! shifted copies of keep-id share. Each caller walks directories its own way (vfs applies
//! whiteouts and opaque dirs, the shift copies a layer as it is); the entries themselves
//! (files, hard links, symlinks, nodes) and their metadata are made here.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timestamps, XattrFlags};

/// Hard links seen so far: the source inode → the directory and name of its first copy.
pub(super) type Links = HashMap<(u64, u64), (OwnedFd, OsString)>;

/// A copy's uid, gid and mode bits from its source's stat.
pub(super) trait Ownership {
    fn of(&self, st: &Stat) -> (u32, u32, u32);
}

/// The source's owners and mode as they are.
pub(super) struct SameOwners;

impl Ownership for SameOwners {
    fn of(&self, st: &Stat) -> (u32, u32, u32) {
        (st.st_uid, st.st_gid, st.st_mode & 0o7777)
    }
}

/// How a copy's metadata is derived from its source's.
pub(super) struct Attrs<'a> {
    pub owners: &'a dyn Ownership,
    /// Whether overlay's own xattrs (opaque marks) are copied: a layer copied as a layer
    /// keeps them, a merged tree must not.
    pub overlay_xattrs: bool,
}

/// A fresh directory name in `tmp` to build a copy in before it is renamed into place.
pub(super) fn staging_dir(tmp: &Path, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    tmp.join(format!("{what}-{}-{nanos}", std::process::id()))
}

pub(super) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

pub(super) fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// The names in a directory, read before any is copied (the copy may be inside it).
pub(super) fn names_in(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    Ok(names)
}

/// Copies the non-directory `name` (stat `st`) of `src` into `dst`, where nothing of that
/// name is: a second name of an inode already copied becomes a hard link to the copy.
pub(super) fn copy_entry(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
    attrs: &Attrs<'_>,
    links: &mut Links,
) -> io::Result<()> {
    let key = (st.st_dev, st.st_ino);
    if st.st_nlink > 1
        && let Some((dir, first)) = links.get(&key)
    {
        rustix::fs::linkat(dir, first, dst, name, AtFlags::empty())?;
        return Ok(());
    }
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            let from = rustix::fs::openat(
                src,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let to = rustix::fs::openat(
                dst,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            // std's copy uses copy_file_range: a reflink where the filesystem has them
            io::copy(
                &mut File::from(from.try_clone()?),
                &mut File::from(to.try_clone()?),
            )?;
            set_meta_fd(from.as_fd(), to.as_fd(), st, attrs)?;
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(src, name, Vec::new())?;
            rustix::fs::symlinkat(OsStr::from_bytes(target.as_bytes()), dst, name)?;
            set_meta_at(dst, name, st, attrs, false)?;
        }
        other => {
            rustix::fs::mknodat(dst, name, other, Mode::from_raw_mode(0o600), st.st_rdev)?;
            set_meta_at(dst, name, st, attrs, true)?;
        }
    }
    if st.st_nlink > 1 {
        links.insert(
            key,
            (rustix::io::fcntl_dupfd_cloexec(dst, 0)?, name.to_owned()),
        );
    }
    Ok(())
}

/// Owner, mode, xattrs and times of an open copy. The mode is set after the owner: chown
/// clears setuid and setgid.
pub(super) fn set_meta_fd(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    st: &Stat,
    attrs: &Attrs<'_>,
) -> io::Result<()> {
    let (uid, gid, mode) = attrs.owners.of(st);
    rustix::fs::fchown(
        dst,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )?;
    rustix::fs::fchmod(dst, Mode::from_raw_mode(mode))?;
    copy_xattrs(src, dst, attrs.overlay_xattrs)?;
    rustix::fs::futimens(dst, &stamps(st))?;
    Ok(())
}

/// Owner, mode (`chmod`: not for a symlink, which has none) and times of a copy by name.
fn set_meta_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
    attrs: &Attrs<'_>,
    chmod: bool,
) -> io::Result<()> {
    let (uid, gid, mode) = attrs.owners.of(st);
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if chmod {
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty())?;
    }
    rustix::fs::utimensat(dir, name, &stamps(st), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn stamps(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: st.st_atime as _,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: st.st_mtime as _,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Copies xattrs (file capabilities, user.*; overlay's own only with `overlays`).
fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, overlays: bool) -> io::Result<()> {
    let size = match rustix::fs::flistxattr_query(src) {
        Ok(0) | Err(rustix::io::Errno::OPNOTSUPP) => return Ok(()),
        Ok(n) => n,
        Err(e) => return Err(e.into()),
    };
    let mut list = vec![0u8; size];
    let n = rustix::fs::flistxattr(src, &mut list[..])?;
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if !overlays && crate::overlay_xattr::is_overlays(name) {
            continue;
        }
        let name = OsStr::from_bytes(name);
        let len = rustix::fs::fgetxattr_query(src, name)?;
        let mut value = vec![0u8; len];
        let len = rustix::fs::fgetxattr(src, name, &mut value[..])?;
        rustix::fs::fsetxattr(dst, name, &value[..len], XattrFlags::empty())?;
    }
    Ok(())
}
