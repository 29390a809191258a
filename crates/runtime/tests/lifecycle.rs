//! The container lifecycle through the runc command line: create, start, state, kill,
//! delete, run, list, spec, features; statuses, pid files, stdio and descriptors.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

#[test]
fn create_start_kill_delete() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let pid_file = env.dir().join("init.pid");
    let (out, c) = env.try_create(&bundle, &["--pid-file", pid_file.to_str().unwrap()]);
    out.ok();

    let state = c.state();
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], c.id.as_str());
    assert_eq!(state["bundle"], bundle.dir.to_str().unwrap());
    assert!(state["ociVersion"].is_string(), "{state}");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    assert!(
        pid > 1 && process_alive(pid),
        "state pid {pid} is no live process"
    );
    // The pid file holds the same pid, in decimal, without a newline.
    let text = fs::read_to_string(&pid_file).unwrap();
    assert_eq!(text, pid.to_string(), "pid file content {text:?}");
    // Before start, the process is still the runtime's fork, not the user program.
    assert_ne!(read_trimmed(format!("/proc/{pid}/comm")), "sleep");

    // The container has cgroups named after it, with its process in them.
    let cgroups = env.cgroups_of(&c.id);
    assert!(!cgroups.is_empty(), "no cgroup named after {}", c.id);
    assert!(
        cgroups.iter().any(|d| {
            fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.trim() == pid.to_string())
        }),
        "the process {pid} is in none of {cgroups:?}"
    );

    c.start().ok();
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid, "the pid changed at start");
    assert_eq!(read_trimmed(format!("/proc/{pid}/comm")), "sleep");

    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();
    let out = c.try_state();
    out.fails().mentions(&[&c.id]);
    assert!(!c.state_dir().exists(), "delete left the state directory");
    assert_eq!(env.cgroups_of(&c.id), Vec::<std::path::PathBuf>::new());
    env.assert_nothing_left(&c.id);
}

#[test]
fn relative_pid_file_and_bundle_paths() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    bundle.save();
    let id = env.new_id();
    let io = env.io_files();
    let mut cmd = env.command(&["create", "--bundle", ".", "--pid-file", "init.pid", &id]);
    cmd.current_dir(&bundle.dir);
    run_to_files(&mut cmd, &io, COMMAND_TIMEOUT).ok();
    let c = Container { env: &env, id, io };
    let state = c.state();
    assert_eq!(state["bundle"], bundle.dir.to_str().unwrap(), "{state}");
    let pid_file = fs::read_to_string(bundle.dir.join("init.pid")).unwrap();
    assert_eq!(pid_file, state["pid"].to_string());
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("exit 5");
    bundle.save();
    let id = env.new_id();
    let (out, io) = env.runtime_to_files(
        &[
            "run",
            "--keep",
            "--bundle",
            bundle.dir.to_str().unwrap(),
            &id,
        ],
        COMMAND_TIMEOUT,
    );
    assert_eq!(out.code, 5, "{out}");
    let c = Container { env: &env, id, io };
    assert_eq!(c.status(), "stopped");
    c.delete().ok();
    env.assert_nothing_left(&c.id);
}

#[test]
fn state_reports_creating_during_create() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let started = env.dir().join("hook-started");
    let go = env.dir().join("hook-go");
    let script = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.01; done",
        started.display(),
        go.display()
    );
    bundle.hooks(
        "createRuntime",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 20}]),
    );
    bundle.save();
    let id = env.new_id();
    let io = env.io_files();
    let mut cmd = env.command(&["create", "--bundle", bundle.dir.to_str().unwrap(), &id]);
    let c = Container {
        env: &env,
        id: id.clone(),
        io: io.clone(),
    };
    let (state, created) = std::thread::scope(|s| {
        let creator = s.spawn(|| run_to_files(&mut cmd, &io, COMMAND_TIMEOUT));
        wait_until(STATUS_TIMEOUT, || started.exists()).expect("the hook never ran");
        let state = c.try_state();
        fs::write(&go, "").unwrap();
        (state, creator.join().unwrap())
    });
    created.ok();
    state.ok();
    let v: Value = serde_json::from_str(&state.stdout).expect("state JSON");
    assert_eq!(v["status"], "creating", "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(c.status(), "created");
}

