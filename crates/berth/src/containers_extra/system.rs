//! `volume ...`, `container prune`, `info`, `version`, `events`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use berth_engine::Engine;
use berth_engine::events::{self, Filter};
use clap::Subcommand;

use crate::CmdResult;
use crate::output::{Format, Template, render};

/// `berth volume ...`
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Remove volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Show volumes in detail
    Inspect(VolumeInspectArgs),
    /// Remove every volume no container uses
    Prune(ForceArgs),
}

#[derive(Debug, clap::Args)]
pub struct VolumeCreateArgs {
    pub name: Option<String>,
    /// Driver (only "local")
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// KEY=VALUE
    #[arg(short, long = "label")]
    pub labels: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct VolumeLsArgs {
    /// Only names
    #[arg(short, long)]
    pub quiet: bool,
    /// json or a Go template (keys: Name Driver Mountpoint CreatedAt Labels Scope)
    #[arg(long)]
    pub format: Option<String>,
    /// name=, label=KEY[=VALUE], dangling=true|false
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct VolumeRmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove even if a container uses it
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct VolumeInspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ForceArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, berth_engine::Error> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None if !l.is_empty() => Ok((l.clone(), String::new())),
            None => Err(berth_engine::Error::flag(
                "--label",
                l.clone(),
                "expected KEY=VALUE",
            )),
        })
        .collect()
}

