//! Loading archives into a real store: docker-archive and oci-archive as skopeo writes them
//! from umoci-built images, OCI layout directories, gzip/zstd-compressed archives, the
//! OCI-layout docker-archive of Docker 25 and later, and the attacks (names leaving the archive, lying
//! digests, truncation, a file that is no archive), which must leave the store empty.

mod support_archive;

use std::fs;

use berth_image::Digest;
use berth_image::archive::{self, Error, Source};
use support_archive::*;

fn load(
    store: &berth_image::Store,
    path: &std::path::Path,
) -> archive::Result<Vec<archive::Loaded>> {
    archive::load(store, &Source::Path(path.to_path_buf()), &|_| {})
}

#[test]
fn docker_archive_from_skopeo_loads_with_config_byte_identical() {
    if !can_run("docker_archive_from_skopeo", &["umoci", "skopeo"]) {
        return;
    }
    let fx = Fixture::new();
    let layout = fx.umoci_image(
        "v1",
        &[&[("etc/hello", "hello\n")], &[("etc/second", "two\n")]],
    );
    let (_, config, _) = layout_image(&layout, "v1");
    let tar = fx.path("d.tar");
    fx.skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("docker-archive:{}:example/app:v1", tar.display()),
    );
    let store = fx.store("root");
    let loaded = load(&store, &tar).unwrap();
    assert_eq!(loaded.len(), 1);
    let image = &loaded[0].image;
    assert_eq!(image.id, config);
    assert_eq!(image.names, ["docker.io/example/app:v1"]);
    assert_eq!(
        store.read_blob(&image.id).unwrap(),
        blob(&layout, &config),
        "config not byte-exact"
    );
    assert_eq!(image.layers.len(), 2);
    let top = store.layer_dir(&image.layers[1].diff_id);
    assert_eq!(fs::read_to_string(top.join("etc/second")).unwrap(), "two\n");
    // The recorded manifest is a valid OCI manifest over the stored blobs.
    let manifest: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&image.manifest_digest).unwrap()).unwrap();
    assert_eq!(manifest["config"]["digest"], config.to_string());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    // Loading the same archive again gives the same manifest (deterministic bytes).
    let again = load(&store, &tar).unwrap();
    assert_eq!(again[0].image.manifest_digest, image.manifest_digest);
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn oci_archive_and_oci_dir_keep_the_manifest_byte_exact() {
    if !can_run("oci_archive_and_oci_dir", &["umoci", "skopeo"]) {
        return;
    }
    let fx = Fixture::new();
    let layout = fx.umoci_image("v1", &[&[("etc/hello", "hello\n")]]);
    fx.umoci_image("v2", &[&[("etc/other", "other\n")]]);
    let (manifest, config, layers) = layout_image(&layout, "v1");
    let tar = fx.path("o.tar");
    fx.skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("oci-archive:{}:app", tar.display()),
    );

    let store = fx.store("root");
    let loaded = load(&store, &tar).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.manifest_digest, manifest);
    assert_eq!(loaded[0].image.id, config);
    assert_eq!(loaded[0].image.layers[0].blob, layers[0]);
    // podman's naming of a short ref.name.
    assert_eq!(loaded[0].image.names, ["localhost/app:latest"]);

    // oci:DIR:TAG picks one image; oci:DIR loads them all.
    let store2 = fx.store("root2");
    let one = archive::load(
        &store2,
        &Source::parse(&format!("oci:{}:v2", layout.display())),
        &|_| {},
    )
    .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].image.names, ["localhost/v2:latest"]);
    let all = archive::load(
        &store2,
        &Source::parse(&format!("oci:{}", layout.display())),
        &|_| {},
    )
    .unwrap();
    assert_eq!(all.len(), 2);
    let err = archive::load(
        &store2,
        &Source::parse(&format!("oci:{}:nope", layout.display())),
        &|_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no image tagged \"nope\""),
        "{err}"
    );
}

