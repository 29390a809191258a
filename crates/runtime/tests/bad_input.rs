//! Bad input: every mistake gets a clear error that names the problem, a non-zero exit, and
//! leaves no mount, cgroup, process or state directory behind.

mod common;

use std::fs;

use common::*;
use serde_json::{Value, json};

/// `create` of `bundle` as it is on disk (config.json not rewritten), with a fresh id.
fn create_as_is(env: &TestEnv, bundle: &Bundle) -> (Out, String) {
    let id = env.new_id();
    let (out, _) = env.runtime_to_files(
        &["create", "--bundle", bundle.dir.to_str().unwrap(), &id],
        COMMAND_TIMEOUT,
    );
    (out, id)
}

/// Creates `bundle` and expects a failure that mentions each of `words`.
#[track_caller]
fn create_fails(env: &TestEnv, bundle: &Bundle, words: &[&str]) -> Out {
    let (out, c) = env.try_create(bundle, &[]);
    out.fails().mentions(words);
    env.assert_nothing_left(&c.id);
    out
}

#[test]
fn missing_config_json_names_the_file() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    fs::remove_file(bundle.config_path()).unwrap();
    let (out, id) = create_as_is(&env, &bundle);
    out.fails()
        .mentions(&[bundle.config_path().to_str().unwrap()]);
    env.assert_nothing_left(&id);
}

#[test]
fn malformed_json_names_the_file_and_the_line() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    fs::write(
        bundle.config_path(),
        "{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": {\n    \"args\": [\"sh\",\n",
    )
    .unwrap();
    let (out, id) = create_as_is(&env, &bundle);
    out.fails()
        .mentions(&[bundle.config_path().to_str().unwrap(), "line 5"]);
    env.assert_nothing_left(&id);
}

#[test]
fn a_wrong_type_names_the_field() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["args"] = json!([1, "x"]);
    create_fails(&env, &bundle, &["config.json", "process.args[0]"]);
    let mut bundle = env.bundle();
    bundle.process()["user"]["uid"] = json!("root");
    create_fails(&env, &bundle, &["process.user.uid"]);
}

#[test]
fn a_rootfs_that_does_not_exist_names_root_path() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.config["root"]["path"] = json!("no-such-rootfs");
    create_fails(&env, &bundle, &["root.path", "no-such-rootfs"]);
}

#[test]
fn unknown_ids_are_reported_by_every_command() {
    let Some(env) = TestEnv::new() else { return };
    let id = "berth-test-no-such-container";
    for args in [
        vec!["start", id],
        vec!["state", id],
        vec!["kill", id, "KILL"],
        vec!["delete", id],
    ] {
        let out = env.runtime(&args);
        out.fails().mentions(&[id, "does not exist"]);
    }
}

#[test]
fn an_invalid_container_id_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    bundle.save();
    for bad in ["../escape", "a/b", ".."] {
        let out = env.runtime(&["create", "--bundle", bundle.dir.to_str().unwrap(), bad]);
        out.fails().mentions(&["invalid container id"]);
    }
    // Nothing was made next to the state root.
    assert!(!env.dir().join("escape").exists());
}

#[test]
fn a_duplicate_id_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    let c = env.create(&bundle);
    let out = env.runtime(&["create", "--bundle", bundle.dir.to_str().unwrap(), &c.id]);
    out.fails().mentions(&[&c.id, "already exists"]);
    assert_eq!(c.status(), "created");
}

#[test]
fn an_invalid_signal_is_named_and_changes_nothing() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let c = env.create_started(&bundle);
    let pid = c.pid();
    for bad in ["SIGFOO", "0", "999", "-9", "KILLL"] {
        c.kill(bad).fails().mentions(&[bad]);
    }
    assert_eq!(c.status(), "running");
    assert!(process_alive(pid));
}

#[test]
fn wrong_status_errors_name_the_status() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "100"]);
    let c = env.create_started(&bundle);
    c.start().fails().mentions(&[&c.id, "running"]);
    c.delete().fails().mentions(&[&c.id, "running", "--force"]);
    assert_eq!(c.status(), "running");
}

