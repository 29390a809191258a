//! Creating one tar entry inside the layer root, with its metadata.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use tar::EntryType;

use super::UnpackStats;
use super::name::{self, Whiteout};
use super::root::{DirError, Root, remove_entry};
use crate::error::{Error, Result};

/// Metadata of an entry, PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) struct Unpacker<'a> {
    root: Root,
    layer: &'a str,
    /// Directories whose mtime is set at the end, when nothing more is created in them.
    dir_times: Vec<(Vec<Vec<u8>>, Timespec)>,
    stats: UnpackStats,
    /// For file contents: large writes (io::copy's 8 KiB would cost a syscall per 8 KiB).
    buf: Vec<u8>,
}

impl<'a> Unpacker<'a> {
    pub(super) fn new(dir: &Path, layer: &'a str) -> Result<Unpacker<'a>> {
        let root = Root::open(dir).map_err(Error::path("open layer dir", dir))?;
        Ok(Unpacker {
            root,
            layer,
            dir_times: Vec::new(),
            stats: UnpackStats::default(),
            buf: vec![0; 256 * 1024],
        })
    }

    pub(super) fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        let raw_name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let comps =
            name::components(&raw_name).map_err(|reason| self.unsafe_entry(&shown, reason))?;
        let meta = self.meta(entry, &shown)?;
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        self.stats.entries += 1;

        let Some((base, parent)) = comps.split_last() else {
            // `./`: the layer root's own metadata.
            if kind == EntryType::Directory {
                let fd = self.root.fd();
                apply_fd(fd, &meta).map_err(|e| self.io("set metadata of", &shown, e))?;
                self.dir_times.push((Vec::new(), meta.mtime));
            }
            return Ok(());
        };
        let dir = match self.root.dir(parent) {
            Ok(fd) => fd,
            Err(e) => return Err(dir_error(self.layer, &shown, e)),
        };
        // The borrow of self.root ends here: the parent is owned for this entry.
        let parent_fd = rustix::io::fcntl_dupfd_cloexec(dir, 0)
            .map_err(|e| self.io("dup", &shown, e.into()))?;
        let base_name = OsStr::from_bytes(base);

        if let Some(whiteout) = name::whiteout(base) {
            return self.whiteout(parent_fd.as_fd(), parent, whiteout, &shown);
        }
        match kind {
            EntryType::Directory => {
                self.directory(parent_fd.as_fd(), base_name, &meta, &shown)?;
                let mut path: Vec<Vec<u8>> = parent.iter().map(|c| c.to_vec()).collect();
                path.push(base.to_vec());
                self.dir_times.push((path, meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.replace(parent_fd.as_fd(), base_name, &shown)?;
                let fd = rustix::fs::openat(
                    &parent_fd,
                    base_name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| self.io("create", &shown, e.into()))?;
                let mut file = File::from(fd);
                let n = copy(entry, &mut file, &mut self.buf).map_err(|source| Error::Read {
                    what: format!("{}: entry {shown:?}", self.layer),
                    source,
                })?;
                self.stats.bytes += n;
                apply_fd(file.as_fd(), &meta).map_err(|e| self.io("set metadata of", &shown, e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(&shown, "a symlink without a target"))?
                    .into_owned();
                self.replace(parent_fd.as_fd(), base_name, &shown)?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent_fd, base_name)
                    .map_err(|e| self.io("symlink", &shown, e.into()))?;
                apply_at(parent_fd.as_fd(), base_name, &meta, false)
                    .map_err(|e| self.io("set metadata of", &shown, e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry(&shown, "a hard link without a target"))?
                    .into_owned();
                self.hard_link(parent_fd.as_fd(), base_name, &target, &shown)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = match kind {
                    EntryType::Fifo => 0,
                    _ => {
                        let h = entry.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        rustix::fs::makedev(major, minor)
                    }
                };
                self.replace(parent_fd.as_fd(), base_name, &shown)?;
                match rustix::fs::mknodat(
                    &parent_fd,
                    base_name,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    dev,
                ) {
                    Ok(()) => {}
                    // Rootless: a user namespace makes no device nodes (podman skips them
                    // too); the container's /dev comes from the runtime anyway.
                    Err(rustix::io::Errno::PERM)
                        if kind != EntryType::Fifo && crate::overlay_xattr::in_user_namespace() =>
                    {
                        log::warn!(
                            "{}: device node {shown} skipped: a user namespace cannot make devices",
                            self.layer
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(self.io("mknod", &shown, e.into())),
                }
                apply_at(parent_fd.as_fd(), base_name, &meta, true)
                    .map_err(|e| self.io("set metadata of", &shown, e))?;
            }
            other => {
                log::debug!("{}: entry {shown:?} of type {other:?} skipped", self.layer);
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<UnpackStats> {
        // Deepest first, so setting a parent's time comes after its children's.
        let times = std::mem::take(&mut self.dir_times);
        for (path, mtime) in times.iter().rev() {
            let comps: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
            let stamps = Timestamps {
                last_access: *mtime,
                last_modification: *mtime,
            };
            let result = match comps.split_last() {
                None => rustix::fs::futimens(self.root.fd(), &stamps),
                Some((base, parent)) => match self.root.dir(parent) {
                    Ok(dir) => rustix::fs::utimensat(
                        dir,
                        OsStr::from_bytes(base),
                        &stamps,
                        AtFlags::SYMLINK_NOFOLLOW,
                    ),
                    // Replaced by a later entry: its time is that entry's business.
                    Err(_) => Ok(()),
                },
            };
            if let Err(e) = result
                && e != rustix::io::Errno::NOENT
            {
                return Err(self.io(
                    "set mtime of",
                    &String::from_utf8_lossy(&name::join(&comps)),
                    e.into(),
                ));
            }
        }
        Ok(self.stats)
    }

    fn directory(
        &mut self,
        parent: BorrowedFd<'_>,
        base: &OsStr,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        match rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(_) => {
                self.replace(parent, base, shown)?;
                mkdir(parent, base).map_err(|e| self.io("mkdir", shown, e))?;
            }
            Err(_) => mkdir(parent, base).map_err(|e| self.io("mkdir", shown, e))?,
        }
        let fd = rustix::fs::openat(
            parent,
            base,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.io("open", shown, e.into()))?;
        apply_fd(fd.as_fd(), meta).map_err(|e| self.io("set metadata of", shown, e))
    }

    /// Removes what is at `base` before another entry takes the name (tar's semantics:
    /// the later entry wins). A directory is kept when a directory replaces it.
    fn replace(&mut self, parent: BorrowedFd<'_>, base: &OsStr, shown: &str) -> Result<()> {
        match rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW) {
            Err(_) => Ok(()),
            Ok(st) => {
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    self.root.invalidate();
                }
                remove_entry(parent, base).map_err(|e| self.io("remove", shown, e))
            }
        }
    }

    fn hard_link(
        &mut self,
        parent: BorrowedFd<'_>,
        base: &OsStr,
        target: &[u8],
        shown: &str,
    ) -> Result<()> {
        let target_comps = name::components(target).map_err(|_| {
            self.unsafe_entry(shown, "the hard link's target climbs out of the layer")
        })?;
        let target_shown = String::from_utf8_lossy(target).into_owned();
        // O_PATH|O_NOFOLLOW: a link to a symlink links the symlink itself, as tar does.
        let target_fd: OwnedFd = match self
            .root
            .open_in(&target_comps, OFlags::PATH | OFlags::NOFOLLOW)
        {
            Ok(fd) => fd,
            Err(e)
                if e.raw_os_error() == Some(libc::ENOENT)
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                return Err(self.unsafe_entry(
                    shown,
                    &format!("the hard link's target {target_shown:?} is not in the layer"),
                ));
            }
            Err(e) => return Err(self.io("open hard link target of", shown, e)),
        };
        let st = rustix::fs::fstat(&target_fd)
            .map_err(|e| self.io("stat hard link target of", shown, e.into()))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(self.unsafe_entry(shown, "a hard link to a directory"));
        }
        if let Ok(existing) = rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW)
            && existing.st_ino == st.st_ino
            && existing.st_dev == st.st_dev
        {
            return Ok(());
        }
        self.replace(parent, base, shown)?;
        rustix::fs::linkat(&target_fd, "", parent, base, AtFlags::EMPTY_PATH)
            .map_err(|e| self.io("hard link", shown, e.into()))
    }

    fn whiteout(
        &mut self,
        parent: BorrowedFd<'_>,
        parent_comps: &[&[u8]],
        whiteout: Whiteout<'_>,
        shown: &str,
    ) -> Result<()> {
        match whiteout {
            Whiteout::Ignore => Ok(()),
            Whiteout::Opaque => {
                // `parent` is the directory itself: it was opened (or created) above.
                let _ = parent_comps;
                rustix::fs::fsetxattr(
                    parent,
                    crate::overlay_xattr::opaque(),
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| self.io("mark opaque", shown, e.into()))
            }
            Whiteout::Remove(name) => {
                let name = OsStr::from_bytes(name);
                self.replace(parent, name, shown)?;
                rustix::fs::mknodat(parent, name, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| self.io("create whiteout", shown, e.into()))
            }
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta> {
        let h = entry.header();
        let mut meta = Meta {
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: Timespec {
                tv_sec: h.mtime().unwrap_or(0) as i64,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        let extensions = match entry.pax_extensions() {
            Ok(Some(extensions)) => extensions,
            Ok(None) => return Ok(meta),
            Err(e) => return Err(self.unsafe_entry(shown, &format!("bad PAX header: {e}"))),
        };
        for extension in extensions {
            let Ok(extension) = extension else { continue };
            let key = extension.key_bytes();
            let value = extension.value_bytes();
            let text = || std::str::from_utf8(value).ok();
            match key {
                b"uid" => meta.uid = text().and_then(|t| t.parse().ok()).unwrap_or(meta.uid),
                b"gid" => meta.gid = text().and_then(|t| t.parse().ok()).unwrap_or(meta.gid),
                b"mtime" => {
                    if let Some(t) = text().and_then(parse_pax_time) {
                        meta.mtime = t;
                    }
                }
                _ => {
                    if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.")
                        && xattr_allowed(attr)
                    {
                        meta.xattrs.push((attr.to_vec(), value.to_vec()));
                    }
                }
            }
        }
        Ok(meta)
    }

    fn unsafe_entry(&self, entry: &str, reason: &str) -> Error {
        Error::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            reason: reason.to_string(),
        }
    }

    fn io(&self, op: &'static str, entry: &str, source: io::Error) -> Error {
        Error::Unpack {
            layer: self.layer.to_string(),
            op,
            entry: entry.to_string(),
            source,
        }
    }
}

fn dir_error(layer: &str, shown: &str, e: DirError) -> Error {
    match e {
        DirError::NotADirectory(path) => Error::UnsafeEntry {
            layer: layer.to_string(),
            entry: shown.to_string(),
            reason: format!(
                "{:?} on its path is not a directory inside the layer",
                String::from_utf8_lossy(&path)
            ),
        },
        DirError::Io(op, source) => Error::Unpack {
            layer: layer.to_string(),
            op,
            entry: shown.to_string(),
            source,
        },
    }
}

/// Which xattrs of an image are written. overlay's own (`trusted.overlay.*`, and the
/// `user.overlay.*` of a rootless mount) never: an image could forge overlay's metadata
/// (redirects, metacopy, opacity) and change what other layers show. `security.selinux`
/// neither: labels are the host's business, as podman does.
fn xattr_allowed(name: &[u8]) -> bool {
    if crate::overlay_xattr::is_overlays(name) || name == b"security.selinux" {
        return false;
    }
    name.starts_with(b"user.") || name.starts_with(b"trusted.") || name.starts_with(b"security.")
}

/// `1700000000.123456789` (PAX mtime, fractions optional).
fn parse_pax_time(text: &str) -> Option<Timespec> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Timespec { tv_sec, tv_nsec })
}

fn copy(from: &mut dyn Read, to: &mut File, buf: &mut [u8]) -> io::Result<u64> {
    use std::io::Write;
    let mut total = 0;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn mkdir(parent: BorrowedFd<'_>, base: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(
        parent,
        base,
        Mode::from_raw_mode(0o700),
    )?)
}

/// Owner, then mode (chown clears setuid/setgid), then xattrs (chown clears file
/// capabilities too), then times, all through the entry's own fd.
fn apply_fd(fd: BorrowedFd<'_>, meta: &Meta) -> io::Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(meta.uid)),
        Some(rustix::fs::Gid::from_raw(meta.gid)),
    )?;
    rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))?;
    for (name, value) in &meta.xattrs {
        match rustix::fs::fsetxattr(
            fd,
            OsStr::from_bytes(name),
            value,
            rustix::fs::XattrFlags::empty(),
        ) {
            Ok(()) => {}
            // A filesystem without user xattrs, say: the file is still right otherwise.
            Err(e)
                if name.as_slice() != b"security.capability"
                    && e == rustix::io::Errno::OPNOTSUPP =>
            {
                log::debug!("xattr {} not supported here", String::from_utf8_lossy(name));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stamps = Timestamps {
        last_access: meta.mtime,
        last_modification: meta.mtime,
    };
    rustix::fs::futimens(fd, &stamps)?;
    Ok(())
}

/// The same for entries that cannot be opened (symlinks, devices, fifos): by name in the
/// parent's fd, never following a symlink.
fn apply_at(parent: BorrowedFd<'_>, base: &OsStr, meta: &Meta, chmod: bool) -> io::Result<()> {
    rustix::fs::chownat(
        parent,
        base,
        Some(rustix::fs::Uid::from_raw(meta.uid)),
        Some(rustix::fs::Gid::from_raw(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if chmod {
        // Not a symlink (it was just made by mknod in this directory, which nothing else
        // writes), so following is harmless; fchmodat2's NOFOLLOW is used where the kernel has it.
        match rustix::fs::chmodat(
            parent,
            base,
            Mode::from_raw_mode(meta.mode),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => {}
            Err(
                rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL,
            ) => rustix::fs::chmodat(
                parent,
                base,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )?,
            Err(e) => return Err(e.into()),
        }
    }
    let stamps = Timestamps {
        last_access: meta.mtime,
        last_modification: meta.mtime,
    };
    rustix::fs::utimensat(parent, base, &stamps, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_and_xattr_policy() {
        let t = parse_pax_time("1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1700000000, 500_000_000));
        assert_eq!(parse_pax_time("12").unwrap().tv_nsec, 0);
        assert!(xattr_allowed(b"security.capability"));
        assert!(xattr_allowed(b"user.x"));
        assert!(!xattr_allowed(b"trusted.overlay.opaque"));
        assert!(!xattr_allowed(b"trusted.overlay.redirect"));
        assert!(!xattr_allowed(b"security.selinux"));
        assert!(!xattr_allowed(b"system.posix_acl_access"));
    }
}
