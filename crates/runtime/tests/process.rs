//! The container's process: args, env, cwd, user and groups, umask, capabilities, rlimits,
//! no_new_privs, oom_score_adj, hostname and domainname, sysctls, HOME.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};

/// Capability names by number (linux/capability.h), written out independently of the
/// runtime's own table.
const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

fn mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |acc, name| {
        let n = CAPS
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("unknown capability {name}"));
        acc | 1 << n
    })
}

fn names(mask: u64) -> Vec<&'static str> {
    CAPS.iter()
        .enumerate()
        .filter(|(n, _)| mask & (1 << n) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The five sets from a /proc/<pid>/status text.
fn cap_sets(status: &str) -> [(String, u64); 5] {
    ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"].map(|field| {
        let hex = status_field(status, field).unwrap_or_else(|| panic!("no {field}:\n{status}"));
        (field.to_string(), u64::from_str_radix(&hex, 16).unwrap())
    })
}

fn set_caps(
    bundle: &mut Bundle,
    bounding: &[&str],
    effective: &[&str],
    inheritable: &[&str],
    ambient: &[&str],
) {
    bundle.process()["capabilities"] = json!({
        "bounding": bounding,
        "effective": effective,
        "permitted": effective,
        "inheritable": inheritable,
        "ambient": ambient,
    });
}

#[test]
fn args_env_and_cwd() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&[
        "sh",
        "-c",
        // Read /proc/1 while sh still is pid 1 (it execs its last command).
        "c=$(tr '\\0' '\\n' < /proc/1/cmdline); e=$(tr '\\0' '\\n' < /proc/1/environ); \
         echo \"$0|$1\"; pwd; echo ---; echo \"$e\"; echo ---; echo \"$c\"",
        "zero",
        "one two",
    ]);
    let token = format!("{TOKEN_VAR}={}", env.token());
    bundle.process()["env"] = json!(["PATH=/bin", "FOO=bar baz", "EMPTY=", token]);
    bundle.process()["cwd"] = json!("/work/new/dir");
    assert!(!bundle.rootfs.join("work").exists());
    let out = env.run(&bundle);
    out.ok();
    let parts: Vec<&str> = out.stdout.split("---\n").collect();
    assert_eq!(parts[0], "zero|one two\n/work/new/dir\n", "{out}");
    let environ: BTreeSet<&str> = parts[1].lines().collect();
    let want: BTreeSet<&str> = ["PATH=/bin", "FOO=bar baz", "EMPTY=", &token, "HOME=/root"]
        .into_iter()
        .collect();
    assert_eq!(environ, want, "{out}");
    let cmdline: Vec<&str> = parts[2].lines().collect();
    assert_eq!(cmdline[0], "sh");
    assert_eq!(&cmdline[3..], ["zero", "one two"], "{out}");
    assert!(bundle.rootfs.join("work/new/dir").is_dir());
}

#[test]
fn args_are_looked_up_in_the_path_of_the_process() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    std::fs::create_dir_all(bundle.rootfs.join("opt/tools")).unwrap();
    std::fs::write(
        bundle.rootfs.join("opt/tools/hello-tool"),
        "#!/bin/sh\necho tool-ran\n",
    )
    .unwrap();
    std::fs::set_permissions(
        bundle.rootfs.join("opt/tools/hello-tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    bundle.args(&["hello-tool"]);
    bundle.process()["env"] = json!(["PATH=/usr/bin:/opt/tools:/bin"]);
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.stdout, "tool-ran\n");
}

#[test]
fn user_groups_and_umask() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["user"] =
        json!({"uid": 1000, "gid": 100, "additionalGids": [10, 20], "umask": 0o027});
    bundle.sh(
        "id -u; id -g; grep '^Groups:' /proc/self/status; umask; touch /tmp/f; stat -c '%a %u:%g' /tmp/f; echo $HOME",
    );
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "100", "{out}");
    let groups: BTreeSet<&str> = lines[2]
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    assert_eq!(groups, BTreeSet::from(["10", "20"]), "{out}");
    assert_eq!(lines[3], "0027", "{out}");
    assert_eq!(lines[4], "640 1000:100", "{out}");
    assert_eq!(lines[5], "/home/user", "{out}");
}