#[test]
fn an_unknown_namespace_type_names_the_entry() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let index = bundle.linux()["namespaces"].as_array().unwrap().len();
    bundle.linux()["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    create_fails(
        &env,
        &bundle,
        &[&format!("linux.namespaces[{index}].type"), "bogus"],
    );
}

#[test]
fn a_mount_destination_that_escapes_the_rootfs_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let index = bundle.config["mounts"].as_array().unwrap().len();
    bundle.mount(json!({"destination": "/../../etc", "type": "tmpfs", "source": "tmpfs"}));
    let host_etc_mounts = host_mountinfo()
        .iter()
        .filter(|m| m.mount_point == "/etc")
        .count();
    create_fails(
        &env,
        &bundle,
        &[&format!("mounts[{index}].destination"), "/../../etc"],
    );
    let after = host_mountinfo()
        .iter()
        .filter(|m| m.mount_point == "/etc")
        .count();
    assert_eq!(after, host_etc_mounts);
}

#[test]
fn a_relative_mount_destination_that_climbs_out_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let index = bundle.config["mounts"].as_array().unwrap().len();
    bundle.mount(json!({"destination": "/tmp/../../..", "type": "tmpfs", "source": "tmpfs"}));
    create_fails(&env, &bundle, &[&format!("mounts[{index}].destination")]);
}

#[test]
fn a_bind_source_that_does_not_exist_is_named() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let index = bundle.config["mounts"].as_array().unwrap().len();
    bundle.mount(
        json!({"destination": "/data", "type": "bind", "source": "/no/such/source",
                        "options": ["rbind"]}),
    );
    create_fails(
        &env,
        &bundle,
        &[&format!("mounts[{index}].source"), "/no/such/source"],
    );
}

#[test]
fn an_executable_that_does_not_exist_is_named() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["/no/such/binary", "arg"]);
    create_fails(&env, &bundle, &["/no/such/binary"]);
    let mut bundle = env.bundle();
    bundle.args(&["no-such-command"]);
    create_fails(&env, &bundle, &["no-such-command"]);
    // A directory is no executable either.
    let mut bundle = env.bundle();
    bundle.args(&["/etc"]);
    create_fails(&env, &bundle, &["/etc"]);
}

#[test]
fn empty_args_and_relative_cwd_are_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["args"] = json!([]);
    create_fails(&env, &bundle, &["process.args"]);
    let mut bundle = env.bundle();
    bundle.process()["cwd"] = json!("relative/dir");
    create_fails(&env, &bundle, &["process.cwd"]);
}

/// Everything the init converts is checked before the state dir exists: a cwd that climbs
/// out of the root fails as a configuration error even when the runtime would SIGKILL
/// itself right after reserving the directory (the debug build's kill hook). The init used
/// to find this one only after the clone.
#[test]
fn a_cwd_that_climbs_out_is_refused_before_anything_is_made() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["cwd"] = json!("/tmp/../../etc");
    bundle.save();
    let id = env.new_id();
    let io = env.io_files();
    let mut cmd = env.command(&["create", "--bundle", bundle.dir.to_str().unwrap(), &id]);
    cmd.env("BERTH_TEST_KILL_AT", "create:reserved");
    let out = run_to_files(&mut cmd, &io, COMMAND_TIMEOUT);
    assert_eq!(
        out.code, 1,
        "not a plain failure before the reservation:\n{out}"
    );
    out.mentions(&["invalid configuration: process.cwd", "escapes"]);
    env.assert_nothing_left(&id);
}

#[test]
fn a_cwd_that_is_a_file_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["cwd"] = json!("/etc/passwd");
    create_fails(&env, &bundle, &["/etc/passwd"]);
}

#[test]
fn id_mappings_without_a_user_namespace_are_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    bundle.linux()["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    create_fails(&env, &bundle, &["linux.uidMappings"]);
}

