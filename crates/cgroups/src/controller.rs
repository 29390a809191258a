//! Controller names and how they map between cgroup v1 and v2.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A cgroup controller (v1 "subsystem").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Controller {
    Cpuset,
    Cpu,
    Cpuacct,
    Memory,
    Devices,
    Freezer,
    Blkio,
    Pids,
    Hugetlb,
    NetCls,
    NetPrio,
    PerfEvent,
    Rdma,
    Misc,
}

impl Controller {
    /// Every controller, in the order runc applies v1 settings (cpuset first:
    /// a task cannot join a cpuset cgroup whose cpus/mems are empty).
    pub const ALL: [Controller; 14] = [
        Controller::Cpuset,
        Controller::Devices,
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Pids,
        Controller::Blkio,
        Controller::Hugetlb,
        Controller::NetCls,
        Controller::NetPrio,
        Controller::PerfEvent,
        Controller::Freezer,
        Controller::Rdma,
        Controller::Misc,
    ];

    /// The name in a v1 mount's options and in /proc/self/cgroup.
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Cpuset => "cpuset",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Memory => "memory",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
            Controller::Blkio => "blkio",
            Controller::Pids => "pids",
            Controller::Hugetlb => "hugetlb",
            Controller::NetCls => "net_cls",
            Controller::NetPrio => "net_prio",
            Controller::PerfEvent => "perf_event",
            Controller::Rdma => "rdma",
            Controller::Misc => "misc",
        }
    }

    /// The name in a v2 `cgroup.controllers` file. `None` for what v2 does
    /// not have as a controller: devices (an eBPF program instead), freezer
    /// (core `cgroup.freeze`), net_cls/net_prio (gone), perf_event (always
    /// on, never listed). cpuacct's accounting lives in the v2 cpu controller.
    pub fn v2_name(self) -> Option<&'static str> {
        match self {
            Controller::Cpuset => Some("cpuset"),
            Controller::Cpu | Controller::Cpuacct => Some("cpu"),
            Controller::Memory => Some("memory"),
            Controller::Blkio => Some("io"),
            Controller::Pids => Some("pids"),
            Controller::Hugetlb => Some("hugetlb"),
            Controller::Rdma => Some("rdma"),
            Controller::Misc => Some("misc"),
            Controller::Devices
            | Controller::Freezer
            | Controller::NetCls
            | Controller::NetPrio
            | Controller::PerfEvent => None,
        }
    }

    /// Parse a v1 subsystem name.
    pub fn from_v1_name(s: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.v1_name() == s)
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.v1_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Controller::ALL {
            assert_eq!(Controller::from_v1_name(c.v1_name()), Some(c));
        }
        assert_eq!(Controller::from_v1_name("name=systemd"), None);
        assert_eq!(Controller::Blkio.v2_name(), Some("io"));
        assert_eq!(Controller::Devices.v2_name(), None);
    }
}
