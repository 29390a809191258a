//! The image commands: `images`, `tag`, `rmi`, `history`, `import`, and the `image` group
//! (`image ls|inspect|history|prune|rm|tag|import`, with `pull|push` from
//! [`crate::registry_cmds`] and `load|save` from [`crate::archive_cmds`]). Output as docker
//! lays it out, names and sizes as podman prints them.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use berth_image::import::{ImportSource, import_with_message};
use berth_image::{Image, Reference, Store};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::output::{self, Format};
use crate::{CmdResult, Global};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    Images(ListArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Make an image from a root filesystem tarball (as `docker export` writes it) or a directory
    Import(ImportArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageGroup),
}

/// `berth image ...`
#[derive(Debug, Subcommand)]
pub enum ImageGroup {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Show images in detail (docker's JSON)
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Make an image from a root filesystem tarball or a directory
    Import(ImportArgs),
    /// Pull an image from a registry
    Pull(crate::registry_cmds::PullArgs),
    /// Push an image to a registry
    Push(crate::registry_cmds::PushArgs),
    /// Load images from an archive
    Load(crate::archive_cmds::LoadArgs),
    /// Save images to an archive
    Save(crate::archive_cmds::SaveArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only the image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// All images (berth keeps no intermediate images: the same as without)
    #[arg(short, long)]
    pub all: bool,
    /// Show the digests
    #[arg(long)]
    pub digests: bool,
    /// Do not truncate ids
    #[arg(long)]
    pub no_trunc: bool,
    /// json, or a Go template (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}\t{{.Size}}`)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// reference=PATTERN, dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Only images in this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TagArgs {
    /// The image: a name or an id
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The new names
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RmiArgs {
    /// Remove even when containers use it (they keep it, untagged, until they go)
    #[arg(short, long)]
    pub force: bool,
    /// Remove every image
    #[arg(short, long)]
    pub all: bool,
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Sizes and dates for people (the default)
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Only the ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the commands
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// json (the default) or a Go template (`{{.Id}}`, `{{json .Config}}`)
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// Every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// A Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// The history comment
    #[arg(short, long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Print nothing but the id
    #[arg(short, long)]
    pub quiet: bool,
    /// A tar file (plain, gzip, zstd), a directory, or - for stdin
    #[arg(value_name = "TARBALL|DIR|-")]
    pub source: String,
    /// The image's name (`busybox` = localhost/busybox:latest); none: untagged
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

pub fn run(global: &Global, command: ImageCommand) -> CmdResult {
    match command {
        ImageCommand::Images(args) => list(global, &args),
        ImageCommand::Tag(args) => tag(global, &args),
        ImageCommand::Rmi(args) => rmi(global, &args),
        ImageCommand::History(args) => history(global, &args),
        ImageCommand::Import(args) => import(global, &args),
        ImageCommand::Image(group) => match group {
            ImageGroup::Ls(args) => list(global, &args),
            ImageGroup::Inspect(args) => inspect(global, &args.images, args.format.as_deref()),
            ImageGroup::History(args) => history(global, &args),
            ImageGroup::Prune(args) => prune(global, &args),
            ImageGroup::Rm(args) => rmi(global, &args),
            ImageGroup::Tag(args) => tag(global, &args),
            ImageGroup::Import(args) => import(global, &args),
            ImageGroup::Pull(args) => crate::registry_cmds::pull(global, &args),
            ImageGroup::Push(args) => crate::registry_cmds::push(global, &args),
            ImageGroup::Load(args) => crate::archive_cmds::load(global, &args),
            ImageGroup::Save(args) => crate::archive_cmds::save(global, &args),
        },
    }
}

fn open(global: &Global) -> Result<Store, Box<dyn std::error::Error>> {
    Ok(Store::open(&global.root)?)
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
}

// ----- images -----

/// One row of `berth images`: an image under one of its names.
struct Row<'a> {
    image: &'a Image,
    repository: String,
    tag: String,
}

fn list(global: &Global, args: &ListArgs) -> CmdResult {
    let store = open(global)?;
    let mut images = store.list()?;
    let filters = Filters::parse(&args.filter, args.repository.as_deref(), &images)?;
    images.retain(|i| filters.keep(i));
    images.sort_by_cached_key(|i| std::cmp::Reverse((i.created_unix(), i.added)));
    let id_of = |image: &Image| {
        if args.no_trunc {
            image.id.to_string()
        } else {
            image.id.short()
        }
    };
    if args.quiet {
        let mut seen = BTreeSet::new();
        let mut out = String::new();
        for image in &images {
            if seen.insert(image.id) {
                out.push_str(&id_of(image));
                out.push('\n');
            }
        }
        print(&out);
        return Ok(0);
    }
    let mut rows = Vec::new();
    for image in &images {
        if image.names.is_empty() {
            rows.push(Row {
                image,
                repository: "<none>".into(),
                tag: "<none>".into(),
            });
        }
        for name in &image.names {
            let (repository, tag) = split_name(name);
            if filters.keep_name(name) {
                rows.push(Row {
                    image,
                    repository: repository.to_string(),
                    tag: tag.to_string(),
                });
            }
        }
    }
    let now = now();
    let format = Format::parse(args.format.as_deref());
    // The default table needs no JSON items: building them for 200 images would cost
    // as much as reading the store.
    let items: Vec<Value> = match format {
        Format::Table => Vec::new(),
        Format::Json => {
            let mut seen = BTreeSet::new();
            images
                .iter()
                .filter(|i| seen.insert(i.id))
                .map(list_json)
                .collect()
        }
        Format::Template { .. } => rows
            .iter()
            .map(|r| row_item(r, now, args.no_trunc))
            .collect(),
    };
    let text = output::render(&items, &format, || {
        let mut headers = vec!["REPOSITORY", "TAG"];
        if args.digests {
            headers.push("DIGEST");
        }
        headers.extend(["IMAGE ID", "CREATED", "SIZE"]);
        let table = rows
            .iter()
            .map(|r| {
                let mut row = vec![r.repository.clone(), r.tag.clone()];
                if args.digests {
                    row.push(digest_of(r).unwrap_or_else(|| "<none>".into()));
                }
                row.extend([
                    id_of(r.image),
                    created_since(r.image.created_unix(), now),
                    human_size(r.image.size),
                ]);
                row
            })
            .collect();
        (headers, table)
    })?;
    print(&text);
    Ok(0)
}

/// The manifest digest of a row's repository.
fn digest_of(row: &Row<'_>) -> Option<String> {
    let prefix = format!("{}@", row.repository);
    row.image
        .digests
        .iter()
        .find_map(|d| d.strip_prefix(&prefix).map(str::to_string))
        .or_else(|| (row.repository == "<none>").then(|| row.image.manifest_digest.to_string()))
}

/// docker's template fields for one row.
fn row_item(row: &Row<'_>, now: i64, no_trunc: bool) -> Value {
    let image = row.image;
    json!({
        "ID": if no_trunc { image.id.to_string() } else { image.id.short() },
        "Id": image.id.hex(),
        "Repository": row.repository,
        "Tag": row.tag,
        "Digest": digest_of(row).unwrap_or_else(|| "<none>".into()),
        "CreatedSince": created_since(image.created_unix(), now),
        "CreatedAt": created_at(image.created_unix()),
        "Created": image.created_unix(),
        "Size": human_size(image.size),
        "VirtualSize": human_size(image.size),
        "Names": image.names,
        "Labels": image.config.labels,
        "Containers": image.holders.len(),
        "Dangling": image.names.is_empty(),
    })
}

/// podman's `images --format json` object.
fn list_json(image: &Image) -> Value {
    json!({
        "Id": image.id.hex(),
        "ParentId": "",
        "RepoTags": image.names,
        "RepoDigests": image.digests,
        "Size": image.size,
        "SharedSize": 0,
        "VirtualSize": image.size,
        "Labels": image.config.labels,
        "Containers": image.holders.len(),
        "Names": image.names,
        "Digest": image.manifest_digest.to_string(),
        "Created": image.created_unix(),
        "CreatedAt": image.created.clone().unwrap_or_default(),
        "Dangling": image.names.is_empty(),
    })
}

/// `docker.io/library/busybox` and `latest` of a full name.
fn split_name(name: &str) -> (&str, &str) {
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => (&name[..colon], &name[colon + 1..]),
        _ => (name, "<none>"),
    }
}

/// `--filter` and the REPOSITORY[:TAG] argument of `images`.
#[derive(Default)]
struct Filters {
    references: Vec<String>,
    dangling: Option<bool>,
    labels: Vec<(String, Option<String>)>,
    before: Option<i64>,
    since: Option<i64>,
}

impl Filters {
    fn parse(
        filters: &[String],
        repository: Option<&str>,
        images: &[Image],
    ) -> Result<Filters, Box<dyn std::error::Error>> {
        let mut out = Filters::default();
        if let Some(repo) = repository {
            out.references.push(repo.to_string());
        }
        for filter in filters {
            let (key, value) = filter
                .split_once('=')
                .ok_or_else(|| format!("invalid filter {filter:?}: expected KEY=VALUE"))?;
            match key {
                "reference" => out.references.push(value.to_string()),
                "dangling" => {
                    out.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(format!(
                                "invalid filter {filter:?}: dangling is true or false"
                            )
                            .into());
                        }
                    })
                }
                "label" => {
                    let (k, v) = match value.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (value.to_string(), None),
                    };
                    out.labels.push((k, v));
                }
                "before" | "since" => {
                    let image = berth_image::store::resolve_in(images, value)?;
                    let t = image.created_unix();
                    if key == "before" {
                        out.before = Some(t);
                    } else {
                        out.since = Some(t);
                    }
                }
                other => {
                    return Err(format!("invalid filter {filter:?}: unknown key {other:?}").into());
                }
            }
        }
        Ok(out)
    }

    fn keep(&self, image: &Image) -> bool {
        if let Some(dangling) = self.dangling
            && dangling != image.names.is_empty()
        {
            return false;
        }
        for (k, v) in &self.labels {
            match (image.config.labels.get(k), v) {
                (None, _) => return false,
                (Some(have), Some(want)) if have != want => return false,
                _ => {}
            }
        }
        if self.before.is_some_and(|t| image.created_unix() >= t)
            || self.since.is_some_and(|t| image.created_unix() <= t)
        {
            return false;
        }
        self.references.is_empty() || image.names.iter().any(|n| self.keep_name(n))
    }

    fn keep_name(&self, name: &str) -> bool {
        self.references
            .iter()
            .all(|pattern| reference_matches(pattern, name))
    }
}

