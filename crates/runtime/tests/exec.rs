//! `exec`: a new process in a running container. Its environment, working directory, user
//! and groups, capabilities, exit code, namespaces, cgroup, seccomp filter, signals,
//! detached with a pid file, from a process file, the container's status (paused, stopped),
//! descriptors (preserved, none leaked), and a missing binary.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::exec::*;
use common::*;
use rustix::process::Signal;
use serde_json::json;

// ---------------------------------------------------------------------------------------
// The process: environment, working directory, user, capabilities
// ---------------------------------------------------------------------------------------

#[test]
fn env_is_the_containers_with_e_added_and_overriding() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper_with(&env, |b| {
        b.env("FOO=from-config").env("KEEP=kept");
    });
    let out = exec(&c, &[], &["env"]);
    out.ok();
    let vars: BTreeSet<String> = out.lines().into_iter().collect();
    assert!(vars.contains("FOO=from-config"), "{out}");
    assert!(vars.contains("KEEP=kept"), "{out}");
    assert!(
        vars.contains(&format!("{TOKEN_VAR}={}", env.token())),
        "{out}"
    );
    assert!(vars.iter().any(|v| v.starts_with("PATH=")), "{out}");

    let out = exec(
        &c,
        &["-e", "FOO=from-exec", "--env", "NEW=added", "-e", "EMPTY="],
        &["env"],
    );
    out.ok();
    let lines = out.lines();
    let foo: Vec<&String> = lines.iter().filter(|l| l.starts_with("FOO=")).collect();
    assert_eq!(foo, ["FOO=from-exec"], "-e overrides, once:\n{out}");
    for want in ["KEEP=kept", "NEW=added", "EMPTY="] {
        assert!(lines.iter().any(|l| l == want), "no {want}:\n{out}");
    }
    // Nothing of the runtime's own environment.
    assert!(!out.stdout.contains(RUNTIME_ENV_MARKER), "{out}");
}

#[test]
fn cwd_defaults_to_the_process_cwd_and_cwd_overrides_it() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper_with(&env, |b| {
        b.process()["cwd"] = json!("/home/user");
    });
    let out = exec(&c, &[], &["pwd"]);
    out.ok();
    assert_eq!(out.stdout, "/home/user\n", "{out}");
    let out = exec(&c, &["--cwd", "/tmp"], &["pwd"]);
    out.ok();
    assert_eq!(out.stdout, "/tmp\n", "{out}");
    let out = exec(&c, &["--cwd=/etc"], &["pwd"]);
    out.ok();
    assert_eq!(out.stdout, "/etc\n", "{out}");
}

#[test]
fn a_cwd_that_does_not_exist_fails() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let out = exec(&c, &["--cwd", "/no/such/dir"], &["pwd"]);
    out.fails().mentions(&["/no/such/dir"]);
    assert!(!out.stdout.contains("/no/such/dir\n"), "{out}");
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let script = "id; id -u; id -g; grep '^Groups:' /proc/self/status; echo $HOME";
    let out = exec(&c, &["-u", "1000:100"], &["sh", "-c", script]);
    out.ok();
    let lines = out.lines();
    assert!(
        lines[0].starts_with("uid=1000(user) gid=100(users)"),
        "{out}"
    );
    assert_eq!(lines[1..3], ["1000", "100"], "{out}");
    assert_eq!(lines[3].trim_start_matches("Groups:").trim(), "", "{out}");
    assert_eq!(lines[4], "/home/user", "HOME from /etc/passwd:\n{out}");

    let out = exec(
        &c,
        &["--user", "1000:100", "-g", "10", "--additional-gids", "20"],
        &["sh", "-c", script],
    );
    out.ok();
    let lines = out.lines();
    let groups: BTreeSet<&str> = lines[3]
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    assert_eq!(groups, BTreeSet::from(["10", "20"]), "{out}");

    // A uid alone means gid 0, as in runc.
    let out = exec(&c, &["-u", "1000"], &["sh", "-c", "id -u; id -g"]);
    out.ok();
    assert_eq!(out.lines(), ["1000", "0"], "{out}");

    let out = exec(&c, &["-u", "user"], &["id"]);
    out.fails().mentions(&["--user"]);
}

