//! Error types. Every variant names what the runtime needs to print a useful
//! line: the controller, the file and the value involved.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem found in `linux.resources` (or in a resource's fit with the
/// host) before any syscall is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceError {
    /// The JSON path of the offending field, e.g. `linux.resources.memory.swap`.
    pub field: String,
    /// Human readable sentence; starts with the field so it reads well alone.
    pub message: String,
}

impl ResourceError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ResourceError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// All problems found in one validation pass (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceErrors(pub Vec<ResourceError>);

impl ResourceErrors {
    /// The first problem's field, handy in tests and log lines.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }
}

impl fmt::Display for ResourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ResourceErrors {}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `linux.resources` is invalid or cannot be enforced on this host.
    #[error("invalid linux.resources: {0}")]
    Resources(#[from] ResourceErrors),

    /// `linux.cgroupsPath` is unusable.
    #[error("invalid linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    /// The container has no cgroup of its own ([`crate::NoCgroup`]); the text says what
    /// needed one.
    #[error(
        "the container has no cgroup to {0}: its runtime ran as an unprivileged user, and this \
         host gives such a user no cgroup to manage (cgroup v1, or no cgroup v2 subtree \
         delegated to the user)"
    )]
    NoCgroup(&'static str),

    /// No cgroup filesystem at all in /proc/self/mountinfo.
    #[error("no cgroup or cgroup2 filesystem is mounted (checked /proc/self/mountinfo)")]
    NoCgroupFs,

    /// A file we expected to parse had unexpected content.
    #[error("parsing {path}: {reason}")]
    Parse { path: PathBuf, reason: String },

    /// Reading a file (or listing a directory) failed.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Writing a value to a cgroup control file failed.
    #[error("{controller}: writing {value:?} to {path}: {source}")]
    Write {
        controller: &'static str,
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    /// Creating a cgroup directory failed.
    #[error("creating cgroup {path}: {source}")]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Removing a cgroup directory failed (after retries on EBUSY).
    #[error("removing cgroup {path}: {source}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Opening a cgroup directory (e.g. for CLONE_INTO_CGROUP or BPF) failed.
    #[error("opening cgroup directory {path}: {source}")]
    OpenDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `checkBeforeUpdate`: the new limit is below what the cgroup uses now.
    #[error(
        "memory: refusing to set limit {limit} on {path}: current usage is {usage} \
         (linux.resources.memory.checkBeforeUpdate)"
    )]
    MemoryBelowUsage {
        path: PathBuf,
        limit: i64,
        usage: u64,
    },

    /// The kernel refused a v1 memory limit (EBUSY: it could not reclaim
    /// down to it).
    #[error(
        "memory: cannot set limit {limit} on {path}: the kernel could not reclaim below it \
         (usage {usage}, peak {peak})"
    )]
    MemoryLimitTooLow {
        path: PathBuf,
        limit: i64,
        usage: u64,
        peak: u64,
    },

    /// A v1 memory limit above the memory+swap limit in place.
    #[error(
        "memory: limit {limit} on {path} is above the memory+swap limit in place ({memsw}); \
         set linux.resources.memory.swap as well"
    )]
    MemoryAboveMemsw {
        path: PathBuf,
        limit: i64,
        memsw: u64,
    },

    /// Freezing did not complete in time; the cgroup was thawed again.
    #[error("freezer: cgroup {path} did not reach FROZEN within {timeout:?} (last state {state})")]
    FreezeTimeout {
        path: PathBuf,
        timeout: Duration,
        state: String,
    },

    /// A bpf(2) command failed.
    #[error("devices: bpf({cmd}) on {path}: {source}{log}")]
    Bpf {
        cmd: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
        /// Verifier log (prefixed with a newline) when the kernel gave one.
        log: String,
    },

    /// The operation needs something this cgroup's layout does not have.
    #[error("{what} is not available: {reason}")]
    Unsupported { what: String, reason: String },

    /// A syscall failed in a place where no path is involved.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The underlying OS error number, if any (EBUSY, ENOENT, ...).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Mkdir { source, .. }
            | Error::Rmdir { source, .. }
            | Error::OpenDir { source, .. }
            | Error::Bpf { source, .. }
            | Error::Sys { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
