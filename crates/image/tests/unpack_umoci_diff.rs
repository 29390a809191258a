//! Differential: the tree a container gets from an image (berth's unpack, then the overlay
//! mount and the vfs copy) equals what `umoci unpack` makes of the same OCI image: paths,
//! types, modes, owners, contents, link targets, hard-link groups, devices.

mod unpack_support;

use std::path::Path;
use std::process::Command;

use berth_image::snapshot::Driver;
use berth_image::{Digest, Store};
use serde_json::{Value, json};
use unpack_support::{Mounted, Tar, gzip, root_or_skip, tool_or_skip, tree};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes an OCI layout at `dir` with one image `tag` made of `layers` (blobs as given:
/// plain or gzip tars).
fn write_layout(dir: &Path, tag: &str, layers: &[(Vec<u8>, &str)]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let put = |bytes: &[u8]| {
        let d = Digest::of(bytes);
        std::fs::write(blobs.join(d.hex()), bytes).unwrap();
        d
    };
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (blob, media_type) in layers {
        let plain = if blob.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut out)
                .unwrap();
            out
        } else {
            blob.clone()
        };
        diff_ids.push(Digest::of(&plain).to_string());
        descs.push(
            json!({"mediaType": media_type, "digest": put(blob).to_string(), "size": blob.len()}),
        );
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest.to_string(),
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Stores the image `tag` of an OCI layout the way a pull does: each blob verified.
fn store_from_layout(store: &Store, dir: &Path, tag: &str) -> berth_image::Image {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest = std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap();
    store_manifest(store, &manifest, blob)
}

/// Stores the config and layers `manifest` names (each blob read from `blob(digest)`,
/// verified as a pull verifies it), then the image.
fn store_manifest(
    store: &Store,
    manifest: &[u8],
    blob: impl Fn(&str) -> std::path::PathBuf,
) -> berth_image::Image {
    let m: Value = serde_json::from_slice(manifest).unwrap();
    let config = m["config"]["digest"].as_str().unwrap();
    store
        .put_blob(
            Some(&Digest::parse(config).unwrap()),
            &mut std::fs::File::open(blob(config)).unwrap(),
        )
        .unwrap();
    for layer in m["layers"].as_array().unwrap() {
        let d = layer["digest"].as_str().unwrap();
        store
            .put_layer(
                &Digest::parse(d).unwrap(),
                &mut std::fs::File::open(blob(d)).unwrap(),
                &|_| {},
            )
            .unwrap();
    }
    store.add_image(manifest, &[]).unwrap()
}

/// umoci's tree and berth's (overlay and vfs) for the image `tag` of the layout `dir`.
fn compare(dir: &Path, tag: &str, work: &Path) -> std::collections::BTreeMap<String, String> {
    let expected = umoci_tree(dir, tag, &work.join("umoci"));
    let store = Store::open(&work.join("store")).unwrap();
    let image = store_from_layout(&store, dir, tag);
    assert_berth_trees(&expected, &store, &image, work);
    expected
}

/// What `umoci unpack` makes of the image `tag` of the layout `dir`.
fn umoci_tree(dir: &Path, tag: &str, work: &Path) -> std::collections::BTreeMap<String, String> {
    let bundle = work.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", dir.display()))
        .arg(&bundle));
    let expected = tree(&bundle.join("rootfs"));
    assert!(!expected.is_empty());
    expected
}

