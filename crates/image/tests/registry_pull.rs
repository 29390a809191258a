//! Pulls from a real registry (docker-registry on 127.0.0.1) filled by skopeo with images
//! built by umoci: docker v2s2, OCI gzip, OCI zstd, an index of several platforms; by tag
//! and by digest; progress events; what a failure leaves (nothing).

mod support_registry;

use std::collections::HashMap;
use std::sync::Mutex;

use berth_image::progress::{BlobDone, BlobKind, Progress, Silent};
use berth_image::registry::pull::{PullOptions, pull};
use berth_image::registry::{Error, Platform};
use berth_image::{Digest, Reference, Store};
use support_registry::{Auth, Images, Registry, registry_tools};

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn reference(reg: &Registry, name: &str) -> Reference {
    Reference::parse(&format!("{}/{name}", reg.addr)).unwrap()
}

#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<(BlobKind, Digest, Option<u64>)>>,
    bytes: Mutex<HashMap<Digest, u64>>,
    done: Mutex<Vec<(Digest, BlobDone)>>,
    messages: Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn message(&self, text: &str) {
        self.messages.lock().unwrap().push(text.to_string());
    }
    fn blob_start(&self, kind: BlobKind, digest: &Digest, size: Option<u64>) {
        self.started.lock().unwrap().push((kind, *digest, size));
    }
    fn blob_bytes(&self, digest: &Digest, done: u64) {
        self.bytes.lock().unwrap().insert(*digest, done);
    }
    fn blob_done(&self, digest: &Digest, how: BlobDone) {
        self.done.lock().unwrap().push((*digest, how));
    }
}

#[test]
fn pulls_v2s2_oci_gzip_and_oci_zstd() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &["--format", "oci"]);
    reg.push(&images.src("bb"), "t/bb:v2s2", &["--format", "v2s2"]);
    reg.push(&images.zstd_src("bb"), "t/bb:zstd", &["--format", "oci"]);
    let id = images.config_digest("bb");
    for (tag, media_type) in [
        ("oci", "application/vnd.oci.image.manifest.v1+json"),
        (
            "v2s2",
            "application/vnd.docker.distribution.manifest.v2+json",
        ),
        ("zstd", "application/vnd.oci.image.manifest.v1+json"),
    ] {
        let (_dir, store) = new_store();
        let r = reference(&reg, &format!("t/bb:{tag}"));
        let rec = Recorder::default();
        let image = pull(&store, &r, &PullOptions::default(), &rec)
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_eq!(image.id.to_string(), id, "{tag}");
        assert_eq!(image.layers.len(), 2, "{tag}");
        assert_eq!(image.names, vec![r.to_string()]);
        // The manifest is kept byte-exact: the registry's bytes, its digest.
        let served = reg.manifest(&format!("t/bb:{tag}"));
        assert_eq!(
            store.read_blob(&image.manifest_digest).unwrap(),
            served,
            "{tag}"
        );
        let manifest: serde_json::Value = serde_json::from_slice(&served).unwrap();
        assert_eq!(
            manifest["mediaType"]
                .as_str()
                .unwrap_or("application/vnd.oci.image.manifest.v1+json"),
            media_type
        );
        if tag == "zstd" {
            assert!(
                manifest["layers"][0]["mediaType"]
                    .as_str()
                    .unwrap()
                    .ends_with("zstd"),
                "{manifest}"
            );
        }
        for layer in &image.layers {
            assert!(
                store.layer_dir(&layer.diff_id).join("bin").exists()
                    || store.layer_dir(&layer.diff_id).join("etc/hello").exists()
            );
        }
        // Every layer was reported, to its full size.
        let started = rec.started.lock().unwrap().clone();
        assert_eq!(
            started.iter().filter(|s| s.0 == BlobKind::Layer).count(),
            2,
            "{tag}"
        );
        for (kind, digest, size) in &started {
            if *kind == BlobKind::Layer {
                assert_eq!(
                    rec.bytes.lock().unwrap().get(digest).copied(),
                    *size,
                    "{tag} {digest}"
                );
            }
        }
        assert!(
            rec.done
                .lock()
                .unwrap()
                .iter()
                .all(|(_, how)| *how == BlobDone::Copied),
            "{tag}"
        );
        let messages = rec.messages.lock().unwrap().clone();
        assert_eq!(messages[0], format!("Trying to pull {r}..."));
        assert!(messages.contains(&"Writing manifest to image destination".to_string()));

        // Again: nothing is transferred, the same image comes back.
        let rec = Recorder::default();
        let again = pull(&store, &r, &PullOptions::default(), &rec).unwrap();
        assert_eq!(again.id, image.id);
        assert!(
            rec.done
                .lock()
                .unwrap()
                .iter()
                .all(|(_, how)| *how == BlobDone::Skipped)
        );
        assert_eq!(store.list().unwrap().len(), 1);
    }
}

#[test]
fn pulls_by_digest_and_verifies_it() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &["--format", "oci"]);
    let digest = format!(
        "sha256:{}",
        support_registry::sha256_hex(&reg.manifest("t/bb:oci"))
    );
    let (_dir, store) = new_store();
    let r = reference(&reg, &format!("t/bb@{digest}"));
    let image = pull(&store, &r, &PullOptions::default(), &Silent).unwrap();
    assert_eq!(image.manifest_digest.to_string(), digest);
    assert!(
        image.names.is_empty(),
        "a digest gives no name: {:?}",
        image.names
    );
    // name:tag@digest: the digest is pulled, the tag names it.
    let r = reference(&reg, &format!("t/bb:pinned@{digest}"));
    let image = pull(&store, &r, &PullOptions::default(), &Silent).unwrap();
    assert_eq!(image.names, vec![format!("{}/t/bb:pinned", reg.addr)]);
    // A digest the registry does not have.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let r = reference(&reg, &format!("t/bb@{wrong}"));
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&wrong), "{e}");
}

