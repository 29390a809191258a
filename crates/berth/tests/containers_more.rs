//! What issue #11's audit found built but untested: `restart`, `--stop-signal` and
//! `--stop-timeout`, `--restart unless-stopped`, `ps -n`/`--last` and `--filter ancestor=`,
//! `rm --all`, `--cpuset-mems` and `--blkio-weight` in the cgroup, a seccomp profile file,
//! `start -i`, `exec -i` and `exec -t`. Each checks the effect (inside the container, in the
//! cgroup, or in inspect/ps) against what docker and podman do.

mod support_containers;

use std::process::Command;
use std::time::{Duration, Instant};

use support_containers::{Env, can_run, text};

#[test]
fn restart_runs_the_container_again() {
    if !can_run("restart_verb", &[]) {
        return;
    }
    let env = Env::new();
    let marks = env.dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let volume = format!("{}:/m", marks.display());
    // The first run exits 5; every later one stays up.
    let id = env.run_detached(
        &["--name", "again", "-v", &volume],
        &[
            "sh",
            "-c",
            "echo up; [ -e /m/ran ] && exec sleep 60; touch /m/ran; exit 5",
        ],
    );
    assert_eq!(env.ok(&["wait", "again"]).trim(), "5");
    let first = env.inspect("again", "{{.State.StartedAt}}");
    assert_eq!(
        env.inspect("again", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 5"
    );
    // docker restart also starts a stopped container; the exit code is reset.
    assert_eq!(env.ok(&["restart", "again"]).trim(), "again");
    assert_eq!(
        env.inspect("again", "{{.State.Status}} {{.State.ExitCode}}"),
        "running 0"
    );
    let second = env.inspect("again", "{{.State.StartedAt}}");
    assert_ne!(first, second);
    let pid: i32 = env.inspect("again", "{{.State.Pid}}").parse().unwrap();
    assert!(pid > 0);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // A running one is stopped (stop signal, then SIGKILL after -t) and started again: a
    // new process, a new start time.
    let started = Instant::now();
    env.ok(&["restart", "-t", "1", "again"]);
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(
        env.inspect("again", "{{.State.Status}} {{.State.ExitCode}}"),
        "running 0"
    );
    let new_pid: i32 = env.inspect("again", "{{.State.Pid}}").parse().unwrap();
    assert!(new_pid > 0 && new_pid != pid, "{pid} {new_pid}");
    assert!(env.eventually(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }));
    let third = env.inspect("again", "{{.State.StartedAt}}");
    assert!(third > second, "{second} {third}");
    // docker's RestartCount counts the policy's restarts, not the verb's.
    assert_eq!(env.inspect("again", "{{.RestartCount}}"), "0");
    assert_eq!(env.ok(&["logs", "again"]), "up\nup\nup\n");
    env.ok(&["exec", "again", "true"]);
    env.ok(&["rm", "-f", "again"]);
    env.assert_gone(&id);
}

