//! The docker-archive's own documents: `manifest.json` (one item per image: its config, its
//! names, its layer tars) and the legacy `repositories` (name → tag → top layer id), as
//! `docker save` (every version) and containers/image's writer produce them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const MANIFEST_JSON: &str = "manifest.json";
pub const REPOSITORIES: &str = "repositories";

/// One image of manifest.json. Docker writes `"RepoTags":null` for an untagged image.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ManifestItem {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// `repositories`: `{"busybox": {"latest": "<top layer id>"}}`.
pub type Repositories = BTreeMap<String, BTreeMap<String, String>>;

/// The names `repositories` gives the image whose top layer is at `top_layer_path`: the
/// legacy file keys images by the id of their top layer, which is the layer's directory
/// (`<id>/layer.tar`, docker < 25) or its blob name (`blobs/sha256/<id>`, docker >= 25).
pub fn legacy_names(repositories: &Repositories, top_layer_path: &str) -> Vec<String> {
    let id = legacy_layer_id(top_layer_path);
    let mut names = Vec::new();
    for (repo, tags) in repositories {
        for (tag, layer) in tags {
            if Some(layer.as_str()) == id {
                names.push(format!("{repo}:{tag}"));
            }
        }
    }
    names
}

fn legacy_layer_id(path: &str) -> Option<&str> {
    if let Some(dir) = path.strip_suffix("/layer.tar") {
        return dir.rsplit('/').next();
    }
    let base = path.rsplit('/').next()?;
    Some(base.strip_suffix(".tar").unwrap_or(base))
}

/// The digest an entry's name claims, for the names docker and containers/image give
/// content: `<hex>.json` (config), `<hex>.tar` (layer), `blobs/sha256/<hex>`, `sha256:<hex>`
/// (go-containerregistry's tarballs). Content behind such a name is verified against it.
pub fn digest_in_name(path: &str) -> Option<Digest> {
    if let Some(hex) = path.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex);
    }
    if path.contains('/') {
        return None;
    }
    if let Some(d) = path.strip_prefix("sha256:").and_then(Digest::from_hex) {
        return Some(d);
    }
    let stem = path
        .strip_suffix(".json")
        .or_else(|| path.strip_suffix(".tar"))?;
    Digest::from_hex(stem)
}

/// The v1 id docker gives layer `i` of an image in a legacy directory (`<id>/layer.tar`):
/// derived from the chain so far, so the same stack of layers gets the same directory and
/// is written once. Nothing reads it back but the `repositories` file; it needs only be
/// deterministic and distinct per chain.
pub fn v1_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    let text = match parent {
        Some(p) => format!("{p} {diff_id}"),
        None => diff_id.to_string(),
    };
    Digest::of(text.as_bytes())
}

/// The `<id>/json` docker writes next to a legacy layer: old loaders (docker < 1.10) read
/// it; current ones ignore it. Keys sorted as Go's encoder sorts a map.
pub fn v1_json(id: &Digest, parent: Option<&Digest>, created: Option<&str>, os: &str) -> Vec<u8> {
    let mut doc = serde_json::Map::new();
    doc.insert(
        "created".into(),
        created.unwrap_or("1970-01-01T00:00:00Z").into(),
    );
    doc.insert("id".into(), id.hex().into());
    doc.insert("os".into(), os.into());
    if let Some(p) = parent {
        doc.insert("parent".into(), p.hex().into());
    }
    serde_json::to_vec(&doc).expect("a map of strings serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_and_podman_manifest_json() {
        let docker20 = br#"[{"Config":"ab.json","RepoTags":["busybox:latest","busybox:1"],"Layers":["11/layer.tar","22/layer.tar"]}]"#;
        let items: Vec<ManifestItem> = serde_json::from_slice(docker20).unwrap();
        assert_eq!(items[0].repo_tags.as_ref().unwrap().len(), 2);
        assert_eq!(items[0].layers, ["11/layer.tar", "22/layer.tar"]);
        // docker: an untagged image; docker 25: Parent and LayerSources may follow.
        let untagged = br#"[{"Config":"blobs/sha256/ab","RepoTags":null,"Layers":["blobs/sha256/cd"],"Parent":"sha256:ef","LayerSources":{}}]"#;
        let items: Vec<ManifestItem> = serde_json::from_slice(untagged).unwrap();
        assert_eq!(items[0].repo_tags, None);
        let no_tags = br#"[{"Config":"x.json","Layers":[]}]"#;
        assert!(serde_json::from_slice::<Vec<ManifestItem>>(no_tags).is_ok());
        assert!(serde_json::from_slice::<Vec<ManifestItem>>(br#"{"Config":"x"}"#).is_err());
    }

    #[test]
    fn names_from_repositories() {
        let repos: Repositories =
            serde_json::from_str(r#"{"busybox":{"latest":"22","1":"22"},"other":{"x":"33"}}"#)
                .unwrap();
        assert_eq!(
            legacy_names(&repos, "22/layer.tar"),
            ["busybox:1", "busybox:latest"]
        );
        assert_eq!(legacy_names(&repos, "blobs/sha256/33"), ["other:x"]);
        assert!(legacy_names(&repos, "44.tar").is_empty());
    }

    #[test]
    fn digests_named_by_entries() {
        let d = Digest::of(b"x");
        assert_eq!(digest_in_name(&format!("{}.json", d.hex())), Some(d));
        assert_eq!(digest_in_name(&format!("{}.tar", d.hex())), Some(d));
        assert_eq!(
            digest_in_name(&format!("blobs/sha256/{}", d.hex())),
            Some(d)
        );
        assert_eq!(digest_in_name(&format!("{d}")), Some(d));
        assert_eq!(digest_in_name(&format!("{}/layer.tar", d.hex())), None);
        assert_eq!(digest_in_name("config.json"), None);
    }

    #[test]
    fn v1_ids_follow_the_chain() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        assert_eq!(v1_id(None, &a), v1_id(None, &a));
        assert_ne!(v1_id(None, &b), v1_id(Some(&v1_id(None, &a)), &b));
        let json = v1_json(&a, Some(&b), None, "linux");
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["id"], a.hex());
        assert_eq!(v["parent"], b.hex());
    }
}
