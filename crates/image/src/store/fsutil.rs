//! Small filesystem steps the store is built from: unique staging names, atomic writes,
//! removal of trees.

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