#[test]
fn run_exits_with_the_container_status() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.run_sh("echo hello; exit 3");
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(out.stdout, "hello\n");
    let out = env.run_sh("exit 0");
    assert_eq!(out.code, 0, "{out}");
    // run deletes the container when it is done.
    let list = env.runtime(&["list", "--format", "json"]);
    list.ok();
    let v: Value = serde_json::from_str(&list.stdout).unwrap_or(json!([]));
    assert!(
        v.as_array().is_none_or(|a| a.is_empty()),
        "run left containers: {v}"
    );
}

#[test]
fn run_returns_128_plus_signal_when_the_container_is_killed() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    bundle.save();
    let id = env.new_id();
    let io = env.io_files();
    let mut cmd = env.command(&["run", "--bundle", bundle.dir.to_str().unwrap(), &id]);
    let handle = std::thread::scope(|s| {
        let runner = s.spawn(|| run_to_files(&mut cmd, &io, COMMAND_TIMEOUT));
        let c = Container {
            env: &env,
            id: id.clone(),
            io: io.clone(),
        };
        wait_until(STATUS_TIMEOUT, || {
            let out = c.try_state();
            out.success() && out.stdout.contains("\"running\"")
        })
        .expect("the container never ran");
        c.kill("KILL").ok();
        runner.join().unwrap()
    });
    assert_eq!(handle.code, 137, "{handle}");
}

#[test]
fn run_forwards_signals_to_the_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("trap 'echo got-TERM; exit 4' TERM; echo ready; sleep 100 & wait");
    bundle.save();
    let id = env.new_id();
    let io = env.io_files();
    let mut cmd = env.command(&["run", "--bundle", bundle.dir.to_str().unwrap(), &id]);
    cmd.stdout(fs::File::create(&io.stdout).unwrap())
        .stderr(fs::File::create(&io.stderr).unwrap());
    let child = spawn(&mut cmd);
    let runtime_pid = child.id() as i32;
    wait_until(STATUS_TIMEOUT, || io.stdout().contains("ready"))
        .unwrap_or_else(|| panic!("the container never got ready: {:?}", io.stderr()));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(runtime_pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let (status, _, _) = wait_child(child, COMMAND_TIMEOUT).expect("run did not return");
    assert_eq!(exit_code(status), 4, "stderr: {:?}", io.stderr());
    assert_eq!(io.stdout(), "ready\ngot-TERM\n");
}

#[test]
fn run_detached_returns_while_the_container_runs() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("echo started; exec sleep 100");
    bundle.save();
    let id = env.new_id();
    let started = Instant::now();
    let (out, io) = env.runtime_to_files(
        &["run", "-d", "--bundle", bundle.dir.to_str().unwrap(), &id],
        COMMAND_TIMEOUT,
    );
    out.ok();
    assert!(started.elapsed() < Duration::from_secs(10));
    let c = Container { env: &env, id, io };
    assert_eq!(c.status(), "running");
    c.wait_output("started", STATUS_TIMEOUT);
    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();
}

#[test]
fn duplicate_id_fails_and_leaves_the_first_container_alone() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("echo first");
    let c = env.create(&bundle);
    let pid = c.pid();
    let (out, _) = env.runtime_to_files(
        &["create", "--bundle", bundle.dir.to_str().unwrap(), &c.id],
        COMMAND_TIMEOUT,
    );
    out.fails().mentions(&[&c.id, "exists"]);
    assert_eq!(c.status(), "created");
    assert_eq!(c.pid(), pid);
    assert!(process_alive(pid));
    c.start().ok();
    c.wait_stopped();
    assert_eq!(c.stdout(), "first\n");
    c.delete().ok();
}

#[test]
fn concurrent_creates_of_one_id_make_one_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    bundle.save();
    let id = env.new_id();
    let b = bundle.dir.to_str().unwrap();
    let outs: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    env.runtime_to_files(&["create", "--bundle", b, &id], COMMAND_TIMEOUT)
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = outs.iter().filter(|o| o.success()).count();
    assert_eq!(ok, 1, "{outs:#?}");
    let c = Container {
        env: &env,
        id,
        io: env.io_files(),
    };
    assert_eq!(c.status(), "created");
    assert!(process_alive(c.pid()));
    c.start().ok();
    assert_eq!(c.status(), "running");
}

