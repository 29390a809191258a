//! The container's root filesystem: mounts (order, bind, rbind, read-only, tmpfs options,
//! propagation), single-file binds, created destinations, a read-only root, masked and
//! read-only paths, /dev (default nodes and symlinks, linux.devices), --no-pivot and
//! rootfsPropagation.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

/// Runs `mount ARGS` on the host (setup of sources; cleanup unmounts everything under the
/// test's directory).
fn host_mount(args: &[&str]) {
    host("mount", args).ok();
}

fn mountinfo_of(out: &Out) -> Vec<MountInfo> {
    parse_mountinfo(&out.stdout)
}

/// The last mount at `point` (the one on top).
fn mount_at<'a>(mounts: &'a [MountInfo], point: &str) -> &'a MountInfo {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == point)
        .unwrap_or_else(|| panic!("nothing mounted at {point}: {mounts:#?}"))
}

#[test]
fn mounts_are_made_in_config_order() {
    let Some(env) = TestEnv::new() else { return };
    let src = env.new_dir("src");
    fs::write(src.join("hello"), "hello from the host\n").unwrap();
    let file = env.dir().join("single-file");
    fs::write(&file, "single file\n").unwrap();
    let mut bundle = env.bundle();
    // A relative bind source is relative to the bundle.
    fs::create_dir(bundle.dir.join("in-bundle")).unwrap();
    fs::write(bundle.dir.join("in-bundle/note"), "bundle-relative\n").unwrap();
    bundle
        .mount(json!({"destination": "/a", "type": "tmpfs", "source": "tmpfs"}))
        .mount(
            json!({"destination": "/a/b", "type": "bind", "source": src.to_str().unwrap(),
                      "options": ["bind"]}),
        )
        .mount(json!({"destination": "/c", "type": "tmpfs", "source": "tmpfs"}))
        .mount(json!({"destination": "/etc/single-file", "type": "none",
                      "source": file.to_str().unwrap(), "options": ["bind", "ro"]}))
        .mount(json!({"destination": "/deep/new/dir", "type": "tmpfs", "source": "tmpfs"}))
        .mount(json!({"destination": "/rel", "type": "bind", "source": "in-bundle",
                      "options": ["rbind"]}))
        .sh(
            "cat /a/b/hello /etc/single-file; test -d /deep/new/dir && echo created; cat /rel/note; \
             echo ---; cat /proc/self/mountinfo",
        );
    assert!(!bundle.rootfs.join("a").exists() && !bundle.rootfs.join("deep").exists());
    let out = env.run(&bundle);
    out.ok();
    let (files, mountinfo) = out.stdout.split_once("---\n").unwrap();
    assert_eq!(
        files, "hello from the host\nsingle file\ncreated\nbundle-relative\n",
        "{out}"
    );
    let mounts = parse_mountinfo(mountinfo);
    let position = |point: &str| {
        mounts
            .iter()
            .position(|m| m.mount_point == point)
            .unwrap_or_else(|| panic!("{point} not mounted:\n{mountinfo}"))
    };
    let order: Vec<usize> = ["/a", "/a/b", "/c", "/etc/single-file", "/deep/new/dir"]
        .iter()
        .map(|p| position(p))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "mounts not in config order:\n{mountinfo}");
    // /a/b sits on the tmpfs at /a.
    let a = mount_at(&mounts, "/a");
    assert_eq!(mount_at(&mounts, "/a/b").parent, a.id);
    // The single file is a read-only bind.
    let single = mount_at(&mounts, "/etc/single-file");
    assert!(single.options.split(',').any(|o| o == "ro"), "{single:?}");
}

#[test]
fn bind_rbind_and_read_only_binds() {
    let Some(env) = TestEnv::new() else { return };
    let src = env.new_dir("src");
    fs::write(src.join("top"), "top\n").unwrap();
    fs::create_dir(src.join("sub")).unwrap();
    host_mount(&["-t", "tmpfs", "tmpfs", src.join("sub").to_str().unwrap()]);
    fs::write(src.join("sub/inner"), "inner\n").unwrap();
    let s = src.to_str().unwrap();
    let mut bundle = env.bundle();
    bundle
        .mount(json!({"destination": "/nb", "type": "bind", "source": s, "options": ["bind"]}))
        .mount(json!({"destination": "/rb", "type": "bind", "source": s, "options": ["rbind"]}))
        .mount(
            json!({"destination": "/ro", "type": "bind", "source": s, "options": ["bind", "ro"]}),
        )
        .mount(
            json!({"destination": "/rw", "type": "bind", "source": s, "options": ["bind", "rw"]}),
        )
        .mount(json!({"destination": "/rro", "type": "bind", "source": s,
                      "options": ["rbind", "rro"]}))
        .sh("ls -A /nb/sub | wc -l; cat /rb/sub/inner; \
             touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused; \
             touch /rw/made-inside && echo rw-ok; \
             touch /rro/sub/y 2>/dev/null && echo rro-sub-writable || echo rro-sub-refused; \
             cat /rro/top");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(
        out.lines(),
        [
            "0",
            "inner",
            "ro-refused",
            "rw-ok",
            "rro-sub-refused",
            "top"
        ],
        "{out}"
    );
    assert!(src.join("made-inside").exists());
    assert!(!src.join("x").exists());
}

