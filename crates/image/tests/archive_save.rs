//! Saving from a real store and reading the result back with podman, skopeo and berth:
//! docker-archive (several images in one), oci-archive, OCI layout directories; and
//! podman's own saves loading in berth with the config byte-identical.

mod support_archive;

use std::fs;
use std::io::Read;
use std::path::Path;

use berth_image::archive::{self, Format, Source, save};
use berth_image::{Digest, Store};
use support_archive::*;

/// A store holding `app:v1` (two gzip layers, from umoci through an oci-archive) and
/// `base:1` (one plain layer, from a handmade docker-archive).
fn seeded(fx: &Fixture) -> Store {
    let layout = fx.umoci_image(
        "v1",
        &[&[("etc/hello", "hello\n")], &[("usr/share/x", "x\n")]],
    );
    let oci_tar = fx.path("seed-oci.tar");
    fx.skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("oci-archive:{}:app:v1", oci_tar.display()),
    );
    let store = fx.store("root");
    archive::load(&store, &Source::Path(oci_tar), &|_| {}).unwrap();
    let (tar, _) = docker_archive("base:1", &[layer_tar(&[("base.txt", b"base")])]);
    let path = fx.path("seed-docker.tar");
    fs::write(&path, tar).unwrap();
    archive::load(&store, &Source::Path(path), &|_| {}).unwrap();
    store
}

fn names(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn save_file(store: &Store, images: &[&str], format: Format, path: &Path) {
    let selected = save::select(store, &names(images)).unwrap();
    save::save_to_path(store, &selected, format, path).unwrap();
}

#[test]
fn docker_archive_loads_in_podman_and_skopeo() {
    if !can_run(
        "docker_archive_loads_in_podman_and_skopeo",
        &["umoci", "skopeo", "podman"],
    ) {
        return;
    }
    let fx = Fixture::new();
    let store = seeded(&fx);
    let app = store.resolve("localhost/app:v1").unwrap();
    let base = store.resolve("base:1").unwrap();
    let tar = fx.path("out.tar");
    save_file(
        &store,
        &["localhost/app:v1", "base:1"],
        Format::DockerArchive,
        &tar,
    );

    // skopeo reads each image of the archive (by index) and copies it to an OCI layout with
    // the same config and diffs.
    for (i, image) in [&app, &base].iter().enumerate() {
        let src = format!("docker-archive:{}:@{i}", tar.display());
        let out =
            run(std::process::Command::new("skopeo").args(["inspect", "--raw", "--config", &src]));
        assert!(
            is_config(&out, &image.id),
            "skopeo sees another config for image {i}: {out}"
        );
        let dir = fx.path(&format!("copied-{i}"));
        fx.skopeo_copy(&src, &format!("oci:{}:t", dir.display()));
        // skopeo rewrites the config as OCI (another digest) and may compress the layers:
        // what must hold is the diffs.
        let (_, config, layers) = layout_image(&dir, "t");
        let copied: serde_json::Value = serde_json::from_slice(&blob(&dir, &config)).unwrap();
        let diffs: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
        assert_eq!(
            copied["rootfs"]["diff_ids"],
            serde_json::json!(diffs),
            "image {i}"
        );
        assert_eq!(layers.len(), diffs.len());
    }

    let podman = Podman::new(&fx.path("podman"));
    let out = podman.run(&["load", "-q", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("localhost/app:v1"), "{out}");
    assert!(out.contains("docker.io/library/base:1"), "{out}");
    for (name, image) in [
        ("localhost/app:v1", &app),
        ("docker.io/library/base:1", &base),
    ] {
        let inspect = podman.inspect(name);
        assert_eq!(inspect["Id"], image.id.hex(), "{name}");
        let diffs: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
        assert_eq!(
            inspect["RootFS"]["Layers"],
            serde_json::json!(diffs),
            "{name}"
        );
    }
}

#[test]
fn oci_archive_and_dir_load_in_podman_and_skopeo() {
    if !can_run(
        "oci_archive_and_dir_load_in_podman_and_skopeo",
        &["umoci", "skopeo", "podman"],
    ) {
        return;
    }
    let fx = Fixture::new();
    let store = seeded(&fx);
    let app = store.resolve("localhost/app:v1").unwrap();
    let tar = fx.path("out-oci.tar");
    save_file(&store, &["localhost/app:v1"], Format::OciArchive, &tar);
    let out = run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}", tar.display()),
    ]));
    assert_eq!(
        Digest::of(out.as_bytes()),
        app.manifest_digest,
        "an OCI manifest goes out byte-exact"
    );
    let podman = Podman::new(&fx.path("podman"));
    let out = podman.run(&["load", "-q", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("localhost/app:v1"), "{out}");
    assert_eq!(podman.inspect("localhost/app:v1")["Id"], app.id.hex());

    // An OCI layout directory, added to: both images end up in its index.
    let dir = fx.path("layout");
    save_file(&store, &["localhost/app:v1"], Format::OciDir, &dir);
    save_file(&store, &["base:1"], Format::OciDir, &dir);
    save_file(&store, &["base:1"], Format::OciDir, &dir);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    let out = run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--config",
        &format!("oci:{}:docker.io/library/base:1", dir.display()),
    ]));
    assert!(
        is_config(&out, &store.resolve("base:1").unwrap().id),
        "{out}"
    );
    let again = fx.store("again");
    let loaded = archive::load(
        &again,
        &Source::parse(&format!("oci:{}", dir.display())),
        &|_| {},
    )
    .unwrap();
    assert_eq!(loaded.len(), 2);
}