#[test]
fn concurrent_starts_start_once() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("echo ran; exec sleep 100");
    let c = env.create(&bundle);
    let outs: Vec<Out> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| c.start())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = outs.iter().filter(|o| o.success()).count();
    assert_eq!(ok, 1, "{outs:#?}");
    c.wait_output("ran", STATUS_TIMEOUT);
    assert_eq!(c.stdout(), "ran\n");
    assert_eq!(c.status(), "running");
}

#[test]
fn delete_kills_what_is_left_of_a_container_without_pid_namespace() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    // Without a pid namespace the background sleep outlives sh, in the container's cgroup.
    bundle
        .without_namespace("pid")
        .sh("sleep 1000 & echo started");
    let c = env.create_started(&bundle);
    c.wait_stopped();
    assert_eq!(c.stdout(), "started\n");
    let out = c.delete();
    out.ok();
    env.assert_nothing_left(&c.id);
}

#[test]
fn kill_all_reaches_processes_left_after_the_init_exited() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle
        .without_namespace("pid")
        .sh("sleep 1000 & echo started");
    let c = env.create_started(&bundle);
    c.wait_stopped();
    let left = env.processes();
    assert_eq!(left.len(), 1, "{left:?}");
    env.runtime(&["kill", "--all", &c.id, "KILL"]).ok();
    wait_until(STATUS_TIMEOUT, || !process_alive(left[0]))
        .expect("kill --all did not reach the process left in the cgroup");
    c.delete().ok();
    env.assert_nothing_left(&c.id);
}

#[test]
fn start_twice_fails() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let c = env.create_started(&bundle);
    let pid = c.pid();
    c.start().fails().mentions(&[&c.id, "running"]);
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
    c.kill("KILL").ok();
    c.wait_stopped();
    // Starting a stopped container fails too.
    c.start().fails().mentions(&["stopped"]);
}

#[test]
fn delete_of_a_running_container_fails_without_force() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let c = env.create_started(&bundle);
    let pid = c.pid();
    c.delete().fails().mentions(&[&c.id, "running"]);
    assert_eq!(c.status(), "running");
    assert!(process_alive(pid));
    assert!(c.state_dir().exists());
}

#[test]
fn delete_of_a_created_container_fails_without_force() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    let c = env.create(&bundle);
    let pid = c.pid();
    c.delete().fails().mentions(&[&c.id, "created"]);
    assert_eq!(c.status(), "created");
    assert!(process_alive(pid));
}

#[test]
fn delete_force_removes_created_and_running_containers() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let created = env.create(&bundle);
    let running = env.create_started(&bundle);
    for c in [&created, &running] {
        let pid = c.pid();
        c.delete_force().ok();
        assert!(c.try_state().code != 0, "{} still has a state", c.id);
        assert!(!c.state_dir().exists());
        wait_until(STATUS_TIMEOUT, || !process_alive(pid))
            .unwrap_or_else(|| panic!("the process {pid} of {} survived", c.id));
    }
    // Deleting what is already gone with --force succeeds (engines call it twice).
    created.delete_force().ok();
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    let c = env.create_started(&bundle);
    c.wait_stopped();
    c.kill("KILL").fails().mentions(&[&c.id]);
    assert_eq!(c.status(), "stopped");
    c.delete().ok();
}

#[test]
fn kill_of_a_created_container_stops_it() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    let c = env.create(&bundle);
    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();
    // The process never ran.
    assert_eq!(c.stdout(), "");
}

#[test]
fn kill_takes_signal_numbers_and_names() {
    let Some(env) = TestEnv::new() else { return };
    for signal in ["15", "TERM", "SIGTERM", "sigterm"] {
        let mut bundle = env.bundle();
        // pid 1 of a pid namespace only gets signals it has a handler for.
        bundle.sh("trap 'echo got-TERM; exit 0' TERM; echo ready; sleep 100 & wait");
        let c = env.create_started(&bundle);
        c.wait_output("ready", STATUS_TIMEOUT);
        c.kill(signal).ok();
        c.wait_stopped();
        assert!(
            c.stdout().contains("got-TERM"),
            "signal {signal}: stdout {:?}",
            c.stdout()
        );
        c.delete().ok();
    }
}

