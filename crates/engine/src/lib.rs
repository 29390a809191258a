//! berth-engine: containers for the `berth` command.
//!
//! Container records under `--root`/`--runroot`, the per-container monitor (the same binary,
//! forked: no daemon, no conmon), and one function per verb of the command line (run,
//! create, start, stop, kill, rm, ps, logs, exec, inspect, ...). It drives the runtime core
//! (`berth-container`) in-process and takes root filesystems from `berth-image`.
//!
//! Layout:
//! - `<root>/containers/<id>/`: `container.json` (the [`record::ContainerRecord`]), the
//!   bundle's `config.json`, `<id>-json.log`, `hosts`, `hostname`, `resolv.conf`, and for an
//!   image the snapshot (`upper/`, `work/`) mounted at `rootfs/`.
//! - `<root>/containers/names/<name>`: a symlink to the id.
//! - `<runroot>/runtime/<id>/`: the runtime core's state directory.
//! - `<runroot>/containers/<id>/attach.sock`: the monitor's attach socket.
//!
//! For other verbs (ENGINE2): read records with [`Engine::records`], get the live state with
//! [`status::live`] (it also settles containers whose monitor was killed), act on the
//! runtime with [`Engine::runtime`] and `berth_container::ops`.

#![recursion_limit = "512"]

pub mod attach;
pub mod cgroup_parents;
pub mod client;
pub mod commit;
pub mod config;
pub mod cp;
pub mod diff;
pub mod error;
pub mod events;
pub mod export;
pub mod image;
pub mod info;
pub mod inspect;
pub mod limit;
pub mod logfile;
mod loopback_relay;
pub mod monitor;
pub mod names;
pub mod namespaces;
pub mod network;
pub mod ops;
pub mod pause;
pub mod port;
pub mod prune;
pub mod ps;
pub mod record;
pub mod rename;
pub mod rootless;
pub mod safepath;
pub mod signals;
mod slirp;
pub mod spec;
pub mod stats;
pub mod status;
mod sys;
pub mod throttle;
pub mod time;
pub mod top;
pub mod units;
pub mod update;
pub mod userns;
pub mod volume;
pub mod warnings;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use berth_container::state::CgroupDriver;

pub use error::{Error, Result};

/// `--cgroup-manager` of the command line, for every engine the process makes.
static CGROUP_MANAGER: OnceLock<CgroupDriver> = OnceLock::new();

/// Sets the cgroup manager of the engines made from now on (the command line's
/// `--cgroup-manager`); without it they take [`CgroupDriver::host_default`].
pub fn set_cgroup_manager(manager: CgroupDriver) {
    let _ = CGROUP_MANAGER.set(manager);
}

/// Where containers live: the two roots of the command line.
#[derive(Debug, Clone)]
pub struct Engine {
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub records: record::Records,
    /// Who makes the cgroups of the containers this engine starts: systemd (a scope
    /// `berth-<id>.scope` in machine.slice, as podman puts its containers) or cgroupfs
    /// (`/berth/<id>`).
    pub cgroup_manager: CgroupDriver,
}

impl Engine {
    pub fn new(root: &Path, runroot: &Path) -> Self {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let runroot = std::path::absolute(runroot).unwrap_or_else(|_| runroot.to_path_buf());
        Engine {
            records: record::Records::new(&root),
            root,
            runroot,
            cgroup_manager: *CGROUP_MANAGER.get_or_init(CgroupDriver::host_default),
        }
    }

    /// The runtime core's state root.
    pub fn runtime(&self) -> berth_container::state::StateRoot {
        berth_container::state::StateRoot::new(self.runroot.join("runtime"))
            .with_cgroup_driver(self.cgroup_manager)
    }

    /// `<root>/containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.records.dir(id)
    }

    /// `<runroot>/containers/<id>`: the attach socket.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("containers").join(id)
    }
}
