//! The cgroup v2 backend: one directory on the unified hierarchy. Also the
//! v2 half of a hybrid host.

pub(crate) mod stats;

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
use crate::v1::write_pid;

/// A container's cgroup on the unified hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Cgroup {
    pub mountpoint: PathBuf,
    /// Path inside the hierarchy, e.g. `/docker/<id>`.
    pub cgroup_path: String,
    /// Absolute host directory.
    pub dir: PathBuf,
    /// Controllers the hierarchy offers (its root's cgroup.controllers).
    pub available: Vec<String>,
    /// Delegate every available controller (pure v2, as runc: stats and
    /// later updates of any resource work, and a nested runtime can use
    /// them); otherwise only those a plan needs (the v2 half of a hybrid
    /// host, where enabling a controller changes the host's root cgroup).
    pub delegate_all: bool,
}

impl V2Cgroup {
    /// Resolve `path` on the unified mount of `layout`, if there is one.
    /// Relative paths go under the *parent* of the caller's own cgroup
    /// (see [`crate::path`]).
    pub(crate) fn resolve(
        layout: &Layout,
        path: &CgroupsPath,
        own: Option<&ProcCgroup>,
    ) -> Result<Option<V2Cgroup>> {
        let Some(u) = &layout.unified else {
            return Ok(None);
        };
        let own_parent = own.and_then(|p| p.v2_path()).map(path::parent);
        let r = path::resolve(&u.mountpoint, &u.root, own_parent, path)?;
        Ok(Some(V2Cgroup {
            mountpoint: u.mountpoint.clone(),
            cgroup_path: r.cgroup_path,
            dir: r.dir,
            available: u.controllers.clone(),
            delegate_all: layout.kind == LayoutKind::V2,
        }))
    }

    pub fn has(&self, c: Controller) -> bool {
        c.v2_name()
            .is_some_and(|n| self.available.iter().any(|a| a == n))
    }

