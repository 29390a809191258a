//! Turning `linux.resources` into the list of cgroup writes for this host:
//! pure data, built and checked before anything is touched.
//!
//! Each controller is planned for the version it is bound to (v1 file names
//! and units, or v2 ones with conversions), so a hybrid host needs nothing
//! special: on this machine memory is planned for v1 and hugetlb for v2 in
//! the same plan.

mod blkio;
mod cpu;
mod memory;
mod misc;

use std::fmt;

use oci_spec::runtime::LinuxResources;

use crate::controller::Controller;
use crate::devices::{self, emulator::DeviceState};
use crate::error::{ResourceError, ResourceErrors};
use crate::host::HostInfo;
use crate::layout::LayoutKind;
use crate::validate::{self, Mode};

/// Which hierarchy a setting goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// Where each controller is bound for one cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bindings {
    pub kind: LayoutKind,
    /// Controllers with a v1 hierarchy.
    pub v1: Vec<Controller>,
    /// v2 controller names the unified hierarchy offers.
    pub v2: Vec<String>,
    /// Whether the cgroup has a directory on a cgroup2 mount (device
    /// programs, cgroup.freeze and cgroup.kill need no controller).
    pub unified: bool,
}

impl Bindings {
    /// The version `c` is driven through, if any.
    pub fn of(&self, c: Controller) -> Option<Version> {
        if self.v1.contains(&c) {
            return Some(Version::V1);
        }
        match c.v2_name() {
            Some(n) if self.v2.iter().any(|x| x == n) => Some(Version::V2),
            _ => None,
        }
    }

    /// Device policy: the v1 controller if mounted, else an eBPF program on
    /// the cgroup2 directory.
    pub fn devices(&self) -> Option<Version> {
        if self.v1.contains(&Controller::Devices) {
            Some(Version::V1)
        } else if self.unified {
            Some(Version::V2)
        } else {
            None
        }
    }

    fn describe(&self) -> String {
        let v1: Vec<&str> = self.v1.iter().map(|c| c.v1_name()).collect();
        format!(
            "{}; v1 controllers: {}; v2 controllers: {}",
            self.kind,
            if v1.is_empty() {
                "none".into()
            } else {
                v1.join(" ")
            },
            if self.v2.is_empty() {
                "none".into()
            } else {
                self.v2.join(" ")
            }
        )
    }

    /// The error for a set field whose controller is missing.
    fn unavailable(&self, field: &str, controller: &str) -> ResourceError {
        ResourceError::new(
            field,
            format!(
                "{field} is set but the {controller} cgroup controller is not available on this host ({})",
                self.describe()
            ),
        )
    }
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Write `value` to `file`.
    Write {
        version: Version,
        controller: Controller,
        file: String,
        value: String,
    },
    /// Like `Write`, but a missing file (an optional kernel feature, e.g.
    /// hugetlb reservations, swap accounting turned off) is not an error.
    WriteIfPresent {
        version: Version,
        controller: Controller,
        file: String,
        value: String,
    },
    /// v1 memory.limit_in_bytes + memory.memsw.limit_in_bytes, written in
    /// the order the current limit allows (0 = leave unchanged).
    MemoryV1 { limit: i64, swap: i64 },
    /// checkBeforeUpdate: fail if current usage is above `limit`.
    CheckMemoryUsage { version: Version, limit: i64 },
    /// v1 cfs period/quota/burst with the kernel's ordering constraints.
    CpuBandwidthV1 {
        quota: i64,
        period: u64,
        burst: Option<u64>,
    },
    /// v2 cpu.max (+ cpu.max.burst); an unset half is kept from the file.
    CpuMaxV2 {
        quota: i64,
        period: u64,
        burst: Option<u64>,
    },
    /// v1 blkio weight and per-device weights (blkio.weight or, with BFQ,
    /// blkio.bfq.weight — whichever the kernel has).
    BlkioWeightV1 {
        weight: u16,
        devices: Vec<(i64, i64, u16)>,
    },
    /// v2 io.bfq.weight (v1 range, when BFQ is there) or io.weight
    /// (converted).
    IoWeightV2 {
        weight: u16,
        devices: Vec<(i64, i64, u16)>,
    },
    /// The device policy.
    Devices {
        version: Version,
        state: DeviceState,
        /// The rules in config order (deny all, the spec's rules, the defaults): v1 writes
        /// a fresh cgroup's exceptions in this order ("MUST apply entries in the listed order").
        rules: Vec<devices::Rule>,
    },
    /// A `unified` key: each line of `value` written separately.
    Unified { file: String, value: String },
}

