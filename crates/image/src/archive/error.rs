//! The archive formats' errors. Each names the archive (file, `stdin`, `oci:DIR`), the entry
//! and, where there is one, the digest, so `berth load` says exactly what is wrong.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening, reading or writing a file of ours or the user's failed.
    #[error("{op} {path}: {source}")]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the archive's stream failed (a truncated gzip, a tar header cut short).
    #[error("{archive}: {op}: {source}")]
    Read {
        archive: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The input is neither a tar (plain, gzip or zstd) nor an OCI layout.
    #[error("{archive}: {reason}")]
    NotAnArchive { archive: String, reason: String },
    /// A tar entry whose name or link target would leave the archive.
    #[error("{archive}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        archive: String,
        entry: String,
        reason: String,
    },
    /// An entry a manifest points to is not in the archive (or is cut short).
    #[error("{archive}: entry {entry:?}: {reason}")]
    BadEntry {
        archive: String,
        entry: String,
        reason: String,
    },
    /// A JSON document of the archive (manifest.json, index.json, a manifest, a config).
    #[error("{archive}: {entry}: invalid JSON: {source}")]
    Json {
        archive: String,
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    /// An entry whose content does not hash to the digest its name or descriptor announces.
    #[error("{archive}: {entry}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        archive: String,
        entry: String,
        expected: Digest,
        actual: Digest,
    },
    /// A manifest, index or config that says something impossible or unsupported.
    #[error("{archive}: {what}: {reason}")]
    BadImage {
        archive: String,
        what: String,
        reason: String,
    },
    /// A name in the archive (RepoTags, ref.name) or given for save that is not a reference.
    #[error("{archive}: {source}")]
    BadName {
        archive: String,
        #[source]
        source: crate::reference::ReferenceError,
    },
    /// Writing the output (a tar to a file or a pipe, an OCI directory).
    #[error("writing {dest}: {source}")]
    Write {
        dest: String,
        #[source]
        source: io::Error,
    },
    /// The store refused or failed a step (it names the digest or path itself).
    #[error("{archive}: {source}")]
    Store {
        archive: String,
        #[source]
        source: crate::error::Error,
    },
    /// A store step outside any archive (resolving an image to save, reading its blobs).
    #[error(transparent)]
    Image(crate::error::Error),
    /// Nothing to do: `save` with no image, an archive with no image in it.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub(crate) fn path(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Path { op, path, source }
    }

    pub(crate) fn store(archive: &str) -> impl FnOnce(crate::error::Error) -> Error + '_ {
        move |source| Error::Store {
            archive: archive.to_string(),
            source,
        }
    }
}
