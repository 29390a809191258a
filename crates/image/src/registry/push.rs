//! Pushing a stored image: each blob the registry lacks (HEAD first; a cross-repository
//! mount when the image came from another repository of the same registry; else a
//! monolithic POST + PUT), then the manifest bytes exactly as stored, so the pushed image
//! has the digest it has here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::client::{Client, Options};
use super::error::{Error, Result};
use super::manifest::Manifest;
use crate::digest::Digest;
use crate::progress::{BlobDone, BlobKind, Progress};
use crate::reference::Reference;
use crate::store::{Image, Store};

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub registry: Options,
    pub jobs: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            registry: Options::default(),
            jobs: super::pull::DEFAULT_JOBS,
        }
    }
}

/// Pushes `image` to `dest` (its tag, or its digest when `dest` has only one); returns the
/// manifest digest.
pub fn push(
    store: &Store,
    image: &Image,
    dest: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<Digest> {
    push_inner(store, image, dest, options, progress).map_err(|e| Error::Push {
        reference: dest.to_string(),
        source: Box::new(e),
    })
}

fn push_inner(
    store: &Store,
    image: &Image,
    dest: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<Digest> {
    let bytes = store.read_blob(&image.manifest_digest)?;
    let manifest_digest = image.manifest_digest;
    let (media_type, config, layers) = match Manifest::parse(&bytes, None) {
        Ok(Manifest::Image {
            media_type,
            config,
            layers,
        }) => (media_type, config, layers),
        Ok(Manifest::Index { .. }) => {
            return Err(Error::Manifest {
                what: manifest_digest.to_string(),
                reason: "is an index, not an image manifest".into(),
            });
        }
        Err(reason) => {
            return Err(Error::Manifest {
                what: manifest_digest.to_string(),
                reason,
            });
        }
    };
    if let Some(d) = dest.digest()
        && d != manifest_digest.to_string()
    {
        return Err(Error::DigestMismatch {
            what: "manifest",
            expected: d.to_string(),
            actual: manifest_digest.to_string(),
        });
    }
    let repository = dest.repository();
    let client = Client::new(dest.domain(), Some(repository), &options.registry)?;
    client.ping()?;
    // Blobs this image got from another repository of the same registry can be mounted
    // there instead of uploaded again.
    let mount_from = image
        .names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .find(|r| r.domain() == dest.domain() && r.repository() != repository)
        .map(|r| r.repository().to_string());

    progress.message("Getting image source signatures");
    let mut blobs = Vec::new();
    for layer in &layers {
        blobs.push((BlobKind::Layer, Digest::parse(&layer.digest)?, layer.size));
    }
    blobs.push((
        BlobKind::Config,
        Digest::parse(&config.digest)?,
        config.size,
    ));
    let queue = Mutex::new(blobs.into_iter());
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, layers.len() + 1) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((kind, digest, size)) = next else {
                        return;
                    };
                    progress.blob_start(kind, &digest, Some(size));
                    match push_one(&client, store, repository, &digest, mount_from.as_deref()) {
                        Ok(how) => {
                            progress.blob_bytes(&digest, size);
                            progress.blob_done(&digest, how);
                        }
                        Err(e) => {
                            progress.blob_done(&digest, BlobDone::Failed);
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    progress.message("Writing manifest to image destination");
    let digest_text = manifest_digest.to_string();
    let target = dest.tag().unwrap_or(&digest_text);
    client.put_manifest(repository, target, &media_type, &bytes)?;
    Ok(manifest_digest)
}

fn push_one(
    client: &Client,
    store: &Store,
    repository: &str,
    digest: &Digest,
    mount_from: Option<&str>,
) -> Result<BlobDone> {
    let text = digest.to_string();
    if client.blob_exists(repository, &text)? {
        return Ok(BlobDone::Skipped);
    }
    if !store.has_blob(digest) {
        return Err(Error::Store(crate::error::Error::BlobUnknown(*digest)));
    }
    let mounted = client.push_blob(repository, &text, &store.blob_path(digest), mount_from)?;
    Ok(if mounted {
        BlobDone::Mounted
    } else {
        BlobDone::Copied
    })
}
