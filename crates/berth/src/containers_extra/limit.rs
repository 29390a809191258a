//! `berth limit`: limits for a process already running on the host (see
//! `berth_engine::limit`).

use berth_engine::Engine;
use berth_engine::limit::{self, Condition};

use super::resources::ResourceFlags;
use crate::CmdResult;
use crate::output::{Format, render};

/// Put running host processes under limits (a cgroup of their own in every hierarchy)
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --wait the limits stay after berth returns; --list shows the limited processes \
(and an OOM kill), --release PID gives a process back its cgroups. With --wait berth stays \
until the process ends, says so if the kernel killed it for memory (exit 137), and releases it.")]
pub struct LimitArgs {
    /// Host process ids
    #[arg(value_name = "PID", required_unless_present = "list")]
    pub pids: Vec<i32>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Stay until the process ends; report an OOM kill; release it then
    #[arg(long, conflicts_with_all = ["release", "list"])]
    pub wait: bool,
    /// Move the processes back to their cgroups and remove the limits
    #[arg(long, conflicts_with = "list")]
    pub release: bool,
    /// List the limited processes
    #[arg(long)]
    pub list: bool,
    /// json or a Go template (with --list)
    #[arg(long)]
    pub format: Option<String>,
}

pub fn limit(engine: &Engine, args: LimitArgs) -> CmdResult {
    if args.list {
        return list(engine, args.format.as_deref());
    }
    if args.release {
        let mut code = 0;
        for pid in &args.pids {
            match limit::release(engine, *pid) {
                Ok(status) => {
                    if let Some(line) = status.oom_message() {
                        eprintln!("{line}");
                    }
                    println!("{pid}");
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    code = 125;
                }
            }
        }
        return Ok(code);
    }
    let resources = args.resources.to_resources()?;
    if args.wait && args.pids.len() != 1 {
        return Err("berth limit --wait: give one PID".into());
    }
    for pid in &args.pids {
        let applied = limit::apply(engine, *pid, &resources)?;
        for w in &applied.warnings {
            eprintln!("warning: {w}");
        }
        log::info!(
            "process {pid}: {} thread(s) in {}",
            applied.threads,
            applied.record.cgroup.path().as_str()
        );
        if !args.wait {
            println!("{pid}");
        }
    }
    if args.wait {
        let ended = limit::watch(engine, args.pids[0])?;
        if let Some(line) = ended.oom_message() {
            eprintln!("{line}");
        }
        return Ok(ended.exit_code.map(|c| c as u8).unwrap_or(0));
    }
    Ok(0)
}

fn list(engine: &Engine, format: Option<&str>) -> CmdResult {
    let statuses = limit::list(engine)?;
    let items: Vec<serde_json::Value> = statuses
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .collect();
    let text = render(&items, &Format::parse(format), || {
        let rows = statuses
            .iter()
            .map(|s| {
                let limit = s
                    .memory_limit
                    .map(berth_engine::units::human_bytes)
                    .unwrap_or_else(|| "unlimited".into());
                let status = match s.condition {
                    Condition::Running => "running".to_string(),
                    Condition::Exited => "exited".to_string(),
                    Condition::OomKilled => "killed by the kernel: out of memory".to_string(),
                };
                vec![
                    s.pid.to_string(),
                    truncate(&s.command, 30),
                    format!(
                        "{} / {limit}",
                        berth_engine::units::human_bytes(s.memory_usage)
                    ),
                    s.pids.to_string(),
                    s.oom_kills.to_string(),
                    status,
                    s.cgroup.clone(),
                ]
            })
            .collect();
        (
            vec![
                "PID",
                "COMMAND",
                "MEM USAGE / LIMIT",
                "PIDS",
                "OOM KILLS",
                "STATUS",
                "CGROUP",
            ],
            rows,
        )
    })?;
    print!("{text}");
    Ok(0)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max - 3).collect();
        t.push_str("...");
        t
    }
}