#[test]
fn kill_delivers_other_signals() {
    let Some(env) = TestEnv::new() else { return };
    for (signal, name) in [("SIGUSR1", "USR1"), ("USR2", "USR2"), ("1", "HUP")] {
        let mut bundle = env.bundle();
        bundle.sh(&format!(
            "trap 'echo got-{name}; exit 0' {name}; echo ready; sleep 100 & wait"
        ));
        let c = env.create_started(&bundle);
        c.wait_output("ready", STATUS_TIMEOUT);
        c.kill(signal).ok();
        c.wait_stopped();
        assert!(
            c.stdout().contains(&format!("got-{name}")),
            "signal {signal}: stdout {:?}",
            c.stdout()
        );
        c.delete().ok();
    }
}

#[test]
fn kill_without_a_signal_sends_sigterm() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("trap 'echo got-TERM; exit 0' TERM; echo ready; sleep 100 & wait");
    let c = env.create_started(&bundle);
    c.wait_output("ready", STATUS_TIMEOUT);
    env.runtime(&["kill", &c.id]).ok();
    c.wait_stopped();
    assert!(c.stdout().contains("got-TERM"), "{:?}", c.stdout());
}

#[test]
fn kill_all_signals_every_process_of_the_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    // Without a handler, pid 1 ignores TERM from outside; its children do not. Only a
    // signal to all processes ends the two sleeps, after which sh reports and exits.
    bundle.sh("sleep 100 & sleep 100 & echo ready; wait; echo children-gone");
    let c = env.create_started(&bundle);
    c.wait_output("ready", STATUS_TIMEOUT);
    env.runtime(&["kill", "--all", &c.id, "TERM"]).ok();
    c.wait_stopped();
    assert!(c.stdout().contains("children-gone"), "{:?}", c.stdout());
}

#[test]
fn list_shows_containers_as_table_and_json() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let created = env.create(&bundle);
    let running = env.create_started(&bundle);

    let table = env.runtime(&["list"]);
    table.ok();
    let lines = table.lines();
    assert!(lines[0].starts_with("ID"), "{table}");
    for (c, status) in [(&created, "created"), (&running, "running")] {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(c.id.as_str()))
            .unwrap_or_else(|| panic!("{} not listed:\n{table}", c.id));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1], c.pid().to_string(), "{line}");
        assert_eq!(fields[2], status, "{line}");
        assert_eq!(fields[3], bundle.dir.to_str().unwrap(), "{line}");
    }

    let json = env.runtime(&["list", "--format", "json"]);
    json.ok();
    let v: Value = serde_json::from_str(&json.stdout).expect("list --format json");
    let list = v.as_array().expect("an array");
    assert_eq!(list.len(), 2, "{v}");
    for (c, status) in [(&created, "created"), (&running, "running")] {
        let entry = list
            .iter()
            .find(|e| e["id"] == c.id.as_str())
            .unwrap_or_else(|| panic!("{} not in {v}", c.id));
        assert_eq!(entry["status"], status);
        assert_eq!(entry["pid"], c.pid());
        assert_eq!(entry["bundle"], bundle.dir.to_str().unwrap());
    }

    let quiet = env.runtime(&["list", "-q"]);
    quiet.ok();
    let mut ids = quiet.lines();
    ids.sort();
    let mut want = vec![created.id.clone(), running.id.clone()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn state_of_a_stopped_container_is_stable() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    let c = env.create_started(&bundle);
    c.wait_stopped();
    let first = c.try_state();
    first.ok();
    let _ = c.kill("KILL");
    let second = c.try_state();
    second.ok();
    assert_eq!(first.stdout, second.stdout);
    let v: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(v["status"], "stopped");
    c.delete().ok();
}

