//! berth-container: the OCI runtime core of Berth.
//!
//! A container is a state directory plus a process. [`spec`] turns a bundle into a plan
//! (pure, validated), the init side sets the container up from that plan inside its new
//! namespaces, and [`state`] keeps what later commands need.

pub mod error;
pub mod spec;
pub(crate) mod sys;
pub use sys::{command_line, standard_process_prologue};

pub use error::{Error, Result};
pub mod cgroup;
pub(crate) mod hooks;
pub(crate) mod init;
pub(crate) mod kill_point;
pub mod lsm;
pub mod ops;
pub(crate) mod plan;
pub mod privilege;
pub mod sealed;
pub(crate) mod seccomp;
pub(crate) mod spawn;
pub mod state;
pub(crate) mod sync;
