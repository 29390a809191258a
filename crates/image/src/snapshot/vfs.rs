//! The vfs driver's full copy: the layers applied bottom up into one directory, whiteouts
//! (0:0 character devices) deleting what is below and opaque directories
//! (`trusted.overlay.opaque=y`) starting empty, as overlay would show them. Built in the
//! store's `tmp/` and renamed into place; walked by fds with no symlink followed.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode};

use super::copy::{self, Attrs, Links};
use crate::error::{Error, Result};
use crate::unpack::remove_entry;

/// A merged tree keeps the layers' owners and none of overlay's own xattrs.
const MERGED: Attrs<'static> = Attrs {
    owners: &copy::SameOwners,
    overlay_xattrs: false,
};

pub(super) fn build(layers: &[PathBuf], dest: &Path, tmp: &Path) -> Result<()> {
    let staging = copy::staging_dir(tmp, "vfs");
    std::fs::create_dir(&staging).map_err(Error::path("create", &staging))?;
    let result = (|| {
        let dst = copy::open_dir(&staging).map_err(Error::path("open", &staging))?;
        let mut links = HashMap::new();
        for layer in layers {
            let src = copy::open_dir(layer).map_err(Error::path("open layer", layer))?;
            apply(src.as_fd(), dst.as_fd(), &mut links)
                .map_err(Error::path("copy layer", layer))?;
            let st = rustix::fs::fstat(&src).map_err(|e| Error::Path {
                op: "stat",
                path: layer.clone(),
                source: e.into(),
            })?;
            copy::set_meta_fd(src.as_fd(), dst.as_fd(), &st, &MERGED)
                .map_err(Error::path("copy metadata of", layer))?;
        }
        std::fs::rename(&staging, dest).map_err(Error::path("rename into", dest))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn apply(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, links: &mut Links) -> std::io::Result<()> {
    for name in copy::names_in(src)? {
        let st = rustix::fs::statat(src, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        let existing = rustix::fs::statat(dst, &name, AtFlags::SYMLINK_NOFOLLOW).ok();
        if kind == FileType::CharacterDevice && st.st_rdev == 0 {
            remove_entry(dst, &name)?;
            continue;
        }
        if kind == FileType::Directory {
            let child_src = copy::open_dir_at(src, &name)?;
            let opaque = is_opaque(child_src.as_fd());
            let keep = existing
                .as_ref()
                .is_some_and(|e| FileType::from_raw_mode(e.st_mode) == FileType::Directory)
                && !opaque;
            if !keep {
                remove_entry(dst, &name)?;
                rustix::fs::mkdirat(dst, &name, Mode::from_raw_mode(0o700))?;
            }
            let child_dst = copy::open_dir_at(dst, &name)?;
            apply(child_src.as_fd(), child_dst.as_fd(), links)?;
            copy::set_meta_fd(child_src.as_fd(), child_dst.as_fd(), &st, &MERGED)?;
            continue;
        }
        if existing.is_some() {
            remove_entry(dst, &name)?;
        }
        copy::copy_entry(src, dst, &name, &st, &MERGED, links)?;
    }
    Ok(())
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut value = [0u8; 4];
    matches!(rustix::fs::fgetxattr(dir, crate::overlay_xattr::opaque(), &mut value), Ok(1) if value[0] == b'y')
}
