//! Named volumes: `<root>/volumes/NAME/_data` (docker's local driver layout), with the
//! volume's record in `<root>/volumes/NAME/volume.json`. Making the directory is the claim
//! (mkdir is atomic), so concurrent `volume create`s and `run -v NAME:/dst`s of one name
//! agree on one volume.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::error::{Error, Result};

const RECORD: &str = "volume.json";

/// docker's `volume inspect` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub scope: String,
}

fn volumes_dir(engine: &Engine) -> PathBuf {
    engine.root.join("volumes")
}

/// A name docker accepts for a volume (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() >= 2
}

fn bad_name(name: &str) -> Error {
    Error::flag(
        "volume name",
        name,
        "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, 2 characters at least",
    )
}

fn load(engine: &Engine, name: &str) -> Result<Option<Volume>> {
    let path = volumes_dir(engine).join(name).join(RECORD);
    match fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::path("parse", &path, std::io::Error::other(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path("read", &path, e)),
    }
}

/// `volume create [NAME]`: creates the volume, or returns the one of that name (docker
/// does not fail on an existing name).
pub fn create(
    engine: &Engine,
    name: Option<&str>,
    labels: BTreeMap<String, String>,
) -> Result<Volume> {
    let name = match name {
        Some(n) if !valid_name(n) => return Err(bad_name(n)),
        Some(n) => n.to_string(),
        None => crate::record::random_bytes::<32>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    };
    let parent = volumes_dir(engine);
    fs::create_dir_all(&parent).map_err(|e| Error::path("create", &parent, e))?;
    let dir = parent.join(&name);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another creator may still be writing the record: wait for it briefly.
            for _ in 0..100 {
                if let Some(v) = load(engine, &name)? {
                    return Ok(v);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            return Err(Error::Other(format!(
                "volume {name}: {} has no record",
                dir.display()
            )));
        }
        Err(e) => return Err(Error::path("create", &dir, e)),
    }
    let data = dir.join("_data");
    let volume = Volume {
        name: name.clone(),
        driver: "local".into(),
        mountpoint: data.clone(),
        created_at: crate::time::now(),
        labels,
        options: BTreeMap::new(),
        scope: "local".into(),
    };
    let made = fs::create_dir(&data)
        .map_err(|e| Error::path("create", &data, e))
        .and_then(|()| {
            let bytes = serde_json::to_vec_pretty(&volume).expect("a volume serializes");
            berth_container::state::write_atomically(&dir.join(RECORD), &bytes, 0o600)
                .map_err(Error::from)
        });
    if let Err(e) = made {
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    crate::events::append(
        engine,
        &crate::events::Event::now("volume", "create", &name, &[("driver", "local")]),
    );
    Ok(volume)
}

/// The label that marks a volume made for one container (`-v /dst`): `rm -v` and `--rm`
/// remove it with the container, as docker does.
pub const ANONYMOUS_LABEL: &str = "berth.volume.anonymous";

/// A new anonymous volume (a random name, the anonymous label).
pub fn create_anonymous(engine: &Engine) -> Result<Volume> {
    let labels = BTreeMap::from([(ANONYMOUS_LABEL.to_string(), "true".to_string())]);
    create(engine, None, labels)
}

/// Removes the anonymous volumes of a container that is gone (`rm -v`, `--rm`); named
/// volumes stay. Failures are warnings: the container is already removed.
pub fn remove_anonymous(engine: &Engine, record: &crate::record::ContainerRecord) {
    for m in record.config.mounts.iter().filter(|m| m.kind == "volume") {
        let Some(dir) = &m.source else { continue };
        let Ok(volumes) = list(engine) else { return };
        for v in volumes {
            if &v.mountpoint == dir
                && v.labels.contains_key(ANONYMOUS_LABEL)
                && let Err(e) = remove(engine, &v.name, false)
            {
                log::warn!("container {}: volume {}: {e}", record.name, v.name);
            }
        }
    }
}

/// For `run -v NAME:/dst` (ENGINE calls this): the host directory of volume `name`,
/// created first when `create` (docker creates a named volume on first use).
pub fn path_for(engine: &Engine, name: &str, create_missing: bool) -> Result<PathBuf> {
    if let Some(v) = load(engine, name)? {
        return Ok(v.mountpoint);
    }
    if !create_missing {
        return Err(Error::Other(format!("no such volume: {name}")));
    }
    Ok(create(engine, Some(name), BTreeMap::new())?.mountpoint)
}

/// The volume name of a volume mount's source (`<root>/volumes/NAME/_data`), for inspect.
pub fn name_of(source: &Path) -> Option<String> {
    (source.file_name()? == "_data")
        .then(|| source.parent()?.file_name()?.to_str().map(str::to_string))
        .flatten()
}

/// docker's copy-up: a volume that is still empty when its container starts gets what the
/// image has at the mount's destination (mode, owners and times kept). Read from the root
/// filesystem by fd, resolved inside it: a symlink in the image cannot point the copy at a
/// host path. Nothing at the destination, or not a directory there: nothing to copy.
pub fn copy_up(rootfs: &Path, mounts: &[crate::config::MountSpec]) -> Result<()> {
    use crate::safepath::{Owners, Root, Writer};
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let mut root = None;
    for m in mounts.iter().filter(|m| m.kind == "volume") {
        let Some(data) = &m.source else { continue };
        let empty = fs::read_dir(data)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            continue;
        }
        let root = match &root {
            Some(r) => r,
            None => root.insert(Root::open(rootfs)?),
        };
        let Ok((src_dir, name)) = root.parent_of(&m.destination) else {
            continue;
        };
        let is_dir = rustix::fs::statat(&src_dir, &name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
        if !is_dir {
            continue;
        }
        let volume_dir = data.parent().unwrap_or(data);
        let dst = rustix::fs::open(
            volume_dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open", volume_dir, e.into()))?;
        let data_name = data.file_name().unwrap_or(std::ffi::OsStr::new("_data"));
        crate::safepath::copy_tree(
            std::os::fd::AsFd::as_fd(&src_dir),
            &name,
            Path::new(&m.destination),
            std::os::fd::AsFd::as_fd(&dst),
            data_name,
            // stored ids to stored ids: a keep-id container's copy stays as its layers are
            &Writer::new(Owners::Keep),
        )?;
    }
    Ok(())
}

/// `volume inspect NAME`.
pub fn inspect(engine: &Engine, name: &str) -> Result<Volume> {
    if !valid_name(name) {
        return Err(Error::Other(format!("no such volume: {name}")));
    }
    load(engine, name)?.ok_or_else(|| Error::Other(format!("no such volume: {name}")))
}

/// Every volume, by name.
pub fn list(engine: &Engine) -> Result<Vec<Volume>> {
    let dir = volumes_dir(engine);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::path("read", &dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        if let Some(name) = entry.file_name().to_str()
            && valid_name(name)
            && let Some(v) = load(engine, name)?
        {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The containers (names) whose mounts use the volume.
pub fn users(engine: &Engine, volume: &Volume) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for record in engine.records.list()? {
        let uses = record.config.mounts.iter().any(|m| {
            m.source.as_deref().is_some_and(|s| {
                s == volume.mountpoint || (m.kind == "volume" && s == Path::new(&volume.name))
            })
        });
        if uses {
            out.push(record.name);
        }
    }
    Ok(out)
}

/// `volume rm [-f] NAME`: refuses a volume a container uses unless forced (docker's rule
/// forbids it even then for a running container; a forced removal here leaves the
/// container's mount pointing at nothing, as podman's does).
pub fn remove(engine: &Engine, name: &str, force: bool) -> Result<()> {
    let volume = inspect(engine, name)?;
    let users = users(engine, &volume)?;
    if !users.is_empty() && !force {
        return Err(Error::Other(format!(
            "volume {name} is in use by container(s) {}: remove them first or use --force",
            users.join(", ")
        )));
    }
    let dir = volumes_dir(engine).join(name);
    // Renamed first so the name is free at once and nobody sees a half-removed volume.
    let doomed = volumes_dir(engine).join(format!(".removing-{name}-{}", std::process::id()));
    fs::rename(&dir, &doomed).map_err(|e| Error::path("remove", &dir, e))?;
    fs::remove_dir_all(&doomed).map_err(|e| Error::path("remove", &doomed, e))?;
    crate::events::append(
        engine,
        &crate::events::Event::now("volume", "destroy", name, &[("driver", "local")]),
    );
    Ok(())
}

/// `volume prune`: removes every volume no container uses (podman's rule); returns their
/// names.
pub fn prune(engine: &Engine) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for v in list(engine)? {
        if users(engine, &v)?.is_empty() && remove(engine, &v.name, false).is_ok() {
            removed.push(v.name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_idempotent_and_rm_frees_the_name() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = Engine::new(&tmp.path().join("root"), &tmp.path().join("run"));
        let a = create(&engine, Some("data"), BTreeMap::new()).unwrap();
        assert!(a.mountpoint.ends_with("volumes/data/_data") && a.mountpoint.is_dir());
        assert_eq!(create(&engine, Some("data"), BTreeMap::new()).unwrap(), a);
        assert_eq!(path_for(&engine, "data", false).unwrap(), a.mountpoint);
        assert!(path_for(&engine, "other", false).is_err());
        assert!(path_for(&engine, "other", true).unwrap().is_dir());
        assert_eq!(list(&engine).unwrap().len(), 2);
        assert!(create(&engine, Some("../x"), BTreeMap::new()).is_err());
        remove(&engine, "data", false).unwrap();
        assert!(inspect(&engine, "data").is_err());
        assert_eq!(prune(&engine).unwrap(), vec!["other".to_string()]);
        assert!(list(&engine).unwrap().is_empty());
    }
}
