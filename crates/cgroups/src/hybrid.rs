//! Hybrid hosts: v1 hierarchies plus a cgroup2 mount. Every controller is
//! driven where the kernel bound it (on this project's CI machine memory,
//! cpu, pids, ... are v1 and hugetlb is v2); the container also gets a
//! directory on the cgroup2 mount, which gives it cgroup.kill, cgroup.events,
//! PSI files and, if the v1 devices controller is missing, a device program.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Join};
use crate::controller::Controller;
use crate::error::Result;
use crate::freezer::FreezerState;
use crate::layout::LayoutKind;
use crate::mounts::HierarchyMount;
use crate::oom::OomWatcher;
use crate::plan::{Bindings, Plan};
use crate::self_join::V1SelfJoin;
use crate::stats::Stats;
use crate::tree;
use crate::v1::{V1Cgroup, write_pid};
use crate::v2::{self, V2Cgroup};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HybridCgroup {
    pub v1: V1Cgroup,
    pub v2: V2Cgroup,
}

impl HybridCgroup {
    /// A controller is on v2 only if no v1 hierarchy has it (the kernel
    /// binds each controller to one hierarchy; this just keeps a stale
    /// state file from sending one to both).
    fn on_v2(&self, c: Controller) -> bool {
        self.v1.dir(c).is_none() && self.v2.has(c)
    }
}

impl Backend for HybridCgroup {
    fn bindings(&self) -> Bindings {
        let v1 = self.v1.controllers();
        let v2 = self
            .v2
            .available
            .iter()
            .filter(|name| {
                !v1.iter()
                    .any(|c| c.v2_name() == Some(name.as_str()) && *c != Controller::Cpuacct)
            })
            .cloned()
            .collect();
        Bindings {
            kind: LayoutKind::Hybrid,
            v1,
            v2,
            unified: true,
        }
    }

    fn create(&self, plan: &Plan) -> Result<()> {
        let mut made = Vec::new();
        let r = self
            .v1
            .make_dirs(plan, &mut made)
            .and_then(|()| self.v2.make_dirs(plan, &mut made))
            .and_then(|()| self.v1.run(plan))
            .and_then(|()| self.v2.run(plan, true));
        tree::undo_on_error(&r, &made);
        r
    }

    fn update(&self, plan: &Plan) -> Result<()> {
        self.v1.run(plan)?;
        self.v2.run(plan, false)
    }

    fn add_pid(&self, pid: i32, join: Join) -> Result<()> {
        // Unified first when joining it: with CLONE_INTO_CGROUP it is done
        // already, and either way v1 membership follows.
        if matches!(join, Join::All | Join::UnifiedOnly) {
            write_pid("cgroup", &self.v2.dir, pid)?;
        }
        self.v1.add_pid(pid, join)
    }

    fn open_v1_self_join(&self) -> Result<V1SelfJoin> {
        self.v1.open_v1_self_join()
    }

    fn unified_dir(&self) -> Option<&Path> {
        Some(&self.v2.dir)
    }

    fn set_frozen(&self, frozen: bool, timeout: Duration) -> Result<()> {
        if self.v1.dir(Controller::Freezer).is_some() {
            self.v1.set_frozen(frozen, timeout)
        } else {
            self.v2.set_frozen(frozen, timeout)
        }
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        if self.v1.dir(Controller::Freezer).is_some() {
            self.v1.freezer_state()
        } else {
            self.v2.freezer_state()
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        // Every container process is in the unified tree too.
        self.v2.pids()
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = self.v1.stats()?;
        v2::stats::collect(&self.v2, &mut s, |c| self.on_v2(c))?;
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        if self.v1.dir(Controller::Memory).is_some() {
            self.v1.oom_kill_count()
        } else {
            self.v2.oom_kill_count()
        }
    }

    fn oom_watcher(&self) -> Result<OomWatcher> {
        if self.v1.dir(Controller::Memory).is_some() {
            self.v1.oom_watcher()
        } else {
            self.v2.oom_watcher()
        }
    }

    fn destroy(&self) -> Result<()> {
        let a = self.v1.destroy();
        let b = self.v2.destroy();
        a.and(b)
    }

    fn exists(&self) -> bool {
        self.v1.exists() || self.v2.exists()
    }

    fn mounts(&self) -> Vec<HierarchyMount> {
        let mut m = self.v1.mounts();
        m.push(self.v2.mount());
        m
    }
}
