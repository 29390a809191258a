//! Manifests as a registry serves them: which kind a document is, checked three ways (the
//! Content-Type header, the document's own `mediaType`, and its structure) so that a document
//! cannot be read as one kind and verified as another (CVE-2021-41190); picking the image of
//! a platform from an index.

use serde::Deserialize;

use super::platform::Platform;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The Accept header of a manifest request: the four kinds we read.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
];
const LAYER_TYPES: [&str; 6] = [
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    // Some builders write these for uncompressed or zstd docker layers.
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Image,
}

fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        DOCKER_MANIFEST | OCI_MANIFEST => Some(Kind::Image),
        DOCKER_LIST | OCI_INDEX => Some(Kind::Index),
        _ => None,
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<PlatformField>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlatformField {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// Every field that tells the kinds apart, so a document carrying both is caught.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    fs_layers: Option<serde_json::Value>,
}

/// A manifest document whose kind has been established.
#[derive(Debug, Clone)]
pub enum Manifest {
    Index {
        media_type: String,
        manifests: Vec<Descriptor>,
    },
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

impl Manifest {
    /// Reads `bytes` served with `content_type` (None when the header was absent). Refuses a
    /// document whose declared media type, Content-Type and structure disagree.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, String> {
        let raw: Raw = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a valid manifest document: {e}"))?;
        let content_type = content_type.map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let declared = raw.media_type.as_deref();
        for t in [declared, content_type.as_deref()].into_iter().flatten() {
            if t == DOCKER_SCHEMA1 || t == DOCKER_SCHEMA1_SIGNED {
                return Err(
                    "docker schema 1 manifests are not supported (deprecated by docker in 2019)"
                        .into(),
                );
            }
        }
        if raw.schema_version == Some(1) || raw.fs_layers.is_some() {
            return Err(
                "docker schema 1 manifests are not supported (deprecated by docker in 2019)".into(),
            );
        }
        if raw.schema_version != Some(2) {
            return Err(format!(
                "unsupported schemaVersion {:?}",
                raw.schema_version
            ));
        }
        let is_image = raw.config.is_some() || raw.layers.is_some();
        let structure = match (raw.manifests.is_some(), is_image) {
            (true, false) => Kind::Index,
            (false, true) => Kind::Image,
            (true, true) => {
                return Err(
                    "ambiguous document: it has both \"manifests\" and \"config\"/\"layers\""
                        .into(),
                );
            }
            (false, false) => return Err("neither an image manifest nor an index".into()),
        };
        let name = |k: Kind| {
            if k == Kind::Index {
                "an index"
            } else {
                "an image manifest"
            }
        };
        if let Some(declared) = declared {
            match kind_of(declared) {
                None => return Err(format!("unsupported media type {declared:?}")),
                Some(k) if k != structure => {
                    return Err(format!(
                        "declares media type {declared} but is {}",
                        name(structure)
                    ));
                }
                Some(_) => {}
            }
        }
        // A registry serves a manifest with the media type it was pushed with; generic types
        // (application/json, octet-stream) say nothing and are left to the document.
        let served = content_type.as_deref().filter(|c| kind_of(c).is_some());
        if let Some(served) = served {
            if kind_of(served) != Some(structure) {
                return Err(format!("served as {served} but is {}", name(structure)));
            }
            if let Some(declared) = declared
                && declared != served
            {
                return Err(format!(
                    "served as {served} but declares media type {declared}"
                ));
            }
        }
        let media_type = declared.or(served).map(str::to_string).unwrap_or_else(|| {
            // An OCI document may omit mediaType; docker's always carry it.
            if structure == Kind::Index {
                OCI_INDEX
            } else {
                OCI_MANIFEST
            }
            .to_string()
        });
        match structure {
            Kind::Index => Ok(Manifest::Index {
                media_type,
                manifests: raw.manifests.unwrap_or_default(),
            }),
            Kind::Image => {
                let config = raw.config.ok_or("an image manifest without \"config\"")?;
                if !CONFIG_TYPES.contains(&config.media_type.as_str()) {
                    return Err(format!(
                        "not a container image: config media type {:?} (an artifact?)",
                        config.media_type
                    ));
                }
                let layers = raw.layers.unwrap_or_default();
                for layer in &layers {
                    if !LAYER_TYPES.contains(&layer.media_type.as_str()) {
                        return Err(format!(
                            "layer {}: unsupported media type {:?}",
                            layer.digest, layer.media_type
                        ));
                    }
                }
                Ok(Manifest::Image {
                    media_type,
                    config,
                    layers,
                })
            }
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            Manifest::Index { media_type, .. } | Manifest::Image { media_type, .. } => media_type,
        }
    }
}