#[test]
fn default_umask_is_0022() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.run_sh("umask; touch /tmp/f; stat -c %a /tmp/f");
    out.ok();
    assert_eq!(out.lines(), ["0022", "644"], "{out}");
}

#[test]
fn capabilities_of_root() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let all = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_SYS_CHROOT",
    ];
    let some = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    // For root, exec makes permitted = bounding | inheritable and effective = permitted,
    // so this config is what the process keeps after exec.
    set_caps(&mut bundle, &all, &all, &some, &some);
    bundle.process()["noNewPrivileges"] = json!(false);
    bundle.args(&["cat", "/proc/self/status"]);
    let out = env.run(&bundle);
    out.ok();
    let want = [mask(&all), mask(&all), mask(&all), mask(&some), mask(&some)];
    for ((field, got), want) in cap_sets(&out.stdout).into_iter().zip(want) {
        assert_eq!(
            got,
            want,
            "{field}: got {:?}, want {:?}",
            names(got),
            names(want)
        );
    }
}

#[test]
fn capabilities_of_a_non_root_user_with_ambient_capabilities() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
    ];
    let kept = ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"];
    // A non-root process keeps across exec exactly its ambient set (permitted, effective).
    set_caps(&mut bundle, &bounding, &kept, &kept, &kept);
    bundle.process()["user"] = json!({"uid": 1000, "gid": 100});
    bundle.args(&["cat", "/proc/self/status"]);
    let out = env.run(&bundle);
    out.ok();
    let want = [
        mask(&bounding),
        mask(&kept),
        mask(&kept),
        mask(&kept),
        mask(&kept),
    ];
    for ((field, got), want) in cap_sets(&out.stdout).into_iter().zip(want) {
        assert_eq!(
            got,
            want,
            "{field}: got {:?}, want {:?}",
            names(got),
            names(want)
        );
    }
    assert_eq!(
        status_field(&out.stdout, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some("1000")
    );
}

#[test]
fn a_non_root_user_without_ambient_capabilities_has_none() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let bounding = ["CAP_CHOWN", "CAP_KILL"];
    set_caps(&mut bundle, &bounding, &bounding, &[], &[]);
    bundle.process()["user"] = json!({"uid": 1000, "gid": 100});
    bundle.args(&["cat", "/proc/self/status"]);
    let out = env.run(&bundle);
    out.ok();
    let sets = cap_sets(&out.stdout);
    assert_eq!(sets[0].1, mask(&bounding), "CapBnd");
    for (field, got) in &sets[1..] {
        assert_eq!(*got, 0, "{field}: {:?}", names(*got));
    }
}

#[test]
fn an_unknown_capability_fails_create() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_TEST"));
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails()
        .mentions(&["CAP_TEST", "process.capabilities.bounding"]);
    env.assert_nothing_left(&c.id);
}

/// The soft and hard values of a /proc/<pid>/limits line.
fn limit(limits: &str, name: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name}:\n{limits}"));
    let rest: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (rest[0].to_string(), rest[1].to_string())
}

#[test]
fn rlimits_are_set() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    bundle.args(&["cat", "/proc/self/limits"]);
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(
        limit(&out.stdout, "Max open files"),
        ("1000".into(), "2000".into())
    );
    assert_eq!(
        limit(&out.stdout, "Max msgqueue size"),
        ("4096".into(), "8192".into())
    );
    assert_eq!(
        limit(&out.stdout, "Max core file size"),
        ("0".into(), "0".into())
    );
}

