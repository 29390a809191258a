//! cgroups through the runc command line: limits at create (pids, cpu, memory, devices,
//! hugetlb), `pause`/`resume`, `ps`, `events`, `update` in docker's, podman's and runc's
//! forms, `kill --all`, the cgroupsPath forms of the engines, OOM reporting, and bad input.
//!
//! The tests read the layout they find (see common/cgroups.rs): on this kind of host v1
//! controllers plus a cgroup2 mount with hugetlb (hybrid); in scripts/v2-vm-tests.sh's VM
//! pure v2.

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cgroups::*;
use common::*;
use serde_json::{Value, json};

const MIB: i64 = 1024 * 1024;

/// The pids of `ps --format json ID`.
#[track_caller]
fn ps_json(env: &TestEnv, id: &str) -> Vec<i32> {
    let out = env.runtime(&["ps", "--format", "json", id]);
    out.ok();
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("ps --format json printed no array of pids ({e}):\n{out}"))
}

/// A shell script that forks `sleep`s until fork fails, in a child shell (a busybox shell
/// whose fork fails exits), then reports how many it forked and keeps running.
const FORK_LOOP: &str = "sh -c 'for i in $(seq 100); do sleep 60 & echo $i > /tmp/forked; done' 2>/dev/null; \
     read n < /tmp/forked; echo forked=$n; exec sleep 1000";

/// Waits for FORK_LOOP's report and returns the number of sleeps it forked.
#[track_caller]
fn forked(c: &Container) -> usize {
    c.wait_output("forked=", Duration::from_secs(30));
    let out = c.stdout();
    out.trim()
        .strip_prefix("forked=")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"))
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["pids"] = json!({"limit": 10});
    bundle.sh(FORK_LOOP);
    let c = env.create_started(&bundle);
    let pid = c.pid();
    assert_eq!(Limits::of(pid).pids_limit(), 10);

    // The outer and the inner shell count, as do the transient seq and the last sleep.
    let n = forked(&c);
    assert!(
        (6..=8).contains(&n),
        "forked {n} sleeps under pids.limit 10"
    );
    let events = read_cg(pid, "pids", "pids.events");
    assert!(
        !events.contains("max 0"),
        "pids.events counts no refused fork: {events}"
    );

    let pids = ps_json(&env, &c.id);
    assert!(
        pids.len() <= 10 && pids.len() > n,
        "ps lists {} pids ({pids:?}) for {n} sleeps and the shell under pids.limit 10",
        pids.len()
    );
    assert!(pids.contains(&pid), "ps {pids:?} lacks the init {pid}");
    let s = stats(&env, &c.id);
    assert_eq!(s["data"]["pids"]["limit"], 10, "{s}");
    let current = s["data"]["pids"]["current"].as_u64().expect("pids.current");
    assert!((1..=10).contains(&current), "{s}");
}

#[test]
fn cpu_quota_limits_a_busy_loop_to_a_fifth_of_a_cpu() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["cpu"] = json!({"quota": 20000, "period": 100000});
    bundle.sh("while :; do :; done");
    let c = env.create_started(&bundle);
    let pid = c.pid();
    assert_eq!(Limits::of(pid).cpu_quota_period(), (20000, 100000));

    std::thread::sleep(Duration::from_millis(300));
    // Each reading is dated at the middle of its command; the interval is long against the
    // commands' own duration (slow under emulation).
    let reading = || {
        let before = Instant::now();
        let usage = cpu_total_ns(&stats(&env, &c.id));
        let took = before.elapsed();
        (before + took / 2, usage, took)
    };
    let (t0, u0, took) = reading();
    std::thread::sleep(Duration::from_millis(1500).max(took * 4));
    let (t1, u1, _) = reading();
    let wall = t1 - t0;
    let share = (u1 - u0) as f64 / wall.as_nanos() as f64;
    assert!(
        (0.1..=0.35).contains(&share),
        "the busy loop got {share:.3} of a CPU under quota 20000/100000 ({} ns in {wall:?})",
        u1 - u0
    );
    let s = stats(&env, &c.id);
    let throttled = &s["data"]["cpu"]["throttling"];
    if let Some(periods) = throttled["throttledPeriods"].as_u64() {
        assert!(periods > 0, "no throttled period: {throttled}");
    }
}