/// The entry of an index for `wanted`: an exact variant match first, then any entry the
/// wanted platform accepts. `Err` lists what the index has, for the message.
pub fn select<'a>(
    manifests: &'a [Descriptor],
    wanted: &Platform,
) -> Result<&'a Descriptor, String> {
    let platform_of = |d: &Descriptor| {
        d.platform
            .as_ref()
            .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()))
    };
    let images = manifests
        .iter()
        .filter(|d| kind_of(&d.media_type) == Some(Kind::Image) || d.media_type.is_empty());
    let candidates: Vec<(&Descriptor, Platform)> = images
        .filter_map(|d| platform_of(d).map(|p| (d, p)))
        .filter(|(_, p)| wanted.matches(p))
        .collect();
    if let Some((d, _)) = candidates.iter().find(|(_, p)| p.variant == wanted.variant) {
        return Ok(d);
    }
    if let Some((d, _)) = candidates.first() {
        return Ok(d);
    }
    let available: Vec<String> = manifests
        .iter()
        .filter_map(platform_of)
        .map(|p| p.to_string())
        .collect();
    Err(if available.is_empty() {
        "no platforms".to_string()
    } else {
        available.join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn image(media_type: Option<&str>) -> Vec<u8> {
        let mt = media_type
            .map(|m| format!("\"mediaType\":\"{m}\","))
            .unwrap_or_default();
        format!(
            "{{\"schemaVersion\":2,{mt}\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\
             \"digest\":\"{D}\",\"size\":2}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\
             \"digest\":\"{D}\",\"size\":3}}]}}"
        )
        .into_bytes()
    }

    fn index(media_type: Option<&str>) -> Vec<u8> {
        let mt = media_type
            .map(|m| format!("\"mediaType\":\"{m}\","))
            .unwrap_or_default();
        let entry = |arch: &str, variant: &str| {
            format!(
                "{{\"mediaType\":\"{OCI_MANIFEST}\",\"digest\":\"{D}\",\"size\":1,\
                 \"platform\":{{\"os\":\"linux\",\"architecture\":\"{arch}\"{variant}}}}}"
            )
        };
        format!(
            "{{\"schemaVersion\":2,{mt}\"manifests\":[{},{},{}]}}",
            entry("amd64", ""),
            entry("arm", ",\"variant\":\"v6\""),
            entry("arm", ",\"variant\":\"v7\"")
        )
        .into_bytes()
    }

    #[test]
    fn kinds_agree() {
        let m = Manifest::parse(&image(Some(OCI_MANIFEST)), Some(OCI_MANIFEST)).unwrap();
        assert!(matches!(m, Manifest::Image { ref layers, .. } if layers.len() == 1));
        // No declared type: the header or the structure decides.
        assert_eq!(
            Manifest::parse(&image(None), None).unwrap().media_type(),
            OCI_MANIFEST
        );
        assert_eq!(
            Manifest::parse(&image(None), Some("application/json"))
                .unwrap()
                .media_type(),
            OCI_MANIFEST
        );
        assert_eq!(
            Manifest::parse(
                &index(None),
                Some("application/vnd.oci.image.index.v1+json; charset=utf-8")
            )
            .unwrap()
            .media_type(),
            OCI_INDEX
        );
    }

    #[test]
    fn lies_refused() {
        // CVE-2021-41190: the same bytes read as an index by one client and a manifest by another.
        let both = format!(
            "{{\"schemaVersion\":2,\"manifests\":[],\"layers\":[],\"config\":{{\"mediaType\":\"{}\",\"digest\":\"{D}\",\"size\":1}}}}",
            CONFIG_TYPES[1]
        );
        assert!(
            Manifest::parse(both.as_bytes(), Some(OCI_INDEX))
                .unwrap_err()
                .contains("ambiguous")
        );
        let e = Manifest::parse(&image(Some(OCI_INDEX)), None).unwrap_err();
        assert!(e.contains("declares media type application/vnd.oci.image.index.v1+json but is an image manifest"), "{e}");
        let e = Manifest::parse(&image(None), Some(OCI_INDEX)).unwrap_err();
        assert!(e.contains("served as"), "{e}");
        let e = Manifest::parse(&image(Some(OCI_MANIFEST)), Some(DOCKER_MANIFEST)).unwrap_err();
        assert!(e.contains("declares media type"), "{e}");
        let e = Manifest::parse(&index(Some(OCI_INDEX)), Some(DOCKER_MANIFEST)).unwrap_err();
        assert!(e.contains("but is an index"), "{e}");
        assert!(
            Manifest::parse(b"{\"schemaVersion\":1,\"fsLayers\":[]}", None)
                .unwrap_err()
                .contains("schema 1")
        );
        assert!(Manifest::parse(b"not json", None).is_err());
        assert!(
            Manifest::parse(&image(Some("text/plain")), None)
                .unwrap_err()
                .contains("unsupported media type")
        );
    }

    #[test]
    fn platform_selection() {
        let Manifest::Index { manifests, .. } =
            Manifest::parse(&index(Some(OCI_INDEX)), None).unwrap()
        else {
            panic!("not an index")
        };
        let pick = |p: &str| {
            select(&manifests, &Platform::parse(p).unwrap()).map(|d| d.platform.clone().unwrap())
        };
        assert_eq!(pick("linux/amd64").unwrap().architecture, "amd64");
        assert_eq!(pick("linux/arm/v6").unwrap().variant.as_deref(), Some("v6"));
        assert_eq!(pick("linux/arm/v7").unwrap().variant.as_deref(), Some("v7"));
        assert!(pick("linux/arm").is_ok());
        assert_eq!(
            pick("linux/s390x").unwrap_err(),
            "linux/amd64, linux/arm/v6, linux/arm/v7"
        );
    }
}