/// Asks "Are you sure you want to continue? [y/N]" on a terminal; without one (a script)
/// the answer is no, unless --force.
fn confirm(force: bool, what: &str) -> bool {
    if force {
        return true;
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

pub fn volume(engine: &Engine, command: VolumeCommand) -> CmdResult {
    match command {
        VolumeCommand::Create(a) => {
            if a.driver != "local" {
                return Err(berth_engine::Error::flag(
                    "--driver",
                    a.driver,
                    "only the local driver exists",
                )
                .into());
            }
            let v =
                berth_engine::volume::create(engine, a.name.as_deref(), parse_labels(&a.labels)?)?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let mut volumes = berth_engine::volume::list(engine)?;
            for f in &a.filters {
                let (k, v) = f.split_once('=').ok_or_else(|| {
                    berth_engine::Error::flag("--filter", f.clone(), "expected KEY=VALUE")
                })?;
                match k {
                    "name" => volumes.retain(|vol| vol.name.contains(v)),
                    "label" => {
                        let (lk, lv) = v
                            .split_once('=')
                            .map(|(a, b)| (a, Some(b)))
                            .unwrap_or((v, None));
                        volumes.retain(|vol| {
                            vol.labels
                                .get(lk)
                                .is_some_and(|have| lv.is_none_or(|want| want == have))
                        });
                    }
                    "dangling" => {
                        let want = matches!(v, "true" | "1");
                        let mut kept = Vec::new();
                        for vol in volumes {
                            if berth_engine::volume::users(engine, &vol)?.is_empty() == want {
                                kept.push(vol);
                            }
                        }
                        volumes = kept;
                    }
                    _ => {
                        return Err(berth_engine::Error::flag(
                            "--filter",
                            f.clone(),
                            "known filters: name, label, dangling",
                        )
                        .into());
                    }
                }
            }
            if a.quiet {
                for v in &volumes {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            let items: Vec<serde_json::Value> = volumes
                .iter()
                .map(|v| serde_json::to_value(v).unwrap_or_default())
                .collect();
            print!(
                "{}",
                render(&items, &Format::parse(a.format.as_deref()), || {
                    (
                        vec!["DRIVER", "VOLUME NAME"],
                        volumes
                            .iter()
                            .map(|v| vec![v.driver.clone(), v.name.clone()])
                            .collect(),
                    )
                })?
            );
            Ok(0)
        }
        VolumeCommand::Rm(a) => {
            let mut code = 0;
            for name in &a.names {
                match berth_engine::volume::remove(engine, name, a.force) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 125;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Inspect(a) => {
            let mut docs = Vec::new();
            for name in &a.names {
                docs.push(serde_json::to_value(berth_engine::volume::inspect(
                    engine, name,
                )?)?);
            }
            match a.format.as_deref() {
                Some(f) if f != "json" => {
                    let t = Template::parse(&f.replace("\\n", "\n").replace("\\t", "\t"))?;
                    for d in &docs {
                        println!("{}", t.render(d)?);
                    }
                }
                _ => println!("{}", serde_json::to_string_pretty(&docs)?),
            }
            Ok(0)
        }
        VolumeCommand::Prune(a) => {
            if !confirm(
                a.force,
                "all local volumes not used by at least one container",
            ) {
                return Ok(0);
            }
            let removed = berth_engine::volume::prune(engine)?;
            for name in &removed {
                println!("{name}");
            }
            Ok(0)
        }
    }
}

/// Remove every stopped container
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn container_prune(engine: &Engine, args: PruneArgs) -> CmdResult {
    if !confirm(args.force, "all stopped containers") {
        return Ok(0);
    }
    let pruned = berth_engine::prune::prune(engine)?;
    for id in &pruned.ids {
        println!("{id}");
    }
    Ok(0)
}

/// Show system-wide information
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// json or a Go template ({{.Host.Kernel}}, {{.Store.GraphRoot}})
    #[arg(short, long)]
    pub format: Option<String>,
}

fn print_document(
    doc: &serde_json::Value,
    format: Option<&str>,
    text: impl FnOnce() -> String,
) -> CmdResult {
    match format {
        Some("json") => println!("{}", serde_json::to_string_pretty(doc)?),
        Some(f) => println!(
            "{}",
            Template::parse(&f.replace("\\n", "\n").replace("\\t", "\t"))?.render(doc)?
        ),
        None => print!("{}", text()),
    }
    Ok(0)
}

pub fn info(engine: &Engine, args: InfoArgs) -> CmdResult {
    let doc = berth_engine::info::info(engine, env!("CARGO_PKG_VERSION"))?;
    print_document(&doc, args.format.as_deref(), || {
        let mut out = String::new();
        fn walk(out: &mut String, v: &serde_json::Value, indent: usize) {
            if let Some(map) = v.as_object() {
                for (k, v) in map {
                    let pad = "  ".repeat(indent);
                    match v {
                        serde_json::Value::Object(_) => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            walk(out, v, indent + 1);
                        }
                        serde_json::Value::Array(items) => {
                            let words: Vec<String> = items
                                .iter()
                                .map(|i| {
                                    i.as_str()
                                        .map(str::to_string)
                                        .unwrap_or_else(|| i.to_string())
                                })
                                .collect();
                            out.push_str(&format!("{pad}{k}: {}\n", words.join(" ")));
                        }
                        serde_json::Value::String(s) => out.push_str(&format!("{pad}{k}: {s}\n")),
                        other => out.push_str(&format!("{pad}{k}: {other}\n")),
                    }
                }
            }
        }
        walk(&mut out, &doc, 0);
        out
    })
}

/// Show the version of berth
#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// json or a Go template ({{.Client.Version}})
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn version(args: VersionArgs) -> CmdResult {
    let doc = berth_engine::info::version(env!("CARGO_PKG_VERSION"));
    print_document(&doc, args.format.as_deref(), || {
        let c = &doc["Client"];
        let s = &doc["Server"];
        let v = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
        format!(
            "Client:       berth\nVersion:      {}\nOS/Arch:      {}\n\nServer:       berth engine (in-process, no daemon)\nVersion:      {}\nRuntime:      {}\nMonitor:      {}\nKernel:       {}\n",
            v(&c["Version"]),
            v(&c["OsArch"]),
            v(&s["Version"]),
            v(&s["Runtime"]),
            v(&s["Monitor"]),
            v(&s["Kernel"])
        )
    })
}

/// Show events (from the events log and the container records)
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Events since this time (RFC 3339, Unix seconds, or a duration ago: 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Events until this time; without it, keep printing new events
    #[arg(long)]
    pub until: Option<String>,
    /// container=, event=, type=, image=
    #[arg(short, long = "filter")]
    pub filters: Vec<String>,
    /// json (one object a line) or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

fn point(
    flag: &'static str,
    text: &Option<String>,
) -> Result<Option<SystemTime>, berth_engine::Error> {
    text.as_deref()
        .map(|t| {
            berth_engine::time::parse_point(t).ok_or_else(|| {
                berth_engine::Error::flag(
                    flag,
                    t,
                    "not a time (RFC 3339, Unix seconds or a duration like 10m)",
                )
            })
        })
        .transpose()
}

pub fn events(engine: &Engine, args: EventsArgs) -> CmdResult {
    let filters: Vec<Filter> = args
        .filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<_, _>>()?;
    let until = point("--until", &args.until)?;
    // docker: without --since only new events are shown.
    let mut since = point("--since", &args.since)?.unwrap_or_else(SystemTime::now);
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(f) => Some(Template::parse(
            &f.replace("\\n", "\n").replace("\\t", "\t"),
        )?),
    };
    let json = args.format.as_deref() == Some("json");
    let mut printed = std::collections::HashSet::new();
    loop {
        let now = SystemTime::now();
        let upto = until.map(|u| u.min(now)).unwrap_or(now);
        let mut out = std::io::stdout().lock();
        for e in events::collect(engine, Some(since), Some(upto), &filters)? {
            let key = (e.actor.id.clone(), e.action.clone(), e.time_nano);
            if !printed.insert(key) {
                continue;
            }
            let value = serde_json::to_value(&e)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&value)?)?;
            } else if let Some(t) = &template {
                writeln!(out, "{}", t.render(&value)?)?;
            } else {
                writeln!(out, "{}", events::line(&e))?;
            }
        }
        out.flush()?;
        if until.is_some_and(|u| u <= now) {
            return Ok(0);
        }
        // The record-made events may be stamped slightly in the past: look back a second.
        since = upto.checked_sub(Duration::from_secs(1)).unwrap_or(upto);
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `berth system ...` (df is the image store's table with the containers' and volumes'
/// lines added).
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show system-wide information
    Info(InfoArgs),
    /// Show disk usage: images, containers, local volumes
    Df(DfArgs),
    /// Remove stopped containers, dangling images (and with --volumes unused volumes)
    Prune(SystemPruneArgs),
    /// Show events
    Events(EventsArgs),
}

#[derive(Debug, clap::Args)]
pub struct DfArgs {
    /// json or a Go template (keys: Type TotalCount Active Size Reclaimable)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SystemPruneArgs {
    /// Every unused image, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Unused volumes too
    #[arg(long)]
    pub volumes: bool,
}

fn tree_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| tree_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// The Containers and Local Volumes lines of `system df`.
pub fn df_lines(engine: &Engine) -> Result<Vec<crate::images::DfLine>, Box<dyn std::error::Error>> {
    let mut containers = crate::images::DfLine {
        kind: "Containers",
        total: 0,
        active: 0,
        size: 0,
        reclaimable: 0,
    };
    for record in engine.records.list()? {
        let size = tree_size(&engine.container_dir(&record.id).join("upper"));
        containers.total += 1;
        containers.size += size;
        if berth_engine::status::observe(engine, &record)
            .state
            .is_active()
        {
            containers.active += 1;
        } else {
            containers.reclaimable += size;
        }
    }
    let mut volumes = crate::images::DfLine {
        kind: "Local Volumes",
        total: 0,
        active: 0,
        size: 0,
        reclaimable: 0,
    };
    for v in berth_engine::volume::list(engine)? {
        let size = tree_size(&v.mountpoint);
        volumes.total += 1;
        volumes.size += size;
        if berth_engine::volume::users(engine, &v)?.is_empty() {
            volumes.reclaimable += size;
        } else {
            volumes.active += 1;
        }
    }
    Ok(vec![containers, volumes])
}

pub fn system(global: &crate::Global, engine: &Engine, command: SystemCommand) -> CmdResult {
    match command {
        SystemCommand::Info(a) => info(engine, a),
        SystemCommand::Events(a) => events(engine, a),
        SystemCommand::Df(a) => {
            crate::images::system_df(global, &df_lines(engine)?, a.format.as_deref())
        }
        SystemCommand::Prune(a) => {
            let what = if a.volumes {
                "all stopped containers, all unused volumes and all dangling images"
            } else {
                "all stopped containers and all dangling images"
            };
            if !confirm(a.force, what) {
                return Ok(0);
            }
            let pruned = berth_engine::prune::prune(engine)?;
            if !pruned.ids.is_empty() {
                println!("Deleted Containers");
                for id in &pruned.ids {
                    println!("{id}");
                }
            }
            if a.volumes {
                let removed = berth_engine::volume::prune(engine)?;
                if !removed.is_empty() {
                    println!("Deleted Volumes");
                    for name in &removed {
                        println!("{name}");
                    }
                }
            }
            let store = berth_image::Store::open(&engine.root)?;
            let images = store.prune(a.all)?;
            if !images.is_empty() {
                println!("Deleted Images");
                for image in &images {
                    println!("{}", image.id);
                }
            }
            Ok(0)
        }
    }
}
