//! `export`: a container's filesystem as a tar stream (what `docker export` writes and
//! `berth import` reads), and the container filesystem access that `cp` shares.
//!
//! The tree is read by fd from the container's root ([`crate::safepath`]): a symlink in the
//! container is archived as a symlink, never followed. A stopped container's root
//! filesystem is mounted for the export at a private place under `--runroot` (not at
//! `<dir>/rootfs`, which belongs to the monitor) and unmounted afterwards.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use berth_image::snapshot::IdShift;
use rustix::fs::OFlags;

use crate::Engine;
use crate::error::{Error, Result};
use crate::record::ContainerRecord;
use crate::safepath::{self, Kind, Root};
use crate::status::{self, State};

/// A container's files, open for reading and writing by fd; a mount made for it goes
/// when this is dropped.
#[derive(Debug)]
pub struct ContainerFs {
    pub root: Root,
    pub record: ContainerRecord,
    mounted: Option<PathBuf>,
}

impl Drop for ContainerFs {
    fn drop(&mut self) {
        if let Some(target) = self.mounted.take() {
            if let Err(e) = berth_image::unmount_rootfs(&target) {
                log::warn!("container {}: {e}", self.record.name);
            }
            let _ = std::fs::remove_dir(&target);
        }
    }
}

/// Opens a container's files. `with_mounts`: for a running container, its root as its
/// processes see it (`/proc/<init>/root`: volumes and tmpfs mounts included, as `docker
/// cp` sees them); else the root filesystem alone (what `export` archives).
pub fn open_fs(engine: &Engine, id: &str, with_mounts: bool) -> Result<ContainerFs> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    let active = matches!(live.state, State::Running | State::Paused);
    if active && with_mounts && live.pid > 0 {
        let root = Root::open(Path::new(&format!("/proc/{}/root", live.pid)))?;
        // The pid may have been recycled between the two reads: check it is still ours.
        let (_, again) = status::live(engine, id)?;
        if again.pid == live.pid {
            return Ok(ContainerFs {
                root,
                record,
                mounted: None,
            });
        }
    }
    if let Some(dir) = &record.config.rootfs {
        let root = Root::open(dir)?;
        return Ok(ContainerFs {
            root,
            record,
            mounted: None,
        });
    }
    let container_dir = engine.container_dir(&record.id);
    if active || record.state.rootfs_mounted {
        let root = Root::open(&crate::image::rootfs_target(&container_dir))?;
        return Ok(ContainerFs {
            root,
            record,
            mounted: None,
        });
    }
    let image_error = |e: berth_image::Error| Error::Image {
        reference: record.image_id.clone(),
        message: e.to_string(),
    };
    let store = berth_image::Store::open(&engine.root).map_err(image_error)?;
    let image = store.resolve(&record.image_id).map_err(image_error)?;
    // a keep-id container's changes are stored shifted: they go over the shifted layers
    let shift = crate::userns::shift_of(&record)?;
    let driver = berth_image::snapshot::Driver::from_env().map_err(image_error)?;
    let rootfs = store
        .rootfs_shifted(&image, &container_dir, driver, shift.as_ref())
        .map_err(image_error)?;
    let target = engine
        .run_dir(&record.id)
        .join(format!("mnt-{}", std::process::id()));
    std::fs::create_dir_all(&target).map_err(|e| Error::path("create", &target, e))?;
    if let Err(e) = rootfs.mount(&target) {
        let _ = std::fs::remove_dir(&target);
        return Err(image_error(e));
    }
    let root = match Root::open(&target) {
        Ok(r) => r,
        Err(e) => {
            let _ = berth_image::unmount_rootfs(&target);
            let _ = std::fs::remove_dir(&target);
            return Err(e);
        }
    };
    Ok(ContainerFs {
        root,
        record,
        mounted: Some(target),
    })
}

/// Writes tar entries for a tree read by fd, hard links as links.
pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
    /// Owners as the container sees them, where its files are stored shifted (keep-id).
    view: Option<IdShift>,
}

