//! What long image operations (pull, push, load) tell the user as they go. The image crate
//! only reports events; the `berth` binary renders them (bars on a terminal, plain lines
//! otherwise), so the library prints nothing itself.

use crate::digest::Digest;

/// Which blob of an image a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Layer,
    Config,
}

/// How a blob transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobDone {
    Copied,
    /// Already in the destination: nothing transferred.
    Skipped,
    /// Mounted from another repository of the same registry (push).
    Mounted,
    Failed,
}

/// Receives progress events, from several threads at once (layers move in parallel).
pub trait Progress: Sync {
    /// A step, in podman's words ("Getting image source signatures", "Writing manifest...").
    fn message(&self, _text: &str) {}
    /// A transfer starts; `size` when the manifest says it.
    fn blob_start(&self, _kind: BlobKind, _digest: &Digest, _size: Option<u64>) {}
    /// `done` bytes of the blob have moved so far (a total, not an increment; it may go back
    /// to 0 when a transfer is retried).
    fn blob_bytes(&self, _digest: &Digest, _done: u64) {}
    fn blob_done(&self, _digest: &Digest, _how: BlobDone) {}
}

/// Reports nothing (`-q`, tests).
pub struct Silent;

impl Progress for Silent {}
