//! A container's root filesystem from its image's layers.
//!
//! `overlay` (the default where the kernel has it): the layers, each unpacked once, are the
//! lower dirs; the container gets its own `upper/` and `work/`. `vfs` (forced by
//! `BERTH_STORAGE_DRIVER=vfs`, or where overlay is missing): a full copy of the layers with
//! whiteouts applied, in the container's `vfs/`, bind-mounted.

mod copy;
mod fuse;
mod overlay;
mod shift;
mod vfs;

pub use fuse::{MOUNT_PROGRAM_ENV, set_mount_program};
pub use shift::{IdRange, IdShift};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::{Image, Store};

/// The environment variable that picks the storage driver (`overlay` or `vfs`).
pub const DRIVER_ENV: &str = "BERTH_STORAGE_DRIVER";

/// What [`Rootfs::mount`] mounts.
#[derive(Debug, Clone)]
pub struct Rootfs {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Overlay {
        /// Top first, as overlay's lowerdir wants them.
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
    Vfs {
        dir: PathBuf,
    },
}

impl Store {
    /// Prepares the root filesystem of a container kept in `container_dir` (created if
    /// missing): `upper/` and `work/` for overlay, or the full copy `vfs/`. Calling it again
    /// for the same dir reuses what is there.
    pub fn rootfs(&self, image: &Image, container_dir: &Path) -> Result<Rootfs> {
        self.rootfs_with(image, container_dir, Driver::from_env()?)
    }

    /// [`Store::rootfs`] with the driver chosen by the caller (a container dir already
    /// prepared keeps the driver it was prepared with).
    pub fn rootfs_with(
        &self,
        image: &Image,
        container_dir: &Path,
        driver: Driver,
    ) -> Result<Rootfs> {
        self.rootfs_shifted(image, container_dir, driver, None)
    }

    /// [`Store::rootfs_with`] for a container in a user namespace of its own: its layers
    /// are the copies with owners shifted by `shift` (made on first use, see `shift`).
    pub fn rootfs_shifted(
        &self,
        image: &Image,
        container_dir: &Path,
        driver: Driver,
        shift: Option<&IdShift>,
    ) -> Result<Rootfs> {
        std::fs::create_dir_all(container_dir).map_err(Error::path("create", container_dir))?;
        let mut layer_dirs = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            let dir = self.layer_dir(&layer.diff_id);
            if !dir.is_dir() {
                return Err(Error::LayerUnknown(layer.diff_id));
            }
            layer_dirs.push(match shift {
                Some(shift) => self.shifted_layer(&layer.diff_id, shift)?,
                None => dir,
            });
        }
        let vfs_dir = container_dir.join("vfs");
        let use_vfs =
            vfs_dir.is_dir() || (!container_dir.join("upper").is_dir() && driver == Driver::Vfs);
        if use_vfs {
            if !vfs_dir.is_dir() {
                vfs::build(&layer_dirs, &vfs_dir, &self.tmp_dir())?;
            }
            return Ok(Rootfs {
                kind: Kind::Vfs { dir: vfs_dir },
            });
        }
        let upper = container_dir.join("upper");
        let work = container_dir.join("work");
        for dir in [&upper, &work] {
            mkdir(dir)?;
        }
        if let (Some(_), Some(top)) = (shift, layer_dirs.last()) {
            // overlay's root directory is the upper's: give it the top layer's owner, which
            // in a shifted copy is the container's root (not ours, the namespace's 0)
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(top).map_err(Error::path("stat", top))?;
            std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()))
                .map_err(Error::path("give the layer's owner to", &upper))?;
        }
        let mut lowers: Vec<PathBuf> = layer_dirs.into_iter().rev().collect();
        if lowers.is_empty() {
            // overlay needs a lower dir: an image without layers (scratch) gets an empty one.
            let empty = container_dir.join("empty");
            mkdir(&empty)?;
            lowers.push(empty);
        }
        Ok(Rootfs {
            kind: Kind::Overlay {
                lowers,
                upper,
                work,
            },
        })
    }
}

impl Rootfs {
    /// Mounts the root filesystem on `target` (an existing directory).
    pub fn mount(&self, target: &Path) -> Result<()> {
        self.mount_with(target, false)
    }

