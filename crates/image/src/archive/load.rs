//! `load`: images from a docker-archive (manifest.json, as every `docker save` and
//! containers/image write it, Docker >= 25's OCI-layout form included) or an OCI layout
//! (an oci-archive tar or an `oci:DIR`).
//!
//! Two phases, so a bad archive stores nothing: first everything is read and checked that
//! can be without touching the store (the JSON documents, config digests, that every layer
//! entry exists and is whole); then layers and blobs are stored (each verified against its
//! digest as it streams) for every image, and only when all are stored are the images
//! recorded. A layer that lies about its digest fails the second phase before any image
//! is recorded; what it left is unreferenced content the store's garbage collection removes.

use std::io::Read;

use super::compression::{Compression, peek};
use super::docker::{self, MANIFEST_JSON, ManifestItem, REPOSITORIES, Repositories};
use super::error::{Error, Result};
use super::layout::{self, Layout, blob_entry, parse_json, read_all};
use super::oci::{self, CONTAINERD_NAME, Descriptor, Document, INDEX_JSON, OCI_LAYOUT, REF_NAME};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{Image, Store};

/// An image loaded, with the names it was given.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub image: Image,
    pub names: Vec<Reference>,
}

/// What `load` reports while it works (podman prints these as "Copying blob ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    Layer(&'a Digest),
    Config(&'a Digest),
}

/// One image to store, checked and ready.
struct Plan {
    /// How errors name it: `manifest.json[0]`, `index.json manifest sha256:...`.
    what: String,
    config: Vec<u8>,
    config_digest: Digest,
    layers: Vec<LayerPlan>,
    /// The manifest to record as is (an OCI layout's, byte-exact); None: build one once the
    /// layers are stored (a docker-archive's layers carry no manifest).
    manifest: Option<Vec<u8>>,
    /// For a docker-archive in Docker >= 25's form: the OCI manifests it also carries, to
    /// be used when one describes exactly this image.
    candidates: Vec<Vec<u8>>,
    names: Vec<Reference>,
}

struct LayerPlan {
    entry: String,
    /// The blob's digest when known before reading (an OCI descriptor; an uncompressed
    /// docker-archive layer, whose digest is its diff id).
    blob: Option<Digest>,
    diff_id: Digest,
    compression: Compression,
}

