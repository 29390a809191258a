//! Push of stored images to a real registry and pull back: the same manifest bytes, the same
//! digests; blobs already there are skipped, blobs from another repository of the same
//! registry are mounted.

mod support_registry;

use std::sync::Mutex;

use berth_image::progress::{BlobDone, Progress, Silent};
use berth_image::registry::pull::{PullOptions, pull};
use berth_image::registry::push::{PushOptions, push};
use berth_image::{Digest, Reference, Store};
use support_registry::{Auth, Images, Registry, registry_tools};

#[derive(Default)]
struct Outcomes(Mutex<Vec<BlobDone>>);

impl Progress for Outcomes {
    fn blob_done(&self, _digest: &Digest, how: BlobDone) {
        self.0.lock().unwrap().push(how);
    }
}

#[test]
fn push_then_pull_back_equal() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let a = Registry::start(Auth::None);
    let b = Registry::start(Auth::None);
    a.push(&images.src("bb"), "t/bb:v2s2", &["--format", "v2s2"]);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let src = Reference::parse(&format!("{}/t/bb:v2s2", a.addr)).unwrap();
    let image = pull(&store, &src, &PullOptions::default(), &Silent).unwrap();
    let manifest = store.read_blob(&image.manifest_digest).unwrap();

    // To another registry: everything uploaded.
    let dest = Reference::parse(&format!("{}/copy/bb:1", b.addr)).unwrap();
    let seen = Outcomes::default();
    let digest = push(&store, &image, &dest, &PushOptions::default(), &seen).unwrap();
    assert_eq!(digest, image.manifest_digest);
    assert_eq!(*seen.0.lock().unwrap(), vec![BlobDone::Copied; 3]);
    assert_eq!(
        b.manifest("copy/bb:1"),
        manifest,
        "the manifest bytes as stored"
    );
    // Again: every blob is there already.
    let seen = Outcomes::default();
    push(&store, &image, &dest, &PushOptions::default(), &seen).unwrap();
    assert_eq!(*seen.0.lock().unwrap(), vec![BlobDone::Skipped; 3]);

    // To another repository of the registry it came from: mounted, not uploaded.
    let sibling = Reference::parse(&format!("{}/other/bb:x", a.addr)).unwrap();
    let seen = Outcomes::default();
    push(&store, &image, &sibling, &PushOptions::default(), &seen).unwrap();
    assert_eq!(*seen.0.lock().unwrap(), vec![BlobDone::Mounted; 3]);

    // Pulled back into an empty store: the same image.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(dir2.path()).unwrap();
    let back = pull(&store2, &dest, &PullOptions::default(), &Silent).unwrap();
    assert_eq!(
        (back.id, back.manifest_digest),
        (image.id, image.manifest_digest)
    );
    assert_eq!(back.layers, image.layers);
    let back = pull(&store2, &sibling, &PullOptions::default(), &Silent).unwrap();
    assert_eq!(back.id, image.id);

    // A destination pinned to another digest is refused before anything moves.
    let wrong = Reference::parse(&format!("{}/copy/bb@sha256:{}", b.addr, "1".repeat(64))).unwrap();
    let e = push(&store, &image, &wrong, &PushOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&"1".repeat(64)) && e.contains(&image.manifest_digest.to_string()),
        "{e}"
    );
}
