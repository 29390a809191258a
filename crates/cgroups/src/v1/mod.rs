//! The cgroup v1 backend: one directory per mounted hierarchy (separate or
//! co-mounted controllers, plus systemd's named hierarchy).

mod cpuset;
mod stats;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::apply;
use crate::backend::{Backend, Join};
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::freezer::{self, FreezerState};
use crate::fsutil;
use crate::layout::{Layout, LayoutKind};
use crate::mounts::{self, HierarchyMount};
use crate::oom::{self, OomWatcher};
use crate::path::{self, CgroupsPath};
use crate::plan::{Bindings, Plan, Version};
use crate::proc_cgroup::ProcCgroup;
use crate::self_join::V1SelfJoin;
use crate::stats::Stats;
use crate::tree;

/// The container's directory in one v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Dir {
    pub mountpoint: PathBuf,
    /// As in the mount options: `["cpu", "cpuacct"]`, `["name=systemd"]`.
    pub controllers: Vec<String>,
    /// Path inside the hierarchy, e.g. `/docker/<id>`.
    pub cgroup_path: String,
    /// Absolute host directory.
    pub dir: PathBuf,
}

impl V1Dir {
    pub fn has(&self, c: Controller) -> bool {
        self.controllers.iter().any(|n| n == c.v1_name())
    }

    /// A name for messages: its first controller, or name=systemd.
    fn name(&self) -> &'static str {
        Controller::ALL
            .into_iter()
            .find(|&c| self.has(c))
            .map_or("name=systemd", |c| c.v1_name())
    }
}

/// A container's cgroups on the v1 hierarchies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Cgroup {
    pub hierarchies: Vec<V1Dir>,
}

impl V1Cgroup {
    /// Resolve `path` in every v1 hierarchy of `layout`. `own` is the
    /// caller's /proc/self/cgroup, needed only for relative paths.
    pub(crate) fn resolve(
        layout: &Layout,
        path: &CgroupsPath,
        own: Option<&ProcCgroup>,
    ) -> Result<V1Cgroup> {
        let mut hierarchies = Vec::with_capacity(layout.v1.len());
        for m in &layout.v1 {
            let own_path = own.and_then(|p| p.v1_path(&m.controllers));
            let r = path::resolve(&m.mountpoint, &m.root, own_path, path)?;
            hierarchies.push(V1Dir {
                mountpoint: m.mountpoint.clone(),
                controllers: m.controllers.clone(),
                cgroup_path: r.cgroup_path,
                dir: r.dir,
            });
        }
        Ok(V1Cgroup { hierarchies })
    }

    /// The directory of the hierarchy that has `c`.
    pub fn dir(&self, c: Controller) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| h.has(c))
            .map(|h| h.dir.as_path())
    }

    pub(crate) fn controllers(&self) -> Vec<Controller> {
        Controller::ALL
            .into_iter()
            .filter(|&c| self.dir(c).is_some())
            .collect()
    }

    fn require(&self, c: Controller, what: &str) -> Result<&Path> {
        self.dir(c).ok_or_else(|| Error::Unsupported {
            what: what.to_string(),
            reason: format!("the {c} cgroup v1 controller is not mounted"),
        })
    }

    /// mkdir in every hierarchy; cpuset directories get cpus/mems. Leaves
    /// this call created are recorded in `made`.
    pub(crate) fn make_dirs(&self, plan: &Plan, made: &mut Vec<PathBuf>) -> Result<()> {
        for h in &self.hierarchies {
            let created = tree::mkdir_p(&h.dir, &h.mountpoint)?;
            if created.last() == Some(&h.dir) {
                made.push(h.dir.clone());
            }
            if h.has(Controller::Cpuset) {
                cpuset::init(&h.dir, &h.mountpoint, &created, plan)?;
            }
        }
        Ok(())
    }

    /// Run the plan's v1 steps.
    pub(crate) fn run(&self, plan: &Plan) -> Result<()> {
        for op in plan.ops().iter().filter(|op| op.version() == Version::V1) {
            // Unified keys are v2 steps, so every v1 step has a controller.
            let Some(c) = op.controller() else { continue };
            let dir = self.require(c, &op.to_string())?;
            apply::run(op, dir)?;
        }
        Ok(())
    }

    /// The hierarchy whose tree holds every container process: any would
    /// do; prefer ones that always exist with a container runtime.
    fn procs_dir(&self) -> Option<&Path> {
        [
            Controller::Pids,
            Controller::Freezer,
            Controller::Memory,
            Controller::Devices,
            Controller::Cpu,
        ]
        .into_iter()
        .find_map(|c| self.dir(c))
        .or_else(|| self.hierarchies.first().map(|h| h.dir.as_path()))
    }
}

