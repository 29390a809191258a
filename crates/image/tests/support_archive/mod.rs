//! Fixtures for the archive tests: images built by umoci, converted by skopeo, loaded and
//! saved by podman on a private storage, and handmade archives (Docker >= 25's layout,
//! attacks). Each tool missing (or not root) makes its tests skip, or fail under
//! BERTH_REQUIRE_ROOT=1.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_image::{Digest, Store};

/// True when `tools` are installed and we are root; else says why it skips (or panics when
/// BERTH_REQUIRE_ROOT=1).
pub fn can_run(test: &str, tools: &[&str]) -> bool {
    let mut missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if !rustix::process::geteuid().is_root() {
        missing.push("root");
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test}: needs {}", missing.join(", "));
    }
    eprintln!("skipped: {test}: needs {}", missing.join(", "));
    false
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh temp dir and a store in it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::Builder::new()
                .prefix("berth-archive-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store(&self, name: &str) -> Store {
        Store::open(&self.path(name)).unwrap()
    }

    /// An OCI layout `oci` built with umoci: image `tag` with one layer per entry of
    /// `layers` (each a list of (path, content)), CMD /bin/sh. Returns the layout dir.
    pub fn umoci_image(&self, tag: &str, layers: &[&[(&str, &str)]]) -> PathBuf {
        let layout = self.path("oci");
        if !layout.join("index.json").exists() {
            run(Command::new("umoci")
                .args(["init", "--layout"])
                .arg(&layout));
        }
        let image = format!("{}:{tag}", layout.display());
        run(Command::new("umoci").args(["new", "--image", &image]));
        for (i, files) in layers.iter().enumerate() {
            let bundle = self.path(&format!("bundle-{tag}-{i}"));
            run(Command::new("umoci")
                .args(["unpack", "--image", &image])
                .arg(&bundle));
            for (path, content) in files.iter() {
                let target = bundle.join("rootfs").join(path);
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::write(&target, content).unwrap();
            }
            run(Command::new("umoci")
                .args(["repack", "--image", &image])
                .arg(&bundle));
            fs::remove_dir_all(&bundle).unwrap();
        }
        run(Command::new("umoci").args(["config", "--image", &image, "--config.cmd", "/bin/sh"]));
        layout
    }

    /// `skopeo copy SRC DEST`.
    pub fn skopeo_copy(&self, src: &str, dest: &str) {
        run(Command::new("skopeo").args(["copy", "-q", src, dest]));
    }
}

/// The manifest of `tag` in the OCI layout `layout`: (manifest digest, config digest, layer digests).
pub fn layout_image(layout: &Path, tag: &str) -> (Digest, Digest, Vec<Digest>) {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {index}"));
    let manifest_digest = Digest::parse(desc["digest"].as_str().unwrap()).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(layout, &manifest_digest)).unwrap();
    let config = Digest::parse(manifest["config"]["digest"].as_str().unwrap()).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| Digest::parse(l["digest"].as_str().unwrap()).unwrap())
        .collect();
    (manifest_digest, config, layers)
}

pub fn blob(layout: &Path, digest: &Digest) -> Vec<u8> {
    fs::read(layout.join("blobs/sha256").join(digest.hex())).unwrap()
}

/// podman with a private storage under `dir` (vfs: no mounts to clean up), and the
/// containers.conf this host needs (no CAP_SYS_RESOURCE: podman's default nofile cannot be set).
pub struct Podman {
    dir: PathBuf,
}

impl Podman {
    pub fn new(dir: &Path) -> Podman {
        fs::create_dir_all(dir.join("tmp")).unwrap();
        let conf = format!(
            "[containers]\nnetns = \"none\"\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{0}/events.log\"\ntmp_dir = \"{0}/tmp\"\n",
            dir.display()
        );
        fs::write(dir.join("containers.conf"), conf).unwrap();
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
            dir.display()
        );
        fs::write(dir.join("storage.conf"), storage).unwrap();
        Podman {
            dir: dir.to_path_buf(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs"]);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> String {
        run(self.cmd().args(args))
    }

    /// `podman image inspect`'s first object.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.run(&["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0].clone()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Images only (vfs: plain directories); the temp dir goes with the fixture.
        let _ = self.cmd().args(["rmi", "-af"]).output();
    }
}

// ---------------------------------------------------------------- handmade archives

