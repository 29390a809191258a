//! kill -9 in the middle of storing a layer leaves nothing half-visible: no layer, no
//! record, no blob under its name; only staging garbage, which the next collection removes.

mod unpack_support;

use std::io::Write;
use std::process::{Command, Stdio};

use berth_image::Store;
use unpack_support::{Tar, gzip, root_or_skip};

const CHILD: &str = "BERTH_TEST_CRASH_CHILD";

/// Runs in the child process: stores whatever comes on stdin, then waits to be killed.
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&root)).unwrap();
    let mut stdin = std::io::stdin().lock();
    let _ = store.put_layer_stream(&mut stdin, &|n| {
        if n > 0 {
            // Tell the parent that bytes are flowing.
            let _ = std::fs::write(format!("{root}/../started"), b"1");
        }
    });
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn killed_mid_layer_leaves_nothing_visible() {
    if !root_or_skip("unpack") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    Store::open(&root).unwrap();
    let mut data = vec![0u8; 4_000_000];
    let mut x: u32 = 1;
    for b in data.iter_mut() {
        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
        *b = (x >> 24) as u8;
    }
    let tar = gzip(&Tar::new().file("big", &data).file("last", b"l").finish());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, &root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&tar[..tar.len() / 2]).unwrap();
    for _ in 0..500 {
        if tmp.path().join("started").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);

    let store = Store::open(&root).unwrap();
    assert!(store.list().unwrap().is_empty());
    let count = |d: &str| std::fs::read_dir(root.join(d)).unwrap().count();
    assert_eq!(count("blobs/sha256"), 0);
    assert_eq!(count("layers/by-blob"), 0);
    assert_eq!(count("layers"), 1);
    assert!(count("tmp") > 0, "the killed put was staging in tmp/");
    store.prune(false).unwrap();
    assert_eq!(count("tmp"), 0, "garbage collected");
}
