//! Parsing /proc/<pid>/cgroup: `ID:CONTROLLERS:PATH` per hierarchy, the v2
//! line being `0::PATH`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil;

/// One line of /proc/<pid>/cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcCgroupEntry {
    pub hierarchy_id: u32,
    /// v1 controllers or `name=...`; empty for the v2 line.
    pub controllers: Vec<String>,
    pub path: String,
}

/// A process's cgroup membership.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcCgroup {
    pub entries: Vec<ProcCgroupEntry>,
}

impl ProcCgroup {
    /// Parse the text of a /proc/<pid>/cgroup file.
    pub fn parse(text: &str) -> std::result::Result<ProcCgroup, String> {
        let mut entries = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            // The path may itself contain ':' so split at most twice.
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("malformed line {line:?}"));
            };
            let hierarchy_id = id
                .parse()
                .map_err(|_| format!("malformed hierarchy id in {line:?}"))?;
            entries.push(ProcCgroupEntry {
                hierarchy_id,
                controllers: ctrls
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            });
        }
        Ok(ProcCgroup { entries })
    }

    /// Read and parse /proc/self/cgroup.
    pub fn read_self() -> Result<ProcCgroup> {
        Self::read(Path::new("/proc/self/cgroup"))
    }

    /// Read and parse /proc/<pid>/cgroup.
    pub fn read_pid(pid: i32) -> Result<ProcCgroup> {
        Self::read(Path::new(&format!("/proc/{pid}/cgroup")))
    }

    fn read(path: &Path) -> Result<ProcCgroup> {
        let text = fsutil::read(path)?;
        Self::parse(&text).map_err(|reason| Error::Parse {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// The path in the v1 hierarchy whose controller list equals
    /// `controllers` (order-insensitive).
    pub fn v1_path(&self, controllers: &[String]) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| {
                e.hierarchy_id != 0
                    && e.controllers.len() == controllers.len()
                    && controllers.iter().all(|c| e.controllers.contains(c))
            })
            .map(|e| e.path.as_str())
    }

    /// The path in the unified (v2) hierarchy.
    pub fn v2_path(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.hierarchy_id == 0 && e.controllers.is_empty())
            .map(|e| e.path.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/434dd\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn parses_hybrid_self() {
        let p = ProcCgroup::parse(HERE).unwrap();
        assert_eq!(p.entries.len(), 6);
        assert_eq!(p.v1_path(&["memory".into()]), Some("/process_api/434dd"));
        assert_eq!(p.v1_path(&["name=systemd".into()]), Some("/"));
        assert_eq!(p.v2_path(), Some("/"));
        assert_eq!(p.v1_path(&["cpu".into(), "cpuacct".into()]), None);
    }

    #[test]
    fn comounted_and_colons_in_path() {
        let p = ProcCgroup::parse("3:cpuacct,cpu:/a:b\n").unwrap();
        assert_eq!(p.v1_path(&["cpu".into(), "cpuacct".into()]), Some("/a:b"));
        assert!(ProcCgroup::parse("garbage\n").is_err());
        assert!(ProcCgroup::parse("x:cpu:/\n").is_err());
    }
}
