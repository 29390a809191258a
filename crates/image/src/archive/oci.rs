//! OCI image layout documents (`oci-layout`, `index.json`) and the manifests they point at:
//! parsed leniently (unknown fields ignored), written with a fixed field order so the same
//! image always saves to the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_LAYOUT: &str = "oci-layout";
pub const INDEX_JSON: &str = "index.json";
pub const LAYOUT_VERSION: &str = "1.0.0";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

/// The annotation naming an image in an OCI layout: a tag (`latest`, as docker 25 and
/// skopeo with `oci:DIR:latest` write it) or a full name (podman's `save`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and docker >= 25's) full name of the image.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutFile {
    #[serde(rename = "imageLayoutVersion")]
    pub image_layout_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests,
            annotations: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What a manifest-ish document turned out to be.
#[derive(Debug)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

/// Reads a document that a descriptor with media type `announced` points at, refusing one
/// whose own `mediaType` says otherwise (CVE-2021-41190: a document must not be readable
/// as both a manifest and an index) and schema 1.
pub fn parse_document(bytes: &[u8], announced: Option<&str>) -> Result<Document, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let own = value.get("mediaType").and_then(|m| m.as_str());
    if let (Some(own), Some(announced)) = (own, announced)
        && own != announced
    {
        return Err(format!(
            "media type lies: the descriptor says {announced}, the document says {own}"
        ));
    }
    if value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
        return Err("schema 1 manifests are not supported".to_string());
    }
    let has_manifests = value.get("manifests").is_some();
    let has_config = value.get("config").is_some();
    if has_manifests && has_config {
        return Err("ambiguous document: has both manifests and config".to_string());
    }
    let kind = own.or(announced);
    let is_index = match kind {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) => return Err(format!("unsupported media type {other}")),
        None => has_manifests,
    };
    if is_index {
        if !has_manifests {
            return Err("an index without manifests".to_string());
        }
        serde_json::from_value(value)
            .map(Document::Index)
            .map_err(|e| format!("invalid index: {e}"))
    } else {
        if !has_config {
            return Err("a manifest without config".to_string());
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| format!("invalid manifest: {e}"))?;
        for layer in &manifest.layers {
            if !is_layer_type(&layer.media_type) {
                return Err(format!(
                    "layer {} has media type {}: not a layer",
                    layer.digest, layer.media_type
                ));
            }
        }
        Ok(Document::Manifest(manifest))
    }
}

pub fn is_layer_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
}

/// The docker v2s2 form of a manifest made OCI (what skopeo writes into an OCI layout):
/// same config and layer blobs, OCI media types. An OCI manifest is returned as None: it is
/// kept byte-exact instead.
pub fn to_oci(manifest: &Manifest) -> Option<Manifest> {
    if manifest.media_type.as_deref() != Some(DOCKER_MANIFEST) {
        return None;
    }
    let mut out = manifest.clone();
    out.media_type = Some(OCI_MANIFEST.to_string());
    if out.config.media_type == DOCKER_CONFIG {
        out.config.media_type = OCI_CONFIG.to_string();
    }
    for layer in &mut out.layers {
        layer.media_type = match layer.media_type.as_str() {
            DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
            DOCKER_FOREIGN_LAYER => OCI_NONDISTRIBUTABLE_GZIP,
            "application/vnd.docker.image.rootfs.diff.tar" => OCI_LAYER,
            other => other,
        }
        .to_string();
    }
    Some(out)
}

/// This machine's platform in OCI's names.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

