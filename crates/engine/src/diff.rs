//! `diff`: what a container changed in its image's filesystem, from the overlay's upper
//! dir: `A` added, `C` changed, `D` deleted (an overlay whiteout: a 0/0 character device).
//! The upper dir and the layers are read by fd (a symlink the container made is looked at,
//! never followed).

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, OFlags};
use serde::Serialize;

use crate::Engine;
use crate::error::{Error, Result};
use crate::record::ContainerRecord;
use crate::safepath::{self, Kind, Root};

/// docker's change kinds (its numbers in `--format json`: 0 C, 1 A, 2 D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChangeKind {
    #[serde(rename = "C")]
    Changed,
    #[serde(rename = "A")]
    Added,
    #[serde(rename = "D")]
    Deleted,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Changed => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// Whether an upper-dir entry is an overlay whiteout.
pub fn is_whiteout(kind: &Kind) -> bool {
    matches!(kind, Kind::Char(0))
}

/// Whether a directory of the upper dir hides what is below it (`trusted.overlay.opaque`).
pub fn is_opaque(dir: std::os::fd::BorrowedFd<'_>, name: &OsStr) -> bool {
    let Ok(fd) = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return false;
    };
    let mut buf = [0u8; 4];
    matches!(rustix::fs::fgetxattr(&fd, berth_image::overlay_xattr::opaque(), &mut buf), Ok(n) if n >= 1 && buf[0] == b'y')
}

/// The upper dir of a container's overlay root and the image's layer dirs (top first).
pub fn layers_of(engine: &Engine, record: &ContainerRecord) -> Result<(PathBuf, Vec<PathBuf>)> {
    if record.config.rootfs.is_some() {
        return Err(Error::Other(format!(
            "container {} runs a plain --rootfs directory: it has no image layers to compare with",
            record.name
        )));
    }
    let dir = engine.container_dir(&record.id);
    let upper = dir.join("upper");
    if !upper.is_dir() {
        return Err(Error::Other(format!(
            "container {} has no overlay upper dir (vfs storage driver, or never started): no changes to list",
            record.name
        )));
    }
    let image_error = |e: berth_image::Error| Error::Image {
        reference: record.image_id.clone(),
        message: e.to_string(),
    };
    let store = berth_image::Store::open(&engine.root).map_err(image_error)?;
    let image = store.resolve(&record.image_id).map_err(image_error)?;
    let lowers = image
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(&l.diff_id))
        .collect();
    Ok((upper, lowers))
}

/// Whether `rel` exists in the image (the topmost layer that has it is not a whiteout).
fn in_image(lowers: &[Root], rel: &Path) -> bool {
    let text = rel.to_string_lossy();
    for layer in lowers {
        let Ok((parent, name)) = layer.parent_of(&text) else {
            continue;
        };
        match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let whiteout = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                    && st.st_rdev == 0;
                return !whiteout;
            }
            Err(_) => continue,
        }
    }
    false
}

/// `diff CONTAINER`: every change, sorted by path.
pub fn diff(engine: &Engine, id: &str) -> Result<Vec<Change>> {
    let record = engine.records.load(id)?;
    let (upper, lowers) = layers_of(engine, &record)?;
    let lowers: Vec<Root> = lowers.iter().filter_map(|l| Root::open(l).ok()).collect();
    let upper_root = Root::open(&upper)?;
    let top = upper_root.open_at("/", OFlags::PATH | OFlags::DIRECTORY)?;
    let mut changes = Vec::new();
    safepath::walk(
        top.as_fd(),
        OsStr::new("."),
        Path::new(""),
        &mut |entry, _file| {
            if entry.rel.as_os_str().is_empty() {
                return Ok(());
            }
            let path = format!("/{}", entry.rel.display());
            let kind = if is_whiteout(&entry.kind) {
                ChangeKind::Deleted
            } else if in_image(&lowers, &entry.rel) {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            };
            changes.push(Change { path, kind });
            Ok(())
        },
    )?;
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}
