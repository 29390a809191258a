//! `process.scheduler`: the arguments of sched_setattr(2), checked before anything exists.

use oci_spec::runtime::{LinuxSchedulerFlag, LinuxSchedulerPolicy, Scheduler};

use crate::error::{Error, Result};

/// A validated `struct sched_attr` (the kernel's field names and units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerPlan {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    /// SCHED_DEADLINE, in nanoseconds.
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

pub const SCHED_OTHER: u32 = 0;
pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_BATCH: u32 = 3;
pub const SCHED_IDLE: u32 = 5;
pub const SCHED_DEADLINE: u32 = 6;

/// The policies and flags `features` lists: all of the runtime-spec's that Linux has.
pub const POLICIES: &[&str] = &[
    "SCHED_OTHER",
    "SCHED_FIFO",
    "SCHED_RR",
    "SCHED_BATCH",
    "SCHED_IDLE",
    "SCHED_DEADLINE",
];
pub const FLAGS: &[&str] = &[
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
    "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
];

fn flag_bit(flag: LinuxSchedulerFlag) -> u64 {
    use LinuxSchedulerFlag::*;
    match flag {
        SchedResetOnFork => 0x01,
        SchedFlagReclaim => 0x02,
        SchedFlagDLOverrun => 0x04,
        SchedFlagKeepPolicy => 0x08,
        SchedFlagKeepParams => 0x10,
        SchedFlagUtilClampMin => 0x20,
        SchedFlagUtilClampMax => 0x40,
    }
}

/// Checks `scheduler` (at `field`) as the kernel would, so that bad values fail in planning:
/// nice -20..19, a priority 1..99 only for the real-time policies, runtime <= deadline <=
/// period only for SCHED_DEADLINE.
pub fn plan_scheduler(scheduler: &Scheduler, field: &str) -> Result<SchedulerPlan> {
    use LinuxSchedulerPolicy::*;
    let f = |name: &str| format!("{field}.{name}");
    let policy = match scheduler.policy() {
        SchedOther => SCHED_OTHER,
        SchedFifo => SCHED_FIFO,
        SchedRr => SCHED_RR,
        SchedBatch => SCHED_BATCH,
        SchedIdle => SCHED_IDLE,
        SchedDeadline => SCHED_DEADLINE,
        SchedIso => {
            return Err(Error::invalid(
                f("policy"),
                "SCHED_ISO is not a Linux scheduling policy",
            ));
        }
    };
    let nice = scheduler.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::invalid(
            f("nice"),
            format!("{nice} is not between -20 and 19"),
        ));
    }
    let realtime = matches!(policy, SCHED_FIFO | SCHED_RR);
    let priority = scheduler.priority().unwrap_or(0);
    if realtime && !(1..=99).contains(&priority) {
        return Err(Error::invalid(
            f("priority"),
            format!("{priority} is not between 1 and 99 (SCHED_FIFO and SCHED_RR)"),
        ));
    }
    if !realtime && priority != 0 {
        return Err(Error::invalid(
            f("priority"),
            "only SCHED_FIFO and SCHED_RR take a priority",
        ));
    }
    let (runtime, deadline, period) = (
        scheduler.runtime().unwrap_or(0),
        scheduler.deadline().unwrap_or(0),
        scheduler.period().unwrap_or(0),
    );
    if policy == SCHED_DEADLINE {
        // The kernel's rules (sched_dl_param_check): a runtime of at least 1 µs, and
        // runtime <= deadline <= period (a period of 0 means "the deadline").
        if runtime < 1024 {
            return Err(Error::invalid(
                f("runtime"),
                "SCHED_DEADLINE needs a runtime of at least 1024 ns",
            ));
        }
        if deadline < runtime {
            return Err(Error::invalid(
                f("deadline"),
                format!("{deadline} is less than the runtime {runtime}"),
            ));
        }
        if period != 0 && period < deadline {
            return Err(Error::invalid(
                f("period"),
                format!("{period} is less than the deadline {deadline}"),
            ));
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        return Err(Error::invalid(
            field,
            "runtime, deadline and period are for SCHED_DEADLINE only",
        ));
    }
    let flags = scheduler
        .flags()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .fold(0, |bits, flag| bits | flag_bit(*flag));
    Ok(SchedulerPlan {
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<SchedulerPlan> {
        plan_scheduler(&serde_json::from_str(json).unwrap(), "process.scheduler")
    }

    #[test]
    fn policies_flags_and_values_become_sched_attr() {
        let p = plan(r#"{"policy":"SCHED_BATCH","nice":7,"flags":["SCHED_RESET_ON_FORK","SCHED_FLAG_KEEP_PARAMS"]}"#)
            .unwrap();
        assert_eq!((p.policy, p.nice, p.flags), (SCHED_BATCH, 7, 0x11));
        let p = plan(r#"{"policy":"SCHED_FIFO","priority":10}"#).unwrap();
        assert_eq!((p.policy, p.priority), (SCHED_FIFO, 10));
        let p = plan(
            r#"{"policy":"SCHED_DEADLINE","runtime":10000000,"deadline":20000000,"period":30000000}"#,
        )
        .unwrap();
        assert_eq!(
            (p.policy, p.runtime, p.deadline, p.period),
            (SCHED_DEADLINE, 10_000_000, 20_000_000, 30_000_000)
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        for (json, field) in [
            (
                r#"{"policy":"SCHED_OTHER","nice":20}"#,
                "process.scheduler.nice",
            ),
            (r#"{"policy":"SCHED_FIFO"}"#, "process.scheduler.priority"),
            (
                r#"{"policy":"SCHED_RR","priority":100}"#,
                "process.scheduler.priority",
            ),
            (
                r#"{"policy":"SCHED_BATCH","priority":1}"#,
                "process.scheduler.priority",
            ),
            (r#"{"policy":"SCHED_ISO"}"#, "process.scheduler.policy"),
            (
                r#"{"policy":"SCHED_OTHER","runtime":5}"#,
                "process.scheduler",
            ),
            (
                r#"{"policy":"SCHED_DEADLINE","runtime":100}"#,
                "process.scheduler.runtime",
            ),
            (
                r#"{"policy":"SCHED_DEADLINE","runtime":2000,"deadline":1500}"#,
                "process.scheduler.deadline",
            ),
            (
                r#"{"policy":"SCHED_DEADLINE","runtime":2000,"deadline":3000,"period":2500}"#,
                "process.scheduler.period",
            ),
        ] {
            let e = plan(json).unwrap_err().to_string();
            assert!(e.contains(&format!("{field}:")), "{json}: {e}");
        }
    }
}
