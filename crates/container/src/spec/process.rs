//! The container's process (or an exec'd one): arguments, environment, user, capabilities,
//! rlimits and the rest of `process`, validated.

use std::path::PathBuf;

use oci_spec::runtime::{PosixRlimitType, Process};

use super::capabilities::CapabilitySets;
use crate::error::{Error, Result};

/// One resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RlimitPlan {
    pub name: &'static str,
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// What the init (or an exec'd process) becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Absolute path inside the container.
    pub cwd: PathBuf,
    pub terminal: bool,
    /// (rows, columns)
    pub console_size: Option<(u16, u16)>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub capabilities: CapabilitySets,
    pub rlimits: Vec<RlimitPlan>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub apparmor_profile: Option<String>,
    pub selinux_label: Option<String>,
    /// (class, priority) for ioprio_set.
    pub io_priority: Option<(u32, u32)>,
    /// `process.scheduler`, for sched_setattr.
    pub scheduler: Option<super::scheduler::SchedulerPlan>,
    /// The container's `linux.memoryPolicy` (every process of it gets it), for
    /// set_mempolicy.
    pub memory_policy: Option<super::memory_policy::MemoryPolicyPlan>,
}

fn rlimit_resource(typ: PosixRlimitType) -> (&'static str, u32) {
    use PosixRlimitType::*;
    match typ {
        RlimitCpu => ("RLIMIT_CPU", 0),
        RlimitFsize => ("RLIMIT_FSIZE", 1),
        RlimitData => ("RLIMIT_DATA", 2),
        RlimitStack => ("RLIMIT_STACK", 3),
        RlimitCore => ("RLIMIT_CORE", 4),
        RlimitRss => ("RLIMIT_RSS", 5),
        RlimitNproc => ("RLIMIT_NPROC", 6),
        RlimitNofile => ("RLIMIT_NOFILE", 7),
        RlimitMemlock => ("RLIMIT_MEMLOCK", 8),
        RlimitAs => ("RLIMIT_AS", 9),
        RlimitLocks => ("RLIMIT_LOCKS", 10),
        RlimitSigpending => ("RLIMIT_SIGPENDING", 11),
        RlimitMsgqueue => ("RLIMIT_MSGQUEUE", 12),
        RlimitNice => ("RLIMIT_NICE", 13),
        RlimitRtprio => ("RLIMIT_RTPRIO", 14),
        RlimitRttime => ("RLIMIT_RTTIME", 15),
    }
}

/// Validates a `process` object; `field` is its place in the document for error messages
/// (`process` in config.json, `` in an exec process file).
pub fn plan_process(process: &Process, field: &str, last_cap: u32) -> Result<ProcessPlan> {
    let f = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::invalid(f("args"), "must name a program to run"));
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(Error::invalid(f("args"), "contains a NUL byte"));
    }
    let env = process.env().clone().unwrap_or_default();
    for (i, var) in env.iter().enumerate() {
        if var.contains('\0') {
            return Err(Error::invalid(
                format!("{}[{i}]", f("env")),
                "contains a NUL byte",
            ));
        }
    }
    let cwd = process.cwd().clone();
    if !cwd.is_absolute() {
        return Err(Error::invalid(
            f("cwd"),
            format!("{:?} is not an absolute path", cwd.display().to_string()),
        ));
    }

    let mut rlimits: Vec<RlimitPlan> = Vec::new();
    for (i, limit) in process.rlimits().iter().flatten().enumerate() {
        let (name, resource) = rlimit_resource(limit.typ());
        if rlimits.iter().any(|r| r.resource == resource) {
            return Err(Error::invalid(
                format!("{}[{i}].type", f("rlimits")),
                format!("{name} is listed twice"),
            ));
        }
        if limit.soft() > limit.hard() {
            return Err(Error::invalid(
                format!("{}[{i}]", f("rlimits")),
                format!(
                    "{name}: soft limit {} is above the hard limit {}",
                    limit.soft(),
                    limit.hard()
                ),
            ));
        }
        rlimits.push(RlimitPlan {
            name,
            resource,
            soft: limit.soft(),
            hard: limit.hard(),
        });
    }

    let capabilities = process
        .capabilities()
        .as_ref()
        .map(|c| CapabilitySets::from_spec(c, last_cap))
        .unwrap_or_default();

    let user = process.user();
    let umask = user.umask();
    if umask.is_some_and(|m| m > 0o777) {
        return Err(Error::invalid(f("user.umask"), "must be at most 0777"));
    }

    let io_priority = match process.io_priority() {
        None => None,
        Some(p) => {
            use oci_spec::runtime::IOPriorityClass::*;
            let class = match p.class() {
                IoprioClassRt => 1,
                IoprioClassBe => 2,
                IoprioClassIdle => 3,
            };
            let priority = u32::try_from(p.priority())
                .ok()
                .filter(|p| *p <= 7)
                .ok_or_else(|| {
                    Error::invalid(f("ioPriority.priority"), "must be between 0 and 7")
                })?;
            Some((class, priority))
        }
    };
    let scheduler = process
        .scheduler()
        .as_ref()
        .map(|s| super::scheduler::plan_scheduler(s, &f("scheduler")))
        .transpose()?;

    let (rows, cols) = process
        .console_size()
        .map(|b| (b.height(), b.width()))
        .unwrap_or((0, 0));
    let console_size = (rows > 0 || cols > 0).then(|| {
        (
            rows.min(u16::MAX as u64) as u16,
            cols.min(u16::MAX as u64) as u16,
        )
    });

    Ok(ProcessPlan {
        args,
        env,
        cwd,
        terminal: process.terminal().unwrap_or(false),
        console_size,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask,
        capabilities,
        rlimits,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        oom_score_adj: process.oom_score_adj(),
        apparmor_profile: process.apparmor_profile().clone().filter(|p| !p.is_empty()),
        selinux_label: process.selinux_label().clone().filter(|p| !p.is_empty()),
        io_priority,
        scheduler,
        memory_policy: None,
    })
}