#[test]
fn capabilities_of_a_non_root_exec() {
    let Some(env) = TestEnv::new() else { return };
    let bounding = [CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE, CAP_NET_RAW];
    let kept = [CAP_NET_BIND_SERVICE, CAP_NET_RAW];
    // With ambient capabilities (and inheritable, as they need) a non-root process keeps
    // them across exec; without, it has none.
    let c = sleeper_with(&env, |b| {
        b.process()["capabilities"] = caps_json(
            &[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
            ],
            &[
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
            ],
            &["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        );
    });
    let out = exec(&c, &["-u", "1000:100"], &["cat", "/proc/self/status"]);
    out.ok();
    let [bnd, eff, prm, inh, amb] = cap_sets(&out.stdout);
    assert_eq!(bnd, cap_mask(&bounding), "CapBnd");
    assert_eq!(
        [eff, prm, inh, amb],
        [cap_mask(&kept); 4],
        "Eff Prm Inh Amb"
    );

    // The same container as root: everything of the process object.
    let out = exec(&c, &[], &["cat", "/proc/self/status"]);
    out.ok();
    let [bnd, eff, prm, _, _] = cap_sets(&out.stdout);
    assert_eq!([bnd, eff, prm], [cap_mask(&bounding); 3], "root");

    let c = sleeper_with(&env, |b| {
        b.process()["capabilities"] =
            caps_json(&["CAP_CHOWN", "CAP_KILL"], &["CAP_CHOWN", "CAP_KILL"], &[]);
    });
    let out = exec(&c, &["-u", "1000:100"], &["cat", "/proc/self/status"]);
    out.ok();
    let [bnd, eff, prm, inh, amb] = cap_sets(&out.stdout);
    assert_eq!(bnd, cap_mask(&[CAP_CHOWN, CAP_KILL]), "CapBnd");
    assert_eq!(
        [eff, prm, inh, amb],
        [0; 4],
        "a non-root user without ambient"
    );
}

#[test]
fn cap_adds_a_capability_to_the_exec_only() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper_with(&env, |b| {
        b.process()["capabilities"] = caps_json(&["CAP_KILL"], &["CAP_KILL"], &[]);
    });
    let out = exec(
        &c,
        &["--cap", "CAP_NET_ADMIN"],
        &["cat", "/proc/self/status"],
    );
    out.ok();
    let [bnd, eff, prm, _, _] = cap_sets(&out.stdout);
    let want = cap_mask(&[CAP_KILL, CAP_NET_ADMIN]);
    assert_eq!([bnd, eff, prm], [want; 3], "{out}");
    // The container's own process is unchanged.
    let init = fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    assert_eq!(cap_sets(&init)[0], cap_mask(&[CAP_KILL]));
}

#[test]
fn no_new_privs_flag_and_the_containers_setting() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper_with(&env, |b| {
        b.process()["noNewPrivileges"] = json!(false);
    });
    let nnp = |flags: &[&str]| {
        let out = exec(&c, flags, &["cat", "/proc/self/status"]);
        out.ok();
        status_field(&out.stdout, "NoNewPrivs").unwrap()
    };
    assert_eq!(nnp(&[]), "0", "the container's process has it off");
    assert_eq!(nnp(&["--no-new-privs"]), "1");

    let c = sleeper_with(&env, |b| {
        b.process()["noNewPrivileges"] = json!(true);
    });
    let out = exec(&c, &[], &["cat", "/proc/self/status"]);
    out.ok();
    assert_eq!(status_field(&out.stdout, "NoNewPrivs").unwrap(), "1");
}

