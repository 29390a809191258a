//! The registry client's errors: each names the registry, the reference or the digest it was
//! about, and the registry's own message when it sent one.

use std::io;
use std::path::PathBuf;

use crate::reference::ReferenceError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The registry could not be reached at all (refused, no route, TLS failure).
    #[error("pinging container registry {registry}: {reason}")]
    Unreachable { registry: String, reason: String },
    /// A request failed below HTTP (reset, timeout) after the retries.
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: ureq::Error,
    },
    /// The registry (or its token service) refused the credentials, or asked for some.
    #[error("{what}: unauthorized: {message}")]
    Unauthorized { what: String, message: String },
    /// The registry answered with a status that means the thing is not there.
    #[error("{what}: {message}")]
    NotFound { what: String, message: String },
    /// Any other unexpected status (after retries for 429/5xx).
    #[error("{what}: unexpected status {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error("getting a token from {realm}: {reason}")]
    Token { realm: String, reason: String },
    /// A manifest that is not one we may use: unknown or lying media type (CVE-2021-41190),
    /// schema 1, not an image, no layers...
    #[error("manifest {what}: {reason}")]
    Manifest { what: String, reason: String },
    #[error("{reference}: no image for platform {wanted} (the index has: {available})")]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    /// Content did not hash to the digest it was asked by.
    #[error("{what} {expected}: digest mismatch: the registry sent content with digest {actual}")]
    DigestMismatch {
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("auth file {path}: {reason}")]
    AuthFile { path: PathBuf, reason: String },
    /// A docker credential helper could not be run or gave no usable answer.
    #[error("credential helper {helper} ({key} in {}){action}: {reason}", config.display())]
    CredentialHelper {
        helper: String,
        config: PathBuf,
        key: &'static str,
        /// ` get SERVER` (empty when no call was made).
        action: String,
        reason: String,
    },
    /// A registry certificate directory (certs.d, `--cert-dir`) that cannot be used.
    #[error("registry certificates {path}: {reason}")]
    Certs { path: PathBuf, reason: String },
    #[error("invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8")]
    BadPlatform(String),
    #[error("invalid credentials {0:?}: expected USERNAME:PASSWORD")]
    BadCredentials(String),
    /// The store refused or failed to keep what was downloaded (a digest mismatch, a layer
    /// that would escape, a full disk...).
    #[error(transparent)]
    Store(#[from] crate::error::Error),
    /// What went wrong pulling `reference`.
    #[error("pulling {reference}: {source}")]
    Pull {
        reference: String,
        source: Box<Error>,
    },
    /// What went wrong pushing `reference`.
    #[error("pushing {reference}: {source}")]
    Push {
        reference: String,
        source: Box<Error>,
    },
    #[error("{0}")]
    Other(String),
}