/// The manifest of an index to load on this machine: the one for its platform, else the only
/// manifest when there is one. Attestations (buildx's `unknown/unknown` entries) never count.
pub fn select_for_host(index: &Index) -> Result<&Descriptor, String> {
    let (os, arch) = host_platform();
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.annotation("vnd.docker.reference.type") != Some("attestation-manifest"))
        .collect();
    if let Some(d) = candidates.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == os && p.architecture == arch)
    }) {
        return Ok(d);
    }
    match candidates.as_slice() {
        [only] if only.platform.is_none() => Ok(only),
        _ => Err(format!(
            "no manifest for {os}/{arch} (has: {})",
            candidates
                .iter()
                .map(|d| d
                    .platform
                    .as_ref()
                    .map_or("unknown".to_string(), |p| format!(
                        "{}/{}",
                        p.os, p.architecture
                    )))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Serializes a document compactly with the struct's field order: deterministic bytes.
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    serde_json::to_vec(doc).expect("OCI documents serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn parses_manifests_and_indexes() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":3}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{}","size":9}}]}}"#,
            digest(1),
            digest(2)
        );
        let Document::Manifest(parsed) =
            parse_document(m.as_bytes(), Some(DOCKER_MANIFEST)).unwrap()
        else {
            panic!("not a manifest")
        };
        assert_eq!(parsed.layers[0].size, 9);
        let oci = to_oci(&parsed).unwrap();
        assert_eq!(oci.config.media_type, OCI_CONFIG);
        assert_eq!(oci.layers[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(oci.layers[0].digest, digest(2));
        // OCI manifests may omit their own media type.
        let bare = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":3}},"layers":[]}}"#,
            digest(1)
        );
        assert!(matches!(
            parse_document(bare.as_bytes(), Some(OCI_MANIFEST)),
            Ok(Document::Manifest(_))
        ));
        assert!(matches!(
            parse_document(bare.as_bytes(), None),
            Ok(Document::Manifest(_))
        ));
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}}]}}"#,
            digest(3)
        );
        assert!(matches!(
            parse_document(index.as_bytes(), Some(OCI_INDEX)),
            Ok(Document::Index(_))
        ));
    }

    #[test]
    fn refuses_lying_and_odd_documents() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":3}},"layers":[]}}"#,
            digest(1)
        );
        let err = parse_document(m.as_bytes(), Some(OCI_INDEX)).unwrap_err();
        assert!(err.contains("media type lies"), "{err}");
        let both = format!(
            r#"{{"schemaVersion":2,"manifests":[],"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":3}},"layers":[]}}"#,
            digest(1)
        );
        assert!(
            parse_document(both.as_bytes(), None)
                .unwrap_err()
                .contains("ambiguous")
        );
        assert!(
            parse_document(br#"{"schemaVersion":1,"fsLayers":[]}"#, None)
                .unwrap_err()
                .contains("schema 1")
        );
        let bad_layer = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":3}},"layers":[{{"mediaType":"text/plain","digest":"{}","size":1}}]}}"#,
            digest(1),
            digest(2)
        );
        assert!(
            parse_document(bad_layer.as_bytes(), None)
                .unwrap_err()
                .contains("not a layer")
        );
        let bad_digest = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../etc","size":3},"layers":[]}"#;
        assert!(parse_document(bad_digest.as_bytes(), None).is_err());
    }

    #[test]
    fn selects_the_host_platform() {
        let (os, arch) = host_platform();
        let mut other = Descriptor::new(OCI_MANIFEST, digest(1), 1);
        other.platform = Some(Platform {
            architecture: "s390x".into(),
            os: "linux".into(),
            variant: None,
        });
        let mut mine = Descriptor::new(OCI_MANIFEST, digest(2), 1);
        mine.platform = Some(Platform {
            architecture: arch.into(),
            os: os.into(),
            variant: None,
        });
        let index = Index::new(vec![other.clone(), mine]);
        assert_eq!(select_for_host(&index).unwrap().digest, digest(2));
        assert!(
            select_for_host(&Index::new(vec![other]))
                .unwrap_err()
                .contains("s390x")
        );
        let only = Index::new(vec![Descriptor::new(OCI_MANIFEST, digest(3), 1)]);
        assert_eq!(select_for_host(&only).unwrap().digest, digest(3));
    }

    #[test]
    fn writes_deterministic_bytes() {
        let m = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Descriptor::new(OCI_CONFIG, digest(1), 2),
            layers: vec![Descriptor::new(OCI_LAYER, digest(2), 3)],
            annotations: None,
        };
        let text = String::from_utf8(to_bytes(&m)).unwrap();
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"#), "{text}");
        assert_eq!(to_bytes(&m), to_bytes(&m.clone()));
    }
}
