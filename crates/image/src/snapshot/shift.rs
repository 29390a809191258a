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
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, Stat};
use sha2::{Digest as _, Sha256};

use super::copy::{self, Attrs, Links, Ownership};
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

impl IdShift {
    /// A shifted copy's metadata: owners by the map, a layer's overlay xattrs kept.
    fn attrs(&self) -> Attrs<'_> {
        Attrs {
            owners: self,
            overlay_xattrs: true,
        }
    }
}

impl Ownership for IdShift {
    fn of(&self, st: &Stat) -> (u32, u32, u32) {
        self.apply(st)
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
        let staging = copy::staging_dir(&self.tmp_dir(), "idmap");
        std::fs::create_dir(&staging).map_err(Error::path("create", &staging))?;
        let copied = (|| {
            let src = copy::open_dir(&source).map_err(Error::path("open layer", &source))?;
            let dst = copy::open_dir(&staging).map_err(Error::path("open", &staging))?;
            let mut links = HashMap::new();
            copy_tree(src.as_fd(), dst.as_fd(), shift, &mut links)
                .map_err(Error::path("copy with shifted owners the layer", &source))?;
            let st = rustix::fs::fstat(&src).map_err(|e| Error::Path {
                op: "stat",
                path: source.clone(),
                source: e.into(),
            })?;
            copy::set_meta_fd(src.as_fd(), dst.as_fd(), &st, &shift.attrs())
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

/// Copies one layer as it is (whiteouts and overlay's xattrs included: it stays a layer),
/// owners shifted; no symlink is followed.
fn copy_tree(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    shift: &IdShift,
    links: &mut Links,
) -> io::Result<()> {
    let attrs = shift.attrs();
    for name in copy::names_in(src)? {
        let st = rustix::fs::statat(src, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            rustix::fs::mkdirat(dst, &name, Mode::from_raw_mode(0o700))?;
            let child_src = copy::open_dir_at(src, &name)?;
            let child_dst = copy::open_dir_at(dst, &name)?;
            copy_tree(child_src.as_fd(), child_dst.as_fd(), shift, links)?;
            copy::set_meta_fd(child_src.as_fd(), child_dst.as_fd(), &st, &attrs)?;
            continue;
        }
        // whiteouts (0:0), fifos, sockets among the nodes: a layer unpacked rootless has
        // no other
        copy::copy_entry(src, dst, &name, &st, &attrs, links)?;
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