/// Write `pid` to `dir/cgroup.procs`. EINVAL can mean the task is still
/// being created (TASK_NEW); it is retried briefly, as runc does.
pub(crate) fn write_pid(controller: &'static str, dir: &Path, pid: i32) -> Result<()> {
    let path = dir.join("cgroup.procs");
    let value = pid.to_string();
    let mut delay = Duration::from_millis(1);
    for attempt in 0.. {
        match fsutil::write_io(&path, &value) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && attempt < 5 => {
                std::thread::sleep(delay);
                delay *= 4;
            }
            Err(source) => {
                return Err(Error::Write {
                    controller,
                    path,
                    value,
                    source,
                });
            }
        }
    }
    unreachable!("the loop returns")
}

impl Backend for V1Cgroup {
    fn bindings(&self) -> Bindings {
        Bindings {
            kind: LayoutKind::V1,
            v1: self.controllers(),
            v2: Vec::new(),
            unified: false,
        }
    }

    fn create(&self, plan: &Plan) -> Result<()> {
        let mut made = Vec::new();
        let r = self
            .make_dirs(plan, &mut made)
            .and_then(|()| self.run(plan));
        tree::undo_on_error(&r, &made);
        r
    }

    fn update(&self, plan: &Plan) -> Result<()> {
        self.run(plan)
    }

    fn add_pid(&self, pid: i32, join: Join) -> Result<()> {
        if join == Join::UnifiedOnly {
            return Ok(());
        }
        for h in &self.hierarchies {
            write_pid(h.name(), &h.dir, pid)?;
        }
        Ok(())
    }

    fn open_v1_self_join(&self) -> Result<V1SelfJoin> {
        // The freezer last: joining a frozen cgroup (exec into a paused container) freezes
        // the process on its way back from the write, and it should be a member of
        // everything else by then.
        let (freezer, others): (Vec<&V1Dir>, Vec<&V1Dir>) = self
            .hierarchies
            .iter()
            .partition(|h| h.has(Controller::Freezer));
        V1SelfJoin::open(
            others
                .into_iter()
                .chain(freezer)
                .map(|h| (h.name(), h.dir.as_path())),
        )
    }

    fn unified_dir(&self) -> Option<&Path> {
        None
    }

    fn set_frozen(&self, frozen: bool, timeout: Duration) -> Result<()> {
        let dir = self.require(Controller::Freezer, "pause/resume")?;
        if frozen {
            freezer::v1_freeze(dir, timeout)
        } else {
            freezer::v1_thaw(dir)
        }
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        freezer::v1_state(self.require(Controller::Freezer, "freezer state")?)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        if let Some(dir) = self.procs_dir() {
            tree::pids_recursive(dir, &mut out)?;
        }
        Ok(out)
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        stats::collect(self, &mut s)?;
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        oom::v1_count(self.require(Controller::Memory, "OOM kill count")?)
    }

    fn oom_watcher(&self) -> Result<OomWatcher> {
        OomWatcher::v1(self.require(Controller::Memory, "OOM notification")?)
    }

    fn destroy(&self) -> Result<()> {
        // Try every hierarchy even if one fails, then report the first
        // failure: a partial delete should leave as little as possible.
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = tree::remove_tree(&h.dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn exists(&self) -> bool {
        self.hierarchies.iter().any(|h| h.dir.is_dir())
    }

    fn mounts(&self) -> Vec<HierarchyMount> {
        self.hierarchies
            .iter()
            .map(|h| HierarchyMount {
                version: Version::V1,
                host_mountpoint: h.mountpoint.clone(),
                name: mounts::basename(&h.mountpoint),
                options: h.controllers.join(","),
                controllers: h.controllers.clone(),
                cgroup_path: h.cgroup_path.clone(),
                host_dir: h.dir.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;

    #[test]
    fn the_freezer_is_joined_last() {
        let root = tempfile::tempdir().unwrap();
        let dir = |names: &[&str]| {
            let dir = root.path().join(names.join(","));
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("tasks"), "").unwrap();
            V1Dir {
                mountpoint: dir.clone(),
                controllers: names.iter().map(|n| n.to_string()).collect(),
                cgroup_path: "/ctr".into(),
                dir,
            }
        };
        let cg = V1Cgroup {
            hierarchies: vec![
                dir(&["cpu"]),
                dir(&["freezer"]),
                dir(&["pids"]),
                dir(&["name=systemd"]),
            ],
        };
        let join = cg.open_v1_self_join().unwrap();
        assert_eq!(join.order(), ["cpu", "pids", "name=systemd", "freezer"]);
        // On plain files the write just lands.
        join.join_calling_thread().unwrap();
        let written = std::fs::read_to_string(root.path().join("freezer/tasks")).unwrap();
        assert_eq!(written, "0");
    }
}
