//! Host-wide subnet claims: every Berth root on the host (the default one, a user's second
//! root, each test's temporary root) keeps its network definitions in its own store, but the
//! kernel has one routing table. Two roots that picked the same free /24 at the same moment
//! would bring up two bridges with one prefix route between them, and traffic would go to
//! whichever the kernel found first. So a subnet is claimed in one host-wide directory, under
//! one host-wide lock, before a definition that uses it is stored.
//!
//! A claim is a file named after the subnet (`10.89.0.0_24`) that holds the path of the
//! definition that owns it. It counts only while that definition still exists and still names
//! that subnet, so a root deleted with `rm -rf` (a finished test, a wiped machine) frees its
//! subnets without any clean-up step.

use std::path::{Path, PathBuf};

use crate::error::{Result, file_err};
use crate::ipam::Lock;
use crate::store::Network;
use crate::subnet::Subnet;

/// Where claims live; on tmpfs, so a reboot (which takes every bridge down) clears them too.
pub(crate) const CLAIMS_DIR: &str = "/run/berth-subnets";

/// The host-wide lock, held from the choice of a subnet until its definition is stored.
pub(crate) struct HostLock {
    _lock: Lock,
    dir: PathBuf,
}

fn file_name(subnet: &Subnet) -> String {
    subnet.to_string().replace(['/', ':'], "_")
}

impl HostLock {
    pub fn take() -> Result<HostLock> {
        Self::take_in(Path::new(CLAIMS_DIR))
    }

    fn take_in(dir: &Path) -> Result<HostLock> {
        std::fs::create_dir_all(dir).map_err(file_err("create", dir))?;
        let lock = Lock::at(&dir.join(".lock"))?;
        Ok(HostLock {
            _lock: lock,
            dir: dir.to_path_buf(),
        })
    }

    /// The subnets other definitions than `own` hold, with the path of each owner. Claims whose
    /// owner is gone are removed on the way.
    pub fn claimed_by_others(&self, own: &Path) -> Vec<(Subnet, PathBuf)> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(owner) = std::fs::read_to_string(ent.path()) else {
                continue;
            };
            let owner = PathBuf::from(owner.trim_end());
            let live = std::fs::read(&owner)
                .ok()
                .and_then(|b| serde_json::from_slice::<Network>(&b).ok())
                .filter(|n| file_name(&n.subnet) == name);
            match live {
                Some(n) if owner != own => out.push((n.subnet, owner)),
                Some(_) => {}
                None => {
                    let _ = std::fs::remove_file(ent.path());
                }
            }
        }
        out
    }

    /// Record that the definition at `owner` holds `subnet`.
    pub fn claim(&self, subnet: &Subnet, owner: &Path) -> Result<()> {
        let path = self.dir.join(file_name(subnet));
        let tmp = self.dir.join(format!(".{}.tmp", file_name(subnet)));
        std::fs::write(&tmp, owner.as_os_str().as_encoded_bytes())
            .map_err(file_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(file_err("rename", &path))
    }

    /// Give back every subnet a definition below `dir` holds.
    pub fn release_all_under(&self, dir: &Path) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for ent in rd.flatten() {
            if std::fs::read_to_string(ent.path())
                .is_ok_and(|owner| Path::new(owner.trim_end()).starts_with(dir))
            {
                let _ = std::fs::remove_file(ent.path());
            }
        }
    }

    /// Give `subnet` back, if `owner` is the one holding it.
    pub fn release(&self, subnet: &Subnet, owner: &Path) {
        let path = self.dir.join(file_name(subnet));
        if std::fs::read_to_string(&path).is_ok_and(|o| Path::new(o.trim_end()) == owner) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: &str) -> Network {
        let subnet: Subnet = subnet.parse().unwrap();
        Network {
            name: "n".into(),
            id: "0".repeat(64),
            driver: "bridge".into(),
            bridge: "br-x".into(),
            gateway: subnet.nth(1).unwrap(),
            subnet,
            internal: false,
            created: 0,
            labels: Default::default(),
            mtu: None,
        }
    }

    #[test]
    fn a_claim_lasts_while_its_definition_names_the_subnet() {
        let dir = tempfile::tempdir().unwrap();
        let lock = HostLock::take_in(&dir.path().join("claims")).unwrap();
        let def = dir.path().join("n.json");
        let s: Subnet = "10.89.0.0/24".parse().unwrap();
        std::fs::write(&def, serde_json::to_vec(&net("10.89.0.0/24")).unwrap()).unwrap();
        lock.claim(&s, &def).unwrap();
        let other = dir.path().join("other.json");
        assert_eq!(lock.claimed_by_others(&other), vec![(s, def.clone())]);
        assert!(
            lock.claimed_by_others(&def).is_empty(),
            "own claims do not count"
        );
        // The definition moved to another subnet: the claim is stale and goes.
        std::fs::write(&def, serde_json::to_vec(&net("10.89.1.0/24")).unwrap()).unwrap();
        assert!(lock.claimed_by_others(&other).is_empty());
        assert!(!dir.path().join("claims/10.89.0.0_24").exists());
        // A deleted definition frees its subnet too.
        lock.claim(&"10.89.1.0/24".parse().unwrap(), &def).unwrap();
        assert_eq!(lock.claimed_by_others(&other).len(), 1);
        std::fs::remove_file(&def).unwrap();
        assert!(lock.claimed_by_others(&other).is_empty());
        // release() only frees what the caller owns.
        std::fs::write(&def, serde_json::to_vec(&net("10.89.0.0/24")).unwrap()).unwrap();
        lock.claim(&s, &def).unwrap();
        lock.release(&s, &other);
        assert_eq!(lock.claimed_by_others(&other).len(), 1);
        lock.release(&s, &def);
        assert!(lock.claimed_by_others(&other).is_empty());
        // A root about to be deleted gives back all of its own, nobody else's.
        let theirs = dir.path().join("theirs.json");
        std::fs::write(&theirs, serde_json::to_vec(&net("10.89.2.0/24")).unwrap()).unwrap();
        lock.claim(&"10.89.2.0/24".parse().unwrap(), &theirs)
            .unwrap();
        lock.claim(&s, &def).unwrap();
        let ours = dir.path().join("n.json");
        lock.release_all_under(&ours);
        assert_eq!(lock.claimed_by_others(&other).len(), 1);
        assert!(dir.path().join("claims/10.89.2.0_24").exists());
    }
}