impl Op {
    /// The controller a step belongs to (`None` for unified keys, which
    /// name their own file).
    pub fn controller(&self) -> Option<Controller> {
        match self {
            Op::Write { controller, .. } | Op::WriteIfPresent { controller, .. } => {
                Some(*controller)
            }
            Op::MemoryV1 { .. } | Op::CheckMemoryUsage { .. } => Some(Controller::Memory),
            Op::CpuBandwidthV1 { .. } | Op::CpuMaxV2 { .. } => Some(Controller::Cpu),
            Op::BlkioWeightV1 { .. } | Op::IoWeightV2 { .. } => Some(Controller::Blkio),
            Op::Devices { .. } => Some(Controller::Devices),
            Op::Unified { .. } => None,
        }
    }

    /// The hierarchy a step goes to.
    pub fn version(&self) -> Version {
        match self {
            Op::Write { version, .. }
            | Op::WriteIfPresent { version, .. }
            | Op::CheckMemoryUsage { version, .. }
            | Op::Devices { version, .. } => *version,
            Op::MemoryV1 { .. } | Op::CpuBandwidthV1 { .. } | Op::BlkioWeightV1 { .. } => {
                Version::V1
            }
            Op::CpuMaxV2 { .. } | Op::IoWeightV2 { .. } | Op::Unified { .. } => Version::V2,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Write { file, value, .. } => write!(f, "{file} = {value:?}"),
            Op::WriteIfPresent { file, value, .. } => write!(f, "{file} = {value:?} (if present)"),
            Op::MemoryV1 { limit, swap } => write!(f, "memory limit {limit}, memory+swap {swap}"),
            Op::CheckMemoryUsage { limit, .. } => write!(f, "check memory usage <= {limit}"),
            Op::CpuBandwidthV1 {
                quota,
                period,
                burst,
            } => {
                write!(f, "cfs quota {quota} period {period} burst {burst:?}")
            }
            Op::CpuMaxV2 {
                quota,
                period,
                burst,
            } => write!(f, "cpu.max {quota} {period} burst {burst:?}"),
            Op::BlkioWeightV1 { weight, devices } => {
                write!(f, "blkio weight {weight} devices {devices:?}")
            }
            Op::IoWeightV2 { weight, devices } => {
                write!(f, "io weight {weight} devices {devices:?}")
            }
            Op::Devices { version, state, .. } => write!(
                f,
                "devices ({version:?}): default {}, {} exceptions",
                if state.default_allow { "allow" } else { "deny" },
                state.exceptions.len()
            ),
            Op::Unified { file, value } => write!(f, "{file} = {value:?} (unified)"),
        }
    }
}

/// Options that change what a plan contains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Do not touch the device policy even on create (runc's SkipDevices;
    /// for callers that manage devices elsewhere).
    pub skip_devices: bool,
}

/// The checked list of steps for one create or update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub(crate) mode: Mode,
    pub(crate) ops: Vec<Op>,
    pub(crate) warnings: Vec<String>,
    /// v2 controllers the steps need enabled in the parents'
    /// cgroup.subtree_control.
    pub(crate) v2_controllers: Vec<String>,
}

impl Plan {
    /// The steps, in the order they will run.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Fields that were accepted but ignored (kernel memory, ...), for the
    /// runtime to log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// v2 controllers this plan needs delegated to the cgroup.
    pub fn v2_controllers(&self) -> &[String] {
        &self.v2_controllers
    }

    /// Whether the plan writes `file` of the v1 cpuset controller (so
    /// creation need not copy the parent's value into it first).
    pub(crate) fn sets_v1(&self, controller: Controller, name: &str) -> bool {
        self.ops.iter().any(|op| {
            matches!(op, Op::Write { version: Version::V1, controller: c, file, .. } if *c == controller && file == name)
        })
    }
}

/// Collects steps and errors while planning.
pub(crate) struct Builder<'a> {
    pub b: &'a Bindings,
    pub mode: Mode,
    pub ops: Vec<Op>,
    pub errs: Vec<ResourceError>,
}

