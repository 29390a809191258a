//! Layers: one pass over a layer blob as it streams in stores the blob, verifies its
//! digest, computes the diff id (the digest of the uncompressed tar) and unpacks it.
//!
//! Layers are keyed by diff id: what a diff unpacks to does not depend on the layers below
//! it when each is an overlay lower dir, so one unpacked copy serves every image (and every
//! compression of the same diff).

use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Store;
use super::blobs::{Staged, check};
use super::fsutil;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::unpack::{self, Compression};

/// A stored layer: its blob as distributed and the diff it unpacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The digest of the blob as stored (compressed or not): what manifests name.
    pub blob: Digest,
    /// The digest of the uncompressed tar: what image configs name.
    pub diff_id: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The uncompressed tar's size in bytes (what `berth images` adds up).
    #[serde(default)]
    pub diff_size: u64,
    /// How the blob is compressed (what a manifest's media type must say).
    #[serde(default)]
    pub compression: Compression,
}

impl Store {
    /// Stores a layer blob that must hash to `blob_digest`, unpacking it on the way (see the
    /// module doc). `on_bytes` is called with the total of (compressed) bytes read so far.
    /// When the layer is already stored the stream is only drained and verified.
    pub fn put_layer(
        &self,
        blob_digest: &Digest,
        reader: &mut dyn Read,
        on_bytes: &dyn Fn(u64),
    ) -> Result<LayerInfo> {
        self.store_layer(Some(blob_digest), reader, on_bytes)
    }

    /// Stores a layer whose digest is not known in advance (an import, an archive that
    /// names layers by path): computed, not verified.
    pub fn put_layer_stream(
        &self,
        reader: &mut dyn Read,
        on_bytes: &dyn Fn(u64),
    ) -> Result<LayerInfo> {
        self.store_layer(None, reader, on_bytes)
    }

    /// The layer a blob unpacks to, when it is stored.
    pub fn layer_by_blob(&self, blob: &Digest) -> Result<Option<LayerInfo>> {
        let path = self.layer_record_path(blob);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Path {
                    op: "read",
                    path,
                    source: e,
                });
            }
        };
        let info: LayerInfo =
            serde_json::from_slice(&bytes).map_err(Error::json(path.display().to_string()))?;
        let complete = self.layer_dir(&info.diff_id).is_dir() && self.has_blob(&info.blob);
        Ok(complete.then_some(info))
    }

    /// The unpacked content of the layer `diff_id` (an overlay lower dir).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex()).join("diff")
    }

    fn layer_record_path(&self, blob: &Digest) -> PathBuf {
        self.root
            .join("layers/by-blob")
            .join(format!("{}.json", blob.hex()))
    }

    fn store_layer(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
        on_bytes: &dyn Fn(u64),
    ) -> Result<LayerInfo> {
        let what = match expected {
            Some(d) => format!("layer {d}"),
            None => "layer".to_string(),
        };
        if let Some(expected) = expected
            && let Some(info) = self.layer_by_blob(expected)?
        {
            let mut tee = Tee::new(reader, io::sink(), on_bytes);
            io::copy(&mut tee, &mut io::sink()).map_err(|source| Error::Read { what, source })?;
            check(expected, &tee.hasher.finish())?;
            return Ok(info);
        }

        let (blob_staging, blob_file) = self.tmp_file("layer-blob")?;
        let staged_blob = Staged(&blob_staging);
        let layer_staging = self.tmp_path("layer");
        let staged_layer = Staged(&layer_staging);
        let diff_dir = layer_staging.join("diff");
        std::fs::create_dir_all(&diff_dir).map_err(Error::path("create", &diff_dir))?;

        let mut tee = Tee::new(reader, blob_file, on_bytes);
        let (diff_id, diff_size, compression) = {
            let mut buffered = BufReader::with_capacity(256 * 1024, &mut tee);
            let read_err = |source| Error::Read {
                what: what.clone(),
                source,
            };
            let (compression, diff_id, diff_size) = {
                let (compression, plain) = unpack::open(&mut buffered).map_err(read_err)?;
                // A plain tar is its own diff: its digest is the blob's, which the tee
                // computes anyway; hashing it twice would cost a third of the unpack.
                let mut tar = DiffReader {
                    inner: plain,
                    hasher: (compression != Compression::None).then(Hasher::new),
                    len: 0,
                };
                unpack::unpack(&mut tar, &diff_dir, &what)?;
                io::copy(&mut tar, &mut io::sink()).map_err(read_err)?;
                (compression, tar.hasher.map(Hasher::finish), tar.len)
            };
            // What follows the compressed stream's end (padding) is part of the blob too.
            io::copy(&mut buffered, &mut io::sink()).map_err(read_err)?;
            (diff_id, diff_size, compression)
        };
        let (size, blob) = (tee.hasher.len(), tee.hasher.clone().finish());
        let diff_id = diff_id.unwrap_or(blob);
        if let Some(expected) = expected {
            check(expected, &blob)?;
        }
        tee.out
            .flush()
            .map_err(Error::path("write", &blob_staging))?;

        let final_dir = self.root.join("layers").join(diff_id.hex());
        match std::fs::rename(&layer_staging, &final_dir) {
            Ok(()) => std::mem::forget(staged_layer),
            // Another store of the same diff won the race: its copy is as good as ours.
            Err(e) if final_dir.join("diff").is_dir() => {
                log::debug!("layer {diff_id} already unpacked ({e})");
            }
            Err(e) => {
                return Err(Error::Path {
                    op: "rename into",
                    path: final_dir,
                    source: e,
                });
            }
        }
        self.commit_blob(staged_blob, &blob)?;
        let info = LayerInfo {
            blob,
            diff_id,
            size,
            diff_size,
            compression,
        };
        let record = serde_json::to_vec(&info).map_err(Error::json("layer record"))?;
        fsutil::write_atomic(&self.tmp_dir(), &self.layer_record_path(&blob), &record)?;
        Ok(info)
    }
}

/// The uncompressed tar as the unpack reads it: counted, and hashed unless it is the blob.
struct DiffReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    len: u64,
}

impl<R: Read> Read for DiffReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }
}

/// Copies what is read into `out` and hashes it: the blob is stored and verified from the
/// same bytes that are unpacked.
struct Tee<'a, W> {
    inner: &'a mut dyn Read,
    out: W,
    hasher: Hasher,
    on_bytes: &'a dyn Fn(u64),
}

impl<'a, W: Write> Tee<'a, W> {
    fn new(inner: &'a mut dyn Read, out: W, on_bytes: &'a dyn Fn(u64)) -> Tee<'a, W> {
        Tee {
            inner,
            out,
            hasher: Hasher::new(),
            on_bytes,
        }
    }
}

impl<W: Write> Read for Tee<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.out.write_all(&buf[..n])?;
            self.hasher.update(&buf[..n]);
            (self.on_bytes)(self.hasher.len());
        }
        Ok(n)
    }
}