#[test]
fn resolves_an_index_by_platform() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("multi"), "t/multi:latest", &["--all"]);
    let r = reference(&reg, "t/multi");
    let host = Platform::host();
    let cases = [
        (None, images.config_digest("bb")),
        (
            Some("linux/arm64/v8"),
            if host.architecture == "arm64" {
                images.config_digest("bb")
            } else {
                images.config_digest("bb-arm64")
            },
        ),
        (Some("linux/arm/v7"), images.config_digest("bb-arm")),
        (Some("linux/arm"), images.config_digest("bb-arm")),
    ];
    for (platform, id) in cases {
        let (_dir, store) = new_store();
        let options = PullOptions {
            platform: platform.map(|p| Platform::parse(p).unwrap()),
            ..PullOptions::default()
        };
        let image =
            pull(&store, &r, &options, &Silent).unwrap_or_else(|e| panic!("{platform:?}: {e}"));
        assert_eq!(image.id.to_string(), id, "{platform:?}");
        assert_eq!(image.names, vec![r.to_string()]);
    }
    let (_dir, store) = new_store();
    let options = PullOptions {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..PullOptions::default()
    };
    let e = pull(&store, &r, &options, &Silent).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&r.to_string())
            && text.contains("linux/s390x")
            && text.contains("linux/arm/v7"),
        "{text}"
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn unknown_tag_unreachable_registry_and_bad_input() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let (_dir, store) = new_store();
    let r = reference(&reg, "t/bb:nope");
    let e = pull(&store, &r, &PullOptions::default(), &Silent).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(&e, Error::Pull { source, .. } if matches!(**source, Error::NotFound { .. })),
        "{e:?}"
    );
    assert!(
        text.contains(&format!("pulling {}/t/bb:nope", reg.addr))
            && text.contains("manifest unknown"),
        "{text}"
    );
    let r = reference(&reg, "t/nothing");
    assert!(
        pull(&store, &r, &PullOptions::default(), &Silent)
            .unwrap_err()
            .to_string()
            .contains("t/nothing")
    );

    // A closed port: the error says which registry, at once (no retries on a refusal).
    let port = support_registry::free_port();
    let r = Reference::parse(&format!("127.0.0.1:{port}/t/bb")).unwrap();
    let t0 = std::time::Instant::now();
    let e = pull(&store, &r, &PullOptions::default(), &Silent).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("pinging container registry 127.0.0.1:{port}"))
            && text.contains("connection refused"),
        "{text}"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_corrupt_blob_is_refused_and_nothing_is_stored() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &["--format", "oci"]);
    let manifest: serde_json::Value = serde_json::from_slice(&reg.manifest("t/bb:oci")).unwrap();
    let r = reference(&reg, "t/bb:oci");

    // The second layer's bytes flipped in the registry's storage (same length).
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let path = reg.blob_data(&layer);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();
    let (_dir, store) = new_store();
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&layer), "the error names the layer digest: {e}");
    assert!(store.list().unwrap().is_empty());
    assert!(
        store
            .layer_by_blob(&Digest::parse(&layer).unwrap())
            .unwrap()
            .is_none()
    );
    std::fs::write(&path, &good).unwrap();

    // The config replaced by other JSON.
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let path = reg.blob_data(&config);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let i = bad.iter().position(|&b| b == b'{').unwrap();
    bad.insert(i + 1, b' ');
    bad.pop();
    std::fs::write(&path, &bad).unwrap();
    let (_dir, store) = new_store();
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&config) && e.contains("mismatch"), "{e}");
    assert!(store.list().unwrap().is_empty());
    assert!(!store.has_blob(&Digest::parse(&config).unwrap()));
    std::fs::write(&path, &good).unwrap();
    pull(&store, &r, &PullOptions::default(), &Silent).unwrap();
}

#[test]
fn parallel_pulls_of_one_image_store_it_once() {
    if !registry_tools() {
        return;
    }
    let images = Images::build_with(&[("big1", 3 << 20), ("big2", 3 << 20)]);
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let dir = tempfile::tempdir().unwrap();
    let r = reference(&reg, "t/bb:oci");
    let ids: Vec<Digest> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let store = Store::open(dir.path()).unwrap();
                    pull(&store, &r, &PullOptions::default(), &Silent)
                        .unwrap()
                        .id
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| id == &ids[0]));
    let store = Store::open(dir.path()).unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].layers.len(), 4);
}

#[test]
fn tls_with_an_unknown_certificate_needs_tls_verify_false() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start_tls();
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let r = reference(&reg, "t/bb:oci");
    let (_dir, store) = new_store();
    // Verified by default: the self-signed certificate is refused (and the plain-http
    // fallback that localhost gets finds a TLS server); both reasons are told.
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("pinging container registry {}", reg.addr))
            && e.contains(&format!("https://{}/v2/", reg.addr))
            && e.contains(&format!("http://{}/v2/: status 400", reg.addr)),
        "{e}"
    );
    assert!(store.list().unwrap().is_empty());
    let insecure = PullOptions {
        registry: berth_image::registry::Options {
            tls_verify: Some(false),
            ..Default::default()
        },
        ..PullOptions::default()
    };
    let image = pull(&store, &r, &insecure, &Silent).unwrap();
    assert_eq!(image.id.to_string(), images.config_digest("bb"));
}
