//! `commit CONTAINER [IMAGE]`: a new image from a container's changes. The overlay upper
//! dir becomes one more layer (a tar with whiteouts in the distribution form, `.wh.NAME`
//! and `.wh..wh..opq`), stored through the image store's `put_layer_stream`; the image's
//! config gets the container's settings, the `--change`s, the new diff id and a history
//! entry, and the manifest lists the image's layers and the new one (`add_image`).
//! A running container is paused while its changes are read (docker's `--pause`).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::OFlags;
use serde_json::{Map, Value, json};

use crate::Engine;
use crate::error::{Error, Result};
use crate::export::TarWriter;
use crate::safepath::{self, Root};
use crate::status::{self, State};

/// What `commit` is asked.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The new image's name (`None`: a dangling image, as docker makes).
    pub name: Option<String>,
    /// `--change` instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER,
    /// VOLUME, WORKDIR).
    pub changes: Vec<String>,
    /// `-m`: the history comment.
    pub message: Option<String>,
    /// `-a`: the author.
    pub author: Option<String>,
    /// Pause a running container while its changes are read (docker's default).
    pub pause: bool,
}

fn image_error(reference: &str) -> impl Fn(berth_image::Error) -> Error + '_ {
    move |e| Error::Image {
        reference: reference.to_string(),
        message: e.to_string(),
    }
}

/// Writes the upper dir as a layer tar: whiteouts become `.wh.` markers, opaque
/// directories get `.wh..wh..opq`.
/// `shift`: the container's files are stored shifted (keep-id); the layer has its owners as
/// the container sees them.
pub fn write_layer(
    upper: &Path,
    shift: Option<berth_image::snapshot::IdShift>,
    out: &mut dyn Write,
) -> Result<()> {
    let root = Root::open(upper)?;
    let top = root.open_at("/", OFlags::PATH | OFlags::DIRECTORY)?;
    let mut tar = TarWriter::new(out).seen_through(shift);
    safepath::walk(
        top.as_fd(),
        OsStr::new("."),
        Path::new(""),
        &mut |entry, file| {
            if entry.rel.as_os_str().is_empty() {
                return Ok(());
            }
            let archive = |e| Error::path("archive", &entry.rel, e);
            if crate::diff::is_whiteout(&entry.kind) {
                let name = entry.rel.file_name().unwrap_or_default().to_string_lossy();
                let marker = entry.rel.with_file_name(format!(".wh.{name}"));
                return tar
                    .add_marker(&marker, entry.stat.st_mtime)
                    .map_err(archive);
            }
            tar.add(entry, file).map_err(archive)?;
            if entry.kind == safepath::Kind::Dir {
                let opaque = root
                    .parent_of(&entry.rel.to_string_lossy())
                    .is_ok_and(|(parent, name)| crate::diff::is_opaque(parent.as_fd(), &name));
                if opaque {
                    tar.add_marker(&entry.rel.join(".wh..wh..opq"), entry.stat.st_mtime)
                        .map_err(archive)?;
                }
            }
            Ok(())
        },
    )?;
    tar.finish()
        .map_err(|e| Error::path("write", "the layer", e))?;
    Ok(())
}

