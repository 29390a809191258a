//! The six OCI hooks: when each runs, in which mount namespace, with which state on stdin,
//! args and env; timeouts; what a failing hook does to each command.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const ORDER: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hooks directory, bind-mounted into the container at the same path so that the
/// startContainer hook (which runs inside) writes to the same place.
struct Recorder {
    dir: PathBuf,
    /// A file outside the bundle's rootfs and the hooks directory: visible only to hooks
    /// whose root is the host's.
    host_marker: PathBuf,
}

impl Recorder {
    fn new(env: &TestEnv, bundle: &mut Bundle) -> Self {
        let dir = env.new_dir("hooks");
        let host_marker = env.dir().join("host-marker");
        fs::write(&host_marker, "").unwrap();
        bundle.mount(json!({"destination": dir.to_str().unwrap(), "type": "bind",
                            "source": dir.to_str().unwrap(), "options": ["rbind", "rw"]}));
        Recorder { dir, host_marker }
    }

    /// A hook that records its stdin, mount namespace, env and args, whether it sees the
    /// host's root, the comm of the container process, and its place in the order.
    fn hook(&self, env: &TestEnv, name: &str) -> Value {
        let d = self.dir.display();
        let marker = self.host_marker.display();
        let script = format!(
            "cat > {d}/{name}.stdin; readlink /proc/self/ns/mnt > {d}/{name}.mnt; \
             echo \"$HOOK_VAR|$0|$1\" > {d}/{name}.args; env > {d}/{name}.env; \
             if [ -e {marker} ]; then echo host > {d}/{name}.root; else echo container > {d}/{name}.root; fi; \
             pid=$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p' {d}/{name}.stdin); \
             cat /proc/$pid/comm > {d}/{name}.comm 2>/dev/null; \
             echo {name} >> {d}/order"
        );
        json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", script, "hook-arg-0", "hook-arg-1"],
            "env": [format!("HOOK_VAR=value-{name}"), format!("{TOKEN_VAR}={}", env.token())],
            "timeout": 10
        })
    }

    fn install_all(&self, env: &TestEnv, bundle: &mut Bundle) {
        for name in ORDER {
            bundle.hooks(name, json!([self.hook(env, name)]));
        }
    }

    fn order(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("order"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    fn read(&self, name: &str, what: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{name}.{what}")))
            .unwrap_or_else(|e| panic!("{name}.{what}: {e}"))
            .trim()
            .to_string()
    }

    fn state(&self, name: &str) -> Value {
        let text = self.read(name, "stdin");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} got no state JSON on stdin ({e}): {text:?}"))
    }
}

fn host_mnt() -> String {
    ns_link("/proc/self/ns/mnt")
}

#[test]
fn all_six_hooks_run_at_their_time_with_the_state() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let rec = Recorder::new(&env, &mut bundle);
    rec.install_all(&env, &mut bundle);
    bundle.config["annotations"] = json!({"org.example.hooks": "yes"});
    bundle.args(&["sleep", "100"]);

    let c = env.create(&bundle);
    assert_eq!(
        rec.order(),
        ["prestart", "createRuntime", "createContainer"]
    );
    let pid = c.pid();
    let container_mnt = ns_link(format!("/proc/{pid}/ns/mnt"));
    assert_ne!(container_mnt, host_mnt());

    c.start().ok();
    // poststart ran before start returned, after the process was exec'd.
    assert_eq!(&rec.order()[3..], ["startContainer", "poststart"]);
    assert_eq!(rec.read("poststart", "comm"), "sleep");
    c.kill("KILL").ok();
    c.wait_stopped();
    // poststop runs in delete, not when the process exits.
    assert_eq!(rec.order().len(), 5);
    c.delete().ok();
    assert_eq!(rec.order(), ORDER);

    let bundle_path = bundle.dir.to_str().unwrap();
    for (name, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let state = rec.state(name);
        assert_eq!(state["id"], c.id.as_str(), "{name}: {state}");
        assert_eq!(state["status"], status, "{name}: {state}");
        assert_eq!(state["bundle"], bundle_path, "{name}: {state}");
        assert_eq!(
            state["annotations"],
            json!({"org.example.hooks": "yes"}),
            "{name}: {state}"
        );
        assert!(state["ociVersion"].is_string(), "{name}: {state}");
        if name != "poststop" {
            assert_eq!(state["pid"], pid, "{name}: {state}");
        }
        assert_eq!(
            rec.read(name, "args"),
            format!("value-{name}|hook-arg-0|hook-arg-1"),
            "{name}"
        );
        let hook_env = rec.read(name, "env");
        assert!(
            !hook_env.contains(RUNTIME_ENV_MARKER),
            "{name} inherited the runtime's environment:\n{hook_env}"
        );
    }

    // Which mount namespace and root each hook saw.
    for name in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(
            rec.read(name, "mnt"),
            host_mnt(),
            "{name} is not in the runtime's mount namespace"
        );
        assert_eq!(rec.read(name, "root"), "host", "{name}");
    }
    // createContainer: the container's mount namespace, before pivot_root.
    assert_eq!(rec.read("createContainer", "mnt"), container_mnt);
    assert_eq!(rec.read("createContainer", "root"), "host");
    // startContainer: inside the container, just before the process.
    assert_eq!(rec.read("startContainer", "mnt"), container_mnt);
    assert_eq!(rec.read("startContainer", "root"), "container");
    // Before the user process: the container's pid was still the runtime's fork.
    assert_eq!(rec.read("createContainer", "comm"), "berth-runtime");
}

