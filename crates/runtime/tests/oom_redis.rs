//! The seed's cgroup demonstration as an integration test: redis-server limited to 256 MiB
//! by the memory cgroup, fed large values by redis-benchmark until the kernel's OOM killer
//! kills it, and the runtime reporting it (`events` prints an `oom` event, `run` exits
//! 128+SIGKILL, the cgroup counts the kill).
//!
//! redis-server and its shared libraries (as ldd lists them, with the dynamic loader) are
//! copied into the test's busybox rootfs; the container shares the host's network namespace
//! so that redis-benchmark on the host reaches it over loopback. Skipped when the Debian
//! packages redis-server and redis-tools are not installed.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cgroups::*;
use common::*;
use serde_json::json;

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const MIB: i64 = 1024 * 1024;

/// A program on $PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Copies `path` (following symlinks) to the same path under `rootfs`.
fn copy_in(rootfs: &Path, path: &Path) {
    let dest = rootfs.join(path.strip_prefix("/").expect("absolute path"));
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(path, &dest)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", path.display(), dest.display()));
}

/// Puts redis-server and the libraries it is linked with into `rootfs`.
fn install_redis(rootfs: &Path) {
    let out = host("ldd", &[REDIS_SERVER]);
    out.ok();
    let mut libs = Vec::new();
    for line in out.stdout.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    assert!(
        libs.iter()
            .any(|l| l.to_string_lossy().contains("ld-linux")),
        "ldd lists no dynamic loader:\n{out}"
    );
    copy_in(rootfs, Path::new(REDIS_SERVER));
    for lib in &libs {
        copy_in(rootfs, lib);
    }
    if Path::new("/etc/ld.so.cache").exists() {
        copy_in(rootfs, Path::new("/etc/ld.so.cache"));
    }
}

/// Whether a redis server answers PING on `port`.
fn pong(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

#[test]
fn redis_is_oom_killed_under_a_256mib_limit_and_the_kill_is_reported() {
    let Some(env) = cg_env() else { return };
    let Some(benchmark) = which("redis-benchmark") else {
        skip("redis-benchmark is not installed (apt-get install redis-tools)");
        return;
    };
    if !Path::new(REDIS_SERVER).exists() {
        skip(&format!(
            "{REDIS_SERVER} is not installed (apt-get install redis-server)"
        ));
        return;
    }
    let port = free_port().to_string();
    let id = env.new_id();
    let mut bundle = env.bundle();
    install_redis(&bundle.rootfs);
    bundle.without_namespace("network").args(&[
        REDIS_SERVER,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
    ]);
    // memory+swap = memory: the OOM killer acts even where the host has swap.
    bundle.linux()["resources"]["memory"] = json!({"limit": 256 * MIB, "swap": 256 * MIB});
    bundle.save();

    let dir = bundle.dir.to_str().unwrap();
    let mut run = Background::runtime(&env, &["run", "--keep", "--bundle", dir, &id]);
    let c = Container {
        env: &env,
        id: id.clone(),
        io: IoFiles {
            stdout: run.stdout.clone(),
            stderr: run.stderr.clone(),
        },
    };
    let port_n: u16 = port.parse().unwrap();
    let up = wait_until(Duration::from_secs(30), || pong(port_n) || !run.running());
    assert!(
        up.is_some() && run.running(),
        "redis-server did not answer PING on port {port}: {}",
        run.describe()
    );
    let limits = Limits::of(c.pid());
    assert_eq!(limits.memory_limit(), 256 * MIB);
    let memory_dir = cgroup_dir(c.pid(), "memory").expect("memory cgroup");

    let mut events = Background::runtime(&env, &["events", "--interval", "1s", &id]);
    assert!(
        events.wait_stdout("\"stats\"", Duration::from_secs(20)),
        "events printed nothing: {}",
        events.describe()
    );

    // The seed's load: 300 SETs of 1 MB values on up to 10000 keys, by 20 clients; repeated
    // (keys accumulate) until the server is gone.
    let bench_args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-c",
        "20",
        "-t",
        "set",
        "-n",
        "300",
        "-d",
        "1000000",
        "-r",
        "10000",
    ];
    let mut rounds = Vec::new();
    for _ in 0..5 {
        if !run.running() {
            break;
        }
        let mut bench = Background::host(&env, benchmark.to_str().unwrap(), &bench_args);
        let code = bench.wait(Duration::from_secs(120));
        rounds.push(format!("exit {code:?}: {}", tail(&bench.stdout(), 300)));
        // The server dies a moment after the kill; give the status a chance to settle.
        let _ = wait_until(Duration::from_secs(2), || !run.running());
    }

    eprintln!("redis-benchmark rounds: {rounds:#?}");
    let code = run.wait(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(137),
        "run did not exit 128+SIGKILL after {} benchmark rounds {rounds:#?}: {}",
        rounds.len(),
        run.describe()
    );
    assert_eq!(c.status(), "stopped");
    assert_oom_reported(&memory_dir, &events, &id);
    let said = format!("container {id} was killed by the kernel: out of memory (limit 256 MiB)");
    assert!(
        run.stderr().contains(&said),
        "run did not say {said:?}: {}",
        run.describe()
    );
    assert!(!pong(port_n), "something still answers on port {port}");

    c.delete().ok();
    assert!(!memory_dir.exists(), "delete left {}", memory_dir.display());
    assert_eq!(
        events.wait(Duration::from_secs(10)),
        Some(0),
        "events did not end after delete: {}",
        events.describe()
    );
    env.assert_nothing_left(&id);
}
