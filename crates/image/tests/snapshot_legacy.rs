//! The overlay mount as kernels before 6.8 get it (mount(2), one `lowerdir=` list), forced by
//! BERTH_OVERLAY_LEGACY=1: its own test binary, since the variable is process-wide.

mod unpack_support;

use unpack_support::{mount_many_layers, root_or_skip};

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

#[test]
fn legacy_mount_takes_more_layers_than_a_page_of_paths_and_few_by_path() {
    if !root_or_skip("overlay mounts") {
        return;
    }
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe { std::env::set_var("BERTH_OVERLAY_LEGACY", "1") };

    // 140 absolute lower dirs (~100 bytes each) are far more than mount(2)'s page of data:
    // they go by short /proc/self/fd names.
    let many = mount_many_layers(140);
    assert!(many.joined_lowers > 4096, "{}", many.joined_lowers);
    let options = super_options(&many.target);
    assert!(
        options.contains("lowerdir=/proc/self/fd/"),
        "short names expected: {options}"
    );
    drop(many.guard);

    // A few layers fit by path: those stay readable in mountinfo.
    let few = mount_many_layers(3);
    let options = super_options(&few.target);
    assert!(!options.contains("/proc/self/fd/"), "{options}");
    assert!(
        options.contains(few.tmp.path().to_str().unwrap()),
        "lower dirs by path expected: {options}"
    );
    drop(few.guard);
}
