//! Image records and their names, all in one file (`images.json`) replaced atomically under
//! the records lock: moving a name from one image to another, or removing an image, is one
//! rename, so no crash leaves a name on two images or a record half-written. Listing reads
//! one small file and parses no config (each record carries what `images` and `inspect`
//! print), which keeps `berth images` fast with hundreds of images.

use std::io;

use serde::{Deserialize, Serialize};

use super::Store;
use super::fsutil;
use super::layers::LayerInfo;
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The digest of the config blob (docker's image id).
    pub id: Digest,
    /// The manifest it was recorded from (kept byte-exact as a blob).
    pub manifest_digest: Digest,
    /// Full names, `docker.io/library/busybox:latest`; empty for a dangling image.
    pub names: Vec<String>,
    /// `name@sha256:...` of the manifest for each repository it was named in.
    #[serde(default)]
    pub digests: Vec<String>,
    /// From the config (RFC 3339), when it says.
    pub created: Option<String>,
    /// The uncompressed size of its layers in bytes.
    pub size: u64,
    /// Bottom first.
    pub layers: Vec<LayerInfo>,
    pub config: ImageConfig,
    /// Who uses the image (the engine's container ids); `remove` refuses while any.
    #[serde(default)]
    pub holders: Vec<String>,
    /// When it was stored here (Unix seconds).
    #[serde(default)]
    pub added: i64,
}

impl Image {
    /// `created` as Unix seconds (0 when unknown).
    pub fn created_unix(&self) -> i64 {
        self.created
            .as_deref()
            .and_then(crate::config::unix_seconds)
            .unwrap_or(0)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    images: Vec<Image>,
}

// The part of a manifest (docker v2s2 or OCI) that an image record needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

impl Store {
    /// Records the image described by `manifest_bytes` (its config and layers must already be
    /// stored; the manifest is stored if it is not) and moves `names` to it.
    pub fn add_image(&self, manifest_bytes: &[u8], names: &[Reference]) -> Result<Image> {
        let manifest_digest = self.put_blob_bytes(manifest_bytes)?;
        let bad = |reason: String| Error::BadManifest {
            digest: manifest_digest,
            reason,
        };
        let manifest: Manifest = serde_json::from_slice(manifest_bytes)
            .map_err(Error::json(format!("manifest {manifest_digest}")))?;
        if manifest.manifests.is_some() {
            return Err(bad(format!(
                "is an index of manifests ({}), not an image manifest",
                manifest.media_type.as_deref().unwrap_or("no media type")
            )));
        }
        let config_digest = Digest::parse(
            &manifest
                .config
                .ok_or_else(|| bad("has no config".to_string()))?
                .digest,
        )?;
        let raw_config = self.read_blob(&config_digest)?;
        let config = ImageConfig::parse(&raw_config, &config_digest)?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for descriptor in &manifest.layers {
            let blob = Digest::parse(&descriptor.digest)?;
            layers.push(
                self.layer_by_blob(&blob)?
                    .ok_or(Error::LayerUnknown(blob))?,
            );
        }
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        if diff_ids != config.diff_ids {
            return Err(bad(format!(
                "its layers unpack to diff ids [{}] but config {config_digest} lists [{}]",
                join(&diff_ids),
                join(&config.diff_ids)
            )));
        }
        for name in names {
            check_name(name)?;
        }
        let image = Image {
            id: config_digest,
            manifest_digest,
            names: Vec::new(),
            digests: Vec::new(),
            created: config.created.clone(),
            size: layers.iter().map(|l| l.diff_size).sum(),
            layers,
            config,
            holders: Vec::new(),
            added: chrono::Utc::now().timestamp(),
        };
        self.update(|index| {
            let position = match index.images.iter().position(|i| i.id == image.id) {
                Some(p) => {
                    let old = &mut index.images[p];
                    old.manifest_digest = image.manifest_digest;
                    old.layers = image.layers.clone();
                    p
                }
                None => {
                    index.images.push(image.clone());
                    index.images.len() - 1
                }
            };
            for name in names {
                move_name(index, position, name);
            }
            Ok(index.images[position].clone())
        })
    }

