//! The engine's errors. Each names the container, the flag, the image or the path; the CLI
//! maps every one of them to exit code 125 (the container's own failures are exit codes,
//! not errors).

use std::path::PathBuf;

/// Every way an engine operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no container with name or ID {0:?} found")]
    NoSuchContainer(String),

    #[error("more than one container matches {0:?}: use more characters of the ID")]
    Ambiguous(String),

    #[error("the container name {name:?} is already in use by {id}")]
    NameInUse { name: String, id: String },

    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),

    /// A flag whose value cannot be used.
    #[error("invalid {flag} {value:?}: {message}")]
    Flag {
        flag: &'static str,
        value: String,
        message: String,
    },

    /// The operation does not fit the container's state.
    #[error("container {name} is {state}: {message}")]
    State {
        name: String,
        state: String,
        message: String,
    },

    #[error("image {reference}: {message}")]
    Image { reference: String, message: String },

    /// A file operation on a path.
    #[error("{op} {}: {source}", path.display())]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A syscall without a path worth naming.
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The container could not be set up or its program could not be executed; carries
    /// the exit code docker gives (125, 126 not executable, 127 not found).
    #[error("{message}")]
    Start { message: String, exit_code: u8 },

    #[error("{0}")]
    Runtime(#[from] berth_container::Error),

    /// Rootless `berth`: what the user's account or the host lacks, and how to fix it.
    #[error("rootless: {0}")]
    Rootless(String),

    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn path(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Path {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn sys(op: &'static str, source: impl Into<std::io::Error>) -> Self {
        Error::Sys {
            op,
            source: source.into(),
        }
    }

    pub fn flag(flag: &'static str, value: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Flag {
            flag,
            value: value.into(),
            message: message.into(),
        }
    }

    /// The exit code the CLI should end with for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Start { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }
}

/// The exit code docker gives when the container's program could not be started, from the
/// init's words (runc's, which docker's CLI matches the same way).
pub fn start_exit_code(message: &str) -> u8 {
    if !message.starts_with("exec") {
        125
    } else if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
