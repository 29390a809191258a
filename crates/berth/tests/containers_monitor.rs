//! What the monitor does: OOM kills said in plain words, `--rm` on every way out, restart
//! policies, healthchecks, the log and its rotation followed by `logs -f`, stdin and a real
//! pty, attach, exec, and a monitor killed with SIGKILL.

mod support_containers;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support_containers::{Env, can_run, text};

#[test]
fn oom_kill_is_said_in_plain_words() {
    if !can_run("oom", &[]) {
        return;
    }
    let env = Env::new();
    // tail keeps an endless line in memory.
    let (code, _, err) = env.run(&["--name", "hog", "-m", "32m"], &["tail", "/dev/zero"]);
    assert_eq!(code, 137, "{err}");
    assert!(
        err.contains("berth: container hog was killed by the kernel: out of memory (limit 32 MiB)"),
        "{err}"
    );
    let rootfs = env.rootfs.to_str().unwrap();
    let out = env.berth(&[
        "run",
        "--name",
        "kept",
        "-m",
        "32m",
        "--rootfs",
        rootfs,
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137));
    assert_eq!(
        env.inspect("kept", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    let ps = env.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(
        ps.contains("Exited (137)") && ps.contains("out of memory"),
        "{ps}"
    );
    // start -a says it too.
    let out = env.berth(&["start", "-a", "kept"]);
    assert_eq!(out.status.code(), Some(137));
    assert!(text(&out.stderr).contains("killed by the kernel: out of memory"));
    let id = env.inspect("kept", "{{.Id}}");
    env.ok(&["rm", "kept"]);
    env.assert_gone(&id);
}

#[test]
fn rm_removes_on_every_way_out() {
    if !can_run("rm_paths", &[]) {
        return;
    }
    let env = Env::new();
    // Exit codes, OOM, and a failed start all leave nothing.
    env.run(&[], &["sh", "-c", "exit 9"]);
    env.run(&["-m", "32m"], &["tail", "/dev/zero"]);
    env.run(&[], &["/no/such/program"]);
    assert!(env.ids().is_empty(), "{:?}", env.ids());
    // Stopped, killed, and with its monitor killed.
    let a = env.run_detached(&["--rm"], &["sleep", "60"]);
    env.ok(&["stop", "-t", "0", &a]);
    let b = env.run_detached(&["--rm"], &["sleep", "60"]);
    env.ok(&["kill", &b]);
    assert!(env.eventually(Duration::from_secs(20), || env.ids().is_empty()));
    env.assert_gone(&a);
    env.assert_gone(&b);
    let c = env.run_detached(&["--rm"], &["sleep", "60"]);
    let monitor = env.record(&c)["state"]["monitor_pid"].as_i64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    env.ok(&["stop", "-t", "0", &c]);
    // The next command settles the container the monitor left: --rm still applies.
    env.ok(&["ps", "-a"]);
    assert!(env.eventually(Duration::from_secs(20), || env.ids().is_empty()));
    env.assert_gone(&c);
}

#[test]
fn a_sigkilled_monitor_does_not_lose_the_container() {
    if !can_run("monitor_killed", &[]) {
        return;
    }
    let env = Env::new();
    let id = env.run_detached(&["--name", "orphan"], &["sleep", "60"]);
    let monitor = env.record(&id)["state"]["monitor_pid"].as_i64().unwrap();
    assert!(monitor > 0);
    std::process::Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Still there, still running, and it can be inspected, stopped and removed.
    assert_eq!(env.inspect("orphan", "{{.State.Status}}"), "running");
    assert!(env.ok(&["ps", "-q"]).contains(&id[..12]));
    env.ok(&["stop", "-t", "1", "orphan"]);
    let state = env.inspect("orphan", "{{.State.Status}} {{.State.ExitCode}}");
    assert_eq!(state, "exited 137");
    assert!(
        env.inspect("orphan", "{{.State.Error}}")
            .contains("monitor")
    );
    env.ok(&["rm", "orphan"]);
    env.assert_gone(&id);
}

#[test]
fn restart_policies() {
    if !can_run("restart", &[]) {
        return;
    }
    let env = Env::new();
    let id = env.run_detached(
        &["--name", "flaky", "--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 3"],
    );
    // 100 ms, then 200 ms of backoff, then it stays down.
    assert!(env.eventually(Duration::from_secs(10), || {
        env.inspect("flaky", "{{.State.Status}} {{.RestartCount}}") == "exited 2"
    }));
    assert_eq!(env.ok(&["logs", "flaky"]), "run\nrun\nrun\n");
    assert_eq!(env.inspect("flaky", "{{.State.ExitCode}}"), "3");
    // on-failure does not restart a success.
    let ok = env.run_detached(&["--restart", "on-failure"], &["true"]);
    assert_eq!(env.ok(&["wait", &ok]).trim(), "0");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.inspect(&ok, "{{.RestartCount}}"), "0");
    // always restarts until stopped; stop ends it for good.
    let always = env.run_detached(&["--restart", "always"], &["sh", "-c", "sleep 0.1"]);
    assert!(env.eventually(Duration::from_secs(10), || {
        env.inspect(&always, "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap()
            >= 2
    }));
    env.ok(&["stop", "-t", "1", &always]);
    let count = env.inspect(&always, "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.inspect(&always, "{{.RestartCount}}"), count);
    assert_eq!(env.inspect(&always, "{{.State.Status}}"), "exited");
    env.ok(&["rm", "-f", &id, &ok, &always]);
    env.assert_gone(&always);
}

#[test]
fn healthchecks() {
    if !can_run("health", &[]) {
        return;
    }
    let env = Env::new();
    let id = env.run_detached(
        &[
            "--health-cmd",
            "test -e /tmp/ok",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "--health-timeout",
            "2s",
        ],
        &["sleep", "60"],
    );
    assert_eq!(env.inspect(&id, "{{.State.Health.Status}}"), "starting");
    assert!(env.eventually(
        Duration::from_secs(10),
        || env.inspect(&id, "{{.State.Health.Status}}") == "unhealthy"
    ));
    assert!(
        env.ok(&["ps", "--format", "{{.Status}}"])
            .contains("(unhealthy)")
    );
    env.ok(&["exec", &id, "touch", "/tmp/ok"]);
    assert!(env.eventually(
        Duration::from_secs(10),
        || env.inspect(&id, "{{.State.Health.Status}}") == "healthy"
    ));
    assert_eq!(env.inspect(&id, "{{.State.Health.FailingStreak}}"), "0");
    let health: serde_json::Value =
        serde_json::from_str(&env.inspect(&id, "{{json .State.Health}}")).unwrap();
    assert!(!health["Log"].as_array().unwrap().is_empty());
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);
}

#[test]
fn logs_rotate_and_follow() {
    if !can_run("logs", &[]) {
        return;
    }
    let env = Env::new();
    let id = env.run_detached(
        &["--log-opt", "max-size=2k", "--log-opt", "max-file=3"],
        &["sh", "-c", "sleep 0.5; i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); [ $((i % 10)) = 0 ] && sleep 0.05; done; echo err-line >&2"],
    );
    // Started before the output: follows across the rotations to the end (the writer
    // pauses now and then: what rotates away before a reader looks is gone, as in docker).
    let follower = env
        .cmd(&["logs", "-f", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = follower.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.ends_with("line-299\n"), "{stdout}");
    assert_eq!(text(&out.stderr), "err-line\n");
    let lines: Vec<&str> = stdout.lines().collect();
    // Nothing lost or doubled while following.
    let first: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    assert_eq!(lines.len(), 300 - first, "{stdout}");
    let dir = env.root.join("containers").join(&id);
    assert!(dir.join(format!("{id}-json.log.1")).exists());
    assert!(dir.join(format!("{id}-json.log.2")).exists());
    assert!(!dir.join(format!("{id}-json.log.3")).exists());
    // What is kept: the newest lines, across the files.
    let all = env.ok(&["logs", &id]);
    assert!(all.ends_with("line-299\n") && all.len() < 300 * 9);
    // The last two entries: one of stdout, one of stderr.
    let out = env.berth(&["logs", "--tail", "2", &id]);
    assert_eq!(
        (text(&out.stdout).as_str(), text(&out.stderr).as_str()),
        ("line-299\n", "err-line\n")
    );
    let stamped = env.ok(&["logs", "-t", "--tail", "2", &id]);
    assert!(stamped.contains("Z line-299"), "{stamped}");
    assert_eq!(
        env.ok(&[
            "logs",
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2000-01-02T00:00:00Z",
            &id
        ]),
        ""
    );
    env.ok(&["rm", &id]);
}

#[test]
fn stdin_pty_attach_and_exec() {
    if !can_run("stdio", &["script"]) {
        return;
    }
    let env = Env::new();
    let rootfs = env.rootfs.to_str().unwrap();
    // -i: our stdin to the container, until EOF.
    let mut child = env
        .cmd(&[
            "run",
            "--rm",
            "-i",
            "--rootfs",
            rootfs,
            "sh",
            "-c",
            "read a; read b; echo got $a $b; cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\nrest\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "got one two\nrest\n");
    // -it on a real pty (script gives berth one): the container sees a terminal with our size.
    let berth = env.shell_command();
    let cmd = format!(
        "stty rows 33 cols 101; {berth} run --rm -it --rootfs {rootfs} sh -c 'tty; stty size; exit 4'"
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.contains("/dev/pts/0"), "{stdout}");
    assert!(stdout.contains("33 101"), "{stdout}");
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    // Typed input reaches a terminal shell.
    let cmd = format!("{berth} run --rm -it --rootfs {rootfs} sh");
    let out = support_containers::in_pty(
        &cmd,
        b"echo $((6*7))
exit 6
",
    );
    assert!(text(&out.stdout).contains("42"), "{}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(6));

    // exec: code, env, user, workdir; -d; a missing program is 127.
    let id = env.run_detached(
        &["--name", "box", "-i"],
        &["sh", "-c", "while read l; do echo \"in: $l\"; done"],
    );
    let out = env.berth(&[
        "exec",
        "-e",
        "X=1",
        "-u",
        "user",
        "-w",
        "/tmp",
        "box",
        "sh",
        "-c",
        "echo $X $(id -u) $(pwd); exit 3",
    ]);
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(3), "1 1000 /tmp\n")
    );
    let out = env.berth(&["exec", "box", "nope"]);
    assert_eq!(out.status.code(), Some(127));
    env.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.2; touch /tmp/detached",
    ]);
    assert!(env.eventually(Duration::from_secs(20), || {
        env.berth(&["exec", "box", "test", "-e", "/tmp/detached"])
            .status
            .success()
    }));
    // attach: the output of a running container, and our input to it.
    let mut attached = env
        .cmd(&["attach", "box"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = attached.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5)
        && !env.ok(&["logs", "box"]).contains("in: hello")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    env.ok(&["stop", "-t", "0", "box"]);
    drop(stdin);
    let out = attached.wait_with_output().unwrap();
    assert!(
        text(&out.stdout).contains("in: hello"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(137));
    env.ok(&["rm", &id]);
    env.assert_gone(&id);
}

#[test]
fn logs_show_a_line_soon_after_the_container_printed_it() {
    if !can_run("logs_soon", &[]) {
        return;
    }
    let env = Env::new();
    let marks = env.dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let volume = format!("{}:/m", marks.display());
    // Each tick is echoed, then its marker written: once the marker is on the host, the
    // line is in the container's stdout pipe and the monitor owes it to the log.
    let id = env.run_detached(
        &["-v", &volume],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 5 ]; do echo tick-$i; touch /m/$i; i=$((i+1)); sleep 0.3; done; sleep 60",
        ],
    );
    for i in 0..5 {
        assert!(
            env.eventually(Duration::from_secs(20), || marks
                .join(i.to_string())
                .exists()),
            "marker {i} never written"
        );
        // Not a timing claim: the monitor only has to wake once on a readable pipe.
        let line = format!("tick-{i}\n");
        assert!(
            env.eventually(Duration::from_secs(2), || env
                .ok(&["logs", &id])
                .contains(&line)),
            "logs lacks {line:?} after its marker: {}",
            env.ok(&["logs", &id])
        );
        let logs = env.ok(&["logs", &id]);
        assert!(logs.starts_with("tick-0\n"), "{logs}");
    }
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);
}
