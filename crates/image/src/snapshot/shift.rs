//! Layers with shifted owners, for a container in a user namespace of its own (podman's
//! `--userns keep-id`): its ids are not the namespace's that unpacked the layers, so a file
//! the image gives to uid 0 would read as someone else inside. Each layer is copied once per
//! distinct mapping into `layers/<diff id>/idmap/<key>/`, every owner moved by the mapping,
//! and reused by every later container with that mapping; the layer's directory goes with
//! the layer when its last image is removed, copies included.
//!
//! An idmapped mount of the layers would need no copy, but the kernel allows one only to
//! whoever has CAP_SYS_ADMIN over the filesystem's superblock namespace: rootless, the
//! layers are on the host's filesystem (ext4 here: EPERM), and overlay itself does not take
//! idmapped mounts (EINVAL; measured on 6.18).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, XattrFlags};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::Store;

/// `size` ids from `inside` (the container's) are `outside` (the namespace's that holds the
/// layers) — a line of the container's uid_map or gid_map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub size: u32,
}

/// The container's uid and gid maps: a file owned by `c` in the image is given to the id
/// that `c` inside the container is outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdShift {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

impl IdShift {
    /// Where `id` of the image goes; None: the container has no such id.
    fn map(ranges: &[IdRange], id: u32) -> Option<u32> {
        ranges.iter().find_map(|r| {
            let offset = id.checked_sub(r.inside)?;
            (offset < r.size).then(|| r.outside + offset)
        })
    }

    pub fn uid(&self, id: u32) -> Option<u32> {
        Self::map(&self.uids, id)
    }

    pub fn gid(&self, id: u32) -> Option<u32> {
        Self::map(&self.gids, id)
    }

    /// The container's id of a file owned by `id` outside (the inverse of [`IdShift::uid`]);
    /// None: the container has no name for it (the kernel shows the overflow id).
    pub fn inside_uid(&self, id: u32) -> Option<u32> {
        Self::unmap(&self.uids, id)
    }

    pub fn inside_gid(&self, id: u32) -> Option<u32> {
        Self::unmap(&self.gids, id)
    }

    fn unmap(ranges: &[IdRange], id: u32) -> Option<u32> {
        ranges.iter().find_map(|r| {
            let offset = id.checked_sub(r.outside)?;
            (offset < r.size).then(|| r.inside + offset)
        })
    }

    /// The name of this mapping's copies: equal maps, equal copies.
    pub fn key(&self) -> String {
        let mut hash = Sha256::new();
        for (tag, ranges) in [("u", &self.uids), ("g", &self.gids)] {
            for r in ranges {
                hash.update(format!("{tag} {} {} {}\n", r.inside, r.outside, r.size));
            }
        }
        let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        hex[..16].to_string()
    }

    /// A file's new owner and mode. chown clears setuid and setgid, so the mode is set again
    /// after it; a set-id bit is kept only when its id exists in the container, and every
    /// new owner is an id of the namespace doing the copy, that is the user's own ids.
    fn apply(&self, st: &Stat) -> (u32, u32, u32) {
        let mut mode = st.st_mode & 0o7777;
        let uid = self.uid(st.st_uid).unwrap_or_else(|| {
            mode &= !0o4000;
            st.st_uid
        });
        let gid = self.gid(st.st_gid).unwrap_or_else(|| {
            mode &= !0o2000;
            st.st_gid
        });
        (uid, gid, mode)
    }
}