#[test]
fn tmpfs_options_are_applied() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle
        .mount(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}))
        .sh("stat -c %a /t; cp /bin/busybox /t/bb; /t/bb true 2>/dev/null && echo exec-ok || echo exec-refused; \
             echo ---; cat /proc/self/mountinfo");
    let out = env.run(&bundle);
    out.ok();
    let (head, mountinfo) = out.stdout.split_once("---\n").unwrap();
    assert_eq!(head, "700\nexec-refused\n", "{out}");
    let mounts = parse_mountinfo(mountinfo);
    let t = mount_at(&mounts, "/t");
    assert_eq!(t.fstype, "tmpfs");
    let options: Vec<&str> = t.options.split(',').collect();
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(options.contains(&o), "{o} missing: {t:?}");
    }
    let super_options: Vec<&str> = t.super_options.split(',').collect();
    assert!(super_options.contains(&"size=1024k"), "{t:?}");
    assert!(super_options.contains(&"mode=700"), "{t:?}");
}

#[test]
fn propagation_options_of_mounts() {
    let Some(env) = TestEnv::new() else { return };
    // A shared mount on the host, bound into the container four ways.
    let src = env.new_dir("shared-src");
    host_mount(&["-t", "tmpfs", "tmpfs", src.to_str().unwrap()]);
    host_mount(&["--make-shared", src.to_str().unwrap()]);
    let s = src.to_str().unwrap();
    let mut bundle = env.bundle();
    bundle
        .mount(json!({"destination": "/slave", "type": "bind", "source": s,
                      "options": ["rbind", "rslave"]}))
        .mount(
            json!({"destination": "/private", "type": "bind", "source": s,
                      "options": ["rbind", "rprivate"]}),
        )
        .mount(
            json!({"destination": "/unbindable", "type": "bind", "source": s,
                      "options": ["rbind", "runbindable"]}),
        )
        .sh("cat /proc/self/mountinfo; echo ready; exec sleep 100");
    let c = env.create_started(&bundle);
    c.wait_output("ready", STATUS_TIMEOUT);
    let mounts = parse_mountinfo(&c.stdout());
    let tags = |point: &str| -> Vec<String> {
        mount_at(&mounts, point)
            .optional
            .iter()
            .map(|t| t.split(':').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        tags("/slave"),
        ["master"],
        "{:#?}",
        mount_at(&mounts, "/slave")
    );
    assert!(
        tags("/private").is_empty(),
        "{:#?}",
        mount_at(&mounts, "/private")
    );
    assert_eq!(tags("/unbindable"), ["unbindable"]);

    // A mount made on the host now reaches the slave, not the private one.
    fs::create_dir(src.join("late")).unwrap();
    host_mount(&["-t", "tmpfs", "tmpfs", src.join("late").to_str().unwrap()]);
    fs::write(src.join("late/marker"), "x").unwrap();
    let pid = c.pid();
    let root = format!("/proc/{pid}/root");
    assert!(
        Path::new(&format!("{root}/slave/late/marker")).exists(),
        "the host's new mount did not propagate to the rslave mount"
    );
    assert!(
        !Path::new(&format!("{root}/private/late/marker")).exists(),
        "the host's new mount propagated to the rprivate mount"
    );
    c.kill("KILL").ok();
    c.wait_stopped();
}

#[test]
fn shared_mount_option_stays_shared() {
    let Some(env) = TestEnv::new() else { return };
    let src = env.new_dir("shared-src");
    host_mount(&["-t", "tmpfs", "tmpfs", src.to_str().unwrap()]);
    host_mount(&["--make-shared", src.to_str().unwrap()]);
    let s = src.to_str().unwrap();
    let mut bundle = env.bundle();
    bundle
        .mount(
            json!({"destination": "/shared", "type": "bind", "source": s,
                      "options": ["rbind", "rshared"]}),
        )
        .mount(
            json!({"destination": "/shared-too", "type": "bind", "source": s,
                      "options": ["bind", "shared"]}),
        )
        .sh("cat /proc/self/mountinfo");
    let out = env.run(&bundle);
    out.ok();
    let mounts = mountinfo_of(&out);
    for point in ["/shared", "/shared-too"] {
        let m = mount_at(&mounts, point);
        assert!(
            m.optional.iter().any(|t| t.starts_with("shared:")),
            "{point} is not shared: {m:#?}"
        );
    }
}

#[test]
fn read_only_root() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.config["root"]["readonly"] = json!(true);
    bundle
        .mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}))
        .sh(
            "touch /x 2>/dev/null && echo root-writable || echo root-refused; \
             touch /tmp/y && echo tmp-ok; echo ---; cat /proc/self/mountinfo",
        );
    let out = env.run(&bundle);
    out.ok();
    let (head, mountinfo) = out.stdout.split_once("---\n").unwrap();
    assert_eq!(head, "root-refused\ntmp-ok\n", "{out}");
    let root = mount_at(&parse_mountinfo(mountinfo), "/").clone();
    assert!(root.options.split(',').any(|o| o == "ro"), "{root:?}");
    assert!(!bundle.rootfs.join("x").exists());

    // The same config with a writable root can write.
    bundle.config["root"]["readonly"] = json!(false);
    let out = env.run(&bundle);
    out.ok();
    assert!(out.stdout.starts_with("root-writable\n"), "{out}");
}

