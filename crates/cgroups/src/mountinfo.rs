//! Parsing /proc/self/mountinfo (cgroup and cgroup2 lines only).
//!
//! Line shape (proc(5)):
//! `ID PARENT MAJ:MIN ROOT MOUNTPOINT MOUNT_OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS`
//! ROOT matters: a cgroup mount can expose a subtree of its hierarchy (a
//! bind mount, or a container without cgroupns), and then a cgroup path like
//! `/a/b` lives at `MOUNTPOINT/<(/a/b) minus ROOT>`.

use std::path::PathBuf;

/// Which kind of cgroup filesystem a mount is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupFsType {
    V1,
    V2,
}

/// One cgroup/cgroup2 mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMountEntry {
    /// MAJ:MIN of the superblock; equal for bind mounts of one hierarchy.
    pub dev: String,
    /// Root of the mount within its hierarchy (unescaped).
    pub root: String,
    /// Where it is mounted (unescaped).
    pub mountpoint: PathBuf,
    pub fstype: CgroupFsType,
    /// Super options, e.g. `rw,cpu,cpuacct` split on commas.
    pub super_options: Vec<String>,
}

/// Undo the octal escapes the kernel applies to space, tab, newline and
/// backslash in mountinfo paths. The one unescaper of the workspace: berth-container's
/// mount listing uses it too.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if v <= 0xff {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse the cgroup/cgroup2 lines of a mountinfo text, in file order.
/// Lines that are not cgroup mounts are skipped without being split, which
/// keeps this cheap on hosts with hundreds of mounts.
pub fn parse_cgroup_mounts(text: &str) -> Result<Vec<CgroupMountEntry>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        // Cheap pre-filter: the fstype follows " - ".
        let Some(sep) = line.find(" - cgroup") else {
            continue;
        };
        let (head, tail) = (&line[..sep], &line[sep + 3..]);
        let mut t = tail.split(' ');
        let fstype = match t.next() {
            Some("cgroup") => CgroupFsType::V1,
            Some("cgroup2") => CgroupFsType::V2,
            _ => continue,
        };
        let _source = t.next();
        let super_opts = t.next().unwrap_or("");
        let mut h = head.split(' ');
        let (_id, _parent, dev, root, mountpoint) =
            match (h.next(), h.next(), h.next(), h.next(), h.next()) {
                (Some(a), Some(b), Some(c), Some(d), Some(e)) => (a, b, c, d, e),
                _ => return Err(format!("malformed mountinfo line: {line:?}")),
            };
        out.push(CgroupMountEntry {
            dev: dev.to_string(),
            root: unescape(root),
            mountpoint: PathBuf::from(unescape(mountpoint)),
            fstype,
            super_options: super_opts
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod samples {
    /// This machine: hybrid, cpu and cpuacct mounted separately, cgroup2 at
    /// /sys/fs/cgroup/unified.
    pub const HYBRID: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd host in unified mode.
    pub const PURE_V2: &str = "\
21 26 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
30 21 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
31 21 0:27 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw
";

    /// A classic v1 host (Debian 10 / CentOS 7 style): cpu,cpuacct and
    /// net_cls,net_prio co-mounted, systemd's named hierarchy, no cgroup2.
    pub const V1_COMOUNTED: &str = "\
18 23 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
23 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:3 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:4 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,cpu,cpuacct
29 24 0:25 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,net_cls,net_prio
30 24 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
31 24 0:27 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpuset
32 24 0:28 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,devices
33 24 0:29 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,freezer
34 24 0:30 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,blkio
35 24 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
36 24 0:32 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,hugetlb
37 24 0:33 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,perf_event
";

    /// Inside a docker container without cgroupns on a v1 host: the
    /// container sees its own subtree mounted with a non-/ root.
    pub const V1_IN_CONTAINER: &str = "\
600 590 0:50 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:10 - cgroup cgroup rw,memory
601 590 0:51 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:8 - cgroup cgroup rw,cpu,cpuacct
";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_sample() {
        let m = parse_cgroup_mounts(samples::HYBRID).unwrap();
        assert_eq!(m.len(), 10);
        assert_eq!(m[0].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m[0].super_options, vec!["rw", "cpu"]);
        assert_eq!(m[8].super_options, vec!["rw", "name=systemd"]);
        assert_eq!(m[9].fstype, CgroupFsType::V2);
        assert_eq!(m[9].mountpoint, PathBuf::from("/sys/fs/cgroup/unified"));
        assert!(m.iter().all(|e| e.root == "/"));
    }

    #[test]
    fn v2_sample_with_optional_fields() {
        let m = parse_cgroup_mounts(samples::PURE_V2).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].fstype, CgroupFsType::V2);
        assert_eq!(m[0].dev, "0:26");
        assert_eq!(
            m[0].super_options,
            vec!["rw", "nsdelegate", "memory_recursiveprot"]
        );
    }

    #[test]
    fn v1_comounted_sample() {
        let m = parse_cgroup_mounts(samples::V1_COMOUNTED).unwrap();
        assert_eq!(m.len(), 11);
        assert_eq!(m[1].mountpoint, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[1].super_options, vec!["rw", "cpu", "cpuacct"]);
        assert!(m[0].super_options.contains(&"name=systemd".to_string()));
    }

    #[test]
    fn root_field_and_escapes() {
        let m = parse_cgroup_mounts(samples::V1_IN_CONTAINER).unwrap();
        assert_eq!(m[0].root, "/docker/abc");
        let line = "40 31 0:37 /a\\040b /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let m = parse_cgroup_mounts(line).unwrap();
        assert_eq!(m[0].root, "/a b");
        assert_eq!(m[0].mountpoint, PathBuf::from("/mnt/my cg"));
        assert_eq!(unescape("back\\134slash"), "back\\slash");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn malformed_cgroup_line_is_an_error() {
        assert!(parse_cgroup_mounts("1 2 - cgroup2 cgroup2 rw\n").is_err());
    }
}
