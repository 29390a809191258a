//! Reliability: many lifecycles in a row and at once leave nothing behind (mounts, cgroups,
//! descriptors, zombies, state dirs), and a runtime killed by SIGKILL at any step of
//! create, start, exec or delete leaves nothing that `delete --force` does not remove.
//!
//! The kills use the debug build's test hook: `BERTH_TEST_KILL_AT=<step>` makes the runtime
//! SIGKILL itself when it reaches that step (crates/container/src/kill_point.rs).
//!
//! `cargo test -p berth-runtime --test reliability` runs 100 sequential and 100 parallel
//! lifecycles; the 1000-lifecycle soak is `-- --ignored soak` (BERTH_SOAK_N overrides).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The variable of the runtime's kill hook.
const KILL_AT: &str = "BERTH_TEST_KILL_AT";

/// The steps of `create`, in order.
const CREATE_STEPS: &[&str] = &[
    "create:reserved",
    "create:pending",
    "create:cgroup",
    "create:spawned",
    "create:setup",
    "create:saved",
];
const START_STEPS: &[&str] = &["start:connected", "start:socket-removed", "start:sent"];
const EXEC_STEPS: &[&str] = &["exec:forked", "exec:attached", "exec:execd"];
const DELETE_STEPS: &[&str] = &["delete:killed", "delete:cgroup", "delete:unmounted"];

/// The descriptors a process has open, by number.
fn fds_of(pid: i32) -> BTreeSet<i32> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The descriptors of a process above its stdio as `number -> what`, without what differs
/// from one run to the next: the inode numbers of pipes and sockets, the container's id in
/// paths.
fn described_fds(pid: i32, id: &str) -> Vec<String> {
    fds_of(pid)
        .into_iter()
        .filter(|fd| *fd > 2)
        .map(|fd| {
            let target = fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|t| t.to_string_lossy().replace(id, "<id>"))
                .unwrap_or_default();
            let kind = match target.split_once(":[") {
                Some((kind @ ("pipe" | "socket"), _)) => kind.to_string(),
                _ => target,
            };
            format!("{fd} -> {kind}")
        })
        .collect()
}

/// Zombies whose parent is this test process or one of the test's processes.
fn zombies_of(env: &TestEnv) -> Vec<i32> {
    let me = std::process::id() as i32;
    let parents: BTreeSet<i32> = env.processes().into_iter().chain([me]).collect();
    let mut zombies = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(('Z', ppid)) = proc_state_ppid(pid)
            && parents.contains(&ppid)
        {
            zombies.push(pid);
        }
    }
    zombies
}

/// The entries of the state root other than the runtime's own (`seccomp:cache`, and
/// `spare:`, the emptied directories kept for the next create).
fn state_dirs(root: &Path) -> Vec<String> {
    fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.contains(':'))
        .collect()
}

/// Reaps orphans while it lives. A process the killed runtime had forked into the
/// container's pid namespace (an exec child) is re-parented to us, the subreaper, as it
/// would be to a shim; until it is reaped, the container's init cannot finish exiting, and
/// `delete --force` would wait for it in vain.
struct Reaper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reaper {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                reap_orphans();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Reaper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A command of the runtime that SIGKILLs itself at `step`.
fn killed_at(env: &TestEnv, step: &str, args: &[&str]) -> Out {
    let io = env.io_files();
    let mut cmd = env.command(args);
    cmd.env(KILL_AT, step);
    let out = run_to_files(&mut cmd, &io, COMMAND_TIMEOUT);
    assert_eq!(
        out.code,
        128 + 9,
        "{step}: the runtime was not killed there (is the hook compiled in?):\n{out}"
    );
    out
}

/// After a kill: `delete --force` succeeds and leaves nothing, and the same id can be
/// created, started, killed and deleted again.
#[track_caller]
fn clean_and_reuse(env: &TestEnv, bundle: &Bundle, id: &str, step: &str) {
    let out = env.runtime(&["delete", "--force", id]);
    assert!(out.success(), "{step}: delete --force failed:\n{out}");
    env.assert_nothing_left(id);
    let bundle_dir = bundle.dir.to_str().unwrap();
    let (out, io) = env.runtime_to_files(&["create", "--bundle", bundle_dir, id], COMMAND_TIMEOUT);
    assert!(
        out.success(),
        "{step}: create of the same id failed:\n{out}"
    );
    let c = Container {
        env,
        id: id.to_string(),
        io,
    };
    c.start().ok();
    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();
    env.assert_nothing_left(id);
}

fn sleeper(env: &TestEnv) -> Bundle {
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    bundle.save();
    bundle
}

fn killed_create(env: &TestEnv, bundle: &Bundle) {
    let bundle_dir = bundle.dir.to_str().unwrap();
    for step in CREATE_STEPS {
        let id = env.new_id();
        killed_at(env, step, &["create", "--bundle", bundle_dir, &id]);
        clean_and_reuse(env, bundle, &id, step);
    }
}

#[test]
fn a_create_killed_at_any_step_is_cleaned_by_delete_force() {
    let Some(env) = TestEnv::new() else { return };
    killed_create(&env, &sleeper(&env));
}

/// Without a mount namespace the container's mounts are on the host (under the rootfs), and
/// a read-only root is a bind there: a killed create must not leave them.
#[test]
fn a_create_killed_without_a_mount_namespace_leaves_no_host_mount() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = sleeper(&env);
    bundle.without_namespace("mount");
    bundle.config["root"]["readonly"] = serde_json::json!(true);
    bundle.save();
    killed_create(&env, &bundle);
}