/// docker's `reference=` filter: a glob on the name, also matched without the domain and
/// `library/` (`busybox`, `busy*:lat*`), and without the tag when the pattern has none.
fn reference_matches(pattern: &str, name: &str) -> bool {
    let (repo, tag) = split_name(name);
    let (pattern_repo, pattern_tag) = match pattern.rfind(':') {
        Some(colon) if !pattern[colon..].contains('/') => {
            (&pattern[..colon], Some(&pattern[colon + 1..]))
        }
        _ => (pattern, None),
    };
    if let Some(pattern_tag) = pattern_tag
        && !glob(pattern_tag, tag)
    {
        return false;
    }
    let short = repo.split_once('/').map(|(_, rest)| rest).unwrap_or(repo);
    let shorter = short.strip_prefix("library/").unwrap_or(short);
    [repo, short, shorter]
        .iter()
        .any(|candidate| glob(pattern_repo, candidate))
}

/// `*` and `?` globbing.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

// ----- tag, rmi, prune -----

fn tag(global: &Global, args: &TagArgs) -> CmdResult {
    let store = open(global)?;
    let image = store.resolve(&args.image)?;
    for target in &args.targets {
        // podman's naming: a name without a registry is local (localhost/NAME).
        let reference = Reference::local(target)?;
        store.tag(&image, &reference)?;
    }
    Ok(0)
}

