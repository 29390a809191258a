//! Errors of the D-Bus client. Each names the socket or the method it concerns.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("D-Bus address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("connect to the D-Bus socket {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("D-Bus socket {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("D-Bus socket {path}: authentication refused: {reply:?}")]
    Auth { path: PathBuf, reply: String },
    #[error("D-Bus socket {path}: the bus closed the connection")]
    Closed { path: PathBuf },
    #[error("D-Bus socket {path}: malformed message: {reason}")]
    Protocol { path: PathBuf, reason: String },
    #[error("D-Bus call {method} to {destination}: no reply within {secs} s")]
    Timeout {
        method: String,
        destination: String,
        secs: u64,
    },
    /// The peer answered with an error message.
    #[error("D-Bus call {method} to {destination}: {name}: {message}")]
    Remote {
        method: String,
        destination: String,
        /// The D-Bus error name, e.g. `org.freedesktop.systemd1.NoSuchUnit`.
        name: String,
        message: String,
    },
    #[error("D-Bus call {method}: reply of signature {got:?}, expected {expected:?}")]
    Reply {
        method: String,
        expected: &'static str,
        got: String,
    },
}

impl Error {
    /// The D-Bus error name, when the peer answered with an error.
    pub fn remote_name(&self) -> Option<&str> {
        match self {
            Error::Remote { name, .. } => Some(name),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