// ---------------------------------------------------------------------------------------
// --process
// ---------------------------------------------------------------------------------------

fn process_json(env: &TestEnv) -> serde_json::Value {
    json!({
        "terminal": false,
        "args": ["sh", "-c", "echo $0; pwd; id -u; id -g; grep -E '^(Groups|NoNewPrivs|CapBnd|CapEff):' /proc/self/status; env", "from-file"],
        "env": ["PATH=/bin", "FROM_FILE=yes", format!("{TOKEN_VAR}={}", env.token())],
        "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 100, "additionalGids": [10]},
        "noNewPrivileges": true,
        "capabilities": {
            "bounding": ["CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        }
    })
}

#[track_caller]
fn check_process_file_output(out: &Out) {
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[..4], ["from-file", "/tmp", "1000", "100"], "{out}");
    assert_eq!(status_field(&out.stdout, "Groups").unwrap(), "10", "{out}");
    assert_eq!(
        status_field(&out.stdout, "NoNewPrivs").unwrap(),
        "1",
        "{out}"
    );
    let hex = |f| u64::from_str_radix(&status_field(&out.stdout, f).unwrap(), 16).unwrap();
    assert_eq!(hex("CapBnd"), cap_mask(&[CAP_KILL, CAP_NET_RAW]), "{out}");
    assert_eq!(hex("CapEff"), cap_mask(&[CAP_KILL]), "{out}");
    assert!(lines.iter().any(|l| l == "FROM_FILE=yes"), "{out}");
    // The whole process object: nothing of the container's environment.
    assert!(!lines.iter().any(|l| l.starts_with("FOO=")), "{out}");
}

#[test]
fn process_file_gives_the_whole_process() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper_with(&env, |b| {
        b.env("FOO=container-only");
        b.process()["noNewPrivileges"] = json!(false);
    });
    let file = env.new_dir("process").join("process.json");
    fs::write(&file, process_json(&env).to_string()).unwrap();
    let out = exec(&c, &["--process", file.to_str().unwrap()], &[]);
    check_process_file_output(&out);
}

#[test]
fn process_file_from_stdin() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper_with(&env, |b| {
        b.env("FOO=container-only");
    });
    let file = env.new_dir("process").join("process.json");
    fs::write(&file, process_json(&env).to_string()).unwrap();
    let mut cmd = env.command(&["exec", "-p", "-", &c.id]);
    cmd.stdin(fs::File::open(&file).unwrap());
    let out = run_piped(&mut cmd, COMMAND_TIMEOUT);
    check_process_file_output(&out);
}

#[test]
fn a_bad_process_file_fails_naming_it() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let file = env.new_dir("process").join("process.json");
    fs::write(&file, "{\"args\": 7}").unwrap();
    let out = exec(&c, &["--process", file.to_str().unwrap()], &[]);
    out.fails().mentions(&["process.json"]);
    let out = exec(&c, &["--process", "/no/such/process.json"], &[]);
    out.fails().mentions(&["/no/such/process.json"]);
}

// ---------------------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------------------

#[test]
fn exit_code_is_the_processes() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    assert_eq!(exec(&c, &[], &["sh", "-c", "exit 7"]).code, 7);
    assert_eq!(exec(&c, &[], &["true"]).code, 0);
    assert_eq!(exec(&c, &[], &["false"]).code, 1);
    // Killed by a signal: 128 + the signal, as a shell reports it.
    assert_eq!(exec(&c, &[], &["sh", "-c", "kill -KILL $$"]).code, 128 + 9);
    assert_eq!(exec(&c, &[], &["sh", "-c", "kill -TERM $$"]).code, 128 + 15);
    // The container goes on.
    assert_eq!(c.status(), "running");
}