#[test]
fn podman_saves_load_in_berth_with_the_config_byte_identical() {
    if !can_run("podman_saves_load_in_berth", &["umoci", "skopeo", "podman"]) {
        return;
    }
    let fx = Fixture::new();
    let layout = fx.umoci_image("v1", &[&[("etc/hello", "hello\n")]]);
    let oci_tar = fx.path("in.tar");
    fx.skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("oci-archive:{}:pod:v1", oci_tar.display()),
    );
    let podman = Podman::new(&fx.path("podman"));
    podman.run(&["load", "-q", "-i", oci_tar.to_str().unwrap()]);
    for format in ["docker-archive", "oci-archive"] {
        let saved = fx.path(&format!("podman-{format}.tar"));
        podman.run(&[
            "save",
            "-q",
            "--format",
            format,
            "-o",
            saved.to_str().unwrap(),
            "localhost/pod:v1",
        ]);
        let podman_id = podman.inspect("localhost/pod:v1")["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let store = fx.store(&format!("root-{format}"));
        let loaded = archive::load(&store, &Source::Path(saved.clone()), &|_| {}).unwrap();
        assert_eq!(loaded.len(), 1, "{format}");
        let image = &loaded[0].image;
        assert_eq!(image.names, ["localhost/pod:v1"], "{format}");
        // The config bytes inside podman's archive are the ones stored.
        let config_in_archive = entry_of(&saved, |name| {
            name.contains(&image.id.hex()) && !name.ends_with("/")
        });
        assert_eq!(
            store.read_blob(&image.id).unwrap(),
            config_in_archive,
            "{format}"
        );
        if format == "docker-archive" {
            assert_eq!(image.id.hex(), podman_id);
        }
    }
}

/// Whether `printed` (what `skopeo inspect --raw --config` prints: the config, plus a
/// newline when it ends without one) is the config `id`.
fn is_config(printed: &str, id: &Digest) -> bool {
    Digest::of(printed.as_bytes()) == *id
        || printed
            .strip_suffix('\n')
            .is_some_and(|t| Digest::of(t.as_bytes()) == *id)
}

/// The content of the first entry of the tar at `path` whose name matches.
fn entry_of(path: &Path, matches: impl Fn(&str) -> bool) -> Vec<u8> {
    let file = fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        if matches(&name) && entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("no matching entry in {}", path.display());
}

#[test]
fn saves_are_deterministic_and_round_trip() {
    let fx = Fixture::new();
    let store = fx.store("root");
    let layers = vec![layer_tar(&[("a", b"1")]), layer_tar(&[("b", b"2")])];
    let (tar, config) = docker_archive("rt:1", &layers);
    let path = fx.path("in.tar");
    fs::write(&path, tar).unwrap();
    archive::load(&store, &Source::Path(path), &|_| {}).unwrap();
    // Also a gzip-layered image, saved to docker-archive decompressed.
    let gz = gzip(&layers[0]);
    let c2 = config_json(&[Digest::of(&layers[0])]);
    let manifest =
        serde_json::json!([{"Config": "c.json", "RepoTags": ["gz:1"], "Layers": ["l.tar.gz"]}]);
    let t2 = tar_of(&[
        ("l.tar.gz", Entry::File(gz)),
        ("c.json", Entry::File(c2.clone())),
        (
            "manifest.json",
            Entry::File(serde_json::to_vec(&manifest).unwrap()),
        ),
    ]);
    let p2 = fx.path("gz.tar");
    fs::write(&p2, t2).unwrap();
    archive::load(&store, &Source::Path(p2), &|_| {}).unwrap();

    for format in [Format::DockerArchive, Format::OciArchive] {
        let selected = save::select(&store, &names(&["rt:1", "gz:1"])).unwrap();
        let mut first = Vec::new();
        save::save_tar(&store, &selected, format, &mut first, "memory").unwrap();
        let mut second = Vec::new();
        save::save_tar(&store, &selected, format, &mut second, "memory").unwrap();
        assert!(first == second, "{format:?}: two saves differ");
        let out = fx.path(&format!("out-{format:?}.tar"));
        fs::write(&out, &first).unwrap();
        let other = fx.store(&format!("other-{format:?}"));
        let loaded = archive::load(&other, &Source::Path(out), &|_| {}).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].image.id, config);
        assert_eq!(loaded[0].image.names, ["docker.io/library/rt:1"]);
        assert_eq!(loaded[1].image.id, Digest::of(&c2));
        let diff = loaded[1].image.layers[0].diff_id;
        assert_eq!(fs::read(other.layer_dir(&diff).join("a")).unwrap(), b"1");
    }

    // By id: saved without a name (docker's behaviour); unknown images: an error naming them.
    let selected = save::select(&store, &names(&[&config.hex()[..12]])).unwrap();
    assert!(selected[0].names.is_empty());
    let err = save::select(&store, &names(&["nonexistent:1"])).unwrap_err();
    assert!(err.to_string().contains("nonexistent"), "{err}");
    // A failed save leaves no file behind.
    let target = fx.path("never.tar");
    let err = "oci-dir"
        .parse::<Format>()
        .map(|_| ())
        .and_then(|_| "zip".parse::<Format>().map(|_| ()));
    assert!(err.unwrap_err().to_string().contains("zip"));
    assert!(!target.exists());
}
