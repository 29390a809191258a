//! `cp`: files between a container and the host, both ways, as `docker cp` copies them.
//!
//! Every container path is resolved inside the container's root by fd (openat2
//! RESOLVE_IN_ROOT, see [`crate::safepath`]) and everything below is read or written by
//! directory fd with O_NOFOLLOW: a symlink in the container, to `/` or to a host path,
//! resolves inside the container or is copied as a symlink, and nothing is written outside
//! it (CVE-2018-15664, CVE-2019-14271). A running container is seen as its processes see
//! it (`/proc/<init>/root`, volumes included); a stopped one through its root filesystem,
//! mounted for the copy.
//!
//! docker's rules: a source ending in `/.` copies a directory's contents; a destination
//! that is an existing directory receives the source under its own name; otherwise the
//! destination is created (its parent must exist). `-` as the destination writes a tar
//! stream of the source, `-` as the source reads a tar stream into a directory.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::Engine;
use crate::error::{Error, Result};
use crate::export::{TarWriter, open_fs};
use crate::safepath::{self, Kind, Meta, Owners, Writer};

/// One side of `cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Container {
        container: String,
        path: String,
    },
    Host(PathBuf),
    /// `-`: a tar stream on stdin or stdout.
    Stream,
}

impl Endpoint {
    /// docker's reading: `NAME:PATH` is in a container unless the part before the colon
    /// has a `/` (write `./a:b` for a host file named `a:b`).
    pub fn parse(arg: &str) -> Endpoint {
        if arg == "-" {
            return Endpoint::Stream;
        }
        match arg.split_once(':') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => Endpoint::Container {
                container: name.to_string(),
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.to_string()
                },
            },
            _ => Endpoint::Host(PathBuf::from(arg)),
        }
    }
}

/// How to copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-a`: keep the source's owners (else: root in the container, the caller on the host).
    pub archive: bool,
    /// `-L`: a source that is a symlink is copied as what it points to (inside the
    /// container).
    pub follow: bool,
}

fn io(e: rustix::io::Errno) -> std::io::Error {
    e.into()
}

fn not_found(side: &str, path: &str) -> Error {
    Error::path(
        "copy",
        format!("{side}:{path}"),
        std::io::Error::from(std::io::ErrorKind::NotFound),
    )
}

/// `SRC/.`: the directory's contents rather than the directory.
fn wants_contents(path: &str) -> bool {
    path.ends_with("/.") || path == "."
}

/// Where a copy lands: the directory fd and the name to create in it, or, for contents,
/// the directory to fill.
enum Target {
    Named(OwnedFd, OsString),
}

/// Works out the destination from its directory-or-not state (docker's table).
fn target_for(
    dest_is_dir: Option<OwnedFd>,
    parent: impl FnOnce() -> Result<(OwnedFd, OsString)>,
    src_name: &OsStr,
    src_is_dir: bool,
    contents: bool,
    dest_text: &str,
) -> Result<Target> {
    match dest_is_dir {
        Some(dir) if !contents => Ok(Target::Named(dir, src_name.to_os_string())),
        Some(dir) => {
            // Contents into an existing directory: the directory itself is the target.
            Ok(Target::Named(dir, OsString::from(".")))
        }
        None => {
            if !src_is_dir && dest_text.ends_with('/') {
                return Err(Error::path(
                    "copy to",
                    dest_text,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the destination directory does not exist",
                    ),
                ));
            }
            let (dir, name) = parent()?;
            Ok(Target::Named(dir, name))
        }
    }
}

/// Copies `src`'s tree (by fds) to the target, contents or whole.
fn copy_to(
    src_dir: &OwnedFd,
    src_name: &OsStr,
    contents: bool,
    target: Target,
    writer: &Writer,
) -> Result<u64> {
    let Target::Named(dir, name) = target;
    if !contents {
        return safepath::copy_tree(
            src_dir.as_fd(),
            src_name,
            Path::new(src_name),
            dir.as_fd(),
            &name,
            writer,
        );
    }
    // Contents: make the destination directory (if new), then copy each child into it.
    let into = writer.dir(dir.as_fd(), &name, Path::new(&name), None)?;
    let src = rustix::fs::openat(
        src_dir,
        src_name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::path("open", PathBuf::from(src_name), io(e)))?;
    let mut bytes = 0;
    for child in safepath::names(&src, Path::new(src_name))? {
        bytes += safepath::copy_tree(
            src.as_fd(),
            &child,
            Path::new(&child),
            into.as_fd(),
            &child,
            writer,
        )?;
    }
    Ok(bytes)
}

