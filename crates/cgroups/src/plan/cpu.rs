//! linux.resources.cpu: the cpu controller (shares/weight, bandwidth,
//! realtime, idle) and the cpuset controller (cpus, mems).

use oci_spec::runtime::LinuxCpu;

use super::{Builder, Op, Version};
use crate::controller::Controller::{Cpu, Cpuset};
use crate::convert;

const F: &str = "linux.resources.cpu";

pub(super) fn cpuset(b: &mut Builder<'_>, c: &LinuxCpu) {
    for (name, val) in [("cpus", c.cpus()), ("mems", c.mems())] {
        let Some(v) = val.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        if let Some(version) = b.need(Cpuset, &format!("{F}.{name}")) {
            b.write(version, Cpuset, format!("cpuset.{name}"), v);
        }
    }
}

pub(super) fn plan(b: &mut Builder<'_>, c: &LinuxCpu) {
    let shares = c.shares().unwrap_or(0);
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    let rt_runtime = c.realtime_runtime().unwrap_or(0);
    let rt_period = c.realtime_period().unwrap_or(0);
    let set: Vec<&str> = [
        (shares != 0, "shares"),
        (quota != 0, "quota"),
        (period != 0, "period"),
        (c.burst().is_some(), "burst"),
        (rt_runtime != 0, "realtimeRuntime"),
        (rt_period != 0, "realtimePeriod"),
        // idle 0 is the default: asking for it on a host without the cpu
        // controller is not an error.
        (c.idle().is_some_and(|i| i != 0), "idle"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect();
    let Some(version) = (match set.first() {
        Some(first) => b.need(Cpu, &format!("{F}.{first}")),
        None => b.b.of(Cpu),
    }) else {
        return;
    };
    let bandwidth = quota != 0 || period != 0 || c.burst().is_some();
    match version {
        Version::V1 => {
            if shares != 0 {
                b.write(version, Cpu, "cpu.shares", shares.to_string());
            }
            if bandwidth {
                b.ops.push(Op::CpuBandwidthV1 {
                    quota,
                    period,
                    burst: c.burst(),
                });
            }
            // Period before runtime: the runtime must fit in the period.
            if rt_period != 0 {
                b.write(version, Cpu, "cpu.rt_period_us", rt_period.to_string());
            }
            if rt_runtime != 0 {
                b.write(version, Cpu, "cpu.rt_runtime_us", rt_runtime.to_string());
            }
        }
        Version::V2 => {
            if shares != 0 {
                b.write(
                    version,
                    Cpu,
                    "cpu.weight",
                    convert::cpu_shares_to_weight(shares).to_string(),
                );
            }
            if bandwidth {
                b.ops.push(Op::CpuMaxV2 {
                    quota,
                    period,
                    burst: c.burst(),
                });
            }
            for (on, name) in [
                (rt_runtime != 0, "realtimeRuntime"),
                (rt_period != 0, "realtimePeriod"),
            ] {
                if on {
                    b.not_on(
                        &format!("{F}.{name}"),
                        version,
                        "the kernel has no realtime group scheduling controls there",
                    );
                }
            }
        }
    }
    match c.idle() {
        Some(0) => b.write_if_present(version, Cpu, "cpu.idle", "0"),
        Some(i) => b.write(version, Cpu, "cpu.idle", i.to_string()),
        None => {}
    }
}