/// Whether the container's cgroup says frozen (v1 freezer.state, v2 cgroup.freeze).
fn frozen_in_cgroup(pid: i32) -> bool {
    match try_read_cg(pid, "freezer", "freezer.state") {
        Some(state) => state == "FROZEN",
        None => read_cg(pid, "", "cgroup.freeze") == "1",
    }
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle.sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/counter.new; mv /tmp/counter.new /tmp/counter; sleep 0.05; done");
    let counter_file = bundle.rootfs.join("tmp/counter");
    let counter = || -> u64 {
        fs::read_to_string(&counter_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let c = env.create_started(&bundle);
    let pid = c.pid();
    wait_until(STATUS_TIMEOUT, || counter() > 2).expect("the counter does not count");

    env.runtime(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    assert!(frozen_in_cgroup(pid), "pause did not freeze the cgroup");
    let frozen_at = counter();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(counter(), frozen_at, "the counter moved while paused");

    // exec into a paused container is refused unless asked for; ps still lists it.
    let out = env.runtime(&["exec", &c.id, "true"]);
    out.fails().mentions(&["paused"]);
    assert!(ps_json(&env, &c.id).contains(&pid));
    // Statistics still work.
    stats(&env, &c.id);

    env.runtime(&["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");
    assert!(!frozen_in_cgroup(pid), "resume did not thaw the cgroup");
    wait_until(STATUS_TIMEOUT, || counter() > frozen_at + 2).expect("the counter did not resume");
    // Resuming a running container is an error.
    env.runtime(&["resume", &c.id]).fails();
    // exec works again.
    env.runtime(&["exec", &c.id, "true"]).ok();
}

#[test]
fn limits_at_create_land_in_the_cgroup_files() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    let mut memory = json!({"limit": 64 * MIB, "reservation": 32 * MIB, "swap": 128 * MIB});
    if !is_v2() {
        memory["swappiness"] = json!(10);
    }
    bundle.linux()["resources"]["memory"] = memory;
    bundle.linux()["resources"]["cpu"] = json!({"shares": 512, "cpus": "0"});
    bundle.linux()["resources"]["pids"] = json!({"limit": 77});
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    let l = Limits::of(c.pid());
    assert_eq!(l.memory_limit(), 64 * MIB);
    assert_eq!(l.memory_reservation(), 32 * MIB);
    if let Some(swap) = l.memory_swap() {
        assert_eq!(swap, 128 * MIB);
    }
    if let Some(s) = l.swappiness() {
        assert_eq!(s, 10);
    }
    assert_eq!(l.cpu_shares_or_weight(), l.expected_shares(512));
    assert_eq!(l.cpuset_cpus(), "0");
    assert_eq!(l.pids_limit(), 77);
    // Absent values are the kernel's defaults.
    assert_eq!(l.cpu_quota_period().0, -1);
}

/// A running container with a few limits set, for the update tests.
fn update_target(env: &TestEnv) -> Container<'_> {
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["memory"] = json!({"reservation": 16 * MIB});
    bundle.linux()["resources"]["cpu"] = json!({"shares": 1024, "quota": 50000, "period": 100000});
    bundle.linux()["resources"]["pids"] = json!({"limit": 100});
    bundle.args(&["sleep", "1000"]);
    env.create_started(&bundle)
}

#[test]
fn update_with_dockers_body_on_stdin() {
    let Some(env) = cg_env() else { return };
    let c = update_target(&env);
    let l = Limits::of(c.pid());
    let blkio = l.blkio_weight();
    let cpus = l.cpuset_cpus();
    let body = r#"{"memory":{"limit":67108864,"reservation":0,"swap":67108864,"kernel":0},"cpu":{"shares":512,"quota":0,"period":0},"blockIO":{"weight":0}}"#;
    runtime_stdin(&env, &["update", "--resources", "-", &c.id], body).ok();

    assert_eq!(l.memory_limit(), 64 * MIB);
    if let Some(swap) = l.memory_swap() {
        assert_eq!(swap, 64 * MIB);
    }
    assert_eq!(l.cpu_shares_or_weight(), l.expected_shares(512));
    // Zero means unchanged; absent sections are left alone.
    assert_eq!(l.memory_reservation(), 16 * MIB);
    assert_eq!(l.cpu_quota_period(), (50000, 100000));
    assert_eq!(l.blkio_weight(), blkio);
    assert_eq!(l.pids_limit(), 100);
    assert_eq!(l.cpuset_cpus(), cpus);
    assert_eq!(c.status(), "running");
}

#[test]
fn update_with_podmans_resources_file() {
    let Some(env) = cg_env() else { return };
    let c = update_target(&env);
    let l = Limits::of(c.pid());
    let file = env.dir().join("resources.json");
    fs::write(
        &file,
        json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "memory": {"limit": 100 * MIB, "swap": 200 * MIB},
            "cpu": {"quota": 25000, "period": 50000},
            "pids": {"limit": 42}
        })
        .to_string(),
    )
    .unwrap();
    let arg = format!("--resources={}", file.display());
    env.runtime(&["update", &arg, &c.id]).ok();

    assert_eq!(l.memory_limit(), 100 * MIB);
    if let Some(swap) = l.memory_swap() {
        assert_eq!(swap, 200 * MIB);
    }
    assert_eq!(l.cpu_quota_period(), (25000, 50000));
    assert_eq!(l.pids_limit(), 42);
    assert_eq!(l.cpu_shares_or_weight(), l.expected_shares(1024));
    assert_eq!(l.memory_reservation(), 16 * MIB);
    // The device rules of the update keep the container's default devices usable.
    let out = env.runtime(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        "echo x > /dev/null && head -c 3 /dev/zero | wc -c",
    ]);
    out.ok();
    assert_eq!(out.stdout.trim(), "3", "{out}");
}

