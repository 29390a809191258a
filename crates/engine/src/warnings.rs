//! Warnings for the person who runs a container, shown as `WARNING: ...` lines on stderr as
//! docker and podman show theirs: limits this host cannot apply (discarded, as docker
//! discards them, instead of failing the start), and what the runtime core logs as a
//! warning while it creates the container. The monitor gathers them during a start and
//! sends them with STARTED (or ERROR); the client prints them ([`print`]).

use std::sync::Mutex;

use crate::config::ContainerConfig;

/// What the host can do, as far as these warnings go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// cgroup v1 memory.memsw.* or v2 memory.swap.max.
    pub swap_accounting: bool,
    /// cgroup v1's memory.oom_control (v2 cannot disable the OOM killer per cgroup).
    pub oom_kill_disable: bool,
    /// A proportional I/O scheduler's weight files (blkio.weight, CFQ's, or BFQ's).
    pub blkio_weight: bool,
}

impl Host {
    /// Probes the cgroup file systems (a few stats, no writes).
    pub fn probe() -> Host {
        use std::path::Path;
        let exists = |p: &str| Path::new(p).exists();
        let v1_memory = exists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        let v2_memory = std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
            .is_ok_and(|c| c.contains("memory"));
        Host {
            swap_accounting: exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
                || v2_memory,
            oom_kill_disable: v1_memory,
            // The root blkio group has no weight file under BFQ, only its statistics: their
            // presence says the scheduler (and so the children's blkio.bfq.weight) exists.
            blkio_weight: exists("/sys/fs/cgroup/blkio/blkio.weight")
                || exists("/sys/fs/cgroup/blkio/blkio.bfq.io_service_bytes")
                || std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
                    .is_ok_and(|c| c.split_whitespace().any(|w| w == "io")),
        }
    }
}

/// The limits of `config` this host cannot apply, taken out of it (docker's behaviour), and
/// docker's words for each; also docker's warning for an OOM killer turned off with no limit.
pub fn discard_unsupported(config: &mut ContainerConfig, host: Host) -> Vec<String> {
    let r = &mut config.resources;
    let mut out = Vec::new();
    if (r.memory.is_some() || r.memory_swap.is_some_and(|s| s != -1)) && !host.swap_accounting {
        out.push(
            "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
                .to_string(),
        );
    }
    if r.oom_kill_disable && !host.oom_kill_disable {
        out.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
        r.oom_kill_disable = false;
    } else if r.oom_kill_disable && r.memory.is_none() {
        out.push(
            "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
                .into(),
        );
    }
    if r.blkio_weight.is_some() && !host.blkio_weight {
        out.push(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
                .into(),
        );
        r.blkio_weight = None;
    }
    out
}

/// The runtime core's warnings while a capture runs (`None`: not capturing).
static CAPTURED: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Collects what is logged at warning level until [`Capture::finish`], instead of printing
/// it (a monitor's stderr is /dev/null, or during a create the container's stderr).
pub struct Capture {
    level: log::LevelFilter,
}

impl Capture {
    pub fn start() -> Capture {
        *CAPTURED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
        let level = log::max_level();
        log::set_max_level(level.max(log::LevelFilter::Warn));
        Capture { level }
    }

    pub fn finish(self) -> Vec<String> {
        log::set_max_level(self.level);
        CAPTURED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// For the command's logger: takes a warning while a [`Capture`] runs (true: it is taken,
/// do not print it).
pub fn capture_log(record: &log::Record<'_>) -> bool {
    if record.level() != log::Level::Warn {
        return false;
    }
    let mut captured = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
    match captured.as_mut() {
        Some(list) => {
            list.push(record.args().to_string());
            true
        }
        None => false,
    }
}

/// Prints warnings as docker does.
pub fn print(warnings: &[String]) {
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: Host = Host {
        swap_accounting: true,
        oom_kill_disable: true,
        blkio_weight: true,
    };

    #[test]
    fn a_capable_host_says_nothing() {
        let mut c = ContainerConfig::default();
        c.resources.memory = Some(1 << 20);
        c.resources.oom_kill_disable = true;
        c.resources.blkio_weight = Some(300);
        let before = c.clone();
        assert!(discard_unsupported(&mut c, FULL).is_empty());
        assert_eq!(c, before);
    }

    #[test]
    fn what_the_host_lacks_is_discarded_with_dockers_words() {
        let mut c = ContainerConfig::default();
        c.resources.memory = Some(1 << 20);
        c.resources.oom_kill_disable = true;
        c.resources.blkio_weight = Some(300);
        let w = discard_unsupported(
            &mut c,
            Host {
                swap_accounting: false,
                oom_kill_disable: false,
                blkio_weight: false,
            },
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("swap limit") && w[1].contains("OomKillDisable discarded"));
        assert!(w[2].contains("Block I/O weight"));
        assert!(!c.resources.oom_kill_disable && c.resources.blkio_weight.is_none());
        // The memory limit itself stays.
        assert_eq!(c.resources.memory, Some(1 << 20));
        let mut c = ContainerConfig::default();
        c.resources.oom_kill_disable = true;
        let w = discard_unsupported(&mut c, FULL);
        assert!(w[0].contains("no memory limit is set"), "{w:?}");
        assert!(c.resources.oom_kill_disable);
    }
}
