//! Blobs: content-addressed files under `blobs/sha256/`, verified while they stream into
//! `tmp/` and renamed into place only when their digest is right.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Store;
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::error::{Error, Result};

impl Store {
    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobUnknown(*digest),
            _ => Error::Path {
                op: "open",
                path,
                source: e,
            },
        })
    }

    /// The whole blob in memory (manifests and configs: small documents).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(Error::path("read", self.blob_path(digest)))?;
        Ok(bytes)
    }

    /// The size of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::BlobUnknown(*digest)),
            Err(e) => Err(Error::Path {
                op: "stat",
                path,
                source: e,
            }),
        }
    }

    /// Stores what `reader` gives, hashing it on the way. With `expected`, content that hashes
    /// to anything else is refused (naming both digests) and nothing is stored; a blob already
    /// present is only verified against the stream.
    pub fn put_blob(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
    ) -> Result<(Digest, u64)> {
        if let Some(expected) = expected.filter(|d| self.has_blob(d)) {
            let (actual, len) =
                HashingReader::new(reader)
                    .finish()
                    .map_err(|source| Error::Read {
                        what: format!("blob {expected}"),
                        source,
                    })?;
            check(expected, &actual)?;
            return Ok((actual, len));
        }
        let (staging, file) = self.tmp_file("blob")?;
        let staged = Staged(&staging);
        let mut writer = HashingWriter::new(file);
        io::copy(reader, &mut writer).map_err(|source| Error::Read {
            what: match expected {
                Some(d) => format!("blob {d}"),
                None => "blob".to_string(),
            },
            source,
        })?;
        let (_file, actual, len) = writer.finish();
        if let Some(expected) = expected {
            check(expected, &actual)?;
        }
        self.commit_blob(staged, &actual)?;
        Ok((actual, len))
    }

    /// Stores `bytes` (a manifest or config made here or read whole).
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest) {
            self.put_blob(Some(&digest), &mut &bytes[..])?;
        }
        Ok(digest)
    }

    /// Renames a verified staging file into place. Two writers of one blob both succeed:
    /// same content, and rename replaces atomically.
    pub(crate) fn commit_blob(&self, staged: Staged<'_>, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        std::fs::rename(staged.0, &path).map_err(Error::path("rename into", &path))?;
        std::mem::forget(staged);
        Ok(())
    }
}

pub(crate) fn check(expected: &Digest, actual: &Digest) -> Result<()> {
    if expected != actual {
        return Err(Error::DigestMismatch {
            expected: *expected,
            actual: *actual,
        });
    }
    Ok(())
}

/// A staging file or dir in `tmp/`, removed when dropped unless committed.
pub(crate) struct Staged<'a>(pub(crate) &'a Path);

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        let _ = super::fsutil::remove_all(self.0);
    }
}