#[test]
fn update_with_runcs_flags() {
    let Some(env) = cg_env() else { return };
    let c = update_target(&env);
    let l = Limits::of(c.pid());
    env.runtime(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--cpu-shares",
        "256",
        "--pids-limit",
        "50",
        "--cpu-quota",
        "30000",
        "--cpu-period",
        "60000",
        "--cpuset-cpus",
        "0",
        &c.id,
    ])
    .ok();
    assert_eq!(l.memory_limit(), 128 * MIB);
    if let Some(swap) = l.memory_swap() {
        assert_eq!(swap, 256 * MIB);
    }
    assert_eq!(l.cpu_shares_or_weight(), l.expected_shares(256));
    assert_eq!(l.pids_limit(), 50);
    assert_eq!(l.cpu_quota_period(), (30000, 60000));
    assert_eq!(l.cpuset_cpus(), "0");
    assert_eq!(l.memory_reservation(), 16 * MIB);

    // One flag changes one value.
    env.runtime(&["update", "--pids-limit=60", &c.id]).ok();
    assert_eq!(l.pids_limit(), 60);
    assert_eq!(l.memory_limit(), 128 * MIB);
    assert_eq!(l.cpu_quota_period(), (30000, 60000));

    // Lowering both memory values below the old limit needs the right order on v1
    // (memsw >= limit at every step).
    env.runtime(&["update", "--memory", "32m", "--memory-swap", "48m", &c.id])
        .ok();
    assert_eq!(l.memory_limit(), 32 * MIB);
    if let Some(swap) = l.memory_swap() {
        assert_eq!(swap, 48 * MIB);
    }
    // And raising them again.
    env.runtime(&["update", "--memory", "300m", "--memory-swap", "600m", &c.id])
        .ok();
    assert_eq!(l.memory_limit(), 300 * MIB);
    if let Some(swap) = l.memory_swap() {
        assert_eq!(swap, 600 * MIB);
    }
    // -1 lifts a limit.
    env.runtime(&[
        "update",
        "--pids-limit=-1",
        "--memory=-1",
        "--memory-swap=-1",
        &c.id,
    ])
    .ok();
    assert_eq!(l.pids_limit(), -1);
    assert_eq!(l.memory_limit(), -1);
}

#[test]
fn update_flags_take_negative_values_as_runc_does() {
    let Some(env) = cg_env() else { return };
    let c = update_target(&env);
    let l = Limits::of(c.pid());
    env.runtime(&["update", "--pids-limit", "-1", &c.id]).ok();
    assert_eq!(l.pids_limit(), -1);
    env.runtime(&["update", "--memory", "64m", &c.id]).ok();
    env.runtime(&["update", "--memory", "-1", "--memory-swap", "-1", &c.id])
        .ok();
    assert_eq!(l.memory_limit(), -1);
    env.runtime(&["update", "--cpu-quota", "-1", &c.id]).ok();
    assert_eq!(l.cpu_quota_period().0, -1);
}

#[test]
fn rejected_updates_change_nothing() {
    let Some(env) = cg_env() else { return };
    let c = update_target(&env);
    let l = Limits::of(c.pid());
    env.runtime(&["update", "--memory", "64m", &c.id]).ok();
    let before = l.snapshot();
    let id = c.id.as_str();

    let cases: Vec<(Out, &[&str])> = vec![
        (
            runtime_stdin(
                &env,
                &["update", "--resources", "-", id],
                r#"{"memory":{"limit":"#,
            ),
            &["stdin"],
        ),
        (
            runtime_stdin(&env, &["update", "--resources", "-", id], "[1, 2]"),
            &["--resources"],
        ),
        (
            runtime_stdin(
                &env,
                &["update", "--resources", "-", id],
                r#"{"pids":{"limit":50},"memory":{"limit":-5}}"#,
            ),
            &["memory.limit", "-5"],
        ),
        (
            env.runtime(&["update", "--pids-limit", "50", "--cpuset-cpus", "0-64", id]),
            &["cpu.cpus", "0-64"],
        ),
        (
            env.runtime(&["update", "--memory", "32m", "--memory-swap", "16m", id]),
            &["memory.swap"],
        ),
        (
            env.runtime(&["update", "--pids-limit", "50", "--cpu-shares", "1", id]),
            &["cpu.shares"],
        ),
        (
            env.runtime(&["update", "--cpu-quota", "50000", "--cpu-period", "10", id]),
            &["cpu.period"],
        ),
        (
            env.runtime(&["update", "--memory", "lots", "--pids-limit", "50", id]),
            &["--memory"],
        ),
        (
            env.runtime(&[
                "update",
                "--resources",
                env.dir().join("missing.json").to_str().unwrap(),
                id,
            ]),
            &["missing.json"],
        ),
    ];
    for (out, words) in &cases {
        out.fails().mentions(words);
        assert_eq!(l.snapshot(), before, "{} changed a limit", out.what);
    }
    assert_eq!(c.status(), "running");
    // The record was not changed either: a later valid update of one value works from
    // the old ones.
    env.runtime(&["update", "--pids-limit", "51", id]).ok();
    assert_eq!(l.pids_limit(), 51);
    assert_eq!(l.memory_limit(), 64 * MIB);
}

#[test]
fn update_of_a_stopped_or_unknown_container_fails() {
    let Some(env) = cg_env() else { return };
    let bundle = env.bundle();
    let c = env.create_started(&bundle);
    c.wait_stopped();
    env.runtime(&["update", "--pids-limit", "5", &c.id])
        .fails()
        .mentions(&["stopped"]);
    env.runtime(&[
        "update",
        "--pids-limit",
        "5",
        "berth-test-no-such-container",
    ])
    .fails()
    .mentions(&["berth-test-no-such-container"]);
}

