//! Saying that the kernel's OOM killer killed a container's processes: `run` when its
//! process died of it, `delete` and `state` when the cgroup counted kills. Only read on
//! those paths (one counter file, and the limit when there were kills): nothing is watched
//! while the container starts or runs, except by `run` with the systemd driver
//! ([`OomTally`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_cgroups::OomEvent;

use crate::cgroup::ContainerCgroup;

/// The annotation `state` adds when the container's cgroup counted OOM kills: their number.
pub const OOM_KILLS_ANNOTATION: &str = "berth.oom-kills";

/// The kernel's OOM killer killed processes of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomKill {
    pub id: String,
    /// The container's process itself died of it (`run` saw it end by SIGKILL).
    pub process: bool,
    /// OOM kills the container's cgroup counted.
    pub kills: u64,
    /// The memory limit in force, in bytes (`None`: unlimited, the host ran out).
    pub limit: Option<u64>,
}

impl OomKill {
    /// What the cgroup counted, if it counted any kill. `process`: the container's process
    /// is known to have died by SIGKILL.
    pub fn of(id: &str, cgroup: &ContainerCgroup, process: bool) -> Option<OomKill> {
        let kills = cgroup.inner().oom_kill_count().ok().filter(|&n| n > 0)?;
        Some(OomKill {
            id: id.to_string(),
            process,
            kills,
            limit: cgroup.inner().memory_limit().ok().flatten(),
        })
    }
}

/// The OOM kills of a running container, counted by a thread that watches its cgroup.
///
/// With the systemd driver the cgroup goes as soon as its last process has: systemd stops
/// an empty scope and removes its cgroup, in the guest measured before `run` could read the
/// count for the process that just died. The kernel notifies `memory.events` when it picks a
/// victim, while the victim still holds the cgroup, so a watcher reads the count in time.
/// Only `run` in the foreground with the systemd driver starts one.
pub(crate) struct OomTally {
    kills: Arc<AtomicU64>,
    limit: Option<u64>,
    watcher: std::thread::JoinHandle<()>,
}

/// How long [`OomTally::finish`] waits for the watcher to see its cgroup gone.
const WATCHER_END: Duration = Duration::from_secs(1);

impl OomTally {
    /// Starts watching; `None` when the cgroup cannot be watched (no memory controller).
    pub(crate) fn watch(cgroup: &ContainerCgroup) -> Option<OomTally> {
        let mut watcher = cgroup.inner().oom_watcher().ok()?;
        let kills = Arc::new(AtomicU64::new(cgroup.inner().oom_kill_count().unwrap_or(0)));
        let seen = Arc::clone(&kills);
        // The thread inherits the runtime's mask (every signal blocked): signals still go
        // to the supervising thread's sigwaitinfo. It ends with the cgroup (or the process).
        let watcher = std::thread::Builder::new()
            .name("oom-watch".into())
            .spawn(move || {
                loop {
                    match watcher.wait(None) {
                        // The kernel counts the OOM (and notifies) before it counts the
                        // kill: read in between, the total is still 0, and the kill's own
                        // notification may come after systemd removed the cgroup. The
                        // tally is only asked about a process that died by SIGKILL, which
                        // an OOM in its cgroup accounts for: at least one kill.
                        Ok(OomEvent::Oom { oom_kill_total }) => {
                            seen.fetch_max(oom_kill_total.max(1), Ordering::Relaxed);
                        }
                        Ok(OomEvent::Timeout) => {}
                        Ok(OomEvent::CgroupRemoved) | Err(_) => return,
                    }
                }
            })
            .ok()?;
        Some(OomTally {
            kills,
            limit: cgroup.inner().memory_limit().ok().flatten(),
            watcher,
        })
    }

    /// The kills of the container, once its process has exited: what the cgroup says while
    /// it is there; once systemd has removed it, what the watcher read. The watcher was woken
    /// when the kernel picked the victim, before the container's process died, but it may
    /// not have run yet: it is given until it has seen the cgroup go.
    pub(crate) fn finish(
        self,
        id: &str,
        cgroup: &ContainerCgroup,
        process: bool,
    ) -> Option<OomKill> {
        if let Some(oom) = OomKill::of(id, cgroup, process) {
            return Some(oom);
        }
        if cgroup.inner().exists() {
            return None;
        }
        let deadline = Instant::now() + WATCHER_END;
        while !self.watcher.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let kills = self.kills.load(Ordering::Relaxed);
        (kills > 0).then(|| OomKill {
            id: id.to_string(),
            process,
            kills,
            limit: self.limit,
        })
    }
}

impl fmt::Display for OomKill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.process {
            write!(
                f,
                "container {} was killed by the kernel: out of memory",
                self.id
            )?;
        } else {
            let (n, what) = match self.kills {
                1 => (String::from("a"), "process"),
                n => (n.to_string(), "processes"),
            };
            write!(
                f,
                "container {}: {n} {what} killed by the kernel's OOM killer: out of memory",
                self.id
            )?;
        }
        match self.limit {
            Some(limit) => write!(f, " (limit {})", human_bytes(limit)),
            None => write!(f, " (no memory limit: the host ran out of memory)"),
        }
    }
}

/// 268435456 -> "256 MiB"; sizes that are no whole number of KiB stay in bytes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes;
    let mut unit = None;
    for name in UNITS {
        if value == 0 || !value.is_multiple_of(1024) {
            break;
        }
        value /= 1024;
        unit = Some(name);
    }
    match unit {
        Some(unit) => format!("{value} {unit}"),
        None => format!("{bytes} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_the_largest_whole_unit() {
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(1536 << 10), "1536 KiB");
        assert_eq!(human_bytes(2 << 30), "2 GiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_bytes(0), "0 bytes");
    }

    #[test]
    fn the_message_names_the_container_the_killer_and_the_limit() {
        let mut oom = OomKill {
            id: "c1".into(),
            process: true,
            kills: 1,
            limit: Some(256 << 20),
        };
        assert_eq!(
            oom.to_string(),
            "container c1 was killed by the kernel: out of memory (limit 256 MiB)"
        );
        oom.process = false;
        oom.kills = 2;
        oom.limit = None;
        assert_eq!(
            oom.to_string(),
            "container c1: 2 processes killed by the kernel's OOM killer: out of memory \
             (no memory limit: the host ran out of memory)"
        );
    }
}
