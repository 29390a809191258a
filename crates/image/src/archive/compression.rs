//! Which compression a stream uses, told by its first bytes (as docker and podman do: a file
//! name or a media type may lie, the magic number cannot), and the matching decoder.

use std::io::{self, Chain, Cursor, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Formats we recognize but do not decode: named in the error instead of "not a tar".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    Xz,
    Bzip2,
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2: &[u8] = b"BZh";
/// Enough for every magic above.
pub const MAGIC_LEN: usize = 6;

impl Compression {
    pub fn detect(head: &[u8]) -> Result<Compression, Unsupported> {
        if head.starts_with(GZIP) {
            Ok(Compression::Gzip)
        } else if head.starts_with(ZSTD) {
            Ok(Compression::Zstd)
        } else if head.starts_with(XZ) {
            Err(Unsupported::Xz)
        } else if head.starts_with(BZIP2) {
            Err(Unsupported::Bzip2)
        } else {
            Ok(Compression::None)
        }
    }
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unsupported::Xz => "xz-compressed (only gzip and zstd are supported)",
            Unsupported::Bzip2 => "bzip2-compressed (only gzip and zstd are supported)",
        })
    }
}

/// A reader with its first bytes read ahead, put back in front.
pub type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

/// Reads up to [`MAGIC_LEN`] bytes (a pipe may hand them over one by one) and gives them back
/// in front of the rest.
pub fn peek<R: Read>(mut reader: R) -> io::Result<(Vec<u8>, Peeked<R>)> {
    let mut head = vec![0u8; MAGIC_LEN];
    let mut got = 0;
    while got < MAGIC_LEN {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    Ok((head.clone(), Cursor::new(head).chain(reader)))
}

/// A decoded stream and the compression it was decoded from.
pub type Decoded<'a> = (Compression, Box<dyn Read + 'a>);

/// The decoded stream of `reader`, whatever of the supported compressions it uses.
pub fn decoder<'a, R: Read + 'a>(reader: R) -> io::Result<Result<Decoded<'a>, Unsupported>> {
    let (head, reader) = peek(reader)?;
    Ok(match Compression::detect(&head) {
        Ok(Compression::None) => Ok((Compression::None, Box::new(reader))),
        // MultiGzDecoder: `gzip -c a b` and pigz write several members; gzip reads them all.
        Ok(Compression::Gzip) => Ok((
            Compression::Gzip,
            Box::new(flate2::read::MultiGzDecoder::new(reader)),
        )),
        Ok(Compression::Zstd) => Ok((
            Compression::Zstd,
            Box::new(zstd::stream::read::Decoder::new(reader)?),
        )),
        Err(u) => Err(u),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_by_magic() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8, 0]),
            Ok(Compression::Gzip)
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Ok(Compression::Zstd)
        );
        assert_eq!(
            Compression::detect(b"manifest.json\0"),
            Ok(Compression::None)
        );
        assert_eq!(Compression::detect(b""), Ok(Compression::None));
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Err(Unsupported::Xz)
        );
        assert_eq!(Compression::detect(b"BZh91AY"), Err(Unsupported::Bzip2));
    }

    #[test]
    fn decodes_gzip_zstd_and_plain_from_a_trickling_reader() {
        /// Hands out one byte per read, as a slow pipe may.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let text = b"hello archive".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&text[..], 1).unwrap();
        for (input, kind) in [
            (&gz, Compression::Gzip),
            (&zst, Compression::Zstd),
            (&text, Compression::None),
        ] {
            let (got, mut r) = decoder(Trickle(input)).unwrap().unwrap();
            assert_eq!(got, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, text);
        }
    }
}
