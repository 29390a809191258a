//! A container's state now, from the kernel: is its monitor alive (pid and start time), what
//! does the runtime core say about its init (`ops::state`: the process, the freezer), and
//! what the record says happened. Also the repair of a container whose monitor was killed:
//! the next command that looks settles it (runtime state deleted, rootfs unmounted, the
//! exit recorded), so it can still be inspected, stopped and removed.

use berth_container::state::Status;
use serde::Serialize;

use crate::Engine;
use crate::error::Result;
use crate::record::{ContainerRecord, Locked};

/// docker's State.Status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
        }
    }

    /// Running or paused: something is alive in the container.
    pub fn is_active(self) -> bool {
        matches!(self, State::Running | State::Paused)
    }
}

/// What is true now.
#[derive(Debug, Clone)]
pub struct Live {
    pub state: State,
    /// The init's host pid while it runs.
    pub pid: i32,
    pub monitor_alive: bool,
}

/// Whether a recorded process (pid + start time) is still that process.
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    pid > 0
        && berth_container::state::proc_stat(pid)
            .is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// The monitor of `record` is alive.
pub fn monitor_alive(record: &ContainerRecord) -> bool {
    process_alive(record.state.monitor_pid, record.state.monitor_start_time)
}

/// The state of a container, without repairing anything.
pub fn observe(engine: &Engine, record: &ContainerRecord) -> Live {
    let monitor = monitor_alive(record);
    let runtime = berth_container::ops::state(&engine.runtime(), &record.id).ok();
    let (state, pid) = match runtime.as_ref().map(|s| (s.status, s.pid)) {
        Some((Status::Running, pid)) => (State::Running, pid),
        Some((Status::Paused, pid)) => (State::Paused, pid),
        // Being set up by the monitor right now.
        Some((Status::Created | Status::Creating, pid)) => (State::Running, pid),
        Some((Status::Stopped, _)) | None => {
            if record.state.restarting && monitor {
                (State::Restarting, 0)
            } else if record.state.pid != 0 && monitor {
                // Exited a moment ago (or starting): the monitor is writing it down.
                (State::Running, record.state.pid)
            } else if record.state.started_at.is_none() && record.state.finished_at.is_none() {
                (State::Created, 0)
            } else {
                (State::Exited, 0)
            }
        }
    };
    Live {
        state,
        pid,
        monitor_alive: monitor,
    }
}

/// The state of a container, settling it first when its monitor died (see the module
/// comment). Returns the record as it is afterwards (`None` if an `--rm` container was
/// removed by that).
pub fn live(engine: &Engine, id: &str) -> Result<(Option<ContainerRecord>, Live)> {
    let record = engine.records.load(id)?;
    let live = observe(engine, &record);
    if live.monitor_alive || record.state.pid == 0 || live.state.is_active() {
        return Ok((Some(record), live));
    }
    let locked = engine.records.lock(id)?;
    let record = settle_lost(engine, &locked)?;
    let live = match &record {
        Some(r) => observe(engine, r),
        None => live,
    };
    Ok((record, live))
}

/// Under the container's lock: if the monitor is gone and the init has exited, do what the
/// monitor would have done at the exit. The exit code died with the monitor (it was the
/// init's parent): 137 when a user stopped it with SIGKILL, else 255, with State.Error
/// saying why.
pub fn settle_lost(engine: &Engine, locked: &Locked) -> Result<Option<ContainerRecord>> {
    let mut record = locked.load()?;
    let runtime = engine.runtime();
    let init_alive = berth_container::ops::state(&runtime, &record.id)
        .is_ok_and(|s| s.status != Status::Stopped);
    if monitor_alive(&record) || record.state.pid == 0 || init_alive {
        return Ok(Some(record));
    }
    crate::monitor::cleanup_runtime(engine, &record);
    record.state.pid = 0;
    record.state.monitor_pid = 0;
    record.state.restarting = false;
    record.state.rootfs_mounted = false;
    record.state.finished_at = Some(crate::time::now());
    record.state.exit_code = Some(if record.state.stopped_by_user {
        137
    } else {
        255
    });
    record.state.error = "the container's monitor was killed: its exit status was lost".into();
    if record.config.auto_remove {
        crate::ops::remove_record(engine, &record);
        return Ok(None);
    }
    locked.save(&record)?;
    Ok(Some(record))
}