/// A create killed before its record exists, then a delete killed while cleaning that up:
/// a second delete still finishes the job.
#[test]
fn a_delete_killed_after_a_killed_create_is_finished_by_the_next() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = sleeper(&env);
    let bundle_dir = bundle.dir.to_str().unwrap();
    let id = env.new_id();
    killed_at(
        &env,
        "create:setup",
        &["create", "--bundle", bundle_dir, &id],
    );
    killed_at(&env, "delete:pending", &["delete", "--force", &id]);
    clean_and_reuse(&env, &bundle, &id, "delete:pending");
}

#[test]
fn a_start_killed_at_any_step_is_cleaned_by_delete_force() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = sleeper(&env);
    for step in START_STEPS {
        let c = env.create(&bundle);
        killed_at(&env, step, &["start", &c.id]);
        clean_and_reuse(&env, &bundle, &c.id, step);
    }
}

#[test]
fn an_exec_killed_at_any_step_is_cleaned_by_delete_force() {
    let Some(env) = TestEnv::new() else { return };
    let _reaper = Reaper::start();
    let bundle = sleeper(&env);
    for step in EXEC_STEPS {
        let c = env.create_started(&bundle);
        killed_at(&env, step, &["exec", &c.id, "sleep", "50"]);
        // The container goes on running: a killed exec is not the container's end.
        assert_eq!(c.status(), "running", "{step}");
        clean_and_reuse(&env, &bundle, &c.id, step);
    }
}

#[test]
fn a_delete_killed_at_any_step_is_finished_by_the_next() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = sleeper(&env);
    for step in DELETE_STEPS {
        let c = env.create_started(&bundle);
        killed_at(&env, step, &["delete", "--force", &c.id]);
        clean_and_reuse(&env, &bundle, &c.id, step);
    }
}

/// What one lifecycle leaves: descriptors of the init before start and of the process
/// after it, as numbers.
struct Observed {
    init_fds: BTreeSet<i32>,
    process_fds: BTreeSet<i32>,
}

/// create, start, kill, delete of a new container (the bundle is saved already: lifecycles
/// in parallel share it). Asserts that nothing of it is left: with `alone`, nothing of the
/// test at all; otherwise its state dir and cgroups (the test's other processes are the
/// other lifecycles').
fn lifecycle(env: &TestEnv, bundle: &Bundle, alone: bool) -> Observed {
    let id = env.new_id();
    let bundle_dir = bundle.dir.to_str().unwrap();
    let (out, io) = env.runtime_to_files(&["create", "--bundle", bundle_dir, &id], COMMAND_TIMEOUT);
    out.ok();
    let c = Container { env, id, io };
    let pid = c.pid();
    let init_fds = fds_of(pid);
    c.start().ok();
    // The process is `sleep` once start returned (start waits for the exec).
    let process_fds = fds_of(pid);
    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();
    if alone {
        env.assert_nothing_left(&c.id);
    } else {
        assert!(!c.state_dir().exists(), "{}: state dir left", c.id);
        assert_eq!(env.cgroups_of(&c.id), Vec::<std::path::PathBuf>::new());
        assert!(!process_alive(pid), "{}: its process {pid} survived", c.id);
    }
    Observed {
        init_fds,
        process_fds,
    }
}