#[test]
fn a_binary_that_does_not_exist_fails_with_runcs_words() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    // The error is logged as a logfmt line, msg="..." with its quotes escaped, as runc's.
    let message = |out: &Out| out.stderr.replace("\\\"", "\"");
    let out = exec(&c, &[], &["/nope"]);
    out.fails();
    assert!(
        message(&out).contains(r#"exec: "/nope": stat /nope: no such file or directory"#),
        "{out}"
    );
    let out = exec(&c, &[], &["no-such-command"]);
    out.fails();
    assert!(
        message(&out).contains(r#"exec: "no-such-command": executable file not found in $PATH"#),
        "{out}"
    );
    assert_eq!(c.status(), "running");
}

#[test]
fn a_process_that_leaves_a_background_child_returns_its_status() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    // The child keeps the exec's stdout and stderr (files here); exec returns all the same.
    let (out, _) = exec_to_files(&c, &[], &["sh", "-c", "sleep 1001 & echo started; exit 5"]);
    assert_eq!(out.code, 5, "{out}");
    assert_eq!(out.stdout, "started\n", "{out}");
    let ps = exec(&c, &[], &["ps", "-o", "args"]);
    ps.ok();
    assert!(
        ps.stdout.contains("sleep 1001"),
        "the child lives on:\n{ps}"
    );
    c.delete_force().ok();
    env.assert_nothing_left(&c.id);
}

// ---------------------------------------------------------------------------------------
// Namespaces, cgroup, seccomp
// ---------------------------------------------------------------------------------------

#[test]
fn exec_joins_every_namespace_of_the_container() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let init = c.pid();
    let pid = exec_detached_pid(&c, &[], &["sleep", "1000"]);
    let theirs = namespaces_of(init);
    let ours = namespaces_of(pid);
    assert_eq!(ours, theirs, "namespaces of the exec'd process vs the init");
    // They are the container's, not the host's.
    let host = namespaces_of(std::process::id() as i32);
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "uts"] {
        let get = |v: &Vec<(String, String)>| v.iter().find(|(n, _)| n == kind).cloned();
        assert_ne!(get(&ours), get(&host), "{kind} is the host's");
    }
    // Inside, the same from the process's own view.
    let out = exec(
        &c,
        &[],
        &[
            "sh",
            "-c",
            "for n in cgroup ipc mnt net pid uts; do \
               [ \"$(readlink /proc/self/ns/$n)\" = \"$(readlink /proc/1/ns/$n)\" ] || echo differs:$n; \
             done; echo done",
        ],
    );
    out.ok();
    assert_eq!(out.stdout, "done\n", "{out}");
}

#[test]
fn exec_is_in_the_containers_cgroup() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let init = c.pid();
    let pid = exec_detached_pid(&c, &[], &["sleep", "1000"]);
    let cgroup_of = |p: i32| read_trimmed(format!("/proc/{p}/cgroup"));
    assert_eq!(cgroup_of(pid), cgroup_of(init));
    assert!(
        cgroup_of(pid).contains(&c.id),
        "not in a cgroup of the container:\n{}",
        cgroup_of(pid)
    );
    let out = exec(
        &c,
        &[],
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup",
        ],
    );
    out.ok();
    let (mine, init_view) = out.stdout.split_once("---\n").unwrap();
    assert_eq!(mine, init_view, "{out}");
}

