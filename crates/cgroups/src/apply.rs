//! Executing plan steps against a cgroup directory. The ordering rules the
//! kernel imposes between related files live here, everything else is one
//! write per step.

use std::io;
use std::path::Path;

use crate::controller::Controller;
use crate::devices;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::plan::{Op, Version};

fn is_errno(e: &Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

/// Run one step in `dir` (the directory of the hierarchy the step's
/// controller is bound to).
pub(crate) fn run(op: &Op, dir: &Path) -> Result<()> {
    match op {
        Op::Write {
            controller,
            file,
            value,
            ..
        } => fsutil::write(controller.v1_name(), dir, file, value),
        Op::WriteIfPresent {
            controller,
            file,
            value,
            ..
        } => match fsutil::write_io(&dir.join(file), value) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Write {
                controller: controller.v1_name(),
                path: dir.join(file),
                value: value.clone(),
                source,
            }),
            Ok(()) => Ok(()),
        },
        Op::MemoryV1 { limit, swap } => memory_v1(dir, *limit, *swap),
        Op::CheckMemoryUsage { version, limit } => {
            let file = match version {
                Version::V1 => "memory.usage_in_bytes",
                Version::V2 => "memory.current",
            };
            let usage = fsutil::read_u64(dir, file)?;
            if *limit > 0 && usage > *limit as u64 {
                return Err(Error::MemoryBelowUsage {
                    path: dir.to_path_buf(),
                    limit: *limit,
                    usage,
                });
            }
            Ok(())
        }
        Op::CpuBandwidthV1 {
            quota,
            period,
            burst,
        } => cpu_bandwidth_v1(dir, *quota, *period, *burst),
        Op::CpuMaxV2 {
            quota,
            period,
            burst,
        } => cpu_max_v2(dir, *quota, *period, *burst),
        Op::BlkioWeightV1 { weight, devices } => blkio_weight_v1(dir, *weight, devices),
        Op::IoWeightV2 { weight, devices } => io_weight_v2(dir, *weight, devices),
        Op::Devices {
            version,
            state,
            rules,
        } => match version {
            Version::V1 => devices::v1::apply(dir, state, rules),
            Version::V2 => devices::v2::apply(dir, state),
        },
        Op::Unified { file, value } => {
            // Multi-line values (io.max for several devices) are one
            // setting per line; the kernel parses each write alone.
            let ctl = controller_of_key(file);
            let lines: Vec<&str> = value.lines().filter(|l| !l.is_empty()).collect();
            if lines.is_empty() {
                return fsutil::write(ctl, dir, file, value);
            }
            for l in lines {
                fsutil::write(ctl, dir, file, l)?;
            }
            Ok(())
        }
    }
}

/// The controller name for errors about a unified key (`memory.high` ->
/// "memory"); unknown prefixes are reported as "unified".
fn controller_of_key(key: &str) -> &'static str {
    let prefix = key.split('.').next().unwrap_or("");
    Controller::ALL
        .into_iter()
        .find_map(|c| (c.v2_name() == Some(prefix)).then(|| c.v2_name().unwrap_or("unified")))
        .unwrap_or(if prefix == "cgroup" {
            "cgroup"
        } else {
            "unified"
        })
}

const MEM_LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

/// The kernel requires memory.limit <= memory.memsw.limit at every
/// moment, so the order of the two writes depends on where we come from:
/// when the new memsw is above the current limit it goes first (growing),
/// otherwise the limit goes first (shrinking).
fn memory_v1(dir: &Path, limit: i64, swap: i64) -> Result<()> {
    let mut swap = swap;
    // Unlimited memory with swap unset means unlimited swap too, when the
    // kernel accounts swap at all.
    if limit == -1 && swap == 0 && dir.join(MEMSW_LIMIT).exists() {
        swap = -1;
    }
    if limit != 0 && swap != 0 {
        let current = fsutil::read_u64(dir, MEM_LIMIT)?;
        if swap == -1 || current < swap as u64 {
            fsutil::write("memory", dir, MEMSW_LIMIT, &swap.to_string())?;
            return write_limit_v1(dir, limit);
        }
    }
    if limit != 0 {
        write_limit_v1(dir, limit)?;
    }
    if swap != 0 {
        fsutil::write("memory", dir, MEMSW_LIMIT, &swap.to_string())?;
    }
    Ok(())
}

/// memory.limit_in_bytes, turning the kernel's two refusals into errors
/// that say what to do (read only after a failure, so the common path is
/// one write).
fn write_limit_v1(dir: &Path, limit: i64) -> Result<()> {
    let e = match fsutil::write("memory", dir, MEM_LIMIT, &limit.to_string()) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if is_errno(&e, libc::EBUSY) {
        return Err(Error::MemoryLimitTooLow {
            path: dir.to_path_buf(),
            limit,
            usage: fsutil::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0),
            peak: fsutil::read_u64(dir, "memory.max_usage_in_bytes").unwrap_or(0),
        });
    }
    if is_errno(&e, libc::EINVAL)
        && limit > 0
        && let Ok(Some(memsw)) = fsutil::read_u64_opt(dir, MEMSW_LIMIT)
        && (limit as u64) > memsw
    {
        return Err(Error::MemoryAboveMemsw {
            path: dir.to_path_buf(),
            limit,
            memsw,
        });
    }
    Err(e)
}