/// `n` lifecycles one after the other, then `run`s whose supervising runtime is watched.
fn lifecycles_in_sequence(n: usize) {
    let Some(env) = TestEnv::new() else { return };
    let bundle = sleeper(&env);
    let started = Instant::now();
    let first = lifecycle(&env, &bundle, true);
    // The process has exactly its stdio: nothing of the runtime's leaks into it.
    assert_eq!(
        first.process_fds,
        BTreeSet::from([0, 1, 2]),
        "the container's process has more than its stdio open"
    );
    for i in 1..n {
        let seen = lifecycle(&env, &bundle, true);
        assert_eq!(
            seen.init_fds, first.init_fds,
            "lifecycle {i}: the init's descriptors changed"
        );
        assert_eq!(
            seen.process_fds, first.process_fds,
            "lifecycle {i}: the process's descriptors changed"
        );
        if i % 50 == 0 {
            reap_orphans();
            assert_eq!(
                zombies_of(&env),
                Vec::<i32>::new(),
                "lifecycle {i}: zombies"
            );
        }
    }
    reap_orphans();
    assert_eq!(zombies_of(&env), Vec::<i32>::new(), "zombies after {n}");
    assert_eq!(state_dirs(env.state_root()), Vec::<String>::new());
    assert_eq!(env.host_mounts(), Vec::<String>::new());
    eprintln!(
        "{n} sequential lifecycles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    runtime_descriptors_stay_put(&env);
}

/// The runtime of a foreground `run` supervises the container: its descriptors are the same
/// from one run to the next.
fn runtime_descriptors_stay_put(env: &TestEnv) {
    let mut seen: Option<Vec<String>> = None;
    for i in 0..5 {
        let mut bundle = env.bundle();
        bundle.sh("touch /tmp/running; while [ ! -e /tmp/stop ]; do sleep 0.02; done");
        bundle.save();
        let id = env.new_id();
        let io = env.io_files();
        let mut cmd = env.command(&["run", "--bundle", bundle.dir.to_str().unwrap(), &id]);
        cmd.stdout(fs::File::create(&io.stdout).unwrap())
            .stderr(fs::File::create(&io.stderr).unwrap());
        let child = spawn(&mut cmd);
        let run_pid = child.id() as i32;
        let running = bundle.rootfs.join("tmp/running");
        wait_until(STATUS_TIMEOUT, || running.exists())
            .unwrap_or_else(|| panic!("run {i} did not start: {:?}", io.stderr()));
        // The runtime supervises once it holds its signalfd (it opens it after the exec).
        let supervising = || {
            described_fds(run_pid, &id)
                .iter()
                .any(|d| d.ends_with("anon_inode:[signalfd]"))
        };
        wait_until(STATUS_TIMEOUT, supervising).unwrap_or_else(|| {
            panic!(
                "run {i} does not supervise: {:?}",
                described_fds(run_pid, &id)
            )
        });
        let fds = described_fds(run_pid, &id);
        fs::write(bundle.rootfs.join("tmp/stop"), "").unwrap();
        let (status, _, _) = wait_child(child, COMMAND_TIMEOUT).expect("run returns");
        assert_eq!(exit_code(status), 0, "run {i}: {:?}", io.stderr());
        env.assert_nothing_left(&id);
        match &seen {
            None => seen = Some(fds),
            Some(first) => assert_eq!(&fds, first, "run {i}: the runtime's descriptors changed"),
        }
    }
}

#[test]
fn a_hundred_lifecycles_in_sequence_leave_nothing() {
    lifecycles_in_sequence(100);
}

#[test]
#[ignore = "a soak of minutes: cargo test -p berth-runtime --test reliability -- --ignored"]
fn soak_a_thousand_lifecycles_in_sequence() {
    let n = std::env::var("BERTH_SOAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    lifecycles_in_sequence(n);
}

#[test]
fn a_hundred_lifecycles_in_parallel_leave_nothing() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = sleeper(&env);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let observed: Vec<Observed> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..100)
            .map(|_| s.spawn(|| lifecycle(&env, &bundle, false)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a lifecycle failed"))
            .collect()
    });
    assert!(Instant::now() < deadline);
    for seen in &observed {
        assert_eq!(seen.process_fds, BTreeSet::from([0, 1, 2]));
        assert_eq!(seen.init_fds, observed[0].init_fds);
    }
    reap_orphans();
    let left = wait_until(Duration::from_secs(15), || {
        reap_orphans();
        env.processes().is_empty()
    });
    assert!(left.is_some(), "processes left: {:?}", env.processes());
    assert_eq!(zombies_of(&env), Vec::<i32>::new());
    assert_eq!(state_dirs(env.state_root()), Vec::<String>::new());
    assert_eq!(env.host_mounts(), Vec::<String>::new());
    eprintln!(
        "100 parallel lifecycles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