#[test]
fn compressed_archives_load_from_files_and_streams() {
    let fx = Fixture::new();
    let layer = layer_tar(&[("hello.txt", b"hello")]);
    let (tar, config) = docker_archive("busybox:latest", std::slice::from_ref(&layer));
    for (name, bytes) in [
        ("plain.tar", tar.clone()),
        ("a.tar.gz", gzip(&tar)),
        ("a.tar.zst", zstd(&tar)),
    ] {
        let path = fx.path(name);
        fs::write(&path, &bytes).unwrap();
        let store = fx.store(&format!("root-{name}"));
        let loaded = load(&store, &path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded[0].image.id, config, "{name}");
        assert_eq!(loaded[0].image.names, ["docker.io/library/busybox:latest"]);
        let dir = store.layer_dir(&loaded[0].image.layers[0].diff_id);
        assert_eq!(fs::read(dir.join("hello.txt")).unwrap(), b"hello");
    }
    // Compressed layers inside a docker-archive (docker load accepts them too).
    let gz_layer = gzip(&layer);
    let diff = Digest::of(&layer);
    let config_bytes = config_json(&[diff]);
    let config_digest = Digest::of(&config_bytes);
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": ["gz:1"], "Layers": ["layer.tar.gz"]}]);
    let archive_bytes = tar_of(&[
        ("layer.tar.gz", Entry::File(gz_layer.clone())),
        ("config.json", Entry::File(config_bytes)),
        (
            "manifest.json",
            Entry::File(serde_json::to_vec(&manifest).unwrap()),
        ),
    ]);
    let path = fx.path("gzlayer.tar");
    fs::write(&path, archive_bytes).unwrap();
    let store = fx.store("root-gzlayer");
    let loaded = load(&store, &path).unwrap();
    assert_eq!(loaded[0].image.id, config_digest);
    assert_eq!(loaded[0].image.layers[0].blob, Digest::of(&gz_layer));
    assert_eq!(loaded[0].image.layers[0].diff_id, diff);
    let manifest: serde_json::Value =
        serde_json::from_slice(&store.read_blob(&loaded[0].image.manifest_digest).unwrap())
            .unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
}

#[test]
fn docker25_oci_layout_form_loads_with_its_own_manifest() {
    let fx = Fixture::new();
    let layers = vec![layer_tar(&[("a", b"1")]), layer_tar(&[("b", b"2")])];
    let (tar, config, manifest) = docker25_archive(
        "busybox",
        "docker.io/library/busybox:latest",
        "latest",
        &layers,
    );
    let path = fx.path("docker25.tar");
    fs::write(&path, tar).unwrap();
    let store = fx.store("root");
    let loaded = load(&store, &path).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.id, config);
    assert_eq!(
        loaded[0].image.manifest_digest, manifest,
        "the archive's own OCI manifest is kept"
    );
    // Names from manifest.json's RepoTags, not from the bare tag in ref.name.
    assert_eq!(loaded[0].image.names, ["docker.io/library/busybox:latest"]);
}

#[test]
fn untagged_and_legacy_named_images() {
    let fx = Fixture::new();
    let layer = layer_tar(&[("x", b"x")]);
    let diff = Digest::of(&layer);
    let config = config_json(&[diff]);
    let dir = "1111111111111111111111111111111111111111111111111111111111111111";
    let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": null, "Layers": [format!("{dir}/layer.tar")]}]);
    let repositories = serde_json::json!({"legacy/name": {"v0": dir}});
    let make = |with_repos: bool| {
        let mut entries = vec![
            (format!("{dir}/layer.tar"), Entry::File(layer.clone())),
            ("c.json".to_string(), Entry::File(config.clone())),
            (
                "manifest.json".to_string(),
                Entry::File(serde_json::to_vec(&manifest).unwrap()),
            ),
        ];
        if with_repos {
            entries.push((
                "repositories".to_string(),
                Entry::File(serde_json::to_vec(&repositories).unwrap()),
            ));
        }
        let refs: Vec<(&str, Entry)> = entries
            .into_iter()
            .map(|(n, e)| (Box::leak(n.into_boxed_str()) as &str, e))
            .collect();
        tar_of(&refs)
    };
    let path = fx.path("untagged.tar");
    fs::write(&path, make(false)).unwrap();
    let store = fx.store("root");
    let loaded = load(&store, &path).unwrap();
    assert!(loaded[0].names.is_empty());
    assert!(loaded[0].image.names.is_empty());
    fs::write(&path, make(true)).unwrap();
    let loaded = load(&store, &path).unwrap();
    assert_eq!(loaded[0].image.names, ["docker.io/legacy/name:v0"]);
}

