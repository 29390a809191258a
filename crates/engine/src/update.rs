//! `update [resource flags] [--restart] CONTAINER`: new limits for a container. A running
//! one gets them in its cgroup now (the runtime core's `ops::update`); the record keeps
//! them either way, so `inspect` shows them and the next start applies them.

use crate::Engine;
use crate::config::{Resources, RestartPolicy};
use crate::error::{Error, Result};
use crate::status::{self, State};

/// What to change (unset: unchanged).
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub resources: Resources,
    pub restart: Option<RestartPolicy>,
}

/// Applies `update` to one container; returns the kernel's warnings.
pub fn update(engine: &Engine, id: &str, update: &Update) -> Result<Vec<String>> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    let mut wanted = update.resources.clone();
    // Memory alone: keep an unlimited swap unlimited, else docker's swap = 2 x memory.
    if wanted.memory.is_some()
        && wanted.memory_swap.is_none()
        && record.config.resources.memory_swap == Some(-1)
    {
        wanted.memory_swap = Some(-1);
    }
    let mut warnings = Vec::new();
    if matches!(live.state, State::Running | State::Paused) {
        let res = crate::limit::linux_resources(&wanted, crate::limit::swap_accounting());
        warnings = berth_container::ops::update(&engine.runtime(), &record.id, &res)?;
    }
    engine.records.update(&record.id, |r| {
        let old = &mut r.config.resources;
        macro_rules! take {
            ($($f:ident),*) => { $( if wanted.$f.is_some() { old.$f = wanted.$f.clone(); } )* };
        }
        take!(
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpu_quota,
            cpu_period,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            blkio_weight
        );
        if let Some(policy) = &update.restart {
            r.config.restart = policy.clone();
        }
    })?;
    crate::events::append(
        engine,
        &crate::events::Event::container(&record, "update", &[]),
    );
    Ok(warnings)
}
