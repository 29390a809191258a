//! BERTH_STORAGE_DRIVER picks the driver (its own test binary: the variable is process-wide).

mod unpack_support;

use berth_image::Store;
use unpack_support::{Tar, image_from, root_or_skip};

#[test]
fn the_environment_forces_vfs_and_rejects_unknown_drivers() {
    if !root_or_skip("unpack") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let image = image_from(&store, &[Tar::new().file("a", b"1").finish()], None);
    // SAFETY: the only test in this binary; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var(berth_image::snapshot::DRIVER_ENV, "vfs") };
    let rootfs = store.rootfs(&image, &tmp.path().join("c1")).unwrap();
    assert_eq!(rootfs.driver(), "vfs");
    assert_eq!(std::fs::read(tmp.path().join("c1/vfs/a")).unwrap(), b"1");
    // SAFETY: as above.
    unsafe { std::env::set_var(berth_image::snapshot::DRIVER_ENV, "zfs") };
    let err = store.rootfs(&image, &tmp.path().join("c2")).unwrap_err();
    assert!(err.to_string().contains("zfs"), "{err}");
    // SAFETY: as above.
    unsafe { std::env::remove_var(berth_image::snapshot::DRIVER_ENV) };
    assert_eq!(
        store
            .rootfs(&image, &tmp.path().join("c3"))
            .unwrap()
            .driver(),
        "overlay"
    );
}