#[test]
fn masked_paths_are_empty() {
    let Some(env) = TestEnv::new() else { return };
    // What the defaults mask has content on the host.
    assert!(!fs::read_to_string("/proc/timer_list").unwrap().is_empty());
    assert!(fs::read_dir("/sys/firmware").unwrap().next().is_some());
    let mut bundle = env.bundle();
    fs::create_dir(bundle.rootfs.join("secret-dir")).unwrap();
    fs::write(bundle.rootfs.join("secret-dir/key"), "k").unwrap();
    fs::write(bundle.rootfs.join("secret-file"), "secret").unwrap();
    let masked = bundle.linux()["maskedPaths"].as_array_mut().unwrap();
    masked.push(json!("/secret-dir"));
    masked.push(json!("/secret-file"));
    masked.push(json!("/does/not/exist"));
    bundle.linux()["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/does/not/exist/either"));
    bundle.sh(
        "wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; ls -A /secret-dir | wc -l; \
         wc -c < /secret-file; touch /secret-dir/new 2>/dev/null && echo dir-writable || echo dir-refused",
    );
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), ["0", "0", "0", "0", "dir-refused"], "{out}");
    // Unmasked, the same reads find content.
    bundle.linux()["maskedPaths"] = json!([]);
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    assert_ne!(lines[0], "0", "{out}");
    assert_ne!(lines[1], "0", "{out}");
    assert_eq!(lines[2], "1", "{out}");
    assert_eq!(lines[3], "6", "{out}");
}

#[test]
fn readonly_paths_reject_writes() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    fs::create_dir(bundle.rootfs.join("rodir")).unwrap();
    fs::create_dir(bundle.rootfs.join("rwdir")).unwrap();
    bundle.linux()["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/rodir"));
    // tcp_keepalive_time belongs to the network namespace and needs no capability. The
    // value written is one the host does not have.
    let host_keepalive = read_trimmed("/proc/sys/net/ipv4/tcp_keepalive_time");
    let keepalive = other_than(&host_keepalive, &["600", "601"]);
    let script = format!(
        "echo {keepalive} > /proc/sys/net/ipv4/tcp_keepalive_time 2>/dev/null && echo sys-writable || echo sys-refused; \
         touch /rodir/x 2>/dev/null && echo rodir-writable || echo rodir-refused; \
         touch /rwdir/x && echo rwdir-ok"
    );
    bundle.sh(&script);
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(
        out.lines(),
        ["sys-refused", "rodir-refused", "rwdir-ok"],
        "{out}"
    );
    // Without readonlyPaths root may write its network namespace's sysctls.
    bundle.linux()["readonlyPaths"] = json!([]);
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(
        out.lines(),
        ["sys-writable", "rodir-writable", "rwdir-ok"],
        "{out}"
    );
    assert_eq!(
        read_trimmed("/proc/sys/net/ipv4/tcp_keepalive_time"),
        host_keepalive
    );
}

