//! Statistics from a v2 directory. `bound` says which controllers to read
//! here (all of the available ones on a pure v2 host, only the v2-bound
//! ones on a hybrid host, whose v1 half reports the rest).

use std::path::Path;

use super::V2Cgroup;
use crate::controller::Controller;
use crate::error::Result;
use crate::fsutil;
use crate::host;
use crate::stats::{Hugetlb, MemoryEntry, Stats, parse_flat_keyed, parse_io_stat, parse_psi};

pub(crate) fn collect(
    cg: &V2Cgroup,
    s: &mut Stats,
    bound: impl Fn(Controller) -> bool,
) -> Result<()> {
    let d = cg.dir.as_path();
    // cpu.stat's usage lines exist without the cpu controller (the
    // throttling lines need it).
    if (bound(Controller::Cpu) || cg.delegate_all)
        && let Some(t) = fsutil::read_opt(d, "cpu.stat")?
    {
        let m = parse_flat_keyed(&t);
        let us = |k: &str| m.get(k).copied().unwrap_or(0).saturating_mul(1000);
        s.cpu.usage.total = us("usage_usec");
        s.cpu.usage.user = us("user_usec");
        s.cpu.usage.kernel = us("system_usec");
        s.cpu.throttling.periods = m.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = m.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = us("throttled_usec");
    }
    if bound(Controller::Memory) {
        memory(d, s)?;
    }
    if bound(Controller::Pids) && fsutil::read_opt(d, "pids.current")?.is_some() {
        crate::stats::read_pids(d, s)?;
    }
    if bound(Controller::Blkio)
        && let Some(t) = fsutil::read_opt(d, "io.stat")?
    {
        let b = parse_io_stat(&t);
        s.blkio.io_service_bytes_recursive = b.io_service_bytes_recursive;
        s.blkio.io_serviced_recursive = b.io_serviced_recursive;
    }
    if bound(Controller::Hugetlb) {
        for size in host::hugepage_sizes()? {
            let Some(usage) = fsutil::read_u64_opt(d, &format!("hugetlb.{size}.current"))? else {
                continue; // controller not delegated to this cgroup
            };
            let events =
                fsutil::read_opt(d, &format!("hugetlb.{size}.events"))?.unwrap_or_default();
            let failcnt = parse_flat_keyed(&events).get("max").copied().unwrap_or(0);
            s.hugetlb.insert(
                size,
                Hugetlb {
                    usage,
                    max: 0,
                    failcnt,
                },
            );
        }
    }
    // Pressure files are core cgroup2 files (with PSI enabled), so even
    // the v2 half of a hybrid host has them.
    s.cpu.psi = fsutil::read_opt(d, "cpu.pressure")?
        .as_deref()
        .and_then(parse_psi);
    s.memory.psi = fsutil::read_opt(d, "memory.pressure")?
        .as_deref()
        .and_then(parse_psi);
    s.blkio.psi = fsutil::read_opt(d, "io.pressure")?
        .as_deref()
        .and_then(parse_psi);
    Ok(())
}

fn memory(d: &Path, s: &mut Stats) -> Result<()> {
    let Some(current) = fsutil::read_u64_opt(d, "memory.current")? else {
        return Ok(()); // controller not delegated here
    };
    let m = &mut s.memory;
    m.raw = parse_flat_keyed(&fsutil::read_in(d, "memory.stat")?);
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    m.events = parse_flat_keyed(&fsutil::read_opt(d, "memory.events")?.unwrap_or_default());
    let limit = fsutil::read_u64(d, "memory.max")?;
    m.usage = MemoryEntry {
        limit,
        usage: current,
        max: fsutil::read_u64_opt(d, "memory.peak")?.unwrap_or(0),
        failcnt: m.events.get("max").copied().unwrap_or(0),
    };
    // v1 reports memory+swap; so does runc on v2, by adding the two.
    if let Some(swap) = fsutil::read_u64_opt(d, "memory.swap.current")? {
        let swap_max = fsutil::read_u64(d, "memory.swap.max")?;
        let swap_events =
            parse_flat_keyed(&fsutil::read_opt(d, "memory.swap.events")?.unwrap_or_default());
        m.swap = MemoryEntry {
            limit: if swap_max == u64::MAX || limit == u64::MAX {
                u64::MAX
            } else {
                swap_max + limit
            },
            usage: swap + current,
            max: 0,
            failcnt: swap_events.get("fail").copied().unwrap_or(0),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-cg-v2stats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in files {
            std::fs::write(d.join(f), v).unwrap();
        }
        d
    }

    #[test]
    fn collects_v2_files_in_runc_shape() {
        let d = scratch(&[
            (
                "cpu.stat",
                "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 42\n",
            ),
            ("memory.current", "4096\n"),
            ("memory.max", "8192\n"),
            ("memory.peak", "6000\n"),
            ("memory.stat", "anon 1024\nfile 2048\n"),
            ("memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n"),
            ("memory.swap.current", "100\n"),
            ("memory.swap.max", "max\n"),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2\n"),
            (
                "memory.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
            ),
        ]);
        let cg = V2Cgroup {
            mountpoint: d.clone(),
            cgroup_path: "/x".into(),
            dir: d.clone(),
            available: vec!["cpu".into(), "memory".into(), "pids".into(), "io".into()],
            delegate_all: true,
        };
        let mut s = Stats::default();
        collect(&cg, &mut s, |c| cg.has(c)).unwrap();
        assert_eq!(
            (s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel),
            (1_500_000, 1_000_000, 500_000)
        );
        assert_eq!(s.cpu.throttling.throttled_periods, 3);
        assert_eq!(s.cpu.throttling.throttled_time, 42_000);
        assert_eq!(
            (
                s.memory.usage.usage,
                s.memory.usage.limit,
                s.memory.usage.max
            ),
            (4096, 8192, 6000)
        );
        assert_eq!(s.memory.usage.failcnt, 7);
        assert_eq!(s.memory.cache, 2048);
        assert_eq!(s.memory.events["oom_kill"], 1);
        // memory+swap like v1: usage summed, unlimited swap stays unlimited.
        assert_eq!((s.memory.swap.usage, s.memory.swap.limit), (4196, u64::MAX));
        assert_eq!((s.pids.current, s.pids.limit), (3, 0));
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(s.memory.psi.as_ref().unwrap().some.total, 5);
        assert!(s.cpu.psi.is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