impl Builder<'_> {
    /// The version for `c`, or record that `field` cannot be enforced.
    pub fn need(&mut self, c: Controller, field: &str) -> Option<Version> {
        let v = self.b.of(c);
        if v.is_none() {
            let name = match (self.b.kind, c.v2_name()) {
                (LayoutKind::V2, Some(n)) => n,
                _ => c.v1_name(),
            };
            self.errs.push(self.b.unavailable(field, name));
        }
        v
    }

    pub fn write(
        &mut self,
        version: Version,
        controller: Controller,
        file: impl Into<String>,
        value: impl Into<String>,
    ) {
        self.ops.push(Op::Write {
            version,
            controller,
            file: file.into(),
            value: value.into(),
        });
    }

    pub fn write_if_present(
        &mut self,
        version: Version,
        controller: Controller,
        file: impl Into<String>,
        value: impl Into<String>,
    ) {
        self.ops.push(Op::WriteIfPresent {
            version,
            controller,
            file: file.into(),
            value: value.into(),
        });
    }

    /// An error for a setting this version cannot express.
    pub fn not_on(&mut self, field: &str, version: Version, why: &str) {
        let v = match version {
            Version::V1 => "cgroup v1",
            Version::V2 => "cgroup v2",
        };
        self.errs.push(ResourceError::new(
            field,
            format!("{field} is not supported on {v}: {why}"),
        ));
    }
}

/// Validate `res` and plan it for a cgroup with these bindings.
pub fn build(
    res: &LinuxResources,
    host: &HostInfo,
    bindings: &Bindings,
    mode: Mode,
    opts: PlanOptions,
) -> Result<Plan, ResourceErrors> {
    let warnings = validate::validate(res, host, mode)?;
    let mut bld = Builder {
        b: bindings,
        mode,
        ops: Vec::new(),
        errs: Vec::new(),
    };
    // cpuset first: on v1 a task cannot join while cpus/mems are empty, and
    // devices early so the policy is in place before anything else.
    if let Some(c) = res.cpu() {
        cpu::cpuset(&mut bld, c);
    }
    devices_step(&mut bld, res, opts);
    if let Some(m) = res.memory() {
        memory::plan(&mut bld, m);
    }
    if let Some(c) = res.cpu() {
        cpu::plan(&mut bld, c);
    }
    if let Some(p) = res.pids() {
        misc::pids(&mut bld, p);
    }
    if let Some(b) = res.block_io() {
        blkio::plan(&mut bld, b);
    }
    if let Some(h) = res.hugepage_limits() {
        misc::hugetlb(&mut bld, h);
    }
    if let Some(n) = res.network() {
        misc::network(&mut bld, n);
    }
    if let Some(r) = res.rdma() {
        misc::rdma(&mut bld, r);
    }
    // Last, so explicit v2 keys override converted values (runc does too).
    if let Some(u) = res.unified() {
        misc::unified(&mut bld, u);
    }
    if !bld.errs.is_empty() {
        return Err(ResourceErrors(bld.errs));
    }
    let mut v2_controllers: Vec<String> = Vec::new();
    for op in &bld.ops {
        let name = match op {
            Op::Unified { file, .. } => file
                .split('.')
                .next()
                .filter(|c| *c != "cgroup")
                .map(str::to_string),
            op if op.version() == Version::V2 => op
                .controller()
                .and_then(|c| c.v2_name())
                .map(str::to_string),
            _ => None,
        };
        if let Some(n) = name
            && !v2_controllers.contains(&n)
        {
            v2_controllers.push(n);
        }
    }
    Ok(Plan {
        mode,
        ops: bld.ops,
        warnings,
        v2_controllers,
    })
}

fn devices_step(bld: &mut Builder<'_>, res: &LinuxResources, opts: PlanOptions) {
    if opts.skip_devices {
        return;
    }
    let spec = match (res.devices(), bld.mode) {
        (Some(d), _) => d.as_slice(),
        // A new container is deny-by-default even when the spec says
        // nothing; an update without devices leaves them alone.
        (None, Mode::Create) => &[],
        (None, Mode::Update) => return,
    };
    let Some(version) = bld.b.devices() else {
        bld.errs.push(ResourceError::new(
            "linux.resources.devices",
            format!(
                "the device policy cannot be enforced: no devices controller and no cgroup2 mount ({})",
                bld.b.describe()
            ),
        ));
        return;
    };
    // validate() already reported bad rules; nothing to add on failure.
    if let Ok(rules) = devices::container_rules(spec)
        && let Ok(state) = DeviceState::from_rules(&rules)
    {
        bld.ops.push(Op::Devices {
            version,
            state,
            rules,
        });
    }
}

#[cfg(test)]
pub(crate) mod tests;