#[test]
fn exec_gets_the_containers_seccomp_profile() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper_with(&env, |b| {
        b.linux()["seccomp"] = common::security::docker_seccomp_profile();
    });
    let out = exec(
        &c,
        &[],
        &[
            "sh",
            "-c",
            "grep '^Seccomp:' /proc/self/status; unshare -n true",
        ],
    );
    out.fails();
    assert!(out.stdout.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.stderr.contains("Operation not permitted"),
        "unshare must fail with EPERM:\n{out}"
    );
    // Without the profile, the same works (the capability set allows it).
    let c = sleeper_with(&env, |b| {
        b.process()["capabilities"] = caps_json(&["CAP_SYS_ADMIN"], &["CAP_SYS_ADMIN"], &[]);
    });
    let out = exec(
        &c,
        &[],
        &[
            "sh",
            "-c",
            "grep '^Seccomp:' /proc/self/status; unshare -n true",
        ],
    );
    out.ok();
    assert!(out.stdout.contains("Seccomp:\t0"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------

/// A foreground `exec --pid-file F ID sh -c SCRIPT` with piped output, once its process
/// printed "ready" and the runtime wrote the pid file (it does so once the process runs,
/// before it settles down to forwarding signals and waiting).
fn foreground_exec(c: &Container<'_>, script: &str) -> (Background, i32) {
    let pid_file = c.env.new_dir("exec-pid").join("pid");
    let mut cmd = c.env.command(&[
        "exec",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        script,
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let run = Background::spawn(&mut cmd);
    run.wait_stdout("ready", COMMAND_TIMEOUT);
    let mut pid = 0;
    wait_until(COMMAND_TIMEOUT, || {
        pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        pid > 0
    })
    .unwrap_or_else(|| panic!("no pid file\n  stderr: {:?}", run.stderr()));
    (run, pid)
}

#[test]
fn signals_to_a_foreground_exec_reach_the_process() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let (run, pid) = foreground_exec(
        &c,
        "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done",
    );
    assert_eq!(read_trimmed(format!("/proc/{pid}/comm")), "sh");
    run.signal(Signal::TERM);
    let out = run.wait(COMMAND_TIMEOUT);
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(out.stdout, "ready\ngot-term\n", "{out}");

    // A signal the process does not handle kills it: 128 + the signal.
    let (run, _) = foreground_exec(&c, "echo ready; while :; do sleep 0.1; done");
    run.signal(Signal::HUP);
    let out = run.wait(COMMAND_TIMEOUT);
    assert_eq!(out.code, 128 + 1, "{out}");
    assert_eq!(c.status(), "running");
}

/// The window between the process's exec and the runtime noticing it, widened with strace
/// delaying the runtime's first ppoll: the process runs (it printed "ready") when the
/// SIGTERM comes, so the signal must reach it.
#[test]
fn a_signal_right_after_the_process_started_is_forwarded() {
    let Some(env) = TestEnv::new() else { return };
    if !std::path::Path::new("/usr/bin/strace").exists() {
        skip("needs /usr/bin/strace (apt-get install strace)");
        return;
    }
    let c = sleeper(&env);
    let mut cmd = std::process::Command::new("/usr/bin/strace");
    cmd.args([
        "-o",
        "/dev/null",
        "-e",
        "trace=ppoll",
        "-e",
        "inject=ppoll:delay_enter=2000000:when=1",
        BIN,
        "--root",
        env.state_root().to_str().unwrap(),
        "exec",
        &c.id,
        "sh",
        "-c",
        "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let run = Background::spawn(&mut cmd);
    run.wait_stdout("ready", COMMAND_TIMEOUT);
    // strace's child is the runtime.
    let strace = run.pid;
    let mut runtime = 0;
    wait_until(COMMAND_TIMEOUT, || {
        runtime = fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        runtime > 0
    })
    .expect("the runtime under strace");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(runtime).unwrap(),
        Signal::TERM,
    )
    .unwrap();
    let out = run.wait(COMMAND_TIMEOUT);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("got-term"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Detached, pid file
// ---------------------------------------------------------------------------------------

#[test]
fn detached_exec_writes_the_pid_file_and_returns() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let (out, text) = exec_detached(&c, &[], &["sleep", "1000"]);
    out.ok();
    assert!(
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        "the pid file must hold a decimal pid without a newline: {text:?}"
    );
    let pid: i32 = text.parse().unwrap();
    assert!(process_alive(pid), "{}", describe_process(pid));
    assert_eq!(read_trimmed(format!("/proc/{pid}/comm")), "sleep");
    assert_eq!(
        ns_link(format!("/proc/{pid}/ns/pid")),
        ns_link(format!("/proc/{}/ns/pid", c.pid()))
    );
    let nspid = ns_pids(pid);
    assert_eq!(nspid.len(), 2, "host and container pids: {nspid:?}");
    assert_eq!(nspid[0], pid);
    assert_ne!(nspid[1], 1);
    // It shows up inside under its container pid.
    let ps = exec(&c, &[], &["ps", "-o", "pid,args"]);
    ps.ok();
    assert!(
        ps.lines()
            .iter()
            .any(|l| l.starts_with(&format!("{} ", nspid[1])) && l.contains("sleep 1000")),
        "{ps}"
    );
    // Only its stdio: no runtime descriptor.
    assert_eq!(open_fds(pid), [0, 1, 2], "fds of the exec'd process");
    // It goes with the container.
    c.delete_force().ok();
    wait_until(STATUS_TIMEOUT, || !process_alive(pid))
        .unwrap_or_else(|| panic!("{} outlived the container", describe_process(pid)));
    env.assert_nothing_left(&c.id);
}

#[test]
fn a_relative_pid_file_is_relative_to_the_callers_cwd() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let dir = env.new_dir("cwd");
    let mut cmd = env.command(&[
        "exec",
        "-d",
        "--pid-file",
        "exec.pid",
        &c.id,
        "sleep",
        "1000",
    ]);
    cmd.current_dir(&dir);
    let io = env.io_files();
    run_to_files(&mut cmd, &io, COMMAND_TIMEOUT).ok();
    let text = fs::read_to_string(dir.join("exec.pid")).unwrap();
    assert!(process_alive(text.parse().unwrap()));
}

// ---------------------------------------------------------------------------------------
// The container's status
// ---------------------------------------------------------------------------------------

#[test]
fn exec_into_a_paused_container_is_refused_without_ignore_paused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(SLEEP_FOREVER);
    let c = env.create_started(&bundle);
    c.runtime(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    let out = exec(&c, &[], &["true"]);
    out.fails().mentions(&["paused"]);
    let marker = bundle.rootfs.join("tmp/exec-marker");
    assert!(!marker.exists());

    // With --ignore-paused the process is set up in the frozen cgroup: it runs once the
    // container is resumed (like runc, the command may wait for that, even detached).
    let (run, pid_file) = exec_into_paused(&c);
    assert!(!marker.exists(), "the process ran in a paused container");
    assert_eq!(c.status(), "paused");
    c.runtime(&["resume", &c.id]).ok();
    let out = run.wait(COMMAND_TIMEOUT);
    assert_eq!(out.code, 0, "{out}");
    wait_until(STATUS_TIMEOUT, || {
        fs::read_to_string(&marker).is_ok_and(|t| t == "ran\n")
    })
    .unwrap_or_else(|| panic!("the exec'd process did not run after resume"));
    let pid = fs::read_to_string(&pid_file).unwrap_or_default();
    assert!(pid.parse::<i32>().is_ok(), "pid file: {pid:?}");
    assert_eq!(c.status(), "running");
}

/// Starts `exec --ignore-paused --detach --pid-file F ID sh -c 'echo ran > /tmp/exec-marker'`
/// in a paused container and waits until its process is in the container's (frozen) cgroup.
fn exec_into_paused(c: &Container<'_>) -> (Background, std::path::PathBuf) {
    let pid_file = c.env.new_dir("exec-pid").join("pid");
    let mut cmd = c.env.command(&[
        "exec",
        "--ignore-paused",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &c.id,
        "sh",
        "-c",
        "echo ran > /tmp/exec-marker",
    ]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let run = Background::spawn(&mut cmd);
    let init_cgroup = read_trimmed(format!("/proc/{}/cgroup", c.pid()));
    wait_until(COMMAND_TIMEOUT, || {
        let children =
            fs::read_to_string(format!("/proc/{0}/task/{0}/children", run.pid)).unwrap_or_default();
        children.split_whitespace().any(|child| {
            fs::read_to_string(format!("/proc/{child}/cgroup"))
                .is_ok_and(|cg| cg.trim() == init_cgroup)
        }) || run.exited(Duration::ZERO).is_some()
    })
    .unwrap_or_else(|| panic!("the exec'd process never joined the container's cgroup"));
    (run, pid_file)
}

#[test]
fn an_interrupted_exec_into_a_paused_container_returns() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(SLEEP_FOREVER);
    let c = env.create_started(&bundle);
    c.runtime(&["pause", &c.id]).ok();
    let (run, _) = exec_into_paused(&c);
    run.signal(Signal::TERM);
    let exited = run.exited(Duration::from_secs(5));
    // Whatever happened, thaw before asserting.
    c.runtime(&["resume", &c.id]).ok();
    let out = run.wait(COMMAND_TIMEOUT);
    assert!(
        exited.is_some(),
        "exec did not return within 5s of SIGTERM while the container was paused\n{out}"
    );
    assert_ne!(out.code, 0, "{out}");
    // The process was never let run.
    c.wait_status("running", STATUS_TIMEOUT);
    let ran = exec(&c, &[], &["cat", "/tmp/exec-marker"]);
    assert!(!ran.success(), "the interrupted exec's process ran:\n{ran}");
}

#[test]
fn exec_into_a_stopped_container_fails_naming_the_status() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["true"]);
    let c = env.create_started(&bundle);
    c.wait_stopped();
    let out = exec(&c, &[], &["true"]);
    out.fails().mentions(&["stopped"]);
}

#[test]
fn exec_into_a_created_container_works() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sh", "-c", "echo started"]);
    let c = env.create(&bundle);
    let out = exec(&c, &[], &["sh", "-c", "echo in-created; cat /proc/1/comm"]);
    out.ok();
    assert_eq!(out.lines()[0], "in-created", "{out}");
    assert_eq!(c.status(), "created");
}

#[test]
fn exec_into_a_container_that_does_not_exist_fails() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.runtime(&["exec", "berth-test-no-such-container", "true"]);
    out.fails().mentions(&["berth-test-no-such-container"]);
}

