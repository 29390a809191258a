//! [`Cgroup`]: a container's cgroup on whatever layout the host has. This
//! is what the runtime keeps in state.json.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Join};
use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::freezer::FreezerState;
use crate::host::HostInfo;
use crate::hybrid::HybridCgroup;
use crate::layout::{Layout, LayoutKind};
use crate::mounts::HierarchyMount;
use crate::none::NoCgroup;
use crate::oom::OomWatcher;
use crate::path::CgroupsPath;
use crate::plan::{self, Bindings, Plan, PlanOptions, Version};
use crate::proc_cgroup::ProcCgroup;
use crate::self_join::V1SelfJoin;
use crate::stats::Stats;
use crate::v1::V1Cgroup;
use crate::v2::V2Cgroup;
use crate::validate::Mode;

/// How long [`Cgroup::freeze`] waits by default.
pub const DEFAULT_FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The backend for the host's layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum AnyBackend {
    V1(V1Cgroup),
    V2(V2Cgroup),
    Hybrid(HybridCgroup),
    /// No cgroup of its own (a rootless runtime that may not make one).
    None(NoCgroup),
}

impl AnyBackend {
    fn get(&self) -> &dyn Backend {
        match self {
            AnyBackend::V1(b) => b,
            AnyBackend::V2(b) => b,
            AnyBackend::Hybrid(b) => b,
            AnyBackend::None(b) => b,
        }
    }
}

/// A container's cgroup: resolved paths in every hierarchy, serializable
/// so later commands (start, kill, pause, update, events, delete) rebuild
/// it from state.json without probing the host again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    path: CgroupsPath,
    #[serde(flatten)]
    backend: AnyBackend,
}

impl Cgroup {
    /// Resolve `path` on `layout`. Reads /proc/self/cgroup only for a
    /// relative path. Creates nothing.
    pub fn new(layout: &Layout, path: &CgroupsPath) -> Result<Cgroup> {
        let own = if path.is_absolute() {
            None
        } else {
            Some(ProcCgroup::read_self()?)
        };
        Cgroup::resolve(layout, path, own.as_ref())
    }

    /// Pure form of [`Cgroup::new`]: `own` is the caller's cgroup
    /// membership (needed for relative paths only).
    pub fn resolve(
        layout: &Layout,
        path: &CgroupsPath,
        own: Option<&ProcCgroup>,
    ) -> Result<Cgroup> {
        let backend = match layout.kind {
            LayoutKind::V1 => AnyBackend::V1(V1Cgroup::resolve(layout, path, own)?),
            LayoutKind::V2 => {
                AnyBackend::V2(V2Cgroup::resolve(layout, path, own)?.ok_or(Error::NoCgroupFs)?)
            }
            LayoutKind::Hybrid => AnyBackend::Hybrid(HybridCgroup {
                v1: V1Cgroup::resolve(layout, path, own)?,
                v2: V2Cgroup::resolve(layout, path, own)?.ok_or(Error::NoCgroupFs)?,
            }),
        };
        Ok(Cgroup {
            path: path.clone(),
            backend,
        })
    }

    /// The handle of a container without a cgroup of its own, on a host of `layout`.
    pub fn none(path: &CgroupsPath, layout: LayoutKind) -> Cgroup {
        Cgroup {
            path: path.clone(),
            backend: AnyBackend::None(NoCgroup { layout }),
        }
    }

    /// Whether the container has no cgroup of its own ([`Cgroup::none`]).
    pub fn is_none(&self) -> bool {
        matches!(self.backend, AnyBackend::None(_))
    }

    pub fn path(&self) -> &CgroupsPath {
        &self.path
    }

    pub fn kind(&self) -> LayoutKind {
        match &self.backend {
            AnyBackend::V1(_) => LayoutKind::V1,
            AnyBackend::V2(_) => LayoutKind::V2,
            AnyBackend::Hybrid(_) => LayoutKind::Hybrid,
            AnyBackend::None(n) => n.layout,
        }
    }

    /// The layout-specific backend (for callers that want the directories).
    pub fn backend(&self) -> &AnyBackend {
        &self.backend
    }

    /// The directory where `c` is enforced for this container, and on
    /// which version (for reading values back, debugging, tests).
    pub fn controller_dir(&self, c: Controller) -> Option<(Version, &Path)> {
        let on_v2 = |v2: &V2Cgroup| v2.has(c);
        match &self.backend {
            AnyBackend::V1(v1) => v1.dir(c).map(|d| (Version::V1, d)),
            AnyBackend::V2(v2) => on_v2(v2).then_some((Version::V2, v2.dir.as_path())),
            AnyBackend::Hybrid(h) => match h.v1.dir(c) {
                Some(d) => Some((Version::V1, d)),
                None => on_v2(&h.v2).then_some((Version::V2, h.v2.dir.as_path())),
            },
            AnyBackend::None(_) => None,
        }
    }

    /// Where each controller is enforced.
    pub fn bindings(&self) -> Bindings {
        self.backend.get().bindings()
    }

