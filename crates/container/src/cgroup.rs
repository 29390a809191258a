//! The container's cgroup, through berth-cgroups: planned (validated) before anything is
//! created, made before the init is cloned (so the init can be cloned straight into it on
//! cgroup v2), recorded in state.json, and driven by later commands.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_cgroups::{
    Cgroup, CgroupsPath, FreezerState, Join, Layout, LayoutKind, Mode, PlanOptions, Version,
};

use crate::error::{Error, Result};
use crate::init::{CgroupMountSource, CgroupView};
use crate::spawn::CgroupPlacement;
use crate::spec::Plan;

/// A validated cgroup for a container that does not exist yet.
pub struct CgroupPlan {
    cgroup: Cgroup,
    plan: berth_cgroups::Plan,
}

/// The cgroups path of a container: the configured one, or (as runc) its id, relative to
/// the runtime's own cgroup.
fn cgroups_path(plan: &Plan) -> Result<CgroupsPath> {
    let text = match &plan.cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        _ => plan.id.clone(),
    };
    Ok(CgroupsPath::parse(&text)?)
}

/// Probes the host's layout and checks `linux.resources` against it. No cgroup is touched.
pub fn plan_cgroup(plan: &Plan) -> Result<CgroupPlan> {
    let layout = Layout::probe()?;
    let path = cgroups_path(plan)?;
    let cgroup = Cgroup::new(&layout, &path)?;
    let resources = plan.resources.clone().unwrap_or_default();
    let cplan = cgroup.plan(&resources, Mode::Create, PlanOptions::default())?;
    for warning in cplan.warnings() {
        log::warn!("{warning}");
    }
    Ok(CgroupPlan {
        cgroup,
        plan: cplan,
    })
}

impl CgroupPlan {
    /// The handle as state.json records it, before the cgroup exists.
    pub fn to_record(&self) -> serde_json::Value {
        serde_json::to_value(&self.cgroup).expect("cgroup serializes")
    }

    /// Makes the cgroup and applies the resources.
    pub fn create(self) -> Result<ContainerCgroup> {
        self.cgroup.create(&self.plan)?;
        let unified = match self.cgroup.open_unified_dir() {
            Ok(fd) => fd,
            Err(e) => {
                let _ = self.cgroup.destroy();
                return Err(e.into());
            }
        };
        Ok(ContainerCgroup {
            cgroup: self.cgroup,
            unified,
        })
    }
}

/// A container's existing cgroup.
pub struct ContainerCgroup {
    cgroup: Cgroup,
    unified: Option<OwnedFd>,
}

impl ContainerCgroup {
    /// Rebuilds the handle from state.json (no probing).
    pub fn from_record(value: &serde_json::Value) -> Result<Self> {
        let cgroup: Cgroup = serde_json::from_value(value.clone()).map_err(|e| {
            Error::sys(
                "read the cgroup from the container's state",
                std::io::Error::other(e),
            )
        })?;
        Ok(ContainerCgroup {
            cgroup,
            unified: None,
        })
    }

    pub fn to_record(&self) -> serde_json::Value {
        serde_json::to_value(&self.cgroup).expect("cgroup serializes")
    }

    pub fn inner(&self) -> &Cgroup {
        &self.cgroup
    }

    /// How `cgroup` mounts show the container's cgroups.
    pub fn view(&self, new_cgroup_namespace: bool) -> CgroupView {
        let mounts = self.cgroup.mounts();
        if self.cgroup.kind() == LayoutKind::V2 {
            return match mounts.into_iter().next() {
                Some(m) => CgroupView::Unified {
                    source: CgroupMountSource {
                        name: String::new(),
                        host_dir: m.host_dir,
                        aliases: Vec::new(),
                    },
                    fresh: new_cgroup_namespace,
                },
                None => CgroupView::None,
            };
        }
        let sources = mounts
            .into_iter()
            .filter(|m| !m.name.is_empty())
            .map(|m| {
                let aliases = if m.version == Version::V1 && m.name.contains(',') {
                    m.name.split(',').map(str::to_string).collect()
                } else {
                    Vec::new()
                };
                CgroupMountSource {
                    name: m.name,
                    host_dir: m.host_dir,
                    aliases,
                }
            })
            .collect();
        CgroupView::Hierarchies(sources)
    }

    /// Whether the container's freezer says frozen.
    pub fn is_frozen(&self) -> bool {
        matches!(self.cgroup.freezer_state(), Ok(FreezerState::Frozen))
    }

    pub fn freeze(&self) -> Result<()> {
        Ok(self.cgroup.freeze(berth_cgroups::DEFAULT_FREEZE_TIMEOUT)?)
    }

    pub fn thaw(&self) -> Result<()> {
        Ok(self.cgroup.thaw()?)
    }

    pub fn signal_all(&self, signal: i32) -> Result<()> {
        Ok(self.cgroup.signal_all(signal)?)
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(self.cgroup.pids()?)
    }

    /// Removes the container's cgroup directories (a cgroup already gone is fine).
    pub fn destroy(&self) -> Result<()> {
        Ok(self.cgroup.destroy()?)
    }
}

impl CgroupPlacement for ContainerCgroup {
    fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        self.unified.as_ref().map(|fd| fd.as_fd())
    }

    fn has_v1(&self) -> bool {
        self.cgroup.kind() != LayoutKind::V2
    }

    fn open_v1_self_join(&self) -> Result<berth_cgroups::V1SelfJoin> {
        Ok(self.cgroup.open_v1_self_join()?)
    }

    fn attach(&self, pid: i32, cloned_into: bool, v1_joined: bool) -> Result<()> {
        let join = match (cloned_into, v1_joined) {
            (true, true) => return Ok(()),
            (true, false) => Join::SkipUnified,
            (false, true) => Join::UnifiedOnly,
            (false, false) => Join::All,
        };
        Ok(self.cgroup.add_pid(pid, join)?)
    }
}
