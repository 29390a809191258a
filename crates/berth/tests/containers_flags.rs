//! The flags of `run` that change the container, each checked from inside it: limits in the
//! cgroup files, capabilities and seccomp in /proc/self/status, mounts, user, environment,
//! hostname, the per-container /etc files, namespaces, rlimits.

mod support_containers;

use std::time::Duration;

use support_containers::{Env, can_run};

fn cgroup_v1(controller: &str) -> bool {
    std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("tasks")
        .exists()
}

#[test]
fn resource_flags_reach_the_cgroup() {
    if !can_run("resources", &[]) {
        return;
    }
    if !cgroup_v1("memory") {
        eprintln!("skipped: resources: the cgroup file names below are cgroup v1's");
        return;
    }
    let env = Env::new();
    let out = env.run_ok(
        &[
            "-m",
            "64m",
            "--memory-swap",
            "96m",
            "--memory-reservation",
            "32m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--cpuset-cpus",
            "0",
            "--pids-limit",
            "77",
        ],
        &[
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
            "/sys/fs/cgroup/cpu/cpu.shares",
            "/sys/fs/cgroup/cpuset/cpuset.cpus",
            "/sys/fs/cgroup/pids/pids.max",
        ],
    );
    let values: Vec<&str> = out.lines().collect();
    assert_eq!(
        values,
        vec![
            (64u64 << 20).to_string().as_str(),
            (96u64 << 20).to_string().as_str(),
            (32u64 << 20).to_string().as_str(),
            "50000",
            "100000",
            "512",
            "0",
            "77"
        ]
    );
    // docker's default swap: as much as memory.
    let out = env.run_ok(
        &["-m", "32m"],
        &["cat", "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"],
    );
    assert_eq!(out.trim(), (64u64 << 20).to_string());
    let out = env.run_ok(
        &["--oom-kill-disable", "-m", "32m"],
        &["cat", "/sys/fs/cgroup/memory/memory.oom_control"],
    );
    assert!(out.contains("oom_kill_disable 1"), "{out}");
    // podman's default pids limit.
    assert_eq!(
        env.run_ok(&[], &["cat", "/sys/fs/cgroup/pids/pids.max"])
            .trim(),
        "2048"
    );
    let out = env.run_ok(
        &["--cpu-quota", "20000", "--cpu-period", "50000"],
        &[
            "cat",
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        ],
    );
    assert_eq!(out, "20000\n50000\n");
}

fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} not in {out}"))
        .trim()
        .to_string()
}

#[test]
fn capabilities_seccomp_and_privileges() {
    if !can_run("security", &[]) {
        return;
    }
    let env = Env::new();
    let out = env.run_ok(&[], &["cat", "/proc/self/status"]);
    // podman's 11 default capabilities.
    assert_eq!(status_field(&out, "CapBnd:"), "00000000800405fb");
    assert_eq!(status_field(&out, "CapEff:"), "00000000800405fb");
    assert_eq!(status_field(&out, "Seccomp:"), "2");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "0");
    let out = env.run_ok(
        &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
        &["cat", "/proc/self/status"],
    );
    assert_eq!(
        status_field(&out, "CapBnd:"),
        format!("{:016x}", 1u64 << 12)
    );
    let out = env.run_ok(&["--cap-drop", "chown"], &["cat", "/proc/self/status"]);
    assert_eq!(status_field(&out, "CapBnd:"), "00000000800405fa");
    let out = env.run_ok(
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "no-new-privileges",
        ],
        &["cat", "/proc/self/status"],
    );
    assert_eq!(status_field(&out, "Seccomp:"), "0");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1");
    // The default profile refuses what podman's refuses (keyctl is allowed, but not
    // mounting, which needs CAP_SYS_ADMIN anyway; unshare of a user namespace is refused
    // by seccomp? podman allows it: check a plain denial instead).
    let (code, _, _) = env.run(&[], &["mount", "-t", "tmpfs", "x", "/mnt"]);
    assert_ne!(code, 0);
    let out = env.run_ok(&["--privileged"], &["cat", "/proc/self/status"]);
    assert_eq!(status_field(&out, "Seccomp:"), "0");
    assert_ne!(status_field(&out, "CapBnd:"), "00000000800405fb");
    let (code, _, err) = env.run(&["--cap-add", "BOGUS"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("BOGUS"), "{err}");
}

