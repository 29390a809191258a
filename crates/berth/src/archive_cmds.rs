//! `berth load` and `berth save`: image archives, with podman's flags. Also what
//! `berth image load|save` run (`crate::images` calls [`load`] and [`save`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use berth_image::Store;
use berth_image::archive::{self, Format, Source, Step, save};
use clap::Subcommand;

use crate::{CmdResult, Global};

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Load images from a docker-archive or oci-archive (a tar, plain, gzip or zstd) or an OCI layout
    Load(LoadArgs),
    /// Save images to a docker-archive, an oci-archive or an OCI layout directory
    Save(SaveArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Read from FILE (a tar, a directory, oci:DIR[:TAG]) instead of stdin
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<String>,
    /// Print only the "Loaded image" lines, no progress
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SaveArgs {
    /// Write to FILE (a directory for oci-dir) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// docker-archive, oci-archive or oci-dir
    #[arg(long, value_name = "FORMAT", default_value = "docker-archive")]
    pub format: String,
    /// Accepted for podman's command lines: several images always go into one archive
    #[arg(short, long)]
    pub multi_image_archive: bool,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// The images: names or ids
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn run(global: &Global, command: ArchiveCommand) -> CmdResult {
    match command {
        ArchiveCommand::Load(args) => load(global, &args),
        ArchiveCommand::Save(args) => save(global, &args),
    }
}

/// `berth load`: "Loaded image: NAME" for each name (the id for an untagged image), as podman prints.
pub fn load(global: &Global, args: &LoadArgs) -> CmdResult {
    let source = match args.input.as_deref() {
        Some(input) => Source::parse(input),
        None => Source::Stdin,
    };
    if source == Source::Stdin && std::io::stdin().is_terminal() {
        return Err(
            "cannot read from terminal, use command-line redirection or the --input flag".into(),
        );
    }
    let store = Store::open(&global.root)?;
    let quiet = args.quiet;
    let on_step = move |step: Step<'_>| {
        if !quiet {
            match step {
                Step::Layer(d) => eprintln!("Copying blob {d}"),
                Step::Config(d) => eprintln!("Copying config {d}"),
            }
        }
    };
    let loaded = archive::load(&store, &source, &on_step)?;
    let mut out = std::io::stdout().lock();
    for image in &loaded {
        if image.names.is_empty() {
            writeln!(out, "Loaded image: {}", image.image.id)?;
        }
        for name in &image.names {
            writeln!(out, "Loaded image: {name}")?;
        }
    }
    Ok(0)
}

/// `berth save`: to `-o FILE` (or DIR for oci-dir, also given as `-o oci:DIR[:TAG]`), else
/// to stdout, which must not be a terminal.
pub fn save(global: &Global, args: &SaveArgs) -> CmdResult {
    let format: Format = args.format.parse()?;
    let store = Store::open(&global.root)?;
    let oci_dest = args
        .output
        .as_ref()
        .and_then(|o| o.to_str())
        .and_then(|o| o.strip_prefix("oci:"));
    if let Some(dest) = oci_dest {
        // skopeo's `oci:DIR[:TAG]`: the first ':' ends the directory.
        let (dir, tag) = match dest.split_once(':') {
            Some((dir, tag)) if !tag.is_empty() => (dir, Some(tag)),
            Some((dir, _)) => (dir, None),
            None => (dest, None),
        };
        let images = save::select(&store, &args.images)?;
        save::save_oci_dir_tagged(&store, &images, Path::new(dir), tag)?;
        return Ok(0);
    }
    match &args.output {
        Some(path) => {
            let images = save::select(&store, &args.images)?;
            save::save_to_path(&store, &images, format, path)?;
        }
        None => {
            if format == Format::OciDir {
                return Err("--format oci-dir writes a directory: give it with -o DIR".into());
            }
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err("refusing to save to terminal. Use -o flag or redirect".into());
            }
            let images = save::select(&store, &args.images)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            save::save_tar(&store, &images, format, &mut out, "stdout")?;
            out.flush()?;
        }
    }
    Ok(0)
}
