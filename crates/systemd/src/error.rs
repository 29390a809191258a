//! Errors of the systemd driver: each names the unit, the job, the cgroupsPath or the field.

use crate::dbus;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroupsPath {path:?}: {reason}")]
    CgroupsPath { path: String, reason: String },
    #[error("slice {slice:?}: {reason}")]
    Slice { slice: String, reason: String },
    #[error("linux.resources.{field}: {reason}")]
    Resource { field: &'static str, reason: String },
    /// `linux.resources.devices` rules that make no device policy; each names its rule.
    #[error("{0}")]
    Devices(berth_cgroups::ResourceErrors),
    #[error("linux.resources.unified[{key:?}] = {value:?}: {reason}")]
    Unified {
        key: String,
        value: String,
        reason: &'static str,
    },
    /// The systemd bus is not reachable, or a call failed: the D-Bus error names the socket
    /// or the method.
    #[error("systemd: {0}")]
    Bus(#[from] dbus::Error),
    /// A unit of that name exists and is not a failed leftover systemd could reset.
    #[error(
        "systemd unit {unit} already exists (stop it, e.g. with delete --force, to reuse the name)"
    )]
    UnitExists { unit: String },
    #[error("systemd unit {unit} is not loaded")]
    NoSuchUnit { unit: String },
    #[error("systemd job {job} ({what} {unit}) finished with result {result:?}")]
    JobFailed {
        unit: String,
        what: &'static str,
        job: String,
        result: String,
    },
    #[error("systemd job {job} ({what} {unit}) did not finish within {secs} s")]
    JobTimeout {
        unit: String,
        what: &'static str,
        job: String,
        secs: u64,
    },
}

pub type Result<T> = std::result::Result<T, Error>;
