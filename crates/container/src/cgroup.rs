//! The container's cgroup, through berth-cgroups: planned (validated) before anything is
//! created, made before the init is cloned (so the init can be cloned straight into it on
//! cgroup v2), recorded in state.json, and driven by later commands.
//!
//! With the systemd driver (`--systemd-cgroup`) systemd makes the cgroup: a transient scope
//! unit that must be given a process, so the init is cloned first (no CLONE_INTO_CGROUP) and
//! the scope is started for its pid while it waits to be placed. The files systemd has no
//! property for, and the v1 hierarchies it does not manage, are then driven by the same
//! cgroupfs code at the unit's cgroup path, which is also what every later command reads.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use berth_cgroups::{
    Cgroup, CgroupsPath, FreezerState, Join, Layout, LayoutKind, Mode, PlanOptions, Version,
};
use berth_systemd::{ScopePlan, Systemd, UnitKind};

use crate::error::{Error, Result};
use crate::init::{CgroupMountSource, CgroupView};
use crate::spawn::CgroupPlacement;
use crate::spec::Plan;
use crate::state::CgroupDriver;

/// A validated cgroup for a container that does not exist yet.
pub struct CgroupPlan {
    cgroup: Cgroup,
    plan: berth_cgroups::Plan,
    /// The unit to start, with the systemd driver.
    scope: Option<ScopePlan>,
    /// The runtime runs as an unprivileged user (rootless, or in a user namespace): a
    /// cgroup the host does not let it make is no error while nothing needs one.
    unprivileged: bool,
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

/// The unit of the systemd driver: `linux.cgroupsPath` in runc's `slice:prefix:name` form,
/// `:berth:<id>` in `system.slice` when absent (see [`berth_systemd::UnitPath`]).
fn scope_plan(plan: &Plan) -> Result<ScopePlan> {
    let text = plan
        .cgroups_path
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(ScopePlan::new(&text, &plan.id, plan.resources.as_ref())?)
}

/// Probes the host's layout and checks `linux.resources` against it. No cgroup is touched.
pub fn plan_cgroup(plan: &Plan, driver: CgroupDriver) -> Result<CgroupPlan> {
    let layout = Layout::probe()?;
    let (path, scope) = match driver {
        CgroupDriver::Cgroupfs => (cgroups_path(plan)?, None),
        CgroupDriver::Systemd => {
            let scope = scope_plan(plan)?;
            // systemd places a unit where its name says; the same path in every hierarchy
            (CgroupsPath::parse(&scope.cgroup())?, Some(scope))
        }
    };
    let cgroup = Cgroup::new(&layout, &path)?;
    let resources = plan.resources.clone().unwrap_or_default();
    // Unprivileged, the runtime cannot load device programs or write the devices
    // controller (runc skips them too); the container gets only the device nodes its spec
    // lists, bound from the host, and may not make others (no CAP_MKNOD on the host).
    let unprivileged = scope.is_none() && crate::privilege::unprivileged();
    let options = PlanOptions {
        skip_devices: unprivileged,
    };
    let cplan = cgroup.plan(&resources, Mode::Create, options)?;
    let scope_warnings = scope.iter().flat_map(|s| &s.resources.warnings);
    for warning in cplan.warnings().iter().chain(scope_warnings) {
        log::warn!("{warning}");
    }
    Ok(CgroupPlan {
        cgroup,
        plan: cplan,
        scope,
        unprivileged,
    })
}

/// Whether a failed cgroup create is the host refusing an unprivileged user.
fn refused(e: &berth_cgroups::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
}

/// Connects to systemd for the cgroup driver; the error says what needs the bus.
pub fn connect_systemd() -> Result<Systemd> {
    Systemd::connect().map_err(|e| {
        Error::Unsupported(format!(
            "the systemd cgroup driver (berth-runtime --systemd-cgroup, berth --cgroup-manager \
             systemd) needs systemd on the system bus: {e}"
        ))
    })
}

/// Stops a container's unit and waits until it is gone (a unit already gone is fine).
pub fn stop_unit(bus: Option<&mut Systemd>, unit: &str) -> Result<()> {
    let mut own;
    let bus = match bus {
        Some(b) => b,
        None => {
            own = connect_systemd()?;
            &mut own
        }
    };
    bus.stop_unit(unit)?;
    Ok(())
}

impl CgroupPlan {
    /// The handle as state.json records it, before the cgroup exists.
    pub fn to_record(&self) -> serde_json::Value {
        serde_json::to_value(&self.cgroup).expect("cgroup serializes")
    }

