//! Helpers shared by the store, unpack and snapshot tests: a tar writer that can write what
//! tar::Builder refuses (`..`, absolute names: the attacks), root checks, tree listings.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// A raw ustar writer. Every entry may be preceded by PAX records (xattrs, long names).
#[derive(Default)]
pub struct Tar {
    buf: Vec<u8>,
}

pub struct Entry<'a> {
    pub kind: u8,
    pub name: &'a [u8],
    pub link: &'a [u8],
    pub data: &'a [u8],
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
    pub dev: (u32, u32),
}

impl Default for Entry<'_> {
    fn default() -> Self {
        Entry {
            kind: b'0',
            name: b"",
            link: b"",
            data: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            dev: (0, 0),
        }
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.entry(Entry {
            name: name.as_bytes(),
            data,
            ..Default::default()
        })
    }

    pub fn file_mode(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> &mut Tar {
        self.entry(Entry {
            name: name.as_bytes(),
            data,
            mode,
            uid,
            gid,
            ..Default::default()
        })
    }

    pub fn dir(&mut self, name: &str) -> &mut Tar {
        self.entry(Entry {
            kind: b'5',
            name: name.as_bytes(),
            mode: 0o755,
            ..Default::default()
        })
    }

    pub fn dir_mode(&mut self, name: &str, mode: u32, mtime: u64) -> &mut Tar {
        self.entry(Entry {
            kind: b'5',
            name: name.as_bytes(),
            mode,
            mtime,
            ..Default::default()
        })
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(Entry {
            kind: b'2',
            name: name.as_bytes(),
            link: target.as_bytes(),
            mode: 0o777,
            ..Default::default()
        })
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(Entry {
            kind: b'1',
            name: name.as_bytes(),
            link: target.as_bytes(),
            ..Default::default()
        })
    }

    pub fn fifo(&mut self, name: &str) -> &mut Tar {
        self.entry(Entry {
            kind: b'6',
            name: name.as_bytes(),
            mode: 0o640,
            ..Default::default()
        })
    }

    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) -> &mut Tar {
        self.entry(Entry {
            kind: b'3',
            name: name.as_bytes(),
            mode: 0o666,
            dev: (major, minor),
            ..Default::default()
        })
    }

    /// PAX records for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = body_len + 1;
            while len.to_string().len() + body_len != len {
                len = len.to_string().len() + body_len;
            }
            data.extend(format!("{len} {key}=").as_bytes());
            data.extend(*value);
            data.push(b'\n');
        }
        self.entry(Entry {
            kind: b'x',
            name: b"././@PaxHeader",
            data: &data,
            ..Default::default()
        })
    }

    pub fn entry(&mut self, e: Entry<'_>) -> &mut Tar {
        let mut h = [0u8; 512];
        let name = if e.name.len() > 100 {
            &e.name[..100]
        } else {
            e.name
        };
        h[..name.len()].copy_from_slice(name);
        octal(&mut h[100..108], e.mode as u64);
        octal(&mut h[108..116], e.uid as u64);
        octal(&mut h[116..124], e.gid as u64);
        octal(&mut h[124..136], e.data.len() as u64);
        octal(&mut h[136..148], e.mtime);
        h[156] = e.kind;
        let link = if e.link.len() > 100 {
            &e.link[..100]
        } else {
            e.link
        };
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], e.dev.0 as u64);
        octal(&mut h[337..345], e.dev.1 as u64);
        h[148..156].fill(b' ');
        let sum: u64 = h.iter().map(|b| *b as u64).sum();
        let cks = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(cks.as_bytes());
        self.buf.extend_from_slice(&h);
        self.buf.extend_from_slice(e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Whether the test may do what needs root; prints why not (panics under BERTH_REQUIRE_ROOT=1).
pub fn root_or_skip(what: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{what}: needs root (BERTH_REQUIRE_ROOT=1)");
    }
    eprintln!("skipped: {what} needs root");
    false
}

