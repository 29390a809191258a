//! Paths inside a container's root, resolved by fd: never a joined string.
//!
//! A container's files are the container's to shape: any component may be a symlink to
//! `/`, to `..`, or to a host path (CVE-2018-15664, CVE-2019-14271). Everything here works
//! from an fd of the container's root: a path is resolved with openat2(RESOLVE_IN_ROOT),
//! which makes the kernel treat the root fd as `/` for every symlink and `..` on the way;
//! beyond that, entries are read and made relative to directory fds, one component at a
//! time, with O_NOFOLLOW, so a symlink is only ever read or written as a symlink.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};

use crate::error::{Error, Result};

/// An open root (a container's `/`, or any directory treated as one).
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    /// For messages only.
    pub path: PathBuf,
}

fn io(e: rustix::io::Errno) -> io::Error {
    e.into()
}

/// What a container path names, for messages: `CONTAINER:/path` is built by callers.
fn in_root(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

impl Root {
    /// Opens `path` (a host path the caller trusts: the container's rootfs or
    /// `/proc/<pid>/root`) as a root.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open", path, io(e)))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `path` inside the root; symlinks (and `..`) on the way resolve inside it.
    pub fn open_at(&self, path: &str, flags: OFlags) -> Result<OwnedFd> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        rustix::fs::openat2(
            &self.fd,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| Error::path("open in the container", in_root(path), io(e)))
    }

    /// The parent directory of `path` (resolved inside the root) and the last component;
    /// the last component is not followed. `/` itself has no parent: (root, ".").
    pub fn parent_of(&self, path: &str) -> Result<(OwnedFd, OsString)> {
        let p = Path::new(path);
        let mut parts: Vec<&OsStr> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => parts.push(n),
                // `..` is resolved by the kernel (inside the root) as part of the parent.
                Component::ParentDir => parts.push(OsStr::new("..")),
                _ => {}
            }
        }
        let Some(last) = parts.pop() else {
            return Ok((
                self.open_at("/", OFlags::PATH | OFlags::DIRECTORY)?,
                OsString::from("."),
            ));
        };
        if last == ".." {
            // `a/..` names a directory that must be resolved whole.
            let dir = self.open_at(path, OFlags::PATH | OFlags::DIRECTORY)?;
            return Ok((dir, OsString::from(".")));
        }
        let parent: PathBuf = parts.iter().collect();
        let dir = self.open_at(&parent.to_string_lossy(), OFlags::PATH | OFlags::DIRECTORY)?;
        Ok((dir, last.to_os_string()))
    }
}

/// What kind of file an entry is, with what a copy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(PathBuf),
    Char(u64),
    Block(u64),
    Fifo,
    Socket,
}

/// One entry met by [`walk`].
#[derive(Debug)]
pub struct Entry {
    /// Relative to the walk's start (`""` for the start itself when it is named so).
    pub rel: PathBuf,
    pub kind: Kind,
    pub stat: Stat,
}

fn kind_of(dir: BorrowedFd<'_>, name: &OsStr, stat: &Stat) -> Result<Kind> {
    Ok(match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())
                .map_err(|e| Error::path("read the link", PathBuf::from(name), io(e)))?;
            Kind::Symlink(PathBuf::from(OsStr::from_bytes(target.as_bytes())))
        }
        FileType::CharacterDevice => Kind::Char(stat.st_rdev),
        FileType::BlockDevice => Kind::Block(stat.st_rdev),
        FileType::Fifo => Kind::Fifo,
        _ => Kind::Socket,
    })
}

/// Visits the entry `name` of `dir` (not followed) and, for a directory, everything below
/// it, parents before children, names in byte order. `visit` gets an open file for a
/// regular file.
pub fn walk(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    rel: &Path,
    visit: &mut dyn FnMut(&Entry, Option<File>) -> Result<()>,
) -> Result<()> {
    let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::path("stat", rel, io(e)))?;
    let kind = kind_of(dir, name, &stat)?;
    let entry = Entry {
        rel: rel.to_path_buf(),
        kind,
        stat,
    };
    match entry.kind {
        Kind::File => {
            let fd = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(|e| Error::path("open", rel, io(e)))?;
            visit(&entry, Some(File::from(fd)))
        }
        Kind::Dir => {
            visit(&entry, None)?;
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::path("open", rel, io(e)))?;
            for n in names(&sub, rel)? {
                walk(sub.as_fd(), &n, &rel.join(&n), visit)?;
            }
            Ok(())
        }
        _ => visit(&entry, None),
    }
}

