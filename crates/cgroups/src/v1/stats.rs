//! Statistics from v1 hierarchies.

use std::path::Path;

use super::V1Cgroup;
use crate::controller::Controller;
use crate::error::Result;
use crate::fsutil;
use crate::host;
use crate::stats::{
    Hugetlb, MemoryEntry, Stats, parse_blkio_recursive, parse_flat_keyed, parse_u64_list,
};

pub(super) fn collect(cg: &V1Cgroup, s: &mut Stats) -> Result<()> {
    if let Some(d) = cg.dir(Controller::Cpuacct) {
        cpuacct(d, s)?;
    }
    if let Some(d) = cg.dir(Controller::Cpu)
        && let Some(text) = fsutil::read_opt(d, "cpu.stat")?
    {
        let m = parse_flat_keyed(&text);
        s.cpu.throttling.periods = m.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = m.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = cg.dir(Controller::Memory) {
        memory(d, s)?;
    }
    if let Some(d) = cg.dir(Controller::Pids) {
        crate::stats::read_pids(d, s)?;
    }
    if let Some(d) = cg.dir(Controller::Blkio) {
        blkio(d, s)?;
    }
    if let Some(d) = cg.dir(Controller::Hugetlb) {
        for size in host::hugepage_sizes()? {
            let f = |n: &str| format!("hugetlb.{size}.{n}");
            let h = Hugetlb {
                usage: fsutil::read_u64_opt(d, &f("usage_in_bytes"))?.unwrap_or(0),
                max: fsutil::read_u64_opt(d, &f("max_usage_in_bytes"))?.unwrap_or(0),
                failcnt: fsutil::read_u64_opt(d, &f("failcnt"))?.unwrap_or(0),
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(())
}

fn cpuacct(d: &Path, s: &mut Stats) -> Result<()> {
    let u = &mut s.cpu.usage;
    u.total = fsutil::read_u64(d, "cpuacct.usage")?;
    u.percpu = parse_u64_list(&fsutil::read_in(d, "cpuacct.usage_percpu")?);
    if let Some(t) = fsutil::read_opt(d, "cpuacct.usage_percpu_sys")? {
        u.percpu_kernel = parse_u64_list(&t);
    }
    if let Some(t) = fsutil::read_opt(d, "cpuacct.usage_percpu_user")? {
        u.percpu_user = parse_u64_list(&t);
    }
    // cpuacct.stat is in USER_HZ ticks.
    let m = parse_flat_keyed(&fsutil::read_in(d, "cpuacct.stat")?);
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000) / hz;
    u.user = ns(m.get("user").copied().unwrap_or(0));
    u.kernel = ns(m.get("system").copied().unwrap_or(0));
    Ok(())
}

/// usage/max/failcnt/limit for one of memory., memory.memsw.,
/// memory.kmem., memory.kmem.tcp.; absent files (no swap accounting, no
/// kmem) read as zero.
fn entry(d: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |n: &str| fsutil::read_u64_opt(d, &format!("{prefix}{n}"));
    Ok(MemoryEntry {
        limit: f("limit_in_bytes")?.unwrap_or(0),
        usage: f("usage_in_bytes")?.unwrap_or(0),
        max: f("max_usage_in_bytes")?.unwrap_or(0),
        failcnt: f("failcnt")?.unwrap_or(0),
    })
}

fn memory(d: &Path, s: &mut Stats) -> Result<()> {
    let m = &mut s.memory;
    m.raw = parse_flat_keyed(&fsutil::read_in(d, "memory.stat")?);
    m.cache = m.raw.get("cache").copied().unwrap_or(0);
    m.usage = entry(d, "memory.")?;
    m.swap = entry(d, "memory.memsw.")?;
    m.kernel = entry(d, "memory.kmem.")?;
    m.kernel_tcp = entry(d, "memory.kmem.tcp.")?;
    Ok(())
}

/// CFQ's files if present, else BFQ's, else the throttle layer's (which
/// counts I/O of every device); the first that has entries wins.
fn blkio(d: &Path, s: &mut Stats) -> Result<()> {
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let Some(bytes) = fsutil::read_opt(d, &format!("{prefix}io_service_bytes_recursive"))?
        else {
            continue;
        };
        let bytes = parse_blkio_recursive(&bytes);
        if bytes.is_empty() && prefix != "blkio.throttle." {
            continue;
        }
        let ios =
            fsutil::read_opt(d, &format!("{prefix}io_serviced_recursive"))?.unwrap_or_default();
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = parse_blkio_recursive(&ios);
        break;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::V1Dir;

    #[test]
    fn collects_v1_files_in_runc_shape() {
        let d = std::env::temp_dir().join(format!("berth-cg-v1stats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("cpuacct.usage", "3000\n"),
            ("cpuacct.usage_percpu", "1000 2000 \n"),
            ("cpuacct.usage_percpu_user", "600 1200 \n"),
            ("cpuacct.stat", "user 3\nsystem 1\n"),
            (
                "cpu.stat",
                "nr_periods 5\nnr_throttled 2\nthrottled_time 777\n",
            ),
            ("memory.stat", "cache 512\nrss 1024\n"),
            ("memory.usage_in_bytes", "2048\n"),
            ("memory.max_usage_in_bytes", "4096\n"),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.failcnt", "0\n"),
            ("memory.memsw.usage_in_bytes", "2100\n"),
            ("pids.current", "2\n"),
            ("pids.max", "10\n"),
            ("blkio.bfq.io_service_bytes_recursive", "Total 0\n"),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "254:0 Read 4096\n254:0 Write 0\nTotal 4096\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "254:0 Read 1\nTotal 1\n",
            ),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let cg = V1Cgroup {
            hierarchies: vec![V1Dir {
                mountpoint: d.clone(),
                controllers: ["cpu", "cpuacct", "memory", "pids", "blkio"]
                    .map(String::from)
                    .to_vec(),
                cgroup_path: "/x".into(),
                dir: d.clone(),
            }],
        };
        let mut s = Stats::default();
        collect(&cg, &mut s).unwrap();
        let hz = rustix::param::clock_ticks_per_second();
        assert_eq!(s.cpu.usage.total, 3000);
        assert_eq!(s.cpu.usage.percpu, [1000, 2000]);
        assert_eq!(s.cpu.usage.percpu_user, [600, 1200]);
        assert!(s.cpu.usage.percpu_kernel.is_empty());
        assert_eq!(s.cpu.usage.user, 3 * 1_000_000_000 / hz);
        assert_eq!(s.cpu.throttling.throttled_time, 777);
        assert_eq!(
            (s.memory.cache, s.memory.usage.usage, s.memory.usage.max),
            (512, 2048, 4096)
        );
        assert_eq!(s.memory.swap.usage, 2100);
        assert_eq!(s.memory.kernel, Default::default());
        assert_eq!((s.pids.current, s.pids.limit), (2, 10));
        // BFQ's file had no entries: the throttle layer's counts are used.
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.blkio.io_serviced_recursive[0].value, 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
