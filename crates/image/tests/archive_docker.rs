//! docker interop: a private dockerd (its own data-root, exec-root, pidfile and socket; no
//! bridge, no iptables) loads what berth saves, and berth loads what `docker save` writes
//! (docker 20.10 here: the classic layout; the layout of docker >= 25 is covered by a
//! handmade fixture in archive_load.rs). Everything dockerd made is removed at the end.

mod support_archive;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::Digest;
use berth_image::archive::{self, Format, Source, save};
use support_archive::*;

/// Host paths dockerd may create outside its data-root/exec-root; removed at the end only
/// when they did not exist before.
/// (dockerd 20.10 writes its trust key to /etc/docker/key.json whatever its other paths.)
const HOST_PATHS: &[&str] = &[
    "/etc/docker/key.json",
    "/run/docker",
    "/var/lib/docker",
    "/etc/docker",
    "/run/containerd",
];

struct Dockerd {
    child: Child,
    dir: PathBuf,
    new_paths: Vec<&'static str>,
}

impl Dockerd {
    fn start(dir: &Path) -> Option<Dockerd> {
        fs::create_dir_all(dir.join("config")).unwrap();
        let new_paths = HOST_PATHS
            .iter()
            .copied()
            .filter(|p| !Path::new(p).exists())
            .collect();
        let log = fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .args(["--storage-driver", "vfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .ok()?;
        let dockerd = Dockerd {
            child,
            dir: dir.to_path_buf(),
            new_paths,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if dockerd
                .docker(&["version"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(dockerd);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "dockerd did not start: {}",
            fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
        );
    }

    fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_CONFIG", self.dir.join("config"))
            .arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
            .args(args);
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM by pid: dockerd stops its own containerd.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd 20.10 leaves mounts under its dirs (the data-root bind): deepest first.
        let dir = self.dir.display().to_string();
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
        for p in &self.new_paths {
            let _ = fs::remove_file(p).or_else(|_| fs::remove_dir_all(p));
        }
    }
}

#[test]
fn docker_loads_berths_save_and_berth_loads_dockers() {
    if !can_run("docker_interop", &["dockerd", "docker", "umoci", "skopeo"]) {
        return;
    }
    let fx = Fixture::new();
    let layout = fx.umoci_image("v1", &[&[("etc/hello", "hello\n")], &[("etc/two", "2\n")]]);
    let oci_tar = fx.path("seed.tar");
    fx.skopeo_copy(
        &format!("oci:{}:v1", layout.display()),
        &format!("oci-archive:{}:dock:v1", oci_tar.display()),
    );
    let store = fx.store("root");
    let image = archive::load(&store, &Source::Path(oci_tar), &|_| {})
        .unwrap()
        .remove(0)
        .image;
    let saved = fx.path("berth.tar");
    let selected = save::select(&store, &["localhost/dock:v1".to_string()]).unwrap();
    save::save_to_path(&store, &selected, Format::DockerArchive, &saved).unwrap();

    let Some(docker) = Dockerd::start(&fx.path("docker")) else {
        eprintln!("skipped: docker_interop: dockerd would not start");
        return;
    };
    let out = run(&mut docker.docker(&["load", "-i", saved.to_str().unwrap()]));
    assert!(out.contains("Loaded image: localhost/dock:v1"), "{out}");
    let id = run(&mut docker.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "localhost/dock:v1",
    ]));
    assert_eq!(id.trim(), image.id.to_string());
    let diffs = run(&mut docker.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        "localhost/dock:v1",
    ]));
    let expected: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
    assert_eq!(
        serde_json::from_str::<Vec<String>>(diffs.trim()).unwrap(),
        expected
    );

    // docker's own save (tagged twice) loads in berth; the config is the same bytes.
    run(&mut docker.docker(&["tag", "localhost/dock:v1", "other:2"]));
    let theirs = fx.path("docker.tar");
    run(&mut docker.docker(&[
        "save",
        "-o",
        theirs.to_str().unwrap(),
        "localhost/dock:v1",
        "other:2",
    ]));
    let back = fx.store("back");
    let loaded = archive::load(&back, &Source::Path(theirs), &|_| {}).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].image.id, image.id);
    let mut names = loaded[0].image.names.clone();
    names.sort();
    assert_eq!(names, ["docker.io/library/other:2", "localhost/dock:v1"]);
    assert_eq!(
        back.read_blob(&image.id).unwrap(),
        store.read_blob(&image.id).unwrap()
    );
    assert_eq!(Digest::of(&back.read_blob(&image.id).unwrap()), image.id);
}