#[test]
fn symlinked_layers_inside_the_archive_are_followed() {
    // containers/image and docker < 25 write `<id>/layer.tar -> ../<diff>.tar`.
    let fx = Fixture::new();
    let layer = layer_tar(&[("x", b"x")]);
    let diff = Digest::of(&layer);
    let config = config_json(&[diff]);
    let manifest =
        serde_json::json!([{"Config": "c.json", "RepoTags": ["s:1"], "Layers": ["abc/layer.tar"]}]);
    let tar = tar_of(&[
        (&format!("{}.tar", diff.hex()), Entry::File(layer)),
        (
            "abc/layer.tar",
            Entry::Symlink(format!("../{}.tar", diff.hex())),
        ),
        ("c.json", Entry::File(config)),
        (
            "manifest.json",
            Entry::File(serde_json::to_vec(&manifest).unwrap()),
        ),
    ]);
    let path = fx.path("links.tar");
    fs::write(&path, tar).unwrap();
    let store = fx.store("root");
    assert_eq!(
        load(&store, &path).unwrap()[0].image.layers[0].diff_id,
        diff
    );
}

// ---------------------------------------------------------------- attacks and bad input

fn expect_failure(name: &str, bytes: &[u8], what: &[&str]) -> Error {
    let fx = Fixture::new();
    let path = fx.path(name);
    fs::write(&path, bytes).unwrap();
    let root = fx.path("root");
    let store = fx.store("root");
    let err = match load(&store, &path) {
        Ok(_) => panic!("{name}: loaded"),
        Err(e) => e,
    };
    let text = err.to_string();
    for w in what {
        assert!(text.contains(w), "{name}: {text:?} does not name {w:?}");
    }
    assert_empty(&store, &root);
    err
}