#[test]
fn stop_signal_and_stop_timeout() {
    if !can_run("stop_signal", &[]) {
        return;
    }
    let env = Env::new();
    // The trap sees the signal `stop` sends, and the container ends by its own hand.
    let id = env.run_detached(
        &["--stop-signal", "SIGUSR1"],
        &[
            "sh",
            "-c",
            "trap 'echo got USR1; exit 7' USR1; trap 'echo got TERM; exit 8' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    assert_eq!(env.inspect(&id, "{{.Config.StopSignal}}"), "SIGUSR1");
    assert!(env.eventually(Duration::from_secs(10), || {
        env.ok(&["logs", &id]).contains("ready")
    }));
    let started = Instant::now();
    env.ok(&["stop", "-t", "20", &id]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "7");
    assert_eq!(env.ok(&["logs", &id]), "ready\ngot USR1\n");
    env.ok(&["rm", &id]);
    env.assert_gone(&id);

    // A number works as docker's does (10 is SIGUSR1 on x86 and arm).
    let id = env.run_detached(
        &["--stop-signal", "10"],
        &[
            "sh",
            "-c",
            "trap 'exit 7' USR1; echo ready; while :; do sleep 0.1; done",
        ],
    );
    assert!(env.eventually(Duration::from_secs(10), || {
        env.ok(&["logs", &id]).contains("ready")
    }));
    env.ok(&["stop", "-t", "20", &id]);
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "7");
    env.ok(&["rm", &id]);

    // --stop-timeout: what `stop` waits when not given -t before SIGKILL (the default is
    // 10 s; an ignored SIGTERM makes the wait visible).
    let id = env.run_detached(
        &["--stop-timeout", "1"],
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    assert_eq!(env.inspect(&id, "{{.Config.StopTimeout}}"), "1");
    assert!(env.eventually(Duration::from_secs(10), || {
        env.ok(&["logs", &id]).contains("ready")
    }));
    let started = Instant::now();
    env.ok(&["stop", &id]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(7),
        "{took:?}"
    );
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "137");
    // -t wins over it.
    env.ok(&["start", &id]);
    assert!(env.eventually(Duration::from_secs(10), || {
        env.ok(&["logs", &id]).matches("ready").count() == 2
    }));
    let started = Instant::now();
    env.ok(&["stop", "-t", "4", &id]);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(3900), "{took:?}");
    assert_eq!(env.inspect(&id, "{{.State.ExitCode}}"), "137");
    env.ok(&["rm", &id]);
    env.assert_gone(&id);
}

