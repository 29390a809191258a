//! Network definitions: one JSON file per network under `<root>/networks/NAME.json`, written
//! atomically (temp file + rename) so a crash never leaves half a definition.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, file_err};
use crate::subnet::Subnet;

/// A network definition as stored and as `network inspect` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// 64 hex digits, like docker's network ids.
    pub id: String,
    /// Always `bridge` for now.
    pub driver: String,
    /// The host bridge interface (`berth0` for the default network, `br-<id prefix>` otherwise).
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: IpAddr,
    /// No masquerade, no default route, forwarding out of the bridge dropped.
    pub internal: bool,
    /// Seconds since the epoch.
    pub created: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// MTU of the veths (1500 when unset).
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// Names that are not networks one can create.
/// Names `--network` gives a meaning of its own (slirp4netns: the user-mode stack).
pub const RESERVED: [&str; 4] = ["bridge", "host", "none", "slirp4netns"];

/// The default network's name (`podman` in podman, `bridge` in docker).
pub const DEFAULT_NETWORK: &str = "bridge";

pub(crate) fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(dir: PathBuf) -> Result<Store> {
        std::fs::create_dir_all(&dir).map_err(file_err("create", &dir))?;
        Ok(Store { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub fn get(&self, name: &str) -> Result<Option<Network>> {
        validate_name(name).map_err(|_| Error::UnknownNetwork(name.to_string()))?;
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| Error::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_err("read", &path)(e)),
        }
    }

    pub fn list(&self) -> Result<Vec<Network>> {
        let rd = std::fs::read_dir(&self.dir).map_err(file_err("read", &self.dir))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(file_err("read", &self.dir))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".json")
                && let Some(net) = self.get(n)?
            {
                out.push(net);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn put(&self, net: &Network) -> Result<()> {
        let path = self.path(&net.name);
        let tmp = self.dir.join(format!(".{}.json.tmp", net.name));
        let body = serde_json::to_vec_pretty(net).expect("a network serializes");
        let mut f = std::fs::File::create(&tmp).map_err(file_err("create", &tmp))?;
        f.write_all(&body)
            .and_then(|()| f.sync_all())
            .map_err(file_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(file_err("rename", &path))
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(file_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }
}

/// Where the lease file of `network` lives under the run dir.
pub(crate) fn lease_path(run_dir: &Path, network: &str) -> PathBuf {
    run_dir.join(format!("{network}.leases"))
}