// ---------------------------------------------------------------------------------------
// Descriptors
// ---------------------------------------------------------------------------------------

#[test]
fn preserve_fds_passes_fd_3() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let file = env.new_dir("fd3").join("data");
    fs::write(&file, "through-fd-3\n").unwrap();
    let mut cmd = runtime_with_fd3(
        &env,
        Stdio::from(fs::File::open(&file).unwrap()),
        "",
        &[
            "exec",
            "--preserve-fds",
            "1",
            &c.id,
            "sh",
            "-c",
            "cat <&3; ls /proc/self/fd",
        ],
    );
    let out = run_piped(&mut cmd, COMMAND_TIMEOUT);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "through-fd-3", "{out}");
    // ls's own directory fd is the 4th.
    let fds: BTreeSet<&str> = lines[1..].iter().map(String::as_str).collect();
    assert_eq!(fds, BTreeSet::from(["0", "1", "2", "3", "4"]), "{out}");

    // Without --preserve-fds it is not passed.
    let mut cmd = runtime_with_fd3(
        &env,
        Stdio::from(fs::File::open(&file).unwrap()),
        "",
        &["exec", &c.id, "ls", "/proc/self/fd"],
    );
    let out = run_piped(&mut cmd, COMMAND_TIMEOUT);
    out.ok();
    let fds: BTreeSet<String> = out.lines().into_iter().collect();
    assert_eq!(fds, ["0", "1", "2", "3"].map(String::from).into(), "{out}");
}

