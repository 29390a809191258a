//! The image's Volumes (config.Volumes) as podman 4.3 and docker treat them: an anonymous
//! volume for each at run, filled from the image at first start (copy-up), shown in
//! inspect's Mounts, replaced by a mount of the flags on the same path, removed by `rm -v`
//! and `--rm`, kept by a plain `rm`.

mod support_containers;

use std::process::Command;

use support_containers::{Env, can_run, text};

/// Imports the busybox rootfs plus /data/seed.txt and an empty /empty, with
/// `VOLUME ["/data", "/empty", "/new"]`.
fn import_with_volumes(env: &Env) {
    let tree = env.dir.path().join("vroot");
    let out = Command::new("cp")
        .arg("-a")
        .arg(&env.rootfs)
        .arg(&tree)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp: {}", text(&out.stderr));
    std::fs::create_dir_all(tree.join("data/sub")).unwrap();
    std::fs::create_dir_all(tree.join("empty")).unwrap();
    std::fs::write(tree.join("data/seed.txt"), "seed\n").unwrap();
    std::fs::write(tree.join("data/sub/deep"), "deep\n").unwrap();
    let tar = env.dir.path().join("vroot.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    env.ok(&[
        "import",
        "--change",
        r#"VOLUME ["/data", "/empty", "/new"]"#,
        tar.to_str().unwrap(),
        "vol",
    ]);
}

fn volume_count(env: &Env) -> usize {
    env.ok(&["volume", "ls", "-q"]).lines().count()
}

#[test]
fn image_volumes_become_anonymous_volumes() {
    if !can_run("image volumes", &["tar", "cp"]) {
        return;
    }
    let env = Env::new();
    import_with_volumes(&env);
    // podman: each path is its own mount, the image's files copied in.
    let out = env.ok(&[
        "run",
        "--name",
        "v1",
        "vol",
        "sh",
        "-c",
        "cat /data/seed.txt /data/sub/deep; ls -A /empty /new; grep -cE ' /(data|empty|new) ' /proc/mounts; echo written > /data/w",
    ]);
    assert_eq!(out, "seed\ndeep\n/empty:\n\n/new:\n3\n");
    assert_eq!(volume_count(&env), 3);
    // inspect's Mounts: docker's shape for a volume.
    let mounts: serde_json::Value =
        serde_json::from_str(&env.inspect("v1", "{{json .Mounts}}")).unwrap();
    let mounts = mounts.as_array().unwrap();
    let mut dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["Destination"].as_str().unwrap())
        .collect();
    dests.sort();
    assert_eq!(dests, ["/data", "/empty", "/new"]);
    let data = mounts.iter().find(|m| m["Destination"] == "/data").unwrap();
    assert_eq!(data["Type"], "volume");
    assert_eq!(data["Driver"], "local");
    let name = data["Name"].as_str().unwrap();
    let source = data["Source"].as_str().unwrap();
    assert_eq!(
        source,
        env.root
            .join("volumes")
            .join(name)
            .join("_data")
            .to_str()
            .unwrap()
    );
    // What the container wrote is in the volume, on the host.
    assert_eq!(
        std::fs::read_to_string(format!("{source}/w")).unwrap(),
        "written\n"
    );
    // A restart keeps the volume's contents (copy-up happens only into an empty volume).
    env.ok(&["start", "-a", "v1"]);
    assert_eq!(
        std::fs::read_to_string(format!("{source}/w")).unwrap(),
        "written\n"
    );
    // A mount of the flags on the same path replaces the image's volume.
    let host = env.dir.path().join("host-data");
    std::fs::create_dir(&host).unwrap();
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/data/", host.display()),
        "vol",
        "sh",
        "-c",
        "ls -A /data; grep -cE ' /(data|empty|new) ' /proc/mounts",
    ]);
    assert_eq!(out, "3\n");
    // --rm took its two anonymous volumes with it.
    assert_eq!(volume_count(&env), 3);
    // rm -v removes the container's anonymous volumes; a plain rm keeps them (docker).
    env.ok(&["rm", "-v", "v1"]);
    assert_eq!(volume_count(&env), 0);
    let id = env
        .ok(&["run", "-d", "vol", "sleep", "30"])
        .trim()
        .to_string();
    assert_eq!(volume_count(&env), 3);
    env.ok(&["rm", "-f", &id]);
    env.assert_gone(&id);
    assert_eq!(volume_count(&env), 3);
    env.ok(&["volume", "prune", "-f"]);
    assert_eq!(volume_count(&env), 0);
}
