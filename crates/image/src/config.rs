//! The image configuration as the engine applies it, read from the raw config JSON.
//!
//! The raw bytes stay in the store as the config blob (the image id is their digest and
//! Docker-only fields such as `Healthcheck` must survive a save); this is a read-only view.
//! Docker's and OCI's configs share their field names, so one reader serves both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// What a container started from the image gets by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    /// `80/tcp`, `53/udp`: docker's keys of `ExposedPorts`.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// RFC 3339, as written in the config (`None` when absent).
    pub created: Option<String>,
    pub author: Option<String>,
    /// The uncompressed layer digests, bottom first.
    pub diff_ids: Vec<Digest>,
    pub history: Vec<History>,
}

/// Docker's `Healthcheck` (durations in nanoseconds, as docker stores them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// One step of the image's history (`berth image history`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Reads a config blob. `digest` names it in errors.
    pub fn parse(raw: &[u8], digest: &Digest) -> Result<ImageConfig> {
        let doc: RawConfig =
            serde_json::from_slice(raw).map_err(Error::json(format!("image config {digest}")))?;
        let c = doc.config.unwrap_or_default();
        let diff_ids = match doc.rootfs {
            Some(r) => r
                .diff_ids
                .iter()
                .map(|d| Digest::parse(d))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        Ok(ImageConfig {
            entrypoint: c.entrypoint,
            cmd: c.cmd,
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            labels: c.labels.unwrap_or_default(),
            healthcheck: c.healthcheck.map(|h| Healthcheck {
                test: h.test.unwrap_or_default(),
                interval: h.interval.unwrap_or(0),
                timeout: h.timeout.unwrap_or(0),
                start_period: h.start_period.unwrap_or(0),
                start_interval: h.start_interval.unwrap_or(0),
                retries: h.retries.unwrap_or(0),
            }),
            architecture: doc.architecture.unwrap_or_default(),
            os: doc.os.unwrap_or_default(),
            variant: doc.variant,
            created: doc.created,
            author: doc.author,
            diff_ids,
            history: doc
                .history
                .unwrap_or_default()
                .into_iter()
                .map(|h| History {
                    created: h.created,
                    created_by: h.created_by,
                    comment: h.comment,
                    empty_layer: h.empty_layer.unwrap_or(false),
                })
                .collect(),
        })
    }
}

/// Unix seconds of an RFC 3339 time, as configs write `created`.
pub fn unix_seconds(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp())
}

// The wire shape. Every field optional: configs in the wild omit most of them and write
// `null` for empty maps and lists.
#[derive(Deserialize, Default)]
struct RawConfig {
    created: Option<String>,
    author: Option<String>,
    architecture: Option<String>,
    os: Option<String>,
    variant: Option<String>,
    config: Option<RawRunConfig>,
    rootfs: Option<RawRootfs>,
    history: Option<Vec<RawHistory>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawRunConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    stop_signal: Option<String>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    labels: Option<BTreeMap<String, String>>,
    healthcheck: Option<RawHealthcheck>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawHealthcheck {
    test: Option<Vec<String>>,
    interval: Option<i64>,
    timeout: Option<i64>,
    start_period: Option<i64>,
    start_interval: Option<i64>,
    retries: Option<i64>,
}

#[derive(Deserialize, Default)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawHistory {
    created: Option<String>,
    created_by: Option<String>,
    comment: Option<String>,
    empty_layer: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_and_oci_fields() {
        let raw = br#"{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z",
            "config":{"Entrypoint":null,"Cmd":["sh"],"Env":["PATH=/bin"],"WorkingDir":"/w",
              "User":"1:2","StopSignal":"SIGINT","ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},
              "Labels":{"a":"b"},"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":3}},
            "rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
            "history":[{"created_by":"x","empty_layer":true}]}"#;
        let c = ImageConfig::parse(raw, &Digest::of(raw)).unwrap();
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.working_dir, "/w");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.exposed_ports, ["80/tcp"]);
        assert_eq!(c.volumes, ["/data"]);
        assert_eq!(c.healthcheck.as_ref().unwrap().retries, 3);
        assert_eq!(c.diff_ids, [Digest::of(b"")]);
        assert!(c.history[0].empty_layer);
        assert_eq!((c.os.as_str(), c.architecture.as_str()), ("linux", "amd64"));
    }

    #[test]
    fn a_bad_config_names_its_digest() {
        let d = Digest::of(b"{");
        let err = ImageConfig::parse(b"{", &d).unwrap_err();
        assert!(err.to_string().contains(&d.to_string()), "{err}");
    }
}
