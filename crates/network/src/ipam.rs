//! IPAM: one lease file per network (`<runroot>/networks/NAME.leases`, JSON, rewritten by
//! rename) holding the full attachment of each holder, so a lease alone is enough to tear down
//! what it set up. Every change happens under one flock (`<runroot>/networks/lock`) held across
//! choosing, recording and plumbing, so parallel callers never get one address twice.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attachment::Attachment;
use crate::error::{Error, Result, file_err};
use crate::store::{Network, lease_path};

/// The exclusive lock over all of a run dir's leases; released on drop.
pub(crate) struct Lock {
    _file: File,
}

impl Lock {
    pub fn take(run_dir: &Path) -> Result<Lock> {
        Self::at(&run_dir.join("lock"))
    }

    /// An exclusive flock on `path` (created if missing), held until the value is dropped.
    pub fn at(path: &Path) -> Result<Lock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(file_err("open", path))?;
        crate::sys::lock_exclusive(&file).map_err(file_err("lock", path))?;
        Ok(Lock { _file: file })
    }
}

/// The leases of one network.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Leases {
    /// The last address handed out: allocation goes on after it, so a just-freed address is not
    /// reused at once (a stale ARP entry or conntrack flow would point at the new holder).
    #[serde(default)]
    pub last: Option<IpAddr>,
    #[serde(default)]
    pub leases: Vec<Attachment>,
}

impl Leases {
    pub fn load(run_dir: &Path, network: &str) -> Result<Leases> {
        let path = lease_path(run_dir, network);
        match std::fs::read(&path) {
            Ok(b) if b.is_empty() => Ok(Leases::default()),
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Leases::default()),
            Err(e) => Err(file_err("read", &path)(e)),
        }
    }

    pub fn save(&self, run_dir: &Path, network: &str) -> Result<()> {
        let path = lease_path(run_dir, network);
        let tmp: PathBuf = run_dir.join(format!(".{network}.leases.tmp"));
        let body = serde_json::to_vec(self).expect("leases serialize");
        let mut f = File::create(&tmp).map_err(file_err("create", &tmp))?;
        f.write_all(&body).map_err(file_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(file_err("rename", &path))
    }

    /// Remove the lease file (its network is being removed).
    pub fn delete_file(run_dir: &Path, network: &str) -> Result<()> {
        let path = lease_path(run_dir, network);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(file_err("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Choose an address: `want` if it is a free host address of the subnet, else the next free
    /// one after the last handed out.
    pub fn choose(&self, net: &Network, want: Option<IpAddr>) -> Result<IpAddr> {
        let used: HashSet<IpAddr> = self.leases.iter().map(|l| l.ip).collect();
        let sub = net.subnet;
        if let Some(ip) = want {
            if !sub.contains(ip) {
                return Err(Error::AddressOutsideSubnet {
                    network: net.name.clone(),
                    ip,
                    subnet: sub,
                });
            }
            if !sub.is_host(ip) || ip == net.gateway {
                return Err(Error::AddressReserved {
                    network: net.name.clone(),
                    ip,
                });
            }
            if let Some(l) = self.leases.iter().find(|l| l.ip == ip) {
                return Err(Error::AddressInUse {
                    network: net.name.clone(),
                    ip,
                    holder: l.holder.clone(),
                });
            }
            return Ok(ip);
        }
        // Host offsets 1..size-1 (v4: the broadcast address excluded by is_host).
        let size = sub.size().min(1 << 24);
        let start = self.last.and_then(|l| sub.offset(l)).unwrap_or(0);
        for i in 1..=size {
            let off = (start + i) % size;
            let Some(ip) = sub.nth(off) else { continue };
            if sub.is_host(ip) && ip != net.gateway && !used.contains(&ip) {
                return Ok(ip);
            }
        }
        Err(Error::PoolExhausted {
            network: net.name.clone(),
            subnet: sub,
        })
    }
}

/// Every lease file in the run dir (network name, leases).
pub(crate) fn all(run_dir: &Path) -> Result<Vec<(String, Leases)>> {
    let rd = std::fs::read_dir(run_dir).map_err(file_err("read", run_dir))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(file_err("read", run_dir))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_suffix(".leases")
            && !n.starts_with('.')
        {
            out.push((n.to_string(), Leases::load(run_dir, n)?));
        }
    }
    Ok(out)
}
