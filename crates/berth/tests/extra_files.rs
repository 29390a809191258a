//! export, cp (both ways, tar streams, and symlink attacks that must stay inside the
//! container: CVE-2018-15664, CVE-2019-14271), diff and commit, on real containers.

mod support_extra;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use support_extra::{Env, can_run, text};

/// `diff -r --no-dereference A B` is silent.
fn same_tree(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trees differ:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn untar(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn export_is_the_root_filesystem() {
    if !can_run("export") {
        return;
    }
    let env = Env::with_image();
    // Never started: the export mounts the root filesystem for itself and unmounts it.
    env.ok(&["create", "--name", "fresh", "bb", "true"]);
    let archive = env.dir.path().join("fresh.tar");
    env.ok(&["export", "-o", archive.to_str().unwrap(), "fresh"]);
    assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
    let out = env.dir.path().join("fresh");
    untar(&archive, &out);
    same_tree(&env.rootfs, &out);
    let listing = text(
        &Command::new("tar")
            .arg("-tf")
            .arg(&archive)
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        listing.lines().any(|l| l == "bin/busybox"),
        "entries named as docker names them"
    );
    assert!(
        !listing
            .lines()
            .any(|l| l.starts_with('/') || l.starts_with("./"))
    );

    // A container that ran: its changes are in the export (stdout this time).
    env.ok(&[
        "run",
        "--name",
        "changed",
        "bb",
        "sh",
        "-c",
        "echo new > /root/new; rm /etc/group; ln -s / /root/up",
    ]);
    let out = env.cmd(&["export", "changed"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let archive = env.dir.path().join("changed.tar");
    fs::write(&archive, &out.stdout).unwrap();
    let tree = env.dir.path().join("changed");
    untar(&archive, &tree);
    assert_eq!(fs::read_to_string(tree.join("root/new")).unwrap(), "new\n");
    assert!(!tree.join("etc/group").exists());
    assert_eq!(
        fs::read_link(tree.join("root/up")).unwrap(),
        Path::new("/"),
        "symlinks kept byte-exact"
    );
    assert!(env.fails(&["export", "nosuch"], 125).contains("nosuch"));
}

#[test]
fn cp_both_ways_and_tar_streams() {
    if !can_run("cp") {
        return;
    }
    let env = Env::with_image();
    env.ok(&["run", "-d", "--name", "box", "bb", "sleep", "1000"]);
    let host = env.dir.path().join("host");
    fs::create_dir_all(host.join("dir/sub")).unwrap();
    fs::write(host.join("file.txt"), "hello\n").unwrap();
    fs::write(host.join("dir/sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("sub/deep", host.join("dir/link")).unwrap();

    // Into the container: a file to a new name, a file into a dir, a dir, a dir's contents.
    env.ok(&[
        "cp",
        host.join("file.txt").to_str().unwrap(),
        "box:/tmp/renamed",
    ]);
    env.ok(&["cp", host.join("file.txt").to_str().unwrap(), "box:/root"]);
    env.ok(&["cp", host.join("dir").to_str().unwrap(), "box:/tmp/"]);
    env.ok(&[
        "cp",
        &format!("{}/.", host.join("dir").display()),
        "box:/opt",
    ]);
    let cat = |path: &str| env.ok(&["exec", "box", "cat", path]);
    assert_eq!(cat("/tmp/renamed"), "hello\n");
    assert_eq!(cat("/root/file.txt"), "hello\n");
    assert_eq!(cat("/tmp/dir/sub/deep"), "deep\n");
    assert_eq!(cat("/opt/sub/deep"), "deep\n");
    assert_eq!(
        env.ok(&["exec", "box", "readlink", "/tmp/dir/link"]).trim(),
        "sub/deep"
    );
    // docker's default owner inside: root.
    assert_eq!(
        env.ok(&["exec", "box", "stat", "-c", "%u:%g", "/tmp/renamed"])
            .trim(),
        "0:0"
    );

    // Out of the container.
    env.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /data/x && echo inside > /data/x/f",
    ]);
    let back = env.dir.path().join("back");
    env.ok(&["cp", "box:/data", back.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(back.join("x/f")).unwrap(), "inside\n");
    env.ok(&["cp", "box:/data/x/f", back.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(back.join("f")).unwrap(), "inside\n");
    assert!(
        env.fails(&["cp", "box:/nope", back.to_str().unwrap()], 125)
            .contains("box:/nope")
    );
    assert!(
        env.fails(&["cp", "box:/data", back.join("f").to_str().unwrap()], 125)
            .contains("directory to a file")
    );

    // Tar streams: `-` as the destination and as the source.
    let out = env.cmd(&["cp", "box:/data", "-"]).output().unwrap();
    assert!(out.status.success());
    let archive = env.dir.path().join("data.tar");
    fs::write(&archive, &out.stdout).unwrap();
    let listing = text(
        &Command::new("tar")
            .arg("-tf")
            .arg(&archive)
            .output()
            .unwrap()
            .stdout,
    );
    assert!(
        listing
            .lines()
            .any(|l| l.trim_end_matches('/') == "data/x/f"),
        "{listing}"
    );
    env.ok(&["exec", "box", "mkdir", "/srv"]);
    let mut child = env
        .cmd(&["cp", "-", "box:/srv"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fs::read(&archive).unwrap())
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(cat("/srv/data/x/f"), "inside\n");
    assert!(
        env.fails(&["cp", "-", "box:/nowhere"], 125)
            .contains("box:/nowhere")
    );

    // A stopped container: through its root filesystem, mounted for the copy.
    env.ok(&["stop", "-t", "0", "box"]);
    env.ok(&[
        "cp",
        host.join("file.txt").to_str().unwrap(),
        "box:/stopped.txt",
    ]);
    env.ok(&[
        "cp",
        "box:/stopped.txt",
        env.dir.path().join("stopped.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(env.dir.path().join("stopped.txt")).unwrap(),
        "hello\n"
    );
    assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
}

#[test]
fn symlinks_in_the_container_cannot_lead_cp_onto_the_host() {
    if !can_run("cp symlink attack") {
        return;
    }
    let env = Env::with_image();
    let canary_dir = env.dir.path().join("canary");
    fs::create_dir_all(&canary_dir).unwrap();
    let canary = canary_dir.join("secret");
    fs::write(&canary, "HOST SECRET\n").unwrap();
    let payload = env.dir.path().join("payload");
    fs::write(&payload, "payload\n").unwrap();
    let canary_dir_s = canary_dir.to_str().unwrap();
    // Links to /, to the canary's host path (absolute), and up and out (relative).
    let setup = format!(
        "ln -s / /evil; ln -s {canary_dir_s} /hostlink; ln -s ../../../../../../../../{canary_dir_s} /relative; \
         ln -s {canary_dir_s}/secret /filelink; sleep 1000"
    );
    env.ok(&["run", "-d", "--name", "trap", "bb", "sh", "-c", &setup]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let untouched = || {
        assert_eq!(
            fs::read_to_string(&canary).unwrap(),
            "HOST SECRET\n",
            "the host file was written"
        )
    };
    let p = payload.to_str().unwrap();
    for dst in [
        "trap:/hostlink/secret".to_string(),
        format!("trap:/evil{canary_dir_s}/secret"),
        "trap:/relative/secret".to_string(),
        "trap:/filelink".to_string(),
        format!("trap:/evil/../../..{canary_dir_s}/secret"),
    ] {
        let _ = env.berth(&["cp", p, &dst]);
        untouched();
        assert_eq!(
            fs::read_dir(&canary_dir).unwrap().count(),
            1,
            "nothing new beside the canary after {dst}"
        );
    }
    // The file written through /filelink replaced the link inside the container.
    assert_eq!(env.ok(&["exec", "trap", "cat", "/filelink"]), "payload\n");
    // Copies out: what the link names inside the container, never the host's file.
    let out_dir = env.dir.path().join("out");
    fs::create_dir_all(&out_dir).unwrap();
    for src in ["trap:/hostlink/secret", "trap:/relative/secret"] {
        let _ = env.berth(&["cp", src, out_dir.join("got").to_str().unwrap()]);
        if let Ok(got) = fs::read_to_string(out_dir.join("got")) {
            assert!(!got.contains("HOST SECRET"), "{src} read the host's file");
        }
    }
    let _ = env.berth(&[
        "cp",
        &format!("trap:/evil{canary_dir_s}/secret"),
        out_dir.join("got2").to_str().unwrap(),
    ]);
    assert!(
        !fs::read_to_string(out_dir.join("got2"))
            .unwrap_or_default()
            .contains("HOST SECRET")
    );
    // /evil/etc/passwd is the container's passwd (the busybox one), not the host's.
    env.ok(&[
        "cp",
        "trap:/evil/etc/passwd",
        out_dir.join("passwd").to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(out_dir.join("passwd")).unwrap(),
        fs::read_to_string(env.rootfs.join("etc/passwd")).unwrap()
    );
    // With -L a source link is followed, inside the container: /hostlink names a
    // directory the container does not have; a relative link climbing up stays inside.
    let l2 = out_dir.join("l2");
    assert!(
        env.fails(&["cp", "-L", "trap:/hostlink", l2.to_str().unwrap()], 125)
            .contains("No such file")
    );
    assert!(!l2.exists());
    env.ok(&[
        "exec",
        "trap",
        "ln",
        "-s",
        "../../../../etc/passwd",
        "/tmp/pw",
    ]);
    let pw = out_dir.join("pw");
    env.ok(&["cp", "-L", "trap:/tmp/pw", pw.to_str().unwrap()]);
    assert!(!fs::symlink_metadata(&pw).unwrap().file_type().is_symlink());
    assert_eq!(
        fs::read_to_string(&pw).unwrap(),
        fs::read_to_string(env.rootfs.join("etc/passwd")).unwrap()
    );
    // Without -L a link copied out stays a link.
    env.ok(&[
        "cp",
        "trap:/hostlink",
        out_dir.join("link").to_str().unwrap(),
    ]);
    assert!(
        fs::symlink_metadata(out_dir.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A tar entry that climbs out is refused.
    let evil_tar = env.dir.path().join("evil.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&evil_tar)
        .arg("-C")
        .arg(env.dir.path())
        .arg("--transform")
        .arg("s,^payload,../../../payload-escaped,")
        .arg("payload")
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = env
        .cmd(&["cp", "-", "trap:/tmp"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fs::read(&evil_tar).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(!env.dir.path().join("payload-escaped").exists());
    untouched();
}

#[test]
fn diff_and_commit() {
    if !can_run("diff/commit") {
        return;
    }
    let env = Env::with_image();
    env.ok(&["run", "--name", "work", "bb", "sh", "-c", "echo hi > /tmp/new; rm /etc/group; mkdir /root/d; echo x > /root/d/f; echo changed >> /etc/passwd"]);
    let diff = env.ok(&["diff", "work"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /tmp/new",
        "D /etc/group",
        "A /root/d",
        "A /root/d/f",
        "C /etc/passwd",
        "C /etc",
        "C /tmp",
    ] {
        assert!(lines.contains(&want), "{want} missing in:\n{diff}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["diff", "--format", "json", "work"])).unwrap();
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .any(|c| c["Path"] == "/etc/group" && c["Kind"] == "D")
    );

    let id = env.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/tmp/new\"]",
        "-c",
        "ENV COMMITTED=yes",
        "-m",
        "from a test",
        "work",
        "snap",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let images = env.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("localhost/snap:latest"), "{images}");
    // The new image has the changes, the whiteout and the new config.
    assert_eq!(env.ok(&["run", "--rm", "snap"]), "hi\n");
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "snap",
            "sh",
            "-c",
            "test -e /etc/group && echo there || echo gone"
        ]),
        "gone\n"
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "snap",
            "sh",
            "-c",
            "echo $COMMITTED; cat /root/d/f; tail -1 /etc/passwd"
        ]),
        "yes\nx\nchanged\n"
    );
    // A container of the committed image has nothing to diff yet.
    env.ok(&["create", "--name", "again", "snap"]);
    let history = env.ok(&["history", "snap"]);
    assert!(
        history.contains("from a test") || history.lines().count() >= 3,
        "{history}"
    );
    assert!(
        env.fails(&["commit", "-c", "BOGUS x", "work", "bad"], 125)
            .contains("BOGUS")
    );
    // --rootfs containers have no layers.
    let rootfs = env.rootfs.to_str().unwrap().to_string();
    env.ok(&["run", "--name", "plain", "--rootfs", &rootfs, "true"]);
    assert!(env.fails(&["diff", "plain"], 125).contains("--rootfs"));
}
