//! The one interface the three layouts implement.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::freezer::FreezerState;
use crate::mounts::HierarchyMount;
use crate::oom::OomWatcher;
use crate::plan::{Bindings, Plan};
use crate::self_join::V1SelfJoin;
use crate::stats::Stats;
use crate::sys;

/// How a process joins a container's cgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Write the pid to every hierarchy's cgroup.procs.
    All,
    /// The process was cloned with CLONE_INTO_CGROUP into the unified
    /// directory already; join only the v1 hierarchies (hybrid).
    SkipUnified,
    /// The process joined the v1 hierarchies itself ([`V1SelfJoin`]); join only
    /// the unified one.
    UnifiedOnly,
}

/// Operations on one container's cgroup, whatever the host layout.
pub trait Backend {
    /// Where each controller is enforced.
    fn bindings(&self) -> Bindings;
    /// Make the directories (and initialise what a new cgroup needs before
    /// a task can join), then run a create plan.
    fn create(&self, plan: &Plan) -> Result<()>;
    /// Run an update plan on existing directories.
    fn update(&self, plan: &Plan) -> Result<()>;
    /// Move `pid` into the container's cgroups.
    fn add_pid(&self, pid: i32, join: Join) -> Result<()>;
    /// The container's directory on the cgroup2 mount, if it has one.
    fn unified_dir(&self) -> Option<&Path>;
    /// The `tasks` files of the v1 hierarchies, for a process to join them itself
    /// (empty on cgroup v2).
    fn open_v1_self_join(&self) -> Result<V1SelfJoin>;
    /// Freeze (`true`) or thaw, waiting up to `timeout` for a freeze.
    fn set_frozen(&self, frozen: bool, timeout: Duration) -> Result<()>;
    fn freezer_state(&self) -> Result<FreezerState>;
    /// Host pids in the cgroup and its sub-cgroups.
    fn pids(&self) -> Result<Vec<i32>>;
    fn stats(&self) -> Result<Stats>;
    fn oom_kill_count(&self) -> Result<u64>;
    fn oom_watcher(&self) -> Result<OomWatcher>;
    /// Remove every directory of the container's cgroup (and sub-cgroups).
    fn destroy(&self) -> Result<()>;
    fn exists(&self) -> bool;
    fn mounts(&self) -> Vec<HierarchyMount>;

    /// Send `sig` to every process. SIGKILL goes through cgroup.kill where
    /// the kernel has it (one write, no race with forks); otherwise the
    /// cgroup is frozen so nothing forks between listing and signalling,
    /// every pid is signalled, and the previous freezer state is restored.
    fn signal_all(&self, sig: i32) -> Result<()> {
        if sig == libc::SIGKILL
            && let Some(dir) = self.unified_dir()
        {
            match crate::fsutil::write_io(&dir.join("cgroup.kill"), "1") {
                Ok(()) => return Ok(()),
                // Removed while we wrote (systemd takes an emptied scope's cgroup away at
                // once): nothing is left to kill.
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Write {
                        controller: "cgroup",
                        path: dir.join("cgroup.kill"),
                        value: "1".into(),
                        source,
                    });
                }
            }
        }
        let was = self.freezer_state().ok();
        let froze = was == Some(FreezerState::Thawed)
            && self.set_frozen(true, Duration::from_secs(2)).is_ok();
        let pids = self.pids();
        if let Ok(pids) = &pids {
            for &pid in pids {
                match sys::kill(pid, sig) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(source) => {
                        if froze {
                            let _ = self.set_frozen(false, Duration::from_secs(2));
                        }
                        return Err(Error::Sys {
                            context: format!("kill({pid}, {sig})"),
                            source,
                        });
                    }
                }
            }
        }
        if froze {
            self.set_frozen(false, Duration::from_secs(2))?;
        }
        pids.map(drop)
    }

    /// An fd of the unified directory for clone3(CLONE_INTO_CGROUP).
    fn open_unified_dir(&self) -> Result<Option<OwnedFd>> {
        self.unified_dir()
            .map(crate::devices::v2::open_dir)
            .transpose()
    }
}
