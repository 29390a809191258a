//! The engine's use of the image store: resolving what `run` names, holding the image for
//! each container, and mounting (and unmounting) a container's root filesystem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_image::{Digest, Store};

use crate::config::HealthConfig;
use crate::error::{Error, Result};
use crate::record::ImageDefaults;

fn image_error(reference: &str, e: berth_image::Error) -> Error {
    Error::Image {
        reference: reference.to_string(),
        message: e.to_string(),
    }
}

/// The image `reference` names: its id and what it gives a container.
pub fn resolve(root: &Path, reference: &str) -> Result<(String, ImageDefaults)> {
    let store = Store::open(root).map_err(|e| image_error(reference, e))?;
    let image = store
        .resolve(reference)
        .map_err(|e| image_error(reference, e))?;
    let c = &image.config;
    let healthcheck = c.healthcheck.as_ref().and_then(|h| {
        // ["NONE"] disables the image's check; an empty test inherits (nothing here).
        if h.test.is_empty() || h.test[0] == "NONE" {
            return None;
        }
        let mut health = HealthConfig::with_defaults(h.test.clone());
        let ns = |v: i64| (v > 0).then(|| Duration::from_nanos(v as u64));
        if let Some(d) = ns(h.interval) {
            health.interval = d;
        }
        if let Some(d) = ns(h.timeout) {
            health.timeout = d;
        }
        if let Some(d) = ns(h.start_period) {
            health.start_period = d;
        }
        if h.retries > 0 {
            health.retries = h.retries as u32;
        }
        Some(health)
    });
    let defaults = ImageDefaults {
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        env: c.env.clone(),
        working_dir: c.working_dir.clone(),
        user: c.user.clone(),
        stop_signal: c.stop_signal.clone(),
        exposed_ports: c.exposed_ports.clone(),
        volumes: c.volumes.clone(),
        labels: c.labels.clone(),
        healthcheck,
    };
    Ok((image.id.to_string(), defaults))
}

/// Marks the image as used by container `id` (image removal refuses it then).
pub fn hold(root: &Path, image_id: &str, id: &str) -> Result<()> {
    let digest = Digest::parse(image_id).map_err(|e| image_error(image_id, e))?;
    let store = Store::open(root).map_err(|e| image_error(image_id, e))?;
    store
        .hold(&digest, id)
        .map_err(|e| image_error(image_id, e))
}

/// The container no longer uses the image.
pub fn release(root: &Path, image_id: &str, id: &str) -> Result<()> {
    let digest = Digest::parse(image_id).map_err(|e| image_error(image_id, e))?;
    let store = Store::open(root).map_err(|e| image_error(image_id, e))?;
    store
        .release(&digest, id)
        .map_err(|e| image_error(image_id, e))
}

/// Where a container's image root filesystem is mounted.
pub fn rootfs_target(container_dir: &Path) -> PathBuf {
    container_dir.join("rootfs")
}

/// Mounts the image's layers (and the container's changes) at `<container_dir>/rootfs`;
/// `disposable` (a `--rm` container) mounts overlay volatile, with no sync at unmount.
/// `shift`: the container has a user namespace of its own (keep-id), and its layers are
/// the copies with owners shifted into it.
pub fn mount(
    root: &Path,
    image_id: &str,
    container_dir: &Path,
    disposable: bool,
    shift: Option<&berth_image::snapshot::IdShift>,
) -> Result<PathBuf> {
    let store = Store::open(root).map_err(|e| image_error(image_id, e))?;
    let image = store
        .resolve(image_id)
        .map_err(|e| image_error(image_id, e))?;
    let driver = berth_image::snapshot::Driver::from_env().map_err(|e| image_error(image_id, e))?;
    let rootfs = store
        .rootfs_shifted(&image, container_dir, driver, shift)
        .map_err(|e| image_error(image_id, e))?;
    let target = rootfs_target(container_dir);
    std::fs::create_dir_all(&target).map_err(|e| Error::path("create", &target, e))?;
    if disposable {
        rootfs.mount_volatile(&target)
    } else {
        rootfs.mount(&target)
    }
    .map_err(|e| image_error(image_id, e))?;
    Ok(target)
}

/// Unmounts what [`mount`] mounted (nothing mounted is fine).
pub fn unmount(container_dir: &Path) -> Result<()> {
    let target = rootfs_target(container_dir);
    berth_image::unmount_rootfs(&target).map_err(|e| Error::Image {
        reference: target.display().to_string(),
        message: e.to_string(),
    })
}
