//! The on-disk cache: hits, atomic files, and that nothing read back is
//! trusted without validation.

mod common;

use std::time::Instant;

use berth_seccomp::{Arch, Cache, cache_key, compile_for};
use common::{load_profile, profile};
use sha2::{Digest, Sha256};

const X64: Arch = Arch::X86_64;

#[test]
fn miss_then_hit() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("sub"));
    let p = load_profile("docker-default-seccomp.json");
    let path = cache.path_for(&p, X64);
    assert!(cache.load(&p, X64).is_none());
    let a = cache.load_or_compile(&p, X64).unwrap();
    assert!(path.exists());
    assert_eq!(a, compile_for(&p, X64).unwrap());
    assert_eq!(cache.load(&p, X64), Some(a.clone()));
    assert_eq!(cache.load_or_compile(&p, X64).unwrap(), a);
    // no temporary files left behind
    assert_eq!(
        std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
        1
    );
    // a different arch or profile is a different key
    assert_ne!(cache_key(&p, X64), cache_key(&p, Arch::Aarch64));
    let q = load_profile("podman-default-seccomp.json");
    assert_ne!(cache.path_for(&q, X64), path);
}

#[test]
fn listener_and_flags_survive_the_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC"],"syscalls":[{"names":["mount"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    let a = cache.load_or_compile(&p, X64).unwrap();
    let b = cache.load(&p, X64).unwrap();
    assert!(b.needs_listener());
    assert_eq!((a.flags(), a.instructions()), (b.flags(), b.instructions()));
}

/// Every kind of damage makes the file a miss; load_or_compile then
/// recompiles and rewrites a good file.
#[test]
fn corrupt_files_are_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let p = load_profile("docker-default-seccomp.json");
    let good = compile_for(&p, X64).unwrap();
    cache.load_or_compile(&p, X64).unwrap();
    let path = cache.path_for(&p, X64);
    let orig = std::fs::read(&path).unwrap();

    let mut damaged: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("header only", orig[..88].to_vec()),
        ("cut mid-instruction", orig[..orig.len() - 3].to_vec()),
        ("cut at instruction", orig[..orig.len() - 8].to_vec()),
        ("extra bytes", [orig.clone(), vec![0; 8]].concat()),
        ("oversized", vec![0u8; 88 + 4097 * 8]),
        ("garbage", (0..1000u32).map(|i| (i * 7) as u8).collect()),
    ];
    for (what, at) in [
        ("magic", 0),
        ("version", 8),
        ("arch", 12),
        ("listener", 13),
        ("reserved", 14),
        ("flags", 16),
        ("count", 20),
        ("key", 30),
        ("hash", 60),
        ("body", 200),
    ] {
        let mut b = orig.clone();
        b[at] ^= 0x40;
        damaged.push((what, b));
    }
    // A file whose hashes are all consistent but whose program is unsafe
    // (a jump past the end): the verifier must still reject it.
    let mut body = good.to_bytes();
    let n = body.len();
    body[n - 16..n - 8].copy_from_slice(&[0x05, 0, 0, 0, 0xff, 0, 0, 0]); // ja +255 near the end
    let mut forged = orig[..56].to_vec();
    forged.extend_from_slice(&Sha256::digest(&body));
    forged.extend_from_slice(&body);
    damaged.push(("forged unsafe program", forged));
    // A valid file for another profile under this key's name.
    let other = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
    cache.load_or_compile(&other, X64).unwrap();
    damaged.push((
        "other profile's file",
        std::fs::read(cache.path_for(&other, X64)).unwrap(),
    ));

    for (what, bytes) in damaged {
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.load(&p, X64).is_none(), "{what}: accepted");
        assert_eq!(cache.load_or_compile(&p, X64).unwrap(), good, "{what}");
        assert_eq!(std::fs::read(&path).unwrap(), orig, "{what}: not rewritten");
    }
}

#[test]
fn unwritable_cache_still_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    // the cache "directory" is a regular file: storing fails, compiling must not
    let cache = Cache::new(blocker.join("cache"));
    let p = load_profile("podman-default-seccomp.json");
    assert_eq!(
        cache.load_or_compile(&p, X64).unwrap(),
        compile_for(&p, X64).unwrap()
    );
}

/// Compile time vs. cache load time for the real profiles (run with
/// `--release --nocapture` for meaningful numbers).
#[test]
fn timing_compile_vs_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    for name in ["docker-default-seccomp.json", "podman-default-seccomp.json"] {
        let json =
            std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let p = berth_seccomp::parse_profile(&json).unwrap();
        cache.load_or_compile(&p, X64).unwrap();
        let rounds = 200;
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(berth_seccomp::parse_profile(&json).unwrap());
        }
        let parse = t.elapsed() / rounds;
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(compile_for(&p, X64).unwrap());
        }
        let compile = t.elapsed() / rounds;
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(cache.load(&p, X64).unwrap());
        }
        let load = t.elapsed() / rounds;
        println!(
            "{name}: parse {parse:?}, compile {compile:?}, cache load (key hash + read + validate) {load:?}"
        );
    }
}