// ---------------------------------------------------------------------------------------
// cgroupsPath
// ---------------------------------------------------------------------------------------

/// The path of this test process's cgroup in the hierarchy of `line` (the runtime, our
/// child, starts in it: relative cgroupsPaths are relative to it).
fn own_path(line: &ProcCgroup) -> String {
    proc_cgroups(std::process::id() as i32)
        .into_iter()
        .find(|l| l.controllers == line.controllers)
        .map(|l| l.path)
        .unwrap_or_else(|| panic!("this process has no cgroup line like {line:?}"))
}

fn join_cgroup(base: &str, rel: &str) -> String {
    format!("{}/{rel}", base.trim_end_matches('/'))
}

/// Creates a container with `cgroups_path` (None: absent) and checks that its process is
/// in that cgroup in every mounted hierarchy, and that `delete` removes the dirs. `id` is
/// the container's id.
fn check_cgroups_path(env: &TestEnv, id: &str, cgroups_path: Option<&str>) {
    check_cgroups_path_of(env, env.bundle(), id, cgroups_path);
}

/// `bundle` (with `cgroupsPath` set to `cgroups_path`) lands its process in that cgroup of
/// every hierarchy, and delete removes them.
fn check_cgroups_path_of(env: &TestEnv, mut bundle: Bundle, id: &str, cgroups_path: Option<&str>) {
    if let Some(p) = cgroups_path {
        bundle.linux()["cgroupsPath"] = json!(p);
    }
    bundle.args(&["sleep", "1000"]);
    let (out, c) = create_as(env, &bundle, id);
    out.ok();
    c.start().ok();
    let pid = c.pid();
    let hs = hierarchies();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for line in proc_cgroups(pid) {
        let Some(h) = hierarchy_of(&line, &hs) else {
            continue;
        };
        let want = match cgroups_path {
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) => join_cgroup(&own_path(&line), p),
            None => join_cgroup(&own_path(&line), id),
        };
        assert_eq!(
            line.path, want,
            "cgroupsPath {cgroups_path:?}: the process is in {line:?}"
        );
        let dir = host_dir(&h, &line.path);
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        assert!(
            procs.lines().any(|p| p.trim() == pid.to_string()),
            "{pid} is not in {}",
            dir.display()
        );
        dirs.push(dir);
    }
    assert!(!dirs.is_empty(), "the process is in no mounted hierarchy");
    c.delete_force().ok();
    for dir in &dirs {
        assert!(!dir.exists(), "delete left {}", dir.display());
    }
    env.assert_nothing_left(id);
}

#[test]
fn cgroups_path_of_podman() {
    let Some(env) = cg_env() else { return };
    let (id, u) = (env.new_id(), env.new_id());
    let parent = format!("/{u}-libpod_parent");
    let mut made = TestCgroups::new();
    made.remove_everywhere_at_drop(&parent);
    check_cgroups_path(&env, &id, Some(&format!("{parent}/libpod-{id}")));
}

#[test]
fn cgroups_path_of_docker() {
    let Some(env) = cg_env() else { return };
    let (id, u) = (env.new_id(), env.new_id());
    let parent = format!("/{u}-docker");
    let mut made = TestCgroups::new();
    made.remove_everywhere_at_drop(&parent);
    check_cgroups_path(&env, &id, Some(&format!("{parent}/{id}")));
}

#[test]
fn a_user_namespaced_container_is_in_its_cgroups() {
    let Some(env) = cg_env() else { return };
    let (id, u) = (env.new_id(), env.new_id());
    let parent = format!("/{u}-userns");
    let mut made = TestCgroups::new();
    made.remove_everywhere_at_drop(&parent);
    let mut bundle = env.bundle();
    bundle.map_user_namespace(100_000);
    check_cgroups_path_of(&env, bundle, &id, Some(&format!("{parent}/{id}")));
}

#[test]
fn cgroups_path_of_ctr() {
    let Some(env) = cg_env() else { return };
    let (id, u) = (env.new_id(), env.new_id());
    // ctr: /<namespace>/<id>, three levels here to check deeper nesting too.
    let ns = format!("/{u}-k8s.io/default");
    let mut made = TestCgroups::new();
    made.remove_everywhere_at_drop(&format!("/{u}-k8s.io/default"));
    made.remove_everywhere_at_drop(&format!("/{u}-k8s.io"));
    check_cgroups_path(&env, &id, Some(&format!("{ns}/{id}")));
}

#[test]
fn cgroups_path_relative() {
    let Some(env) = cg_env() else { return };
    let (id, u) = (env.new_id(), env.new_id());
    let mut made = TestCgroups::new();
    for line in proc_cgroups(std::process::id() as i32) {
        made.remove_everywhere_at_drop(&join_cgroup(&own_path(&line), &u));
    }
    check_cgroups_path(&env, &id, Some(&format!("{u}/{id}")));
}

#[test]
fn cgroups_path_absent_is_the_id() {
    let Some(env) = cg_env() else { return };
    let id = env.new_id();
    check_cgroups_path(&env, &id, None);
}

