//! `berth limit`: a real host process put under limits in every hierarchy (all its
//! threads), its limits in the cgroup files, released back where it was; a memory hog
//! OOM-killed under -m 16m and reported in plain words; nothing left afterwards.

mod support_extra;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support_extra::{Env, can_run, text};

/// Every line of /proc/<pid>/task/<tid>/cgroup of every thread.
fn cgroup_lines(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("cgroup");
        out.extend(
            fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .map(str::to_string),
        );
    }
    out
}

fn threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

#[test]
fn a_running_process_and_all_its_threads_get_limits_and_are_released() {
    if !can_run("limit") {
        return;
    }
    let mut env = Env::new();
    // A multi-threaded process when the host has one (redis has its bio threads).
    let socket = env.dir.path().join("redis.sock");
    let pid = if have("redis-server") {
        env.spawn(
            Command::new("redis-server")
                .args([
                    "--port",
                    "0",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--unixsocket",
                ])
                .arg(&socket)
                .stdout(Stdio::null()),
        )
    } else {
        env.spawn(Command::new("sleep").arg("300"))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while have("redis-server") && threads(pid) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let p = pid.to_string();
    let out = env.ok(&[
        "limit",
        &p,
        "-m",
        "256m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "64",
        "--cpu-shares",
        "512",
    ]);
    assert_eq!(out.trim(), p);
    let want = format!("/berth-limit/{pid}");
    let lines = cgroup_lines(pid);
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            line.ends_with(&format!(":{want}")),
            "a thread outside its cgroup: {line}\n{lines:?}"
        );
    }
    // Every hierarchy of the host: each v1 controller, name=systemd and cgroup2.
    let hierarchies = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(hierarchies, before.lines().count());
    eprintln!("{} thread(s), {hierarchies} hierarchies", threads(pid));
    let v1 = Path::new("/sys/fs/cgroup/memory").exists();
    if v1 {
        let read = |c: &str, f: &str| {
            fs::read_to_string(format!("/sys/fs/cgroup/{c}{want}/{f}"))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (256u64 << 20).to_string()
        );
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(read("pids", "pids.max"), "64");
    } else {
        let read = |f: &str| {
            fs::read_to_string(format!("/sys/fs/cgroup{want}/{f}"))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read("memory.max"), (256u64 << 20).to_string());
        assert_eq!(read("pids.max"), "64");
    }
    // Limits again: an update of the same cgroup.
    env.ok(&["limit", &p, "-m", "128m"]);
    if v1 {
        let limit =
            fs::read_to_string(format!("/sys/fs/cgroup/memory{want}/memory.limit_in_bytes"))
                .unwrap();
        assert_eq!(limit.trim(), (128u64 << 20).to_string());
    }
    let list = env.ok(&["limit", "--list"]);
    assert!(
        list.contains("MEM USAGE / LIMIT") && list.contains(&p) && list.contains("running"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["limit", "--list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["Pid"], pid);
    assert_eq!(json[0]["MemoryLimit"], 128u64 << 20);

    env.ok(&["limit", "--release", &p]);
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        before,
        "back where it was"
    );
    if v1 {
        assert!(
            !Path::new(&format!("/sys/fs/cgroup/memory{want}")).exists(),
            "the cgroup is gone"
        );
    }
    assert!(!Path::new(&format!("/sys/fs/cgroup/unified{want}")).exists());
    assert_eq!(
        env.ok(&["limit", "--list", "--format", "{{.Pid}}"]).trim(),
        ""
    );
    // Not limited any more, and bad input: errors naming the pid or the flag, exit 125.
    assert!(env.fails(&["limit", "--release", &p], 125).contains(&p));
    assert!(
        env.fails(&["limit", "999999999", "-m", "16m"], 125)
            .contains("999999999")
    );
    assert!(
        env.fails(&["limit", &p], 125)
            .contains("at least one limit")
    );
    assert!(
        env.fails(&["limit", &p, "-m", "lots"], 125)
            .contains("--memory")
    );
}

#[test]
fn a_memory_hog_is_killed_by_the_kernel_and_reported() {
    if !can_run("limit oom") {
        return;
    }
    let mut env = Env::new();
    // It waits for a line before it eats memory (`tail` keeps the whole of /dev/zero's one
    // endless line), so it is limited first; at EOF (the test failed early) it just ends.
    let mut child = Command::new("sh")
        .args(["-c", "read x && exec tail /dev/zero"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    env.children.push(child);
    let p = pid.to_string();
    let watch = env
        .cmd(&["limit", &p, "-m", "16m", "--wait"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is in its cgroup, then let it go.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .contains("/berth-limit/")
    {
        assert!(Instant::now() < deadline, "never limited");
        std::thread::sleep(Duration::from_millis(10));
    }
    stdin.write_all(b"go\n").unwrap();
    let started = Instant::now();
    let out = watch.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    eprintln!("OOM reported {:?} after the hog started", started.elapsed());
    assert_eq!(out.status.code(), Some(137), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "berth: process {pid} was killed by the kernel: out of memory (limit 16 MiB)"
        )),
        "{stderr}"
    );
    // Nothing left: no record, no cgroup.
    assert_eq!(
        env.ok(&["limit", "--list", "--format", "{{.Pid}}"]).trim(),
        ""
    );
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/berth-limit/{pid}")).exists());
    assert!(!Path::new(&format!("/sys/fs/cgroup/unified/berth-limit/{pid}")).exists());
    let events = env.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=process",
    ]);
    assert!(
        events.contains("process oom") && events.contains(&p),
        "{events}"
    );
}

#[test]
fn an_oom_kill_without_wait_shows_in_list_and_release() {
    if !can_run("limit oom list") {
        return;
    }
    let env = Env::new();
    let mut child = Command::new("sh")
        .args(["-c", "read x && exec tail /dev/zero"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let p = pid.to_string();
    env.ok(&["limit", &p, "-m", "16m"]);
    stdin.write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let list = env.ok(&["limit", "--list"]);
    assert!(
        list.contains("killed by the kernel: out of memory"),
        "{list}"
    );
    let out = env.berth(&["limit", "--release", &p]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "berth: process {pid} was killed by the kernel: out of memory (limit 16 MiB)"
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/berth-limit/{pid}")).exists());
}

/// The seed's section 4: a redis-server already running on the host, limited to 256 MiB,
/// filled by redis-benchmark until the kernel kills it; berth says so in plain words.
#[test]
fn the_seeds_redis_under_256_mib_until_the_kernel_kills_it() {
    if !can_run("limit redis") {
        return;
    }
    if !have("redis-server") || !have("redis-benchmark") {
        if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
            panic!("limit redis: needs redis-server and redis-benchmark (Debian: redis)");
        }
        eprintln!("skipped: limit redis: needs redis-server and redis-benchmark");
        return;
    }
    let mut env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let pid = env.spawn(
        Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
        assert!(Instant::now() < deadline, "redis never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let p = pid.to_string();
    let watch = env
        .cmd(&["limit", &p, "-m", "256m", "--wait"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .contains("/berth-limit/")
    {
        assert!(Instant::now() < deadline, "never limited");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let bench = Command::new("timeout")
        .args([
            "120",
            "redis-benchmark",
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
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let out = watch.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    eprintln!(
        "redis OOM-killed {:?} into the benchmark (benchmark: {bench})",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(137), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "berth: process {pid} was killed by the kernel: out of memory (limit 256 MiB)"
        )),
        "{stderr}"
    );
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/berth-limit/{pid}")).exists());
}