fn rmi(global: &Global, args: &RmiArgs) -> CmdResult {
    let store = open(global)?;
    let targets: Vec<String> = if args.all {
        store.list()?.iter().map(|i| i.id.to_string()).collect()
    } else if args.images.is_empty() {
        return Err("rmi: at least one image name or id is needed (or --all)".into());
    } else {
        args.images.clone()
    };
    let mut out = String::new();
    let mut failure: Option<Box<dyn std::error::Error>> = None;
    for target in &targets {
        match remove_one(&store, target, args.force, &mut out) {
            Ok(()) => {}
            Err(e) => {
                if let Some(previous) = failure.take() {
                    eprintln!("Error: {previous}");
                }
                failure = Some(e);
            }
        }
    }
    print(&out);
    match failure {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

/// Removes one image or, when it is named by one of several names, only that name (docker).
fn remove_one(
    store: &Store,
    target: &str,
    force: bool,
    out: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let image = store.resolve(target)?;
    let by_name = !image
        .id
        .hex()
        .starts_with(target.trim_start_matches("sha256:"));
    if by_name && image.names.len() > 1 {
        let name = image
            .names
            .iter()
            .find(|n| name_matches(n, target))
            .cloned()
            .unwrap_or_else(|| image.names[0].clone());
        store.untag(&Reference::parse(&name)?)?;
        out.push_str(&format!("Untagged: {name}\n"));
        return Ok(());
    }
    store.remove(&image, force)?;
    for name in &image.names {
        out.push_str(&format!("Untagged: {name}\n"));
    }
    if store.resolve(&image.id.to_string()).is_err() {
        out.push_str(&format!("Deleted: {}\n", image.id.hex()));
    }
    Ok(())
}

/// Whether `name` (full) is what `target` (as typed) names.
fn name_matches(name: &str, target: &str) -> bool {
    if let Ok(r) = Reference::parse(target)
        && r.to_string() == name
    {
        return true;
    }
    let (repo, tag) = split_name(name);
    let (want_repo, want_tag) = match target.rfind(':') {
        Some(colon) if !target[colon..].contains('/') => (&target[..colon], &target[colon + 1..]),
        _ => (target, "latest"),
    };
    tag == want_tag && (repo == want_repo || repo.ends_with(&format!("/{want_repo}")))
}

fn prune(global: &Global, args: &PruneArgs) -> CmdResult {
    if !args.force {
        let what = if args.all {
            "all images not used by any container"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let store = open(global)?;
    let removed = store.prune(args.all)?;
    let mut out = String::new();
    for image in &removed {
        out.push_str(&image.id.hex());
        out.push('\n');
    }
    print(&out);
    Ok(0)
}

// ----- inspect, history -----

/// `berth image inspect`: docker's JSON array, or a template per image.
pub fn inspect(global: &Global, names: &[String], format: Option<&str>) -> CmdResult {
    let store = open(global)?;
    let mut images = Vec::new();
    for name in names {
        images.push(store.resolve(name)?);
    }
    let mut items = Vec::new();
    for image in &images {
        items.push(inspect_json(&store, image)?);
    }
    match format.map(str::trim) {
        None | Some("") | Some("json") => {
            print(&format!("{}\n", to_pretty_json(&items)));
        }
        Some(template) => {
            let template =
                output::Template::parse(&template.replace("\\t", "\t").replace("\\n", "\n"))?;
            let mut out = String::new();
            for item in &items {
                out.push_str(&template.render(&serde_json::to_value(item)?)?);
                out.push('\n');
            }
            print(&out);
        }
    }
    Ok(0)
}

/// The image `name` as `inspect` shows it, or `None` when no image has that name (the
/// engine's `berth inspect` looks at containers and images).
#[allow(dead_code)] // called by the engine's `inspect`
pub fn inspect_value(
    global: &Global,
    name: &str,
) -> Result<Option<Value>, Box<dyn std::error::Error>> {
    let store = open(global)?;
    let image = match store.resolve(name) {
        Ok(image) => image,
        Err(berth_image::Error::ImageUnknown(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(serde_json::to_value(inspect_json(&store, &image)?)?))
}

/// docker's JSON with docker's indentation (4 spaces).
fn to_pretty_json(value: &impl serde::Serialize) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    let _ = serde::Serialize::serialize(value, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

/// One image as `docker image inspect` shows it. `Config` is the config blob's own
/// `config` object, so fields berth does not know (Docker-only ones) still show.
pub fn inspect_json<'a>(
    store: &Store,
    image: &'a Image,
) -> Result<Inspect<'a>, Box<dyn std::error::Error>> {
    let raw: Value = serde_json::from_slice(&store.read_blob(&image.id)?)?;
    let comment = image
        .config
        .history
        .last()
        .and_then(|h| h.comment.clone())
        .unwrap_or_default();
    let layers: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
    let lower_dirs: Vec<String> = image
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(&l.diff_id).display().to_string())
        .collect();
    let shown = Inspect {
        id: image.id.to_string(),
        repo_tags: &image.names,
        repo_digests: &image.digests,
        parent: "",
        comment,
        created: image
            .created
            .clone()
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        docker_version: raw.get("docker_version").cloned().unwrap_or(json!("")),
        author: image.config.author.clone().unwrap_or_default(),
        config: raw.get("config").cloned().unwrap_or(json!({})),
        architecture: &image.config.architecture,
        variant: image.config.variant.as_deref(),
        os: &image.config.os,
        size: image.size,
        virtual_size: image.size,
        graph_driver: json!({"Name": "overlay", "Data": {"LowerDir": lower_dirs.join(":")}}),
        root_fs: json!({"Type": "layers", "Layers": layers}),
        metadata: json!({"LastTagTime": "0001-01-01T00:00:00Z"}),
        digest: image.manifest_digest.to_string(),
        labels: &image.config.labels,
        user: &image.config.user,
    };
    Ok(shown)
}

/// docker's `image inspect` object, fields in docker's order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect<'a> {
    id: String,
    repo_tags: &'a [String],
    repo_digests: &'a [String],
    parent: &'static str,
    comment: String,
    created: String,
    docker_version: Value,
    author: String,
    config: Value,
    architecture: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    os: &'a str,
    size: u64,
    virtual_size: u64,
    graph_driver: Value,
    #[serde(rename = "RootFS")]
    root_fs: Value,
    metadata: Value,
    digest: String,
    labels: &'a std::collections::BTreeMap<String, String>,
    user: &'a str,
}

fn history(global: &Global, args: &HistoryArgs) -> CmdResult {
    let store = open(global)?;
    let image = store.resolve(&args.image)?;
    let now = now();
    let mut layers = image.layers.iter().rev();
    let mut steps: Vec<(String, i64, String, u64, String)> = Vec::new();
    let history = &image.config.history;
    if history.is_empty() {
        for layer in image.layers.iter().rev() {
            steps.push((
                "<missing>".into(),
                image.created_unix(),
                String::new(),
                layer.diff_size,
                String::new(),
            ));
        }
    }
    for step in history.iter().rev() {
        let size = if step.empty_layer {
            0
        } else {
            layers.next().map(|l| l.diff_size).unwrap_or(0)
        };
        let created = step
            .created
            .as_deref()
            .and_then(berth_image::config::unix_seconds)
            .unwrap_or(0);
        steps.push((
            "<missing>".into(),
            created,
            step.created_by.clone().unwrap_or_default(),
            size,
            step.comment.clone().unwrap_or_default(),
        ));
    }
    if let Some(first) = steps.first_mut() {
        first.0 = if args.no_trunc {
            image.id.to_string()
        } else {
            image.id.short()
        };
    }
    if args.quiet {
        let out: String = steps.iter().map(|s| format!("{}\n", s.0)).collect();
        print(&out);
        return Ok(0);
    }
    let format = Format::parse(args.format.as_deref());
    let items: Vec<Value> = steps
        .iter()
        .map(|(id, created, by, size, comment)| {
            json!({
                "ID": id, "Created": created, "CreatedSince": created_since(*created, now),
                "CreatedAt": created_at(*created), "CreatedBy": by, "Size": human_size(*size),
                "Comment": comment,
            })
        })
        .collect();
    let text = output::render(&items, &format, || {
        let rows = steps
            .iter()
            .map(|(id, created, by, size, comment)| {
                let by = by.replace('\t', " ");
                vec![
                    id.clone(),
                    if args.human {
                        created_since(*created, now)
                    } else {
                        created_at(*created)
                    },
                    if args.no_trunc { by } else { ellipsis(&by, 45) },
                    if args.human {
                        human_size(*size)
                    } else {
                        size.to_string()
                    },
                    comment.clone(),
                ]
            })
            .collect();
        (
            vec!["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            rows,
        )
    })?;
    print(&text);
    Ok(0)
}

// ----- import -----

fn import(global: &Global, args: &ImportArgs) -> CmdResult {
    let store = open(global)?;
    let name = args.name.as_deref().map(Reference::local).transpose()?;
    let source = ImportSource::from_arg(&args.source);
    if let ImportSource::Tar(path) = &source
        && !path.exists()
    {
        return Err(format!("import {}: no such file or directory", path.display()).into());
    }
    let image = import_with_message(
        &store,
        source,
        name.as_ref(),
        &args.change,
        args.message.as_deref(),
    )?;
    print(&format!("{}\n", image.id));
    Ok(0)
}

// ----- system df -----

/// One line of `berth system df`. The engine makes the Containers and Local Volumes
/// lines; [`system_df`] adds the Images line and prints them as docker does.
#[derive(Debug, Clone)]
pub struct DfLine {
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// The Images line: each layer counted once however many images share it; reclaimable
/// is what removing every image no container uses would free.
pub fn images_df(global: &Global) -> Result<DfLine, Box<dyn std::error::Error>> {
    let store = open(global)?;
    let images = store.list()?;
    let mut all = std::collections::HashMap::new();
    let mut used = BTreeSet::new();
    for image in &images {
        for layer in &image.layers {
            all.insert(layer.diff_id, layer.diff_size);
            if !image.holders.is_empty() {
                used.insert(layer.diff_id);
            }
        }
    }
    let size: u64 = all.values().sum();
    let in_use: u64 = used.iter().map(|d| all[d]).sum();
    Ok(DfLine {
        kind: "Images",
        total: images.len(),
        active: images.iter().filter(|i| !i.holders.is_empty()).count(),
        size,
        reclaimable: size - in_use,
    })
}

/// `berth system df`: the Images line, then `others` (Containers, Local Volumes), in
/// docker's table or `--format json|TEMPLATE` with docker's fields (Type, TotalCount,
/// Active, Size, Reclaimable).
pub fn system_df(global: &Global, others: &[DfLine], format: Option<&str>) -> CmdResult {
    let mut lines = vec![images_df(global)?];
    lines.extend(others.iter().cloned());
    let reclaimable = |l: &DfLine| {
        let percent = (l.reclaimable * 100).checked_div(l.size).unwrap_or(0);
        format!("{} ({percent}%)", human_size(l.reclaimable))
    };
    let items: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({"Type": l.kind, "TotalCount": l.total, "Active": l.active,
                   "Size": human_size(l.size), "Reclaimable": reclaimable(l),
                   "RawSize": l.size, "RawReclaimable": l.reclaimable})
        })
        .collect();
    let text = output::render(&items, &Format::parse(format), || {
        let rows = lines
            .iter()
            .map(|l| {
                vec![
                    l.kind.to_string(),
                    l.total.to_string(),
                    l.active.to_string(),
                    human_size(l.size),
                    reclaimable(l),
                ]
            })
            .collect();
        (vec!["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows)
    })?;
    print(&text);
    Ok(0)
}

// ----- how times and sizes read -----

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// docker's `2 days ago` (go-units HumanDuration).
fn created_since(created: i64, now: i64) -> String {
    if created <= 0 {
        return "N/A".to_string();
    }
    format!("{} ago", human_duration((now - created).max(0)))
}

fn human_duration(seconds: i64) -> String {
    let minutes = seconds / 60;
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// `2024-01-02 03:04:05 +0000 UTC`, as docker prints CreatedAt.
fn created_at(created: i64) -> String {
    let days = created.div_euclid(86_400);
    let secs = created.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days → (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// podman's sizes: decimal units, three significant digits (`4.27 MB`, `12 B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{} {}", significant(size, 3), UNITS[unit])
}

/// Go's `%.3g` for the numbers sizes take (no exponent form below 1e3).
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// docker's truncation of long cells: the first `max - 1` characters and `…`.
fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_podman() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1987655), "1.99 MB");
        assert_eq!(human_size(4_270_000), "4.27 MB");
        assert_eq!(human_size(4_000_000), "4 MB");
        assert_eq!(human_size(123_456_789), "123 MB");
        assert_eq!(human_size(1_500), "1.5 kB");
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(created_since(100, 100), "Less than a second ago");
        assert_eq!(created_since(99, 100), "1 second ago");
        assert_eq!(created_since(100, 145), "45 seconds ago");
        assert_eq!(created_since(0, 100), "N/A");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(2 * 86_400), "2 days");
        assert_eq!(human_duration(20 * 86_400), "2 weeks");
        assert_eq!(human_duration(100 * 86_400), "3 months");
        assert_eq!(human_duration(800 * 86_400), "2 years");
        assert_eq!(created_at(1704164645), "2024-01-02 03:04:05 +0000 UTC");
    }

    #[test]
    fn names_split_and_filter() {
        assert_eq!(
            split_name("docker.io/library/busybox:latest"),
            ("docker.io/library/busybox", "latest")
        );
        assert_eq!(split_name("localhost:5000/x:1"), ("localhost:5000/x", "1"));
        assert!(reference_matches(
            "busybox",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches(
            "busy*:lat*",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches("localhost/*", "localhost/mine:v1"));
        assert!(!reference_matches(
            "busybox:1",
            "docker.io/library/busybox:latest"
        ));
        assert!(!reference_matches(
            "alpine",
            "docker.io/library/busybox:latest"
        ));
        assert!(name_matches("localhost/mine:v1", "mine:v1"));
        assert!(name_matches("docker.io/library/busybox:latest", "busybox"));
        assert!(!name_matches("localhost/mine:v1", "mine"));
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