#[test]
fn a_parent_pids_limit_bounds_the_container() {
    let Some(env) = cg_env() else { return };
    let (id, u) = (env.new_id(), env.new_id());
    let parent = format!("/{u}-parent");
    let mut made = TestCgroups::new();
    let parent_dir = made.make("pids", &parent);
    made.remove_everywhere_at_drop(&parent);
    fs::write(parent_dir.join("pids.max"), "6").unwrap();

    let mut bundle = env.bundle();
    bundle.linux()["cgroupsPath"] = json!(format!("{parent}/{id}"));
    bundle.linux()["resources"]["pids"] = json!({"limit": 100});
    bundle.sh(FORK_LOOP);
    let (out, c) = create_as(&env, &bundle, &id);
    out.ok();
    c.start().ok();
    let n = forked(&c);
    assert!(
        (2..=4).contains(&n),
        "forked {n} sleeps under a parent's pids.max 6 (the container's own limit is 100)"
    );
    assert!(ps_json(&env, &id).len() <= 6);
    let own = cgroup_dir(c.pid(), "pids").unwrap();
    assert_eq!(own.parent(), Some(parent_dir.as_path()));
    c.delete_force().ok();
    assert!(!own.exists(), "delete left {}", own.display());
    assert!(
        parent_dir.exists(),
        "delete removed the parent cgroup the test made"
    );
    env.assert_nothing_left(&id);
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

/// A bundle whose process may mknod, running `script`.
fn mknod_bundle(env: &TestEnv, script: &str) -> Bundle {
    let mut bundle = env.bundle();
    for set in ["bounding", "effective", "permitted"] {
        bundle.process()["capabilities"][set]
            .as_array_mut()
            .expect("capability set")
            .push(json!("CAP_MKNOD"));
    }
    // A node made by the host, so opening it is tested apart from mknod.
    let host_node = bundle.rootfs.join("tmp/hostsda");
    host("mknod", &[host_node.to_str().unwrap(), "b", "8", "0"]).ok();
    bundle.sh(script);
    bundle
}

/// mknod b 8:0 (runc's default rules allow mknod of any device, not its use), then open
/// the container's node and the host's; then the default /dev/null and /dev/zero.
const DEVICE_SCRIPT: &str = "mknod /tmp/sda b 8 0 && echo mknod-ok; \
     head -c1 /tmp/sda > /dev/null 2>/tmp/err; echo sda-rc=$?; cat /tmp/err; \
     head -c1 /tmp/hostsda > /dev/null 2>/tmp/err; echo hostsda-rc=$?; cat /tmp/err; \
     echo x > /dev/null && head -c 2 /dev/zero | wc -c";

#[test]
fn devices_outside_the_allow_list_are_denied() {
    let Some(env) = cg_env() else { return };
    let bundle = mknod_bundle(&env, DEVICE_SCRIPT);
    let out = env.run(&bundle);
    out.ok();
    let text = out.stdout;
    assert!(
        text.contains("sda-rc=1") && text.contains("hostsda-rc=1"),
        "opening b 8:0 worked:\n{text}"
    );
    assert!(
        text.contains("/tmp/hostsda: Operation not permitted"),
        "the host's node was not refused with EPERM:\n{text}"
    );
    if text.contains("mknod-ok") {
        assert!(
            text.contains("/tmp/sda: Operation not permitted"),
            "the container's node was not refused with EPERM:\n{text}"
        );
    }
    // The default devices work.
    assert!(
        text.trim_end().ends_with('2'),
        "/dev/null or /dev/zero failed:\n{text}"
    );
}

#[test]
fn an_allow_rule_permits_a_device() {
    let Some(env) = cg_env() else { return };
    let mut bundle = mknod_bundle(&env, DEVICE_SCRIPT);
    bundle.linux()["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}
    ]);
    let out = env.run(&bundle);
    out.ok();
    let text = out.stdout;
    assert!(text.contains("mknod-ok"), "mknod b 8:0 failed:\n{text}");
    // 8:0 may not exist on this host (ENXIO), but the cgroup lets the open through.
    assert!(
        !text.contains("Operation not permitted"),
        "the allowed device was refused:\n{text}"
    );
    assert!(
        text.trim_end().ends_with('2'),
        "/dev/null or /dev/zero failed:\n{text}"
    );
}

// ---------------------------------------------------------------------------------------
// kill --all, events, OOM
// ---------------------------------------------------------------------------------------

/// `kill --all ID KILL` of a container with three sleeps beside its init (no pid
/// namespace, so the init's death would not take them along), paused first or not.
fn check_kill_all(paused: bool) {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle
        .without_namespace("pid")
        .sh("sleep 1000 & sleep 1000 & sleep 1000 & echo ready; wait");
    let c = env.create_started(&bundle);
    c.wait_output("ready", STATUS_TIMEOUT);
    let pids = poll(STATUS_TIMEOUT, || {
        let p = ps_json(&env, &c.id);
        (p.len() == 4).then_some(p)
    })
    .expect("ps does not list the shell and its three sleeps");
    let dirs: Vec<PathBuf> = cgroup_dirs(c.pid()).into_iter().map(|(_, d)| d).collect();
    if paused {
        env.runtime(&["pause", &c.id]).ok();
    }
    env.runtime(&["kill", "--all", &c.id, "KILL"]).ok();
    wait_until(STATUS_TIMEOUT, || pids.iter().all(|p| !process_alive(*p))).unwrap_or_else(|| {
        let alive: Vec<String> = pids
            .iter()
            .filter(|p| process_alive(**p))
            .map(|p| describe_process(*p))
            .collect();
        panic!("kill --all KILL (paused: {paused}) left {alive:?}")
    });
    c.wait_stopped();
    for dir in &dirs {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        assert!(
            procs.trim().is_empty(),
            "{} still has {procs}",
            dir.display()
        );
    }
    c.delete().ok();
    env.assert_nothing_left(&c.id);
}

