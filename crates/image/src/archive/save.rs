//! `save`: images out as a docker-archive (the layout `docker save` < 25 and podman write:
//! `<id>/layer.tar` uncompressed, `<config>.json`, manifest.json, repositories, which every
//! docker, podman and skopeo loads), an oci-archive (a tar of an OCI layout) or an OCI
//! layout directory. Blobs go out byte-exact; only a docker v2s2 manifest is rewritten with
//! OCI media types for an OCI layout (as skopeo does), since OCI layouts hold OCI manifests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::compression::{self, Compression, MAGIC_LEN};
use super::docker::{self, MANIFEST_JSON, ManifestItem, REPOSITORIES, Repositories};
use super::error::{Error, Result};
use super::layout::blob_entry;
use super::oci::{self, Descriptor, Document, INDEX_JSON, LAYOUT_VERSION, OCI_LAYOUT, REF_NAME};
use super::tarwrite::TarWriter;
use crate::digest::{Digest, Hasher};
use crate::reference::Reference;
use crate::store::{Image, LayerInfo, Store};

/// podman's `--format` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
    OciDir,
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "docker-archive" => Ok(Format::DockerArchive),
            "oci-archive" => Ok(Format::OciArchive),
            "oci-dir" => Ok(Format::OciDir),
            other => Err(Error::Usage(format!(
                "unknown format {other:?}: use docker-archive, oci-archive or oci-dir"
            ))),
        }
    }
}

/// An image to save and the names it is saved under.
#[derive(Debug, Clone)]
pub struct Selected {
    pub image: Image,
    pub names: Vec<Reference>,
}

/// Resolves the command line's images. An image given by name is saved under that name
/// (as docker does); one given by id keeps no name. The same image given twice is saved once
/// with every name it was given.
pub fn select(store: &Store, args: &[String]) -> Result<Vec<Selected>> {
    if args.is_empty() {
        return Err(Error::Usage(
            "save: at least one image is needed".to_string(),
        ));
    }
    let mut selected: Vec<Selected> = Vec::new();
    for arg in args {
        let image = store.resolve(arg).map_err(Error::Image)?;
        let name = name_given(&image, arg);
        match selected.iter_mut().find(|s| s.image.id == image.id) {
            Some(s) => {
                if let Some(n) = name
                    && !s.names.contains(&n)
                {
                    s.names.push(n);
                }
            }
            None => selected.push(Selected {
                image,
                names: name.into_iter().collect(),
            }),
        }
    }
    Ok(selected)
}

/// Which of the image's names `arg` meant, if it was a name at all.
fn name_given(image: &Image, arg: &str) -> Option<Reference> {
    let hexish = arg.trim_start_matches("sha256:");
    let id_like = arg.starts_with("sha256:")
        || (hexish.len() >= 3 && hexish.bytes().all(|b| b.is_ascii_hexdigit()));
    if id_like && image.id.hex().starts_with(hexish) {
        return None;
    }
    let names: Vec<Reference> = image
        .names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .collect();
    if let Ok(r) = Reference::parse(arg)
        && names.contains(&r)
    {
        return Some(r);
    }
    // A short name found under another registry (`busybox` for `localhost/busybox:latest`).
    let wanted = if arg.contains(':') && !arg.ends_with(':') {
        arg.to_string()
    } else {
        format!("{arg}:latest")
    };
    names
        .into_iter()
        .find(|n| n.to_string().ends_with(&format!("/{wanted}")))
}

/// Writes `images` as a tar of `format` (docker-archive or oci-archive) to `out`; `dest`
/// names it in errors.
pub fn save_tar(
    store: &Store,
    images: &[Selected],
    format: Format,
    out: &mut dyn Write,
    dest: &str,
) -> Result<()> {
    let write_err = |source| Error::Write {
        dest: dest.to_string(),
        source,
    };
    let mut tar = TarWriter::new(out);
    match format {
        Format::DockerArchive => write_docker(store, images, &mut tar, dest)?,
        Format::OciArchive => {
            let index = write_oci(store, images, &mut TarSink(&mut tar), dest, None)?;
            tar.bytes(INDEX_JSON, &oci::to_bytes(&index))
                .map_err(write_err)?;
        }
        Format::OciDir => {
            return Err(Error::Usage(
                "oci-dir is a directory: give it with -o DIR".to_string(),
            ));
        }
    }
    tar.finish()
        .map_err(write_err)?
        .flush()
        .map_err(write_err)?;
    Ok(())
}

