//! Pulling an image: reference → manifest (an index resolved to the platform's manifest),
//! every digest verified → layers fetched in parallel and unpacked while they stream →
//! config → the image recorded under its name in one atomic step. A failure at any point
//! records nothing (what was stored is unreferenced garbage for the store's collector).

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::client::{Client, Options};
use super::error::{Error, Result};
use super::manifest::{self, Descriptor, Manifest};
use super::platform::Platform;
use super::transport::is_transient_io;
use crate::digest::Digest;
use crate::progress::{BlobDone, BlobKind, Progress};
use crate::reference::Reference;
use crate::store::{Image, LayerInfo, Store};

/// Layers fetched at once (podman's default is 6; unpacking is CPU-bound and this machine
/// class has few cores).
pub const DEFAULT_JOBS: usize = 4;
/// Tries of one blob when its stream breaks midway (the request itself has its own retries).
const LAYER_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub registry: Options,
    /// `--platform`; the host's when None.
    pub platform: Option<Platform>,
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            registry: Options::default(),
            platform: None,
            jobs: DEFAULT_JOBS,
        }
    }
}

/// Pulls `reference` into `store` and names the image after it (a reference by digest
/// alone gives no name, as with docker).
pub fn pull(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    pull_inner(store, reference, options, progress).map_err(|e| Error::Pull {
        reference: reference.to_string(),
        source: Box::new(e),
    })
}

fn pull_inner(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    progress.message(&format!("Trying to pull {reference}..."));
    let repository = reference.repository();
    let client = Client::new(reference.domain(), Some(repository), &options.registry)?;
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let (bytes, config, layers) = resolve(&client, reference, &wanted)?;

    progress.message("Getting image source signatures");
    let config_digest = parse_digest(&config.digest)?;
    let layer_digests = layers
        .iter()
        .map(|l| parse_digest(&l.digest))
        .collect::<Result<Vec<_>>>()?;
    fetch_layers(
        &client,
        store,
        repository,
        &layers,
        &layer_digests,
        options.jobs.max(1),
        progress,
    )?;
    fetch_config(
        &client,
        store,
        repository,
        &config,
        &config_digest,
        progress,
    )?;

    progress.message("Writing manifest to image destination");
    let names: Vec<Reference> = if reference.tag().is_some() {
        vec![reference.without_digest()]
    } else {
        Vec::new()
    };
    Ok(store.add_image(&bytes, &names)?)
}

/// The image manifest's bytes (verified against the reference's digest when it has one),
/// its config and its layers; an index is resolved to `wanted`'s entry.
fn resolve(
    client: &Client,
    reference: &Reference,
    wanted: &Platform,
) -> Result<(Vec<u8>, Descriptor, Vec<Descriptor>)> {
    let repository = reference.repository();
    let name = reference.name();
    let tag_or_digest = reference.manifest_reference();
    let (bytes, parsed) =
        fetch_manifest(client, repository, &name, tag_or_digest, reference.digest())?;
    match parsed {
        Manifest::Image { config, layers, .. } => Ok((bytes, config, layers)),
        Manifest::Index { manifests, .. } => {
            let entry =
                manifest::select(&manifests, wanted).map_err(|available| Error::NoPlatform {
                    reference: reference.to_string(),
                    wanted: wanted.to_string(),
                    available,
                })?;
            let digest = entry.digest.clone();
            let (bytes, parsed) =
                fetch_manifest(client, repository, &name, &digest, Some(&digest))?;
            match parsed {
                Manifest::Image { config, layers, .. } => Ok((bytes, config, layers)),
                Manifest::Index { .. } => Err(Error::Manifest {
                    what: format!("{name}@{digest}"),
                    reason: "an index inside an index is not supported".into(),
                }),
            }
        }
    }
}

fn fetch_manifest(
    client: &Client,
    repository: &str,
    name: &str,
    tag_or_digest: &str,
    expected: Option<&str>,
) -> Result<(Vec<u8>, Manifest)> {
    let what = format!("reading manifest {tag_or_digest} in {name}");
    let fetched = client.get_manifest(repository, tag_or_digest, &what)?;
    if let Some(expected) = expected {
        let actual = Digest::of(&fetched.bytes).to_string();
        if actual != expected {
            return Err(Error::DigestMismatch {
                what: "manifest",
                expected: expected.to_string(),
                actual,
            });
        }
    }
    let parsed =
        Manifest::parse(&fetched.bytes, fetched.content_type.as_deref()).map_err(|reason| {
            Error::Manifest {
                what: format!("{tag_or_digest} in {name}"),
                reason,
            }
        })?;
    Ok((fetched.bytes, parsed))
}

