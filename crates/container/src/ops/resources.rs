//! The commands that act on a container's cgroup: pause, resume, ps, events and update.

use std::time::Duration;

use berth_cgroups::{Mode, OomEvent, PlanOptions, Stats};
use oci_spec::runtime::LinuxResources;
use serde::Serialize;

use super::lifecycle::status_of;
use crate::cgroup::ContainerCgroup;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, Record, StateRoot, Status};

fn open(root: &StateRoot, id: &str) -> Result<(ContainerDir, Record, Status, ContainerCgroup)> {
    let dir = root.open(id)?;
    let record = dir.load()?.ok_or_else(|| Error::WrongStatus {
        id: id.to_string(),
        status: Status::Creating.to_string(),
        message: "it is still being created".into(),
    })?;
    let status = status_of(&record, &dir.path);
    let cgroup = ContainerCgroup::from_record(&record.cgroup)?;
    Ok((dir, record, status, cgroup))
}

fn wrong(id: &str, status: Status, message: &str) -> Error {
    Error::WrongStatus {
        id: id.to_string(),
        status: status.to_string(),
        message: message.to_string(),
    }
}

/// `pause ID`: freezes every process of a running container.
pub fn pause(root: &StateRoot, id: &str) -> Result<()> {
    let (_dir, _record, status, cgroup) = open(root, id)?;
    match status {
        Status::Running | Status::Created => cgroup.freeze(),
        other => Err(wrong(id, other, "only a running container can be paused")),
    }
}

/// `resume ID`: thaws a paused container.
pub fn resume(root: &StateRoot, id: &str) -> Result<()> {
    let (_dir, _record, status, cgroup) = open(root, id)?;
    match status {
        Status::Paused => cgroup.thaw(),
        other => Err(wrong(id, other, "only a paused container can be resumed")),
    }
}

/// `ps ID`: the host pids of every process in the container's cgroup.
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<i32>> {
    let (_dir, _record, status, cgroup) = open(root, id)?;
    if status == Status::Stopped {
        return Err(wrong(id, status, "a stopped container has no processes"));
    }
    cgroup.pids()
}

/// One line of `events`, in runc's shape.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// `events --stats ID`: the container's resource usage now.
pub fn stats(root: &StateRoot, id: &str) -> Result<Event> {
    let (_dir, _record, status, cgroup) = open(root, id)?;
    if status == Status::Stopped {
        return Err(wrong(id, status, "a stopped container has no statistics"));
    }
    Ok(Event {
        kind: "stats",
        id: id.to_string(),
        data: Some(cgroup.inner().stats()?),
    })
}

/// `events ID`: a stats event every `interval`, and an `oom` event whenever the kernel's
/// OOM killer acts in the container, until the container is gone. `emit` returns false to
/// stop.
pub fn events(
    root: &StateRoot,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Event) -> bool,
) -> Result<()> {
    let (dir, _record, status, cgroup) = open(root, id)?;
    drop(dir);
    if status == Status::Stopped {
        return Err(wrong(id, status, "a stopped container has no events"));
    }
    let mut watcher = cgroup.inner().oom_watcher()?;
    let mut next_stats = std::time::Instant::now();
    loop {
        // A deleted container's cgroup may still read as zeros for a moment (v2): stop
        // as soon as it is gone.
        if !cgroup.inner().exists() {
            return Ok(());
        }
        let now = std::time::Instant::now();
        if now >= next_stats {
            let data = match cgroup.inner().stats() {
                Ok(s) => s,
                Err(_) if !cgroup.inner().exists() => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let event = Event {
                kind: "stats",
                id: id.to_string(),
                data: Some(data),
            };
            if !emit(&event) {
                return Ok(());
            }
            next_stats = now + interval;
        }
        let wait = next_stats.saturating_duration_since(std::time::Instant::now());
        match watcher.wait(Some(wait))? {
            OomEvent::Oom { .. } => {
                let event = Event {
                    kind: "oom",
                    id: id.to_string(),
                    data: None,
                };
                if !emit(&event) {
                    return Ok(());
                }
            }
            OomEvent::CgroupRemoved => return Ok(()),
            OomEvent::Timeout => {}
        }
    }
}

/// `update ID`: applies new resource limits (zero and absent fields leave a limit as it
/// is, as runc does) and records them in the container's state.
pub fn update(root: &StateRoot, id: &str, resources: &LinuxResources) -> Result<Vec<String>> {
    let (dir, mut record, status, cgroup) = open(root, id)?;
    if status == Status::Stopped {
        return Err(wrong(id, status, "cannot update a stopped container"));
    }
    // Everything is checked before anything changes: the cgroupfs plan, and with the
    // systemd driver the unit properties (runc's order: systemd first, then the files, so
    // the files hold what systemd has no property for and a value systemd rounds, e.g. a
    // CPU quota, ends up exact).
    let plan = cgroup
        .inner()
        .plan(resources, Mode::Update, PlanOptions::default())?;
    if let Some(unit) = &record.systemd_unit {
        let converted = berth_systemd::props::convert(resources, Mode::Update)?;
        for warning in &converted.warnings {
            log::warn!("{warning}");
        }
        let properties = converted.properties;
        if !properties.is_empty() {
            crate::cgroup::connect_systemd()?.set_properties(unit, &properties)?;
        }
    }
    cgroup.inner().update(&plan)?;
    let warnings = plan.warnings().to_vec();
    if let Some(linux) = record.config.linux().clone() {
        let mut linux = linux;
        let merged = merge_resources(linux.resources().clone().unwrap_or_default(), resources);
        linux.set_resources(Some(merged));
        record.config.set_linux(Some(linux));
        dir.save(&record)?;
    }
    Ok(warnings)
}

/// The recorded resources with the update's set parts replacing the old ones.
fn merge_resources(mut old: LinuxResources, new: &LinuxResources) -> LinuxResources {
    if new.memory().is_some() {
        old.set_memory(*new.memory());
    }
    if new.cpu().is_some() {
        old.set_cpu(new.cpu().clone());
    }
    if new.pids().is_some() {
        old.set_pids(*new.pids());
    }
    if new.block_io().is_some() {
        old.set_block_io(new.block_io().clone());
    }
    if new.hugepage_limits().is_some() {
        old.set_hugepage_limits(new.hugepage_limits().clone());
    }
    if new.unified().is_some() {
        old.set_unified(new.unified().clone());
    }
    if new.devices().is_some() {
        old.set_devices(new.devices().clone());
    }
    old
}
