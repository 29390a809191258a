//! Linux cgroups for Berth: one interface ([`Backend`], used through
//! [`Cgroup`]) over three host layouts — v1 (controllers mounted separately
//! or co-mounted), v2 (unified) and hybrid (v1 controllers plus a cgroup2
//! mount; each controller is driven where the kernel bound it).
//!
//! # How the runtime uses it
//!
//! ```text
//! create:  layout = Layout::probe()                      // 1 read of mountinfo (+ cgroup.controllers)
//!          path   = CgroupsPath::parse(spec.cgroupsPath) or CgroupsPath::default_for(id)
//!          cg     = Cgroup::new(&layout, &path)          // pure for absolute paths
//!          plan   = cg.plan(&resources, Mode::Create, PlanOptions::default())   // validation, no writes
//!          log plan.warnings()
//!          cg.create(&plan)                              // mkdir + cpuset init + limits + device policy
//!          fd = cg.open_unified_dir()                    // Some on v2/hybrid: clone3(CLONE_INTO_CGROUP)
//!          cg.add_pid(init_pid, Join::SkipUnified)       // after CLONE_INTO_CGROUP; else Join::All
//!          state.json <- serde_json::to_value(&cg)
//! exec:    cg.add_pid_like(pid, init_pid)                // joins init's sub-cgroup if the top is not a leaf
//! kill:    cg.signal_all(sig)                            // --all; SIGKILL via cgroup.kill where present
//! pause:   cg.freeze(DEFAULT_FREEZE_TIMEOUT) / resume: cg.thaw() / state: cg.freezer_state()
//! update:  cg.update_resources(&res)                     // or plan(.., Mode::Update, ..) + update(&plan)
//! ps:      cg.pids()
//! events:  cg.stats(); cg.oom_kill_count(); cg.oom_watcher()?.wait(timeout)
//! delete:  cg.signal_all(SIGKILL) if needed, then cg.destroy()
//! mounts:  cg.mounts() -> per hierarchy: host mountpoint, options, container dir
//! ```
//!
//! Everything that can be decided from the spec is decided by
//! [`Cgroup::plan`] before anything is written: bad values and resources
//! the host cannot enforce fail there, naming the field.

mod apply;
mod backend;
mod cgroup;
pub mod controller;
pub mod convert;
pub mod cpulist;
pub mod devices;
pub mod error;
pub mod freezer;
mod fsutil;
pub mod host;
mod hybrid;
pub mod layout;
pub mod mountinfo;
pub mod mounts;
pub mod none;
pub mod oom;
pub mod path;
pub mod plan;
pub mod proc_cgroup;
mod self_join;
pub mod stats;
mod sys;
mod tree;
mod v1;
mod v2;
pub mod validate;

pub use backend::{Backend, Join};
pub use cgroup::{AnyBackend, Cgroup, DEFAULT_FREEZE_TIMEOUT};
pub use controller::Controller;
pub use error::{Error, ResourceError, ResourceErrors, Result};
pub use freezer::FreezerState;
pub use host::HostInfo;
pub use hybrid::HybridCgroup;
pub use layout::{Layout, LayoutKind};
pub use mounts::HierarchyMount;
pub use none::NoCgroup;
pub use oom::{OomEvent, OomWatcher};
pub use path::CgroupsPath;
pub use plan::{Bindings, Op, Plan, PlanOptions, Version};
pub use self_join::V1SelfJoin;
pub use stats::Stats;
pub use v1::{V1Cgroup, V1Dir};
pub use v2::V2Cgroup;
pub use validate::{Mode, validate};