/// Write the burst knob; a missing file is fine for burst 0 (the default on
/// kernels without the feature) and an error otherwise.
fn write_burst(dir: &Path, file: &str, burst: u64) -> Result<()> {
    match fsutil::write("cpu", dir, file, &burst.to_string()) {
        Err(e) if burst == 0 && is_errno(&e, libc::ENOENT) => Ok(()),
        r => r,
    }
}

/// cfs period/quota/burst. Changing the period alone can be refused
/// (EINVAL) while the old quota/new period ratio exceeds the parent's; a
/// smaller quota can be refused while the old burst exceeds it. Each such
/// write is retried after the other one, as runc does.
fn cpu_bandwidth_v1(dir: &Path, quota: i64, period: u64, burst: Option<u64>) -> Result<()> {
    let mut period_pending = false;
    if period != 0 {
        match fsutil::write("cpu", dir, "cpu.cfs_period_us", &period.to_string()) {
            Err(e) if quota != 0 && is_errno(&e, libc::EINVAL) => period_pending = true,
            r => r?,
        }
    }
    let mut burst_pending = burst;
    if quota != 0 {
        match fsutil::write("cpu", dir, "cpu.cfs_quota_us", &quota.to_string()) {
            Err(e) if burst.is_some() && is_errno(&e, libc::EINVAL) => {
                if let Some(b) = burst {
                    write_burst(dir, "cpu.cfs_burst_us", b)?;
                }
                burst_pending = None;
                fsutil::write("cpu", dir, "cpu.cfs_quota_us", &quota.to_string())?;
            }
            r => r?,
        }
    }
    if period_pending {
        fsutil::write("cpu", dir, "cpu.cfs_period_us", &period.to_string())?;
    }
    if let Some(b) = burst_pending {
        write_burst(dir, "cpu.cfs_burst_us", b)?;
    }
    Ok(())
}

/// cpu.max takes "QUOTA PERIOD" in one write; a half left unset (0) keeps
/// its current value, read from the file (runc would reset the quota to
/// "max" when only the period changes).
fn cpu_max_v2(dir: &Path, quota: i64, period: u64, burst: Option<u64>) -> Result<()> {
    if quota != 0 || period != 0 {
        let (cur_quota, cur_period) = if quota == 0 || period == 0 {
            let s = fsutil::read_in(dir, "cpu.max")?;
            let mut f = s.split_whitespace();
            (
                f.next().unwrap_or("max").to_string(),
                f.next().unwrap_or("100000").to_string(),
            )
        } else {
            (String::new(), String::new())
        };
        let q = match quota {
            0 => cur_quota,
            q if q < 0 => "max".to_string(),
            q => q.to_string(),
        };
        let p = if period == 0 {
            cur_period
        } else {
            period.to_string()
        };
        let value = format!("{q} {p}");
        match fsutil::write("cpu", dir, "cpu.max", &value) {
            Err(e) if burst.is_some() && is_errno(&e, libc::EINVAL) => {
                if let Some(b) = burst {
                    write_burst(dir, "cpu.max.burst", b)?;
                }
                return fsutil::write("cpu", dir, "cpu.max", &value);
            }
            r => r?,
        }
    }
    if let Some(b) = burst {
        write_burst(dir, "cpu.max.burst", b)?;
    }
    Ok(())
}

/// blkio.weight exists with CFQ (gone since 5.0), blkio.bfq.weight with
/// BFQ; both take 10..=1000.
fn blkio_weight_v1(dir: &Path, weight: u16, devices: &[(i64, i64, u16)]) -> Result<()> {
    let (w, wd) = if dir.join("blkio.weight").exists() {
        ("blkio.weight", "blkio.weight_device")
    } else if dir.join("blkio.bfq.weight").exists() {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        return Err(Error::Unsupported {
            what: "linux.resources.blockIO.weight".into(),
            reason: format!(
                "{} has neither blkio.weight (CFQ) nor blkio.bfq.weight (BFQ); no proportional I/O scheduler is available",
                dir.display()
            ),
        });
    };
    if weight != 0 {
        fsutil::write("blkio", dir, w, &weight.to_string())?;
    }
    for (ma, mi, dw) in devices {
        fsutil::write("blkio", dir, wd, &format!("{ma}:{mi} {dw}"))?;
    }
    Ok(())
}