    /// Validate and plan `res` for this cgroup. Reads host facts (online
    /// CPUs, huge page sizes) only when `res` uses them; otherwise pure.
    pub fn plan(&self, res: &LinuxResources, mode: Mode, opts: PlanOptions) -> Result<Plan> {
        let host = HostInfo::probe_for(res)?;
        self.plan_with_host(res, &host, mode, opts)
    }

    /// [`Cgroup::plan`] with the host facts given.
    pub fn plan_with_host(
        &self,
        res: &LinuxResources,
        host: &HostInfo,
        mode: Mode,
        opts: PlanOptions,
    ) -> Result<Plan> {
        Ok(plan::build(res, host, &self.bindings(), mode, opts)?)
    }

    /// Create the cgroup and apply a [`Mode::Create`] plan. On failure the
    /// container directories this call made are removed again (parents,
    /// which other containers may share, and directories that existed
    /// before are left alone).
    pub fn create(&self, plan: &Plan) -> Result<()> {
        if plan.mode() != Mode::Create {
            return Err(Error::Unsupported {
                what: "creating a cgroup from an update plan".into(),
                reason: "plan with Mode::Create".into(),
            });
        }
        self.backend.get().create(plan)
    }

    /// Apply a [`Mode::Update`] plan (runc `update` semantics: unset and
    /// zero values leave the current setting alone).
    pub fn update(&self, plan: &Plan) -> Result<()> {
        self.backend.get().update(plan)
    }

    /// Plan and apply an update in one call.
    pub fn update_resources(&self, res: &LinuxResources) -> Result<Vec<String>> {
        let plan = self.plan(res, Mode::Update, PlanOptions::default())?;
        self.update(&plan)?;
        Ok(plan.warnings().to_vec())
    }

    /// Move `pid` into the container's cgroups.
    pub fn add_pid(&self, pid: i32, join: Join) -> Result<()> {
        self.backend.get().add_pid(pid, join)
    }

    /// Opens what a process needs to join the v1 hierarchies itself (see
    /// [`V1SelfJoin`]); then the rest is joined with [`Join::UnifiedOnly`].
    pub fn open_v1_self_join(&self) -> Result<V1SelfJoin> {
        self.backend.get().open_v1_self_join()
    }

