//! What the runtime needs to give a container its own /sys/fs/cgroup.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::plan::Version;

/// One hierarchy as the container should see it.
///
/// * Without a cgroup namespace (runc's v1 behaviour): mount a tmpfs at
///   /sys/fs/cgroup, and for each v1 hierarchy bind-mount `host_dir` at
///   `/sys/fs/cgroup/<name>` (plus symlinks for each controller of a
///   co-mounted `name`, e.g. `cpu -> cpu,cpuacct`); for v2 bind `host_dir`
///   at /sys/fs/cgroup (or /sys/fs/cgroup/unified on hybrid).
/// * With a cgroup namespace: mount `cgroup` with `-o <options>` (or
///   `cgroup2`) at the same places; the kernel roots it at `cgroup_path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HierarchyMount {
    pub version: Version,
    /// Where the host has it mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub host_mountpoint: PathBuf,
    /// Last component of the host mountpoint (`cpu,cpuacct`, `systemd`,
    /// `unified`), empty for a v2 mount at /sys/fs/cgroup itself.
    pub name: String,
    /// Mount options naming the hierarchy (`cpu,cpuacct`,
    /// `name=systemd`); empty for v2.
    pub options: String,
    /// Controllers of the hierarchy (v2: those the host offers).
    pub controllers: Vec<String>,
    /// The container's path inside the hierarchy (as in
    /// /proc/<pid>/cgroup), e.g. /docker/<id>.
    pub cgroup_path: String,
    /// The container's directory on the host.
    pub host_dir: PathBuf,
}

pub(crate) fn basename(p: &std::path::Path) -> String {
    if p == std::path::Path::new("/sys/fs/cgroup") {
        return String::new();
    }
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