/// What a container in its own user namespace shows for an id it has no name for.
const OVERFLOW_ID: u32 = 65534;

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter {
            builder: tar::Builder::new(out),
            links: HashMap::new(),
            view: None,
        }
    }

    /// Writes owners as the container of `shift` sees them (its root is 0 in the archive,
    /// not the id that stores it).
    pub fn seen_through(mut self, shift: Option<IdShift>) -> Self {
        self.view = shift;
        self
    }

    fn owners(&self, st: &rustix::fs::Stat) -> (u32, u32) {
        match &self.view {
            None => (st.st_uid, st.st_gid),
            Some(v) => (
                v.inside_uid(st.st_uid).unwrap_or(OVERFLOW_ID),
                v.inside_gid(st.st_gid).unwrap_or(OVERFLOW_ID),
            ),
        }
    }

    /// Adds the tree at `name` in `dir` under `prefix` in the archive (`prefix` empty and
    /// `skip_top`: only what is below, as `export` names entries: `bin/sh`, not `./bin/sh`).
    pub fn add_tree(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        name: &OsStr,
        prefix: &Path,
        skip_top: bool,
    ) -> Result<()> {
        safepath::walk(dir, name, prefix, &mut |entry, file| {
            if skip_top && entry.rel == prefix {
                return Ok(());
            }
            self.add(entry, file)
                .map_err(|e| Error::path("archive", &entry.rel, e))
        })
    }

    /// One entry (an overlay whiteout is written by [`TarWriter::add_whiteout`] instead).
    pub fn add(&mut self, entry: &safepath::Entry, file: Option<File>) -> io::Result<()> {
        let st = &entry.stat;
        let mut header = tar::Header::new_gnu();
        header.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self.owners(st);
        header.set_uid(uid as u64);
        header.set_gid(gid as u64);
        header.set_mtime(st.st_mtime.max(0) as u64);
        header.set_size(0);
        let path = &entry.rel;
        match &entry.kind {
            Kind::File => {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        header.set_entry_type(tar::EntryType::Link);
                        return self.builder.append_link(&mut header, path, first.clone());
                    }
                    self.links.insert(key, path.clone());
                }
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(st.st_size as u64);
                let file =
                    file.ok_or_else(|| io::Error::other("a regular file without its data"))?;
                self.builder.append_data(&mut header, path, file)
            }
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                self.builder.append_data(&mut header, path, io::empty())
            }
            Kind::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                let bytes = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str());
                if bytes.len() <= 100 {
                    // Byte-exact: the tar crate's set_link_name rewrites `/` as `//`.
                    header.set_link_name_literal(bytes)?;
                    self.builder.append_data(&mut header, path, io::empty())
                } else {
                    // Long targets go in a GNU long-link entry, written as they are.
                    self.builder.append_link(&mut header, path, target)
                }
            }
            Kind::Char(dev) | Kind::Block(dev) => {
                header.set_entry_type(if matches!(entry.kind, Kind::Char(_)) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                header.set_device_major(rustix::fs::major(*dev))?;
                header.set_device_minor(rustix::fs::minor(*dev))?;
                self.builder.append_data(&mut header, path, io::empty())
            }
            Kind::Fifo => {
                header.set_entry_type(tar::EntryType::Fifo);
                self.builder.append_data(&mut header, path, io::empty())
            }
            // Sockets have no tar form (GNU tar skips them too).
            Kind::Socket => Ok(()),
        }
    }

    /// An empty regular file named `path` (a layer's `.wh.` whiteout markers).
    pub fn add_marker(&mut self, path: &Path, mtime: i64) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(0);
        header.set_mtime(mtime.max(0) as u64);
        self.builder.append_data(&mut header, path, io::empty())
    }

    /// Ends the archive; returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// `export`: the container's root filesystem as tar to `out`.
pub fn export(engine: &Engine, id: &str, out: &mut dyn Write) -> Result<()> {
    let fs = open_fs(engine, id, false)?;
    let top = fs.root.open_at("/", OFlags::PATH | OFlags::DIRECTORY)?;
    let mut tar = TarWriter::new(out).seen_through(crate::userns::shift_of(&fs.record)?);
    tar.add_tree(top.as_fd(), OsStr::new("."), Path::new(""), true)?;
    tar.finish()
        .map_err(|e| Error::path("write", "the archive", e))?;
    Ok(())
}