    /// Records `name`'s repository digest for the image as `digest` (a pull through an
    /// index: docker's RepoDigests name the index, which `name@digest` then resolves to).
    pub fn set_repo_digest(
        &self,
        image_id: &Digest,
        name: &Reference,
        digest: &Digest,
    ) -> Result<Image> {
        let repo = name.name();
        self.update(|index| {
            let position = position_of(index, image_id)?;
            let image = &mut index.images[position];
            image.digests.retain(|d| repository_of(d) != repo);
            image.digests.push(format!("{repo}@{digest}"));
            Ok(image.clone())
        })
    }

    /// Every image, in the order they were stored.
    pub fn list(&self) -> Result<Vec<Image>> {
        Ok(self.load()?.images)
    }

    /// Finds an image as docker and podman do: a full id (`sha256:<hex>` or the 64 hex
    /// digits), a name (`busybox` = `docker.io/library/busybox:latest`, or a short name that
    /// one local image has under any registry, e.g. `localhost/busybox:latest`),
    /// `name@sha256:...`, or a unique prefix of an id.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let images = self.load()?.images;
        resolve_in(&images, name)
    }

    /// Adds `name` to `image` (taking it from any image that had it).
    pub fn tag(&self, image: &Image, name: &Reference) -> Result<Image> {
        check_name(name)?;
        let id = image.id;
        self.update(|index| {
            let position = position_of(index, &id)?;
            move_name(index, position, name);
            Ok(index.images[position].clone())
        })
    }

    /// Takes `name` off the image that has it; returns that image as it is now.
    pub fn untag(&self, name: &Reference) -> Result<Image> {
        let full = name.to_string();
        self.update(|index| {
            let image = index
                .images
                .iter_mut()
                .find(|i| i.names.contains(&full))
                .ok_or_else(|| Error::ImageUnknown(full.clone()))?;
            image.names.retain(|n| n != &full);
            forget_repo_digest(image, &name.name());
            Ok(image.clone())
        })
    }

    /// Removes an image record; its blobs and layers go when no other image uses them. An
    /// image someone holds is refused, unless `force`, which only takes its names away (it
    /// stays, dangling, until its holders release it and a prune removes it, as docker does).
    pub fn remove(&self, image: &Image, force: bool) -> Result<()> {
        let id = image.id;
        self.update(|index| {
            let position = position_of(index, &id)?;
            let record = &mut index.images[position];
            if !record.holders.is_empty() {
                if !force {
                    return Err(Error::ImageInUse {
                        id: id.short(),
                        holders: record.holders.join(", "),
                    });
                }
                record.names.clear();
                record.digests.clear();
            } else {
                index.images.remove(position);
            }
            Ok(())
        })?;
        self.collect_garbage()
    }

    /// Removes dangling images (no name) nobody holds; with `all`, every image nobody holds.
    /// Returns what was removed.
    pub fn prune(&self, all: bool) -> Result<Vec<Image>> {
        let removed = self.update(|index| {
            let (gone, kept): (Vec<Image>, Vec<Image>) = std::mem::take(&mut index.images)
                .into_iter()
                .partition(|i| i.holders.is_empty() && (all || i.names.is_empty()));
            index.images = kept;
            Ok(gone)
        })?;
        self.collect_garbage()?;
        Ok(removed)
    }

    /// Records that `holder` (a container) uses the image, so it is not removed under it.
    pub fn hold(&self, image_id: &Digest, holder: &str) -> Result<()> {
        self.update(|index| {
            let position = position_of(index, image_id)?;
            let holders = &mut index.images[position].holders;
            if !holders.iter().any(|h| h == holder) {
                holders.push(holder.to_string());
            }
            Ok(())
        })
    }

