//! Facts about the host that validation checks values against. Each is read
//! only when the resources being validated need it.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cpulist::IdList;
use crate::error::{Error, Result};
use crate::fsutil;

/// Host facts. A `None` field was not probed and is not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// /sys/devices/system/cpu/online.
    pub online_cpus: Option<IdList>,
    /// /sys/devices/system/node/online (`0` on kernels without NUMA).
    pub online_mems: Option<IdList>,
    /// Huge page sizes in the cgroup file-name form (`2MB`, `1GB`).
    pub hugepage_sizes: Option<Vec<String>>,
}

impl HostInfo {
    /// Read what validating `res` needs, and nothing else.
    pub fn probe_for(res: &LinuxResources) -> Result<HostInfo> {
        let mut h = HostInfo::default();
        if let Some(cpu) = res.cpu() {
            if cpu.cpus().as_deref().is_some_and(|s| !s.is_empty()) {
                h.online_cpus = Some(read_list(Path::new("/sys/devices/system/cpu/online"))?);
            }
            if cpu.mems().as_deref().is_some_and(|s| !s.is_empty()) {
                let p = Path::new("/sys/devices/system/node/online");
                h.online_mems = Some(match fsutil::read_io(p) {
                    Ok(s) => parse_list(p, &s)?,
                    // No NUMA support compiled in: there is one node, 0.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        IdList::parse("0").unwrap_or_default()
                    }
                    Err(source) => {
                        return Err(Error::Read {
                            path: p.into(),
                            source,
                        });
                    }
                });
            }
        }
        if res
            .hugepage_limits()
            .as_ref()
            .is_some_and(|l| !l.is_empty())
        {
            h.hugepage_sizes = Some(hugepage_sizes()?);
        }
        Ok(h)
    }
}

fn read_list(p: &Path) -> Result<IdList> {
    let s = fsutil::read(p)?;
    parse_list(p, &s)
}

fn parse_list(p: &Path, s: &str) -> Result<IdList> {
    IdList::parse(s).map_err(|reason| Error::Parse {
        path: p.into(),
        reason,
    })
}

/// Huge page sizes from /sys/kernel/mm/hugepages (`hugepages-2048kB` ->
/// `2MB`).
pub fn hugepage_sizes() -> Result<Vec<String>> {
    let dir = Path::new("/sys/kernel/mm/hugepages");
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.into(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| Error::Read {
            path: dir.into(),
            source,
        })?;
        if let Some(s) = e.file_name().to_str().and_then(sysfs_name_to_pagesize) {
            out.push(s);
        }
    }
    out.sort();
    Ok(out)
}

/// `hugepages-2048kB` -> `2MB`, the unit naming the hugetlb controller uses
/// in its file names.
pub(crate) fn sysfs_name_to_pagesize(name: &str) -> Option<String> {
    let kb: u64 = name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(if kb.is_multiple_of(1024 * 1024) {
        format!("{}GB", kb / (1024 * 1024))
    } else if kb.is_multiple_of(1024) {
        format!("{}MB", kb / 1024)
    } else {
        format!("{kb}KB")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagesize_names() {
        assert_eq!(
            sysfs_name_to_pagesize("hugepages-2048kB").as_deref(),
            Some("2MB")
        );
        assert_eq!(
            sysfs_name_to_pagesize("hugepages-1048576kB").as_deref(),
            Some("1GB")
        );
        assert_eq!(
            sysfs_name_to_pagesize("hugepages-64kB").as_deref(),
            Some("64KB")
        );
        assert_eq!(sysfs_name_to_pagesize("nr_hugepages"), None);
    }

    #[test]
    fn probes_only_what_is_needed() {
        let empty = LinuxResources::default();
        assert_eq!(HostInfo::probe_for(&empty).unwrap(), HostInfo::default());
        let res: LinuxResources = serde_json::from_str(r#"{"cpu":{"cpus":"0"}}"#).unwrap();
        let h = HostInfo::probe_for(&res).unwrap();
        assert!(h.online_cpus.as_ref().unwrap().contains(0));
        assert!(h.online_mems.is_none() && h.hugepage_sizes.is_none());
    }
}