    /// The unit the systemd driver will start (`None` with cgroupfs).
    pub fn systemd_unit(&self) -> Option<String> {
        self.scope.as_ref().map(|s| s.unit.unit.clone())
    }

    /// Makes the cgroup and applies the resources. With the systemd driver this only
    /// connects to the bus (a host without one fails here, before the fork): the unit is
    /// started when the init is placed ([`CgroupPlacement::attach`]).
    pub fn create(&self) -> Result<ContainerCgroup> {
        if let Some(scope) = &self.scope {
            let bus = connect_systemd()?;
            return Ok(ContainerCgroup {
                cgroup: self.cgroup.clone(),
                unified: None,
                unit: Some(scope.unit.unit.clone()),
                start: Some(ScopeStart {
                    bus: RefCell::new(bus),
                    scope: scope.clone(),
                    plan: self.plan.clone(),
                }),
            });
        }
        if let Err(e) = self.cgroup.create(&self.plan) {
            if !(self.unprivileged && refused(&e)) {
                return Err(e.into());
            }
            let _ = self.cgroup.destroy();
            if !self.plan.ops().is_empty() {
                return Err(Error::Unsupported(format!(
                    "linux.resources: limits need a cgroup, and this host lets the \
                     unprivileged user running the runtime make none ({e}); on cgroup v2, \
                     run it in a subtree delegated to the user (systemd: \
                     `systemd-run --user --scope -p Delegate=yes`), or drop the limits"
                )));
            }
            log::debug!("running without a cgroup of its own: {e}");
            return Ok(ContainerCgroup {
                cgroup: Cgroup::none(self.cgroup.path(), self.cgroup.kind()),
                unified: None,
                unit: None,
                start: None,
            });
        }
        let unified = match self.cgroup.open_unified_dir() {
            Ok(fd) => fd,
            Err(e) => {
                let _ = self.cgroup.destroy();
                return Err(e.into());
            }
        };
        Ok(ContainerCgroup {
            cgroup: self.cgroup.clone(),
            unified,
            unit: None,
            start: None,
        })
    }
}

/// What the systemd driver needs until the init is placed.
struct ScopeStart {
    bus: RefCell<Systemd>,
    scope: ScopePlan,
    /// The cgroupfs plan: the files systemd does not write, the hierarchies it does not make.
    plan: berth_cgroups::Plan,
}

/// A container's existing cgroup.
pub struct ContainerCgroup {
    cgroup: Cgroup,
    unified: Option<OwnedFd>,
    /// The systemd unit that owns the cgroup, with the systemd driver.
    unit: Option<String>,
    /// During create with the systemd driver: the scope to start for the init.
    start: Option<ScopeStart>,
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
            unit: None,
            start: None,
        })
    }

    /// The handle of a record whose cgroup a systemd unit owns (`--systemd-cgroup`).
    pub fn with_unit(mut self, unit: Option<String>) -> Self {
        self.unit = unit;
        self
    }

    /// Lets go of what only the create needed (the systemd bus connection): whoever keeps
    /// the handle while the container runs (the engine's monitor) holds no connection.
    pub fn created(mut self) -> Self {
        self.start = None;
        self
    }

    /// The systemd unit that owns the cgroup, if any.
    pub fn systemd_unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }

    pub fn to_record(&self) -> serde_json::Value {
        serde_json::to_value(&self.cgroup).expect("cgroup serializes")
    }

    pub fn inner(&self) -> &Cgroup {
        &self.cgroup
    }

    /// How `cgroup` mounts show the container's cgroups, in the kernel's strings (the init
    /// converts nothing after the clone).
    pub fn view(&self, new_cgroup_namespace: bool) -> Result<CgroupView> {
        if self.cgroup.is_none() {
            // an empty tmpfs: there is no cgroup of the container's to show
            return Ok(CgroupView::Hierarchies(Vec::new()));
        }
        let text = |what: &str, bytes: Vec<u8>| {
            CString::new(bytes).map_err(|_| {
                Error::invalid("linux.cgroupsPath", format!("{what} contains a NUL byte"))
            })
        };
        let dir = |m: &berth_cgroups::HierarchyMount| {
            text(
                "the cgroup directory",
                m.host_dir.as_os_str().as_bytes().to_vec(),
            )
        };
        let mounts = self.cgroup.mounts();
        if self.cgroup.kind() == LayoutKind::V2 {
            return Ok(match mounts.first() {
                Some(m) => CgroupView::Unified {
                    source: CgroupMountSource {
                        name: CString::default(),
                        host_dir: dir(m)?,
                        aliases: Vec::new(),
                    },
                    fresh: new_cgroup_namespace,
                },
                None => CgroupView::None,
            });
        }
        let mut sources = Vec::new();
        for m in mounts.iter().filter(|m| !m.name.is_empty()) {
            let aliases = if m.version == Version::V1 && m.name.contains(',') {
                m.name
                    .split(',')
                    .map(|a| text("a hierarchy name", a.into()))
                    .collect::<Result<Vec<_>>>()?
            } else {
                Vec::new()
            };
            sources.push(CgroupMountSource {
                name: text("a hierarchy name", m.name.clone().into())?,
                host_dir: dir(m)?,
                aliases,
            });
        }
        Ok(CgroupView::Hierarchies(sources))
    }

    /// Whether the container's freezer says frozen.
    pub fn is_frozen(&self) -> bool {
        matches!(self.cgroup.freezer_state(), Ok(FreezerState::Frozen))
    }

    pub fn freeze(&self) -> Result<()> {
        Ok(self.cgroup.freeze(berth_cgroups::DEFAULT_FREEZE_TIMEOUT)?)
    }

    /// Thaws; a cgroup that is gone meanwhile holds nothing frozen (systemd removes a
    /// scope's cgroup as soon as its last process has died).
    pub fn thaw(&self) -> Result<()> {
        match self.cgroup.thaw() {
            Err(_) if !self.cgroup.exists() => Ok(()),
            r => Ok(r?),
        }
    }

    pub fn signal_all(&self, signal: i32) -> Result<()> {
        Ok(self.cgroup.signal_all(signal)?)
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(self.cgroup.pids()?)
    }

    /// Removes the container's cgroup directories (a cgroup already gone is fine); with the
    /// systemd driver, stops the unit first and waits until it is gone (systemd removes the
    /// directories it made, the rest are ours). A unit whose cgroup is gone needs no call:
    /// systemd stopped the scope when its last process died (and a failed one left behind
    /// is reset by the next start of its name), so deleting a stopped container costs no
    /// round trip and works without the bus.
    pub fn destroy(&self) -> Result<()> {
        if let Some(unit) = self.unit.as_ref().filter(|_| self.cgroup.exists()) {
            match &self.start {
                Some(start) => stop_unit(Some(&mut start.bus.borrow_mut()), unit)?,
                None => stop_unit(None, unit)?,
            }
        }
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

    fn made_at_placement(&self) -> bool {
        self.start.is_some()
    }

    fn open_v1_self_join(&self) -> Result<berth_cgroups::V1SelfJoin> {
        if self.start.is_some() {
            // the directories do not exist before systemd has made the unit
            return Ok(berth_cgroups::V1SelfJoin::default());
        }
        Ok(self.cgroup.open_v1_self_join()?)
    }

    fn attach(&self, pid: i32, cloned_into: bool, v1_joined: bool) -> Result<()> {
        if let Some(start) = &self.start {
            let pid_u32 =
                u32::try_from(pid).map_err(|_| Error::Init(format!("invalid init pid {pid}")))?;
            start.bus.borrow_mut().start(&start.scope, pid_u32)?;
            crate::kill_point::kill_point("create:scope");
            // The directories systemd made are there already (mkdir is a no-op); the ones
            // of hierarchies it does not manage (v1: cpuset, freezer, ...) are made here.
            self.cgroup.create(&start.plan)?;
            // systemd put the pid of a scope in its cgroups; a slice takes no process from
            // systemd, and v1 hierarchies it does not manage need the pid too.
            let join = match start.scope.unit.kind {
                UnitKind::Scope => Join::SkipUnified,
                UnitKind::Slice => Join::All,
            };
            return Ok(self.cgroup.add_pid(pid, join)?);
        }
        let join = match (cloned_into, v1_joined) {
            (true, true) => return Ok(()),
            (true, false) => Join::SkipUnified,
            (false, true) => Join::UnifiedOnly,
            (false, false) => Join::All,
        };
        Ok(self.cgroup.add_pid(pid, join)?)
    }
}
