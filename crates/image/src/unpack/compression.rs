//! Layer compression, told by the stream's first bytes (a media type may lie or be absent:
//! docker-archive layers have none).

use std::io::{self, BufRead, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const BZIP2: &[u8] = b"BZh";

/// Reads the first bytes (up to the longest magic, or the stream's end), tells the
/// compression, and gives the uncompressed stream (those first bytes included).
pub fn open<'a>(reader: &'a mut dyn BufRead) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 6];
    let mut len = 0;
    while len < head.len() {
        match reader.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = classify(&head[..len])?;
    let whole: Box<dyn BufRead + 'a> =
        Box::new(io::Cursor::new(head[..len].to_vec()).chain(reader));
    Ok((compression, decompress(compression, whole)))
}

pub(crate) fn classify(head: &[u8]) -> io::Result<Compression> {
    if head.starts_with(GZIP) {
        Ok(Compression::Gzip)
    } else if head.starts_with(ZSTD) {
        Ok(Compression::Zstd)
    } else if head.starts_with(XZ) || head.starts_with(BZIP2) {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "xz and bzip2 layers are not supported (only gzip, zstd or plain tar)",
        ))
    } else {
        Ok(Compression::None)
    }
}

/// The uncompressed stream.
fn decompress<'a>(compression: Compression, reader: Box<dyn BufRead + 'a>) -> Box<dyn Read + 'a> {
    match compression {
        Compression::None => Box::new(reader),
        // Multi-member: pigz and some registries' tools write several gzip members.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(reader) {
            Ok(decoder) => Box::new(decoder),
            Err(e) => Box::new(FailingReader(Some(e))),
        },
    }
}

struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("zstd decoder failed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn told_by_magic_bytes() {
        assert_eq!(classify(&[0x1f, 0x8b, 8]).unwrap(), Compression::Gzip);
        assert_eq!(
            classify(&[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(classify(b"etc/\0\0\0").unwrap(), Compression::None);
        assert_eq!(classify(b"").unwrap(), Compression::None);
        assert!(classify(b"\xfd7zXZ\0").is_err());
    }

    #[test]
    fn decompresses_each() {
        let data = b"some tar bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        for stream in [gz, zst, data.clone()] {
            let mut r = io::BufReader::new(&stream[..]);
            let (_, mut plain) = open(&mut r).unwrap();
            let mut out = Vec::new();
            plain.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }
}
