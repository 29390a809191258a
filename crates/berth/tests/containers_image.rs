//! Containers from an image (`berth import` of a tar of the busybox root filesystem): the
//! image's Cmd, Entrypoint, Env, WorkingDir, User and StopSignal applied as docker applies
//! them, an overlay root filesystem of its own per container, mounted while it runs and gone
//! with it, and the image held while a container uses it.

mod support_containers;

use std::process::Command;

use support_containers::{Env, can_run, text};

fn import(env: &Env, name: &str, changes: &[&str]) {
    let tar = env.dir.path().join("rootfs.tar");
    if !tar.exists() {
        let out = Command::new("tar")
            .arg("-C")
            .arg(&env.rootfs)
            .args(["-cf"])
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
    let tar = tar.to_str().unwrap().to_string();
    args.push(&tar);
    args.push(name);
    env.ok(&args);
}

#[test]
fn the_images_config_applies_like_docker() {
    if !can_run("image_config", &["tar"]) {
        return;
    }
    let env = Env::new();
    import(
        &env,
        "cfg",
        &[
            r#"CMD ["echo", "from", "image"]"#,
            "ENV GREETING=hi",
            "WORKDIR /tmp",
            "USER user",
            "STOPSIGNAL SIGKILL",
        ],
    );
    let out = env.berth(&["run", "--rm", "cfg"]);
    assert_eq!(text(&out.stdout), "from image\n", "{}", text(&out.stderr));
    // A command replaces Cmd; env, workdir and user still apply; flags win over the image.
    let out = env.ok(&[
        "run",
        "--rm",
        "cfg",
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u)",
    ]);
    assert_eq!(out, "hi /tmp 1000\n");
    let out = env.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "-w",
        "/",
        "-e",
        "GREETING=flag",
        "cfg",
        "sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u)",
    ]);
    assert_eq!(out, "flag / 0\n");
    // The image's StopSignal (SIGKILL) stops at once, without the 10 s timeout.
    let id = env
        .ok(&["run", "-d", "cfg", "sleep", "60"])
        .trim()
        .to_string();
    let started = std::time::Instant::now();
    env.ok(&["stop", &id]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        env.inspect(&id, "{{.Config.StopSignal}} {{.State.ExitCode}}"),
        "SIGKILL 137"
    );
    env.ok(&["rm", &id]);
    import(
        &env,
        "ep",
        &[r#"ENTRYPOINT ["echo", "ep"]"#, r#"CMD ["default"]"#],
    );
    assert_eq!(env.ok(&["run", "--rm", "ep"]), "ep default\n");
    assert_eq!(env.ok(&["run", "--rm", "ep", "given"]), "ep given\n");
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "echo", "ep", "other"]),
        "other\n"
    );
    let out = env.berth(&["run", "--rm", "no-such-image"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("no-such-image"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn each_container_gets_its_own_overlay() {
    if !can_run("image_overlay", &["tar"]) {
        return;
    }
    let env = Env::new();
    import(&env, "base", &[]);
    let a = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "a",
            "base",
            "sh",
            "-c",
            "echo a > /mine; sleep 60",
        ])
        .trim()
        .to_string();
    let b = env
        .ok(&["run", "-d", "--name", "b", "base", "sleep", "60"])
        .trim()
        .to_string();
    assert!(env.eventually(std::time::Duration::from_secs(5), || {
        env.berth(&["exec", "a", "test", "-e", "/mine"])
            .status
            .success()
    }));
    assert!(
        !env.berth(&["exec", "b", "test", "-e", "/mine"])
            .status
            .success()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounts.contains(&format!("{a}/rootfs")),
        "the rootfs of a is mounted while it runs"
    );
    // The image is held: removing it is refused while containers use it.
    let out = env.berth(&["rmi", "base"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stdout));
    env.ok(&["stop", "-t", "0", "a"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("{a}/rootfs")),
        "unmounted when it exits"
    );
    // Its changes survive a restart.
    env.ok(&["start", "a"]);
    assert!(env.berth(&["exec", "a", "cat", "/mine"]).status.success());
    env.ok(&["rm", "-f", "a", "b"]);
    env.assert_gone(&a);
    env.assert_gone(&b);
    env.ok(&["rmi", "base"]);
}

/// The overlay line of the container's root in its own mountinfo.
fn root_mount_line(mountinfo: &str) -> String {
    mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/") && l.contains(" - overlay "))
        .unwrap_or_else(|| panic!("no overlay root in {mountinfo}"))
        .to_string()
}

#[test]
fn rm_containers_mount_volatile_and_survive_a_crashed_volatile_mount() {
    if !can_run("image_volatile", &["tar"]) {
        return;
    }
    let env = Env::new();
    import(&env, "base", &[]);
    // --rm: overlay's volatile (no sync of the upper at unmount); a kept container: not.
    let rm = env.ok(&["run", "--rm", "base", "cat", "/proc/self/mountinfo"]);
    assert!(root_mount_line(&rm).contains("volatile"), "{rm}");
    let kept = env.ok(&[
        "run",
        "--name",
        "kept",
        "base",
        "cat",
        "/proc/self/mountinfo",
    ]);
    assert!(!root_mount_line(&kept).contains("volatile"), "{kept}");
    env.ok(&["rm", "kept"]);

    // What a crash during a volatile mount leaves: the kernel's marker in the work dir (it
    // refuses to mount while it is there) and an upper that may have lost writes. The next
    // mount drops the changes and mounts.
    let id = env
        .ok(&[
            "create",
            "--rm",
            "base",
            "sh",
            "-c",
            "ls /stale 2>&1; echo ran",
        ])
        .trim()
        .to_string();
    let dir = env.root.join("containers").join(&id);
    std::fs::create_dir_all(dir.join("work/work/incompat/volatile")).unwrap();
    std::fs::create_dir_all(dir.join("upper")).unwrap();
    std::fs::write(dir.join("upper/stale"), "half-written").unwrap();
    let out = env.berth(&["start", "-a", &id]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ran") && stdout.contains("No such file"),
        "stdout {stdout} stderr {}",
        text(&out.stderr)
    );
    assert!(
        env.eventually(std::time::Duration::from_secs(10), || !dir.exists()),
        "--rm removed it"
    );
    env.assert_gone(&id);
    env.ok(&["rmi", "base"]);
}