/// How [`Writer`] sets owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// As the source has them (`cp -a`, tar extraction).
    Keep,
    /// Everything owned by this uid:gid (docker's `cp` default: root of the container).
    Set(u32, u32),
}

/// Makes entries below a directory fd, one component at a time with O_NOFOLLOW: a symlink
/// already there is replaced, never followed.
pub struct Writer {
    pub owners: Owners,
    /// Kept owners are a keep-id container's ids: stored as the ids they map to
    /// ([`Owners::Set`] is given already stored).
    pub into: Option<berth_image::snapshot::IdShift>,
    /// Kept owners are stored ids of a keep-id container: written as it sees them.
    pub out_of: Option<berth_image::snapshot::IdShift>,
}

impl Writer {
    pub fn new(owners: Owners) -> Writer {
        Writer {
            owners,
            into: None,
            out_of: None,
        }
    }

    fn owner(&self, meta: &Meta) -> (u32, u32) {
        let (uid, gid) = owner(self.owners, meta);
        if self.owners != Owners::Keep {
            return (uid, gid);
        }
        match (&self.into, &self.out_of) {
            (Some(s), _) => (s.uid(uid).unwrap_or(uid), s.gid(gid).unwrap_or(gid)),
            (_, Some(s)) => (
                s.inside_uid(uid).unwrap_or(uid),
                s.inside_gid(gid).unwrap_or(gid),
            ),
            _ => (uid, gid),
        }
    }
}

/// What [`Writer`] gives a new entry: mode, owner, modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub mtime_nsec: i64,
}

impl From<&Stat> for Meta {
    fn from(st: &Stat) -> Meta {
        Meta {
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
        }
    }
}

fn owner(o: Owners, meta: &Meta) -> (u32, u32) {
    match o {
        Owners::Keep => (meta.uid, meta.gid),
        Owners::Set(u, g) => (u, g),
    }
}

fn chown_at(dir: BorrowedFd<'_>, name: &OsStr, (uid, gid): (u32, u32)) {
    // Failing to chown (a user namespace without the id) leaves the copier's ids, as tar
    // does when not root.
    let _ = rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    );
}

fn set_times(dir: BorrowedFd<'_>, name: &OsStr, meta: &Meta) {
    let t = rustix::event::Timespec {
        tv_sec: meta.mtime as _,
        tv_nsec: meta.mtime_nsec as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    let _ = rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW);
}

