//! Container roots from images: overlay mounts really mounted and looked into, the vfs
//! copy, many layers, no layers.

mod unpack_support;

use berth_image::snapshot::Driver;
use berth_image::{Store, unmount_rootfs};
use unpack_support::{Mounted, Tar, gzip, image_from, mount_many_layers, root_or_skip, tree};

fn layers() -> Vec<Vec<u8>> {
    vec![
        Tar::new()
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
            .file("etc/gone", b"bye")
            .file("opaque/old", b"old")
            .file_mode("bin/su", b"su", 0o4755, 0, 0)
            .symlink("bin/sh", "su")
            .finish(),
        gzip(
            &Tar::new()
                .file("etc/.wh.gone", b"")
                .dir("opaque")
                .file("opaque/.wh..wh..opq", b"")
                .file("opaque/new", b"new")
                .file("etc/hostname", b"box")
                .finish(),
        ),
    ]
}

fn expect_merged(root: &std::path::Path) {
    assert_eq!(
        std::fs::read(root.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"box");
    assert!(
        !root.join("etc/gone").exists(),
        "whiteout hides the lower file"
    );
    assert!(
        !root.join("opaque/old").exists(),
        "opaque dir hides the lower content"
    );
    assert_eq!(std::fs::read(root.join("opaque/new")).unwrap(), b"new");
    assert_eq!(
        std::fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("su")
    );
}

#[test]
fn overlay_root_shows_the_layers_merged_and_keeps_changes_in_upper() {
    if !root_or_skip("overlay mounts") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let image = image_from(&store, &layers(), Some("localhost/merge:latest"));
    let container = tmp.path().join("container");
    let rootfs = store
        .rootfs_with(&image, &container, Driver::Overlay)
        .unwrap();
    assert_eq!(rootfs.driver(), "overlay");
    let target = container.join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    rootfs.mount(&target).unwrap();
    let guard = Mounted(target.clone());
    expect_merged(&target);
    std::fs::write(target.join("etc/new"), b"written").unwrap();
    assert_eq!(
        std::fs::read(container.join("upper/etc/new")).unwrap(),
        b"written"
    );
    let lower = store.layer_dir(&image.layers[0].diff_id);
    assert!(!lower.join("etc/new").exists(), "layers are never written");
    drop(guard);
    unmount_rootfs(&target).unwrap(); // twice is fine
    assert!(!target.join("etc").exists(), "unmounted");
}

#[test]
fn vfs_root_is_a_full_copy_with_whiteouts_applied() {
    if !root_or_skip("bind mounts") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let image = image_from(&store, &layers(), None);
    let container = tmp.path().join("container");
    let rootfs = store.rootfs_with(&image, &container, Driver::Vfs).unwrap();
    assert_eq!(rootfs.driver(), "vfs");
    let copy = container.join("vfs");
    expect_merged(&copy);
    assert!(
        std::fs::symlink_metadata(copy.join("etc/gone")).is_err(),
        "no whiteout device in the copy"
    );
    let target = container.join("rootfs");
    std::fs::create_dir_all(&target).unwrap();
    rootfs.mount(&target).unwrap();
    let _guard = Mounted(target.clone());
    assert_eq!(tree(&copy), tree(&target));
    // Once made, the same container dir keeps its driver.
    assert_eq!(store.rootfs(&image, &container).unwrap().driver(), "vfs");
}

#[test]
fn overlay_and_vfs_give_the_same_tree() {
    if !root_or_skip("overlay mounts") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let image = image_from(&store, &layers(), None);
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let overlay = store.rootfs_with(&image, &a, Driver::Overlay).unwrap();
    std::fs::create_dir_all(a.join("rootfs")).unwrap();
    overlay.mount(&a.join("rootfs")).unwrap();
    let _guard = Mounted(a.join("rootfs"));
    store.rootfs_with(&image, &b, Driver::Vfs).unwrap();
    assert_eq!(tree(&a.join("rootfs")), tree(&b.join("vfs")));
}

#[test]
fn more_layers_than_one_mount_option_string_holds() {
    if !root_or_skip("overlay mounts") {
        return;
    }
    // 140 absolute lower dirs are far more than the 4 KiB page of mount(2)'s data.
    let many = mount_many_layers(140);
    assert!(many.joined_lowers > 4096, "{}", many.joined_lowers);
}

#[test]
fn an_image_without_layers_gives_an_empty_usable_root() {
    if !root_or_skip("overlay mounts") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let image = image_from(&store, &[], Some("scratchy"));
    assert!(image.layers.is_empty());
    for driver in [Driver::Overlay, Driver::Vfs] {
        let container = tmp.path().join(format!("{driver:?}"));
        let rootfs = store.rootfs_with(&image, &container, driver).unwrap();
        let target = container.join("rootfs");
        std::fs::create_dir_all(&target).unwrap();
        rootfs.mount(&target).unwrap();
        let _guard = Mounted(target.clone());
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        std::fs::write(target.join("f"), b"x").unwrap();
    }
}
