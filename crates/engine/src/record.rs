//! Container records: `<root>/containers/<id>/container.json`, written atomically
//! (temporary file + rename) under an flock on the container's directory, and names as
//! symlinks `<root>/containers/names/<name> -> <id>` (symlink creation is atomic and fails
//! when the name exists, which makes names unique under concurrent `run`s without a global
//! lock).
//!
//! A record holds what was asked (the config), what the image gave, and what happened
//! (times, exit code, OOM, restarts, health). Whether the container runs right now is not
//! in it: that is read from the kernel (see [`crate::status`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::config::{ContainerConfig, HealthConfig};
use crate::error::{Error, Result};

/// The record file in a container's directory.
pub const RECORD_FILE: &str = "container.json";
/// The OCI bundle config written at each start.
pub const BUNDLE_CONFIG: &str = "config.json";
/// A removed container's directory, renamed until its tree is deleted.
const TRASH_PREFIX: &str = ".removed-";

/// What the image contributes, copied at create (the image may change or go later).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageDefaults {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<HealthConfig>,
}

/// One healthcheck run (docker's `Health.Log` entries).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// "starting", "healthy" or "unhealthy".
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

/// What happened to the container so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunState {
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Why the last start failed (docker's State.Error).
    pub error: String,
    pub restart_count: u32,
    /// The monitor now in charge (0: none), with its start time so a recycled pid is not
    /// mistaken for it.
    pub monitor_pid: i32,
    pub monitor_start_time: u64,
    /// The container's init (host pid) of the current run.
    pub pid: i32,
    /// `stop`/`kill` by a user: no restart policy applies (docker's HasBeenManuallyStopped).
    pub stopped_by_user: bool,
    /// Between an exit and the restart the policy asked for.
    pub restarting: bool,
    pub health: Option<Health>,
    /// The memory limit in force at the last exit, for the OOM message.
    pub memory_limit: Option<u64>,
    /// The image's root filesystem is mounted at `<dir>/rootfs`.
    pub rootfs_mounted: bool,
}

/// A container's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image id (`sha256:...`), empty for `--rootfs`.
    pub image_id: String,
    pub image: ImageDefaults,
    pub config: ContainerConfig,
    /// The program and its arguments (entrypoint and command resolved at create).
    pub path: String,
    pub args: Vec<String>,
    pub state: RunState,
}

impl ContainerRecord {
    /// The short id docker shows (12 digits).
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// The records under `<root>/containers/`.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

/// A container directory held under its flock; released on drop. Commands that read,
/// decide and write (stop, rm, the monitor's exit bookkeeping) hold it across the three.
/// Do not call [`Records::update`] for the same container while holding one: flocks of
/// two open files of one directory exclude each other.
pub struct Locked {
    pub id: String,
    pub dir: PathBuf,
    _lock: OwnedFd,
}

impl Locked {
    pub fn load(&self) -> Result<ContainerRecord> {
        read_record(&self.dir)
    }

    pub fn save(&self, record: &ContainerRecord) -> Result<()> {
        write_record(&self.dir, record)
    }
}

fn read_record(dir: &Path) -> Result<ContainerRecord> {
    let path = dir.join(RECORD_FILE);
    let data = fs::read(&path).map_err(|e| Error::path("read", &path, e))?;
    serde_json::from_slice(&data).map_err(|e| Error::path("parse", &path, std::io::Error::other(e)))
}

fn write_record(dir: &Path, record: &ContainerRecord) -> Result<()> {
    let data = serde_json::to_vec_pretty(record).expect("a record serializes");
    berth_container::state::write_atomically(&dir.join(RECORD_FILE), &data, 0o600)?;
    Ok(())
}

/// 32 random bytes from the kernel.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf
}