#[test]
fn raising_a_hard_rlimit_without_cap_sys_resource_fails() {
    let Some(env) = TestEnv::new() else { return };
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = u64::from_str_radix(&status_field(&status, "CapEff").unwrap(), 16).unwrap();
    if effective & mask(&["CAP_SYS_RESOURCE"]) != 0 {
        skip("this host grants CAP_SYS_RESOURCE, so a hard limit can be raised");
        return;
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = limit(&limits, "Max open files").1.parse().unwrap();
    let mut bundle = env.bundle();
    bundle.process()["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1000, "hard": hard + 1000}]);
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["RLIMIT_NOFILE"]);
    env.assert_nothing_left(&c.id);
}

#[test]
fn an_unknown_rlimit_fails_create() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["rlimits"] = json!([{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]);
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["RLIMIT_TEST"]);
    env.assert_nothing_left(&c.id);
}

#[test]
fn no_new_privileges() {
    let Some(env) = TestEnv::new() else { return };
    for (value, want) in [(true, "1"), (false, "0")] {
        let mut bundle = env.bundle();
        bundle.process()["noNewPrivileges"] = json!(value);
        bundle.args(&["cat", "/proc/self/status"]);
        let out = env.run(&bundle);
        out.ok();
        assert_eq!(
            status_field(&out.stdout, "NoNewPrivs").as_deref(),
            Some(want),
            "noNewPrivileges {value}"
        );
    }
}

#[test]
fn oom_score_adj() {
    let Some(env) = TestEnv::new() else { return };
    let ours = read_trimmed("/proc/self/oom_score_adj");
    let mut bundle = env.bundle();
    bundle.process()["oomScoreAdj"] = json!(500);
    bundle.args(&["cat", "/proc/self/oom_score_adj"]);
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.stdout.trim(), "500");
    assert_eq!(read_trimmed("/proc/self/oom_score_adj"), ours);
}

#[test]
fn hostname_and_domainname() {
    let Some(env) = TestEnv::new() else { return };
    let host_hostname = read_trimmed("/proc/sys/kernel/hostname");
    let host_domainname = read_trimmed("/proc/sys/kernel/domainname");
    let hostname = other_than(&host_hostname, &["h-test", "h-test-2"]);
    let domainname = other_than(&host_domainname, &["d.test", "d2.test"]);
    let mut bundle = env.bundle();
    bundle.config["hostname"] = json!(hostname);
    bundle.config["domainname"] = json!(domainname);
    bundle.sh("hostname; cat /proc/sys/kernel/domainname");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), [hostname, domainname], "{out}");
    assert_eq!(read_trimmed("/proc/sys/kernel/hostname"), host_hostname);
    assert_eq!(read_trimmed("/proc/sys/kernel/domainname"), host_domainname);
}

#[test]
fn sysctls_are_set_inside_only() {
    let Some(env) = TestEnv::new() else { return };
    let forward = read_trimmed("/proc/sys/net/ipv4/ip_forward");
    let msgmax = read_trimmed("/proc/sys/kernel/msgmax");
    // Values the host does not have (a new network namespace starts with the host's
    // ip_forward; a new IPC namespace with msgmax 8192), whatever dockerd or netavark set.
    let new_forward = other_than(&forward, &["1", "0"]);
    let new_msgmax = other_than(&msgmax, &["12345", "12346"]);
    let mut bundle = env.bundle();
    bundle.linux()["sysctl"] =
        json!({"net.ipv4.ip_forward": new_forward, "kernel.msgmax": new_msgmax});
    bundle.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), [new_forward, new_msgmax], "{out}");
    assert_eq!(read_trimmed("/proc/sys/net/ipv4/ip_forward"), forward);
    assert_eq!(read_trimmed("/proc/sys/kernel/msgmax"), msgmax);
}

#[test]
fn a_sysctl_of_the_host_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let swappiness = read_trimmed("/proc/sys/vm/swappiness");
    let mut bundle = env.bundle();
    bundle.linux()["sysctl"] = json!({"vm.swappiness": other_than(&swappiness, &["1", "2"])});
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["vm.swappiness"]);
    env.assert_nothing_left(&c.id);
    assert_eq!(read_trimmed("/proc/sys/vm/swappiness"), swappiness);
}

