//! Pause / resume: v1 freezer.state, v2 cgroup.freeze + cgroup.events.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::stats::parse_flat_keyed;

/// Freezer state of a cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    /// Asked to freeze, not all tasks stopped yet.
    Freezing,
    Frozen,
}

impl std::fmt::Display for FreezerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FreezerState::Thawed => "THAWED",
            FreezerState::Freezing => "FREEZING",
            FreezerState::Frozen => "FROZEN",
        })
    }
}

/// Poll with a short, growing sleep: most cgroups freeze within
/// microseconds, a few (tasks in uninterruptible sleep) take longer.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: Duration::from_micros(20),
        }
    }
    fn sleep(&mut self) {
        std::thread::sleep(self.next);
        self.next = (self.next * 2).min(Duration::from_millis(10));
    }
}

const V1_STATE: &str = "freezer.state";

fn v1_parse(dir: &Path, s: &str) -> Result<FreezerState> {
    match s.trim() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(Error::Parse {
            path: dir.join(V1_STATE),
            reason: format!("unknown freezer state {other:?}"),
        }),
    }
}

pub(crate) fn v1_state(dir: &Path) -> Result<FreezerState> {
    let s = fsutil::read_in(dir, V1_STATE)?;
    v1_parse(dir, &s)
}

/// Freeze through freezer.state. Writing FROZEN again makes the kernel
/// retry tasks that were not freezable yet; a thaw now and then gets a task
/// stuck in vfork() or a signal path moving again (runc does both).
pub(crate) fn v1_freeze(dir: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut backoff = Backoff::new();
    let mut round = 0u32;
    loop {
        fsutil::write("freezer", dir, V1_STATE, "FROZEN")?;
        let state = v1_state(dir)?;
        if state == FreezerState::Frozen {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            // Never leave a half-frozen container behind.
            let _ = fsutil::write("freezer", dir, V1_STATE, "THAWED");
            return Err(Error::FreezeTimeout {
                path: dir.to_path_buf(),
                timeout,
                state: state.to_string(),
            });
        }
        round += 1;
        if round.is_multiple_of(50) {
            let _ = fsutil::write("freezer", dir, V1_STATE, "THAWED");
        }
        backoff.sleep();
    }
}

pub(crate) fn v1_thaw(dir: &Path) -> Result<()> {
    fsutil::write("freezer", dir, V1_STATE, "THAWED")
}

fn v2_frozen(dir: &Path) -> Result<bool> {
    let s = fsutil::read_in(dir, "cgroup.events")?;
    Ok(parse_flat_keyed(&s).get("frozen") == Some(&1))
}

pub(crate) fn v2_state(dir: &Path) -> Result<FreezerState> {
    let want = fsutil::read_u64(dir, "cgroup.freeze")? == 1;
    Ok(match (want, v2_frozen(dir)?) {
        // Frozen through an ancestor counts as frozen.
        (_, true) => FreezerState::Frozen,
        (true, false) => FreezerState::Freezing,
        (false, false) => FreezerState::Thawed,
    })
}

/// Write cgroup.freeze and wait until cgroup.events agrees.
pub(crate) fn v2_set(dir: &Path, frozen: bool, timeout: Duration) -> Result<()> {
    fsutil::write(
        "freezer",
        dir,
        "cgroup.freeze",
        if frozen { "1" } else { "0" },
    )?;
    let start = Instant::now();
    let mut backoff = Backoff::new();
    loop {
        let now = v2_frozen(dir)?;
        if now == frozen {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            if frozen {
                let _ = fsutil::write("freezer", dir, "cgroup.freeze", "0");
                return Err(Error::FreezeTimeout {
                    path: dir.to_path_buf(),
                    timeout,
                    state: FreezerState::Freezing.to_string(),
                });
            }
            // Thawing our own request worked; still frozen means an
            // ancestor is frozen, which is not ours to undo.
            return Ok(());
        }
        backoff.sleep();
    }
}