pub fn tool_or_skip(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
            panic!("{tool} is not installed (BERTH_REQUIRE_ROOT=1)");
        }
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// One line per path below `root`: type, mode, owner, and content digest / link target /
/// device; files that are one inode among the paths shown say which path they share it with
/// (the first in order), whatever their link count says (overlay reports a lower inode's
/// own count).
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    let mut groups: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    for (path, inode) in &inodes {
        groups.entry(*inode).or_default().push(path.clone());
    }
    for paths in groups.values().filter(|p| p.len() > 1) {
        for path in paths {
            if let Some(line) = out.get_mut(path) {
                line.push_str(&format!(" linked-with {}", paths[0]));
            }
        }
    }
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, String>,
    inodes: &mut BTreeMap<String, (u64, u64)>,
) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!(
                "symlink -> {}",
                std::fs::read_link(&path).unwrap().display()
            )
        } else if ft.is_file() {
            let data = std::fs::read(&path).unwrap();
            inodes.insert(rel.clone(), (meta.dev(), meta.ino()));
            format!("file {} bytes {:x}", data.len(), md5ish(&data))
        } else if ft.is_char_device() {
            format!("char {:x}", meta.rdev())
        } else if ft.is_block_device() {
            format!("block {:x}", meta.rdev())
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            meta.mode() & 0o7777
        };
        out.insert(
            rel.clone(),
            format!("{what} mode {mode:o} owner {}:{}", meta.uid(), meta.gid()),
        );
        if ft.is_dir() {
            walk(root, &path, out, inodes);
        }
    }
}

fn md5ish(data: &[u8]) -> u64 {
    // FNV-1a: enough to tell contents apart in a test.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Unmounts on drop (also when the test fails).
pub struct Mounted(pub std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = berth_image::unmount_rootfs(&self.0);
    }
}

/// An image of many layers, mounted: see [`mount_many_layers`].
pub struct ManyLayers {
    /// Declared first, so dropped first: the unmount comes before the temp dir goes.
    pub guard: Mounted,
    pub target: std::path::PathBuf,
    /// Holds the store.
    pub tmp: tempfile::TempDir,
    /// The length of the layers' dirs joined as one `lowerdir=` list would be.
    pub joined_lowers: usize,
}

/// An image of `count` layers, each adding `layerNNN` and overwriting `top`, mounted with the
/// overlay driver at `<tmp>/c/rootfs`; checks that every layer shows and the last is on top.
pub fn mount_many_layers(count: usize) -> ManyLayers {
    let tmp = tempfile::tempdir().unwrap();
    let store = berth_image::Store::open(&tmp.path().join("store")).unwrap();
    let layers: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            Tar::new()
                .file(&format!("layer{i:03}"), format!("{i}").as_bytes())
                .file("top", format!("{i}").as_bytes())
                .finish()
        })
        .collect();
    let image = image_from(&store, &layers, None);
    let joined_lowers = image
        .layers
        .iter()
        .map(|l| store.layer_dir(&l.diff_id).as_os_str().len() + 1)
        .sum();
    let container = tmp.path().join("c");
    let rootfs = store
        .rootfs_with(&image, &container, berth_image::snapshot::Driver::Overlay)
        .unwrap();
    let target = container.join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    rootfs.mount(&target).unwrap();
    let guard = Mounted(target.clone());
    for i in 0..count {
        assert!(target.join(format!("layer{i:03}")).is_file(), "layer {i}");
    }
    assert_eq!(
        std::fs::read_to_string(target.join("top")).unwrap(),
        format!("{}", count - 1),
        "the last layer is on top"
    );
    ManyLayers {
        guard,
        target,
        tmp,
        joined_lowers,
    }
}

/// Stores `layers` (tar streams, any compression) as one image named `name`.
pub fn image_from(
    store: &berth_image::Store,
    layers: &[Vec<u8>],
    name: Option<&str>,
) -> berth_image::Image {
    let mut infos = Vec::new();
    for layer in layers {
        infos.push(store.put_layer_stream(&mut &layer[..], &|_| {}).unwrap());
    }
    let diff_ids: Vec<String> = infos.iter().map(|l| l.diff_id.to_string()).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = store.put_blob_bytes(&config).unwrap();
    let layer_descs: Vec<_> = infos
        .iter()
        .map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.blob.to_string(), "size": l.size}))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": layer_descs,
    });
    let names: Vec<berth_image::Reference> = name
        .iter()
        .map(|n| berth_image::Reference::parse(n).unwrap())
        .collect();
    store
        .add_image(&serde_json::to_vec(&manifest).unwrap(), &names)
        .unwrap()
}
