//! linux.resources.memory.

use oci_spec::runtime::LinuxMemory;

use super::{Builder, Op, Version};
use crate::controller::Controller::Memory;
use crate::convert;
use crate::error::ResourceError;
use crate::validate::Mode;

const F: &str = "linux.resources.memory";

fn v2_num(v: i64) -> String {
    if v == -1 { "max".into() } else { v.to_string() }
}

pub(super) fn plan(b: &mut Builder<'_>, m: &LinuxMemory) {
    let limit = m.limit().unwrap_or(0);
    let kernel_tcp = m.kernel_tcp().unwrap_or(0);
    let reservation = m.reservation().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    let oom_off = m.disable_oom_killer() == Some(true);
    // Which set fields need the controller; the first one names the error.
    let set: Vec<&str> = [
        (limit != 0, "limit"),
        (reservation != 0, "reservation"),
        (swap != 0, "swap"),
        (m.swappiness().is_some(), "swappiness"),
        (oom_off, "disableOOMKiller"),
        (kernel_tcp != 0, "kernelTCP"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect();
    let Some(&first) = set.first() else {
        return;
    };
    let Some(version) = b.need(Memory, &format!("{F}.{first}")) else {
        return;
    };
    if b.mode == Mode::Update && m.check_before_update() == Some(true) && limit > 0 {
        b.ops.push(Op::CheckMemoryUsage { version, limit });
    }
    match version {
        Version::V1 => {
            if limit != 0 || swap != 0 {
                b.ops.push(Op::MemoryV1 { limit, swap });
            }
            if reservation != 0 {
                b.write(
                    version,
                    Memory,
                    "memory.soft_limit_in_bytes",
                    reservation.to_string(),
                );
            }
            if let Some(s) = m.swappiness() {
                b.write(version, Memory, "memory.swappiness", s.to_string());
            }
            if oom_off {
                b.write(version, Memory, "memory.oom_control", "1");
            }
            if kernel_tcp != 0 {
                b.write(
                    version,
                    Memory,
                    "memory.kmem.tcp.limit_in_bytes",
                    kernel_tcp.to_string(),
                );
            }
        }
        Version::V2 => {
            if limit != 0 {
                b.write(version, Memory, "memory.max", v2_num(limit));
            }
            match convert::swap_to_v2(swap, limit) {
                // Swap accounting may be off (no memory.swap.max): asking
                // for "max" or "no swap" then changes nothing, so runc
                // tolerates it; a real limit is an error at apply time.
                Ok(Some(s)) if s == -1 || s == 0 => {
                    b.write_if_present(version, Memory, "memory.swap.max", v2_num(s));
                }
                Ok(Some(s)) => b.write(version, Memory, "memory.swap.max", s.to_string()),
                Ok(None) => {}
                // why reads "memory.swap (...) ..."; prefix the spec path.
                Err(why) => b.errs.push(ResourceError::new(
                    format!("{F}.swap"),
                    format!("linux.resources.{why}"),
                )),
            }
            if reservation != 0 {
                b.write(version, Memory, "memory.low", v2_num(reservation));
            }
            if m.swappiness().is_some() {
                b.not_on(
                    &format!("{F}.swappiness"),
                    version,
                    "the kernel has no per-cgroup swappiness there",
                );
            }
            if oom_off {
                b.not_on(
                    &format!("{F}.disableOOMKiller"),
                    version,
                    "the OOM killer cannot be disabled per cgroup",
                );
            }
            if kernel_tcp != 0 {
                b.not_on(
                    &format!("{F}.kernelTCP"),
                    version,
                    "cgroup v2 has no separate limit for kernel TCP memory",
                );
            }
        }
    }
}
