//! Host cgroup layout detection: which hierarchies are mounted where, and
//! whether this is a v1, v2 or hybrid host.
//!
//! Cost on the container-start path: one read of /proc/self/mountinfo and, if
//! a cgroup2 mount exists, one read of its `cgroup.controllers`. No
//! directory walks.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::controller::Controller;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::mountinfo::{self, CgroupFsType, CgroupMountEntry};

/// The three shapes a host can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified hierarchy.
    V2,
    /// v1 hierarchies plus a cgroup2 mount; each controller is driven where
    /// the kernel bound it.
    Hybrid,
}

impl std::fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayoutKind::V1 => "cgroup v1",
            LayoutKind::V2 => "cgroup v2",
            LayoutKind::Hybrid => "hybrid cgroup v1 + v2",
        })
    }
}

/// A mounted v1 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Mount {
    pub mountpoint: PathBuf,
    /// mountinfo's root field: the part of the hierarchy this mount shows.
    pub root: String,
    /// Controllers as in the mount options, e.g. `["cpu", "cpuacct"]` or
    /// `["name=systemd"]`.
    pub controllers: Vec<String>,
}

impl V1Mount {
    /// Whether `c` is bound to this hierarchy.
    pub fn has(&self, c: Controller) -> bool {
        self.controllers.iter().any(|n| n == c.v1_name())
    }

    /// The option string that mounts this hierarchy again (`cpu,cpuacct`).
    pub fn options(&self) -> String {
        self.controllers.join(",")
    }
}

/// The cgroup2 mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedMount {
    pub mountpoint: PathBuf,
    pub root: String,
    /// The controllers bound to v2 (the mount root's `cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// What the host looks like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub kind: LayoutKind,
    pub v1: Vec<V1Mount>,
    pub unified: Option<UnifiedMount>,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

impl Layout {
    /// Probe the running host.
    pub fn probe() -> Result<Layout> {
        let text = fsutil::read(Path::new(MOUNTINFO))?;
        Layout::from_mountinfo(&text, |mnt| {
            let path = mnt.join("cgroup.controllers");
            fsutil::read(&path)
        })
    }

    /// Build a layout from mountinfo text; `read_controllers` returns the
    /// content of `<v2 mountpoint>/cgroup.controllers` (injected so tests run
    /// without a real cgroupfs).
    pub fn from_mountinfo(
        text: &str,
        read_controllers: impl FnOnce(&Path) -> Result<String>,
    ) -> Result<Layout> {
        let mounts = mountinfo::parse_cgroup_mounts(text).map_err(|reason| Error::Parse {
            path: PathBuf::from(MOUNTINFO),
            reason,
        })?;
        let v1 = pick_v1(&mounts);
        let unified = match pick_v2(&mounts) {
            Some(e) => {
                let controllers = read_controllers(&e.mountpoint)?;
                Some(UnifiedMount {
                    mountpoint: e.mountpoint.clone(),
                    root: e.root.clone(),
                    controllers: controllers.split_whitespace().map(str::to_string).collect(),
                })
            }
            None => None,
        };
        let has_v1_controllers = v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| !c.starts_with("name=")));
        let kind = match (has_v1_controllers, unified.is_some()) {
            (true, true) => LayoutKind::Hybrid,
            (true, false) => LayoutKind::V1,
            (false, true) => LayoutKind::V2,
            (false, false) => return Err(Error::NoCgroupFs),
        };
        // On a pure v2 host a stray named v1 hierarchy (old docker setups
        // mount name=systemd for CentOS 7 images) is not ours to manage.
        let v1 = if kind == LayoutKind::V2 {
            Vec::new()
        } else {
            v1
        };
        Ok(Layout { kind, v1, unified })
    }

    /// The v1 hierarchy that has `c`.
    pub fn v1_mount(&self, c: Controller) -> Option<&V1Mount> {
        self.v1.iter().find(|m| m.has(c))
    }

    /// Whether `c` is bound to the unified hierarchy.
    pub fn v2_has(&self, c: Controller) -> bool {
        match (&self.unified, c.v2_name()) {
            (Some(u), Some(name)) => u.controllers.iter().any(|x| x == name),
            _ => false,
        }
    }
}