/// The overlay mount and the vfs copy of `image` both show `expected`.
fn assert_berth_trees(
    expected: &std::collections::BTreeMap<String, String>,
    store: &Store,
    image: &berth_image::Image,
    work: &Path,
) {
    let container = work.join("container");
    let rootfs = store
        .rootfs_with(image, &container, Driver::Overlay)
        .unwrap();
    let target = container.join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    rootfs.mount(&target).unwrap();
    let _guard = Mounted(target.clone());
    let overlay = tree(&target);
    let differences: Vec<_> = expected
        .iter()
        .filter(|(k, v)| overlay.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: umoci {v} / berth {:?}", overlay.get(k)))
        .chain(
            overlay
                .keys()
                .filter(|k| !expected.contains_key(*k))
                .map(|k| format!("{k}: only in berth")),
        )
        .collect();
    assert!(
        differences.is_empty(),
        "overlay differs from umoci:\n{}",
        differences.join("\n")
    );

    store
        .rootfs_with(image, &work.join("vfs-container"), Driver::Vfs)
        .unwrap();
    assert_eq!(
        &tree(&work.join("vfs-container/vfs")),
        expected,
        "vfs differs from umoci"
    );
}

#[test]
fn handmade_layers_unpack_as_umoci_unpacks_them() {
    if !root_or_skip("overlay mounts and umoci as root") || !tool_or_skip("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let long_dir = format!("long/{}", "d".repeat(110));
    let base = Tar::new()
        .dir("etc")
        .file_mode("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644, 0, 0)
        .file_mode("etc/shadow", b"root:*:1::::::\n", 0o640, 0, 42)
        .file("etc/gone", b"deleted by the next layer")
        .dir("bin")
        .file_mode("bin/busybox", b"\x7fELF...", 0o755, 0, 0)
        .file_mode("bin/su", b"su", 0o4755, 0, 0)
        .file_mode("bin/wall", b"wall", 0o2755, 0, 5)
        .symlink("bin/sh", "busybox")
        .symlink("bin/abs", "/bin/busybox")
        .hardlink("bin/ls", "bin/busybox")
        .hardlink("bin/cat", "bin/busybox")
        .dir("opaque")
        .file("opaque/old1", b"o1")
        .dir("opaque/sub")
        .file("opaque/sub/old2", b"o2")
        .dir("replaced")
        .file("replaced/inner", b"i")
        .dir_mode("tmp", 0o1777, 1)
        .file_mode("home/user/.profile", b"export A=1\n", 0o600, 1000, 100)
        .fifo("run/fifo")
        .char_dev("dev/null", 1, 3)
        .pax(&[("path", format!("{long_dir}/{}", "f".repeat(120)).as_bytes())])
        .file("x", b"long name")
        .finish();
    let upper = Tar::new()
        .file("etc/.wh.gone", b"")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/new", b"n")
        .file("replaced/.wh..wh..opq", b"")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/ash\n")
        .symlink("etc/motd", "/dev/null")
        .file_mode("bin/busybox", b"\x7fELF v2", 0o755, 0, 0)
        .hardlink("bin/ls", "bin/busybox")
        .finish();
    let top = gzip(
        &Tar::new()
            .file(".wh.replaced", b"")
            .file("replaced", b"now a file")
            .file("home/user/.wh..profile", b"")
            .file_mode("home/user/new", b"n", 0o640, 1000, 100)
            .finish(),
    );
    let layout = tmp.path().join("layout");
    write_layout(
        &layout,
        "test",
        &[
            (base, "application/vnd.oci.image.layer.v1.tar"),
            (upper, "application/vnd.oci.image.layer.v1.tar"),
            (top, "application/vnd.oci.image.layer.v1.tar+gzip"),
        ],
    );
    let tree = compare(&layout, "test", tmp.path());
    // The comparison covered what it is meant to.
    let has = |path: &str, what: &str| tree.get(path).is_some_and(|l| l.contains(what));
    assert!(has("bin/ls", "linked-with bin/busybox"));
    assert!(!has("bin/cat", "linked-with"));
    assert!(has("bin/su", "mode 4755"));
    assert!(has("run/fifo", "fifo") && has("dev/null", "char 103"));
    assert!(
        has("replaced", "file")
            && !tree.contains_key("etc/gone")
            && !tree.contains_key("opaque/old1")
    );
    assert!(tree.keys().any(|k| k.len() > 200), "long name");
    assert!(!tree.contains_key("home/user/.profile") && has("home/user/new", "owner 1000:100"));
}

/// An image built with umoci in an OCI layout (`DIR/oci`, tag `img`): busybox with a setuid
/// bit and a hard link, then a layer of deletions, a directory replaced by a file and a file
/// of another owner.
fn umoci_image(tmp: &Path) -> std::path::PathBuf {
    let layout = tmp.join("oci");
    let image = format!("{}:img", layout.display());
    let bundle = tmp.join("build");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let root = bundle.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "ls", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    std::fs::write(root.join("etc/conf.d/a"), b"a").unwrap();
    std::fs::write(root.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    std::fs::hard_link(root.join("etc/hosts"), root.join("etc/hosts.bak")).unwrap();
    run(Command::new("chmod")
        .arg("4755")
        .arg(root.join("bin/busybox")));
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    // A second layer: deletions (whiteouts), a replaced directory, new files.
    std::fs::remove_file(root.join("etc/hosts.bak")).unwrap();
    std::fs::remove_dir_all(root.join("etc/conf.d")).unwrap();
    std::fs::write(root.join("etc/conf.d"), b"now a file").unwrap();
    std::fs::write(root.join("etc/new"), b"new").unwrap();
    run(Command::new("chown")
        .arg("1000:1000")
        .arg(root.join("etc/new")));
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    layout
}

#[test]
fn umoci_built_images_unpack_as_umoci_unpacks_them() {
    if !root_or_skip("overlay mounts and umoci as root") || !tool_or_skip("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = umoci_image(tmp.path());
    let tree = compare(&layout, "img", &tmp.path().join("compare"));
    assert!(tree["etc/conf.d"].starts_with("file") && !tree.contains_key("etc/hosts.bak"));
    assert!(tree["bin/busybox"].contains("mode 4755"));
}

/// The same umoci-built image as docker v2s2 (skopeo's dir: form) and with zstd layers, and a
/// handmade image of 140 layers: each tree equals umoci's of the original.
#[test]
fn v2s2_zstd_and_many_layers_unpack_as_umoci_unpacks_them() {
    if !root_or_skip("overlay mounts and umoci as root")
        || !tool_or_skip("umoci")
        || !tool_or_skip("skopeo")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = umoci_image(tmp.path());
    let expected = umoci_tree(&layout, "img", &tmp.path().join("umoci"));
    let src = format!("oci:{}:img", layout.display());

    // zstd: an OCI layout whose layers skopeo recompressed
    let zstd = tmp.path().join("zstd");
    run(Command::new("skopeo")
        .args(["copy", "--dest-compress-format", "zstd", &src])
        .arg(format!("oci:{}:img", zstd.display())));
    let store = Store::open(&tmp.path().join("store-zstd")).unwrap();
    let image = store_from_layout(&store, &zstd, "img");
    let index: Value =
        serde_json::from_slice(&std::fs::read(zstd.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            zstd.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["mediaType"].as_str().unwrap().ends_with("+zstd")),
        "{manifest}"
    );
    assert_berth_trees(&expected, &store, &image, &tmp.path().join("zstd-work"));

    // docker v2s2: skopeo's dir: layout (manifest.json, blobs by hex)
    let v2 = tmp.path().join("v2s2");
    run(Command::new("skopeo")
        .args(["copy", "--format", "v2s2", &src])
        .arg(format!("dir:{}", v2.display())));
    let store = Store::open(&tmp.path().join("store-v2s2")).unwrap();
    let image = store_from_skopeo_dir(&store, &v2);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(v2.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_berth_trees(&expected, &store, &image, &tmp.path().join("v2s2-work"));

    // 140 layers, more than one mount's options hold by path: each adds a file and removes
    // the one before
    let layers: Vec<(Vec<u8>, &str)> = (0..140)
        .map(|i| {
            let mut t = Tar::new();
            t.file(&format!("layer/{i}"), format!("{i}").as_bytes());
            if i > 0 {
                t.file(&format!("layer/.wh.{}", i - 1), b"");
            }
            (
                gzip(&t.finish()),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        })
        .collect();
    let many = tmp.path().join("many");
    write_layout(&many, "many", &layers);
    let tree = compare(&many, "many", &tmp.path().join("many-work"));
    assert!(
        tree.contains_key("layer/139") && !tree.contains_key("layer/138"),
        "{tree:?}"
    );
}

/// Stores the image of a skopeo `dir:` copy (manifest.json and blobs named by their hex).
fn store_from_skopeo_dir(store: &Store, dir: &Path) -> berth_image::Image {
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    store_manifest(store, &manifest, |d| {
        dir.join(d.trim_start_matches("sha256:"))
    })
}
