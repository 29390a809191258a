//! `berth pull|push|login|logout` against real registries on 127.0.0.1: podman's output
//! lines, `-q`, exit code 125 with errors that name the reference, the auth file, two
//! parallel pulls, and a pull killed with SIGKILL leaving no image.

#[path = "../../image/tests/support_registry/mod.rs"]
mod support_registry;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_image::Store;
use support_registry::{Auth, Images, PASSWORD, Registry, USER, registry_tools};

fn berth(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.env("BERTH_DEFAULT_NETWORK", "none");
    cmd.arg("--root")
        .arg(root)
        .arg("--runroot")
        .arg(root.join("run"));
    // Never the host's credentials.
    cmd.env("REGISTRY_AUTH_FILE", root.join("auth.json"))
        .env_remove("DOCKER_CONFIG")
        .env("HOME", root);
    cmd.stdin(Stdio::null());
    cmd
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn pull_prints_like_podman_and_fails_with_125() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    reg.push(&images.src("multi"), "t/multi:latest", &["--all"]);
    let root = tempfile::tempdir().unwrap();
    let name = format!("{}/t/bb:oci", reg.addr);

    let o = berth(root.path()).args(["pull", &name]).output().unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    let id = images.config_digest("bb");
    assert_eq!(stdout, format!("{}\n", id.trim_start_matches("sha256:")));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], format!("Trying to pull {name}..."), "{stderr}");
    assert_eq!(lines[1], "Getting image source signatures");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("Copying blob sha256:") && l.ends_with(" done"))
            .count(),
        2,
        "{stderr}"
    );
    assert!(
        lines.contains(&format!("Copying config {id} done").as_str()),
        "{stderr}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        "Writing manifest to image destination"
    );

    // Again, quietly: only the id; the layers are already there.
    let o = berth(root.path())
        .args(["pull", "-q", &format!("docker://{name}")])
        .output()
        .unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), id.trim_start_matches("sha256:"));
    assert_eq!(stderr, "");
    let o = berth(root.path()).args(["pull", &name]).output().unwrap();
    assert!(
        out(&o).1.contains("skipped: already exists"),
        "{}",
        out(&o).1
    );

    // --platform picks from an index.
    let o = berth(root.path())
        .args([
            "pull",
            "-q",
            "--platform",
            "linux/arm/v7",
            &format!("{}/t/multi", reg.addr),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out(&o).0.trim(),
        images.config_digest("bb-arm").trim_start_matches("sha256:"),
        "{}",
        out(&o).1
    );

    let closed = support_registry::free_port();
    for (args, needle) in [
        (
            vec!["pull", "Bad/Name:x"],
            "invalid reference format \"Bad/Name:x\"".to_string(),
        ),
        (vec!["pull", "a:b:c"], "\"a:b:c\"".to_string()),
        (
            vec!["pull", &format!("{}/t/bb:nope", reg.addr)],
            format!("pulling {}/t/bb:nope", reg.addr),
        ),
        (
            vec!["pull", &format!("127.0.0.1:{closed}/x/y")],
            format!("pinging container registry 127.0.0.1:{closed}"),
        ),
        (
            vec!["pull", "--platform", "linux", &name],
            "invalid platform \"linux\"".to_string(),
        ),
        (
            vec![
                "pull",
                "--platform",
                "windows/amd64",
                &format!("{}/t/multi", reg.addr),
            ],
            "windows/amd64".to_string(),
        ),
        (
            vec!["pull", "--creds", "nocolon", &name],
            "invalid credentials".to_string(),
        ),
        (vec!["pull", "oci:/tmp/x"], "not a registry".to_string()),
    ] {
        let o = berth(root.path()).args(&args).output().unwrap();
        let (_, stderr) = out(&o);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Error: ") && stderr.contains(&needle),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn login_logout_and_authenticated_pull_push() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::Htpasswd);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let root = tempfile::tempdir().unwrap();
    let authfile = root.path().join("auth.json");
    let name = format!("{}/t/bb:oci", reg.addr);

    let o = berth(root.path()).args(["pull", &name]).output().unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(out(&o).1.contains("unauthorized"), "{}", out(&o).1);
    let o = berth(root.path())
        .args(["pull", "--creds", &format!("{USER}:wrong"), &name])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        out(&o).1.contains(&name) && out(&o).1.contains("unauthorized"),
        "{}",
        out(&o).1
    );

    let o = berth(root.path())
        .args(["login", "-u", USER, "-p", "wrong", &reg.addr])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{:?}", out(&o));
    assert!(out(&o).1.contains("unauthorized"), "{}", out(&o).1);
    assert!(!authfile.exists());

    let mut child = berth(root.path())
        .args(["login", "-u", USER, "--password-stdin", &reg.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", out(&o));
    assert_eq!(out(&o).0, "Login Succeeded!\n");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert!(file["auths"][&reg.addr]["auth"].is_string(), "{file}");

    let o = berth(root.path())
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", out(&o));
    let o = berth(root.path())
        .args(["push", &name, &format!("{}/t/copy:2", reg.addr)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", out(&o));
    assert!(
        out(&o).1.contains("Writing manifest to image destination"),
        "{}",
        out(&o).1
    );
    let store = Store::open(root.path()).unwrap();
    let image = store.resolve(&name).unwrap();
    assert_eq!(
        reg.manifest("t/copy:2"),
        store.read_blob(&image.manifest_digest).unwrap()
    );
    drop(store);

    let o = berth(root.path())
        .args(["logout", &reg.addr])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", out(&o));
    assert_eq!(
        out(&o).0,
        format!("Removed login credentials for {}\n", reg.addr)
    );
    let o = berth(root.path())
        .args(["logout", &reg.addr])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(out(&o).1.contains(&format!("not logged into {}", reg.addr)));
    let o = berth(root.path())
        .args(["push", &name, &format!("{}/t/copy:3", reg.addr)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        out(&o)
            .1
            .contains(&format!("pushing {}/t/copy:3", reg.addr)),
        "{}",
        out(&o).1
    );
}

#[test]
fn parallel_pulls_and_a_killed_pull() {
    if !registry_tools() {
        return;
    }
    let images = Images::build_with(&[("big1", 12 << 20), ("big2", 12 << 20), ("big3", 12 << 20)]);
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/big:1", &[]);
    let name = format!("{}/t/big:1", reg.addr);

    // Killed midway: nothing visible, and the next pull completes.
    let root = tempfile::tempdir().unwrap();
    let mut child = berth(root.path())
        .args(["pull", "-q", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let tmp = root.path().join("tmp");
    while Instant::now() < deadline && std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) == 0
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let killed_midway = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        killed_midway,
        "the pull finished before it could be killed; make the image bigger"
    );
    let store = Store::open(root.path()).unwrap();
    assert!(
        store.list().unwrap().is_empty(),
        "a killed pull left an image"
    );
    drop(store);
    let o = berth(root.path())
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", out(&o));

    // Two at once into one empty store: both succeed, the image is there once.
    let root = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            berth(root.path())
                .args(["pull", "-q", &name])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(o.status.success(), "{:?}", out(o));
    }
    assert_eq!(out(&outputs[0]).0, out(&outputs[1]).0);
    let store = Store::open(root.path()).unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].layers.len(), 5);
}

/// On a terminal (a pty from script(1)) pull draws podman-like bars: one per blob, named by
/// its short digest, redrawn in place (escape sequences), each left as "... done"; the
/// messages around them stay plain lines.
#[test]
fn pull_on_a_terminal_draws_a_bar_per_layer() {
    if !registry_tools() {
        return;
    }
    if !Path::new("/usr/bin/script").exists() {
        if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
            panic!("script(1) (util-linux) is missing");
        }
        eprintln!("skipped: script(1) is missing");
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let root = tempfile::tempdir().unwrap();
    let name = format!("{}/t/bb:oci", reg.addr);
    let typescript = root.path().join("typescript");
    let line = format!(
        "BERTH_DEFAULT_NETWORK=none HOME={home} REGISTRY_AUTH_FILE={home}/auth.json {bin} --root {home} --runroot {home}/run pull {name}",
        home = root.path().display(),
        bin = env!("CARGO_BIN_EXE_berth"),
    );
    let o = Command::new("script")
        .args(["-qec", &line])
        .arg(&typescript)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(o.status.success(), "{shown}");
    assert!(
        shown.contains("\u{1b}["),
        "bars are drawn with escape sequences: {shown:?}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&reg.manifest("t/bb:oci")).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let short = &layer["digest"].as_str().unwrap()["sha256:".len()..][..12];
        let bar = format!("Copying blob {short} done");
        assert!(shown.contains(&bar), "no {bar:?} in {shown:?}");
    }
    assert!(
        shown.contains("Writing manifest to image destination"),
        "{shown:?}"
    );
    assert!(
        !shown.contains("Copying blob sha256:"),
        "plain lines are for pipes, not terminals: {shown:?}"
    );
}