    /// The ancestors of the container's directory that must delegate
    /// controllers to it, top-down (the mountpoint first).
    fn ancestors(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self
            .dir
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(&self.mountpoint))
            .collect();
        v.reverse();
        v
    }

    /// Enable `wanted` in every ancestor's cgroup.subtree_control. A
    /// directory we just created has none enabled, so it is not read.
    /// When the combined write is refused (a parent that was not given
    /// every controller), controllers are enabled one by one like runc
    /// does, and only a failure for one in `required` is an error: the
    /// others were a courtesy (stats, later updates, nested runtimes).
    fn enable(&self, wanted: &[String], required: &[String], created: &[PathBuf]) -> Result<()> {
        if wanted.is_empty() {
            return Ok(());
        }
        for a in self.ancestors() {
            let missing: Vec<&String> = if created.iter().any(|c| c == a) {
                wanted.iter().collect()
            } else {
                let cur = fsutil::read_in(a, "cgroup.subtree_control")?;
                let cur: Vec<&str> = cur.split_whitespace().collect();
                wanted
                    .iter()
                    .filter(|w| !cur.contains(&w.as_str()))
                    .collect()
            };
            if missing.is_empty() {
                continue;
            }
            let value = missing
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            if fsutil::write("cgroup", a, "cgroup.subtree_control", &value).is_ok() {
                continue;
            }
            for c in missing {
                let one = format!("+{c}");
                match fsutil::write("cgroup", a, "cgroup.subtree_control", &one) {
                    Ok(()) => {}
                    Err(e) if !required.contains(c) => drop(e),
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        return Err(Error::Unsupported {
                            what: format!("writing {one:?} to {}", a.join("cgroup.subtree_control").display()),
                            reason: "that cgroup has processes of its own, and cgroup v2 delegates controllers \
                                     only from cgroups without them; choose a cgroupsPath under another parent"
                                .into(),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// mkdir (recording the leaf in `made` if this call created it), then
    /// delegate controllers.
    pub(crate) fn make_dirs(&self, plan: &Plan, made: &mut Vec<PathBuf>) -> Result<()> {
        let created = tree::mkdir_p(&self.dir, &self.mountpoint)?;
        if created.last() == Some(&self.dir) {
            made.push(self.dir.clone());
        }
        let required = plan.v2_controllers();
        let mut wanted: Vec<String> = if self.delegate_all {
            self.available.clone()
        } else {
            Vec::new()
        };
        wanted.extend(
            required
                .iter()
                .filter(|c| !wanted.contains(c))
                .cloned()
                .collect::<Vec<_>>(),
        );
        self.enable(&wanted, required, &created)
    }

    /// Run the plan's v2 steps (after making sure their controllers are
    /// delegated; an update may need one that creation did not).
    pub(crate) fn run(&self, plan: &Plan, created: bool) -> Result<()> {
        if !created {
            self.enable(plan.v2_controllers(), plan.v2_controllers(), &[])?;
        }
        for op in plan.ops().iter().filter(|op| op.version() == Version::V2) {
            apply::run(op, &self.dir)?;
        }
        Ok(())
    }

    /// Join `pid` to the sub-cgroup at `cgroup_path` (which must be this
    /// container's cgroup or below it).
    pub(crate) fn add_pid_at(&self, pid: i32, cgroup_path: &str) -> Result<()> {
        let rel = cgroup_path
            .strip_prefix(&self.cgroup_path)
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .ok_or_else(|| Error::InvalidPath {
                path: cgroup_path.to_string(),
                reason: format!("not inside the container's cgroup {}", self.cgroup_path),
            })?;
        let rel = rel.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            return Err(Error::InvalidPath {
                path: cgroup_path.to_string(),
                reason: "'..' components are not allowed".into(),
            });
        }
        let dir = if rel.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        };
        write_pid("cgroup", &dir, pid)
    }

    pub(crate) fn mount(&self) -> HierarchyMount {
        HierarchyMount {
            version: Version::V2,
            host_mountpoint: self.mountpoint.clone(),
            name: mounts::basename(&self.mountpoint),
            options: String::new(),
            controllers: self.available.clone(),
            cgroup_path: self.cgroup_path.clone(),
            host_dir: self.dir.clone(),
        }
    }
}

impl Backend for V2Cgroup {
    fn bindings(&self) -> Bindings {
        Bindings {
            kind: LayoutKind::V2,
            v1: Vec::new(),
            v2: self.available.clone(),
            unified: true,
        }
    }

    fn create(&self, plan: &Plan) -> Result<()> {
        let mut made = Vec::new();
        let r = self
            .make_dirs(plan, &mut made)
            .and_then(|()| self.run(plan, true));
        tree::undo_on_error(&r, &made);
        r
    }

    fn update(&self, plan: &Plan) -> Result<()> {
        self.run(plan, false)
    }

    fn add_pid(&self, pid: i32, join: Join) -> Result<()> {
        match join {
            Join::All | Join::UnifiedOnly => write_pid("cgroup", &self.dir, pid),
            Join::SkipUnified => Ok(()),
        }
    }

    fn open_v1_self_join(&self) -> Result<V1SelfJoin> {
        Ok(V1SelfJoin::default())
    }

    fn unified_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn set_frozen(&self, frozen: bool, timeout: Duration) -> Result<()> {
        freezer::v2_set(&self.dir, frozen, timeout)
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        freezer::v2_state(&self.dir)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        tree::pids_recursive(&self.dir, &mut out)?;
        Ok(out)
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        stats::collect(self, &mut s, |c| self.has(c))?;
        Ok(s)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        if !self.has(Controller::Memory) {
            return Err(Error::Unsupported {
                what: "OOM kill count".into(),
                reason: "the memory controller is not available on the cgroup v2 hierarchy".into(),
            });
        }
        oom::v2_count(&self.dir)
    }

    fn oom_watcher(&self) -> Result<OomWatcher> {
        OomWatcher::v2(&self.dir)
    }

    fn destroy(&self) -> Result<()> {
        tree::remove_tree(&self.dir)
    }

    fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    fn mounts(&self) -> Vec<HierarchyMount> {
        vec![self.mount()]
    }
}
