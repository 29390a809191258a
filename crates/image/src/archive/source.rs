//! Where an archive comes from, and how it becomes a [`Layout`] the loaders can read in any
//! order: a plain tar file is indexed in place; a compressed file or any stream (stdin
//! cannot seek) is decompressed once into an unnamed file in the store's `tmp/` (O_TMPFILE:
//! it disappears with the process, even on kill -9) and indexed there.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::compression::{self, Compression, MAGIC_LEN};
use super::docker::MANIFEST_JSON;
use super::error::{Error, Result};
use super::layout::{DirLayout, Layout};
use super::oci::OCI_LAYOUT;
use super::tarindex::TarLayout;

/// An archive to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A docker-archive or oci-archive file (plain, gzip or zstd), or a directory holding an
    /// OCI layout or an extracted docker-archive.
    Path(PathBuf),
    /// The same, streamed on standard input.
    Stdin,
    /// An OCI image layout directory, optionally only the image tagged `tag`
    /// (`org.opencontainers.image.ref.name`).
    OciDir { dir: PathBuf, tag: Option<String> },
}

impl Source {
    /// Reads what `load -i` and `import` accept: `-` (stdin), `oci:DIR[:TAG]`,
    /// `oci-archive:FILE`, `docker-archive:FILE` (skopeo's transport names), or a path. A
    /// path that exists wins over a transport prefix (a file may be named `oci:x`).
    pub fn parse(input: &str) -> Source {
        if input == "-" {
            return Source::Stdin;
        }
        if Path::new(input).exists() {
            return Source::Path(PathBuf::from(input));
        }
        if let Some(rest) = input.strip_prefix("oci:") {
            // As containers/image splits it: the first ':' ends the directory.
            return match rest.split_once(':') {
                Some((dir, tag)) if !tag.is_empty() => Source::OciDir {
                    dir: PathBuf::from(dir),
                    tag: Some(tag.to_string()),
                },
                Some((dir, _)) => Source::OciDir {
                    dir: PathBuf::from(dir),
                    tag: None,
                },
                None => Source::OciDir {
                    dir: PathBuf::from(rest),
                    tag: None,
                },
            };
        }
        for prefix in ["oci-archive:", "docker-archive:"] {
            if let Some(rest) = input.strip_prefix(prefix) {
                return Source::Path(PathBuf::from(rest));
            }
        }
        Source::Path(PathBuf::from(input))
    }

    /// How errors name it.
    pub fn describe(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Stdin => "stdin".to_string(),
            Source::OciDir { dir, tag: Some(t) } => format!("oci:{}:{t}", dir.display()),
            Source::OciDir { dir, tag: None } => format!("oci:{}", dir.display()),
        }
    }

    /// The tag an `oci:DIR:TAG` source selects.
    pub fn tag(&self) -> Option<&str> {
        match self {
            Source::OciDir { tag, .. } => tag.as_deref(),
            _ => None,
        }
    }
}

/// Opens `source` for reading; `tmp` is where a stream is spooled.
pub fn open(source: &Source, tmp: &Path) -> Result<Box<dyn Layout>> {
    let name = source.describe();
    match source {
        Source::Stdin => {
            let stdin = io::stdin();
            Ok(Box::new(spool_stream(name, stdin.lock(), tmp)?))
        }
        Source::OciDir { dir, .. } => {
            if !dir.join(OCI_LAYOUT).is_file() {
                return Err(Error::NotAnArchive {
                    archive: name,
                    reason: format!("no {OCI_LAYOUT} file: not an OCI image layout"),
                });
            }
            Ok(Box::new(DirLayout::new(dir, name)))
        }
        Source::Path(path) => {
            let meta = std::fs::metadata(path).map_err(Error::path("open", path))?;
            if meta.is_dir() {
                if path.join(OCI_LAYOUT).is_file() || path.join(MANIFEST_JSON).is_file() {
                    return Ok(Box::new(DirLayout::new(path, name)));
                }
                return Err(Error::NotAnArchive {
                    archive: name,
                    reason: format!("a directory without {OCI_LAYOUT} or {MANIFEST_JSON}"),
                });
            }
            let file = File::open(path).map_err(Error::path("open", path))?;
            let mut head = [0u8; MAGIC_LEN];
            let n = file
                .read_at(&mut head, 0)
                .map_err(Error::path("read", path))?;
            match Compression::detect(&head[..n]) {
                Ok(Compression::None) => Ok(Box::new(TarLayout::index(name, file)?)),
                Ok(_) => Ok(Box::new(spool_stream(name, file, tmp)?)),
                Err(unsupported) => Err(Error::NotAnArchive {
                    archive: name,
                    reason: unsupported.to_string(),
                }),
            }
        }
    }
}

/// Decompresses `reader` into an unnamed file under `tmp` and indexes it.
fn spool_stream(name: String, reader: impl Read, tmp: &Path) -> Result<TarLayout> {
    let read_err = |op: &'static str| {
        let name = name.clone();
        move |source| Error::Read {
            archive: name,
            op,
            source,
        }
    };
    let (_, mut decoded) = compression::decoder(reader)
        .map_err(read_err("reading"))?
        .map_err(|u| Error::NotAnArchive {
            archive: name.clone(),
            reason: u.to_string(),
        })?;
    let mut spool =
        tempfile::tempfile_in(tmp).map_err(Error::path("create a spool file in", tmp))?;
    copy(&mut decoded, &mut spool).map_err(|e| match e {
        Copy::Read(source) => Error::Read {
            archive: name.clone(),
            op: "reading (truncated or corrupt?)",
            source,
        },
        Copy::Write(source) => Error::Path {
            op: "write a spool file in",
            path: tmp.to_path_buf(),
            source,
        },
    })?;
    TarLayout::index(name, spool)
}

enum Copy {
    Read(io::Error),
    Write(io::Error),
}

/// io::copy that tells a failed read (the archive's fault) from a failed write (ours: a full
/// disk).
fn copy(reader: &mut dyn Read, writer: &mut File) -> std::result::Result<u64, Copy> {
    use std::io::Write;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(Copy::Write)?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(Source::parse("-"), Source::Stdin);
        assert_eq!(
            Source::parse("oci:/nonexistent/dir:v1"),
            Source::OciDir {
                dir: "/nonexistent/dir".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Source::parse("oci:/nonexistent/dir"),
            Source::OciDir {
                dir: "/nonexistent/dir".into(),
                tag: None
            }
        );
        assert_eq!(
            Source::parse("oci-archive:/x.tar"),
            Source::Path("/x.tar".into())
        );
        assert_eq!(Source::parse("/x.tar"), Source::Path("/x.tar".into()));
    }
}
