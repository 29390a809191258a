//! `berth load` and `berth save` as a person runs them: the real binary on a temp `--root`,
//! archives made by umoci + skopeo and by podman, compressed by gzip and zstd, piped through
//! stdin and stdout, and the refusals (no archive, unknown image, a terminal).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn can_run(test: &str, tools: &[&str]) -> bool {
    let have = |t: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
    };
    let mut missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    // umoci unpack and podman's storage need root.
    if !Path::new("/proc/self/status").exists()
        || !fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    {
        missing.push("root");
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test}: needs {}", missing.join(", "));
    }
    eprintln!("skipped: {test}: needs {}", missing.join(", "));
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("berth-archive-cli-")
                .tempdir()
                .unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `berth --root <dir>/<root> ARGS`.
    fn berth(&self, root: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(BERTH);
        cmd.env("BERTH_DEFAULT_NETWORK", "none");
        cmd.arg("--root")
            .arg(self.path(root))
            .arg("--runroot")
            .arg(self.path("run"))
            .args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// An image built by umoci (a file and CMD /bin/sh) in the OCI layout `oci`, tag `tag`.
    fn umoci_image(&self, tag: &str, file: &str) -> PathBuf {
        let layout = self.path("oci");
        if !layout.exists() {
            run(Command::new("umoci")
                .args(["init", "--layout"])
                .arg(&layout));
        }
        let image = format!("{}:{tag}", layout.display());
        run(Command::new("umoci").args(["new", "--image", &image]));
        let bundle = self.path(&format!("bundle-{tag}"));
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
        fs::write(bundle.join("rootfs/etc").join(file), format!("{file}\n")).unwrap();
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
        fs::remove_dir_all(&bundle).unwrap();
        run(Command::new("umoci").args(["config", "--image", &image, "--config.cmd", "/bin/sh"]));
        layout
    }

    fn skopeo(&self, src: &str, dest: &str) {
        run(Command::new("skopeo").args(["copy", "-q", src, dest]));
    }

    /// podman on a private vfs storage, with this host's containers.conf needs.
    fn podman(&self, args: &[&str]) -> Output {
        let dir = self.path("podman");
        if !dir.exists() {
            fs::create_dir_all(dir.join("tmp")).unwrap();
            fs::write(
                dir.join("containers.conf"),
                format!(
                    "[containers]\ndefault_ulimits = [\"nofile=1024:1024\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
                     events_logger = \"file\"\nevents_logfile_path = \"{0}/events.log\"\ntmp_dir = \"{0}/tmp\"\n",
                    dir.display()
                ),
            )
            .unwrap();
            fs::write(
                dir.join("storage.conf"),
                format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n", dir.display()),
            )
            .unwrap();
        }
        run(Command::new("podman")
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.path("podman").exists() {
            let dir = self.path("podman");
            let _ = Command::new("podman")
                .env("CONTAINERS_CONF", dir.join("containers.conf"))
                .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
                .arg("--root")
                .arg(dir.join("root"))
                .arg("--runroot")
                .arg(dir.join("run"))
                .args(["--storage-driver", "vfs", "rmi", "-af"])
                .output();
        }
    }
}

/// Runs `cmd` with `input` on its stdin.
fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn load_prints_podmans_lines_from_files_stdin_and_layouts() {
    if !can_run(
        "load_prints_podmans_lines",
        &["umoci", "skopeo", "gzip", "zstd"],
    ) {
        return;
    }
    let env = Env::new();
    let layout = env.umoci_image("v1", "hello");
    let docker_tar = env.path("d.tar");
    env.skopeo(
        &format!("oci:{}:v1", layout.display()),
        &format!("docker-archive:{}:busybox:local", docker_tar.display()),
    );

    let out = run(&mut env.berth("a", &["load", "-i", docker_tar.to_str().unwrap()]));
    assert_eq!(
        text(&out.stdout),
        "Loaded image: docker.io/library/busybox:local\n"
    );
    assert!(
        text(&out.stderr).contains("Copying blob sha256:"),
        "{}",
        text(&out.stderr)
    );

    // gzip and zstd on stdin, quiet.
    for tool in ["gzip", "zstd"] {
        let compressed = run(Command::new(tool).args(["-c"]).arg(&docker_tar)).stdout;
        let out = with_stdin(&mut env.berth(tool, &["load", "-q"]), &compressed);
        assert!(out.status.success(), "{tool}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "Loaded image: docker.io/library/busybox:local\n",
            "{tool}"
        );
        assert_eq!(text(&out.stderr), "", "{tool}: -q prints no progress");
    }

    // oci:DIR:TAG and `image load`'s sibling `load -i oci-archive`.
    let out = run(&mut env.berth(
        "b",
        &["load", "-q", "-i", &format!("oci:{}:v1", layout.display())],
    ));
    assert_eq!(text(&out.stdout), "Loaded image: localhost/v1:latest\n");
    let oci_tar = env.path("o.tar");
    env.skopeo(
        &format!("oci:{}:v1", layout.display()),
        &format!("oci-archive:{}:app:2", oci_tar.display()),
    );
    let out = run(&mut env.berth("b", &["load", "-q", "-i", oci_tar.to_str().unwrap()]));
    assert_eq!(text(&out.stdout), "Loaded image: localhost/app:2\n");
}

#[test]
fn bad_archives_fail_with_125_and_name_the_file() {
    let env = Env::new();
    let junk = env.path("junk.txt");
    fs::write(&junk, "not an archive\n".repeat(100)).unwrap();
    let missing = env.path("missing.tar");
    for (input, says) in [
        (junk.to_str().unwrap(), "junk.txt"),
        (missing.to_str().unwrap(), "missing.tar"),
        (
            "oci:/nonexistent-berth-layout:x",
            "/nonexistent-berth-layout",
        ),
    ] {
        let out = env.berth("r", &["load", "-i", input]).output().unwrap();
        assert_eq!(out.status.code(), Some(125), "{input}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("Error: ") && err.contains(says),
            "{input}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    // A truncated archive streamed on stdin.
    let tar = run(Command::new("tar")
        .arg("-C")
        .arg(env.dir.path())
        .args(["-cf", "-", "junk.txt"]))
    .stdout;
    let out = with_stdin(&mut env.berth("r", &["load"]), &tar[..700]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("stdin"), "{}", text(&out.stderr));
    // Nothing was recorded.
    let images = env.path("r/images.json");
    if images.exists() {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(images).unwrap()).unwrap();
        assert_eq!(v["images"], serde_json::json!([]), "{v}");
    }
}

#[test]
fn save_round_trips_and_refuses_a_terminal() {
    if !can_run("save_round_trips", &["umoci", "skopeo", "script"]) {
        return;
    }
    let env = Env::new();
    let layout = env.umoci_image("v1", "one");
    env.umoci_image("v2", "two");
    for tag in ["v1", "v2"] {
        let tar = env.path(&format!("{tag}.tar"));
        env.skopeo(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("docker-archive:{}:img:{tag}", tar.display()),
        );
        run(&mut env.berth("a", &["load", "-q", "-i", tar.to_str().unwrap()]));
    }
    // Both images into one docker-archive file; to stdout as oci-archive.
    let both = env.path("both.tar");
    run(&mut env.berth(
        "a",
        &["save", "-o", both.to_str().unwrap(), "img:v1", "img:v2"],
    ));
    let out = run(&mut env.berth("b", &["load", "-i", both.to_str().unwrap()]));
    assert_eq!(
        text(&out.stdout),
        "Loaded image: docker.io/library/img:v1\nLoaded image: docker.io/library/img:v2\n"
    );
    let oci = run(&mut env.berth("a", &["save", "--format", "oci-archive", "img:v2"])).stdout;
    let out = with_stdin(&mut env.berth("c", &["load", "-q"]), &oci);
    assert_eq!(
        text(&out.stdout),
        "Loaded image: docker.io/library/img:v2\n",
        "{}",
        text(&out.stderr)
    );
    // -o oci:DIR is an OCI layout directory.
    let dir = env.path("layout-out");
    run(&mut env.berth(
        "a",
        &["save", "-o", &format!("oci:{}", dir.display()), "img:v1"],
    ));
    assert!(dir.join("index.json").is_file() && dir.join("oci-layout").is_file());
    // -o oci:DIR:TAG as skopeo names it: skopeo reads it back by that tag.
    let tagged = env.path("tagged");
    let dest = format!("oci:{}:mytag", tagged.display());
    run(&mut env.berth("a", &["save", "-o", &dest, "img:v2"]));
    run(Command::new("skopeo").args(["inspect", "--raw", &dest]));
    let out = run(&mut env.berth("d", &["load", "-q", "-i", &dest]));
    assert_eq!(text(&out.stdout), "Loaded image: localhost/mytag:latest\n");

    // Unknown image: 125, named; nothing written.
    let never = env.path("never.tar");
    let out = env
        .berth("a", &["save", "-o", never.to_str().unwrap(), "nope:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("nope:1"),
        "{}",
        text(&out.stderr)
    );
    assert!(!never.exists());
    assert!(fs::read_dir(env.dir.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("berth-save")
    }));

    // A terminal on stdout: refused, as podman refuses it.
    let cmd = format!(
        "{BERTH} --root {} --runroot {} save img:v1",
        env.path("a").display(),
        env.path("run").display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("refusing to save to terminal"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn podman_loads_berths_saves_and_berth_loads_podmans() {
    if !can_run("podman_interop_cli", &["umoci", "skopeo", "podman"]) {
        return;
    }
    let env = Env::new();
    let layout = env.umoci_image("v1", "hello");
    let tar = env.path("in.tar");
    env.skopeo(
        &format!("oci:{}:v1", layout.display()),
        &format!("docker-archive:{}:interop:v1", tar.display()),
    );
    run(&mut env.berth("a", &["load", "-q", "-i", tar.to_str().unwrap()]));
    for format in ["docker-archive", "oci-archive"] {
        let saved = env.path(&format!("berth-{format}.tar"));
        run(&mut env.berth(
            "a",
            &[
                "save",
                "--format",
                format,
                "-o",
                saved.to_str().unwrap(),
                "interop:v1",
            ],
        ));
        let out = env.podman(&["load", "-q", "-i", saved.to_str().unwrap()]);
        assert!(
            text(&out.stdout).contains("docker.io/library/interop:v1"),
            "{format}: {}",
            text(&out.stdout)
        );
        let back = env.path(&format!("podman-{format}.tar"));
        env.podman(&[
            "save",
            "-q",
            "--format",
            format,
            "-o",
            back.to_str().unwrap(),
            "docker.io/library/interop:v1",
        ]);
        let out = run(&mut env.berth(
            &format!("from-podman-{format}"),
            &["load", "-q", "-i", back.to_str().unwrap()],
        ));
        assert_eq!(
            text(&out.stdout),
            "Loaded image: docker.io/library/interop:v1\n",
            "{format}"
        );
        env.podman(&["rmi", "-f", "docker.io/library/interop:v1"]);
    }
}
