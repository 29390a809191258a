//! What a layer unpacks to: every kind of entry, with its metadata, and whiteouts in
//! overlay's form.

mod unpack_support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use berth_image::Store;
use unpack_support::{Tar, gzip, root_or_skip};

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    rustix::fs::lgetxattr(path, name, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

#[test]
fn entries_keep_types_owners_modes_times_and_xattrs() {
    if !root_or_skip("unpacking owners, devices and capabilities") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    // A file capability as setcap writes it (cap_net_bind_service+ep, v2).
    let cap: &[u8] = &[0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let long = format!("deep/{}/file", "n".repeat(150));
    let tar = Tar::new()
        .dir_mode("etc", 0o750, 1_500_000_000)
        .file_mode("etc/shadow", b"secret", 0o640, 0, 42)
        .file_mode("bin/su", b"su", 0o4755, 0, 0)
        .pax(&[
            ("SCHILY.xattr.security.capability", cap),
            ("SCHILY.xattr.user.note", b"hi"),
        ])
        .file_mode("bin/ping", b"ping", 0o755, 0, 0)
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("forged")
        .symlink("bin/sh", "busybox")
        .hardlink("bin/su2", "bin/su")
        .fifo("run/fifo")
        .char_dev("dev/null", 1, 3)
        .pax(&[("path", long.as_bytes())])
        .file("placeholder", b"long")
        .file_mode("home/u/f", b"user", 0o600, 1000, 1000)
        .finish();
    let layer = store
        .put_layer_stream(&mut &gzip(&tar)[..], &|_| {})
        .unwrap();
    let dir = store.layer_dir(&layer.diff_id);

    let shadow = std::fs::metadata(dir.join("etc/shadow")).unwrap();
    assert_eq!(
        (shadow.mode() & 0o7777, shadow.uid(), shadow.gid()),
        (0o640, 0, 42)
    );
    assert_eq!(std::fs::read(dir.join("etc/shadow")).unwrap(), b"secret");
    let su = std::fs::metadata(dir.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(su.mtime(), 1_600_000_000);
    assert_eq!(
        xattr(&dir.join("bin/ping"), "security.capability").as_deref(),
        Some(cap)
    );
    assert_eq!(
        xattr(&dir.join("bin/ping"), "user.note").as_deref(),
        Some(&b"hi"[..])
    );
    assert_eq!(
        xattr(&dir.join("forged"), "trusted.overlay.opaque"),
        None,
        "overlay xattrs from an image are dropped"
    );
    assert_eq!(
        std::fs::read_link(dir.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    assert_eq!(
        std::fs::metadata(dir.join("bin/su2")).unwrap().ino(),
        su.ino(),
        "hard link"
    );
    assert!(
        std::fs::symlink_metadata(dir.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let null = std::fs::symlink_metadata(dir.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (rustix::fs::makedev(1, 3), 0o666)
    );
    assert_eq!(
        std::fs::read(dir.join(&long)).unwrap(),
        b"long",
        "PAX long name"
    );
    let home = std::fs::metadata(dir.join("home/u/f")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 1000));
    // Directory times are set after their children were created.
    let etc = std::fs::metadata(dir.join("etc")).unwrap();
    assert_eq!((etc.mtime(), etc.mode() & 0o7777), (1_500_000_000, 0o750));
    // Implicit parents are root's 0755.
    assert_eq!(
        std::fs::metadata(dir.join("bin")).unwrap().mode() & 0o7777,
        0o755
    );
}

#[test]
fn gnu_long_names_and_plain_tars_from_tar_builder() {
    if !root_or_skip("unpacking") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, &long, &b"abc"[..])
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let layer = store.put_layer_stream(&mut &tar[..], &|_| {}).unwrap();
    assert_eq!(layer.blob, layer.diff_id, "a plain tar is its own diff");
    assert_eq!(
        std::fs::read(store.layer_dir(&layer.diff_id).join(&long)).unwrap(),
        b"abc"
    );
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !root_or_skip("creating whiteout devices") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let tar = Tar::new()
        .file("etc/.wh.gone", b"")
        .dir("opaque")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/new", b"n")
        .file("x/.wh..wh.plnk", b"")
        .finish();
    let zstd = zstd::encode_all(&tar[..], 3).unwrap();
    let layer = store.put_layer_stream(&mut &zstd[..], &|_| {}).unwrap();
    let dir = store.layer_dir(&layer.diff_id);
    let gone = std::fs::symlink_metadata(dir.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!dir.join("etc/.wh.gone").exists());
    assert_eq!(
        xattr(&dir.join("opaque"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dir.join("opaque/.wh..wh..opq").exists());
    assert!(dir.join("opaque/new").exists());
    assert!(!dir.join("x/.wh..wh.plnk").exists());
}

#[test]
fn one_unpack_per_layer_and_streams_are_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let tar = Tar::new().file("a", b"1").finish();
    let gz = gzip(&tar);
    let blob = berth_image::Digest::of(&gz);
    let seen = std::sync::atomic::AtomicU64::new(0);
    let first = store
        .put_layer(&blob, &mut &gz[..], &|n| {
            seen.store(n, std::sync::atomic::Ordering::Relaxed)
        })
        .unwrap();
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::Relaxed),
        gz.len() as u64,
        "progress reports the total"
    );
    assert_eq!(first.blob, blob);
    assert_eq!(first.diff_id, berth_image::Digest::of(&tar));
    assert_eq!(
        (first.size, first.diff_size),
        (gz.len() as u64, tar.len() as u64)
    );
    assert_eq!(first.compression, berth_image::unpack::Compression::Gzip);
    let again = store.put_layer(&blob, &mut &gz[..], &|_| {}).unwrap();
    assert_eq!(again, first);
    // Already there: a stream that does not match is still refused.
    let err = store.put_layer(&blob, &mut &tar[..], &|_| {}).unwrap_err();
    assert!(err.to_string().contains(&blob.to_string()), "{err}");
    // The same diff, another compression: one layer dir.
    let plain = store.put_layer_stream(&mut &tar[..], &|_| {}).unwrap();
    assert_eq!(plain.diff_id, first.diff_id);
    let dirs = std::fs::read_dir(tmp.path().join("store/layers"))
        .unwrap()
        .count();
    assert_eq!(dirs, 2, "by-blob + one layer dir");
}