#[test]
fn home_defaults_from_etc_passwd() {
    let Some(env) = TestEnv::new() else { return };
    let cases: [(Value, Option<&str>, &str); 4] = [
        (json!({"uid": 0, "gid": 0}), None, "/root"),
        (json!({"uid": 1000, "gid": 100}), None, "/home/user"),
        (json!({"uid": 4242, "gid": 4242}), None, "/"),
        (json!({"uid": 0, "gid": 0}), Some("HOME=/custom"), "/custom"),
    ];
    for (user, home, want) in cases {
        let mut bundle = env.bundle();
        bundle.process()["user"] = user.clone();
        if let Some(home) = home {
            bundle.env(home);
        }
        bundle.sh("echo $HOME");
        let out = env.run(&bundle);
        out.ok();
        assert_eq!(out.stdout.trim(), want, "user {user}, env {home:?}");
    }
}

// ---------------------------------------------------------------------------------------
// process.scheduler and linux.memoryPolicy
// ---------------------------------------------------------------------------------------

/// Fields of /proc/<pid>/stat (1-based, as proc(5) numbers them; the command has no
/// spaces here).
fn stat_fields(stat: &str, fields: &[usize]) -> Vec<String> {
    let words: Vec<&str> = stat.split_whitespace().collect();
    fields.iter().map(|&f| words[f - 1].to_string()).collect()
}

/// The policy (stat field 41), nice (19) and real-time priority (40) of a host pid.
fn sched_of(pid: i32) -> (String, String, String) {
    let stat = read_trimmed(format!("/proc/{pid}/stat"));
    let f = stat_fields(&stat, &[41, 19, 40]);
    (f[0].clone(), f[1].clone(), f[2].clone())
}

/// `features`, parsed.
fn features(env: &TestEnv) -> Value {
    let out = env.runtime(&["features"]);
    out.ok();
    serde_json::from_str(&out.stdout).expect("features prints JSON")
}

#[test]
fn the_scheduler_policy_and_nice_reach_the_process_and_its_children() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    // A child first (busybox sh execs its last command in place).
    bundle.sh("cut -d' ' -f19,41 /proc/self/stat; cut -d' ' -f19,41 /proc/$$/stat");
    let out = env.run(&bundle);
    out.ok();
    // nice 5, SCHED_BATCH (3): a child of the process, and the process.
    assert_eq!(out.lines(), ["5 3", "5 3"], "{out}");

    // SCHED_FIFO with the runtime-spec's name of the reset-on-fork flag: the child is back
    // to SCHED_OTHER (the kernel resets real-time policies only).
    bundle.process()["scheduler"] =
        json!({"policy": "SCHED_FIFO", "priority": 2, "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    bundle.linux()["resources"] =
        json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}});
    bundle.sh("cut -d' ' -f41 /proc/self/stat; cut -d' ' -f41 /proc/$$/stat");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), ["0", "1"], "{out}");
}

/// Real-time and deadline policies (read from the host: a deadline task may not fork).
/// A real-time policy needs real-time time in the container's cpu cgroup when the kernel
/// has group real-time scheduling; without it the kernel's refusal names the field.
#[test]
fn real_time_and_deadline_policies() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "1000"]);
    bundle.process()["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
    bundle.linux()["resources"] =
        json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}});
    let c = env.create_started(&bundle);
    assert_eq!(sched_of(c.pid()), ("1".into(), "0".into(), "10".into()));
    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();

    let rt_group = cgroup_v1_file_exists("cpu", "cpu.rt_runtime_us");
    bundle.linux().as_object_mut().unwrap().remove("resources");
    bundle.process()["scheduler"] = json!({"policy": "SCHED_RR", "priority": 3});
    let (out, c) = env.try_create(&bundle, &[]);
    if rt_group {
        out.fails()
            .mentions(&["process.scheduler", "sched_setattr"]);
        env.assert_nothing_left(&c.id);
    } else {
        out.ok();
        assert_eq!(sched_of(c.pid()).0, "2");
        c.delete_force().ok();
    }

    bundle.process()["scheduler"] = json!({"policy": "SCHED_DEADLINE",
        "runtime": 1_000_000, "deadline": 10_000_000, "period": 10_000_000});
    let c = env.create_started(&bundle);
    assert_eq!(sched_of(c.pid()).0, "6");
    c.kill("KILL").ok();
}