/// Saves to a file (a tar for the archive formats, a directory for oci-dir). A tar is
/// written next to `path` and renamed over it when complete: a failed save leaves no
/// half-written file behind.
pub fn save_to_path(store: &Store, images: &[Selected], format: Format, path: &Path) -> Result<()> {
    if format == Format::OciDir {
        return save_oci_dir(store, images, path);
    }
    let dest = path.display().to_string();
    let staging = staging_path(path);
    let file = File::create(&staging).map_err(Error::path("create", &staging))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let result = save_tar(store, images, format, &mut out, &dest).and_then(|()| {
        let file = out.into_inner().map_err(|e| Error::Write {
            dest: dest.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(|source| Error::Write {
            dest: dest.clone(),
            source,
        })
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    std::fs::rename(&staging, path).map_err(|e| {
        let _ = std::fs::remove_file(&staging);
        Error::Path {
            op: "rename into",
            path: path.to_path_buf(),
            source: e,
        }
    })
}

fn staging_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.berth-save-{}", std::process::id()))
}

// ---------------------------------------------------------------- docker-archive

fn write_docker<W: Write>(
    store: &Store,
    images: &[Selected],
    tar: &mut TarWriter<W>,
    dest: &str,
) -> Result<()> {
    let write_err = |source| Error::Write {
        dest: dest.to_string(),
        source,
    };
    let mut items = Vec::with_capacity(images.len());
    let mut repositories = Repositories::new();
    // Where each diff was first written: a layer shared at another place in another chain
    // is a symlink to it (as docker writes it).
    let mut diffs: HashMap<Digest, String> = HashMap::new();
    for selected in images {
        let image = &selected.image;
        let mut parent: Option<Digest> = None;
        let mut layer_paths = Vec::with_capacity(image.layers.len());
        for info in &image.layers {
            let id = docker::v1_id(parent.as_ref(), &info.diff_id);
            let dir = id.hex();
            let path = format!("{dir}/layer.tar");
            if !tar.has(&path) {
                tar.dir(&dir).map_err(write_err)?;
                tar.bytes(&format!("{dir}/VERSION"), b"1.0")
                    .map_err(write_err)?;
                let json =
                    docker::v1_json(&id, parent.as_ref(), image.created.as_deref(), os(image));
                tar.bytes(&format!("{dir}/json"), &json)
                    .map_err(write_err)?;
                match diffs.get(&info.diff_id) {
                    Some(first) => tar
                        .symlink(&path, &format!("../{first}"))
                        .map_err(write_err)?,
                    None => {
                        let (mut reader, size) = uncompressed_layer(store, info)?;
                        tar.file(&path, size, &mut reader).map_err(write_err)?;
                        diffs.insert(info.diff_id, path.clone());
                    }
                }
            }
            layer_paths.push(path);
            parent = Some(id);
        }
        let config_entry = format!("{}.json", image.id.hex());
        if !tar.has(&config_entry) {
            let config = store.read_blob(&image.id).map_err(Error::Image)?;
            tar.bytes(&config_entry, &config).map_err(write_err)?;
        }
        for name in &selected.names {
            if let (Some(tag), Some(top)) = (name.tag(), parent) {
                repositories
                    .entry(name.name())
                    .or_default()
                    .insert(tag.to_string(), top.hex());
            }
        }
        items.push(ManifestItem {
            config: config_entry,
            repo_tags: (!selected.names.is_empty()).then(|| {
                selected
                    .names
                    .iter()
                    .map(|n| n.without_digest().to_string())
                    .collect()
            }),
            layers: layer_paths,
        });
    }
    let manifest = serde_json::to_vec(&items).expect("manifest.json serializes");
    tar.bytes(MANIFEST_JSON, &manifest).map_err(write_err)?;
    if !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories).expect("repositories serializes");
        tar.bytes(REPOSITORIES, &repos).map_err(write_err)?;
    }
    Ok(())
}

fn os(image: &Image) -> &str {
    if image.config.os.is_empty() {
        "linux"
    } else {
        &image.config.os
    }
}

/// The layer as the uncompressed tar a docker-archive holds (its digest is the diff id),
/// verified as it is read, and its size.
fn uncompressed_layer<'a>(store: &'a Store, info: &LayerInfo) -> Result<(Box<dyn Read + 'a>, u64)> {
    let blob = store.open_blob(&info.blob).map_err(Error::Image)?;
    let mut head = [0u8; MAGIC_LEN];
    let n = std::os::unix::fs::FileExt::read_at(&blob, &mut head, 0)
        .map_err(Error::path("read", store.blob_path(&info.blob)))?;
    let compression = Compression::detect(&head[..n])
        .map_err(|u| Error::Usage(format!("layer {}: {u}", info.blob)))?;
    if compression == Compression::None {
        let size = store.blob_size(&info.blob).map_err(Error::Image)?;
        return Ok((Box::new(Verified::new(blob, info.diff_id, size)), size));
    }
    let decoded = decoder(blob, &info.blob)?;
    if info.diff_size > 0 {
        return Ok((
            Box::new(Verified::new(decoded, info.diff_id, info.diff_size)),
            info.diff_size,
        ));
    }
    // A record without the uncompressed size: decompress once to learn it.
    let mut spool = tempfile::tempfile_in(store.tmp_dir())
        .map_err(Error::path("create a spool file in", store.tmp_dir()))?;
    let mut verified = Verified::new(decoded, info.diff_id, u64::MAX);
    let size = io::copy(&mut verified, &mut spool)
        .map_err(Error::path("write a spool file in", store.tmp_dir()))?;
    if verified.hasher.clone().finish() != info.diff_id {
        return Err(Error::Image(crate::error::Error::DigestMismatch {
            expected: info.diff_id,
            actual: verified.hasher.finish(),
        }));
    }
    io::Seek::rewind(&mut spool).map_err(Error::path("rewind a spool file in", store.tmp_dir()))?;
    Ok((Box::new(spool), size))
}

