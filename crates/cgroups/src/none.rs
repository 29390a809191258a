//! [`NoCgroup`]: a container without a cgroup of its own. A runtime run by an unprivileged
//! user (runc's "rootless") may not write the host's cgroup v1 hierarchies, and on cgroup v2
//! only a subtree delegated to the user. Without limits to enforce, runc then runs the
//! container in the cgroup it was started from; so does berth. What needs a cgroup (limits,
//! pause, stats, listing every process) says it has none, in [`Error::NoCgroup`].

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Join};
use crate::error::{Error, Result};
use crate::freezer::FreezerState;
use crate::layout::LayoutKind;
use crate::mounts::HierarchyMount;
use crate::oom::OomWatcher;
use crate::plan::{Bindings, Plan};
use crate::self_join::V1SelfJoin;
use crate::stats::Stats;

/// No cgroup: the container's processes stay in the cgroup of whoever started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoCgroup {
    /// The host's layout, which the container's /sys/fs/cgroup still reflects.
    pub layout: LayoutKind,
}

impl Backend for NoCgroup {
    fn bindings(&self) -> Bindings {
        Bindings {
            kind: self.layout,
            v1: Vec::new(),
            v2: Vec::new(),
            unified: false,
        }
    }

    fn create(&self, plan: &Plan) -> Result<()> {
        self.update(plan)
    }

    fn update(&self, plan: &Plan) -> Result<()> {
        if plan.ops().is_empty() {
            Ok(())
        } else {
            Err(Error::NoCgroup("set limits"))
        }
    }

    fn add_pid(&self, _pid: i32, _join: Join) -> Result<()> {
        Ok(())
    }

    fn unified_dir(&self) -> Option<&Path> {
        None
    }

    fn open_v1_self_join(&self) -> Result<V1SelfJoin> {
        Ok(V1SelfJoin::default())
    }

    fn set_frozen(&self, _frozen: bool, _timeout: Duration) -> Result<()> {
        Err(Error::NoCgroup("freeze or thaw it"))
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        Ok(FreezerState::Thawed)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        Err(Error::NoCgroup("list its processes"))
    }

    fn stats(&self) -> Result<Stats> {
        Err(Error::NoCgroup("read its resource usage"))
    }

    fn oom_kill_count(&self) -> Result<u64> {
        Err(Error::NoCgroup("count OOM kills"))
    }

    fn oom_watcher(&self) -> Result<OomWatcher> {
        Err(Error::NoCgroup("watch for OOM kills"))
    }

    fn destroy(&self) -> Result<()> {
        Ok(())
    }

    fn exists(&self) -> bool {
        false
    }

    fn mounts(&self) -> Vec<HierarchyMount> {
        Vec::new()
    }

    /// Nothing lists the processes: the caller signals the init, whose pid namespace takes
    /// the others with it (a container without one keeps its other processes).
    fn signal_all(&self, _sig: i32) -> Result<()> {
        Ok(())
    }
}
