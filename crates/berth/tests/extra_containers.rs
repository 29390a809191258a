//! stats, top, pause/unpause, update, rename and port on real containers (a busybox root
//! filesystem run with `--rootfs`), checked against the cgroup files and the kernel.

mod support_extra;

use std::fs;

use support_extra::{Env, can_run};

fn cgroup_file(controller: &str, id: &str, file: &str) -> Option<String> {
    fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn stats_top_pause_update_rename_port() {
    if !can_run("stats/top/pause/update") {
        return;
    }
    let env = Env::new();
    let id = env.run_d(
        "web",
        &["-m", "64m"],
        &["sh", "-c", "sleep 1000 & sleep 1000"],
    );

    // stats --no-stream: docker's columns, the limit from the cgroup, 2 processes.
    let table = env.ok(&["stats", "--no-stream"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id[..12]) && row.contains("web") && row.contains("/ 64MiB"),
        "{row}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["stats", "--no-stream", "--format", "json"])).unwrap();
    assert_eq!(json[0]["Name"], "web");
    assert_eq!(json[0]["PIDs"], "2");
    assert!(json[0]["CPUPerc"].as_str().unwrap().ends_with('%'));
    assert_eq!(
        env.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "web"
        ])
        .trim(),
        "web 2"
    );

    // top: ps -ef rows of the container's processes only; ps options passed on.
    let top = env.ok(&["top", "web"]);
    assert!(
        top.lines().next().unwrap().contains("PID") && top.lines().next().unwrap().contains("CMD"),
        "{top}"
    );
    assert_eq!(
        top.lines().filter(|l| l.contains("sleep 1000")).count(),
        2,
        "{top}"
    );
    assert_eq!(
        top.lines().count(),
        3,
        "only the container's processes: {top}"
    );
    let custom = env.ok(&["top", "web", "-o", "pid,comm"]);
    assert!(
        custom.lines().next().unwrap().contains("COMMAND"),
        "{custom}"
    );
    assert!(custom.contains("sleep"));

    // pause: frozen in the kernel, "(Paused)" in ps; unpause thaws.
    assert_eq!(env.ok(&["pause", "web"]).trim(), "web");
    if let Some(state) = cgroup_file("freezer", &id, "freezer.state") {
        assert_eq!(state, "FROZEN");
    }
    assert!(env.ok(&["ps"]).contains("(Paused)"));
    assert!(env.fails(&["pause", "web"], 125).contains("already paused"));
    assert_eq!(env.ok(&["unpause", "web"]).trim(), "web");
    if let Some(state) = cgroup_file("freezer", &id, "freezer.state") {
        assert_eq!(state, "THAWED");
    }
    assert!(env.fails(&["unpause", "web"], 125).contains("not paused"));

    // update: the cgroup now, the record for inspect.
    assert_eq!(
        env.ok(&[
            "update",
            "-m",
            "128m",
            "--pids-limit",
            "50",
            "--cpus",
            "0.5",
            "web"
        ])
        .trim(),
        "web"
    );
    if let Some(limit) = cgroup_file("memory", &id, "memory.limit_in_bytes") {
        assert_eq!(limit, (128u64 << 20).to_string());
        assert_eq!(cgroup_file("pids", &id, "pids.max").unwrap(), "50");
        assert_eq!(
            cgroup_file("cpu", &id, "cpu.cfs_quota_us").unwrap(),
            "50000"
        );
    }
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "web"])).unwrap();
    assert_eq!(inspect[0]["HostConfig"]["Memory"], 128u64 << 20);
    assert!(
        env.fails(&["update", "-m", "lots", "web"], 125)
            .contains("--memory")
    );

    // rename: the new name works, the old one is free.
    env.ok(&["rename", "web", "api"]);
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]).trim(), "api");
    assert!(env.fails(&["top", "web"], 125).contains("web"));
    let other = env.run_d("other", &[], &["sleep", "1000"]);
    assert!(
        env.fails(&["rename", "other", "api"], 125)
            .contains("already in use")
    );
    env.ok(&["rm", "-f", &other]);

    // port: nothing published (no networking yet): nothing printed, exit 0 like docker.
    assert_eq!(env.ok(&["port", "api"]), "");
    assert!(env.fails(&["port", "api", "80"], 125).contains("80/tcp"));

    // A stopped container: stats -a shows it with zeros, top and pause refuse.
    env.ok(&["stop", "-t", "0", "api"]);
    assert!(env.ok(&["stats", "--no-stream", "-a"]).contains("0B / 0B"));
    assert!(env.fails(&["top", "api"], 125).contains("exited"));
    assert!(env.fails(&["pause", "api"], 125).contains("not running"));
    // update of a stopped container: recorded for its next start.
    env.ok(&["update", "-m", "96m", "api"]);
    env.ok(&["start", "api"]);
    if let Some(limit) = cgroup_file("memory", &id, "memory.limit_in_bytes") {
        assert_eq!(limit, (96u64 << 20).to_string());
    }
    env.ok(&["rm", "-f", "api"]);
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/memory/berth/{id}")).exists());
}

#[test]
fn stats_streams_until_the_container_is_gone() {
    if !can_run("stats stream") {
        return;
    }
    let env = Env::new();
    env.run_d("short", &[], &["sleep", "1"]);
    let started = std::time::Instant::now();
    let out = env.berth(&["stats", "--interval", "0.2", "short"]);
    assert!(out.status.success());
    let text = support_extra::text(&out.stdout);
    assert!(
        text.matches("CONTAINER ID").count() >= 2,
        "refreshed: {text}"
    );
    assert!(
        !text.contains("\x1b[2J"),
        "no screen clearing when stdout is no terminal"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
