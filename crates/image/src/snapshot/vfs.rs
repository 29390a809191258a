//! The vfs driver's full copy: the layers applied bottom up into one directory, whiteouts
//! (0:0 character devices) deleting what is below and opaque directories
//! (`trusted.overlay.opaque=y`) starting empty, as overlay would show them. Built in the
//! store's `tmp/` and renamed into place; walked by fds with no symlink followed.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timestamps, XattrFlags};

use crate::error::{Error, Result};
use crate::unpack::remove_entry;

pub(super) fn build(layers: &[PathBuf], dest: &Path, tmp: &Path) -> Result<()> {
    let staging = tmp.join(format!(
        "vfs-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&staging).map_err(Error::path("create", &staging))?;
    let result = (|| {
        let dst = open_dir_path(&staging).map_err(Error::path("open", &staging))?;
        let mut links = HashMap::new();
        for layer in layers {
            let src = open_dir_path(layer).map_err(Error::path("open layer", layer))?;
            apply(src.as_fd(), dst.as_fd(), &mut links)
                .map_err(Error::path("copy layer", layer))?;
            let st = rustix::fs::fstat(&src).map_err(|e| Error::Path {
                op: "stat",
                path: layer.clone(),
                source: e.into(),
            })?;
            copy_meta_fd(src.as_fd(), dst.as_fd(), &st)
                .map_err(Error::path("copy metadata of", layer))?;
        }
        std::fs::rename(&staging, dest).map_err(Error::path("rename into", dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Hard links seen so far: the layer inode → where its first copy is.
type Links = HashMap<(u64, u64), (OwnedFd, OsString)>;

fn apply(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, links: &mut Links) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(src)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    for name in names {
        let st = rustix::fs::statat(src, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let existing = rustix::fs::statat(dst, &name, AtFlags::SYMLINK_NOFOLLOW).ok();
        if kind == FileType::CharacterDevice && st.st_rdev == 0 {
            remove_entry(dst, &name)?;
            continue;
        }
        if kind == FileType::Directory {
            let child_src = open_dir_at(src, &name)?;
            let opaque = is_opaque(child_src.as_fd());
            let keep = existing
                .as_ref()
                .is_some_and(|e| FileType::from_raw_mode(e.st_mode) == FileType::Directory)
                && !opaque;
            if !keep {
                remove_entry(dst, &name)?;
                rustix::fs::mkdirat(dst, &name, Mode::from_raw_mode(0o700))?;
            }
            let child_dst = open_dir_at(dst, &name)?;
            apply(child_src.as_fd(), child_dst.as_fd(), links)?;
            copy_meta_fd(child_src.as_fd(), child_dst.as_fd(), &st)?;
            continue;
        }
        if existing.is_some() {
            remove_entry(dst, &name)?;
        }
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1
            && let Some((dir, first)) = links.get(&key)
        {
            rustix::fs::linkat(dir, first, dst, &name, AtFlags::empty())?;
            continue;
        }
        match kind {
            FileType::RegularFile => {
                let from = rustix::fs::openat(
                    src,
                    &name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let to = rustix::fs::openat(
                    dst,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                io::copy(
                    &mut File::from(from.try_clone()?),
                    &mut File::from(to.try_clone()?),
                )?;
                copy_meta_fd(from.as_fd(), to.as_fd(), &st)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, &name, Vec::new())?;
                rustix::fs::symlinkat(OsStr::from_bytes(target.as_bytes()), dst, &name)?;
                copy_meta_at(dst, &name, &st, false)?;
            }
            other => {
                rustix::fs::mknodat(dst, &name, other, Mode::from_raw_mode(0o600), st.st_rdev)?;
                copy_meta_at(dst, &name, &st, true)?;
            }
        }
        if st.st_nlink > 1 {
            links.insert(key, (rustix::io::fcntl_dupfd_cloexec(dst, 0)?, name));
        }
    }
    Ok(())
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut value = [0u8; 4];
    matches!(rustix::fs::fgetxattr(dir, crate::overlay_xattr::opaque(), &mut value), Ok(1) if value[0] == b'y')
}

pub(super) fn stamps(st: &Stat) -> Timestamps {
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

fn copy_meta_fd(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, st: &Stat) -> io::Result<()> {
    rustix::fs::fchown(
        dst,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    copy_xattrs(src, dst)?;
    rustix::fs::futimens(dst, &stamps(st))?;
    Ok(())
}

fn copy_meta_at(dir: BorrowedFd<'_>, name: &OsStr, st: &Stat, chmod: bool) -> io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if chmod {
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(st.st_mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    rustix::fs::utimensat(dir, name, &stamps(st), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Copies xattrs (file capabilities, user.*), never overlay's own.
fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let size = match rustix::fs::flistxattr_query(src) {
        Ok(0) => return Ok(()),
        Ok(n) => n,
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut list = vec![0u8; size];
    let n = rustix::fs::flistxattr(src, &mut list[..])?;
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if crate::overlay_xattr::is_overlays(name) {
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