#[test]
fn run_runs_all_hooks_in_order() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let rec = Recorder::new(&env, &mut bundle);
    rec.install_all(&env, &mut bundle);
    bundle.sh("echo process-ran");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.stdout, "process-ran\n");
    assert_eq!(rec.order(), ORDER);
    assert_eq!(rec.state("poststart")["status"], "running");
}

#[test]
fn hook_timeout_kills_a_slow_prestart_hook() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.hooks(
        "prestart",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 30"], "timeout": 1,
                "env": [format!("{TOKEN_VAR}={}", env.token())]}]),
    );
    let started = Instant::now();
    let (out, c) = env.try_create(&bundle, &[]);
    let took = started.elapsed();
    out.fails().mentions(&["prestart", "timed out"]);
    assert!(took < Duration::from_secs(10), "create took {took:?}");
    env.assert_nothing_left(&c.id);
}

#[test]
fn hook_timeout_of_poststart_only_warns() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.hooks(
        "poststart",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 30"], "timeout": 1,
                "env": [format!("{TOKEN_VAR}={}", env.token())]}]),
    );
    bundle.args(&["sleep", "100"]);
    let c = env.create(&bundle);
    let started = Instant::now();
    let out = c.start();
    out.ok().mentions(&["poststart", "timed out"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(c.status(), "running");
}

fn failing_hook(env: &TestEnv) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", "echo the-hook-said-no >&2; exit 3"],
           "env": [format!("{TOKEN_VAR}={}", env.token())]})
}

#[test]
fn a_failing_creation_hook_fails_create_and_leaves_nothing() {
    let Some(env) = TestEnv::new() else { return };
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut bundle = env.bundle();
        let marker = env.dir().join(format!("{kind}-process-ran"));
        bundle.hooks(kind, json!([failing_hook(&env)]));
        bundle.sh(&format!("touch {}", marker.display()));
        let (out, c) = env.try_create(&bundle, &[]);
        out.fails().mentions(&[kind, "the-hook-said-no"]);
        env.assert_nothing_left(&c.id);
        assert!(!marker.exists());
    }
}

#[test]
fn a_creation_hook_that_does_not_exist_fails_create() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.hooks("createRuntime", json!([{"path": "/no/such/hook"}]));
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["createRuntime", "/no/such/hook"]);
    env.assert_nothing_left(&c.id);
}

#[test]
fn a_failing_start_container_hook_fails_start_and_the_process_never_runs() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.hooks("startContainer", json!([failing_hook(&env)]));
    bundle.sh("echo process-ran");
    let c = env.create(&bundle);
    c.start().fails().mentions(&["startContainer"]);
    c.wait_stopped();
    assert_eq!(c.stdout(), "");
    c.delete().ok();
}

/// A hook that appends its name to `file`.
fn append_hook(file: &Path, name: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo {name} >> {}", file.display())]})
}

#[test]
fn a_failing_poststart_hook_only_warns() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let log = env.dir().join("poststart-log");
    bundle.hooks(
        "poststart",
        json!([failing_hook(&env), append_hook(&log, "second-poststart")]),
    );
    bundle.args(&["sleep", "100"]);
    let c = env.create(&bundle);
    c.start().ok().mentions(&["poststart", "the-hook-said-no"]);
    assert_eq!(fs::read_to_string(&log).unwrap(), "second-poststart\n");
    assert_eq!(c.status(), "running");
}

#[test]
fn a_failing_poststop_hook_only_warns() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let log = env.dir().join("poststop-log");
    bundle.hooks(
        "poststop",
        json!([failing_hook(&env), append_hook(&log, "second-poststop")]),
    );
    let c = env.create_started(&bundle);
    c.wait_stopped();
    assert!(!log.exists(), "poststop ran before delete");
    c.delete().ok().mentions(&["poststop", "the-hook-said-no"]);
    assert_eq!(fs::read_to_string(&log).unwrap(), "second-poststop\n");
    assert!(!c.state_dir().exists());
    c.try_state().fails();
}

#[test]
fn poststop_runs_on_delete_force_of_a_running_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let log = env.dir().join("poststop-log");
    bundle.hooks("poststop", json!([append_hook(&log, "poststop")]));
    bundle.args(&["sleep", "100"]);
    let c = env.create_started(&bundle);
    c.delete_force().ok();
    assert_eq!(fs::read_to_string(&log).unwrap(), "poststop\n");
}

#[test]
fn a_relative_hook_path_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.hooks("prestart", json!([{"path": "bin/true"}]));
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["hooks.prestart[0].path"]);
    env.assert_nothing_left(&c.id);
}