#[test]
fn user_env_workdir_hostname_entrypoint() {
    if !can_run("process", &[]) {
        return;
    }
    let env = Env::new();
    assert_eq!(
        env.run_ok(&["-u", "1000:100"], &["id", "-u"]).trim(),
        "1000"
    );
    assert_eq!(
        env.run_ok(&["-u", "user"], &["sh", "-c", "id -u; id -g"]),
        "1000\n100\n"
    );
    assert_eq!(
        env.run_ok(&["-u", "user", "--group-add", "root"], &["id", "-G"])
            .trim(),
        "100 0"
    );
    let (code, _, err) = env.run(&["-u", "nobody-here"], &["true"]);
    assert_eq!(code, 125, "{err}");
    let env_file = env.dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n\nB=file\n").unwrap();
    let out = env.run_ok(
        &[
            "-e",
            "A=1",
            "-e",
            "B=flag",
            "--env-file",
            env_file.to_str().unwrap(),
        ],
        &["env"],
    );
    assert!(
        out.contains("A=1\n") && out.contains("FROM_FILE=yes\n") && out.contains("B=flag\n"),
        "{out}"
    );
    assert!(
        out.contains("container=berth\n") && out.contains("PATH=/usr/local/sbin"),
        "{out}"
    );
    assert_eq!(env.run_ok(&["-w", "/tmp"], &["pwd"]).trim(), "/tmp");
    let out = env.run_ok(
        &[
            "--hostname",
            "box",
            "--add-host",
            "db:10.1.2.3",
            "--dns",
            "127.0.0.1",
            "--dns-search",
            "example.test",
        ],
        &[
            "sh",
            "-c",
            "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf",
        ],
    );
    assert!(out.starts_with("box\nbox\n"), "{out}");
    assert!(out.contains("10.1.2.3\tdb\n"), "{out}");
    assert!(
        out.contains("nameserver 127.0.0.1\n") && out.contains("search example.test\n"),
        "{out}"
    );
    // Without --dns: the host's resolvers minus loopback ones, never an added one.
    let out = env.run_ok(&[], &["cat", "/etc/resolv.conf"]);
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for line in out.lines().filter(|l| l.starts_with("nameserver")) {
        assert!(host.contains(line) && !line.contains("127."), "{line}");
    }
    assert_eq!(
        env.run_ok(&["--entrypoint", "echo"], &["via", "entrypoint"])
            .trim(),
        "via entrypoint"
    );
}

#[test]
fn mounts_readonly_tmpfs_devices() {
    if !can_run("mounts", &[]) {
        return;
    }
    let env = Env::new();
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("f"), "host file\n").unwrap();
    let v = format!("{}:/data", shared.display());
    assert_eq!(
        env.run_ok(
            &["-v", &v],
            &["sh", "-c", "cat /data/f; echo new > /data/g"]
        ),
        "host file\n"
    );
    assert_eq!(std::fs::read_to_string(shared.join("g")).unwrap(), "new\n");
    let v_ro = format!("{}:/data:ro", shared.display());
    let (code, _, _) = env.run(&["-v", &v_ro], &["sh", "-c", "echo x > /data/h"]);
    assert_ne!(code, 0);
    let m = format!("type=bind,source={},target=/m,readonly", shared.display());
    assert_eq!(
        env.run_ok(&["--mount", &m], &["cat", "/m/f"]),
        "host file\n"
    );
    let out = env.run_ok(
        &[
            "--tmpfs",
            "/scratch:size=1m",
            "--mount",
            "type=tmpfs,target=/t2",
        ],
        &["sh", "-c", "grep -E ' /(scratch|t2) ' /proc/mounts"],
    );
    assert!(
        out.contains("/scratch tmpfs") && out.contains("size=1024k") && out.contains("/t2 tmpfs"),
        "{out}"
    );
    let (code, _, _) = env.run(&["--read-only"], &["touch", "/x"]);
    assert_ne!(code, 0);
    assert_eq!(
        env.run_ok(
            &["--read-only", "--tmpfs", "/tmp"],
            &["sh", "-c", "touch /tmp/x && echo ok"]
        )
        .trim(),
        "ok"
    );
    let out = env.run_ok(
        &["--shm-size", "2m"],
        &["sh", "-c", "grep ' /dev/shm ' /proc/mounts"],
    );
    assert!(out.contains("size=2048k"), "{out}");
    let out = env.run_ok(
        &["--device", "/dev/null:/dev/mynull"],
        &["sh", "-c", "echo x > /dev/mynull && ls -l /dev/mynull"],
    );
    assert!(out.starts_with('c'), "{out}");
    let (code, _, err) = env.run(&["-v", "/no/such/dir:/x"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("/no/such/dir"), "{err}");
}

