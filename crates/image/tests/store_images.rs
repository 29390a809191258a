//! Image records: names moved atomically, resolution, holds, removal and garbage, and
//! concurrent users of one store.

mod unpack_support;

use std::sync::Arc;

use berth_image::{Digest, Error, Reference, Store};
use unpack_support::{Tar, image_from, root_or_skip};

#[test]
fn names_move_and_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = image_from(
        &store,
        &[Tar::new().file("a", b"1").finish()],
        Some("busybox"),
    );
    assert_eq!(a.names, ["docker.io/library/busybox:latest"]);
    assert_eq!(
        a.digests,
        [format!("docker.io/library/busybox@{}", a.manifest_digest)]
    );
    assert_eq!(store.resolve("busybox").unwrap().id, a.id);
    assert_eq!(store.resolve(&a.id.hex()[..6]).unwrap().id, a.id);
    assert_eq!(
        store
            .resolve(&format!("busybox@{}", a.manifest_digest))
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(a.created_unix(), 1704164645);
    assert_eq!(a.size, a.layers[0].diff_size);
    assert_eq!(a.config.cmd.as_deref(), Some(&["/bin/sh".to_string()][..]));

    // The same name on another image moves it; the first becomes dangling.
    let b = image_from(
        &store,
        &[Tar::new().file("b", b"2").finish()],
        Some("busybox"),
    );
    assert_eq!(store.resolve("busybox").unwrap().id, b.id);
    let a_now = store.resolve(&a.id.to_string()).unwrap();
    assert!(a_now.names.is_empty() && a_now.digests.is_empty());

    let index_digest = Digest::of(b"an index");
    let pinned = store
        .set_repo_digest(&b.id, &Reference::parse("busybox").unwrap(), &index_digest)
        .unwrap();
    assert_eq!(
        pinned.digests,
        [format!("docker.io/library/busybox@{index_digest}")]
    );
    assert_eq!(
        store
            .resolve(&format!("busybox@{index_digest}"))
            .unwrap()
            .id,
        b.id
    );

    let tagged = store
        .tag(&a_now, &Reference::parse("localhost/mine:v1").unwrap())
        .unwrap();
    assert_eq!(tagged.names, ["localhost/mine:v1"]);
    assert_eq!(
        store.resolve("mine:v1").unwrap().id,
        a.id,
        "short names find localhost/"
    );
    let untagged = store
        .untag(&Reference::parse("localhost/mine:v1").unwrap())
        .unwrap();
    assert!(untagged.names.is_empty());
    assert!(matches!(
        store.untag(&Reference::parse("nope").unwrap()),
        Err(Error::ImageUnknown(_))
    ));
    assert!(
        store
            .tag(&a_now, &Reference::parse(&format!("x@{}", a.id)).unwrap())
            .is_err()
    );
    assert_eq!(store.list().unwrap().len(), 2);
}

#[test]
fn a_manifest_must_match_what_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let layer = store
        .put_layer_stream(&mut &Tar::new().file("a", b"1").finish()[..], &|_| {})
        .unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"lie").to_string()]},
    }))
    .unwrap();
    let config_digest = store.put_blob_bytes(&config).unwrap();
    let manifest = |layer_digest: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"digest": layer_digest, "size": 1}],
        }))
        .unwrap()
    };
    let err = store
        .add_image(&manifest(&layer.blob.to_string()), &[])
        .unwrap_err();
    assert!(err.to_string().contains("diff ids"), "{err}");
    let missing = Digest::of(b"missing");
    let err = store
        .add_image(&manifest(&missing.to_string()), &[])
        .unwrap_err();
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    let index = br#"{"schemaVersion":2,"manifests":[]}"#;
    let err = store.add_image(index, &[]).unwrap_err();
    assert!(err.to_string().contains("index"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn held_images_are_not_removed_and_garbage_goes() {
    if !root_or_skip("unpack") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let shared = Tar::new().file("shared", b"s").finish();
    let a = image_from(
        &store,
        &[shared.clone(), Tar::new().file("a", b"1").finish()],
        Some("a"),
    );
    let b = image_from(
        &store,
        &[shared, Tar::new().file("b", b"2").finish()],
        Some("b"),
    );
    assert_eq!(a.layers[0], b.layers[0], "one layer shared");
    store.hold(&a.id, "container1").unwrap();
    let err = store.remove(&a, false).unwrap_err();
    assert!(err.to_string().contains("container1"), "{err}");
    store.release(&a.id, "container1").unwrap();
    store.remove(&a, false).unwrap();
    assert!(store.resolve("a").is_err());
    assert!(
        store.layer_dir(&b.layers[0].diff_id).is_dir(),
        "still used by b"
    );
    assert!(
        !store.layer_dir(&a.layers[1].diff_id).exists(),
        "a's own layer collected"
    );
    assert!(!store.has_blob(&a.id) && !store.has_blob(&a.manifest_digest));

    // Forcing a held image only takes its names; prune removes it once released.
    store.hold(&b.id, "c2").unwrap();
    store.remove(&b, true).unwrap();
    let dangling = store.resolve(&b.id.to_string()).unwrap();
    assert!(dangling.names.is_empty());
    assert!(store.prune(false).unwrap().is_empty(), "held");
    store.release(&b.id, "c2").unwrap();
    assert_eq!(store.prune(false).unwrap().len(), 1);
    assert!(store.list().unwrap().is_empty());
    let blobs = std::fs::read_dir(tmp.path().join("blobs/sha256"))
        .unwrap()
        .count();
    let layers = std::fs::read_dir(tmp.path().join("layers"))
        .unwrap()
        .count();
    assert_eq!(
        (blobs, layers),
        (0, 1),
        "everything collected but layers/by-blob"
    );
}

#[test]
fn garbage_waits_while_another_store_user_is_active() {
    if !root_or_skip("unpack") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let other = Store::open(tmp.path()).unwrap();
    // `other` is between storing a layer and recording its image.
    let pending = other
        .put_layer_stream(&mut &Tar::new().file("p", b"p").finish()[..], &|_| {})
        .unwrap();
    let a = image_from(&store, &[Tar::new().file("a", b"1").finish()], Some("a"));
    store.remove(&a, false).unwrap();
    assert!(
        other.layer_by_blob(&pending.blob).unwrap().is_some(),
        "not collected under a user"
    );
    drop(other);
    store.prune(false).unwrap();
    assert!(
        store.layer_by_blob(&pending.blob).unwrap().is_none(),
        "collected once alone"
    );
}

#[test]
fn concurrent_puts_of_one_image_store_it_once() {
    if !root_or_skip("unpack") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let layers = Arc::new(vec![
        unpack_support::gzip(&Tar::new().file("x", &vec![1u8; 200_000]).finish()),
        Tar::new().file("y", b"2").finish(),
    ]);
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let root = root.clone();
            let layers = layers.clone();
            std::thread::spawn(move || {
                // Separate Store values: separate open files, so the locks work as between processes.
                let store = Store::open(&root).unwrap();
                image_from(&store, &layers, Some(&format!("localhost/same:{}", i % 2)))
            })
        })
        .collect();
    let images: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(images.windows(2).all(|w| w[0].id == w[1].id));
    let store = Store::open(&root).unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    let mut names = list[0].names.clone();
    names.sort();
    assert_eq!(names, ["localhost/same:0", "localhost/same:1"]);
    let dirs = std::fs::read_dir(root.join("layers")).unwrap().count();
    assert_eq!(dirs, 3);
    assert_eq!(
        std::fs::read_dir(root.join("tmp")).unwrap().count(),
        0,
        "no staging left"
    );
}
