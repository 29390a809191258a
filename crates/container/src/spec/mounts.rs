//! `mounts` of config.json planned: destination checked and made relative to the root,
//! bind sources made absolute and checked, options parsed.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::mount_options::{MountOptions, parse_mount_options};
use super::{absolute_in, container_relative, reject_nul};
use crate::error::{Error, Result};

/// What a mount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of a host path (absolute).
    Bind { source: PathBuf },
    /// A cgroup filesystem at the destination (runc's handling: the container's own cgroups).
    Cgroup,
    /// A new filesystem instance.
    Filesystem { fstype: String, source: String },
}

/// One planned mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Index in config.json's `mounts`, for error messages.
    pub index: usize,
    /// Relative to the container's root, never empty, never containing `..`.
    pub destination: PathBuf,
    pub kind: MountKind,
    pub options: MountOptions,
}

impl MountPlan {
    /// The destination as the container sees it (`/proc`).
    pub fn display_destination(&self) -> String {
        format!("/{}", self.destination.display())
    }
}

/// Plans every mount; bind sources relative to the bundle are resolved against it.
pub fn plan_mounts(mounts: &[Mount], bundle: &Path) -> Result<Vec<MountPlan>> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| plan_mount(i, m, bundle))
        .collect()
}

fn plan_mount(index: usize, mount: &Mount, bundle: &Path) -> Result<MountPlan> {
    let field = |f: &str| format!("mounts[{index}].{f}");
    let destination = container_relative(mount.destination(), &field("destination"))?;
    if destination.as_os_str().is_empty() {
        return Err(Error::invalid(
            field("destination"),
            "cannot mount over the container's root",
        ));
    }
    let options = parse_mount_options(mount.options().as_deref().unwrap_or_default());
    let fstype = mount.typ().clone().unwrap_or_default();
    reject_nul(&field("type"), &fstype)?;
    if let Some(source) = mount.source() {
        reject_nul(&field("source"), &source.to_string_lossy())?;
    }
    for (i, option) in mount.options().iter().flatten().enumerate() {
        reject_nul(&format!("{}[{i}]", field("options")), option)?;
    }
    let kind = if options.bind || fstype == "bind" {
        let source = mount
            .source()
            .as_ref()
            .filter(|s| !s.as_os_str().is_empty())
            .ok_or_else(|| Error::invalid(field("source"), "a bind mount needs a source"))?;
        let source = absolute_in(bundle, source);
        if let Err(e) = std::fs::symlink_metadata(&source) {
            return Err(Error::invalid(
                field("source"),
                format!("{}: {e}", source.display()),
            ));
        }
        MountKind::Bind { source }
    } else if fstype == "cgroup" || fstype == "cgroup2" {
        MountKind::Cgroup
    } else if fstype.is_empty() {
        return Err(Error::invalid(
            field("type"),
            "missing: name a filesystem type or use a bind mount",
        ));
    } else {
        MountKind::Filesystem {
            source: mount
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| fstype.clone()),
            fstype,
        }
    };
    if options.idmap && !matches!(kind, MountKind::Bind { .. }) {
        return Err(Error::invalid(
            field("options"),
            "idmap is only supported on bind mounts",
        ));
    }
    if options.idmap {
        return Err(Error::invalid(
            field("options"),
            "id-mapped mounts are not supported yet",
        ));
    }
    Ok(MountPlan {
        index,
        destination,
        kind,
        options,
    })
}