fn decoder(blob: File, digest: &Digest) -> Result<Box<dyn Read>> {
    match compression::decoder(blob) {
        Ok(Ok((_, reader))) => Ok(reader),
        Ok(Err(u)) => Err(Error::Usage(format!("layer {digest}: {u}"))),
        Err(e) => Err(Error::Read {
            archive: format!("layer {digest}"),
            op: "reading",
            source: e,
        }),
    }
}

/// Checks at the end that what was read hashes to the diff id and has the announced size:
/// a store damaged on disk must not produce an archive that looks right.
struct Verified<R> {
    inner: R,
    expected: Digest,
    size: u64,
    hasher: Hasher,
}

impl<R: Read> Verified<R> {
    fn new(inner: R, expected: Digest, size: u64) -> Verified<R> {
        Verified {
            inner,
            expected,
            size,
            hasher: Hasher::new(),
        }
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        let corrupt = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if n == 0 && self.size != u64::MAX {
            let actual = self.hasher.clone().finish();
            if self.hasher.len() != self.size || actual != self.expected {
                return Err(corrupt(format!(
                    "stored layer {} is damaged: {} bytes hashing to {actual}, expected {} bytes",
                    self.expected,
                    self.hasher.len(),
                    self.size
                )));
            }
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------- OCI layout

/// Where OCI layout files go: a tar or a directory.
trait Sink {
    fn has(&self, name: &str) -> bool;
    fn dir(&mut self, name: &str) -> io::Result<()>;
    fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()>;
}

struct TarSink<'a, W: Write>(&'a mut TarWriter<W>);

impl<W: Write> Sink for TarSink<'_, W> {
    fn has(&self, name: &str) -> bool {
        self.0.has(name)
    }
    fn dir(&mut self, name: &str) -> io::Result<()> {
        self.0.dir(name)
    }
    fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        self.0.file(name, size, data)
    }
}

/// Writes `oci-layout` and the blobs of `images`; returns the index.json entries for them:
/// one per name (`ref.name` = the full name, as podman writes it), or one with `ref.name` =
/// `tag` when given (skopeo's `oci:DIR:TAG`).
fn write_oci(
    store: &Store,
    images: &[Selected],
    sink: &mut dyn Sink,
    dest: &str,
    tag: Option<&str>,
) -> Result<oci::Index> {
    let write_err = |source| Error::Write {
        dest: dest.to_string(),
        source,
    };
    let layout = oci::to_bytes(&oci::LayoutFile {
        image_layout_version: LAYOUT_VERSION.to_string(),
    });
    if !sink.has(OCI_LAYOUT) {
        sink.file(OCI_LAYOUT, layout.len() as u64, &mut &layout[..])
            .map_err(write_err)?;
    }
    sink.dir("blobs").map_err(write_err)?;
    sink.dir("blobs/sha256").map_err(write_err)?;
    let mut descriptors = Vec::new();
    let mut seen = HashSet::new();
    for selected in images {
        let image = &selected.image;
        let stored = store
            .read_blob(&image.manifest_digest)
            .map_err(Error::Image)?;
        let manifest = match oci::parse_document(&stored, None) {
            Ok(Document::Manifest(m)) => m,
            Ok(Document::Index(_)) => {
                return Err(Error::Usage(format!(
                    "image {}: its manifest is an index",
                    image.id
                )));
            }
            Err(reason) => {
                return Err(Error::Usage(format!(
                    "image {}: manifest {}: {reason}",
                    image.id, image.manifest_digest
                )));
            }
        };
        let bytes = match oci::to_oci(&manifest) {
            Some(converted) => oci::to_bytes(&converted),
            None => stored,
        };
        let digest = Digest::of(&bytes);
        for layer in &manifest.layers {
            copy_blob(store, &layer.digest, sink, &mut seen, dest)?;
        }
        copy_blob(store, &manifest.config.digest, sink, &mut seen, dest)?;
        let entry = blob_entry(&digest);
        if seen.insert(digest) && !sink.has(&entry) {
            sink.file(&entry, bytes.len() as u64, &mut &bytes[..])
                .map_err(write_err)?;
        }
        let base = Descriptor::new(oci::OCI_MANIFEST, digest, bytes.len() as u64);
        if let Some(tag) = tag {
            let mut d = base.clone();
            d.annotations = Some(BTreeMap::from([(REF_NAME.to_string(), tag.to_string())]));
            descriptors.push(d);
            continue;
        }
        if selected.names.is_empty() {
            descriptors.push(base.clone());
        }
        for name in &selected.names {
            let mut d = base.clone();
            d.annotations = Some(BTreeMap::from([(
                REF_NAME.to_string(),
                name.without_digest().to_string(),
            )]));
            descriptors.push(d);
        }
    }
    Ok(oci::Index::new(descriptors))
}