fn fetch_config(
    client: &Client,
    store: &Store,
    repository: &str,
    config: &Descriptor,
    digest: &Digest,
    progress: &dyn Progress,
) -> Result<()> {
    progress.blob_start(BlobKind::Config, digest, Some(config.size));
    if store.has_blob(digest) {
        progress.blob_done(digest, BlobDone::Skipped);
        return Ok(());
    }
    streamed(client, repository, config, digest, progress, |reader| {
        store.put_blob(Some(digest), reader).map(|_| ())
    })
}

/// Fetches the layers not already stored, `jobs` at a time; the first failure stops the
/// others from starting new ones.
fn fetch_layers(
    client: &Client,
    store: &Store,
    repository: &str,
    layers: &[Descriptor],
    digests: &[Digest],
    jobs: usize,
    progress: &dyn Progress,
) -> Result<()> {
    let mut todo = Vec::new();
    for (layer, digest) in layers.iter().zip(digests) {
        if store.layer_by_blob(digest)?.is_some() {
            progress.blob_start(BlobKind::Layer, digest, Some(layer.size));
            progress.blob_done(digest, BlobDone::Skipped);
        } else if !todo.iter().any(|(_, d)| d == &digest) {
            todo.push((layer, digest));
        }
    }
    // The biggest first: the pull ends when its longest layer does.
    todo.sort_by_key(|(layer, _)| std::cmp::Reverse(layer.size));
    let queue = Mutex::new(todo.into_iter());
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let workers = jobs.min(layers.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((layer, digest)) = next else { return };
                    if let Err(e) = fetch_layer(client, store, repository, layer, digest, progress)
                    {
                        failed.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One layer, streamed from the registry straight into the store's unpacker.
fn fetch_layer(
    client: &Client,
    store: &Store,
    repository: &str,
    layer: &Descriptor,
    digest: &Digest,
    progress: &dyn Progress,
) -> Result<LayerInfo> {
    progress.blob_start(BlobKind::Layer, digest, Some(layer.size));
    streamed(client, repository, layer, digest, progress, |reader| {
        store.put_layer(digest, reader, &|_| {})
    })
}

/// Gives the blob's stream to `consume` (which stores it). A stream that breaks midway
/// (reset, timeout, early end) is fetched again from the start, a bounded number of times;
/// a content failure (a digest mismatch) is not retried.
fn streamed<T>(
    client: &Client,
    repository: &str,
    descriptor: &Descriptor,
    digest: &Digest,
    progress: &dyn Progress,
    consume: impl Fn(&mut dyn Read) -> crate::error::Result<T>,
) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (body, _) = match client.get_blob(repository, &descriptor.digest) {
            Ok(b) => b,
            Err(e) => {
                progress.blob_done(digest, BlobDone::Failed);
                return Err(e);
            }
        };
        let broke = AtomicBool::new(false);
        // Never more than the manifest says: a registry cannot make us store without end.
        let mut reader = Watched {
            inner: body.take(descriptor.size),
            done: 0,
            digest,
            progress,
            broke: &broke,
        };
        match consume(&mut reader) {
            Ok(v) => {
                progress.blob_done(digest, BlobDone::Copied);
                return Ok(v);
            }
            Err(e) if broke.load(Ordering::Relaxed) && attempt < LAYER_ATTEMPTS => {
                log::debug!("blob {digest}: the stream broke ({e}); fetching it again");
                progress.blob_bytes(digest, 0);
            }
            Err(e) => {
                progress.blob_done(digest, BlobDone::Failed);
                return Err(e.into());
            }
        }
    }
}

/// Counts what is read for the progress display and notes whether the network (not the
/// content) failed, which makes the layer worth another try.
struct Watched<'a, R> {
    inner: R,
    done: u64,
    digest: &'a Digest,
    progress: &'a dyn Progress,
    broke: &'a AtomicBool,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.done += n as u64;
                self.progress.blob_bytes(self.digest, self.done);
                Ok(n)
            }
            Err(e) => {
                if is_transient_io(e.kind())
                    || e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>())
                {
                    self.broke.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }
}

fn parse_digest(text: &str) -> Result<Digest> {
    Ok(Digest::parse(text)?)
}
