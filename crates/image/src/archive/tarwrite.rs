//! Writing tars with deterministic headers (ustar, mtime 0, root-owned, fixed modes), so the
//! same images always save to the same bytes, as `docker save` and podman do.

use std::collections::HashSet;
use std::io::{self, Read, Write};

pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    written: HashSet<String>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        TarWriter {
            builder,
            written: HashSet::new(),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.written.contains(name)
    }

    fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    pub fn dir(&mut self, name: &str) -> io::Result<()> {
        if self.written.insert(name.to_string()) {
            let mut header = Self::header(tar::EntryType::Directory, 0, 0o755);
            self.builder
                .append_data(&mut header, format!("{name}/"), io::empty())?;
        }
        Ok(())
    }

    /// A regular file of exactly `size` bytes: a reader giving fewer or more is an error
    /// (the tar would be corrupt).
    pub fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        self.written.insert(name.to_string());
        let mut header = Self::header(tar::EntryType::Regular, size, 0o644);
        let mut exact = Exact {
            inner: data,
            left: size,
        };
        self.builder.append_data(&mut header, name, &mut exact)?;
        if exact.left != 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: {} bytes missing", exact.left),
            ));
        }
        let mut extra = [0u8; 1];
        if exact.inner.read(&mut extra)? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name}: longer than {size} bytes"),
            ));
        }
        Ok(())
    }

    pub fn bytes(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.file(name, bytes.len() as u64, &mut &bytes[..])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.written.insert(name.to_string());
        let mut header = Self::header(tar::EntryType::Symlink, 0, 0o777);
        self.builder.append_link(&mut header, name, target)
    }

    /// Writes the end-of-archive blocks and hands back the output.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// At most `left` bytes of `inner`.
struct Exact<'a> {
    inner: &'a mut dyn Read,
    left: u64,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write() -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        w.dir("blobs").unwrap();
        w.bytes("blobs/a", b"hello").unwrap();
        w.symlink("b/layer.tar", "../blobs/a").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn writes_the_same_bytes_every_time() {
        let tar = write();
        assert_eq!(tar, write());
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.header().mtime().unwrap(), 0);
                assert_eq!(e.header().uid().unwrap(), 0);
                e.path().unwrap().display().to_string()
            })
            .collect();
        assert_eq!(names, ["blobs/", "blobs/a", "b/layer.tar"]);
    }

    #[test]
    fn refuses_short_and_long_data() {
        let mut w = TarWriter::new(Vec::new());
        assert!(w.file("x", 10, &mut &b"abc"[..]).is_err());
        let mut w = TarWriter::new(Vec::new());
        assert!(w.file("x", 2, &mut &b"abc"[..]).is_err());
    }
}