#[test]
fn entry_names_leaving_the_archive_are_refused() {
    let layer = layer_tar(&[("x", b"x")]);
    let config = config_json(&[Digest::of(&layer)]);
    let manifest =
        serde_json::json!([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["l.tar"]}]);
    let tar = tar_of(&[
        ("../evil", Entry::File(b"x".to_vec())),
        ("l.tar", Entry::File(layer.clone())),
        ("c.json", Entry::File(config.clone())),
        (
            "manifest.json",
            Entry::File(serde_json::to_vec(&manifest).unwrap()),
        ),
    ]);
    let err = expect_failure("dotdot.tar", &tar, &["dotdot.tar", "../evil"]);
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err:?}");

    // manifest.json pointing outside, by a path and by a symlink.
    for (layers, shown) in [
        ("../../etc/passwd", "../../etc/passwd"),
        ("/etc/passwd", "/etc/passwd"),
        ("sneaky/layer.tar", "sneaky/layer.tar"),
    ] {
        let manifest =
            serde_json::json!([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": [layers]}]);
        let tar = tar_of(&[
            (
                "sneaky/layer.tar",
                Entry::Symlink("../../../../etc/passwd".into()),
            ),
            ("c.json", Entry::File(config.clone())),
            (
                "manifest.json",
                Entry::File(serde_json::to_vec(&manifest).unwrap()),
            ),
        ]);
        let err = expect_failure("outside.tar", &tar, &[shown]);
        assert!(
            matches!(err, Error::UnsafeEntry { .. }),
            "{layers}: {err:?}"
        );
    }
}

#[test]
fn lying_digests_are_refused() {
    let layer = layer_tar(&[("x", b"x")]);
    let config = config_json(&[Digest::of(&layer)]);
    let config_digest = Digest::of(&config);
    // A config entry named by a digest it does not have.
    let liar = Digest::of(b"something else");
    let manifest = serde_json::json!([{"Config": format!("{}.json", liar.hex()), "RepoTags": ["a:1"], "Layers": ["l.tar"]}]);
    let tar = tar_of(&[
        ("l.tar", Entry::File(layer.clone())),
        (&format!("{}.json", liar.hex()), Entry::File(config.clone())),
        (
            "manifest.json",
            Entry::File(serde_json::to_vec(&manifest).unwrap()),
        ),
    ]);
    expect_failure(
        "config-liar.tar",
        &tar,
        &[&liar.to_string(), &config_digest.to_string()],
    );

    // A layer whose content is not what the config's diff id says.
    let other = layer_tar(&[("y", b"y")]);
    let manifest =
        serde_json::json!([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["l.tar"]}]);
    let tar = tar_of(&[
        ("l.tar", Entry::File(other.clone())),
        ("c.json", Entry::File(config.clone())),
        (
            "manifest.json",
            Entry::File(serde_json::to_vec(&manifest).unwrap()),
        ),
    ]);
    expect_failure(
        "layer-liar.tar",
        &tar,
        &[
            &Digest::of(&layer).to_string(),
            &Digest::of(&other).to_string(),
        ],
    );

    // Two layers, the second lying: the first, already stored, is collected again.
    let config2 = config_json(&[Digest::of(&layer), Digest::of(&layer_tar(&[("z", b"z")]))]);
    let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["l.tar", "m.tar"]}]);
    let tar = tar_of(&[
        ("l.tar", Entry::File(layer.clone())),
        ("m.tar", Entry::File(other.clone())),
        ("c.json", Entry::File(config2)),
        (
            "manifest.json",
            Entry::File(serde_json::to_vec(&manifest).unwrap()),
        ),
    ]);
    expect_failure(
        "second-liar.tar",
        &tar,
        &["m.tar", &Digest::of(&other).to_string()],
    );

    // An OCI layout whose manifest descriptor lies.
    let (good, _, manifest_digest) = docker25_archive(
        "x",
        "docker.io/library/x:1",
        "1",
        std::slice::from_ref(&layer),
    );
    let fx = Fixture::new();
    let path = fx.path("good.tar");
    fs::write(&path, &good).unwrap();
    // Flip one byte of the manifest blob: same size, other digest.
    let text = String::from_utf8_lossy(&good).into_owned();
    let at = text.find("\"schemaVersion\":2").unwrap();
    let mut bad = good.clone();
    bad[at + 16] = b'3';
    // Read it as an OCI archive (no manifest.json): drop manifest.json by renaming the entry.
    let at = text.find("manifest.json").unwrap();
    bad[at..at + 13].copy_from_slice(b"manifest.jsox");
    let err = expect_failure(
        "oci-liar.tar",
        &rechecksum(&bad),
        &[&manifest_digest.to_string()],
    );
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
}

/// Recomputes every header checksum of a tar edited in place.
fn rechecksum(tar: &[u8]) -> Vec<u8> {
    let mut out = tar.to_vec();
    let mut pos = 0;
    while pos + 512 <= out.len() {
        let block = &mut out[pos..pos + 512];
        if block.iter().all(|b| *b == 0) {
            break;
        }
        let header = tar::Header::from_byte_slice(block);
        let size = header.entry_size().unwrap();
        let mut h = header.clone();
        h.set_cksum();
        block.copy_from_slice(h.as_bytes());
        pos += 512 + (size as usize).div_ceil(512) * 512;
    }
    out
}

