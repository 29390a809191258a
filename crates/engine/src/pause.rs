//! `pause` and `unpause`: the container's cgroup frozen or thawed by the runtime core.

use crate::Engine;
use crate::error::{Error, Result};
use crate::status::{self, State};

/// Freezes every process of a running container.
pub fn pause(engine: &Engine, id: &str) -> Result<()> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    match live.state {
        State::Running => {
            berth_container::ops::pause(&engine.runtime(), &record.id)?;
            crate::events::append(
                engine,
                &crate::events::Event::container(&record, "pause", &[]),
            );
            Ok(())
        }
        State::Paused => Err(Error::State {
            name: record.name,
            state: "paused".into(),
            message: "the container is already paused".into(),
        }),
        other => Err(Error::State {
            name: record.name,
            state: other.as_str().into(),
            message: "the container is not running".into(),
        }),
    }
}

/// Thaws a paused container.
pub fn unpause(engine: &Engine, id: &str) -> Result<()> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    if live.state != State::Paused {
        return Err(Error::State {
            name: record.name,
            state: live.state.as_str().into(),
            message: "the container is not paused".into(),
        });
    }
    berth_container::ops::resume(&engine.runtime(), &record.id)?;
    crate::events::append(
        engine,
        &crate::events::Event::container(&record, "unpause", &[]),
    );
    Ok(())
}
