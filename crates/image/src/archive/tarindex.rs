//! A tar read once to learn where each entry's data lies, then read at those offsets: the
//! loaders need manifest.json (which `docker save` writes last) before they know what the
//! layers are, and a positioned read lets them take entries in any order without holding
//! the archive in memory or extracting it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::error::{Error, Result};
use super::layout::{self, Layout};

/// Links followed before giving up (a loop of links in a hostile archive).
const MAX_LINKS: usize = 32;

#[derive(Debug, Clone)]
enum Node {
    File {
        offset: u64,
        size: u64,
    },
    Symlink(String),
    Hardlink(String),
    /// Directories, devices, fifos: never what a manifest can point at.
    Other,
}

pub struct TarLayout {
    name: String,
    file: File,
    entries: HashMap<String, Node>,
}

impl TarLayout {
    /// Indexes the plain (uncompressed) tar `file`. Fails on an entry name that leaves the
    /// archive, on a header that is not a tar header, and on data cut short.
    pub fn index(name: String, file: File) -> Result<TarLayout> {
        let len = file
            .metadata()
            .map_err(|source| Error::Read {
                archive: name.clone(),
                op: "stat",
                source,
            })?
            .len();
        let not_tar = |e: io::Error| Error::NotAnArchive {
            archive: name.clone(),
            reason: format!("not a tar archive (nor gzip/zstd-compressed one): {e}"),
        };
        // The tar is read from the file's position: a spool file is at its end.
        io::Seek::rewind(&mut &file).map_err(|source| Error::Read {
            archive: name.clone(),
            op: "rewind",
            source,
        })?;
        let mut archive = tar::Archive::new(&file);
        let mut entries = HashMap::new();
        let mut count = 0usize;
        for entry in archive.entries_with_seek().map_err(not_tar)? {
            let entry = entry.map_err(not_tar)?;
            count += 1;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let unsafe_entry = |reason: &str| Error::UnsafeEntry {
                archive: name.clone(),
                entry: raw.clone(),
                reason: reason.to_string(),
            };
            let clean = layout::clean(&raw).map_err(unsafe_entry)?;
            if clean.is_empty() {
                continue;
            }
            let link = || {
                entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .ok_or_else(|| unsafe_entry("link without a target"))
            };
            let node = match entry.header().entry_type() {
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    let offset = entry.raw_file_position();
                    let size = entry.size();
                    if offset.checked_add(size).is_none_or(|end| end > len) {
                        return Err(Error::BadEntry {
                            archive: name.clone(),
                            entry: clean,
                            reason: format!(
                                "cut short: {size} bytes announced, {} in the file (truncated archive?)",
                                len.saturating_sub(offset)
                            ),
                        });
                    }
                    Node::File { offset, size }
                }
                tar::EntryType::Symlink => Node::Symlink(link()?),
                tar::EntryType::Link => Node::Hardlink(link()?),
                _ => Node::Other,
            };
            entries.insert(clean, node);
        }
        if count == 0 {
            return Err(Error::NotAnArchive {
                archive: name,
                reason: "empty: not a tar archive".to_string(),
            });
        }
        Ok(TarLayout {
            name,
            file,
            entries,
        })
    }

    /// The data of `entry`, through the links that lead to it.
    fn locate(&self, entry: &str) -> Result<Option<(u64, u64)>> {
        let mut current = entry.to_string();
        for _ in 0..MAX_LINKS {
            let bad = |reason: String| Error::UnsafeEntry {
                archive: self.name.clone(),
                entry: entry.to_string(),
                reason,
            };
            match self.entries.get(&current) {
                None => return Ok(None),
                Some(Node::File { offset, size }) => return Ok(Some((*offset, *size))),
                Some(Node::Other) => return Ok(None),
                Some(Node::Symlink(target)) => {
                    current = layout::resolve_symlink(&current, target).ok_or_else(|| {
                        bad(format!("symbolic link to {target:?} leaves the archive"))
                    })?;
                }
                Some(Node::Hardlink(target)) => {
                    current = layout::clean(target)
                        .map_err(|why| bad(format!("hard link to {target:?}: {why}")))?;
                }
            }
        }
        Err(Error::UnsafeEntry {
            archive: self.name.clone(),
            entry: entry.to_string(),
            reason: format!("more than {MAX_LINKS} links (a loop?)"),
        })
    }
}

impl Layout for TarLayout {
    fn name(&self) -> &str {
        &self.name
    }

    fn has(&self, entry: &str) -> Result<bool> {
        Ok(self.locate(entry)?.is_some())
    }

    fn open(&self, entry: &str) -> Result<(Box<dyn Read + '_>, u64)> {
        let (offset, size) = self.locate(entry)?.ok_or_else(|| Error::BadEntry {
            archive: self.name.clone(),
            entry: entry.to_string(),
            reason: "not in the archive".to_string(),
        })?;
        Ok((
            Box::new(ReadAt {
                file: &self.file,
                pos: offset,
                end: offset + size,
            }),
            size,
        ))
    }
}

/// A window of a file read with pread: several can be open at once without sharing a
/// file position.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}