    /// [`Rootfs::mount`] for a container whose changes are thrown away when it ends (`--rm`):
    /// overlay's `volatile`, so the unmount does not sync the upper to disk (most of the cost
    /// of a short `run --rm`). vfs has nothing to skip and mounts as usual.
    pub fn mount_volatile(&self, target: &Path) -> Result<()> {
        self.mount_with(target, true)
    }

    fn mount_with(&self, target: &Path, volatile: bool) -> Result<()> {
        match &self.kind {
            Kind::Overlay {
                lowers,
                upper,
                work,
            } => {
                // A volatile mount leaves this dir in the work dir, and overlay refuses to
                // mount again while it is there: the upper may have lost writes in a crash.
                // Only disposable containers are mounted volatile, so their changes are
                // dropped (upper and work emptied) rather than trusted.
                let marker = overlay::volatile_marker(work);
                if marker.exists() {
                    for dir in [upper, work] {
                        std::fs::remove_dir_all(dir).map_err(Error::path("reset", dir))?;
                        mkdir(dir)?;
                    }
                }
                if let Some(program) = fuse::chosen() {
                    return fuse::mount(&program, lowers, upper, work, target, volatile);
                }
                match overlay::mount(lowers, upper, work, target, overlay::Options { volatile }) {
                    // podman's rule: where the kernel's overlay cannot be mounted in the
                    // user namespace (before 5.11: EPERM; no userxattr: EINVAL), the FUSE
                    // overlay serves, if it is installed.
                    Err(Error::Mount { source, .. })
                        if crate::overlay_xattr::in_user_namespace()
                            && matches!(
                                source.raw_os_error(),
                                Some(libc::EPERM | libc::EINVAL | libc::ENODEV)
                            )
                            && let Some(program) = fuse::fallback() =>
                    {
                        fuse::mount(&program, lowers, upper, work, target, volatile)
                    }
                    other => other,
                }
            }
            Kind::Vfs { dir } => rustix::mount::mount_bind(dir, target).map_err(|e| Error::Mount {
                op: "bind-mount the vfs copy on",
                path: target.to_path_buf(),
                source: e.into(),
            }),
        }
    }

    /// `overlay` or `vfs`.
    pub fn driver(&self) -> &'static str {
        match self.kind {
            Kind::Overlay { .. } => "overlay",
            Kind::Vfs { .. } => "vfs",
        }
    }

    /// Where the container's own changes are: `upper/` for overlay, the copy for vfs.
    pub fn changes_dir(&self) -> &Path {
        match &self.kind {
            Kind::Overlay { upper, .. } => upper,
            Kind::Vfs { dir } => dir,
        }
    }
}

/// Unmounts a root filesystem mounted by [`Rootfs::mount`]; nothing mounted there is fine.
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    use rustix::mount::{UnmountFlags, unmount};
    match unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) => Ok(()),
        // Not a mount point (already unmounted), or gone.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        // Something still has it open (a process inside that outlived the container):
        // detach it now, the kernel frees it when the last user goes.
        Err(rustix::io::Errno::BUSY) => {
            unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW).map_err(|e| {
                Error::Mount {
                    op: "unmount",
                    path: target.to_path_buf(),
                    source: e.into(),
                }
            })
        }
        Err(e) => Err(Error::Mount {
            op: "unmount",
            path: target.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// How container roots are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Overlay,
    Vfs,
}

impl Driver {
    /// `BERTH_STORAGE_DRIVER` when set, else overlay where the kernel has it, else vfs.
    pub fn from_env() -> Result<Driver> {
        match std::env::var(DRIVER_ENV).ok().as_deref() {
            Some("vfs") => Ok(Driver::Vfs),
            Some("overlay" | "overlay2") => Ok(Driver::Overlay),
            Some("") | None => Ok(if overlay::available() {
                Driver::Overlay
            } else {
                Driver::Vfs
            }),
            Some(other) => Err(Error::Other(format!(
                "{DRIVER_ENV}={other:?}: unknown storage driver (overlay or vfs)"
            ))),
        }
    }
}

fn mkdir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Path {
            op: "create",
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}
