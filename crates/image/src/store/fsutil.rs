//! Small filesystem steps the store is built from: unique staging names, atomic writes,
//! removal of trees, and where ext4 puts new trees.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A name no other thread or process uses at the same time: pid, a counter, the clock.
pub(crate) fn unique_name(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{what}-{}-{n}-{nanos:x}", std::process::id())
}

/// Writes `bytes` to `path` through a staging file in `tmp` and a rename: readers see the
/// old content or the new one, never a part.
pub(crate) fn write_atomic(tmp: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tmp.join(unique_name(&name));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create_new(&staging)?;
        file.write_all(bytes)?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&staging);
        return Err(Error::Path {
            op: "write",
            path: staging,
            source: e,
        });
    }
    std::fs::rename(&staging, path).map_err(|e| {
        let _ = std::fs::remove_file(&staging);
        Error::Path {
            op: "rename into",
            path: path.to_path_buf(),
            source: e,
        }
    })
}

/// Removes a file or a whole tree; a missing path is not an error. Trees are walked
/// without following symlinks (std's remove_dir_all does not follow them).
pub(crate) fn remove_all(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Path {
            op: "stat",
            path: path.to_path_buf(),
            source: e,
        }),
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(path).map_err(Error::path("remove", path))
        }
        Ok(_) => std::fs::remove_file(path).map_err(Error::path("remove", path)),
    }
}

/// Marks `dir` as ext4's "top of a directory hierarchy" (`chattr +T`, `FS_TOPDIR_FL`): each
/// directory made in it (a layer being unpacked, a vfs copy) is then spread over the disk's
/// block groups (Orlov, by a hash of its unique name) instead of next to its siblings.
///
/// Why: ext4 without a journal (this project's machines) does not reuse an inode freed in
/// the last 60 s (360 s while its table block is dirty); each create scans past every such
/// inode of its group, so unpacking into the groups a just-deleted store or image used costs
/// several times the unpack. Measured on this project's machine (no-journal ext4, 6.18) with
/// bench/pull.sh's image (5 layers, 14k files, 327 MiB of tar), release builds: a pull
/// right after another store of the same image was pulled and removed took 5.10 s (median
/// of 5; 3.68-7.08) before this and 2.61 s (1.65-4.53) with it. 20,000 files made in a plain
/// directory: 1.00 s fresh, 5.82 s right after 40,000 others were removed. A pull with
/// nothing removed before is not slower (3.50 s against 3.73 s, medians of 4).
///
/// Best effort: other filesystems (tmpfs, xfs, overlay) refuse the flag, which costs nothing.
pub(crate) fn spread_new_trees(dir: &Path) {
    use rustix::fs::{IFlags, Mode, OFlags, ioctl_getflags, ioctl_setflags, open};
    let result = open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .and_then(|fd| {
        let flags = ioctl_getflags(&fd)?;
        if flags.contains(IFlags::TOPDIR) {
            return Ok(());
        }
        ioctl_setflags(&fd, flags | IFlags::TOPDIR)
    });
    if let Err(e) = result {
        log::debug!("{}: no FS_TOPDIR_FL ({e})", dir.display());
    }
}