/// Applies one `--change` to the config's `config` object.
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<()> {
    let bad = |why: &str| Error::flag("--change", change, why);
    let trimmed = change.trim();
    let split = trimmed
        .find(|c: char| c == '=' || c.is_whitespace())
        .ok_or_else(|| bad("expected INSTRUCTION=VALUE or INSTRUCTION VALUE"))?;
    let key = trimmed[..split].to_ascii_uppercase();
    let value = trimmed[split + 1..].trim();
    let command = |v: &str| -> Result<Value> {
        if v.starts_with('[') {
            serde_json::from_str::<Vec<String>>(v)
                .map(|c| json!(c))
                .map_err(|e| bad(&format!("not a JSON array of strings: {e}")))
        } else {
            Ok(json!(["/bin/sh", "-c", v]))
        }
    };
    match key.as_str() {
        "CMD" => {
            config.insert("Cmd".into(), command(value)?);
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), command(value)?);
        }
        "ENV" => {
            let (k, v) = value
                .split_once('=')
                .or_else(|| value.split_once(char::is_whitespace))
                .ok_or_else(|| bad("ENV needs NAME=VALUE"))?;
            set_env(config, k.trim(), v.trim().trim_matches('"'));
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(value));
        }
        "USER" => {
            config.insert("User".into(), json!(value));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), json!(value));
        }
        "LABEL" => {
            let (k, v) = value
                .split_once('=')
                .ok_or_else(|| bad("LABEL needs KEY=VALUE"))?;
            let labels = config.entry("Labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            labels[k.trim()] = json!(v.trim().trim_matches('"'));
        }
        "EXPOSE" => {
            let ports = config.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for port in value.split_whitespace() {
                let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
                if number.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(bad(&format!("{port:?} is not a port (80, 80/tcp, 53/udp)")));
                }
                ports[format!("{number}/{proto}")] = json!({});
            }
        }
        "VOLUME" => {
            let volumes = config.entry("Volumes").or_insert_with(|| json!({}));
            if !volumes.is_object() {
                *volumes = json!({});
            }
            for path in value.split_whitespace() {
                if !path.starts_with('/') {
                    return Err(bad(&format!("volume {path:?} is not an absolute path")));
                }
                volumes[path] = json!({});
            }
        }
        other => {
            return Err(bad(&format!(
                "{other} cannot be changed (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            )));
        }
    }
    Ok(())
}

fn set_env(config: &mut Map<String, Value>, name: &str, value: &str) {
    let env = config.entry("Env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    if let Value::Array(list) = env {
        list.retain(|e| e.as_str().and_then(|e| e.split_once('=')).map(|(n, _)| n) != Some(name));
        list.push(json!(format!("{name}={value}")));
    }
}

/// `commit`: returns the new image.
pub fn commit(engine: &Engine, id: &str, options: &CommitOptions) -> Result<berth_image::Image> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    // Changes are checked before any work.
    let names: Vec<berth_image::Reference> = match &options.name {
        Some(n) => {
            let reference = if n.contains('/') {
                berth_image::Reference::parse(n)
            } else {
                berth_image::Reference::local(n)
            };
            vec![reference.map_err(|e| Error::flag("IMAGE", n.clone(), e.to_string()))?]
        }
        None => Vec::new(),
    };
    let mut scratch = Map::new();
    for change in &options.changes {
        apply_change(&mut scratch, change)?;
    }
    let (upper, _) = crate::diff::layers_of(engine, &record)?;
    let store = berth_image::Store::open(&engine.root).map_err(image_error(&record.image_id))?;
    let image = store
        .resolve(&record.image_id)
        .map_err(image_error(&record.image_id))?;
    let paused = options.pause
        && live.state == State::Running
        && berth_container::ops::pause(&engine.runtime(), &record.id).is_ok();
    let layer = std::thread::scope(|s| {
        let (reader, writer) =
            rustix::pipe::pipe().map_err(|e| Error::path("pipe for", &upper, e.into()))?;
        let (mut reader, mut writer) = (std::fs::File::from(reader), std::fs::File::from(writer));
        let upper = &upper;
        let shift = crate::userns::shift_of(&record)?;
        let producer = s.spawn(move || write_layer(upper, shift, &mut writer));
        let stored = store.put_layer_stream(&mut reader as &mut dyn Read, &|_| {});
        drop(reader);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(Error::Other("the layer writer panicked".into())));
        produced?;
        stored.map_err(image_error(&record.image_id))
    });
    if paused {
        let _ = berth_container::ops::resume(&engine.runtime(), &record.id);
    }
    let layer = layer?;

    let raw = store
        .read_blob(&image.id)
        .map_err(image_error(&record.image_id))?;
    let mut config: Value = serde_json::from_slice(&raw).map_err(|e| Error::Image {
        reference: image.id.to_string(),
        message: format!("config: {e}"),
    })?;
    if !config.is_object() {
        config = json!({});
    }
    let created = crate::time::now();
    let run = config
        .as_object_mut()
        .expect("an object")
        .entry("config")
        .or_insert_with(|| json!({}));
    if !run.is_object() {
        *run = json!({});
    }
    let run = run.as_object_mut().expect("an object");
    // The container's own settings, as docker commit keeps them.
    let c = &record.config;
    for e in &c.env {
        if let Some((k, v)) = e.split_once('=') {
            set_env(run, k, v);
        }
    }
    if !c.command.is_empty() {
        run.insert("Cmd".into(), json!(c.command));
    }
    if let Some(ep) = &c.entrypoint {
        run.insert("Entrypoint".into(), json!(ep));
    }
    if let Some(w) = c.workdir.as_ref().filter(|w| !w.is_empty()) {
        run.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = c.user.as_ref().filter(|u| !u.is_empty()) {
        run.insert("User".into(), json!(u));
    }
    if !c.labels.is_empty() {
        let labels = run.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in &c.labels {
            labels[k] = json!(v);
        }
    }
    for change in &options.changes {
        apply_change(run, change)?;
    }
    let obj = config.as_object_mut().expect("an object");
    obj.insert("created".into(), json!(created));
    if let Some(a) = &options.author {
        obj.insert("author".into(), json!(a));
    }
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        Some(ids) => ids.push(json!(layer.diff_id.to_string())),
        None => *rootfs = json!({"type": "layers", "diff_ids": [layer.diff_id.to_string()]}),
    }
    let mut entry = json!({
        "created": created,
        "created_by": std::iter::once(record.path.as_str()).chain(record.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" "),
    });
    if let Some(m) = &options.message {
        entry["comment"] = json!(m);
    }
    if let Some(a) = &options.author {
        entry["author"] = json!(a);
    }
    let history = obj.entry("history").or_insert_with(|| json!([]));
    match history.as_array_mut() {
        Some(h) => h.push(entry),
        None => *history = json!([entry]),
    }
    let config_bytes = serde_json::to_vec(&config).expect("a config serializes");
    let config_digest = store
        .put_blob_bytes(&config_bytes)
        .map_err(image_error(&record.image_id))?;
    let media_type = |c: &berth_image::unpack::Compression| match c {
        berth_image::unpack::Compression::None => "application/vnd.oci.image.layer.v1.tar",
        berth_image::unpack::Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        berth_image::unpack::Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    };
    let layers: Vec<Value> = image
        .layers
        .iter()
        .chain(std::iter::once(&layer))
        .map(|l| json!({"mediaType": media_type(&l.compression), "digest": l.blob.to_string(), "size": l.size}))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_bytes.len(),
        },
        "layers": layers,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let image = store
        .add_image(&manifest_bytes, &names)
        .map_err(image_error(&record.image_id))?;
    crate::events::append(
        engine,
        &crate::events::Event::container(
            &record,
            "commit",
            &[("imageID", image.id.to_string().as_str())],
        ),
    );
    Ok(image)
}