    /// Undoes [`Store::hold`]; releasing an image that is gone or not held is not an error.
    pub fn release(&self, image_id: &Digest, holder: &str) -> Result<()> {
        self.update(|index| {
            if let Some(image) = index.images.iter_mut().find(|i| &i.id == image_id) {
                image.holders.retain(|h| h != holder);
            }
            Ok(())
        })
    }

    fn index_path(&self) -> std::path::PathBuf {
        self.root.join("images.json")
    }

    fn load(&self) -> Result<Index> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(Error::json(path.display().to_string()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index {
                version: 1,
                images: Vec::new(),
            }),
            Err(e) => Err(Error::Path {
                op: "read",
                path,
                source: e,
            }),
        }
    }

    /// Read, change, write back atomically, all under the records lock.
    fn update<T>(&self, change: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _lock = self.lock_records()?;
        let mut index = self.load()?;
        let result = change(&mut index)?;
        index.version = 1;
        let bytes = serde_json::to_vec(&index).map_err(Error::json("image records"))?;
        fsutil::write_atomic(&self.tmp_dir(), &self.index_path(), &bytes)?;
        Ok(result)
    }
}

fn join(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_name(name: &Reference) -> Result<()> {
    if name.digest().is_some() {
        return Err(Error::BadReference {
            reference: name.to_string(),
            reason: "an image is named by name:tag, not by digest".to_string(),
        });
    }
    Ok(())
}

fn position_of(index: &Index, id: &Digest) -> Result<usize> {
    index
        .images
        .iter()
        .position(|i| &i.id == id)
        .ok_or_else(|| Error::ImageUnknown(id.to_string()))
}

/// Gives `name` to the image at `position`, taking it from any other.
fn move_name(index: &mut Index, position: usize, name: &Reference) {
    let full = name.without_digest().to_string();
    let repo = name.name();
    for (i, image) in index.images.iter_mut().enumerate() {
        if i != position && image.names.contains(&full) {
            image.names.retain(|n| n != &full);
            forget_repo_digest(image, &repo);
        }
    }
    let image = &mut index.images[position];
    if !image.names.contains(&full) {
        image.names.push(full);
    }
    let digest = format!("{repo}@{}", image.manifest_digest);
    image.digests.retain(|d| repository_of(d) != repo);
    image.digests.push(digest);
}

/// Drops the image's digest in `repo` once no name of it is left in that repository.
fn forget_repo_digest(image: &mut Image, repo: &str) {
    if !image.names.iter().any(|n| repository_of(n) == repo) {
        image.digests.retain(|d| repository_of(d) != repo);
    }
}

/// `docker.io/library/busybox` of `docker.io/library/busybox:latest` or `...@sha256:...`.
fn repository_of(name: &str) -> &str {
    if let Some((repo, _)) = name.split_once('@') {
        return repo;
    }
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// Whether `input` names its registry (docker's rule for the first component).
fn has_domain(input: &str) -> bool {
    match input.split_once('/') {
        Some((first, _)) => {
            first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase())
        }
        None => false,
    }
}

/// [`Store::resolve`] among `images` (a listing already read).
pub fn resolve_in(images: &[Image], input: &str) -> Result<Image> {
    let unknown = || Error::ImageUnknown(input.to_string());
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex && hex.len() == 64 {
        let id = Digest::from_hex(hex).ok_or_else(unknown)?;
        return images
            .iter()
            .find(|i| i.id == id)
            .cloned()
            .ok_or_else(unknown);
    }
    if let Ok(reference) = Reference::parse(input) {
        if let Some(digest) = reference.digest() {
            let digest = Digest::parse(digest)?;
            let repo = reference.name();
            // The manifest's own digest, or one recorded for the repository (the digest
            // of the index it was pulled through, as docker records it).
            let pinned = format!("{repo}@{digest}");
            let by_digest: Vec<&Image> = images
                .iter()
                .filter(|i| i.manifest_digest == digest || i.digests.contains(&pinned))
                .collect();
            return by_digest
                .iter()
                .find(|i| {
                    i.digests
                        .iter()
                        .chain(&i.names)
                        .any(|n| repository_of(n) == repo)
                })
                .or(by_digest.first())
                .map(|i| (*i).clone())
                .ok_or_else(unknown);
        }
        let full = reference.to_string();
        if let Some(image) = images.iter().find(|i| i.names.contains(&full)) {
            return Ok(image.clone());
        }
        if !has_domain(input) {
            // A short name: podman finds `localhost/busybox:latest` (an import) for `busybox`.
            let path = if input.contains('/') {
                reference.repository().to_string()
            } else {
                reference
                    .repository()
                    .trim_start_matches("library/")
                    .to_string()
            };
            let suffix = format!("/{path}:{}", reference.tag().unwrap_or("latest"));
            let matches: Vec<&Image> = images
                .iter()
                .filter(|i| i.names.iter().any(|n| n.ends_with(&suffix)))
                .collect();
            match matches.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                many => {
                    return Err(Error::AmbiguousId {
                        name: input.to_string(),
                        count: many.len(),
                    });
                }
            }
        }
    }
    if is_hex && hex.len() >= 3 {
        let matches: Vec<&Image> = images
            .iter()
            .filter(|i| i.id.hex().starts_with(hex))
            .collect();
        return match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(unknown()),
            many => Err(Error::AmbiguousId {
                name: input.to_string(),
                count: many.len(),
            }),
        };
    }
    if let Err(e) = Reference::parse(input) {
        return Err(e.into());
    }
    Err(unknown())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &[u8], names: &[&str]) -> Image {
        Image {
            id: Digest::of(id),
            manifest_digest: Digest::of(&[id, b"m"].concat()),
            names: names.iter().map(|s| s.to_string()).collect(),
            digests: Vec::new(),
            created: None,
            size: 0,
            layers: Vec::new(),
            config: ImageConfig::default(),
            holders: Vec::new(),
            added: 0,
        }
    }

    #[test]
    fn resolves_like_docker_and_podman() {
        let images = vec![
            image(b"a", &["docker.io/library/busybox:latest"]),
            image(b"b", &["localhost/mine:latest", "localhost/mine:v1"]),
            image(b"c", &["quay.io/x/y:1"]),
        ];
        let id_of = |s: &str| resolve_in(&images, s).map(|i| i.id);
        assert_eq!(id_of("busybox").unwrap(), images[0].id);
        assert_eq!(id_of("docker.io/library/busybox").unwrap(), images[0].id);
        assert_eq!(id_of("mine").unwrap(), images[1].id);
        assert_eq!(id_of("mine:v1").unwrap(), images[1].id);
        assert_eq!(id_of("localhost/mine").unwrap(), images[1].id);
        assert_eq!(id_of("quay.io/x/y:1").unwrap(), images[2].id);
        assert_eq!(id_of(&images[2].id.to_string()).unwrap(), images[2].id);
        assert_eq!(id_of(&images[2].id.hex()).unwrap(), images[2].id);
        assert_eq!(id_of(&images[2].id.hex()[..8]).unwrap(), images[2].id);
        let by_digest = format!("quay.io/x/y@{}", images[2].manifest_digest);
        assert_eq!(id_of(&by_digest).unwrap(), images[2].id);
        let err = id_of("nothere").unwrap_err();
        assert!(err.to_string().contains("nothere"), "{err}");
        let err = id_of("Bad Name!").unwrap_err();
        assert!(err.to_string().contains("Bad Name!"), "{err}");
    }

    #[test]
    fn names_move_between_images() {
        let mut index = Index {
            version: 1,
            images: vec![image(b"a", &["localhost/x:latest"]), image(b"b", &[])],
        };
        move_name(&mut index, 1, &Reference::local("x").unwrap());
        assert!(index.images[0].names.is_empty());
        assert_eq!(index.images[1].names, ["localhost/x:latest"]);
        assert_eq!(repository_of("localhost:5000/x:1"), "localhost:5000/x");
        assert_eq!(repository_of("localhost:5000/x"), "localhost:5000/x");
    }
}