#[test]
fn unless_stopped_restarts_until_stopped() {
    if !can_run("unless_stopped", &[]) {
        return;
    }
    let env = Env::new();
    let id = env.run_detached(
        &["--restart", "unless-stopped"],
        &["sh", "-c", "echo run; sleep 0.2; exit 3"],
    );
    assert_eq!(
        env.inspect(&id, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    // It comes back after its process exits, also with a failure code.
    assert!(env.eventually(Duration::from_secs(20), || {
        env.inspect(&id, "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap()
            >= 2
    }));
    assert!(env.eventually(Duration::from_secs(10), || {
        env.ok(&["logs", &id]).matches("run\n").count() >= 3
    }));
    env.ok(&["stop", "-t", "1", &id]);
    let count = env.inspect(&id, "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env.inspect(&id, "{{.RestartCount}}"), count);
    assert_eq!(env.inspect(&id, "{{.State.Status}}"), "exited");
    assert!(env.ok(&["ps", "-q"]).trim().is_empty());
    // A stopped container's process is not restarted by the next berth command either.
    env.ok(&["ps", "-a"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.inspect(&id, "{{.State.Status}}"), "exited");
    env.ok(&["rm", &id]);
    env.assert_gone(&id);
}

fn import(env: &Env, name: &str, changes: &[&str]) {
    let tar = env.dir.path().join("rootfs.tar");
    if !tar.exists() {
        let out = Command::new("tar")
            .arg("-C")
            .arg(&env.rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "tar: {}", text(&out.stderr));
    }
    let mut args = vec!["import"];
    for c in changes {
        args.extend_from_slice(&["--change", c]);
    }
    args.extend_from_slice(&[tar.to_str().unwrap(), name]);
    env.ok(&args);
}

#[test]
fn ps_last_and_ancestor() {
    if !can_run("ps_last", &["tar"]) {
        return;
    }
    let env = Env::new();
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        env.ok(&all).lines().map(str::to_string).collect()
    };
    let one = env.run_detached(&["--name", "one"], &["sleep", "60"]);
    let two = env.run_detached(&["--name", "two"], &["true"]);
    assert_eq!(env.ok(&["wait", "two"]).trim(), "0");
    let three = env.run_detached(&["--name", "three"], &["sleep", "60"]);
    // docker: -n N is the N last created, in any state, newest first.
    assert_eq!(names(&["-n", "2"]), ["three", "two"]);
    assert_eq!(names(&["--last", "3"]), ["three", "two", "one"]);
    assert_eq!(names(&["--last", "1"]), ["three"]);
    assert_eq!(names(&["-l"]), ["three"]);
    assert_eq!(names(&["-n", "9"]), ["three", "two", "one"]);
    // Without -a or -n only the running ones.
    assert_eq!(names(&[]), ["three", "one"]);

    // ancestor=: the image's name, its id, or an id prefix.
    // Two images (the change makes the configs, so the ids, differ).
    import(&env, "anc:1", &[]);
    import(&env, "other:2", &["ENV OTHER=1"]);
    let from_anc = env
        .ok(&["run", "-d", "--name", "from-anc", "anc:1", "sleep", "60"])
        .trim()
        .to_string();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "from-other",
        "other:2",
        "sleep",
        "60",
    ]);
    assert_eq!(names(&["-a", "--filter", "ancestor=anc:1"]), ["from-anc"]);
    assert_eq!(names(&["-a", "-f", "ancestor=other:2"]), ["from-other"]);
    // The image's full name (an import is localhost/, as podman names it) is the same
    // image, as docker and podman look it up in the store.
    assert_eq!(
        names(&["-a", "-f", "ancestor=localhost/anc:1"]),
        ["from-anc"]
    );
    let image_id = env.inspect(&from_anc, "{{.Image}}");
    let hex = image_id.trim_start_matches("sha256:");
    assert_eq!(hex.len(), 64, "{image_id}");
    assert_eq!(
        names(&["-a", "-f", &format!("ancestor={hex}")]),
        ["from-anc"]
    );
    assert_eq!(
        names(&["-a", "-f", &format!("ancestor={}", &hex[..12])]),
        ["from-anc"]
    );
    // A second name of the image is the same image (docker matches by the image).
    env.ok(&["tag", "anc:1", "alias:3"]);
    assert_eq!(names(&["-a", "-f", "ancestor=alias:3"]), ["from-anc"]);
    // A container of no image (--rootfs) has no ancestor.
    assert!(!names(&["-a", "-f", "ancestor=anc:1"]).contains(&"one".to_string()));
    assert!(names(&["-a", "-f", "ancestor=nosuch:9"]).is_empty());
    // Filters of one kind are alternatives, of different kinds all must hold.
    let mut two_kinds = names(&[
        "-a",
        "-f",
        "ancestor=anc:1",
        "-f",
        "ancestor=other:2",
        "-f",
        "name=from-o",
    ]);
    two_kinds.sort();
    assert_eq!(two_kinds, ["from-other"]);
    env.ok(&["rm", "-f", "from-anc", "from-other", &one, &two, &three]);
    env.assert_gone(&from_anc);
    env.assert_gone(&one);
}

#[test]
fn rm_all_removes_every_container() {
    if !can_run("rm_all", &[]) {
        return;
    }
    let env = Env::new();
    let running = env.run_detached(&["--name", "running"], &["sleep", "60"]);
    let exited = env.run_detached(&["--name", "exited"], &["true"]);
    env.ok(&["wait", "exited"]);
    let rootfs = env.rootfs.to_str().unwrap();
    let created = env
        .ok(&["create", "--name", "created", "--rootfs", rootfs, "true"])
        .trim()
        .to_string();
    // podman rm --all: without -f a running container is refused (and kept), the others go.
    let out = env.berth(&["rm", "-a"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("running"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.ids(), std::slice::from_ref(&running));
    env.assert_gone(&exited);
    env.assert_gone(&created);
    assert_eq!(env.inspect("running", "{{.State.Status}}"), "running");
    // With -f the running one too.
    let out = env.ok(&["rm", "--all", "-f"]);
    assert_eq!(out.trim(), running);
    assert!(env.ids().is_empty());
    env.assert_gone(&running);
    // Nothing to remove is not an error.
    assert_eq!(env.ok(&["rm", "-a"]), "");
}