/// Whether the host's v1 `controller` hierarchy has `file` at its top.
fn cgroup_v1_file_exists(controller: &str, file: &str) -> bool {
    std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(file)
        .exists()
}

#[test]
fn bad_scheduler_settings_fail_create_naming_the_field() {
    let Some(env) = TestEnv::new() else { return };
    for (scheduler, field) in [
        (
            json!({"policy": "SCHED_OTHER", "nice": 20}),
            "process.scheduler.nice",
        ),
        (
            json!({"policy": "SCHED_FIFO"}),
            "process.scheduler.priority",
        ),
        (json!({"policy": "SCHED_ISO"}), "process.scheduler.policy"),
        (
            json!({"policy": "SCHED_DEADLINE", "runtime": 5000, "deadline": 10}),
            "process.scheduler.deadline",
        ),
    ] {
        let mut bundle = env.bundle();
        bundle.process()["scheduler"] = scheduler;
        let (out, c) = env.try_create(&bundle, &[]);
        out.fails().mentions(&[field]);
        env.assert_nothing_left(&c.id);
    }
}

/// `exec --process` with a scheduler: the exec'd process gets it.
#[test]
fn exec_applies_the_process_scheduler() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    let mut p = bundle.config["process"].clone();
    p["args"] = json!(["sh", "-c", "cut -d' ' -f19,41 /proc/self/stat"]);
    p["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 9});
    let file = env.dir().join("process-scheduler.json");
    std::fs::write(&file, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = env.runtime(&["exec", "--process", file.to_str().unwrap(), &c.id]);
    c.kill("KILL").ok();
    out.ok();
    assert_eq!(out.stdout.trim(), "9 3", "{out}");
}

/// Every policy `features` lists works (each with the values it needs).
#[test]
fn every_scheduler_policy_features_lists_works() {
    let Some(env) = TestEnv::new() else { return };
    let v = features(&env);
    let policies = v["annotations"]["io.github.berth.process.scheduler.policies"]
        .as_str()
        .expect("features names the scheduler policies");
    let numbers = [
        ("SCHED_OTHER", "0"),
        ("SCHED_FIFO", "1"),
        ("SCHED_RR", "2"),
        ("SCHED_BATCH", "3"),
        ("SCHED_IDLE", "5"),
        ("SCHED_DEADLINE", "6"),
    ];
    for policy in policies.split(',') {
        let mut bundle = env.bundle();
        bundle.args(&["sleep", "1000"]);
        let scheduler = match policy {
            "SCHED_FIFO" | "SCHED_RR" => json!({"policy": policy, "priority": 1}),
            "SCHED_DEADLINE" => json!({"policy": policy, "runtime": 1_000_000,
                "deadline": 10_000_000, "period": 10_000_000}),
            _ => json!({"policy": policy}),
        };
        bundle.process()["scheduler"] = scheduler;
        bundle.linux()["resources"] =
            json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}});
        let c = env.create_started(&bundle);
        let want = numbers
            .iter()
            .find(|(n, _)| *n == policy)
            .unwrap_or_else(|| panic!("features lists an unknown policy {policy}"))
            .1;
        assert_eq!(sched_of(c.pid()).0, want, "{policy}");
        c.kill("KILL").ok();
    }
    let flags = v["annotations"]["io.github.berth.process.scheduler.flags"]
        .as_str()
        .expect("features names the scheduler flags");
    assert!(
        flags.split(',').any(|f| f == "SCHED_FLAG_RESET_ON_FORK"),
        "{flags}"
    );
}

