//! Rootless: berth-runtime run by an unprivileged user, on `spec --rootless`'s config (its
//! own uid mapped to root, no cgroup on this cgroup v1 host), and podman run by that user
//! with `--runtime berth-runtime`. The user is made at test time (useradd) and removed with
//! everything it ran.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::test_user::TestUser;
use common::*;
use serde_json::{Value, json};

/// A bundle of `spec --rootless` with a busybox rootfs, all owned by the user, and a copy
/// of the runtime binary the user may run.
struct RootlessBundle {
    dir: PathBuf,
    runtime: String,
    state: String,
}

impl RootlessBundle {
    fn new(env: &TestEnv, user: &TestUser) -> RootlessBundle {
        let dir = env.new_dir("rootless");
        build_rootfs(&dir.join("rootfs"));
        let runtime = dir.join("berth-runtime");
        fs::copy(BIN, &runtime).unwrap();
        user.give(&dir);
        let b = RootlessBundle {
            runtime: runtime.to_str().unwrap().to_string(),
            state: user.runtime_dir.join("berth").to_str().unwrap().to_string(),
            dir,
        };
        b.as_user(user, &["spec", "--rootless", "--bundle", b.dir()])
            .ok();
        b.edit(|c| {
            c["process"]["terminal"] = json!(false);
            c["process"]["args"] = json!(["sh", "-c", "id -u; cat /proc/self/uid_map"]);
        });
        b
    }

    fn dir(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir.join("config.json");
        let mut config: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut config);
        fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    }

    /// The runtime as the user, with no --root: the per-user default ($XDG_RUNTIME_DIR/berth).
    fn as_user(&self, user: &TestUser, args: &[&str]) -> Out {
        user.run(&self.runtime, args)
    }
}

fn user_or_skip(env: &TestEnv, n: usize) -> Option<TestUser> {
    let user = TestUser::create(env.dir(), n);
    if user.is_none() {
        skip("useradd is missing: rootless tests make a user (Debian package passwd)");
    }
    user
}

#[test]
fn spec_rootless_runs_as_an_unprivileged_user() {
    let Some(env) = TestEnv::new() else { return };
    let Some(user) = user_or_skip(&env, 0) else {
        return;
    };
    let b = RootlessBundle::new(&env, &user);
    let bundle = b.dir();
    let (r1, c1) = (format!("{}-r1", user.name), format!("{}-c1", user.name));

    // run: root inside is the user outside, and only that one id is mapped
    let out = b.as_user(&user, &["run", "--bundle", bundle, &r1]);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &user.uid.to_string(), "1"], "{out}");
    assert!(
        Path::new(&b.state).is_dir(),
        "the state went to $XDG_RUNTIME_DIR/berth"
    );

    // create, start, exec (plain and with a terminal), state, kill, delete
    b.edit(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    // the init keeps create's stdout and stderr: files, not pipes
    let mut create = user.command(&b.runtime, &["create", "--bundle", bundle, &c1]);
    run_to_files(&mut create, &env.io_files(), COMMAND_TIMEOUT).ok();
    b.as_user(&user, &["start", &c1]).ok();
    let state: Value =
        serde_json::from_str(&b.as_user(&user, &["state", &c1]).ok().stdout).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    let pid = state["pid"].as_i64().unwrap() as i32;
    let owner = fs::metadata(format!("/proc/{pid}")).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    assert_eq!(
        owner.unwrap(),
        user.uid,
        "the container runs as the user on the host"
    );
    let out = b.as_user(
        &user,
        &["exec", &c1, "sh", "-c", "id -u; readlink /proc/1/exe"],
    );
    assert_eq!(out.ok().lines(), ["0", "/bin/busybox"], "{out}");
    let out = b.as_user(&user, &["exec", "-t", &c1, "tty"]);
    out.ok().mentions(&["/dev/pts/"]);
    // what needs a cgroup says that there is none, and why
    for args in [&["pause"][..], &["ps"], &["events", "--stats"]] {
        let mut argv = args.to_vec();
        argv.push(&c1);
        b.as_user(&user, &argv)
            .fails()
            .mentions(&["no cgroup", "unprivileged user"]);
    }
    b.as_user(&user, &["kill", &c1, "KILL"]).ok();
    wait_until_stopped(&b, &user, &c1);
    b.as_user(&user, &["delete", &c1]).ok();
    let list = b.as_user(&user, &["list", "-q"]);
    assert_eq!(list.ok().stdout.trim(), "", "{list}");
    assert!(user.processes().is_empty(), "{:?}", user.processes());
    let made = find_cgroups(&[r1, c1]);
    assert!(made.is_empty(), "no cgroup was made: {made:?}");
}

