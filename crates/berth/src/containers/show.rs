//! ps, logs, inspect.

use std::io::Write;

use berth_engine::logfile::{self, Entry, ReadOptions};
use berth_engine::ps::{self, Filter};
use berth_engine::{Engine, status};

use crate::output::{self, Format};
use crate::{CmdResult, Global};

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show every container (default: running ones)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The n last created containers (any state)
    #[arg(short = 'n', long = "last")]
    pub last: Option<usize>,
    /// The latest created container
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// name=, status=, label=KEY[=VALUE], ancestor=, id=
    #[arg(short = 'f', long = "filter")]
    pub filters: Vec<String>,
    #[arg(long)]
    pub no_trunc: bool,
    /// table, json or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

pub fn ps(engine: &Engine, args: PsArgs) -> CmdResult {
    let filters = args
        .filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let last = if args.latest { Some(1) } else { args.last };
    let rows = ps::list(engine, args.all, &filters, last)?;
    if args.quiet {
        for (record, _) in &rows {
            println!(
                "{}",
                if args.no_trunc {
                    &record.id
                } else {
                    record.short_id()
                }
            );
        }
        return Ok(0);
    }
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(r, live)| ps::item(engine, r, live, args.no_trunc))
        .collect();
    let text = output::render(&items, &Format::parse(args.format.as_deref()), || {
        let rows = items
            .iter()
            .map(|i| {
                [
                    "ID",
                    "Image",
                    "Command",
                    "RunningFor",
                    "Status",
                    "Ports",
                    "Names",
                ]
                .iter()
                .map(|k| i[k].as_str().unwrap_or_default().to_string())
                .collect()
            })
            .collect();
        (
            vec![
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ],
            rows,
        )
    })?;
    print!("{text}");
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Keep printing what the container writes
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line)
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    /// RFC 3339 time, Unix time or a duration (10m)
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    /// Prefix each line with its time
    #[arg(short = 't', long)]
    pub timestamps: bool,
    pub container: String,
}

fn point(
    flag: &'static str,
    value: &Option<String>,
) -> Result<Option<std::time::SystemTime>, berth_engine::Error> {
    value
        .as_deref()
        .map(|v| {
            berth_engine::time::parse_point(v).ok_or_else(|| {
                berth_engine::Error::flag(flag, v, "not a time, Unix time or duration")
            })
        })
        .transpose()
}

pub fn logs(engine: &Engine, args: LogsArgs) -> CmdResult {
    let id = engine.records.resolve(&args.container)?;
    let tail = match args.tail.as_deref() {
        None | Some("all") | Some("-1") => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| berth_engine::Error::flag("--tail", n, "not a number"))?,
        ),
    };
    let options = ReadOptions {
        tail,
        since: point("--since", &args.since)?,
        until: point("--until", &args.until)?,
    };
    let path = logfile::path(&engine.container_dir(&id), &id);
    let timestamps = args.timestamps;
    let print = |entry: &Entry| -> bool {
        let prefix = if timestamps {
            format!("{} ", entry.time)
        } else {
            String::new()
        };
        let text = format!("{prefix}{}", entry.log);
        if entry.stream == "stderr" {
            std::io::stderr().write_all(text.as_bytes()).is_ok()
        } else {
            let mut out = std::io::stdout();
            out.write_all(text.as_bytes()).is_ok() && out.flush().is_ok()
        }
    };
    for entry in logfile::read(&path, &options) {
        if !print(&entry) {
            return Ok(0);
        }
    }
    if args.follow {
        let follow_options = ReadOptions {
            tail: None,
            ..options
        };
        logfile::follow(&path, &follow_options, print, || {
            match status::live(engine, &id) {
                Ok((Some(_), live)) => !live.state.is_active() && !live.monitor_alive,
                _ => true,
            }
        });
    }
    Ok(0)
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// json or a Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// container or image (default: whichever has the name)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Add the size (ignored)
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

pub fn inspect(global: &Global, engine: &Engine, args: InspectArgs) -> CmdResult {
    // No container has any of these names: they are images (docker looks at both).
    let containers = args.kind.as_deref() == Some("container");
    if !containers
        && (args.kind.as_deref() == Some("image")
            || args
                .names
                .iter()
                .all(|n| engine.records.resolve(n).is_err()))
    {
        return crate::images::inspect(global, &args.names, args.format.as_deref());
    }
    let mut docs = Vec::new();
    let mut code = 0;
    for name in &args.names {
        match engine
            .records
            .resolve(name)
            .and_then(|id| status::live(engine, &id))
        {
            Ok((Some(record), live)) => {
                docs.push(berth_engine::inspect::document(engine, &record, &live))
            }
            Ok((None, _)) => {
                eprintln!("Error: no such object: {name}");
                code = 125;
            }
            Err(e) => {
                eprintln!("Error: {e}");
                code = 125;
            }
        }
    }
    match Format::parse(args.format.as_deref()) {
        Format::Template { template, .. } => {
            let t = output::Template::parse(&template)?;
            for d in &docs {
                println!("{}", t.render(d)?);
            }
        }
        _ => {
            let mut out = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&docs, &mut ser)?;
            println!("{}", String::from_utf8_lossy(&out));
        }
    }
    Ok(code)
}
