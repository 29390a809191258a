//! `--device-read-bps`, `--device-write-bps`, `--device-read-iops`, `--device-write-iops`
//! (docker's DEVICE:RATE): the limits read back from the container's blkio cgroup, as podman
//! 4.3 writes them on this host, and bad input refused at create (exit 125, named).

mod support_containers;

use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

use support_containers::{Env, can_run};

/// A whole disk of this host (/sys/block, a node in /dev) and its MAJOR:MINOR: a real one
/// before zram or loop.
fn a_disk() -> Option<(PathBuf, String)> {
    let mut disks: Vec<(PathBuf, String)> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let node = PathBuf::from("/dev").join(&name);
            let numbers = std::fs::read_to_string(e.path().join("dev")).ok()?;
            std::fs::metadata(&node)
                .ok()?
                .file_type()
                .is_block_device()
                .then(|| (node, numbers.trim().to_string()))
        })
        .collect();
    disks.sort_by_key(|(p, _)| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let virtual_disk =
            name.starts_with("zram") || name.starts_with("loop") || name.starts_with("ram");
        (virtual_disk, name)
    });
    disks.into_iter().next()
}

#[test]
fn throttles_reach_the_blkio_cgroup() {
    if !can_run("blkio throttle", &[]) {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device").exists() {
        assert!(
            std::env::var("BERTH_REQUIRE_ROOT").as_deref() != Ok("1"),
            "no cgroup v1 blkio throttle files on this host"
        );
        eprintln!("skipped: blkio throttle: the file names below are cgroup v1's blkio");
        return;
    }
    let Some((disk, numbers)) = a_disk() else {
        panic!("no block device in /sys/block with a /dev node");
    };
    let disk = disk.to_str().unwrap();
    let env = Env::new();
    let flag = |rate: &str| format!("{disk}:{rate}");
    let out = env.run_ok(
        &[
            "--device-read-bps",
            &flag("1mb"),
            "--device-write-bps",
            &flag("2M"),
            "--device-read-iops",
            &flag("100"),
            "--device-write-iops",
            &flag("200"),
        ],
        &[
            "sh",
            "-c",
            "cd /sys/fs/cgroup/blkio && cat blkio.throttle.read_bps_device blkio.throttle.write_bps_device blkio.throttle.read_iops_device blkio.throttle.write_iops_device",
        ],
    );
    // podman 4.3 on the same flags: "254:0 1048576", "254:0 2097152", "254:0 100", "254:0 200".
    assert_eq!(
        out,
        format!("{numbers} 1048576\n{numbers} 2097152\n{numbers} 100\n{numbers} 200\n")
    );
    // Without the flags: no limit in the files.
    let out = env.run_ok(
        &[],
        &["cat", "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device"],
    );
    assert_eq!(out, "");
    // inspect: docker's HostConfig fields.
    let id = env.run_detached(&["--device-write-bps", &flag("512k")], &["sleep", "30"]);
    assert_eq!(
        env.inspect(
            &id,
            "{{json .HostConfig.BlkioDeviceWriteBps}} {{json .HostConfig.BlkioDeviceReadIOps}}"
        ),
        format!("[{{\"Path\":\"{disk}\",\"Rate\":524288}}] []")
    );
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);

    // Bad input: exit 125, the flag and the value named, nothing recorded. (podman names
    // these too, but takes /dev/null and fails in the runtime with 126.)
    for (flag, value, says) in [
        (
            "--device-read-bps",
            "/dev/no-such-disk:1mb".to_string(),
            "No such file",
        ),
        ("--device-read-bps", flag("lots"), "must be a size"),
        (
            "--device-write-bps",
            disk.to_string(),
            "expected DEVICE:RATE",
        ),
        ("--device-read-iops", flag("1.5"), "whole number"),
        ("--device-write-iops", flag("-3"), "whole number"),
        (
            "--device-read-bps",
            "/dev/null:1mb".to_string(),
            "not a block device",
        ),
    ] {
        let (code, _, err) = env.run(&[flag, &value], &["true"]);
        assert_eq!(code, 125, "{flag} {value}: {err}");
        let shown = value.split(':').next().unwrap();
        assert!(
            err.contains(flag) && err.contains(shown) && err.contains(says),
            "{flag} {value}: {err}"
        );
    }
    assert!(env.ids().is_empty(), "{:?}", env.ids());
}