/// The v1 hierarchies we manage: those with a known controller, plus
/// `name=systemd` (runc joins it too, so systemd-aware tools inside and
/// outside see the container). One entry per hierarchy: when a hierarchy is
/// mounted twice, prefer the mount that shows all of it (root `/`).
fn pick_v1(mounts: &[CgroupMountEntry]) -> Vec<V1Mount> {
    let mut out: Vec<V1Mount> = Vec::new();
    for e in mounts.iter().filter(|e| e.fstype == CgroupFsType::V1) {
        let controllers: Vec<String> = e
            .super_options
            .iter()
            .filter(|o| Controller::from_v1_name(o).is_some() || o.as_str() == "name=systemd")
            .cloned()
            .collect();
        if controllers.is_empty() {
            continue;
        }
        let m = V1Mount {
            mountpoint: e.mountpoint.clone(),
            root: e.root.clone(),
            controllers,
        };
        match out
            .iter_mut()
            .find(|o| same_set(&o.controllers, &m.controllers))
        {
            Some(existing) => {
                if existing.root != "/" && m.root == "/" {
                    *existing = m;
                }
            }
            None => out.push(m),
        }
    }
    out
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// The cgroup2 mount to use: a root-`/` mount at a standard place first.
fn pick_v2(mounts: &[CgroupMountEntry]) -> Option<&CgroupMountEntry> {
    let v2: Vec<&CgroupMountEntry> = mounts
        .iter()
        .filter(|e| e.fstype == CgroupFsType::V2)
        .collect();
    let standard = |e: &&&CgroupMountEntry| {
        e.mountpoint == Path::new("/sys/fs/cgroup")
            || e.mountpoint == Path::new("/sys/fs/cgroup/unified")
    };
    v2.iter()
        .find(|e| standard(e) && e.root == "/")
        .or_else(|| v2.iter().find(|e| e.root == "/"))
        .or_else(|| v2.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::samples;

    fn layout(text: &str, v2_controllers: &str) -> Layout {
        let c = v2_controllers.to_string();
        Layout::from_mountinfo(text, move |_| Ok(c)).unwrap()
    }

    #[test]
    fn this_machine_is_hybrid_with_hugetlb_on_v2() {
        let l = layout(samples::HYBRID, "hugetlb\n");
        assert_eq!(l.kind, LayoutKind::Hybrid);
        assert_eq!(l.v1.len(), 9);
        assert_eq!(
            l.v1_mount(Controller::Cpu).unwrap().mountpoint,
            PathBuf::from("/sys/fs/cgroup/cpu")
        );
        assert_eq!(
            l.v1_mount(Controller::Cpuacct).unwrap().mountpoint,
            PathBuf::from("/sys/fs/cgroup/cpuacct")
        );
        assert!(l.v1_mount(Controller::Hugetlb).is_none());
        assert!(l.v2_has(Controller::Hugetlb));
        assert!(!l.v2_has(Controller::Memory));
        assert!(l.v1_mount(Controller::NetCls).is_none());
        assert_eq!(
            l.unified.as_ref().unwrap().mountpoint,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn pure_v2() {
        let l = layout(
            samples::PURE_V2,
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        assert_eq!(l.kind, LayoutKind::V2);
        assert!(l.v1.is_empty());
        assert!(l.v2_has(Controller::Blkio));
        assert!(l.v2_has(Controller::Cpuacct));
        assert!(!l.v2_has(Controller::Devices));
    }

    #[test]
    fn v1_comounted() {
        let l = layout(samples::V1_COMOUNTED, "");
        assert_eq!(l.kind, LayoutKind::V1);
        let cpu = l.v1_mount(Controller::Cpu).unwrap();
        assert_eq!(cpu.options(), "cpu,cpuacct");
        assert!(std::ptr::eq(cpu, l.v1_mount(Controller::Cpuacct).unwrap()));
        assert_eq!(
            l.v1_mount(Controller::NetPrio).unwrap().options(),
            "net_cls,net_prio"
        );
        // xattr and release_agent= are not controllers.
        let sd =
            l.v1.iter()
                .find(|m| m.controllers == ["name=systemd"])
                .unwrap();
        assert_eq!(sd.mountpoint, PathBuf::from("/sys/fs/cgroup/systemd"));
        assert!(l.unified.is_none());
    }

    #[test]
    fn duplicate_mount_prefers_full_view() {
        let text = "\
1 0 0:50 /docker/abc /mnt/partial rw - cgroup cgroup rw,memory
2 0 0:50 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let l = layout(text, "");
        assert_eq!(l.v1.len(), 1);
        assert_eq!(l.v1[0].mountpoint, PathBuf::from("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn nothing_mounted_is_an_error() {
        let err =
            Layout::from_mountinfo("1 0 8:1 / / rw - ext4 /dev/sda rw\n", |_| Ok(String::new()))
                .unwrap_err();
        assert!(matches!(err, Error::NoCgroupFs));
    }

    #[test]
    fn serializes_for_state_json() {
        let l = layout(samples::HYBRID, "hugetlb\n");
        let s = serde_json::to_string(&l).unwrap();
        let back: Layout = serde_json::from_str(&s).unwrap();
        assert_eq!(back, l);
    }
}