fn is_dir_at(dir: &OwnedFd, name: &OsStr) -> Option<bool> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
}

fn host_parent(path: &Path) -> Result<(OwnedFd, OsString)> {
    let name = path
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| OsString::from("."));
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ if path.is_absolute() => Path::new("/"),
        _ => Path::new("."),
    };
    let fd = rustix::fs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::path("open", parent, io(e)))?;
    Ok((fd, name))
}

/// The path a chain of symlinks at the end of `path` leads to, each link read by fd and
/// each step resolved inside the root again (the text is only ever handed to openat2
/// RESOLVE_IN_ROOT, so `..` and absolute targets stay inside).
fn follow_links(root: &crate::safepath::Root, path: &str) -> Result<String> {
    let mut current = path.to_string();
    for _ in 0..40 {
        let (dir, name) = root.parent_of(&current)?;
        let Ok(target) = rustix::fs::readlinkat(&dir, &name, Vec::new()) else {
            return Ok(current);
        };
        let target = target.to_string_lossy().into_owned();
        current = if target.starts_with('/') {
            target
        } else {
            let parent = Path::new(&current).parent().unwrap_or(Path::new("/"));
            parent.join(target).to_string_lossy().into_owned()
        };
    }
    Err(Error::path(
        "follow",
        path,
        std::io::Error::from_raw_os_error(libc::ELOOP),
    ))
}

/// `cp CONTAINER:SRC HOST_DST`. Returns the bytes of file data copied.
pub fn copy_out(
    engine: &Engine,
    container: &str,
    src: &str,
    dst: &Path,
    options: Options,
) -> Result<u64> {
    let id = engine.records.resolve(container)?;
    let fs = open_fs(engine, &id, true)?;
    let followed;
    let src = if options.follow {
        followed = follow_links(&fs.root, src)?;
        followed.as_str()
    } else {
        src
    };
    let (src_dir, src_name) = fs.root.parent_of(src)?;
    let src_is_dir = is_dir_at(&src_dir, &src_name).ok_or_else(|| not_found(container, src))?;
    let contents = wants_contents(src) && src_is_dir;
    let dest_dir = if dst.is_dir() {
        Some(
            rustix::fs::open(
                dst,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::path("open", dst, io(e)))?,
        )
    } else {
        if src_is_dir && dst.exists() {
            return Err(Error::path(
                "copy to",
                dst,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "cannot copy a directory to a file",
                ),
            ));
        }
        None
    };
    let target = target_for(
        dest_dir,
        || host_parent(dst),
        &src_name,
        src_is_dir,
        contents,
        &dst.to_string_lossy(),
    )?;
    let owners = if options.archive {
        Owners::Keep
    } else {
        Owners::Set(
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
    };
    let writer = Writer {
        out_of: crate::userns::shift_of(&fs.record)?,
        ..Writer::new(owners)
    };
    copy_to(&src_dir, &src_name, contents, target, &writer)
}

/// `cp CONTAINER:SRC -`: a tar stream of the source (named by its last component).
pub fn copy_out_tar(
    engine: &Engine,
    container: &str,
    src: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let id = engine.records.resolve(container)?;
    let fs = open_fs(engine, &id, true)?;
    let (src_dir, src_name) = fs.root.parent_of(src)?;
    if is_dir_at(&src_dir, &src_name).is_none() {
        return Err(not_found(container, src));
    }
    let mut tar = TarWriter::new(out).seen_through(crate::userns::shift_of(&fs.record)?);
    let prefix = if src_name == "." {
        PathBuf::new()
    } else {
        PathBuf::from(&src_name)
    };
    tar.add_tree(
        src_dir.as_fd(),
        &src_name,
        &prefix,
        prefix.as_os_str().is_empty(),
    )?;
    tar.finish()
        .map_err(|e| Error::path("write", "the archive", e))?;
    Ok(())
}

