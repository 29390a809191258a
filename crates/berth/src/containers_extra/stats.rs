//! `stats`, `top`, `port`: what runs in containers and what they use.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use berth_engine::Engine;
use berth_engine::stats::{Sample, Sampler, human_decimal};
use berth_engine::units::human_bytes;
use serde_json::json;

use crate::CmdResult;
use crate::output::{Format, render, table};

/// Display a live stream of containers' resource usage
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Containers (default: every running one)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Show every container (default: running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Print once instead of refreshing
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate the id
    #[arg(long)]
    pub no_trunc: bool,
    /// json or a Go template (keys: Container ID Name CPUPerc MemUsage MemPerc NetIO BlockIO PIDs)
    #[arg(long)]
    pub format: Option<String>,
    /// Seconds between refreshes
    #[arg(long, default_value = "1", value_name = "SECONDS", hide = true)]
    pub interval: f64,
}

fn item(s: &Sample, no_trunc: bool) -> serde_json::Value {
    let id = if no_trunc {
        s.id.clone()
    } else {
        s.id.chars().take(12).collect()
    };
    json!({
        "Container": id,
        "ID": id,
        "Name": s.name,
        "CPUPerc": format!("{:.2}%", s.cpu_percent),
        "MemUsage": format!("{} / {}", human_bytes(s.mem_usage), human_bytes(s.mem_limit)),
        "MemPerc": format!("{:.2}%", s.mem_percent),
        "NetIO": format!("{} / {}", human_decimal(s.net_rx), human_decimal(s.net_tx)),
        "BlockIO": format!("{} / {}", human_decimal(s.block_read), human_decimal(s.block_write)),
        "PIDs": s.pids.to_string(),
    })
}

const COLUMNS: [(&str, &str); 8] = [
    ("CONTAINER ID", "ID"),
    ("NAME", "Name"),
    ("CPU %", "CPUPerc"),
    ("MEM USAGE / LIMIT", "MemUsage"),
    ("MEM %", "MemPerc"),
    ("NET I/O", "NetIO"),
    ("BLOCK I/O", "BlockIO"),
    ("PIDS", "PIDs"),
];

pub fn stats(engine: &Engine, args: StatsArgs) -> CmdResult {
    let format = Format::parse(args.format.as_deref());
    let mut sampler = Sampler::new();
    let terminal = std::io::stdout().is_terminal();
    let interval = Duration::from_secs_f64(args.interval.max(0.1));
    loop {
        let records = berth_engine::stats::select(engine, &args.containers, args.all)?;
        let samples: Vec<Sample> = records.iter().map(|r| sampler.sample(engine, r)).collect();
        let items: Vec<serde_json::Value> =
            samples.iter().map(|s| item(s, args.no_trunc)).collect();
        let text = render(&items, &format, || {
            let rows = items
                .iter()
                .map(|i| {
                    COLUMNS
                        .iter()
                        .map(|(_, k)| i[k].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .collect();
            (COLUMNS.iter().map(|(h, _)| *h).collect(), rows)
        })?;
        let mut out = std::io::stdout().lock();
        if !args.no_stream && terminal {
            // Clear the screen and go home, as docker redraws its table.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{text}")?;
        out.flush()?;
        if args.no_stream {
            return Ok(0);
        }
        // Named containers that are all gone: nothing more to show.
        if !args.containers.is_empty() && !args.all && samples.iter().all(|s| !s.active) {
            return Ok(0);
        }
        std::thread::sleep(interval);
    }
}

/// Display the running processes of a container
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS OPTIONS"
    )]
    pub ps_options: Vec<String>,
}

pub fn top(engine: &Engine, args: TopArgs) -> CmdResult {
    let id = engine.records.resolve(&args.container)?;
    let top = berth_engine::top::top(engine, &id, &args.ps_options)?;
    let headers: Vec<&str> = top.titles.iter().map(String::as_str).collect();
    print!("{}", table(&headers, &top.processes));
    Ok(0)
}

/// List a container's published ports
#[derive(Debug, clap::Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub fn port(engine: &Engine, args: PortArgs) -> CmdResult {
    for p in berth_engine::port::ports(engine, &args.container, args.port.as_deref())? {
        if args.port.is_some() {
            println!("{}:{}", p.host_ip, p.host_port);
        } else {
            println!("{} -> {}:{}", p.private, p.host_ip, p.host_port);
        }
    }
    Ok(0)
}
