//! The content store under `--root`:
//!
//! ```text
//! <root>/blobs/sha256/<hex>          every blob, verified as it streamed in, byte-exact
//! <root>/layers/<diff hex>/diff/     each layer unpacked once (whiteouts in overlay form)
//! <root>/layers/by-blob/<hex>.json   which diff id a (compressed) layer blob unpacks to
//! <root>/images.json                 the image records and their names (one atomic file)
//! <root>/tmp/                        staging: everything is built here, then renamed in
//! <root>/lock                        flock: exclusive while the image records change
//! <root>/users.lock                  flock: shared by every open Store; exclusive to collect garbage
//! ```
//!
//! Nothing becomes visible half-made: a blob, a layer dir and the records are each built in
//! `tmp/` and renamed into place, so a kill -9 at any point leaves at most garbage in `tmp/`
//! (or an unreferenced blob), which the next garbage collection removes.

mod blobs;
mod fsutil;
mod gc;
mod images;
mod layers;
mod lock;

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub use images::{Image, resolve_in};
pub use layers::LayerInfo;

use crate::error::{Error, Result};
use lock::Lock;

/// A store of blobs, layers and images. `Sync`: several threads may put blobs and layers at
/// once (a pull downloads layers in parallel); other processes may use the same root at the
/// same time.
pub struct Store {
    root: PathBuf,
    /// Held shared for the Store's life, so garbage is only collected when nobody else is
    /// in the middle of storing something.
    users: Lock,
}

impl Store {
    /// Opens (creating when missing) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        // 0700: a layer's setuid binaries must not be reachable by the host's users.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        for dir in ["blobs/sha256", "layers/by-blob", "tmp"] {
            let path = root.join(dir);
            builder
                .create(&path)
                .map_err(Error::path("create", &path))?;
        }
        fsutil::spread_new_trees(&root.join("tmp"));
        let users = Lock::open(&root.join("users.lock"))?;
        users.shared()?;
        let store = Store {
            root: root.to_path_buf(),
            users,
        };
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Takes the lock that serializes changes to the image records.
    pub(crate) fn lock_records(&self) -> Result<Lock> {
        let lock = Lock::open(&self.root.join("lock"))?;
        lock.exclusive()?;
        Ok(lock)
    }

    /// A fresh unique path in `tmp/` (nothing is created).
    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        self.tmp_dir().join(fsutil::unique_name(what))
    }

    /// Creates a new staging file in `tmp/`.
    pub(crate) fn tmp_file(&self, what: &str) -> Result<(PathBuf, File)> {
        let path = self.tmp_path(what);
        let file = File::options()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::path("create", &path))?;
        Ok((path, file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_sync<T: Sync + Send>() {}

    #[test]
    fn store_is_shared_between_threads() {
        assert_sync::<Store>();
    }

    /// On ext4 (where the tests' temp dirs are on this project's machines) tmp/ gets
    /// FS_TOPDIR_FL; elsewhere the store opens all the same.
    #[test]
    fn tmp_spreads_new_trees_on_ext4() {
        use rustix::fs::{IFlags, ioctl_getflags, statfs};
        const EXT4_SUPER_MAGIC: i64 = 0xef53;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        if statfs(dir.path()).unwrap().f_type as i64 == EXT4_SUPER_MAGIC {
            let tmp = std::fs::File::open(store.tmp_dir()).unwrap();
            let flags = ioctl_getflags(&tmp).unwrap();
            assert!(flags.contains(IFlags::TOPDIR), "{flags:?}");
        } else {
            eprintln!(
                "{} is not ext4: only the open is checked",
                dir.path().display()
            );
        }
        drop(store);
        // Again: already set, nothing to do.
        Store::open(dir.path()).unwrap();
    }
}