#[test]
fn state_reports_annotations() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.config["annotations"] = json!({"org.example.key": "value", "other": "x y"});
    let c = env.create(&bundle);
    let state = c.state();
    assert_eq!(
        state["annotations"],
        json!({"org.example.key": "value", "other": "x y"})
    );
}

#[test]
fn config_changes_after_create_do_not_affect_start() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("echo original");
    let c = env.create(&bundle);
    fs::write(bundle.config_path(), r#"{"ociVersion":"1.0.0"}"#).unwrap();
    c.start().ok();
    c.wait_stopped();
    assert_eq!(c.stdout(), "original\n");
    fs::remove_file(bundle.config_path()).unwrap();
    c.delete().ok();
}

#[test]
fn the_container_keeps_the_stdio_of_create() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("echo to-stdout; echo to-stderr >&2");
    let c = env.create(&bundle);
    c.start().ok();
    c.wait_stopped();
    assert_eq!(c.stdout(), "to-stdout\n");
    assert!(c.stderr().contains("to-stderr\n"), "{:?}", c.stderr());
}

#[test]
fn start_state_kill_delete_leave_no_process_on_their_stdout() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let c = env.create(&bundle);
    // Each of these runs with piped stdout/stderr and fails the test if a long-lived
    // process keeps the pipes open after the command exits.
    c.start().ok();
    c.try_state().ok();
    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();
}

#[test]
fn no_runtime_descriptor_leaks_into_the_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["ls", "/proc/self/fd"]);
    // run: only stdio and ls's own directory fd (3).
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), ["0", "1", "2", "3"], "{out}");
    // create + start likewise.
    let c = env.create_started(&bundle);
    c.wait_stopped();
    let stdout = c.stdout();
    let fds: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{:?}", c.stdout());
}

/// Runs the runtime through sh so that fds 3 and 4 are open in it (sh redirections).
fn runtime_with_fds(env: &TestEnv, args: &[&str], io: &IoFiles, fd3: &str, fd4: &str) -> Out {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("exec \"$0\" \"$@\" 3<'{fd3}' 4>>'{fd4}'"))
        .arg(BIN)
        .arg("--root")
        .arg(env.state_root())
        .args(args)
        .stdin(std::process::Stdio::null());
    run_to_files(&mut cmd, io, COMMAND_TIMEOUT)
}

#[test]
fn descriptors_of_the_caller_are_not_inherited_without_preserve_fds() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["ls", "/proc/self/fd"]);
    bundle.save();
    let input = env.dir().join("fd3-input");
    let output = env.dir().join("fd4-output");
    fs::write(&input, "from-fd-3\n").unwrap();
    let id = env.new_id();
    let io = env.io_files();
    let out = runtime_with_fds(
        &env,
        &["run", "--bundle", bundle.dir.to_str().unwrap(), &id],
        &io,
        input.to_str().unwrap(),
        output.to_str().unwrap(),
    );
    out.ok();
    assert_eq!(out.lines(), ["0", "1", "2", "3"], "{out}");
}

#[test]
fn preserve_fds_passes_descriptors_3_and_4() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("ls /proc/self/fd | tr '\\n' ' '; echo; cat <&3; echo via-fd-4 >&4");
    bundle.save();
    let input = env.dir().join("fd3-input");
    let output = env.dir().join("fd4-output");
    fs::write(&input, "from-fd-3\n").unwrap();
    let id = env.new_id();
    let io = env.io_files();
    let out = runtime_with_fds(
        &env,
        &[
            "run",
            "--preserve-fds",
            "2",
            "--bundle",
            bundle.dir.to_str().unwrap(),
            &id,
        ],
        &io,
        input.to_str().unwrap(),
        output.to_str().unwrap(),
    );
    out.ok();
    let lines = out.lines();
    // ls of sh's child: 0 1 2, the preserved 3 and 4, and ls's own directory fd.
    assert_eq!(lines[0], "0 1 2 3 4 5", "{out}");
    assert_eq!(lines[1], "from-fd-3", "{out}");
    assert_eq!(fs::read_to_string(&output).unwrap(), "via-fd-4\n");
}