/// io.bfq.weight takes the blkio range as is; io.weight (io.cost) needs the
/// conversion to 1..=10000.
fn io_weight_v2(dir: &Path, weight: u16, devices: &[(i64, i64, u16)]) -> Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    let (file, conv): (&str, fn(u16) -> u64) = if bfq {
        ("io.bfq.weight", u64::from)
    } else {
        ("io.weight", crate::convert::blkio_weight_to_io_weight)
    };
    if weight != 0 {
        fsutil::write("io", dir, file, &conv(weight).to_string())?;
    }
    for (ma, mi, dw) in devices {
        fsutil::write("io", dir, file, &format!("{ma}:{mi} {}", conv(*dw)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch dir with fake control files; regular files accept any
    /// write, which is enough to check ordering and values.
    struct Scratch(std::path::PathBuf);
    impl Scratch {
        fn new(tag: &str, files: &[(&str, &str)]) -> Scratch {
            let d =
                std::env::temp_dir().join(format!("berth-cg-apply-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            for (f, v) in files {
                std::fs::write(d.join(f), v).unwrap();
            }
            Scratch(d)
        }
        fn get(&self, f: &str) -> String {
            std::fs::read_to_string(self.0.join(f)).unwrap()
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn cpu_max_keeps_the_unset_half() {
        let s = Scratch::new(
            "cpumax",
            &[("cpu.max", "50000 100000\n"), ("cpu.max.burst", "0")],
        );
        cpu_max_v2(&s.0, 0, 200000, None).unwrap();
        assert_eq!(s.get("cpu.max"), "50000 200000");
        cpu_max_v2(&s.0, -1, 0, Some(0)).unwrap();
        assert_eq!(s.get("cpu.max"), "max 200000");
        cpu_max_v2(&s.0, 20000, 100000, Some(5000)).unwrap();
        assert_eq!(s.get("cpu.max"), "20000 100000");
        assert_eq!(s.get("cpu.max.burst"), "5000");
    }

    #[test]
    fn burst_zero_without_the_knob_is_fine() {
        let s = Scratch::new(
            "burst",
            &[("cpu.cfs_quota_us", ""), ("cpu.cfs_period_us", "")],
        );
        cpu_bandwidth_v1(&s.0, 50000, 100000, Some(0)).unwrap();
        assert_eq!(s.get("cpu.cfs_quota_us"), "50000");
        let e = cpu_bandwidth_v1(&s.0, 50000, 100000, Some(10)).unwrap_err();
        assert!(e.to_string().contains("cpu.cfs_burst_us"), "{e}");
    }

    #[test]
    fn memory_v1_growing_writes_memsw_first() {
        // Current limit 100 < new memsw 300: memsw first. With plain files
        // the final content shows both were written.
        let s = Scratch::new("mem", &[(MEM_LIMIT, "100\n"), (MEMSW_LIMIT, "100\n")]);
        memory_v1(&s.0, 200, 300).unwrap();
        assert_eq!(
            (s.get(MEM_LIMIT).as_str(), s.get(MEMSW_LIMIT).as_str()),
            ("200", "300")
        );
        // limit -1, swap unset: swap follows to -1.
        memory_v1(&s.0, -1, 0).unwrap();
        assert_eq!(
            (s.get(MEM_LIMIT).as_str(), s.get(MEMSW_LIMIT).as_str()),
            ("-1", "-1")
        );
    }

    #[test]
    fn io_weight_picks_the_scheduler_file() {
        let s = Scratch::new("iow", &[("io.weight", "default 100\n")]);
        io_weight_v2(&s.0, 500, &[]).unwrap();
        assert_eq!(s.get("io.weight"), "4950");
        let s = Scratch::new("iobfq", &[("io.bfq.weight", "default 100\n")]);
        io_weight_v2(&s.0, 500, &[(8, 0, 300)]).unwrap();
        assert_eq!(s.get("io.bfq.weight"), "8:0 300");
        let s = Scratch::new("blkio", &[]);
        let e = blkio_weight_v1(&s.0, 500, &[]).unwrap_err();
        assert!(e.to_string().contains("blkio.bfq.weight"), "{e}");
    }

    #[test]
    fn unified_multiline_and_controller_names() {
        assert_eq!(controller_of_key("memory.high"), "memory");
        assert_eq!(controller_of_key("io.max"), "io");
        assert_eq!(controller_of_key("cgroup.max.depth"), "cgroup");
        assert_eq!(controller_of_key("foo.bar"), "unified");
        let s = Scratch::new("unified", &[("io.max", "")]);
        run(
            &Op::Unified {
                file: "io.max".into(),
                value: "8:0 rbps=1\n8:16 wbps=2\n".into(),
            },
            &s.0,
        )
        .unwrap();
        // Each line was its own write; the last one is what a file keeps.
        assert_eq!(s.get("io.max"), "8:16 wbps=2");
    }
}