/// The first memory node the host does not have.
fn missing_node() -> u32 {
    let online = read_trimmed("/sys/devices/system/node/online");
    let last = online
        .split([',', '-'])
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .expect("some node is online");
    last + 1
}

/// linux.memoryPolicy: the container's process and exec'd ones get it (numa_maps shows the
/// policy of every mapping); a node the host lacks fails create naming the field.
#[test]
fn the_memory_policy_reaches_the_container_and_exec() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"});
    bundle.sh("grep -c interleave:0 /proc/self/numa_maps; exec sleep 1000");
    let c = env.create_started(&bundle);
    c.wait_output("\n", STATUS_TIMEOUT);
    assert_ne!(c.stdout().trim(), "0", "{}", c.stdout());
    let out = env.runtime(&[
        "exec",
        &c.id,
        "grep",
        "-c",
        "interleave:0",
        "/proc/self/numa_maps",
    ]);
    c.kill("KILL").ok();
    out.ok();
    assert_ne!(out.stdout.trim(), "0", "{out}");

    let node = missing_node().to_string();
    bundle.linux()["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": node});
    bundle.args(&["true"]);
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["linux.memoryPolicy", "MPOL_BIND"]);
    env.assert_nothing_left(&c.id);

    bundle.linux()["memoryPolicy"] = json!({"mode": "MPOL_LOCAL", "nodes": "0"});
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["linux.memoryPolicy.nodes"]);
    env.assert_nothing_left(&c.id);
}

/// Every memory policy mode and flag `features` lists works here.
#[test]
fn every_memory_policy_features_lists_works() {
    let Some(env) = TestEnv::new() else { return };
    let v = features(&env);
    let modes = v["linux"]["memoryPolicy"]["modes"]
        .as_array()
        .expect("modes");
    let flags = v["linux"]["memoryPolicy"]["flags"]
        .as_array()
        .expect("flags");
    let shown = |mode: &str| match mode {
        "MPOL_DEFAULT" => "default",
        "MPOL_PREFERRED" => "prefer:0",
        "MPOL_BIND" => "bind:0",
        "MPOL_INTERLEAVE" => "interleave:0",
        "MPOL_LOCAL" => "local",
        "MPOL_PREFERRED_MANY" => "prefer (many):0",
        "MPOL_WEIGHTED_INTERLEAVE" => "weighted interleave:0",
        other => panic!("features lists an unknown mode {other}"),
    };
    let cases: Vec<Value> = modes
        .iter()
        .map(|m| {
            let m = m.as_str().unwrap();
            match m {
                "MPOL_DEFAULT" | "MPOL_LOCAL" => json!({"mode": m}),
                _ => json!({"mode": m, "nodes": "0"}),
            }
        })
        .collect();
    let cases = cases.into_iter().map(|p| {
        let want = shown(p["mode"].as_str().unwrap()).to_string();
        (p, want)
    });
    // numa_maps shows a flag as "bind=static:0".
    let flag_cases = flags.iter().map(|f| {
        let word = match f.as_str().unwrap() {
            "MPOL_F_NUMA_BALANCING" => "balancing",
            "MPOL_F_RELATIVE_NODES" => "relative",
            "MPOL_F_STATIC_NODES" => "static",
            other => panic!("features lists an unknown flag {other}"),
        };
        let policy = json!({"mode": "MPOL_BIND", "nodes": "0", "flags": [f]});
        (policy, format!("bind={word}:0"))
    });
    for (policy, want) in cases.chain(flag_cases) {
        let mut bundle = env.bundle();
        bundle.linux()["memoryPolicy"] = policy.clone();
        bundle.sh("head -1 /proc/self/numa_maps");
        let out = env.run(&bundle);
        out.ok();
        assert!(out.stdout.contains(&format!(" {want} ")), "{policy}: {out}");
    }
}