#[test]
fn namespaces_ulimits_sysctls() {
    if !can_run("namespaces", &[]) {
        return;
    }
    let env = Env::new();
    // The default network: a private namespace with only loopback, up.
    let out = env.run_ok(&[], &["ls", "/sys/class/net"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    let out = env.run_ok(
        &[],
        &[
            "cat",
            "/sys/class/net/lo/operstate",
            "/sys/class/net/lo/flags",
        ],
    );
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).unwrap() & 1 == 1),
        "{out}"
    );
    let host_ifaces = std::fs::read_dir("/sys/class/net").unwrap().count();
    let out = env.run_ok(&["--network", "host"], &["ls", "/sys/class/net"]);
    assert_eq!(out.split_whitespace().count(), host_ifaces);
    assert_eq!(env.run_ok(&[], &["sh", "-c", "echo $$"]).trim(), "1");
    assert_ne!(
        env.run_ok(&["--pid", "host"], &["sh", "-c", "echo $$"])
            .trim(),
        "1"
    );
    let host_uts = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        env.run_ok(&["--uts", "host"], &["hostname"]).trim(),
        host_uts.trim()
    );
    // Default rlimits come from the caller (no nofile=1048576 that a host without
    // CAP_SYS_RESOURCE cannot give).
    let ours = std::process::Command::new("sh")
        .args(["-c", "ulimit -Sn; ulimit -Hn"])
        .output()
        .unwrap();
    let out = env.run_ok(&[], &["sh", "-c", "ulimit -Sn; ulimit -Hn"]);
    assert_eq!(out, support_containers::text(&ours.stdout));
    assert_eq!(
        env.run_ok(
            &["--ulimit", "nofile=100:200"],
            &["sh", "-c", "ulimit -Sn; ulimit -Hn"]
        ),
        "100\n200\n"
    );
    assert_eq!(
        env.run_ok(
            &["--sysctl", "net.ipv4.ip_forward=1"],
            &["cat", "/proc/sys/net/ipv4/ip_forward"]
        )
        .trim(),
        "1"
    );
}

/// The states of the container's processes other than PID 1 (`Z` for a zombie), from inside.
const STATES: &str = "for s in /proc/[0-9]*/stat; do read -r pid comm state rest < $s; [ $pid = 1 ] || echo $state; done";

#[test]
fn init_reaps_orphans_and_forwards_signals() {
    if !can_run("init", &[]) {
        return;
    }
    if !berth_engine::config::INIT_CANDIDATES
        .iter()
        .any(|p| std::path::Path::new(p).is_file())
    {
        assert!(
            std::env::var_os("BERTH_REQUIRE_ROOT").is_none(),
            "no static init on this host (Debian package tini)"
        );
        eprintln!("skipped: no tini-static/docker-init");
        return;
    }
    let env = Env::new();
    // The init is PID 1, the command its child.
    let out = env.run_ok(&["--init"], &["cat", "/proc/1/cmdline"]);
    assert!(out.starts_with("/dev/init\0--\0cat\0"), "{out:?}");
    // An orphan (its parent, a subshell, is gone) is reparented to PID 1. With sh exec'ing
    // sleep as PID 1 nobody reaps it; with --init the init does.
    let orphan = "(sleep 0.1 &); exec sleep 30";
    let plain = env.run_detached(&[], &["sh", "-c", orphan]);
    let inited = env.run_detached(&["--init"], &["sh", "-c", orphan]);
    std::thread::sleep(Duration::from_millis(500));
    let states = |id: &str| env.ok(&["exec", id, "sh", "-c", STATES]);
    assert!(
        env.eventually(Duration::from_secs(10), || states(&plain).contains('Z')),
        "the control never showed a zombie: {}",
        states(&plain)
    );
    assert!(!states(&inited).contains('Z'), "{}", states(&inited));
    env.ok(&["rm", "-f", &plain]);
    // SIGTERM from `stop` reaches the command through the init.
    env.ok(&["rm", "-f", &inited]);
    let id = env.run_detached(
        &["--init"],
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; while :; do sleep 0.1; done",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["stop", "-t", "20", &id]);
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "3");
    assert!(env.ok(&["logs", &id]).contains("got-term"));
    env.ok(&["rm", &id]);
    env.assert_gone(&id);
    // No init where one is named: the flag is named.
    let (code, _, err) = env.run(&["--init", "--init-path", "/nonexistent/tini"], &["true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("--init-path") && err.contains("/nonexistent/tini"),
        "{err}"
    );
}

#[test]
fn the_containers_process_starts_with_no_signal_blocked_or_ignored() {
    if !can_run("sigmask", &[]) {
        return;
    }
    let env = Env::new();
    // The monitor must not pass its own signal handling on (a blocked SIGTERM would make
    // every process of the container deaf to `kill` and `stop`).
    let out = env.run_ok(&[], &["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    let mask = |name: &str| {
        let line = out.lines().find(|l| l.starts_with(name)).expect(name);
        u64::from_str_radix(line.split('\t').nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "{out}");
    // The standard signals (glibc's reserved 32 and 33 are whatever the caller had).
    assert_eq!(mask("SigIgn:") & 0x7fff_ffff, 0, "{out}");
    // The same for a detached container and its exec'd processes' parent (the monitor).
    let id = env.run_detached(&["--pid", "host"], &["sleep", "30"]);
    let out = env.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "sleep 5 & kill $!; wait $!; echo $?",
    ]);
    assert_eq!(out.trim(), "143", "SIGTERM killed the background sleep");
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);
}