#[test]
fn preserve_fds_of_descriptors_that_are_not_open_fails() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    let (out, c) = env.try_create(&bundle, &["--preserve-fds", "3"]);
    out.fails().mentions(&["preserve-fds"]);
    env.assert_nothing_left(&c.id);
}

#[test]
fn spec_writes_a_config_and_refuses_to_overwrite_it() {
    let Some(env) = TestEnv::new() else { return };
    let dir = env.new_dir("spec");
    let dir_s = dir.to_str().unwrap();
    env.runtime(&["spec", "--bundle", dir_s]).ok();
    let text = fs::read_to_string(dir.join("config.json")).unwrap();
    let v: Value = serde_json::from_str(&text).expect("spec writes JSON");
    assert!(v["ociVersion"].is_string(), "{v}");
    assert!(v["process"]["args"].is_array(), "{v}");
    assert_eq!(v["root"]["path"], "rootfs");
    let kinds: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for kind in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // A second spec must not overwrite it.
    fs::write(dir.join("config.json"), "mine").unwrap();
    env.runtime(&["spec", "--bundle", dir_s])
        .fails()
        .mentions(&["config.json"]);
    assert_eq!(fs::read_to_string(dir.join("config.json")).unwrap(), "mine");
}

#[test]
fn spec_rootless_maps_the_caller() {
    let Some(env) = TestEnv::new() else { return };
    let dir = env.new_dir("spec");
    env.runtime(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()])
        .ok();
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"user"), "{kinds:?}");
    let uid = rustix::process::geteuid().as_raw();
    assert_eq!(v["linux"]["uidMappings"][0]["hostID"], uid);
    assert_eq!(v["linux"]["uidMappings"][0]["containerID"], 0);
    assert!(v["linux"]["gidMappings"][0]["hostID"].is_u64(), "{v}");
}

#[test]
fn the_config_from_spec_runs_as_it_is() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    // spec's own config, with only what a non-interactive test needs changed.
    let mut config = spec_template().clone();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sh", "-c", "echo spec-config-ran"]);
    bundle.config = config;
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.stdout, "spec-config-ran\n");
}

#[test]
fn the_rootless_config_from_spec_runs() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let dir = env.new_dir("spec");
    env.runtime(&["spec", "--rootless", "--bundle", dir.to_str().unwrap()])
        .ok();
    let mut config: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    bundle.config = config;
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "0", "{out}");
    let uid = rustix::process::geteuid().as_raw().to_string();
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", uid.as_str(), "1"], "{out}");
}

#[test]
fn features_lists_namespaces_and_hooks() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.runtime(&["features"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("features prints JSON");
    assert!(v["ociVersionMin"].is_string(), "{v}");
    assert!(v["ociVersionMax"].is_string(), "{v}");
    let namespaces: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for ns in [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ] {
        assert!(namespaces.contains(&ns), "{ns} missing: {namespaces:?}");
    }
    let hooks = v["hooks"].as_array().expect("hooks");
    assert_eq!(hooks.len(), 6, "{v}");
}

#[test]
fn state_and_delete_need_an_id() {
    let Some(env) = TestEnv::new() else { return };
    for command in ["state", "start", "delete", "kill"] {
        env.runtime(&[command]).fails();
    }
    let bundle = env.bundle();
    env.runtime(&["create", "--bundle", bundle.dir.to_str().unwrap()])
        .fails();
}

/// A test that cannot run (here: not root) passes with `skipped: <why>` on stderr, and
/// fails naming the reason when BERTH_REQUIRE_ROOT=1 (as CI sets it).
#[test]
fn a_skipped_test_fails_when_root_is_required() {
    let Some(_env) = TestEnv::new() else { return };
    let name = "create_start_kill_delete";
    let out = run_self_unprivileged(name, None);
    out.ok().mentions(&[
        "skipped: berth-runtime integration tests need root",
        "1 passed",
    ]);
    let out = run_self_unprivileged(name, Some("0"));
    out.ok().mentions(&["skipped:"]);
    let out = run_self_unprivileged(name, Some("1"));
    out.fails().mentions(&[
        "BERTH_REQUIRE_ROOT=1 forbids skipping it",
        "need root",
        "1 failed",
    ]);
}
