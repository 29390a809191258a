//! The systemd cgroup driver of Berth: a container's cgroup as a transient scope unit that
//! systemd makes and owns, over the system bus.
//!
//! - [`unit`]: runc's `slice:prefix:name` cgroupsPath to a unit name and slice
//! - [`props`]: OCI resources to unit properties (as runc converts them)
//! - [`devices`]: the device rules to `DevicePolicy=` and `DeviceAllow=`
//! - [`manager`]: the calls: start a scope and wait for its job, set properties, find the
//!   cgroup, stop and wait until it is gone
//! - [`dbus`]: a minimal synchronous D-Bus client of our own (no async runtime on the start
//!   path, no libdbus)
//!
//! The runtime's flow: [`ScopePlan::new`] while planning (bad input fails before anything
//! exists), `Systemd::connect` + [`Systemd::start`] once the init's pid is known (systemd
//! refuses a scope without a process, so this comes after the fork; the init waits),
//! `control_group` to reach the files (stats, freeze, kill, what `unified_left` holds),
//! `set_properties` on update, `stop_unit` on delete (also for a unit a killed create left).

pub mod dbus;
pub mod devices;
pub mod error;
pub mod manager;
pub mod plan;
pub mod props;
pub mod unit;

pub use error::{Error, Result};
pub use manager::{Systemd, UnitState};
pub use plan::ScopePlan;
pub use props::{Property, Resources};
pub use unit::{UnitKind, UnitPath};
