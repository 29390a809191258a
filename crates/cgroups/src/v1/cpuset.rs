//! v1 cpuset: a new cpuset cgroup starts with empty cpus and mems, and no
//! task can join it until both are set. runc copies the parent's values
//! into each new directory (rather than setting cgroup.clone_children on a
//! parent it does not own); so do we.

use std::path::{Path, PathBuf};

use crate::controller::Controller;
use crate::error::Result;
use crate::fsutil;
use crate::plan::Plan;

const CPUS: &str = "cpuset.cpus";
const MEMS: &str = "cpuset.mems";

/// Initialise the directories `mkdir_p` just created (`created`, parents
/// first) and, if `leaf` already existed, make sure it is usable. Values the
/// plan sets on the leaf are not copied first.
pub(super) fn init(leaf: &Path, mountpoint: &Path, created: &[PathBuf], plan: &Plan) -> Result<()> {
    let Some(first) = created.first() else {
        // Pre-existing leaf: only repair it if someone left it empty.
        effective(leaf, mountpoint)?;
        return Ok(());
    };
    let parent = first.parent().unwrap_or(mountpoint);
    let (cpus, mems) = effective(parent, mountpoint)?;
    for d in created {
        let is_leaf = d == leaf;
        if !(is_leaf && plan.sets_v1(Controller::Cpuset, CPUS)) {
            fsutil::write("cpuset", d, CPUS, &cpus)?;
        }
        if !(is_leaf && plan.sets_v1(Controller::Cpuset, MEMS)) {
            fsutil::write("cpuset", d, MEMS, &mems)?;
        }
    }
    Ok(())
}

/// `dir`'s cpus and mems, filling empty ones from the nearest ancestor
/// that has them (the hierarchy root always does).
fn effective(dir: &Path, mountpoint: &Path) -> Result<(String, String)> {
    let mut cpus = fsutil::read_in(dir, CPUS)?.trim().to_string();
    let mut mems = fsutil::read_in(dir, MEMS)?.trim().to_string();
    if (cpus.is_empty() || mems.is_empty()) && dir != mountpoint {
        let (pc, pm) = effective(dir.parent().unwrap_or(mountpoint), mountpoint)?;
        if cpus.is_empty() {
            fsutil::write("cpuset", dir, CPUS, &pc)?;
            cpus = pc;
        }
        if mems.is_empty() {
            fsutil::write("cpuset", dir, MEMS, &pm)?;
            mems = pm;
        }
    }
    Ok((cpus, mems))
}
