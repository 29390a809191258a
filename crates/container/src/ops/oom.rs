//! Saying that the kernel's OOM killer killed a container's processes: `run` when its
//! process died of it, `delete` and `state` when the cgroup counted kills. Only read on
//! those paths (one counter file, and the limit when there were kills): nothing is watched
//! while the container starts or runs.

use std::fmt;

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