#[test]
fn an_unwritable_pid_file_fails_create_and_leaves_nothing() {
    let Some(env) = TestEnv::new() else { return };
    let bundle = env.bundle();
    let (out, c) = env.try_create(&bundle, &["--pid-file", "/no/such/dir/init.pid"]);
    out.fails().mentions(&["/no/such/dir/init.pid"]);
    env.assert_nothing_left(&c.id);
}

#[test]
fn a_console_socket_that_does_not_exist_fails_create() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["terminal"] = json!(true);
    let socket = env.dir().join("no-such-socket");
    let (out, c) = env.try_create(&bundle, &["--console-socket", socket.to_str().unwrap()]);
    out.fails().mentions(&[socket.to_str().unwrap()]);
    env.assert_nothing_left(&c.id);
}

#[test]
fn a_terminal_without_a_console_socket_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["terminal"] = json!(true);
    create_fails(&env, &bundle, &["process.terminal", "console-socket"]);
}

/// The last line of a log file, parsed as JSON.
fn last_json_line(path: &std::path::Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_default();
    let line = text
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{} is empty", path.display()));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

#[test]
fn json_log_format_writes_the_error_as_a_json_line() {
    let Some(env) = TestEnv::new() else { return };
    let log = env.dir().join("log.json");
    let log_s = log.to_str().unwrap();
    let id = "berth-test-not-there";
    let out = env.runtime(&["--log-format", "json", "--log", log_s, "state", id]);
    out.fails();
    let line = last_json_line(&log);
    assert_eq!(line["level"], "error", "{line}");
    let msg = line["msg"].as_str().expect("msg");
    assert!(msg.contains(id) && msg.contains("does not exist"), "{line}");
    let time = line["time"].as_str().expect("time");
    assert!(time.len() >= 20 && time.contains('T'), "{line}");
    // Each error is one line, and errors are appended.
    let bundle = env.bundle();
    fs::remove_file(bundle.config_path()).unwrap();
    let id2 = env.new_id();
    env.runtime(&[
        "--log-format=json",
        "--log",
        log_s,
        "create",
        "--bundle",
        bundle.dir.to_str().unwrap(),
        &id2,
    ])
    .fails();
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let line = last_json_line(&log);
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("config.json"),
        "{line}"
    );
    env.assert_nothing_left(&id2);
}

#[test]
fn text_log_format_is_logrus_shaped() {
    let Some(env) = TestEnv::new() else { return };
    let log = env.dir().join("log.txt");
    let out = env.runtime(&[
        "--log",
        log.to_str().unwrap(),
        "state",
        "berth-test-missing",
    ]);
    out.fails();
    let text = fs::read_to_string(&log).unwrap();
    let line = text.lines().last().unwrap();
    assert!(line.starts_with("time=\""), "{line}");
    assert!(line.contains("level=error"), "{line}");
    assert!(
        line.contains("msg=\"") && line.contains("berth-test-missing"),
        "{line}"
    );
}

/// What this runtime or host cannot do is refused by name, and `features` says the same.
#[test]
fn intel_rdt_and_net_devices_are_refused_naming_the_field() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["intelRdt"] = json!({"closID": "berth-test", "l3CacheSchema": "L3:0=f"});
    let has_resctrl = fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.trim_end().ends_with("resctrl"));
    let why = if has_resctrl {
        "not supported"
    } else {
        "no resctrl"
    };
    create_fails(&env, &bundle, &["linux.intelRdt", why]);

    let mut bundle = env.bundle();
    bundle.linux()["netDevices"] = json!({"berth-test-nic": {"name": "eth1"}});
    create_fails(
        &env,
        &bundle,
        &["linux.netDevices.berth-test-nic", "not supported"],
    );

    let out = env.runtime(&["features"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["linux"]["intelRdt"]["enabled"], false, "{v}");
    assert_eq!(v["linux"]["netDevices"]["enabled"], false, "{v}");
}