impl Store {
    /// The copy of layer `diff_id` with owners shifted by `shift`, made now if missing.
    pub(super) fn shifted_layer(&self, diff_id: &Digest, shift: &IdShift) -> Result<PathBuf> {
        let source = self.layer_dir(diff_id);
        // beside the layer's diff/, so that the layer's removal takes its copies
        let parent = match source.parent() {
            Some(layer) => layer.join("idmap"),
            None => return Err(Error::LayerUnknown(*diff_id)),
        };
        let dest = parent.join(shift.key());
        if dest.is_dir() {
            return Ok(dest);
        }
        if !source.is_dir() {
            return Err(Error::LayerUnknown(*diff_id));
        }
        std::fs::create_dir_all(&parent).map_err(Error::path("create", &parent))?;
        // in tmp/, which garbage collection empties: a copy cut short leaves nothing behind
        let staging = self.tmp_dir().join(format!(
            "idmap-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir(&staging).map_err(Error::path("create", &staging))?;
        let copied = (|| {
            let src = open_dir(&source).map_err(Error::path("open layer", &source))?;
            let dst = open_dir(&staging).map_err(Error::path("open", &staging))?;
            let mut links = HashMap::new();
            copy_tree(src.as_fd(), dst.as_fd(), shift, &mut links)
                .map_err(Error::path("copy with shifted owners the layer", &source))?;
            let st = rustix::fs::fstat(&src).map_err(|e| Error::Path {
                op: "stat",
                path: source.clone(),
                source: e.into(),
            })?;
            set_meta_fd(src.as_fd(), dst.as_fd(), &st, shift)
                .map_err(Error::path("copy metadata of", &source))
        })();
        let placed = copied.and_then(|()| match std::fs::rename(&staging, &dest) {
            Ok(()) => Ok(()),
            // another command made the same copy first: theirs is as good
            Err(_) if dest.is_dir() => Ok(()),
            Err(e) => Err(Error::Path {
                op: "rename into",
                path: dest.clone(),
                source: e,
            }),
        });
        if staging.exists() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        placed.map(|()| dest)
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
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

/// Hard links of the layer seen so far: its inode → the directory and name of the copy.
type Links = HashMap<(u64, u64), (OwnedFd, OsString)>;

/// Copies one layer as it is (whiteouts and overlay's xattrs included: it stays a layer),
/// owners shifted; no symlink is followed.
fn copy_tree(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    shift: &IdShift,
    links: &mut Links,
) -> io::Result<()> {
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
        if kind == FileType::Directory {
            rustix::fs::mkdirat(dst, &name, Mode::from_raw_mode(0o700))?;
            let child_src = open_dir_at(src, &name)?;
            let child_dst = open_dir_at(dst, &name)?;
            copy_tree(child_src.as_fd(), child_dst.as_fd(), shift, links)?;
            set_meta_fd(child_src.as_fd(), child_dst.as_fd(), &st, shift)?;
            continue;
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
                // std's copy uses copy_file_range: a reflink where the filesystem has them
                io::copy(
                    &mut File::from(from.try_clone()?),
                    &mut File::from(to.try_clone()?),
                )?;
                set_meta_fd(from.as_fd(), to.as_fd(), &st, shift)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, &name, Vec::new())?;
                rustix::fs::symlinkat(OsStr::from_bytes(target.as_bytes()), dst, &name)?;
                let (uid, gid, _) = shift.apply(&st);
                rustix::fs::chownat(
                    dst,
                    &name,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
                rustix::fs::utimensat(
                    dst,
                    &name,
                    &super::vfs::stamps(&st),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            // whiteouts (0:0), fifos, sockets: a layer unpacked rootless has no other nodes
            other => {
                rustix::fs::mknodat(dst, &name, other, Mode::from_raw_mode(0o600), st.st_rdev)?;
                let (uid, gid, mode) = shift.apply(&st);
                rustix::fs::chownat(
                    dst,
                    &name,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
                rustix::fs::chmodat(dst, &name, Mode::from_raw_mode(mode), AtFlags::empty())?;
                rustix::fs::utimensat(
                    dst,
                    &name,
                    &super::vfs::stamps(&st),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
        }
        if st.st_nlink > 1 {
            links.insert(key, (rustix::io::fcntl_dupfd_cloexec(dst, 0)?, name));
        }
    }
    Ok(())
}

/// Owner (shifted), mode, every xattr (overlay's opaque marks too), times.
fn set_meta_fd(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    st: &Stat,
    shift: &IdShift,
) -> io::Result<()> {
    let (uid, gid, mode) = shift.apply(st);
    rustix::fs::fchown(
        dst,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )?;
    rustix::fs::fchmod(dst, Mode::from_raw_mode(mode))?;
    copy_all_xattrs(src, dst)?;
    rustix::fs::futimens(dst, &super::vfs::stamps(st))?;
    Ok(())
}

fn copy_all_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let size = match rustix::fs::flistxattr_query(src) {
        Ok(0) | Err(rustix::io::Errno::OPNOTSUPP) => return Ok(()),
        Ok(n) => n,
        Err(e) => return Err(e.into()),
    };
    let mut list = vec![0u8; size];
    let n = rustix::fs::flistxattr(src, &mut list[..])?;
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = OsStr::from_bytes(name);
        let len = rustix::fs::fgetxattr_query(src, name)?;
        let mut value = vec![0u8; len];
        let len = rustix::fs::fgetxattr(src, name, &mut value[..])?;
        rustix::fs::fsetxattr(dst, name, &value[..len], XattrFlags::empty())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_id_1001() -> IdShift {
        let ranges = vec![
            IdRange {
                inside: 0,
                outside: 1,
                size: 1001,
            },
            IdRange {
                inside: 1001,
                outside: 0,
                size: 1,
            },
            IdRange {
                inside: 1002,
                outside: 1002,
                size: 64535,
            },
        ];
        IdShift {
            uids: ranges.clone(),
            gids: ranges,
        }
    }

    #[test]
    fn ids_move_by_the_mapping() {
        let s = keep_id_1001();
        assert_eq!(s.uid(0), Some(1));
        assert_eq!(s.uid(1000), Some(1001));
        assert_eq!(s.uid(1001), Some(0));
        assert_eq!(s.uid(1002), Some(1002));
        assert_eq!(s.uid(65536), Some(65536));
        assert_eq!(s.uid(65537), None);
        assert_eq!(s.key(), keep_id_1001().key());
        let mut other = keep_id_1001();
        other.gids[0].size = 5;
        assert_ne!(s.key(), other.key());
    }

    #[test]
    fn set_id_bits_survive_only_on_mapped_ids() {
        let s = keep_id_1001();
        let mut st = rustix::fs::stat("/").unwrap();
        st.st_mode = 0o100000 | 0o6755;
        st.st_uid = 0;
        st.st_gid = 0;
        assert_eq!(s.apply(&st), (1, 1, 0o6755));
        st.st_uid = 70000;
        st.st_gid = 70000;
        assert_eq!(s.apply(&st), (70000, 70000, 0o0755));
    }
}