/// Loads every image of `layout`; with `tag`, only the OCI layout's image(s) so tagged.
pub fn load_layout(
    store: &Store,
    layout: &dyn Layout,
    tag: Option<&str>,
    on_step: &dyn Fn(Step<'_>),
) -> Result<Vec<Loaded>> {
    let plans = if layout.has(MANIFEST_JSON)? && tag.is_none() {
        plan_docker(layout)?
    } else if layout.has(INDEX_JSON)? {
        plan_oci(layout, tag)?
    } else {
        return Err(Error::NotAnArchive {
            archive: layout.name().to_string(),
            reason: format!(
                "neither {MANIFEST_JSON} (docker-archive) nor {INDEX_JSON} (OCI layout) in it"
            ),
        });
    };
    if plans.is_empty() {
        return Err(Error::BadImage {
            archive: layout.name().to_string(),
            what: if tag.is_some() {
                INDEX_JSON
            } else {
                MANIFEST_JSON
            }
            .to_string(),
            reason: match tag {
                Some(t) => format!("no image tagged {t:?}"),
                None => "no image in the archive".to_string(),
            },
        });
    }
    let result = store_plans(store, layout, &plans, on_step);
    if result.is_err() {
        // What the failed load stored is referenced by no image: collect it now (when no
        // other process is using the store; else a later remove or prune does).
        if let Err(e) = store.collect_garbage() {
            log::warn!("{}: cleaning up after a failed load: {e}", layout.name());
        }
    }
    result
}

fn store_plans(
    store: &Store,
    layout: &dyn Layout,
    plans: &[Plan],
    on_step: &dyn Fn(Step<'_>),
) -> Result<Vec<Loaded>> {
    let archive = layout.name();
    // Phase 2a: content.
    let mut manifests = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut stored = Vec::with_capacity(plan.layers.len());
        for layer in &plan.layers {
            let (mut reader, _) = layout.open(&layer.entry)?;
            let info = match &layer.blob {
                Some(blob) => {
                    on_step(Step::Layer(blob));
                    store.put_layer(blob, &mut reader, &|_| {})
                }
                None => store.put_layer_stream(&mut reader, &|_| {}),
            }
            .map_err(|source| in_entry(archive, &layer.entry, source))?;
            if info.diff_id != layer.diff_id {
                return Err(Error::DigestMismatch {
                    archive: archive.to_string(),
                    entry: format!("{} (uncompressed)", layer.entry),
                    expected: layer.diff_id,
                    actual: info.diff_id,
                });
            }
            if layer.blob.is_none() {
                on_step(Step::Layer(&info.blob));
            }
            stored.push((info, layer.compression));
        }
        on_step(Step::Config(&plan.config_digest));
        store
            .put_blob(Some(&plan.config_digest), &mut &plan.config[..])
            .map_err(Error::store(archive))?;
        let manifest = match &plan.manifest {
            Some(bytes) => bytes.clone(),
            None => docker_manifest(plan, &stored),
        };
        manifests.push(manifest);
    }
    // Phase 2b: records.
    let mut loaded = Vec::with_capacity(plans.len());
    for (plan, manifest) in plans.iter().zip(&manifests) {
        let image = store
            .add_image(manifest, &plan.names)
            .map_err(|source| Error::Store {
                archive: format!("{archive}: {}", plan.what),
                source,
            })?;
        loaded.push(Loaded {
            image,
            names: plan.names.clone(),
        });
    }
    Ok(loaded)
}

fn in_entry(archive: &str, entry: &str, source: crate::error::Error) -> Error {
    Error::Store {
        archive: format!("{archive}: entry {entry:?}"),
        source,
    }
}

/// The manifest recorded for a docker-archive image: the archive's own OCI manifest when
/// it carries one that describes exactly these blobs (Docker >= 25), else an OCI manifest
/// built from the config and layers as Docker 25 builds it (deterministic bytes, so loading
/// the same archive twice gives the same manifest digest).
fn docker_manifest(plan: &Plan, stored: &[(crate::store::LayerInfo, Compression)]) -> Vec<u8> {
    let manifest = oci::Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        config: Descriptor::new(
            oci::OCI_CONFIG,
            plan.config_digest,
            plan.config.len() as u64,
        ),
        layers: stored
            .iter()
            .map(|(info, compression)| {
                let media_type = match compression {
                    Compression::None => oci::OCI_LAYER,
                    Compression::Gzip => oci::OCI_LAYER_GZIP,
                    Compression::Zstd => oci::OCI_LAYER_ZSTD,
                };
                Descriptor::new(media_type, info.blob, info.size)
            })
            .collect(),
        annotations: None,
    };
    for bytes in &plan.candidates {
        if let Ok(Document::Manifest(theirs)) = oci::parse_document(bytes, None)
            && theirs.config.digest == manifest.config.digest
            && theirs.layers.len() == manifest.layers.len()
            && theirs
                .layers
                .iter()
                .zip(&manifest.layers)
                .all(|(a, b)| a.digest == b.digest && a.size == b.size)
        {
            return bytes.clone();
        }
    }
    oci::to_bytes(&manifest)
}

// ---------------------------------------------------------------- docker-archive