impl Writer {
    /// Removes `name` in `dir` unless it is a directory (a directory is kept: entries
    /// below are merged into it, as tar and docker do).
    fn clear(&self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, want_dir: bool) -> Result<bool> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                if !want_dir {
                    return Err(Error::path(
                        "write",
                        rel,
                        io::Error::new(
                            io::ErrorKind::IsADirectory,
                            "cannot overwrite a directory with a non-directory",
                        ),
                    ));
                }
                Ok(true)
            }
            Ok(_) => {
                rustix::fs::unlinkat(dir, name, AtFlags::empty())
                    .map_err(|e| Error::path("replace", rel, io(e)))?;
                Ok(false)
            }
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::path("stat", rel, io(e))),
        }
    }

    /// Makes (or reuses) directory `name` in `dir` and returns its fd.
    pub fn dir(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        stat: Option<&Meta>,
    ) -> Result<OwnedFd> {
        let mode = stat.map(|s| s.mode).unwrap_or(0o755);
        if !self.clear(dir, name, rel, true)? {
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))
                .map_err(|e| Error::path("create", rel, io(e)))?;
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::path("open", rel, io(e)))?;
        if let Some(st) = stat {
            let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode));
            chown_at(dir, name, self.owner(st));
        }
        Ok(fd)
    }

    /// Writes one non-directory entry `name` in `dir` with `data` for a regular file.
    pub fn entry(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        kind: &Kind,
        stat: &Meta,
        data: Option<&mut dyn Read>,
    ) -> Result<()> {
        let mode = stat.mode;
        self.clear(dir, name, rel, false)?;
        match kind {
            Kind::File => {
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| Error::path("create", rel, io(e)))?;
                let mut file = File::from(fd);
                if let Some(data) = data {
                    io::copy(data, &mut file).map_err(|e| Error::path("write", rel, e))?;
                }
                chown_at(dir, name, self.owner(stat));
                // After chown, which clears set-id bits.
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
                    .map_err(|e| Error::path("chmod", rel, io(e)))?;
            }
            Kind::Dir => {
                self.dir(dir, name, rel, Some(stat))?;
            }
            Kind::Symlink(target) => {
                rustix::fs::symlinkat(target.as_os_str(), dir, name)
                    .map_err(|e| Error::path("create the link", rel, io(e)))?;
                chown_at(dir, name, self.owner(stat));
            }
            Kind::Char(dev) | Kind::Block(dev) => {
                let ft = if matches!(kind, Kind::Char(_)) {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                rustix::fs::mknodat(dir, name, ft, Mode::from_raw_mode(mode), *dev)
                    .map_err(|e| Error::path("create the device", rel, io(e)))?;
                chown_at(dir, name, self.owner(stat));
            }
            Kind::Fifo => {
                rustix::fs::mknodat(dir, name, FileType::Fifo, Mode::from_raw_mode(mode), 0)
                    .map_err(|e| Error::path("create the fifo", rel, io(e)))?;
                chown_at(dir, name, self.owner(stat));
            }
            // A socket cannot be copied (docker and tar skip them too).
            Kind::Socket => return Ok(()),
        }
        set_times(dir, name, stat);
        Ok(())
    }

    /// Sets a directory's time once its entries are written (writing them changed it).
    pub fn finish_dir(&self, dir: BorrowedFd<'_>, name: &OsStr, stat: &Meta) {
        set_times(dir, name, stat);
    }
}

/// Copies the tree at `name` in `src_dir` to `dst_name` in `dst_dir`, by fds on both
/// sides (no path is ever joined and followed). Returns the bytes of file data copied.
pub fn copy_tree(
    src_dir: BorrowedFd<'_>,
    name: &OsStr,
    rel: &Path,
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
    writer: &Writer,
) -> Result<u64> {
    let stat = rustix::fs::statat(src_dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::path("stat", rel, io(e)))?;
    let kind = kind_of(src_dir, name, &stat)?;
    let meta = Meta::from(&stat);
    match kind {
        Kind::Dir => {
            let dst = writer.dir(dst_dir, dst_name, rel, Some(&meta))?;
            let src = rustix::fs::openat(
                src_dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::path("open", rel, io(e)))?;
            let mut bytes = 0;
            for child in names(&src, rel)? {
                bytes += copy_tree(
                    src.as_fd(),
                    &child,
                    &rel.join(&child),
                    dst.as_fd(),
                    &child,
                    writer,
                )?;
            }
            writer.finish_dir(dst_dir, dst_name, &meta);
            Ok(bytes)
        }
        Kind::File => {
            let fd = rustix::fs::openat(
                src_dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(|e| Error::path("open", rel, io(e)))?;
            let mut file = File::from(fd);
            writer.entry(dst_dir, dst_name, rel, &kind, &meta, Some(&mut file))?;
            Ok(stat.st_size as u64)
        }
        other => {
            writer.entry(dst_dir, dst_name, rel, &other, &meta, None)?;
            Ok(0)
        }
    }
}

/// The names in a directory fd (without `.` and `..`), in byte order.
pub fn names(dir: &OwnedFd, rel: &Path) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for item in rustix::fs::Dir::read_from(dir).map_err(|e| Error::path("read", rel, io(e)))? {
        let item = item.map_err(|e| Error::path("read", rel, io(e)))?;
        let n = item.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    out.sort();
    Ok(out)
}