#[test]
fn default_devices_and_symlinks() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.run_sh(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo \"$l -> $(readlink /dev/$l)\"; done; \
         head -c 16 /dev/urandom | wc -c; head -c 4 /dev/zero | wc -c; echo discard > /dev/null && echo null-ok",
    );
    out.ok();
    assert_eq!(
        out.lines(),
        [
            "/dev/null character special file 1:3 666",
            "/dev/zero character special file 1:5 666",
            "/dev/full character special file 1:7 666",
            "/dev/random character special file 1:8 666",
            "/dev/urandom character special file 1:9 666",
            "/dev/tty character special file 5:0 666",
            "fd -> /proc/self/fd",
            "stdin -> /proc/self/fd/0",
            "stdout -> /proc/self/fd/1",
            "stderr -> /proc/self/fd/2",
            "ptmx -> pts/ptmx",
            "16",
            "4",
            "null-ok",
        ],
        "{out}"
    );
}

#[test]
fn linux_devices_are_created_with_mode_and_owner() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["devices"] = json!([
        {"path": "/dev/mychar", "type": "c", "major": 1, "minor": 9,
         "fileMode": 0o644, "uid": 1000, "gid": 100},
        {"path": "/dev/sub/myblk", "type": "b", "major": 7, "minor": 0,
         "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620, "uid": 0, "gid": 100}
    ]);
    bundle.sh(
        "for d in mychar sub/myblk myfifo; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; done; \
         head -c 8 /dev/mychar | wc -c",
    );
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(
        out.lines(),
        [
            "/dev/mychar character special file 1:9 644 1000:100",
            "/dev/sub/myblk block special file 7:0 600 0:0",
            "/dev/myfifo fifo 0:0 620 0:100",
            "8",
        ],
        "{out}"
    );
}

#[test]
fn no_pivot_runs_the_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("ls /bin/busybox; test -e /work && echo host-visible; hostname; echo $$");
    let out = env.run_with(&bundle, &["--no-pivot"], COMMAND_TIMEOUT);
    out.ok();
    assert_eq!(out.lines(), ["/bin/busybox", "berth", "1"], "{out}");
    // And through create/start.
    let (out, c) = env.try_create(&bundle, &["--no-pivot"]);
    out.ok();
    c.start().ok();
    c.wait_stopped();
    assert_eq!(c.stdout(), "/bin/busybox\nberth\n1\n");
}

#[test]
fn the_bundle_itself_as_rootfs() {
    let Some(env) = TestEnv::new() else { return };
    // runtime-tools' layout: root.path "." and config.json inside the root filesystem.
    let mut bundle = env.bundle();
    build_rootfs(&bundle.dir);
    bundle.config["root"]["path"] = json!(".");
    bundle.sh("head -c 1 /config.json; echo; ls -d /rootfs");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), ["{", "/rootfs"], "{out}");
}

#[test]
fn rootfs_propagation_values() {
    let Some(env) = TestEnv::new() else { return };
    for (value, want) in [
        ("private", None),
        ("rprivate", None),
        ("slave", None),
        ("rslave", None),
        ("shared", Some("shared")),
        ("rshared", Some("shared")),
        ("unbindable", Some("unbindable")),
        ("runbindable", Some("unbindable")),
    ] {
        let mut bundle = env.bundle();
        bundle.linux()["rootfsPropagation"] = json!(value);
        bundle.sh("cat /proc/self/mountinfo");
        let out = env.run(&bundle);
        assert!(out.success(), "rootfsPropagation {value}: {out}");
        let mounts = mountinfo_of(&out);
        let root = mount_at(&mounts, "/");
        let tags: Vec<&str> = root
            .optional
            .iter()
            .map(|t| t.split(':').next().unwrap())
            .collect();
        match want {
            Some(tag) => assert!(tags.contains(&tag), "{value}: / has {tags:?}"),
            // The host's mounts are private here: a slave of nothing is private.
            None => assert!(
                !tags.contains(&"shared") && !tags.contains(&"unbindable"),
                "{value}: / has {tags:?}"
            ),
        }
    }
}

#[test]
fn invalid_rootfs_propagation_fails() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["rootfsPropagation"] = json!("sideways");
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["rootfsPropagation"]);
    env.assert_nothing_left(&c.id);
}