#[test]
fn kill_all_kills_every_process_of_the_cgroup() {
    check_kill_all(false);
}

#[test]
fn kill_all_kills_every_process_of_a_paused_container() {
    check_kill_all(true);
}

#[test]
fn events_stats_has_runcs_shape() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["pids"] = json!({"limit": 20});
    bundle.linux()["resources"]["memory"] = json!({"limit": 100 * MIB});
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    let s = stats(&env, &c.id);
    assert_eq!(s["type"], "stats", "{s}");
    assert_eq!(s["id"], c.id.as_str(), "{s}");
    let data = &s["data"];
    assert!(data["cpu"]["usage"]["total"].is_u64(), "{s}");
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{s}"
    );
    assert_eq!(data["memory"]["usage"]["limit"], 100 * MIB, "{s}");
    assert_eq!(data["pids"]["current"], 1, "{s}");
    assert_eq!(data["pids"]["limit"], 20, "{s}");

    let events = Background::runtime(&env, &["events", "--interval", "100ms", &c.id]);
    let two = wait_until(Duration::from_secs(10), || {
        event_lines(&events.stdout()).len() >= 2
    });
    assert!(
        two.is_some(),
        "events printed no stats: {}",
        events.describe()
    );
    for e in event_lines(&events.stdout()) {
        assert_eq!(e["type"], "stats", "{e}");
        assert_eq!(e["id"], c.id.as_str(), "{e}");
        assert_eq!(e["data"]["pids"]["limit"], 20, "{e}");
    }
}

#[test]
fn events_ends_when_the_container_is_deleted() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    let mut events = Background::runtime(&env, &["events", "--interval", "100ms", &c.id]);
    assert!(
        events.wait_stdout("\"stats\"", Duration::from_secs(10)),
        "events printed nothing: {}",
        events.describe()
    );
    c.delete_force().ok();
    let code = events.wait(Duration::from_secs(10));
    assert_eq!(
        code,
        Some(0),
        "events did not end with its container: {}",
        events.describe()
    );
}

#[test]
fn events_and_ps_of_an_unknown_container_fail() {
    let Some(env) = cg_env() else { return };
    for cmd in [
        &["events", "--stats", "berth-test-nope"][..],
        &["ps", "berth-test-nope"],
        &["pause", "berth-test-nope"],
        &["resume", "berth-test-nope"],
    ] {
        env.runtime(cmd).fails().mentions(&["berth-test-nope"]);
    }
}

#[test]
fn oom_kill_of_a_memory_hog_is_reported() {
    let Some(env) = cg_env() else { return };
    let id = env.new_id();
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["memory"] = json!({"limit": 32 * MIB, "swap": 32 * MIB});
    // The hog waits for the test's signal (a file) so that events watches from the start.
    bundle.sh(
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; exec dd if=/dev/zero of=/dev/null bs=128M count=1",
    );
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
    c.wait_status("running", Duration::from_secs(30));
    let memory_dir = cgroup_dir(c.pid(), "memory").expect("memory cgroup");
    let mut events = Background::runtime(&env, &["events", "--interval", "1s", &id]);
    assert!(
        events.wait_stdout("\"stats\"", Duration::from_secs(20)),
        "events printed nothing: {}",
        events.describe()
    );
    fs::write(bundle.rootfs.join("tmp/go"), "").unwrap();

    let code = run.wait(Duration::from_secs(60));
    assert_eq!(
        code,
        Some(137),
        "run did not exit 128+SIGKILL: {}",
        run.describe()
    );
    assert_eq!(c.status(), "stopped");
    assert_oom_reported(&memory_dir, &events, &id);
    let said = format!("container {id} was killed by the kernel: out of memory (limit 32 MiB)");
    assert!(
        run.stderr().contains(&said),
        "run did not say {said:?}: {}",
        run.describe()
    );
    for e in event_lines(&events.stdout()) {
        assert_eq!(e["id"], id.as_str(), "{e}");
    }
    c.delete().ok();
    assert!(!memory_dir.exists());
    // (events_ends_when_the_container_is_deleted checks that events ends by itself.)
    events.kill();
    env.assert_nothing_left(&id);
}

