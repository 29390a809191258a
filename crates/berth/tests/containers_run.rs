//! `berth run`, `create`, `start`, `ps`, `logs`, `stop`, `rm`, `wait`, `kill`, `inspect` as a
//! person runs them, on real containers from a busybox root filesystem; and nothing left
//! afterwards.

mod support_containers;

use std::time::Duration;

use support_containers::{Env, can_run};

#[test]
fn run_rm_exits_with_the_containers_code_and_leaves_nothing() {
    if !can_run("run_rm", &[]) {
        return;
    }
    let env = Env::new();
    assert_eq!(env.run_ok(&[], &["echo", "hello"]), "hello\n");
    let (code, out, err) = env.run(&[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    // docker's codes for a program that is not there or not executable.
    let (code, _, err) = env.run(&[], &["nope"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("nope") && err.contains("not found"), "{err}");
    let (code, _, err) = env.run(&[], &["/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    // Killed by a signal: 128 + its number (with the host's pid namespace sh is not a pid 1,
    // which signals from inside cannot kill).
    let (code, _, _) = env.run(&["--pid", "host"], &["sh", "-c", "kill -9 $$"]);
    assert_eq!(code, 137);
    // berth's own errors are 125 and name the flag.
    let (code, _, err) = env.run(&["-m", "lots"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("--memory"), "{err}");
    assert!(env.ids().is_empty(), "--rm left records: {:?}", env.ids());
    assert!(env.ok(&["ps", "-a", "-q"]).is_empty());
}

#[test]
fn detached_container_lifecycle() {
    if !can_run("detached_lifecycle", &[]) {
        return;
    }
    let env = Env::new();
    let id = env.run_detached(
        &["--name", "ticker"],
        &[
            "sh",
            "-c",
            "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        ],
    );
    assert_eq!(id.len(), 64);
    let ps = env.ok(&["ps"]);
    let mut lines = ps.lines();
    assert!(
        lines.next().unwrap().starts_with("CONTAINER ID   IMAGE"),
        "{ps}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id[..12]) && row.contains("Up ") && row.ends_with("ticker"),
        "{ps}"
    );
    assert!(env.eventually(Duration::from_secs(20), || {
        env.ok(&["logs", "ticker"]).contains("tick 2")
    }));
    assert_eq!(
        env.ok(&["logs", "--tail", "1", "ticker"]).lines().count(),
        1
    );
    // The log is docker's json-file.
    let log = std::fs::read_to_string(
        env.root
            .join("containers")
            .join(&id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "tick 0\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    // Prefix and name lookups.
    assert_eq!(env.inspect(&id[..8], "{{.Name}}"), "/ticker");
    assert_eq!(
        env.inspect("ticker", "{{.State.Status}} {{.State.Running}}"),
        "running true"
    );
    let pid: i32 = env.inspect("ticker", "{{.State.Pid}}").parse().unwrap();
    assert!(pid > 0);
    // A running container is not removed without -f.
    let out = env.berth(&["rm", "ticker"]);
    assert_eq!(out.status.code(), Some(125));
    // sh as pid 1 ignores SIGTERM: stop ends with SIGKILL after the timeout.
    let started = std::time::Instant::now();
    assert_eq!(env.ok(&["stop", "-t", "1", "ticker"]), "ticker\n");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        env.inspect("ticker", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    let ps = env.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("ticker Exited (137) "), "{ps}");
    assert!(env.ok(&["ps", "-q"]).is_empty());
    // Started again, then killed with a signal it handles by dying.
    env.ok(&["start", "ticker"]);
    assert_eq!(
        env.inspect("ticker", "{{.State.Status}} {{.RestartCount}}"),
        "running 0"
    );
    env.ok(&["kill", "-s", "KILL", "ticker"]);
    assert_eq!(env.ok(&["wait", "ticker"]).trim(), "137");
    env.ok(&["rm", "ticker"]);
    env.assert_gone(&id);
}

#[test]
fn create_then_start_attached() {
    if !can_run("create_start", &[]) {
        return;
    }
    let env = Env::new();
    let rootfs = env.rootfs.to_str().unwrap();
    let id = env.ok(&[
        "create",
        "--name",
        "later",
        "--rootfs",
        rootfs,
        "sh",
        "-c",
        "echo from-start; exit 7",
    ]);
    let id = id.trim();
    assert_eq!(env.inspect("later", "{{.State.Status}}"), "created");
    let ps = env.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert_eq!(ps.trim(), "Created");
    let out = env.berth(&["start", "-a", "later"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(support_containers::text(&out.stdout), "from-start\n");
    assert_eq!(env.ok(&["logs", "later"]), "from-start\n");
    env.ok(&["rm", "later"]);
    env.assert_gone(id);
}

#[test]
fn names_are_unique_and_generated() {
    if !can_run("names", &[]) {
        return;
    }
    let env = Env::new();
    let a = env.run_detached(&["--name", "same"], &["sleep", "30"]);
    let rootfs = env.rootfs.to_str().unwrap();
    let out = env.berth(&["run", "-d", "--name", "same", "--rootfs", rootfs, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(support_containers::text(&out.stderr).contains("already in use"));
    let b = env.run_detached(&[], &["sleep", "30"]);
    let name = env.inspect(&b, "{{.Name}}");
    let (adj, surname) = name.trim_start_matches('/').split_once('_').unwrap();
    assert!(!adj.is_empty() && !surname.is_empty(), "{name}");
    env.ok(&["rm", "-f", &a, &b]);
    env.assert_gone(&a);
    env.assert_gone(&b);
}

#[test]
fn sixteen_concurrent_runs() {
    if !can_run("concurrent_runs", &[]) {
        return;
    }
    let env = Env::new();
    let started = std::time::Instant::now();
    let outs: Vec<(i32, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let env = &env;
                s.spawn(move || {
                    let (code, out, err) = env.run(&[], &["sh", "-c", &format!("echo {i}")]);
                    (code, format!("{out}{err}"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (code, out)) in outs.iter().enumerate() {
        assert_eq!((*code, out.trim()), (0, i.to_string().as_str()));
    }
    eprintln!("16 concurrent run --rm: {:?}", started.elapsed());
    assert!(env.ids().is_empty());
}

#[test]
fn inspect_has_dockers_shape() {
    if !can_run("inspect", &[]) {
        return;
    }
    let env = Env::new();
    let id = env.run_detached(
        &[
            "--name", "shape", "-m", "64m", "--cpus", "1.5", "-l", "app=web", "-e", "A=1",
        ],
        &["sleep", "30"],
    );
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "shape"])).unwrap();
    let c = &doc[0];
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/shape");
    assert_eq!(c["Path"], "sleep");
    assert_eq!(c["Args"], serde_json::json!(["30"]));
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["OOMKilled"], false);
    assert_eq!(c["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(c["HostConfig"]["NanoCpus"], 1_500_000_000u64);
    assert_eq!(c["Config"]["Labels"]["app"], "web");
    assert!(
        c["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("A=1"))
    );
    let filtered = env.ok(&["ps", "--filter", "label=app=web", "-q"]);
    assert_eq!(filtered.trim(), &id[..12]);
    assert!(env.ok(&["ps", "--filter", "name=other", "-q"]).is_empty());
    assert_eq!(
        env.ok(&["ps", "--filter", "status=running", "-q", "--no-trunc"])
            .trim(),
        id
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["ps", "--format", "json"])).unwrap();
    assert_eq!(json[0]["Names"], "shape");
    let out = env.berth(&["inspect", "nothing-here"]);
    assert_eq!(out.status.code(), Some(125));
    env.ok(&["rm", "-f", "shape"]);
    env.assert_gone(&id);
}
