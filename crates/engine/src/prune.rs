//! `container prune`: removes every container that is not running (created or exited),
//! as docker does, through the same removal as `rm`.

use crate::Engine;
use crate::error::Result;
use crate::status::{self, State};

/// What was removed: container ids, and the bytes their directories held.
#[derive(Debug, Default)]
pub struct Pruned {
    pub ids: Vec<String>,
    pub reclaimed: u64,
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| dir_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

pub fn prune(engine: &Engine) -> Result<Pruned> {
    let mut out = Pruned::default();
    for record in engine.records.list()? {
        let live = status::observe(engine, &record);
        if !matches!(live.state, State::Created | State::Exited) || live.monitor_alive {
            continue;
        }
        let size = dir_size(&engine.container_dir(&record.id).join("upper"));
        match crate::ops::remove(engine, &record.id, false) {
            Ok(()) => {
                crate::events::append(
                    engine,
                    &crate::events::Event::container(&record, "destroy", &[]),
                );
                out.reclaimed += size;
                out.ids.push(record.id);
            }
            Err(e) => log::warn!("container prune: {}: {e}", record.name),
        }
    }
    Ok(out)
}