/// memory.kernelTCP: the v1 memory controller's kernel TCP limit, set at create and by
/// update; cgroup v2 has none, and says so naming the field.
#[test]
fn kernel_tcp_memory_is_limited_on_v1_and_refused_on_v2() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["memory"] = json!({"kernelTCP": 8 * MIB});
    bundle.args(&["sleep", "1000"]);
    let memory_v2 = hierarchies()
        .iter()
        .all(|h| h.v2 || !h.controllers.iter().any(|c| c == "memory"));
    if memory_v2 {
        let (out, c) = env.try_create(&bundle, &[]);
        out.fails()
            .mentions(&["linux.resources.memory.kernelTCP", "cgroup v2"]);
        env.assert_nothing_left(&c.id);
        return;
    }
    let c = env.create_started(&bundle);
    let file = "memory.kmem.tcp.limit_in_bytes";
    assert_eq!(read_cg(c.pid(), "memory", file), (8 * MIB).to_string());
    let body = format!(r#"{{"memory":{{"kernelTCP":{}}}}}"#, 4 * MIB);
    runtime_stdin(&env, &["update", "--resources", "-", &c.id], &body).ok();
    assert_eq!(read_cg(c.pid(), "memory", file), (4 * MIB).to_string());
    let out = runtime_stdin(
        &env,
        &["update", "--resources", "-", &c.id],
        r#"{"memory":{"kernelTCP":-2}}"#,
    );
    out.fails().mentions(&["linux.resources.memory.kernelTCP"]);
    assert_eq!(read_cg(c.pid(), "memory", file), (4 * MIB).to_string());
    c.kill("KILL").ok();
}

/// A process that needs 64 MiB at once (dd's buffer, filled from /dev/zero).
const MEMORY_HOG: &[&str] = &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];

/// A bundle whose process is [`MEMORY_HOG`] under a 16 MiB limit (swap included).
fn oom_bundle(env: &TestEnv) -> Bundle {
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["memory"] = json!({"limit": 16 * MIB, "swap": 16 * MIB});
    bundle.args(MEMORY_HOG);
    bundle.save();
    bundle
}

/// The `msg` of the last error line of a log file in `format`, whole lines otherwise.
fn last_error(log: &std::path::Path, format: &str) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let line = text
        .lines()
        .rfind(|l| l.contains("error"))
        .unwrap_or_else(|| panic!("no error line in the {format} log: {text:?}"));
    if format == "json" {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["level"], "error", "{line}");
        v["msg"].as_str().unwrap().to_string()
    } else {
        assert!(line.contains("level=error"), "{line}");
        line.to_string()
    }
}

/// `run` of a process the kernel's OOM killer kills says so, naming the container and the
/// limit, on stderr and in the --log in both formats; without --log on stderr, in the log
/// line shape. A SIGKILL from someone else is not called an OOM kill.
#[test]
fn run_says_when_the_kernels_oom_killer_killed_the_process() {
    let Some(env) = cg_env() else { return };
    let bundle = oom_bundle(&env);
    let dir = bundle.dir.to_str().unwrap();
    for format in ["json", "text"] {
        let id = env.new_id();
        let want = format!("container {id} was killed by the kernel: out of memory (limit 16 MiB)");
        let log = env.dir().join(format!("run-{format}.log"));
        let log_arg = log.to_str().unwrap();
        let args = [
            "--log",
            log_arg,
            "--log-format",
            format,
            "run",
            "--bundle",
            dir,
            &id,
        ];
        let out = env.runtime(&args);
        assert_eq!(out.code, 137, "{out}");
        assert!(
            out.stderr.contains(&want),
            "stderr does not say {want:?}:\n{out}"
        );
        assert!(
            last_error(&log, format).contains(&want),
            "the {format} log does not say {want:?}: {:?}",
            fs::read_to_string(&log)
        );
        env.assert_nothing_left(&id);
    }
    // Without --log: the log line on stderr.
    let id = env.new_id();
    let out = env.runtime(&["run", "--bundle", dir, &id]);
    assert_eq!(out.code, 137, "{out}");
    out.mentions(&[
        "level=error",
        &format!("container {id} was killed by the kernel: out of memory (limit 16 MiB)"),
    ]);

    // The control: killed by SIGKILL, but not for memory.
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["memory"] = json!({"limit": 16 * MIB, "swap": 16 * MIB});
    // Not the pid namespace's init, which cannot be killed from inside.
    bundle.without_namespace("pid");
    bundle.sh("kill -KILL $$");
    let out = env.run(&bundle);
    assert_eq!(out.code, 137, "{out}");
    assert!(
        !out.all().contains("memory"),
        "a plain SIGKILL was called an OOM kill:\n{out}"
    );
}

/// A container started with create/start that the OOM killer killed: `state` counts the
/// kills in an annotation and `delete` says what happened (stderr and --log).
#[test]
fn state_and_delete_tell_of_oom_kills() {
    let Some(env) = cg_env() else { return };
    let bundle = oom_bundle(&env);
    let c = env.create_started(&bundle);
    c.wait_stopped();
    let state = c.state();
    assert_eq!(state["annotations"]["berth.oom-kills"], "1", "{state}");
    let log = env.dir().join("delete.log");
    let out = c.runtime(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "delete",
        &c.id,
    ]);
    out.ok();
    let want = format!(
        "container {}: a process killed by the kernel's OOM killer: out of memory (limit 16 MiB)",
        c.id
    );
    assert!(out.stderr.contains(&want), "{out}");
    let logged = fs::read_to_string(&log).unwrap();
    let line: Value = serde_json::from_str(logged.lines().last().unwrap()).unwrap();
    assert_eq!(line["msg"], want.as_str(), "{logged}");
    env.assert_nothing_left(&c.id);

    // Without kills: no annotation, nothing said.
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["memory"] = json!({"limit": 16 * MIB, "swap": 16 * MIB});
    let c = env.create_started(&bundle);
    c.wait_stopped();
    let state = c.state();
    assert!(
        state["annotations"].get("berth.oom-kills").is_none(),
        "{state}"
    );
    let out = c.delete();
    out.ok();
    assert_eq!(out.stderr, "", "{out}");
}