#[test]
fn truncated_and_non_archives_are_refused() {
    let layer = layer_tar(&[("big", &vec![7u8; 100_000])]);
    let (tar, _) = docker_archive("t:1", &[layer]);
    // Cut in the middle of the layer's data.
    expect_failure("truncated.tar", &tar[..20_000], &["truncated.tar"]);
    // Truncated gzip stream.
    let gz = gzip(&tar);
    expect_failure(
        "truncated.tar.gz",
        &gz[..gz.len() / 2],
        &["truncated.tar.gz"],
    );
    let err = expect_failure(
        "junk.txt",
        b"this is not an archive at all\n",
        &["junk.txt", "not a tar"],
    );
    assert!(matches!(err, Error::NotAnArchive { .. }), "{err:?}");
    expect_failure("empty.tar", b"", &["empty.tar"]);
    // A tar, but of no image.
    let tar = tar_of(&[("hello.txt", Entry::File(b"hi".to_vec()))]);
    expect_failure(
        "rootfs.tar",
        &tar,
        &["rootfs.tar", "manifest.json", "index.json"],
    );
    expect_failure(
        "xz.tar.xz",
        &[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 0],
        &["xz"],
    );
}

#[test]
fn extracted_archives_load_as_directories_but_links_out_are_refused() {
    let fx = Fixture::new();
    let (tar, config) = docker_archive("dir:1", &[layer_tar(&[("d", b"d")])]);
    let dir = fx.path("extracted");
    tar::Archive::new(&tar[..]).unpack(&dir).unwrap();
    let store = fx.store("root");
    assert_eq!(load(&store, &dir).unwrap()[0].image.id, config);

    let layer = dir.join(format!("{:064x}", 1)).join("layer.tar");
    fs::remove_file(&layer).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &layer).unwrap();
    let other = fx.store("other");
    let err = load(&other, &dir).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err:?}");
    assert!(err.to_string().contains("leads out"), "{err}");
    assert_empty(&other, &fx.path("other"));
}

#[test]
fn docker25_manifest_without_layers_is_not_trusted() {
    // Docker 25.0.0 wrote OCI manifests listing only foreign layers: that manifest does not
    // describe the image, so one is built from manifest.json instead.
    let fx = Fixture::new();
    let layers = vec![layer_tar(&[("a", b"1")])];
    let (tar, config, manifest) =
        docker25_archive_with("b", "docker.io/library/b:1", "1", &layers, false);
    let path = fx.path("docker25.0.0.tar");
    fs::write(&path, tar).unwrap();
    let store = fx.store("root");
    let loaded = load(&store, &path).unwrap();
    assert_eq!(loaded[0].image.id, config);
    assert_ne!(loaded[0].image.manifest_digest, manifest);
    assert_eq!(loaded[0].image.layers.len(), 1);
}

#[test]
fn nested_indexes_resolve_to_this_platform() {
    // An oci-archive of a multi-platform image (`skopeo copy --all`): index.json → an
    // image index → one manifest per platform; ours is loaded, under the top entry's name.
    let fx = Fixture::new();
    let layer = layer_tar(&[("p", b"p")]);
    let config = config_json(&[Digest::of(&layer)]);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::of(&layer).to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let missing = Digest::of(b"a manifest for another platform, not in the archive");
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": missing.to_string(), "size": 10,
             "platform": {"architecture": "s390x", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(&manifest).to_string(),
             "size": manifest.len(), "platform": {"architecture": arch, "os": "linux"}},
        ],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": Digest::of(&nested).to_string(),
                       "size": nested.len(), "annotations": {"org.opencontainers.image.ref.name": "quay.io/multi/arch:2"}}],
    }))
    .unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", Digest::of(b).hex());
    let tar = tar_of(&[
        (
            "oci-layout",
            Entry::File(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ),
        (&blob(&layer), Entry::File(layer.clone())),
        (&blob(&config), Entry::File(config.clone())),
        (&blob(&manifest), Entry::File(manifest.clone())),
        (&blob(&nested), Entry::File(nested.clone())),
        ("index.json", Entry::File(index)),
    ]);
    let path = fx.path("multi.tar");
    fs::write(&path, tar).unwrap();
    let store = fx.store("root");
    let loaded = load(&store, &path).unwrap();
    assert_eq!(loaded[0].image.manifest_digest, Digest::of(&manifest));
    assert_eq!(loaded[0].image.names, ["quay.io/multi/arch:2"]);
}
