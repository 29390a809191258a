//! What the loaders read from: a set of named entries, whether they are the files of a tar
//! (a docker-archive, an oci-archive) or of a directory (an OCI image layout `oci:DIR`).
//! Names are checked here, once, so no loader can be led outside the archive by a
//! manifest.json that points at `../../etc/shadow`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::error::{Error, Result};

/// JSON documents (manifest.json, index.json, manifests, configs) are read whole into
/// memory: this bounds what a hostile archive can make us allocate.
pub const JSON_LIMIT: u64 = 32 << 20;

pub trait Layout {
    /// How errors name the archive: its file name, `stdin` or `oci:DIR`.
    fn name(&self) -> &str;
    /// Whether `entry` (a clean name, see [`clean`]) is a regular file (or a link to one).
    fn has(&self, entry: &str) -> Result<bool>;
    /// The content of `entry` and its size.
    fn open(&self, entry: &str) -> Result<(Box<dyn Read + '_>, u64)>;
}

/// The whole of a (small) entry.
pub fn read_all(layout: &dyn Layout, entry: &str) -> Result<Vec<u8>> {
    let (mut reader, size) = layout.open(entry)?;
    if size > JSON_LIMIT {
        return Err(Error::BadEntry {
            archive: layout.name().to_string(),
            entry: entry.to_string(),
            reason: format!("{size} bytes: too large for a JSON document (limit {JSON_LIMIT})"),
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            archive: layout.name().to_string(),
            op: "reading an entry",
            source,
        })?;
    if bytes.len() as u64 != size {
        return Err(Error::BadEntry {
            archive: layout.name().to_string(),
            entry: entry.to_string(),
            reason: format!("cut short: {} of {size} bytes", bytes.len()),
        });
    }
    Ok(bytes)
}

pub fn parse_json<T: DeserializeOwned>(
    layout: &dyn Layout,
    entry: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        archive: layout.name().to_string(),
        entry: entry.to_string(),
        source,
    })
}

/// A name inside an archive in its one canonical form (`./a//b` = `a/b`), or why it is not
/// one: absolute names and `..` components are refused outright (docker's and podman's
/// writers never produce them; only an attack does).
pub fn clean(name: &str) -> std::result::Result<String, &'static str> {
    if name.starts_with('/') {
        return Err("absolute name");
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("name with a '..' component leaves the archive"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Where a symbolic link found at `link` (a clean name) with target `target` points, as a
/// clean name, resolved lexically inside the archive; None when it would leave it.
pub fn resolve_symlink(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The name of a blob in an OCI layout.
pub fn blob_entry(digest: &crate::digest::Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// An OCI image layout directory (`oci:DIR`), or an extracted archive.
pub struct DirLayout {
    dir: PathBuf,
    name: String,
}

impl DirLayout {
    pub fn new(dir: &Path, name: String) -> DirLayout {
        DirLayout {
            dir: dir.to_path_buf(),
            name,
        }
    }

    fn path(&self, entry: &str) -> Result<PathBuf> {
        let clean = clean(entry).map_err(|reason| Error::UnsafeEntry {
            archive: self.name.clone(),
            entry: entry.to_string(),
            reason: reason.to_string(),
        })?;
        Ok(self.dir.join(clean))
    }
}

impl Layout for DirLayout {
    fn name(&self) -> &str {
        &self.name
    }

    fn has(&self, entry: &str) -> Result<bool> {
        Ok(self
            .path(entry)?
            .metadata()
            .map(|m| m.is_file())
            .unwrap_or(false))
    }

    fn open(&self, entry: &str) -> Result<(Box<dyn Read + '_>, u64)> {
        let path = self.path(entry)?;
        let missing = |reason: String| Error::BadEntry {
            archive: self.name.clone(),
            entry: entry.to_string(),
            reason,
        };
        // Links inside the directory are fine (an extracted `docker save` has them); one
        // that leads out of it is not the archive's content.
        let real = path
            .canonicalize()
            .map_err(|e| missing(format!("cannot open {}: {e}", path.display())))?;
        let root = self
            .dir
            .canonicalize()
            .map_err(Error::path("resolve", &self.dir))?;
        if !real.starts_with(&root) {
            return Err(Error::UnsafeEntry {
                archive: self.name.clone(),
                entry: entry.to_string(),
                reason: format!("leads out of the directory, to {}", real.display()),
            });
        }
        let file = File::open(&real)
            .map_err(|e| missing(format!("cannot open {}: {e}", path.display())))?;
        let meta = file.metadata().map_err(Error::path("stat", &path))?;
        if !meta.is_file() {
            return Err(missing("not a regular file".to_string()));
        }
        Ok((Box::new(file), meta.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_names() {
        assert_eq!(clean("./manifest.json").unwrap(), "manifest.json");
        assert_eq!(clean("blobs//sha256/./ab").unwrap(), "blobs/sha256/ab");
        assert_eq!(clean("abc/").unwrap(), "abc");
        assert!(clean("../x").is_err());
        assert!(clean("a/../../x").is_err());
        assert!(clean("a/../b").is_err());
        assert!(clean("/etc/passwd").is_err());
    }

    #[test]
    fn resolves_links_inside_only() {
        assert_eq!(
            resolve_symlink("abc/layer.tar", "../def.tar").as_deref(),
            Some("def.tar")
        );
        assert_eq!(
            resolve_symlink("abc/layer.tar", "other/x").as_deref(),
            Some("abc/other/x")
        );
        assert_eq!(resolve_symlink("abc/layer.tar", "../../etc/passwd"), None);
        assert_eq!(resolve_symlink("layer.tar", "/etc/passwd"), None);
    }
}