// ---------------------------------------------------------------------------------------
// hugetlb (hybrid: on the cgroup2 mount)
// ---------------------------------------------------------------------------------------

fn page_size_bytes(size: &str) -> i64 {
    let (n, unit) = size.split_at(size.len() - 2);
    let n: i64 = n.parse().unwrap();
    n * match unit {
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        other => panic!("unit {other}"),
    }
}

#[test]
fn hugepage_limits_land_in_the_hugetlb_controller() {
    let Some(env) = cg_env() else { return };
    let sizes = hugepage_sizes();
    if sizes.is_empty() {
        skip("this host has no huge page sizes (/sys/kernel/mm/hugepages)");
        return;
    }
    let limits: Vec<Value> = sizes
        .iter()
        .map(|s| json!({"pageSize": s, "limit": 4 * page_size_bytes(s)}))
        .collect();
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["hugepageLimits"] = json!(limits);
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    let dir = cgroup_dir(c.pid(), "hugetlb").expect("no hierarchy has hugetlb");
    let on_v2 = hierarchies()
        .iter()
        .any(|h| h.v2 && h.controllers.iter().any(|c| c == "hugetlb") && dir.starts_with(&h.mount));
    for size in &sizes {
        let file = if on_v2 {
            format!("hugetlb.{size}.max")
        } else {
            format!("hugetlb.{size}.limit_in_bytes")
        };
        let value = fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()));
        assert_eq!(
            parse_limit(value.trim()),
            4 * page_size_bytes(size),
            "{}/{file}",
            dir.display()
        );
    }
    c.delete_force().ok();
    // A page size the host does not have is refused.
    let mut bad = env.bundle();
    bad.linux()["resources"]["hugepageLimits"] = json!([{"pageSize": "3MB", "limit": 0}]);
    let (out, c) = env.try_create(&bad, &[]);
    out.fails().mentions(&["hugepageLimits[0].pageSize"]);
    env.assert_nothing_left(&c.id);
}

// ---------------------------------------------------------------------------------------
// Bad input at create
// ---------------------------------------------------------------------------------------

#[test]
fn bad_resources_fail_create_naming_the_field() {
    let Some(env) = cg_env() else { return };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "memory",
            json!({"limit": -5}),
            "linux.resources.memory.limit",
        ),
        (
            "memory",
            json!({"limit": 64 * MIB, "swap": 32 * MIB}),
            "linux.resources.memory.swap",
        ),
        (
            "memory",
            json!({"swappiness": 200}),
            "linux.resources.memory.swappiness",
        ),
        (
            "pids",
            json!({"limit": 99_999_999}),
            "linux.resources.pids.limit",
        ),
        ("cpu", json!({"cpus": "0-64"}), "linux.resources.cpu.cpus"),
        ("cpu", json!({"cpus": "zero"}), "linux.resources.cpu.cpus"),
        ("cpu", json!({"quota": 500}), "linux.resources.cpu.quota"),
        (
            "cpu",
            json!({"shares": 99_999_999_999u64}),
            "linux.resources.cpu.shares",
        ),
        (
            "blockIO",
            json!({"weight": 5}),
            "linux.resources.blockIO.weight",
        ),
        (
            "devices",
            json!([{"allow": true, "type": "x", "access": "rwm"}]),
            "linux.resources.devices[0].type",
        ),
        (
            "devices",
            json!([{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwz"}]),
            "linux.resources.devices[0].access",
        ),
    ];
    for (section, value, field) in cases {
        let mut bundle = env.bundle();
        bundle.linux()["resources"][section] = value.clone();
        let (out, c) = env.try_create(&bundle, &[]);
        out.fails().mentions(&[field]);
        env.assert_nothing_left(&c.id);
    }
}

#[test]
fn cgroups_path_with_dot_dot_fails_create() {
    let Some(env) = cg_env() else { return };
    for path in ["/a/../b", "../escape", "x/.."] {
        let mut bundle = env.bundle();
        bundle.linux()["cgroupsPath"] = json!(path);
        let (out, c) = env.try_create(&bundle, &[]);
        out.fails().mentions(&["cgroupsPath", ".."]);
        env.assert_nothing_left(&c.id);
    }
}

#[test]
fn an_absurdly_small_memory_limit_fails_create_with_a_clear_error() {
    let Some(env) = cg_env() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["resources"]["memory"] = json!({"limit": 4096});
    let (out, c) = env.try_create(&bundle, &[]);
    // Whether refused in planning or when the init is OOM-killed during setup, the
    // message must point at the memory limit.
    out.fails().mentions(&["memory"]);
    env.assert_nothing_left(&c.id);
}
