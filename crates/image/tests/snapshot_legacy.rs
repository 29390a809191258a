//! The overlay mount as kernels before 6.8 get it (mount(2), one `lowerdir=` list), forced by
//! BERTH_OVERLAY_LEGACY=1: its own test binary, since the variable is process-wide.

mod unpack_support;

use berth_image::Store;
use berth_image::snapshot::Driver;
use unpack_support::{Mounted, Tar, image_from, root_or_skip};

/// The options of the mount at `target`, as /proc/self/mountinfo shows them.
fn super_options(target: &std::path::Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let target = target.to_str().unwrap();
    info.lines()
        .find(|l| l.split(' ').nth(4) == Some(target))
        .unwrap_or_else(|| panic!("{target} is not mounted"))
        .split(' ')
        .next_back()
        .unwrap()
        .to_string()
}

fn mount_layers(count: usize) -> (tempfile::TempDir, std::path::PathBuf, Mounted) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let layers: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            Tar::new()
                .file(&format!("layer{i:03}"), format!("{i}").as_bytes())
                .file("top", format!("{i}").as_bytes())
                .finish()
        })
        .collect();
    let image = image_from(&store, &layers, None);
    let container = tmp.path().join("c");
    let rootfs = store
        .rootfs_with(&image, &container, Driver::Overlay)
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
    (tmp, target, guard)
}

#[test]
fn legacy_mount_takes_more_layers_than_a_page_of_paths_and_few_by_path() {
    if !root_or_skip("overlay mounts") {
        return;
    }
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe { std::env::set_var("BERTH_OVERLAY_LEGACY", "1") };

    // 140 absolute lower dirs (~100 bytes each) are far more than mount(2)'s page of data:
    // they go by short /proc/self/fd names.
    let (_tmp, target, guard) = mount_layers(140);
    let options = super_options(&target);
    assert!(
        options.contains("lowerdir=/proc/self/fd/"),
        "short names expected: {options}"
    );
    drop(guard);

    // A few layers fit by path: those stay readable in mountinfo.
    let (tmp, target, guard) = mount_layers(3);
    let options = super_options(&target);
    assert!(!options.contains("/proc/self/fd/"), "{options}");
    assert!(
        options.contains(tmp.path().to_str().unwrap()),
        "lower dirs by path expected: {options}"
    );
    drop(guard);
}
