//! The layer directory as a root that paths are resolved in by the kernel, never as joined
//! strings: `openat2(RESOLVE_IN_ROOT)` treats the layer dir as `/` for every lookup, so a
//! symlink planted by an earlier entry (`etc -> /etc`, `x -> ../../..`) resolves inside the
//! layer, and a symlink swapped in meanwhile cannot send a later write outside either.
//! Final components are then created or opened relative to the parent's fd with
//! `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, openat, openat2};

use super::name::join;

pub(crate) const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// A directory that the entries of a layer are created in.
pub(crate) struct Root {
    fd: OwnedFd,
    /// The last parent resolved (entries come grouped by directory).
    cache: Option<(Vec<u8>, OwnedFd)>,
}

/// Why a parent directory could not be had.
pub(crate) enum DirError {
    /// The path leads through something that is not a directory (a file, a dangling symlink).
    NotADirectory(Vec<u8>),
    Io(&'static str, io::Error),
}

impl Root {
    pub(crate) fn open(dir: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Root { fd, cache: None })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Forgets the cached parent: called when an entry removed or replaced a directory.
    pub(crate) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Opens the directory `components` inside the root, creating missing directories
    /// (0755, root's, as tar does for directories a layer does not list).
    pub(crate) fn dir(&mut self, components: &[&[u8]]) -> Result<BorrowedFd<'_>, DirError> {
        if components.is_empty() {
            return Ok(self.fd.as_fd());
        }
        let path = join(components);
        let hit = matches!(&self.cache, Some((cached, _)) if *cached == path);
        if !hit {
            let fd = self.resolve_or_create(components)?;
            self.cache = Some((path, fd));
        }
        match &self.cache {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Ok(self.fd.as_fd()),
        }
    }

    /// Opens an existing path inside the root, for reading metadata or linking to it.
    pub(crate) fn open_in(&self, components: &[&[u8]], flags: OFlags) -> io::Result<OwnedFd> {
        let path = join(components);
        Ok(openat2(
            &self.fd,
            OsStr::from_bytes(&path),
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?)
    }

    fn resolve_or_create(&self, components: &[&[u8]]) -> Result<OwnedFd, DirError> {
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY;
        match self.open_in(components, dir_flags) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(DirError::NotADirectory(join(components)));
            }
            Err(e) => return Err(DirError::Io("open", e)),
        }
        // Some directory on the way is missing: find the deepest that exists, create below.
        let mut current: Option<OwnedFd> = None;
        for depth in 1..=components.len() {
            let prefix = &components[..depth];
            match self.open_in(prefix, dir_flags) {
                Ok(fd) => {
                    current = Some(fd);
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    return Err(DirError::NotADirectory(join(prefix)));
                }
                Err(e) => return Err(DirError::Io("open", e)),
            }
            let parent = current
                .as_ref()
                .map(|fd| fd.as_fd())
                .unwrap_or(self.fd.as_fd());
            let name = OsStr::from_bytes(prefix[depth - 1]);
            match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => {}
                // A name that exists but does not resolve: a dangling symlink. Creating its
                // target is not this entry's business.
                Err(rustix::io::Errno::EXIST) => return Err(DirError::NotADirectory(join(prefix))),
                Err(e) => return Err(DirError::Io("mkdir", e.into())),
            }
            let fd = openat(
                parent,
                name,
                dir_flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| DirError::Io("open", e.into()))?;
            current = Some(fd);
        }
        current.ok_or_else(|| DirError::NotADirectory(join(components)))
    }
}

/// Removes `name` in `dir`, a whole tree when it is a directory, following no symlink.
pub(crate) fn remove_entry(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) => {}
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let child = openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&child)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_entry(child.as_fd(), OsStr::from_bytes(&n))?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
}