    /// For `exec` when the container made sub-cgroups of its own: on v2 a
    /// cgroup with controllers delegated to children cannot take processes
    /// (EBUSY), so like runc join `init_pid`'s cgroup instead.
    pub fn add_pid_like(&self, pid: i32, init_pid: i32) -> Result<()> {
        match self.add_pid(pid, Join::All) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let v2 = match &self.backend {
                    AnyBackend::V2(v2) => v2,
                    AnyBackend::Hybrid(h) => &h.v2,
                    AnyBackend::V1(_) | AnyBackend::None(_) => return Err(e),
                };
                let init = ProcCgroup::read_pid(init_pid)?;
                let sub = init.v2_path().ok_or(e)?;
                v2.add_pid_at(pid, sub)?;
                if let AnyBackend::Hybrid(h) = &self.backend {
                    h.v1.add_pid(pid, Join::SkipUnified)?;
                }
                Ok(())
            }
            r => r,
        }
    }

    /// The container's cgroup2 directory, if it has one.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.backend.get().unified_dir()
    }

    /// An O_DIRECTORY fd of the cgroup2 directory for clone3's
    /// CLONE_INTO_CGROUP (`None` on v1-only hosts). After such a clone,
    /// call `add_pid(pid, Join::SkipUnified)` on hybrid hosts.
    pub fn open_unified_dir(&self) -> Result<Option<OwnedFd>> {
        self.backend.get().open_unified_dir()
    }

    /// Pause.
    pub fn freeze(&self, timeout: Duration) -> Result<()> {
        self.backend.get().set_frozen(true, timeout)
    }

    /// Resume.
    pub fn thaw(&self) -> Result<()> {
        self.backend.get().set_frozen(false, DEFAULT_FREEZE_TIMEOUT)
    }

    pub fn freezer_state(&self) -> Result<FreezerState> {
        self.backend.get().freezer_state()
    }

    /// Host pids in the cgroup and its sub-cgroups (`ps`).
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.backend.get().pids()
    }

    /// Signal every process (`kill --all`, `delete --force`).
    pub fn signal_all(&self, sig: i32) -> Result<()> {
        self.backend.get().signal_all(sig)
    }

    /// `events --stats`.
    pub fn stats(&self) -> Result<Stats> {
        self.backend.get().stats()
    }

    /// OOM kills so far.
    pub fn oom_kill_count(&self) -> Result<u64> {
        self.backend.get().oom_kill_count()
    }

    /// The memory limit in force (v1 `memory.limit_in_bytes`, v2 `memory.max`), in bytes;
    /// `None` when unlimited or when the memory controller is not bound.
    pub fn memory_limit(&self) -> Result<Option<u64>> {
        let Some((version, dir)) = self.controller_dir(Controller::Memory) else {
            return Ok(None);
        };
        let file = match version {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        };
        let text = crate::fsutil::read_in(dir, file)?;
        Ok(parse_memory_limit(&text))
    }

    /// Start watching for OOM events.
    pub fn oom_watcher(&self) -> Result<OomWatcher> {
        self.backend.get().oom_watcher()
    }

    /// Remove the container's cgroup directories, sub-cgroups first.
    pub fn destroy(&self) -> Result<()> {
        self.backend.get().destroy()
    }

    pub fn exists(&self) -> bool {
        self.backend.get().exists()
    }

    /// Per hierarchy: mountpoint, options and the container's directory,
    /// for building the container's /sys/fs/cgroup.
    pub fn mounts(&self) -> Vec<HierarchyMount> {
        self.backend.get().mounts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::samples;
    use std::path::PathBuf;

    fn layout(text: &str, v2: &str) -> Layout {
        let v2 = v2.to_string();
        Layout::from_mountinfo(text, move |_| Ok(v2)).unwrap()
    }

    #[test]
    fn hybrid_resolution_and_state_round_trip() {
        let l = layout(samples::HYBRID, "hugetlb\n");
        let cg = Cgroup::resolve(&l, &CgroupsPath::parse("/docker/abc").unwrap(), None).unwrap();
        assert_eq!(cg.kind(), LayoutKind::Hybrid);
        let m = cg.mounts();
        assert_eq!(m.len(), 10);
        let cpu = m.iter().find(|h| h.options == "cpu").unwrap();
        assert_eq!(cpu.host_dir, PathBuf::from("/sys/fs/cgroup/cpu/docker/abc"));
        assert_eq!(cpu.name, "cpu");
        let sd = m.iter().find(|h| h.options == "name=systemd").unwrap();
        assert_eq!(sd.name, "systemd");
        let u = m.last().unwrap();
        assert_eq!(u.version, crate::plan::Version::V2);
        assert_eq!(u.name, "unified");
        assert_eq!(
            u.host_dir,
            PathBuf::from("/sys/fs/cgroup/unified/docker/abc")
        );
        assert_eq!(
            cg.unified_dir(),
            Some(Path::new("/sys/fs/cgroup/unified/docker/abc"))
        );
        let b = cg.bindings();
        assert_eq!(b.v2, ["hugetlb"]);
        assert!(b.v1.contains(&crate::Controller::Memory));
        let json = serde_json::to_string(&cg).unwrap();
        assert!(json.contains("\"mode\":\"hybrid\""), "{json}");
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cg);
    }

    #[test]
    fn relative_paths_follow_runc() {
        let l = layout(samples::HYBRID, "hugetlb\n");
        let own = ProcCgroup::parse(
            "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:/process_api/h\n\
             3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/user.slice/sess\n",
        )
        .unwrap();
        let cg = Cgroup::resolve(&l, &CgroupsPath::parse("ctr").unwrap(), Some(&own)).unwrap();
        let m = cg.mounts();
        let dir = |opt: &str| {
            m.iter()
                .find(|h| h.options == opt)
                .unwrap()
                .host_dir
                .clone()
        };
        assert_eq!(
            dir("memory"),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/h/ctr")
        );
        assert_eq!(dir("cpu"), PathBuf::from("/sys/fs/cgroup/cpu/ctr"));
        // v2: under the parent of our own cgroup.
        assert_eq!(
            dir(""),
            PathBuf::from("/sys/fs/cgroup/unified/user.slice/ctr")
        );
    }

    #[test]
    fn pure_v2_and_v1_resolution() {
        let l = layout(samples::PURE_V2, "cpu memory pids io\n");
        let cg = Cgroup::resolve(
            &l,
            &CgroupsPath::parse("/libpod_parent/libpod-1").unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(cg.kind(), LayoutKind::V2);
        assert_eq!(
            cg.mounts()[0].host_dir,
            PathBuf::from("/sys/fs/cgroup/libpod_parent/libpod-1")
        );
        assert_eq!(cg.mounts()[0].name, "");
        let AnyBackend::V2(v2) = cg.backend() else {
            panic!()
        };
        assert!(v2.delegate_all);
        let l = layout(samples::V1_COMOUNTED, "");
        let cg = Cgroup::resolve(&l, &CgroupsPath::parse("/default/x").unwrap(), None).unwrap();
        assert_eq!(cg.kind(), LayoutKind::V1);
        assert!(cg.unified_dir().is_none());
        let cpu = cg
            .mounts()
            .into_iter()
            .find(|h| h.options == "cpu,cpuacct")
            .unwrap();
        assert_eq!(
            cpu.host_dir,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/default/x")
        );
        assert_eq!(cpu.name, "cpu,cpuacct");
    }
}

/// A memory limit file's value: "max" (v2) and v1's page-counter maximum (2^63 rounded
/// down to a page) mean unlimited.
fn parse_memory_limit(text: &str) -> Option<u64> {
    let value: u64 = text.trim().parse().ok()?;
    (value < 1 << 62).then_some(value)
}

#[cfg(test)]
mod memory_limit_tests {
    use super::parse_memory_limit;

    #[test]
    fn unlimited_values_are_none() {
        assert_eq!(parse_memory_limit("max\n"), None);
        assert_eq!(parse_memory_limit("9223372036854771712\n"), None);
        assert_eq!(parse_memory_limit("16777216\n"), Some(16 << 20));
    }
}