/// `cp HOST_SRC CONTAINER:DST`. Returns the bytes of file data copied.
pub fn copy_in(
    engine: &Engine,
    src: &Path,
    container: &str,
    dst: &str,
    options: Options,
) -> Result<u64> {
    let id = engine.records.resolve(container)?;
    let src_text = src.to_string_lossy();
    let (src_dir, src_name) = host_parent(src)?;
    let src_is_dir = is_dir_at(&src_dir, &src_name).ok_or_else(|| {
        Error::path(
            "copy",
            src,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })?;
    let contents = wants_contents(&src_text) && src_is_dir;
    let fs = open_fs(engine, &id, true)?;
    let dest_dir = fs.root.open_at(dst, OFlags::PATH | OFlags::DIRECTORY).ok();
    if dest_dir.is_none() && src_is_dir {
        // An existing non-directory cannot take a directory.
        if let Ok((parent, name)) = fs.root.parent_of(dst)
            && is_dir_at(&parent, &name) == Some(false)
        {
            return Err(Error::path(
                "copy to",
                format!("{container}:{dst}"),
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "cannot copy a directory to a file",
                ),
            ));
        }
    }
    let target = target_for(
        dest_dir,
        || {
            fs.root.parent_of(dst).map_err(|_| {
                Error::path(
                    "copy to",
                    format!("{container}:{dst}"),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the destination's parent directory does not exist",
                    ),
                )
            })
        },
        &src_name,
        src_is_dir,
        contents,
        dst,
    )?;
    let owners = if options.archive {
        Owners::Keep
    } else {
        // the container's root: in a keep-id container stored as the id its 0 maps to
        let shift = crate::userns::shift_of(&fs.record)?;
        let root_of = |map: fn(&berth_image::snapshot::IdShift, u32) -> Option<u32>| {
            shift.as_ref().and_then(|s| map(s, 0)).unwrap_or(0)
        };
        Owners::Set(
            root_of(berth_image::snapshot::IdShift::uid),
            root_of(berth_image::snapshot::IdShift::gid),
        )
    };
    let writer = Writer {
        into: crate::userns::shift_of(&fs.record)?,
        ..Writer::new(owners)
    };
    copy_to(&src_dir, &src_name, contents, target, &writer)
}

/// `cp - CONTAINER:DIR`: extracts a tar stream into a directory of the container. Each
/// entry's path is walked one component at a time from that directory (`..` and absolute
/// paths refused), so no entry lands outside it.
pub fn copy_in_tar(
    engine: &Engine,
    input: &mut dyn Read,
    container: &str,
    dst: &str,
) -> Result<u64> {
    let id = engine.records.resolve(container)?;
    let fs = open_fs(engine, &id, true)?;
    let base = fs
        .root
        .open_at(dst, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|_| {
            Error::path(
                "extract to",
                format!("{container}:{dst}"),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a directory in the container",
                ),
            )
        })?;
    let writer = Writer {
        into: crate::userns::shift_of(&fs.record)?,
        ..Writer::new(Owners::Keep)
    };
    let mut archive = tar::Archive::new(input);
    let mut bytes = 0;
    let entries = archive
        .entries()
        .map_err(|e| Error::path("read", "the archive", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::path("read", "the archive", e))?;
        let path = entry
            .path()
            .map_err(|e| Error::path("read", "the archive", e))?
            .into_owned();
        let mut parts: Vec<OsString> = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => parts.push(n.to_os_string()),
                Component::CurDir => {}
                _ => {
                    return Err(Error::path(
                        "extract",
                        &path,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "an entry leaves its directory",
                        ),
                    ));
                }
            }
        }
        let Some(name) = parts.pop() else { continue };
        let mut dir = rustix::io::dup(&base).map_err(|e| Error::path("dup", dst, io(e)))?;
        for p in &parts {
            dir = writer.dir(dir.as_fd(), p, &path, None)?;
        }
        let h = entry.header();
        let meta = Meta {
            mode: h.mode().unwrap_or(0o644) & 0o7777,
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: h.mtime().unwrap_or(0) as i64,
            mtime_nsec: 0,
        };
        let dev = || {
            rustix::fs::makedev(
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            )
        };
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => {
                writer.dir(dir.as_fd(), &name, &path, Some(&meta))?;
                continue;
            }
            tar::EntryType::Symlink => Kind::Symlink(
                entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            ),
            tar::EntryType::Char => Kind::Char(dev()),
            tar::EntryType::Block => Kind::Block(dev()),
            tar::EntryType::Fifo => Kind::Fifo,
            // Hard links and others: skipped (docker's cp does not make hard links either).
            _ => continue,
        };
        bytes += h.size().unwrap_or(0);
        writer.entry(dir.as_fd(), &name, &path, &kind, &meta, Some(&mut entry))?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_like_docker() {
        assert_eq!(
            Endpoint::parse("web:/etc/hosts"),
            Endpoint::Container {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(Endpoint::parse("./a:b"), Endpoint::Host("./a:b".into()));
        assert_eq!(Endpoint::parse("/tmp/x"), Endpoint::Host("/tmp/x".into()));
        assert_eq!(Endpoint::parse("-"), Endpoint::Stream);
        assert_eq!(
            Endpoint::parse("c:"),
            Endpoint::Container {
                container: "c".into(),
                path: "/".into()
            }
        );
        assert!(wants_contents("/etc/."));
    }
}
