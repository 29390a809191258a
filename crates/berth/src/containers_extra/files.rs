//! `export`, `cp`, `diff`, `commit`: a container's files.

use std::io::Write;
use std::path::PathBuf;

use berth_engine::Engine;
use berth_engine::commit::CommitOptions;
use berth_engine::cp::{Endpoint, Options};

use crate::CmdResult;
use crate::output::{Format, render};

/// Export a container's filesystem as a tar archive
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    pub container: String,
    /// Write to a file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn export(engine: &Engine, args: ExportArgs) -> CmdResult {
    let id = engine.records.resolve(&args.container)?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed: a failed export leaves no partial file.
            let tmp = path.with_file_name(format!(
                ".{}.berth-export.{}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let result = (|| -> CmdResult {
                let mut file = std::io::BufWriter::new(
                    std::fs::File::create(&tmp)
                        .map_err(|e| format!("create {}: {e}", tmp.display()))?,
                );
                berth_engine::export::export(engine, &id, &mut file)?;
                file.flush()?;
                std::fs::rename(&tmp, path)
                    .map_err(|e| format!("rename to {}: {e}", path.display()))?;
                Ok(0)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err("berth export: refusing to write a tar archive to a terminal: use -o FILE or redirect".into());
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            berth_engine::export::export(engine, &id, &mut out)?;
            out.flush()?;
            Ok(0)
        }
    }
}

/// Copy files between a container and the host
#[derive(Debug, clap::Args)]
#[command(after_help = "CONTAINER:SRC_PATH DEST_PATH|-  or  SRC_PATH|- CONTAINER:DEST_PATH")]
pub struct CpArgs {
    pub source: String,
    pub destination: String,
    /// Keep the owners (uid:gid) of the source
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symlink given as the source (inside the container)
    #[arg(short = 'L', long)]
    pub follow_link: bool,
}

pub fn cp(engine: &Engine, args: CpArgs) -> CmdResult {
    let options = Options {
        archive: args.archive,
        follow: args.follow_link,
    };
    match (
        Endpoint::parse(&args.source),
        Endpoint::parse(&args.destination),
    ) {
        (Endpoint::Container { container, path }, Endpoint::Host(dst)) => {
            berth_engine::cp::copy_out(engine, &container, &path, &dst, options)?;
        }
        (Endpoint::Container { container, path }, Endpoint::Stream) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            berth_engine::cp::copy_out_tar(engine, &container, &path, &mut out)?;
            out.flush()?;
        }
        (Endpoint::Host(src), Endpoint::Container { container, path }) => {
            berth_engine::cp::copy_in(engine, &src, &container, &path, options)?;
        }
        (Endpoint::Stream, Endpoint::Container { container, path }) => {
            berth_engine::cp::copy_in_tar(engine, &mut std::io::stdin().lock(), &container, &path)?;
        }
        (Endpoint::Container { .. }, Endpoint::Container { .. }) => {
            return Err(
                "berth cp: copying between containers is not supported: copy through the host"
                    .into(),
            );
        }
        _ => return Err("berth cp: one of SRC and DEST must be CONTAINER:PATH".into()),
    }
    Ok(0)
}

/// Show the changes to a container's filesystem
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    pub container: String,
    /// json or a Go template (keys: Path Kind)
    #[arg(long)]
    pub format: Option<String>,
}

pub fn diff(engine: &Engine, args: DiffArgs) -> CmdResult {
    let id = engine.records.resolve(&args.container)?;
    let changes = berth_engine::diff::diff(engine, &id)?;
    let format = Format::parse(args.format.as_deref());
    if format == Format::Table {
        for c in &changes {
            println!("{} {}", c.kind.letter(), c.path);
        }
        return Ok(0);
    }
    let items: Vec<serde_json::Value> = changes
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .collect();
    print!("{}", render(&items, &format, || (Vec::new(), Vec::new()))?);
    Ok(0)
}

/// Create a new image from a container's changes
#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    pub container: String,
    /// The new image's name
    pub image: Option<String>,
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause the container while committing
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn commit(engine: &Engine, args: CommitArgs) -> CmdResult {
    let id = engine.records.resolve(&args.container)?;
    let image = berth_engine::commit::commit(
        engine,
        &id,
        &CommitOptions {
            name: args.image.clone(),
            changes: args.changes,
            message: args.message,
            author: args.author,
            pause: args.pause,
        },
    )?;
    println!("{}", image.id);
    Ok(0)
}