fn new_id() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Records {
    pub fn new(root: &Path) -> Self {
        Records {
            dir: root.join("containers"),
        }
    }

    /// `<root>/containers/<id>`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn names_dir(&self) -> PathBuf {
        self.dir.join("names")
    }

    /// Makes a new container directory and claims `name` (a random one when `None`).
    /// Returns (id, name). The record itself is written by the caller with [`Records::save`].
    pub fn reserve(&self, name: Option<&str>) -> Result<(String, String)> {
        if let Some(n) = name
            && !crate::names::valid_name(n)
        {
            return Err(Error::InvalidName(n.to_string()));
        }
        let names = self.names_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&names)
            .map_err(|e| Error::path("create", &names, e))?;
        let id = new_id();
        let dir = self.dir(&id);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::path("create", &dir, e))?;
        let mut attempts = 0;
        loop {
            let candidate = match name {
                Some(n) => n.to_string(),
                None => crate::names::random_name(random_bytes::<4>()),
            };
            match std::os::unix::fs::symlink(&id, names.join(&candidate)) {
                Ok(()) => return Ok((id, candidate)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    attempts += 1;
                    if name.is_some() || attempts > 50 {
                        let _ = fs::remove_dir(&dir);
                        let owner = fs::read_link(names.join(&candidate))
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        return Err(Error::NameInUse {
                            name: candidate,
                            id: owner,
                        });
                    }
                }
                Err(e) => {
                    let _ = fs::remove_dir(&dir);
                    return Err(Error::path("create name", names.join(&candidate), e));
                }
            }
        }
    }

    /// Writes a record (atomically). Use [`Records::update`] for one that others may write.
    pub fn save(&self, record: &ContainerRecord) -> Result<()> {
        write_record(&self.dir(&record.id), record)
    }

    /// Reads a record without locking (readers see the old or the new file, never a part).
    pub fn load(&self, id: &str) -> Result<ContainerRecord> {
        let dir = self.dir(id);
        if !dir.join(RECORD_FILE).exists() {
            return Err(Error::NoSuchContainer(id.to_string()));
        }
        read_record(&dir)
    }

    /// Takes the container's flock.
    pub fn lock(&self, id: &str) -> Result<Locked> {
        let dir = self.dir(id);
        let fd = rustix::fs::open(
            &dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => Error::NoSuchContainer(id.to_string()),
            e => Error::path("open", &dir, e.into()),
        })?;
        rustix::fs::flock(&fd, FlockOperation::LockExclusive)
            .map_err(|e| Error::path("lock", &dir, e.into()))?;
        if !dir.join(RECORD_FILE).exists() {
            return Err(Error::NoSuchContainer(id.to_string()));
        }
        Ok(Locked {
            id: id.to_string(),
            dir,
            _lock: fd,
        })
    }

    /// Read, change and write a record under its lock; returns what `change` returned.
    pub fn update<T>(&self, id: &str, change: impl FnOnce(&mut ContainerRecord) -> T) -> Result<T> {
        let locked = self.lock(id)?;
        let mut record = locked.load()?;
        let out = change(&mut record);
        locked.save(&record)?;
        Ok(out)
    }

    /// The ids of every container (directories named by 64 hex digits with a record).
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::path("read", &self.dir, e)),
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_id(n))
            .filter(|id| self.dir(id).join(RECORD_FILE).exists())
            .collect())
    }

    /// Every record, newest first (as `ps` lists them).
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out: Vec<ContainerRecord> = self
            .ids()?
            .iter()
            .filter_map(|id| self.load(id).ok())
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// The id of a container named by full id, name or unique id prefix (docker's order).
    pub fn resolve(&self, reference: &str) -> Result<String> {
        let reference = reference.strip_prefix('/').unwrap_or(reference);
        if is_id(reference) && self.dir(reference).join(RECORD_FILE).exists() {
            return Ok(reference.to_string());
        }
        if crate::names::valid_name(reference)
            && let Ok(target) = fs::read_link(self.names_dir().join(reference))
        {
            let id = target.to_string_lossy().into_owned();
            if self.dir(&id).join(RECORD_FILE).exists() {
                return Ok(id);
            }
        }
        if !reference.is_empty() && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<String> = self
                .ids()?
                .into_iter()
                .filter(|id| id.starts_with(reference))
                .collect();
            match matches.len() {
                1 => return Ok(matches.into_iter().next().expect("one")),
                0 => {}
                _ => return Err(Error::Ambiguous(reference.to_string())),
            }
        }
        Err(Error::NoSuchContainer(reference.to_string()))
    }

    /// Gives a container a new name (`rename`): the new link first, so the container is
    /// never without a name, then the old one goes.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        if !crate::names::valid_name(new_name) {
            return Err(Error::InvalidName(new_name.to_string()));
        }
        let locked = self.lock(id)?;
        let mut record = locked.load()?;
        let link = self.names_dir().join(new_name);
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_link(&link)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Err(Error::NameInUse {
                    name: new_name.to_string(),
                    id: owner,
                });
            }
            Err(e) => return Err(Error::path("create name", &link, e)),
        }
        let old = std::mem::replace(&mut record.name, new_name.to_string());
        locked.save(&record)?;
        self.release_name(&old, id);
        Ok(())
    }

    /// Removes a name link if it still points at `id`.
    fn release_name(&self, name: &str, id: &str) {
        let link = self.names_dir().join(name);
        if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == id) {
            let _ = fs::remove_file(&link);
        }
    }

    /// Deletes the record, its directory and its name. The caller has unmounted and
    /// stopped everything; holding the lock is fine (it dies with the directory).
    /// The record and name go (the container no longer exists for anyone), and its
    /// directory is renamed to a `.removed-<id>` sibling, returned for the caller to delete
    /// (no directory: `None`). A leftover of a caller that died is swept here next time.
    pub fn unpublish(&self, record: &ContainerRecord) -> Result<Option<PathBuf>> {
        let dir = self.dir(&record.id);
        let _ = fs::remove_file(dir.join(RECORD_FILE));
        self.release_name(&record.name, &record.id);
        let trash = self.dir.join(format!("{TRASH_PREFIX}{}", record.id));
        match fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::path("remove", &dir, e)),
        }
        self.sweep_removed(&record.id);
        Ok(Some(trash))
    }

    /// Deletes `.removed-*` directories other than `keep`'s (a remover killed between
    /// rename and deletion left them).
    fn sweep_removed(&self, keep: &str) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_prefix(TRASH_PREFIX)) else {
                continue;
            };
            if id != keep {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    pub fn remove(&self, record: &ContainerRecord) -> Result<()> {
        // The record goes first: from then on the container does not exist for anyone.
        let dir = self.dir(&record.id);
        let _ = fs::remove_file(dir.join(RECORD_FILE));
        self.release_name(&record.name, &record.id);
        fs::remove_dir_all(&dir).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(Error::path("remove", &dir, e))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(records: &Records, name: Option<&str>) -> ContainerRecord {
        let (id, name) = records.reserve(name).unwrap();
        let r = ContainerRecord {
            id,
            name,
            created: crate::time::now(),
            ..Default::default()
        };
        records.save(&r).unwrap();
        r
    }

    #[test]
    fn names_are_unique_and_resolve() {
        let tmp = tempfile::tempdir().unwrap();
        let records = Records::new(tmp.path());
        let a = record(&records, Some("web"));
        assert!(matches!(
            records.reserve(Some("web")),
            Err(Error::NameInUse { .. })
        ));
        let b = record(&records, None);
        assert_eq!(records.resolve("web").unwrap(), a.id);
        assert_eq!(records.resolve(&b.name).unwrap(), b.id);
        assert_eq!(records.resolve(&a.id[..12]).unwrap(), a.id);
        assert_eq!(records.resolve(&a.id).unwrap(), a.id);
        assert!(matches!(
            records.resolve("nope"),
            Err(Error::NoSuchContainer(_))
        ));
        assert_eq!(records.list().unwrap().len(), 2);
        records.rename(&a.id, "api").unwrap();
        assert_eq!(records.resolve("api").unwrap(), a.id);
        assert!(records.resolve("web").is_err());
        records.remove(&records.load(&a.id).unwrap()).unwrap();
        assert!(records.resolve("api").is_err());
        assert_eq!(records.ids().unwrap(), vec![b.id.clone()]);
    }

    #[test]
    fn concurrent_reservations_of_one_name_give_one_winner() {
        let tmp = tempfile::tempdir().unwrap();
        let records = Records::new(tmp.path());
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| records.reserve(Some("same")).is_ok() as usize))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1);
    }

    #[test]
    fn updates_are_read_modify_write() {
        let tmp = tempfile::tempdir().unwrap();
        let records = Records::new(tmp.path());
        let r = record(&records, None);
        records
            .update(&r.id, |r| r.state.restart_count += 1)
            .unwrap();
        assert_eq!(records.load(&r.id).unwrap().state.restart_count, 1);
    }

    #[test]
    fn unpublished_containers_are_gone_and_their_trees_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let records = Records::new(tmp.path());
        let a = record(&records, Some("a"));
        let tree = records.unpublish(&a).unwrap().unwrap();
        assert!(tree.is_dir() && !records.dir(&a.id).exists());
        assert!(matches!(
            records.resolve("a"),
            Err(Error::NoSuchContainer(_))
        ));
        assert!(records.ids().unwrap().is_empty());
        // The next removal sweeps a tree its remover did not delete.
        let b = record(&records, Some("a"));
        let tree_b = records.unpublish(&b).unwrap().unwrap();
        assert!(!tree.exists() && tree_b.is_dir());
        assert!(records.unpublish(&b).unwrap().is_none());
    }
}