/// A layer tar holding `files`, deterministic.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *content).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image config for layers whose diff ids are `diff_ids`.
pub fn config_json(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

/// Entries of a tar to write: name → content, symlinks as `Link(target)`.
pub enum Entry {
    File(Vec<u8>),
    Symlink(String),
    Dir,
}

/// A tar of `entries` in order (names taken as given, even `../x`: that is the point).
pub fn tar_of(entries: &[(&str, Entry)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, entry) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        // Raw name bytes: tar::Builder refuses '..', which is what some tests need.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        match entry {
            Entry::File(content) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(content.len() as u64);
                h.set_cksum();
                out.extend_from_slice(h.as_bytes());
                out.extend_from_slice(content);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            Entry::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                h.set_link_name(target).unwrap();
                h.set_cksum();
                out.extend_from_slice(h.as_bytes());
            }
            Entry::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_cksum();
                out.extend_from_slice(h.as_bytes());
            }
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A classic docker-archive (docker < 25) of one image named `name` with `layers`
/// (uncompressed tars): `<id>/layer.tar`, `<config hex>.json`, manifest.json, repositories.
pub fn docker_archive(name: &str, layers: &[Vec<u8>]) -> (Vec<u8>, Digest) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    let config = config_json(&diff_ids);
    let config_digest = Digest::of(&config);
    let mut entries = Vec::new();
    let mut paths = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let dir = format!("{:064x}", i + 1);
        paths.push(format!("{dir}/layer.tar"));
        entries.push((format!("{dir}/layer.tar"), Entry::File(layer.clone())));
    }
    let manifest = serde_json::json!([{"Config": format!("{}.json", config_digest.hex()), "RepoTags": [name], "Layers": paths}]);
    entries.push((format!("{}.json", config_digest.hex()), Entry::File(config)));
    entries.push((
        "manifest.json".to_string(),
        Entry::File(serde_json::to_vec(&manifest).unwrap()),
    ));
    let refs: Vec<(&str, Entry)> = entries
        .iter()
        .map(|(n, e)| (n.as_str(), clone_entry(e)))
        .collect();
    (tar_of(&refs), config_digest)
}

fn clone_entry(e: &Entry) -> Entry {
    match e {
        Entry::File(c) => Entry::File(c.clone()),
        Entry::Symlink(t) => Entry::Symlink(t.clone()),
        Entry::Dir => Entry::Dir,
    }
}

/// A docker-archive exactly as Docker >= 25 lays it out (image/tarexport/save.go): blobs
/// under blobs/sha256/ (config, uncompressed layers, the OCI manifest), index.json with
/// containerd's name and the tag as ref.name, oci-layout, manifest.json (Go's encoder: a
/// trailing newline) pointing into blobs/, repositories keyed by the top diff id. Returns
/// the archive, the config digest and the manifest digest.
pub fn docker25_archive(
    name: &str,
    full_name: &str,
    tag: &str,
    layers: &[Vec<u8>],
) -> (Vec<u8>, Digest, Digest) {
    docker25_archive_with(name, full_name, tag, layers, true)
}

/// [`docker25_archive`]; `manifest_layers: false` writes the manifest blob as Docker 25.0.0
/// did, listing only foreign layers (so none here).
pub fn docker25_archive_with(
    name: &str,
    full_name: &str,
    tag: &str,
    layers: &[Vec<u8>],
    manifest_layers: bool,
) -> (Vec<u8>, Digest, Digest) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    let config = config_json(&diff_ids);
    let config_digest = Digest::of(&config);
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .zip(&diff_ids)
        .map(|(l, d)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": l.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len(),
                   "platform": {"architecture": "amd64", "os": "linux"}},
        "layers": if manifest_layers { layer_descs } else { Vec::new() },
    }))
    .unwrap();
    let manifest_digest = Digest::of(&manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": full_name, "org.opencontainers.image.ref.name": tag},
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    }))
    .unwrap();
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (l, d) in layers.iter().zip(&diff_ids) {
        blobs.insert(d.hex(), l.clone());
    }
    blobs.insert(config_digest.hex(), config.clone());
    blobs.insert(manifest_digest.hex(), manifest.clone());
    let v1 = br#"{"created":"1970-01-01T00:00:00Z","os":"linux"}"#.to_vec();
    blobs.insert(Digest::of(&v1).hex(), v1);
    let mut manifest_json = serde_json::to_vec(&serde_json::json!([{
        "Config": format!("blobs/sha256/{}", config_digest.hex()),
        "RepoTags": [format!("{name}:{tag}")],
        "Layers": diff_ids.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect::<Vec<_>>(),
    }]))
    .unwrap();
    manifest_json.push(b'\n');
    let mut repositories =
        serde_json::to_vec(&serde_json::json!({name: {tag: diff_ids.last().unwrap().hex()}}))
            .unwrap();
    repositories.push(b'\n');
    // archive.Tar walks the directory in lexical order.
    let mut entries: Vec<(String, Entry)> = vec![
        ("blobs/".into(), Entry::Dir),
        ("blobs/sha256/".into(), Entry::Dir),
    ];
    for (hex, content) in blobs {
        entries.push((format!("blobs/sha256/{hex}"), Entry::File(content)));
    }
    entries.push(("index.json".into(), Entry::File(index)));
    entries.push(("manifest.json".into(), Entry::File(manifest_json)));
    entries.push((
        "oci-layout".into(),
        Entry::File(br#"{"imageLayoutVersion": "1.0.0"}"#.to_vec()),
    ));
    entries.push(("repositories".into(), Entry::File(repositories)));
    let refs: Vec<(&str, Entry)> = entries
        .iter()
        .map(|(n, e)| (n.as_str(), clone_entry(e)))
        .collect();
    (tar_of(&refs), config_digest, manifest_digest)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// The store holds no image and no blob (a failed load left nothing behind).
pub fn assert_empty(store: &Store, root: &Path) {
    assert!(store.list().unwrap().is_empty(), "images were recorded");
    let blobs = fs::read_dir(root.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "blobs were stored");
}