#[test]
fn preserve_fds_of_a_closed_fd_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let out = exec(&c, &["--preserve-fds", "3"], &["true"]);
    out.fails().mentions(&["--preserve-fds"]);
}

#[test]
fn no_runtime_descriptor_leaks_into_the_process() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let out = exec(&c, &[], &["ls", "/proc/self/fd"]);
    out.ok();
    // 0 1 2, and ls's own directory fd.
    let fds: BTreeSet<String> = out.lines().into_iter().collect();
    assert_eq!(fds, ["0", "1", "2", "3"].map(String::from).into(), "{out}");
    // The process's links point at nothing of the runtime's (state dir, sockets, pidfds).
    let out = exec(&c, &[], &["sh", "-c", "ls -l /proc/$$/fd"]);
    out.ok();
    for bad in ["anon_inode", "state", "socket"] {
        assert!(!out.stdout.contains(bad), "{bad}:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------

/// Arguments of a container's command that look like the runtime's own options (Go-style
/// single-dash long names, short ones, `--`).
const OPTION_LIKE_ARGS: &[&str] = &[
    "a", "-user", "root", "-tty", "-e", "X=1", "-u", "0", "-t", "--", "-root=/x", "--tty",
    "-process", "p.json", "-detach", "-",
];

/// `printf '%s\n' ARGS...`: one line per argument, exactly as the process got it.
fn print_args_command() -> Vec<&'static str> {
    let mut command = vec!["sh", "-c", "printf '%s\\n' \"$@\"", "sh"];
    command.extend_from_slice(OPTION_LIKE_ARGS);
    command
}

/// The runtime rewrites Go-style `-name` options into `--name` in its own part of the
/// command line (global options, exec's flags); the container's command after the id
/// reaches the process exactly as given.
#[test]
fn exec_passes_the_command_line_on_untouched() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let root = env.state_root().to_str().unwrap();
    let log = env.dir().join("exec.log");
    let mut args = vec![
        "-root",
        root,
        "-log",
        log.to_str().unwrap(),
        "-log-format",
        "json",
    ];
    args.extend([
        "exec",
        "-env",
        "GO_STYLE=-tty",
        "-cwd",
        "/tmp",
        "-user",
        "0:0",
        &c.id,
    ]);
    args.extend(print_args_command());
    // Only Go-style forms: no `--root` from the harness.
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(&args).stdin(Stdio::null());
    let out = run_piped(&mut cmd, COMMAND_TIMEOUT);
    out.ok();
    assert_eq!(out.lines(), OPTION_LIKE_ARGS, "{out}");
    // The options before the id took effect.
    let probe = exec(
        &c,
        &["-env", "GO_STYLE=-tty", "-cwd", "/tmp"],
        &["sh", "-c", "echo \"$GO_STYLE $(pwd)\"", "-tty"],
    );
    probe.ok();
    assert_eq!(probe.stdout.trim(), "-tty /tmp", "{probe}");
    c.kill("KILL").ok();
}

/// `run` with Go-style options (global and run's own): the process's arguments from
/// config.json, the same option-like ones, arrive as written.
#[test]
fn run_with_go_style_options_keeps_the_process_args() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&print_args_command());
    bundle.save();
    let id = env.new_id();
    let root = env.state_root().to_str().unwrap();
    let bundle_dir = bundle.dir.to_str().unwrap();
    let log = env.dir().join("run.log");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "-root",
        root,
        "-log",
        log.to_str().unwrap(),
        "-log-format=json",
    ])
    .args(["run", "-bundle", bundle_dir, &id])
    .stdin(Stdio::null());
    let out = run_piped(&mut cmd, COMMAND_TIMEOUT);
    out.ok();
    assert_eq!(out.lines(), OPTION_LIKE_ARGS, "{out}");
    // Something after run's id is not a command line: refused, not rewritten into options.
    let id = env.new_id();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["-root", root, "run", "-bundle", bundle_dir, &id, "-tty"])
        .stdin(Stdio::null());
    let out = run_piped(&mut cmd, COMMAND_TIMEOUT);
    out.fails().mentions(&["-tty"]);
    env.assert_nothing_left(&id);
}
