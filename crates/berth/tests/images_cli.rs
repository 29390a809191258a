//! The image commands through the real binary, on a temporary --root: the seed's workflow
//! (a busybox rootfs tarball imported), the images table, tag, rmi, inspect, history,
//! prune, and bad input (exit 125, a message naming it, nothing stored).

mod support_images;

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;
use support_images::{Berth, busybox_available, from_output, root_or_skip};

fn ready() -> bool {
    root_or_skip("importing a rootfs keeps its owners") && busybox_available()
}

fn id_line(out: &str) -> String {
    let id = out.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out:?}");
    id
}

#[test]
fn the_seed_workflow_imports_a_rootfs_tarball() {
    if !ready() {
        return;
    }
    let berth = Berth::new();
    let tar = berth.busybox_tar();
    let id = id_line(&berth.ok(&["import", tar.to_str().unwrap(), "busybox"]));

    let table = berth.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    let header: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    assert!(
        lines[1].starts_with("localhost/busybox   latest"),
        "{table}"
    );
    assert!(lines[1].contains(&id[7..19]), "{table}");
    assert!(
        lines[1].contains("ago") && lines[1].ends_with(" MB"),
        "{table}"
    );

    let inspect: Value = serde_json::from_str(&berth.ok(&["image", "inspect", "busybox"])).unwrap();
    let image = &inspect[0];
    assert_eq!(image["Id"], id.as_str());
    assert_eq!(image["RepoTags"][0], "localhost/busybox:latest");
    assert_eq!(image["RootFS"]["Type"], "layers");
    assert_eq!(image["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(image["Os"], "linux");
    assert_eq!(image["Comment"], "imported from tarball");
    assert!(image["Size"].as_u64().unwrap() > 1_000_000);

    // The layer has the rootfs as it was, owners included.
    let layer = berth
        .root()
        .join("layers")
        .join(
            image["RootFS"]["Layers"][0]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        )
        .join("diff");
    assert!(layer.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(layer.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(layer.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );

    // By id, by prefix, by full name.
    for name in [&id[..], &id[7..19], "localhost/busybox:latest"] {
        assert_eq!(
            berth
                .ok(&["image", "inspect", "--format", "{{.Id}}", name])
                .trim(),
            id
        );
    }
}

#[test]
fn import_reads_directories_stdin_compression_and_changes() {
    if !ready() {
        return;
    }
    let berth = Berth::new();
    let dir = berth.busybox_dir();
    let id = id_line(&berth.ok(&[
        "import",
        "--change",
        "CMD=echo hi",
        "-c",
        r#"ENTRYPOINT ["/bin/sh","-c"]"#,
        "-c",
        "ENV=A=1",
        "-c",
        "WORKDIR=/tmp",
        "-c",
        "EXPOSE=80",
        "-c",
        "LABEL=a=b",
        "-m",
        "my message",
        dir.to_str().unwrap(),
        "quay.io/me/box:1",
    ]));
    let config: Value =
        serde_json::from_str(&berth.ok(&["image", "inspect", "--format", "{{json .Config}}", &id]))
            .unwrap();
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(config["Env"], serde_json::json!(["A=1"]));
    assert_eq!(config["WorkingDir"], "/tmp");
    assert_eq!(config["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
    assert_eq!(config["Labels"], serde_json::json!({"a": "b"}));
    let history = berth.ok(&["image", "history", "quay.io/me/box:1"]);
    assert!(
        history.starts_with("IMAGE ") && history.contains("my message"),
        "{history}"
    );

    // A gzip tarball on stdin, no name: untagged.
    let tar = berth.busybox_tar();
    let gz = std::process::Command::new("gzip")
        .arg("-c")
        .arg(&tar)
        .output()
        .unwrap()
        .stdout;
    let mut child = berth
        .command(&["import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&gz).unwrap();
    let run = from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let untagged = id_line(&run.stdout);
    let table = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(
        table.contains(&format!("<none>:<none> {}", &untagged[7..19])),
        "{table}"
    );
    assert!(table.contains("quay.io/me/box:1"), "{table}");
}

#[test]
fn tag_list_and_remove() {
    if !ready() {
        return;
    }
    let berth = Berth::new();
    let tar = berth.busybox_tar();
    let id = id_line(&berth.ok(&["import", tar.to_str().unwrap(), "busybox"]));
    berth.ok(&[
        "tag",
        "busybox",
        "mine:v1",
        "registry.example:5000/team/box",
    ]);
    let names = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "localhost/busybox:latest",
            "localhost/mine:v1",
            "registry.example:5000/team/box:latest"
        ]
    );
    assert_eq!(
        berth.ok(&["images", "-q"]).trim(),
        &id[7..19],
        "one id per image"
    );
    assert_eq!(berth.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    let filtered = berth.ok(&[
        "images",
        "--filter",
        "reference=mine",
        "--format",
        "{{.Tag}}",
    ]);
    assert_eq!(filtered.trim(), "v1");
    let digests = berth.ok(&["images", "--digests"]);
    assert!(
        digests.lines().next().unwrap().contains("DIGEST") && digests.contains("sha256:"),
        "{digests}"
    );
    let json: Value = serde_json::from_str(&berth.ok(&["images", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["Id"], &id[7..]);

    // A name of several only untags; the last name removes the image.
    assert_eq!(
        berth.ok(&["rmi", "mine:v1"]),
        "Untagged: localhost/mine:v1\n"
    );
    assert_eq!(
        berth.ok(&["image", "rm", "registry.example:5000/team/box"]),
        "Untagged: registry.example:5000/team/box:latest\n"
    );
    let out = berth.ok(&["rmi", "busybox"]);
    assert_eq!(
        out,
        format!(
            "Untagged: localhost/busybox:latest\nDeleted: {}\n",
            &id[7..]
        )
    );
    assert_eq!(berth.ok(&["images", "-q"]), "");
    let blobs = std::fs::read_dir(berth.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0, "blobs collected");
}

#[test]
fn prune_removes_dangling_images() {
    if !ready() {
        return;
    }
    let berth = Berth::new();
    let tar = berth.busybox_tar();
    let dangling = id_line(&berth.ok(&["import", tar.to_str().unwrap()]));
    berth.ok(&["import", "-c", "CMD=sh", tar.to_str().unwrap(), "kept"]);
    assert_eq!(berth.ok(&["image", "prune", "-f"]).trim(), &dangling[7..]);
    assert_eq!(
        berth.ok(&["images", "--format", "{{.Repository}}"]).trim(),
        "localhost/kept"
    );
    berth.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(berth.ok(&["images", "-q"]), "");
}

#[test]
fn bad_input_is_named_and_stores_nothing() {
    let berth = Berth::new();
    let garbage = berth.dir.path().join("garbage.tar");
    std::fs::write(&garbage, vec![b'x'; 3000]).unwrap();
    let garbage = garbage.to_str().unwrap().to_string();
    let missing = berth.dir.path().join("missing.tar");
    let missing = missing.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["rmi", "nothere"], "nothere"),
        (vec!["image", "inspect", "nothere:1"], "nothere:1"),
        (vec!["image", "history", "nothere"], "nothere"),
        (vec!["tag", "nothere", "x"], "nothere"),
        (vec!["import", &missing, "x"], &missing),
        (vec!["import", &garbage, "x"], &garbage),
        (vec!["import", "-c", "ONBUILD=x", &garbage], "ONBUILD"),
        (vec!["import", &garbage, "Bad Name"], "Bad Name"),
        (vec!["images", "--filter", "color=red"], "color=red"),
        (vec!["images", "--format", "{{.ID"], "{{.ID"),
    ];
    for (args, named) in cases {
        let run = berth.run(&args);
        assert_eq!(run.code, 125, "berth {args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("Error: ") && run.stderr.contains(named),
            "berth {args:?}: {}",
            run.stderr
        );
    }
    if berth.root().exists() {
        assert_eq!(
            std::fs::read_dir(berth.root().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(berth.root().join("tmp")).unwrap().count(),
            0
        );
    }
    assert_eq!(berth.ok(&["images", "-q"]), "");
}

#[test]
fn rmi_refuses_an_image_a_container_uses_unless_forced() {
    if !ready() {
        return;
    }
    let berth = Berth::new();
    let tar = berth.busybox_tar();
    let id = id_line(&berth.ok(&["import", tar.to_str().unwrap(), "busybox"]));
    let container = berth.ok(&["create", "--name", "user", "busybox", "true"]);
    let container = container.trim();
    let run = berth.run(&["rmi", "busybox"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains(container) && run.stderr.contains(&id[7..19]),
        "{}",
        run.stderr
    );
    // Forced: the name goes, the image stays for the container until it is removed.
    assert_eq!(
        berth.ok(&["rmi", "-f", "busybox"]),
        "Untagged: localhost/busybox:latest\n"
    );
    assert_eq!(
        berth
            .ok(&["images", "--format", "{{.Repository}} {{.ID}}"])
            .trim(),
        format!("<none> {}", &id[7..19])
    );
    berth.ok(&["rm", "user"]);
    assert_eq!(berth.ok(&["image", "prune", "-f"]).trim(), &id[7..]);
    assert_eq!(berth.ok(&["images", "-q"]), "");
}

/// A full disk mid-import: exit 125, an error that says so and names the file, and nothing
/// half-stored (no blob, no layer, no image, an empty tmp/). The store is a 6 MiB tmpfs (room
/// for busybox's layer and blob, ~2 MiB each), the tarball holds 8 MiB more.
#[test]
fn a_full_disk_fails_the_import_and_stores_nothing() {
    if !ready() {
        return;
    }
    let berth = Berth::new();
    let rootfs = berth.busybox_dir();
    std::fs::write(rootfs.join("filler"), vec![7u8; 8 << 20]).unwrap();
    let tar = berth.busybox_tar();
    let root = berth.root();
    std::fs::create_dir_all(&root).unwrap();
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=6m",
            "berth-test-full",
            root.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a small tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(root.clone());

    let run = berth.run(&["import", tar.to_str().unwrap(), "full"]);
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("Error: ")
            && run.stderr.contains("No space left on device")
            && run.stderr.contains("the store's disk is full")
            && run.stderr.contains("rootfs.tar"),
        "{}",
        run.stderr
    );
    let count = |dir: &str| {
        std::fs::read_dir(root.join(dir))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(count("blobs/sha256"), 0, "no blob");
    assert_eq!(count("tmp"), 0, "nothing left in tmp/");
    let layers: Vec<_> = std::fs::read_dir(root.join("layers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.len() == 64)
                .collect()
        })
        .unwrap_or_default();
    assert!(layers.is_empty(), "no layer: {layers:?}");
    assert_eq!(berth.ok(&["images", "-q"]), "");
    // with room again (the filler gone) the same store takes the image
    std::fs::remove_file(rootfs.join("filler")).unwrap();
    let tar = berth.busybox_tar();
    id_line(&berth.ok(&["import", tar.to_str().unwrap(), "full"]));
}
