//! The image crate's errors: each names the step and the digest, path or reference it was
//! about, so a message printed by `berth` tells the user what to look at.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem step on a path of the store (or of an input file) failed.
    #[error("{op} {path}: {source}")]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading an input stream (a layer, a blob, a tarball) failed.
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    BadDigest(String),
    /// Content did not hash to the digest it was announced with.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {0} is not in the store")]
    BlobUnknown(Digest),
    #[error("layer {0} is not in the store")]
    LayerUnknown(Digest),
    /// A JSON document (manifest, config, store record) could not be read.
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A manifest that is not an image manifest this store can record.
    #[error("manifest {digest}: {reason}")]
    BadManifest { digest: Digest, reason: String },
    #[error("{0}: image not known")]
    ImageUnknown(String),
    #[error("{name}: short id prefix is ambiguous ({count} images match)")]
    AmbiguousId { name: String, count: usize },
    /// A reference that cannot be parsed or that is not allowed where it was given.
    #[error("{reference}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error("image {id} is in use by {holders}: remove them first or force")]
    ImageInUse { id: String, holders: String },
    /// A layer entry that would leave the layer directory or cannot be represented.
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    /// Creating an entry of a layer failed.
    #[error("layer {layer}: {op} {entry:?}: {source}")]
    Unpack {
        layer: String,
        op: &'static str,
        entry: String,
        #[source]
        source: io::Error,
    },
    /// An `--change` instruction for import that cannot be applied.
    #[error("invalid change {change:?}: {reason}")]
    BadChange { change: String, reason: String },
    /// A step of mounting or unmounting a container's root filesystem failed.
    #[error("{op} {path}: {source}")]
    Mount {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub(crate) fn path(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Path { op, path, source }
    }

    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let what = what.into();
        move |source| Error::Json { what, source }
    }
}
