//! Garbage collection: blobs, layers and staging files no image record refers to.
//!
//! Runs only when this process is the store's only user (the users lock taken exclusive
//! without waiting): another process may be between storing a layer and recording the
//! image that uses it, and its layer must not be collected meanwhile. When others are
//! active, collection is left to a later remove or prune.

use std::collections::HashSet;

use super::Store;
use super::fsutil::remove_all;
use crate::digest::Digest;
use crate::error::{Error, Result};

impl Store {
    pub(crate) fn collect_garbage(&self) -> Result<()> {
        if !self.users.try_exclusive()? {
            log::debug!("store in use by another process: garbage collection left for later");
            return Ok(());
        }
        let result = self.sweep();
        // Back to shared, as every open Store holds it.
        self.users.shared()?;
        result
    }

    fn sweep(&self) -> Result<()> {
        let _records = self.lock_records()?;
        let images = self.list()?;
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut diffs: HashSet<String> = HashSet::new();
        for image in &images {
            blobs.insert(image.id);
            blobs.insert(image.manifest_digest);
            for layer in &image.layers {
                blobs.insert(layer.blob);
                diffs.insert(layer.diff_id.hex());
            }
        }
        for entry in read_dir(&self.root.join("blobs/sha256"))? {
            let keep = Digest::from_hex(&entry).is_some_and(|d| blobs.contains(&d));
            if !keep {
                remove_all(&self.root.join("blobs/sha256").join(&entry))?;
            }
        }
        for entry in read_dir(&self.root.join("layers/by-blob"))? {
            let keep = entry
                .strip_suffix(".json")
                .and_then(Digest::from_hex)
                .is_some_and(|d| blobs.contains(&d));
            if !keep {
                remove_all(&self.root.join("layers/by-blob").join(&entry))?;
            }
        }
        for entry in read_dir(&self.root.join("layers"))? {
            if entry != "by-blob" && !diffs.contains(&entry) {
                remove_all(&self.root.join("layers").join(&entry))?;
            }
        }
        for entry in read_dir(&self.tmp_dir())? {
            remove_all(&self.tmp_dir().join(&entry))?;
        }
        Ok(())
    }
}

fn read_dir(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::path("read dir", dir))? {
        let entry = entry.map_err(Error::path("read dir", dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}