fn wait_until_stopped(b: &RootlessBundle, user: &TestUser, id: &str) {
    for _ in 0..200 {
        let out = b.as_user(user, &["state", id]);
        if out.stdout.contains("\"stopped\"") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{id} did not stop");
}

#[test]
fn rootless_limits_are_refused_and_foreign_ids_too() {
    let Some(env) = TestEnv::new() else { return };
    let Some(user) = user_or_skip(&env, 1) else {
        return;
    };
    let b = RootlessBundle::new(&env, &user);
    let bundle = b.dir();

    // cgroup v1 gives an unprivileged user no cgroup: a limit the user asked for must not
    // silently vanish
    b.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}}));
    let out = b.as_user(&user, &["run", "--bundle", bundle, "m1"]);
    out.fails()
        .mentions(&["linux.resources", "limits need a cgroup"]);
    assert!(
        !Path::new(&b.state).join("m1").exists(),
        "no state left: {out}"
    );

    // a mapping of host ids that are not the user's: newuidmap refuses it
    b.edit(|c| {
        c["linux"]["resources"] = json!({});
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    });
    let out = b.as_user(&user, &["run", "--bundle", bundle, "m2"]);
    out.fails().mentions(&["linux.uidMappings"]);
    assert!(
        !Path::new(&b.state).join("m2").exists(),
        "no state left: {out}"
    );

    // the user's own subordinate range goes through newuidmap/newgidmap
    let (sub_uid, _) = user.subuid;
    let (sub_gid, _) = user.subgid;
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": user.uid, "size": 1},
            {"containerID": 1, "hostID": sub_uid, "size": 1000}]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": user.gid, "size": 1},
            {"containerID": 1, "hostID": sub_gid, "size": 1000}]);
        c["process"]["user"] = json!({"uid": 1000, "gid": 100});
        c["process"]["args"] = json!(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]);
    });
    let out = b.as_user(&user, &["run", "--bundle", bundle, "m3"]);
    let lines = out.ok().lines();
    assert_eq!(lines[..2], ["1000", "100"], "{out}");
    assert!(
        out.stdout.contains(&format!("{sub_uid}")),
        "the subordinate range is mapped: {out}"
    );
    assert!(user.processes().is_empty(), "{:?}", user.processes());
}

/// podman run by the user, with berth-runtime as its OCI runtime: run, exec, logs, rm, and
/// a port published on 127.0.0.1 through slirp4netns.
#[test]
fn podman_run_by_a_user_uses_berth_runtime() {
    let Some(env) = TestEnv::new() else { return };
    if !Path::new("/usr/bin/podman").exists() {
        skip("podman is missing (Debian package podman)");
        return;
    }
    let Some(user) = user_or_skip(&env, 2) else {
        return;
    };
    let b = RootlessBundle::new(&env, &user);
    // podman's own config for the user: this host denies raising hard rlimits
    let conf = user.home.join(".config/containers");
    fs::create_dir_all(&conf).unwrap();
    fs::write(
        conf.join("containers.conf"),
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n",
    )
    .unwrap();
    let tar = env.dir().join("rootfs.tar");
    host(
        "tar",
        &[
            "-C",
            &format!("{}/rootfs", b.dir()),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    )
    .ok();
    user.give(&user.home);
    user.give(&tar);
    let podman = |args: &[&str]| {
        let mut argv = vec!["--runtime", &b.runtime, "--storage-driver", "vfs"];
        argv.extend_from_slice(args);
        user.run("podman", &argv)
    };
    podman(&["import", tar.to_str().unwrap(), "bb"]).ok();

    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    out.ok();
    assert_eq!(out.lines()[0], "0", "{out}");
    assert!(
        out.stdout.contains(&user.subuid.0.to_string()),
        "podman maps the user's subordinate range: {out}"
    );

    podman(&[
        "run",
        "-d",
        "--name",
        "t1",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ])
    .ok();
    let out = podman(&[
        "exec",
        "t1",
        "sh",
        "-c",
        "id -u; echo hi > /tmp/f; cat /tmp/f",
    ]);
    assert_eq!(out.ok().lines(), ["0", "hi"], "{out}");
    podman(&["logs", "t1"]).ok().mentions(&["started"]);
    podman(&["rm", "-f", "-t", "0", "t1"]).ok();

    let tun = fs::metadata("/dev/net/tun").map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o006 == 0o006
    });
    if tun.unwrap_or(false) {
        let port = 20000 + (std::process::id() % 20000) as u16;
        let publish = format!("127.0.0.1:{port}:8080");
        podman(&[
            "run",
            "-d",
            "--name",
            "w1",
            "-p",
            &publish,
            "bb",
            "sh",
            "-c",
            "while true; do echo hello-rootless | nc -l -p 8080; done",
        ])
        .ok();
        let mut answer = String::new();
        for _ in 0..100 {
            let out = host(
                "sh",
                &["-c", &format!("busybox nc 127.0.0.1 {port} </dev/null")],
            );
            if out.stdout.contains("hello-rootless") {
                answer = out.stdout;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        podman(&["rm", "-f", "-t", "0", "w1"]).ok();
        assert!(
            answer.contains("hello-rootless"),
            "the published port answered"
        );
    } else {
        skip("/dev/net/tun is not open to users (Debian's udev makes it 0666; .ci/run does)");
    }
    let left = podman(&["ps", "-aq"]);
    assert_eq!(left.ok().stdout.trim(), "", "{left}");
}
