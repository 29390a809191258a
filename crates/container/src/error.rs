//! The errors of the runtime core. Each names what was wrong: the file, the field, the id,
//! the path or the syscall.

use std::io;
use std::path::PathBuf;

/// Every way a container operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// config.json (or a process.json) could not be read or parsed.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    /// The configuration parsed but asks for something invalid.
    #[error("invalid configuration: {field}: {message}")]
    Invalid { field: String, message: String },

    /// A container id that runc would refuse too.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    #[error("container {0:?} already exists")]
    Exists(String),

    #[error("container {0:?} does not exist")]
    NotFound(String),

    /// The operation does not fit the container's current status.
    #[error("container {id:?} is {status}: {message}")]
    WrongStatus {
        id: String,
        status: String,
        message: String,
    },

    /// A syscall or file operation on a path.
    #[error("{op} {}: {}", path.display(), os_text(source))]
    Path {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A syscall without a path worth naming.
    #[error("{op}: {}", os_text(source))]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },

    /// The container's init reported a failure while setting the container up.
    #[error("{0}")]
    Init(String),

    /// The kernel's OOM killer killed processes of the container (a warning of `delete`).
    #[error("{0}")]
    OomKilled(Box<crate::ops::OomKill>),

    /// A hook failed or timed out.
    #[error("{hook} hook {path}: {message}")]
    Hook {
        hook: &'static str,
        path: String,
        message: String,
    },

    #[error("invalid signal {0:?}")]
    InvalidSignal(String),

    /// The runtime was told to stop (by this signal) while it waited for a process.
    #[error("interrupted by signal {0} while setting the process up")]
    Interrupted(i32),

    #[error("{0}")]
    Cgroup(#[from] berth_cgroups::Error),

    /// The systemd cgroup driver: a bad cgroupsPath or resource for it, systemd's bus out of
    /// reach, or a unit call systemd refused.
    #[error("{0}")]
    Systemd(#[from] berth_systemd::Error),

    /// `linux.seccomp` cannot be compiled: the configuration is at fault (its wording is
    /// that of [`Error::Invalid`] for the field).
    #[error("invalid configuration: linux.seccomp: {0}")]
    SeccompProfile(#[source] berth_seccomp::CompileError),

    /// The seccomp notify fd could not be handed to the agent at `listenerPath`: the host
    /// or the agent is at fault, not the configuration.
    #[error("seccomp: {0}")]
    SeccompNotify(#[source] berth_seccomp::NotifyError),

    /// The container needs the runtime to run from a sealed copy of itself first (see
    /// [`crate::sealed`]); the command line re-executes and tries again.
    #[error("this container needs the runtime to run from a sealed copy of itself")]
    NeedsSealedRuntime,

    /// Something the host or this build of Berth cannot do.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// A failed operation on `path`.
    pub fn path(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Path {
            op,
            path: path.into(),
            source,
        }
    }

    /// A failed syscall described by `op`.
    pub fn sys(op: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Sys {
            op: op.into(),
            source: source.into(),
        }
    }

    /// A field of the configuration that cannot be honoured.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An I/O error as Go (and so runc) prints it: lower case, without Rust's "(os error N)".
/// Clients match these words: docker's CLI maps "no such file or directory" to exit code
/// 127 and "permission denied" to 126, case-sensitively.
pub fn os_text(error: &io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_runc() {
        let e = Error::path("stat", "/x", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.to_string(), "stat /x: no such file or directory");
        let e = Error::sys("setns", io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(e.to_string(), "setns: operation not permitted");
    }
}