fn copy_blob(
    store: &Store,
    digest: &Digest,
    sink: &mut dyn Sink,
    seen: &mut HashSet<Digest>,
    dest: &str,
) -> Result<()> {
    let entry = blob_entry(digest);
    if !seen.insert(*digest) || sink.has(&entry) {
        return Ok(());
    }
    let size = store.blob_size(digest).map_err(Error::Image)?;
    let mut file = Verified::new(
        store.open_blob(digest).map_err(Error::Image)?,
        *digest,
        size,
    );
    sink.file(&entry, size, &mut file)
        .map_err(|source| Error::Write {
            dest: dest.to_string(),
            source,
        })
}

/// An OCI layout directory, created or added to: an image saved under a name already in
/// its index.json replaces that entry (as skopeo's `oci:DIR:TAG` does).
struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Sink for DirSink {
    fn has(&self, name: &str) -> bool {
        self.path(name).is_file()
    }
    fn dir(&mut self, name: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.path(name))
    }
    fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let path = self.path(name);
        let staging = staging_path(&path);
        let result = (|| {
            let mut file = File::create(&staging)?;
            let copied = io::copy(data, &mut file)?;
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{name}: {copied} of {size} bytes"),
                ));
            }
            file.sync_all()?;
            std::fs::rename(&staging, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&staging);
        }
        result
    }
}

pub fn save_oci_dir(store: &Store, images: &[Selected], dir: &Path) -> Result<()> {
    save_oci_dir_tagged(store, images, dir, None)
}

/// [`save_oci_dir`] with every image under `ref.name` = `tag` (`oci:DIR:TAG`; one image).
pub fn save_oci_dir_tagged(
    store: &Store,
    images: &[Selected],
    dir: &Path,
    tag: Option<&str>,
) -> Result<()> {
    let dest = match tag {
        Some(t) => format!("oci:{}:{t}", dir.display()),
        None => format!("oci:{}", dir.display()),
    };
    if tag.is_some() && images.len() != 1 {
        return Err(Error::Usage(format!(
            "{dest}: a tag names one image, not {}",
            images.len()
        )));
    }
    let write_err = |source| Error::Write {
        dest: dest.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(Error::path("create", dir))?;
    let index_path = dir.join(INDEX_JSON);
    let mut existing: Vec<Descriptor> = match std::fs::read(&index_path) {
        Ok(bytes) => {
            serde_json::from_slice::<oci::Index>(&bytes)
                .map_err(|source| Error::Json {
                    archive: dest.clone(),
                    entry: INDEX_JSON.to_string(),
                    source,
                })?
                .manifests
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Path {
                op: "read",
                path: index_path,
                source: e,
            });
        }
    };
    let mut sink = DirSink {
        dir: dir.to_path_buf(),
    };
    let added = write_oci(store, images, &mut sink, &dest, tag)?;
    let new_names: HashSet<&str> = added
        .manifests
        .iter()
        .filter_map(|d| d.annotation(REF_NAME))
        .collect();
    existing.retain(|d| {
        d.annotation(REF_NAME)
            .is_none_or(|n| !new_names.contains(n))
    });
    existing.retain(|d| {
        !added
            .manifests
            .iter()
            .any(|a| a.digest == d.digest && a.annotations.is_none() && d.annotations.is_none())
    });
    existing.extend(added.manifests.iter().cloned());
    let index = oci::to_bytes(&oci::Index::new(existing));
    sink.file(INDEX_JSON, index.len() as u64, &mut &index[..])
        .map_err(write_err)
}