fn plan_docker(layout: &dyn Layout) -> Result<Vec<Plan>> {
    let archive = layout.name();
    let items: Vec<ManifestItem> =
        parse_json(layout, MANIFEST_JSON, &read_all(layout, MANIFEST_JSON)?)?;
    let repositories: Repositories = if layout.has(REPOSITORIES)? {
        parse_json(layout, REPOSITORIES, &read_all(layout, REPOSITORIES)?)?
    } else {
        Repositories::new()
    };
    let candidates = oci_manifests_alongside(layout);
    let mut plans = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let what = format!("{MANIFEST_JSON}[{i}]");
        let bad = |reason: String| Error::BadImage {
            archive: archive.to_string(),
            what: what.clone(),
            reason,
        };
        let config_entry = checked_entry(layout, &what, "Config", &item.config)?;
        let config = read_all(layout, &config_entry)?;
        let config_digest = Digest::of(&config);
        if let Some(claimed) = docker::digest_in_name(&config_entry)
            && claimed != config_digest
        {
            return Err(Error::DigestMismatch {
                archive: archive.to_string(),
                entry: config_entry,
                expected: claimed,
                actual: config_digest,
            });
        }
        let parsed = ImageConfig::parse(&config, &config_digest)
            .map_err(|e| bad(format!("config {config_entry}: {e}")))?;
        if parsed.diff_ids.len() != item.layers.len() {
            return Err(bad(format!(
                "lists {} layers but its config {config_entry} has {} diff ids",
                item.layers.len(),
                parsed.diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(item.layers.len());
        for (path, diff_id) in item.layers.iter().zip(&parsed.diff_ids) {
            let entry = checked_entry(layout, &what, "Layers", path)?;
            let compression = entry_compression(layout, &entry)?;
            let claimed = docker::digest_in_name(&entry);
            let blob = match compression {
                // An uncompressed layer is its own diff: its digest is the diff id.
                Compression::None => {
                    if let Some(claimed) = claimed
                        && claimed != *diff_id
                    {
                        return Err(Error::DigestMismatch {
                            archive: archive.to_string(),
                            entry,
                            expected: *diff_id,
                            actual: claimed,
                        });
                    }
                    Some(*diff_id)
                }
                _ => claimed,
            };
            layers.push(LayerPlan {
                entry,
                blob,
                diff_id: *diff_id,
                compression,
            });
        }
        let tags = match &item.repo_tags {
            Some(tags) if !tags.is_empty() => tags.clone(),
            _ => item
                .layers
                .last()
                .map(|top| docker::legacy_names(&repositories, top))
                .unwrap_or_default(),
        };
        let names = tags
            .iter()
            .map(|t| {
                Reference::parse(t).map_err(|source| Error::BadName {
                    archive: format!("{archive}: {what}"),
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        plans.push(Plan {
            what,
            config,
            config_digest,
            layers,
            manifest: None,
            candidates: candidates.clone(),
            names,
        });
    }
    Ok(plans)
}

/// A path from manifest.json, checked to stay inside the archive and to exist.
fn checked_entry(layout: &dyn Layout, what: &str, field: &str, path: &str) -> Result<String> {
    let entry = layout::clean(path).map_err(|reason| Error::UnsafeEntry {
        archive: layout.name().to_string(),
        entry: path.to_string(),
        reason: format!("{what}.{field}: {reason}"),
    })?;
    if entry.is_empty() || !layout.has(&entry)? {
        return Err(Error::BadEntry {
            archive: layout.name().to_string(),
            entry: path.to_string(),
            reason: format!("named by {what}.{field} but not in the archive"),
        });
    }
    Ok(entry)
}

fn entry_compression(layout: &dyn Layout, entry: &str) -> Result<Compression> {
    let (reader, _) = layout.open(entry)?;
    let (head, _) = peek(reader).map_err(|source| Error::Read {
        archive: layout.name().to_string(),
        op: "reading a layer",
        source,
    })?;
    Compression::detect(&head).map_err(|u| Error::BadEntry {
        archive: layout.name().to_string(),
        entry: entry.to_string(),
        reason: format!("layer is {u}"),
    })
}

/// The OCI manifests a Docker >= 25 docker-archive carries next to manifest.json (unread
/// when there is no index.json; a broken one is ignored: manifest.json is what docker reads).
fn oci_manifests_alongside(layout: &dyn Layout) -> Vec<Vec<u8>> {
    let Ok(true) = layout.has(INDEX_JSON) else {
        return Vec::new();
    };
    let Ok(bytes) = read_all(layout, INDEX_JSON) else {
        return Vec::new();
    };
    let Ok(index) = serde_json::from_slice::<oci::Index>(&bytes) else {
        return Vec::new();
    };
    index
        .manifests
        .iter()
        .filter_map(|d| {
            let bytes = read_all(layout, &blob_entry(&d.digest)).ok()?;
            (Digest::of(&bytes) == d.digest).then_some(bytes)
        })
        .collect()
}

// ---------------------------------------------------------------- OCI layout

/// Indexes nested in indexes followed at most this deep.
const MAX_NESTING: usize = 4;

fn plan_oci(layout: &dyn Layout, tag: Option<&str>) -> Result<Vec<Plan>> {
    let archive = layout.name();
    if layout.has(OCI_LAYOUT)? {
        let file: oci::LayoutFile = parse_json(layout, OCI_LAYOUT, &read_all(layout, OCI_LAYOUT)?)?;
        if !file.image_layout_version.starts_with("1.") {
            return Err(Error::BadImage {
                archive: archive.to_string(),
                what: OCI_LAYOUT.to_string(),
                reason: format!(
                    "image layout version {} (only 1.x is known)",
                    file.image_layout_version
                ),
            });
        }
    }
    let index: oci::Index = parse_json(layout, INDEX_JSON, &read_all(layout, INDEX_JSON)?)?;
    let mut plans: Vec<Plan> = Vec::new();
    // Several index entries may name one manifest (one per tag): one image, all names.
    let mut planned: Vec<Digest> = Vec::new();
    for top in &index.manifests {
        if let Some(tag) = tag
            && top.annotation(REF_NAME) != Some(tag)
        {
            continue;
        }
        let names = oci_names(archive, top);
        if let Some(i) = planned.iter().position(|d| *d == top.digest) {
            plans[i].names.extend(names);
            continue;
        }
        planned.push(top.digest);
        let what = format!("{INDEX_JSON} manifest {}", top.digest);
        let (manifest_bytes, manifest) = resolve_manifest(layout, &what, top, 0)?;
        let config_entry = blob_entry(&manifest.config.digest);
        let config = read_blob(layout, &what, &manifest.config)?;
        let config_digest = manifest.config.digest;
        let parsed = ImageConfig::parse(&config, &config_digest).map_err(|e| Error::BadImage {
            archive: archive.to_string(),
            what: what.clone(),
            reason: format!("config {config_entry}: {e}"),
        })?;
        if parsed.diff_ids.len() != manifest.layers.len() {
            return Err(Error::BadImage {
                archive: archive.to_string(),
                what,
                reason: format!(
                    "lists {} layers but its config has {} diff ids",
                    manifest.layers.len(),
                    parsed.diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for (descriptor, diff_id) in manifest.layers.iter().zip(&parsed.diff_ids) {
            let entry = blob_entry(&descriptor.digest);
            let (_, size) = layout.open(&entry).map_err(|_| Error::BadEntry {
                archive: archive.to_string(),
                entry: entry.clone(),
                reason: format!(
                    "layer {} of {what} is not in the archive",
                    descriptor.digest
                ),
            })?;
            if size != descriptor.size {
                return Err(Error::BadEntry {
                    archive: archive.to_string(),
                    entry,
                    reason: format!("{size} bytes, the manifest says {}", descriptor.size),
                });
            }
            let compression = entry_compression(layout, &entry)?;
            layers.push(LayerPlan {
                entry,
                blob: Some(descriptor.digest),
                diff_id: *diff_id,
                compression,
            });
        }
        plans.push(Plan {
            what,
            config,
            config_digest,
            layers,
            manifest: Some(manifest_bytes),
            candidates: Vec::new(),
            names,
        });
    }
    Ok(plans)
}

/// The image manifest `descriptor` leads to (through indexes, picking this platform).
fn resolve_manifest(
    layout: &dyn Layout,
    what: &str,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<(Vec<u8>, oci::Manifest)> {
    let bytes = read_blob(layout, what, descriptor)?;
    let bad = |reason: String| Error::BadImage {
        archive: layout.name().to_string(),
        what: format!("{what} ({})", blob_entry(&descriptor.digest)),
        reason,
    };
    match oci::parse_document(&bytes, Some(&descriptor.media_type)).map_err(bad)? {
        Document::Manifest(m) => Ok((bytes, m)),
        Document::Index(_) if depth >= MAX_NESTING => {
            Err(bad(format!("indexes nested more than {MAX_NESTING} deep")))
        }
        Document::Index(index) => {
            let chosen = oci::select_for_host(&index).map_err(bad)?;
            resolve_manifest(layout, what, chosen, depth + 1)
        }
    }
}

/// A blob of the layout, verified against its descriptor (size first: a lying size must
/// not make us read a huge entry).
fn read_blob(layout: &dyn Layout, what: &str, descriptor: &Descriptor) -> Result<Vec<u8>> {
    let entry = blob_entry(&descriptor.digest);
    let archive = layout.name().to_string();
    let (mut reader, size) = layout.open(&entry).map_err(|_| Error::BadEntry {
        archive: archive.clone(),
        entry: entry.clone(),
        reason: format!("blob {} of {what} is not in the archive", descriptor.digest),
    })?;
    if size != descriptor.size {
        return Err(Error::BadEntry {
            archive,
            entry,
            reason: format!("{size} bytes, its descriptor says {}", descriptor.size),
        });
    }
    if size > layout::JSON_LIMIT {
        return Err(Error::BadEntry {
            archive,
            entry,
            reason: format!("{size} bytes: too large for a JSON document"),
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read {
            archive: archive.clone(),
            op: "reading a blob",
            source,
        })?;
    let actual = Digest::of(&bytes);
    if actual != descriptor.digest {
        return Err(Error::DigestMismatch {
            archive,
            entry,
            expected: descriptor.digest,
            actual,
        });
    }
    Ok(bytes)
}

/// The names an index entry gives its image, as podman reads them: containerd's full name
/// when present; else `ref.name` (a short one goes under `localhost/`, as podman names it).
/// A name that is not a reference is dropped with a warning: the image still loads, untagged.
fn oci_names(archive: &str, descriptor: &Descriptor) -> Vec<Reference> {
    let parsed = if let Some(full) = descriptor.annotation(CONTAINERD_NAME) {
        Reference::parse(full)
    } else if let Some(name) = descriptor.annotation(REF_NAME) {
        Reference::local(name)
    } else {
        return Vec::new();
    };
    match parsed {
        Ok(r) => vec![r],
        Err(e) => {
            log::warn!(
                "{archive}: manifest {}: {e}: loaded without this name",
                descriptor.digest
            );
            Vec::new()
        }
    }
}
