//! Rootless `berth`: a user made at test time (useradd gives it /etc/subuid and /etc/subgid
//! ranges) runs berth without root and without --root/--runroot: pull, import, run -d, exec,
//! logs, -it, -p on 127.0.0.1 (slirp4netns), rm; file owners inside as the image says and
//! on the host within the user's ranges; resource limits refused on this cgroup v1 host;
//! nothing of the user's left after rm.

#[path = "../../image/tests/support_registry/mod.rs"]
mod support_registry;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// useradd and userdel lock /etc/passwd: one at a time.
static ACCOUNTS: Mutex<()> = Mutex::new(());

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Root and the tools: else skipped (failed under BERTH_REQUIRE_ROOT=1).
fn can_run(test: &str) -> bool {
    let mut missing = Vec::new();
    if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        missing.push("root");
    }
    for tool in [
        "/usr/sbin/useradd",
        "/usr/bin/newuidmap",
        "/usr/bin/slirp4netns",
        "/bin/busybox",
        "/usr/bin/script",
    ] {
        if !Path::new(tool).exists() {
            missing.push(tool);
        }
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

/// The test's user, with its home in the test's directory; removed with all it ran.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    xdg: PathBuf,
    subuid: u32,
    berth: PathBuf,
}

impl User {
    fn create(dir: &Path) -> User {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("brb{}x{n}", std::process::id());
        let home = dir.join("home");
        {
            let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let out = Command::new("useradd")
                .args(["--home-dir", home.to_str().unwrap(), "--create-home"])
                .args(["--shell", "/bin/sh", "--user-group", &name])
                .output()
                .unwrap();
            assert!(out.status.success(), "useradd: {}", text(&out.stderr));
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            text(&out.stdout).trim().parse().unwrap()
        };
        let subuid = fs::read_to_string("/etc/subuid")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name}:"))?
                    .split(':')
                    .next()?
                    .parse()
                    .ok()
            })
            .expect("useradd gave the user a subuid range");
        let (uid, gid) = (id("-u"), id("-g"));
        let xdg = home.join("xdg");
        fs::create_dir(&xdg).unwrap();
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&xdg, Some(uid), Some(gid)).unwrap();
        // a copy the user may run, wherever the build tree is
        let berth = dir.join("berth");
        fs::copy(BERTH, &berth).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        User {
            name,
            uid,
            gid,
            home,
            xdg,
            subuid,
            berth,
        }
    }

    /// `program args` as the user in a login's environment.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", &self.xdg)
            .current_dir(&self.home)
            .uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null());
        cmd
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(&self.berth, args).output().unwrap()
    }

    /// berth as the user; its stdout, after asserting success.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} as {}: {}{}",
            self.name,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn give(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// The user's live processes (zombies are gone, not left), as "pid comm".
    fn processes(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            if meta.uid() == self.uid && !zombie && !stat.is_empty() {
                found.push(stat.split(") ").next().unwrap_or("").replace(" (", " "));
            }
        }
        found
    }

    /// Mounts of the user's mount namespace (the holder's) that name `what`.
    fn mounts_naming(&self, what: &str) -> Vec<String> {
        let pid = fs::read_to_string(self.xdg.join("berth/pause.pid")).unwrap_or_default();
        let info =
            fs::read_to_string(format!("/proc/{}/mountinfo", pid.trim())).unwrap_or_default();
        info.lines()
            .filter(|l| l.contains(what))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.uid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel")
            .args(["--force", &self.name])
            .output();
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// A busybox root filesystem with a home owned by 1000:100, as a tarball the user may read.
fn rootfs_tar(dir: &Path) -> PathBuf {
    // built here, not by scripts/busybox-rootfs.sh: the cgroup v2 guest sees the build
    // tree only, not the sources
    let rootfs = dir.join("rootfs");
    for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "run", "root"] {
        fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in text(&list.stdout).lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:100:user:/home/u:/bin/sh\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\nusers:x:100:\n").unwrap();
    fs::create_dir_all(rootfs.join("home/u")).unwrap();
    std::os::unix::fs::chown(rootfs.join("home/u"), Some(1000), Some(100)).unwrap();
    // a device node, as `docker export` of an image with one has: a user cannot make it
    let out = Command::new("mknod")
        .arg(rootfs.join("dev/imgnull"))
        .args(["c", "1", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tar = dir.join("rootfs.tar");
    let out = Command::new("tar")
        .args([
            "-C",
            rootfs.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    tar
}

/// The test's directory, its user, and the rootfs tarball the user may read; None when the
/// test cannot run here. (Bound in this order, the user goes before the directory.)
fn user_with_rootfs(test: &str) -> Option<(tempfile::TempDir, User, PathBuf)> {
    if !can_run(test) {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-rl-")
        .tempdir()
        .unwrap();
    let user = User::create(dir.path());
    let tar = rootfs_tar(dir.path());
    user.give(&tar);
    Some((dir, user, tar))
}

fn cgroup_v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn a_user_runs_containers_without_root() {
    let Some((dir, user, tar)) = user_with_rootfs("a_user_runs_containers_without_root") else {
        return;
    };

    // storage and run state in the user's places, no --root given; the image's device node
    // is skipped with a warning, as podman does
    let out = user.berth(&["import", tar.to_str().unwrap(), "bb"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("device node ./dev/imgnull skipped")
            || text(&out.stderr).contains("device node dev/imgnull skipped"),
        "{}",
        text(&out.stderr)
    );
    assert!(user.home.join(".local/share/berth").is_dir());
    assert!(user.xdg.join("berth").is_dir());
    assert!(user.ok(&["images"]).contains("localhost/bb"));

    // root inside is the user outside, and the user's range holds the other ids
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; stat -c %u:%g /home/u",
    ]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "{out}");
    assert_eq!(lines[1], ["0", &user.uid.to_string(), "1"], "{out}");
    assert_eq!(lines[2], ["1", &user.subuid.to_string(), "65536"], "{out}");
    assert_eq!(
        lines[3],
        ["1000:100"],
        "file owners inside are the image's: {out}"
    );
    let layers = user.home.join(".local/share/berth/layers");
    let on_host: Vec<u32> = fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .filter_map(|e| fs::metadata(e.path().join("diff/home/u")).ok())
        .map(|m| m.uid())
        .collect();
    assert_eq!(
        on_host,
        [user.subuid + 999],
        "1000 inside is subuid+999 on the host"
    );

    // a detached container: ps, exec, logs, a port on 127.0.0.1 through slirp4netns
    let port = support_registry::free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = user.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "bb",
        "sh",
        "-c",
        "echo started; while true; do echo hello-rootless | nc -l -p 8080; done",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert!(user.ok(&["ps"]).contains("web"));
    assert_eq!(user.ok(&["exec", "web", "id", "-u"]).trim(), "0");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answer = String::new();
    while Instant::now() < deadline && !answer.contains("hello-rootless") {
        let out = Command::new("busybox")
            .args(["nc", "127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        answer = text(&out.stdout);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        answer.contains("hello-rootless"),
        "the published port answered: {answer:?}"
    );
    assert!(user.ok(&["logs", "web"]).contains("started"));

    // a terminal: -it through script(1)'s pty
    let line = format!(
        "{} run -it --rm --network none bb tty",
        user.berth.display()
    );
    let out = user
        .command(Path::new("script"), &["-qec", &line, "/dev/null"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // no escalation: what the container's root writes to a bind belongs to the user
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    user.give(&shared);
    let volume = format!("{}:/x", shared.display());
    user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &volume,
        "bb",
        "sh",
        "-c",
        "cp /bin/busybox /x/sh && chmod 4755 /x/sh",
    ]);
    let made = fs::metadata(shared.join("sh")).unwrap();
    assert_eq!(
        made.uid(),
        user.uid,
        "a setuid file the user made is the user's, not root's"
    );

    // limits: cgroup v1 gives a user no cgroup, and a limit asked for must not vanish
    if !cgroup_v2_host() {
        let out = user.berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-m",
            "64m",
            "bb",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(125));
        let err = text(&out.stderr);
        assert!(
            err.contains("rootless") && err.contains("cgroup v1"),
            "{err}"
        );
    }
    // the host's network: the user's own view of it
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb",
        "cat",
        "/proc/net/dev",
    ]);
    let host_dev = fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(out.lines().count(), host_dev.lines().count(), "{out}");
    let out = user.berth(&["run", "--rm", "--network", "bridge", "bb", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("need root"),
        "{}",
        text(&out.stderr)
    );

    // rm: nothing of the containers is left, only the namespace holder
    user.ok(&["rm", "-f", "web"]);
    assert_eq!(user.ok(&["ps", "-aq"]).trim(), "");
    let containers = user.home.join(".local/share/berth/containers");
    // `run --rm` returns once it has the exit code; its monitor removes the files just after
    let left = || -> Vec<String> {
        fs::read_dir(&containers)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64) // container ids, not the names index
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(left().is_empty(), "container dirs left: {:?}", left());
    assert!(
        user.mounts_naming("berth/containers").is_empty(),
        "{:?}",
        user.mounts_naming("berth/containers")
    );
    let procs = user.processes();
    assert!(
        procs.iter().all(|p| p.ends_with("berth-userns")),
        "only the holder is left: {procs:?}"
    );
}

/// A user pulls from a registry on 127.0.0.1 and runs what it pulled.
#[test]
fn a_user_pulls_and_runs_an_image() {
    if !can_run("a_user_pulls_and_runs_an_image") || !support_registry::registry_tools() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-rl-")
        .tempdir()
        .unwrap();
    let user = User::create(dir.path());
    let images = support_registry::Images::build();
    let reg = support_registry::Registry::start(support_registry::Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let name = format!("{}/t/bb:oci", reg.addr);
    user.ok(&["pull", "-q", "--tls-verify=false", &name]);
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "sh",
        "-c",
        "id -u",
    ]);
    assert_eq!(out.trim(), "0");
    user.ok(&["rmi", &name]);
    assert!(!user.ok(&["images"]).contains("t/bb"));
}

/// The FUSE overlay (podman's `mount_program`): a user's containers get their root from
/// fuse-overlayfs over the same layers, whiteouts and owners as the kernel's overlay shows
/// them; a committed layer's deletion hides the file; nothing of it stays after rm. Bad
/// storage options are refused, naming the option.
#[test]
fn a_users_containers_can_use_the_fuse_overlay() {
    let test = "a_users_containers_can_use_the_fuse_overlay";
    let program = Path::new("/usr/bin/fuse-overlayfs");
    let fuse_open = fs::metadata("/dev/fuse").is_ok_and(|m| m.mode() & 0o006 == 0o006);
    if !program.exists() || !fuse_open {
        let why = "/usr/bin/fuse-overlayfs and a /dev/fuse users may open (mode 0666)";
        if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
            panic!("{test}: needs {why}");
        }
        eprintln!("skipped: {test}: needs {why}");
        return;
    }
    let Some((_dir, user, tar)) = user_with_rootfs(test) else {
        return;
    };
    let opt = "--storage-opt=overlay.mount_program=/usr/bin/fuse-overlayfs";
    user.ok(&["import", tar.to_str().unwrap(), "fz"]);
    let root_of = "grep ' / ' /proc/mounts | cut -d' ' -f3";
    let first = user.ok(&[
        opt,
        "run",
        "--name",
        "fz1",
        "--network",
        "none",
        "fz",
        "sh",
        "-c",
        &format!(
            "rm /bin/vi && mkdir /d && echo kept > /d/f && {root_of} && stat -c %u:%g /home/u"
        ),
    ]);
    assert_eq!(
        first.lines().collect::<Vec<_>>(),
        ["fuse.fuse-overlayfs", "1000:100"],
        "{first}"
    );
    user.ok(&["commit", "fz1", "fz2"]);
    user.ok(&["rm", "fz1"]);
    let second = user.ok(&[
        opt,
        "run",
        "--rm",
        "--network",
        "none",
        "fz2",
        "sh",
        "-c",
        &format!("test ! -e /bin/vi && echo gone; cat /d/f; {root_of}"),
    ]);
    assert_eq!(
        second.lines().collect::<Vec<_>>(),
        ["gone", "kept", "fuse.fuse-overlayfs"],
        "{second}"
    );
    // a detached one: the mount program's server lives while the container does, and goes
    // with the unmount
    let id = user.ok(&[opt, "run", "-d", "--network", "none", "fz", "sleep", "60"]);
    let id = id.trim();
    assert!(
        !user.mounts_naming("fuse-overlayfs").is_empty(),
        "no FUSE mount while it runs"
    );
    user.ok(&["rm", "-f", id]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while user
        .processes()
        .iter()
        .any(|p| p.contains("fuse-overlayfs"))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !user
            .processes()
            .iter()
            .any(|p| p.contains("fuse-overlayfs")),
        "{:?}",
        user.processes()
    );
    assert_eq!(user.mounts_naming("fuse-overlayfs"), Vec::<String>::new());
    for (bad, says) in [
        (
            "--storage-opt=overlay.mount_program=fuse-overlayfs",
            "not an executable file",
        ),
        ("--storage-opt=overlay.size=1G", "unknown storage option"),
    ] {
        let out = user.berth(&[bad, "ps"]);
        assert_eq!(out.status.code(), Some(125), "{bad}");
        let err = text(&out.stderr);
        assert!(
            err.contains(bad.trim_start_matches("--storage-opt=")) && err.contains(says),
            "{err}"
        );
    }
    user.ok(&["rmi", "fz2", "fz"]);
}

/// A memory limit of a user's container: on cgroup v1 refused (the user gets no cgroup), on
/// cgroup v2 enforced in a subtree delegated to the user as systemd delegates one (the
/// directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads are the
/// user's; its processes run in a leaf below): the hog is OOM-killed, and berth says so.
/// scripts/v2-vm-tests.sh runs it in the cgroup v2 guest.
#[test]
fn a_users_memory_limit_needs_a_delegated_cgroup_v2_subtree() {
    let Some((_dir, user, tar)) =
        user_with_rootfs("a_users_memory_limit_needs_a_delegated_cgroup_v2_subtree")
    else {
        return;
    };
    user.ok(&["import", tar.to_str().unwrap(), "bb"]);
    let hog = [
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "32m",
        "bb",
        "tail",
        "/dev/zero",
    ];
    if !cgroup_v2_host() {
        let out = user.berth(&hog);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            text(&out.stderr).contains("cgroup v1"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(
            user.ok(&["ps", "-aq"]).trim(),
            "",
            "a refused run leaves nothing"
        );
        return;
    }
    let deleg = Delegated::new(&user);
    // a running container: its cgroup is beside the leaf, with the limit
    let out = deleg.berth(
        &user,
        &[
            "run",
            "-d",
            "--name",
            "calm",
            "--network",
            "none",
            "-m",
            "32m",
            "bb",
            "sleep",
            "1000",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cgroups = || -> Vec<PathBuf> {
        fs::read_dir(&deleg.dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("berth-"))
            })
            .collect()
    };
    let made = cgroups();
    assert_eq!(
        made.len(),
        1,
        "the container's cgroup is in the user's subtree: {made:?}"
    );
    let max = fs::read_to_string(made[0].join("memory.max")).unwrap();
    assert_eq!(max.trim(), (32u64 << 20).to_string());
    user.ok(&["rm", "-f", "calm"]);
    assert!(
        cgroups().is_empty(),
        "rm removed the container's cgroup: {:?}",
        cgroups()
    );
    // the hog: killed by the kernel, and berth says so
    let out = deleg.berth(&user, &hog);
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("out of memory"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        user.ok(&[
            "inspect",
            "--format",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            "hog"
        ])
        .trim(),
        "true 137"
    );
    user.ok(&["rm", "hog"]);
    assert!(cgroups().is_empty(), "{:?}", cgroups());
}

/// A cgroup v2 subtree delegated to the user, with a leaf for its commands.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn new(user: &User) -> Delegated {
        let root = Path::new("/sys/fs/cgroup");
        let dir = root.join(format!("berth-rl-deleg-{}", std::process::id()));
        fs::create_dir(&dir).unwrap();
        let _ = fs::write(root.join("cgroup.subtree_control"), "+memory +pids");
        fs::write(dir.join("cgroup.subtree_control"), "+memory +pids").unwrap();
        fs::create_dir(dir.join("leaf")).unwrap();
        for path in [
            dir.clone(),
            dir.join("cgroup.procs"),
            dir.join("cgroup.subtree_control"),
            dir.join("cgroup.threads"),
            dir.join("leaf"),
            dir.join("leaf/cgroup.procs"),
        ] {
            user.give(&path);
        }
        Delegated { dir }
    }

    /// berth as the user, started in the leaf: root moves the shell there, then becomes the
    /// user (a process moves only where it may write the common ancestor's cgroup.procs).
    fn berth(&self, user: &User, args: &[&str]) -> Output {
        let leaf = self.dir.join("leaf");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"",
            "sh",
        ])
        .arg(&leaf)
        .args([
            "setpriv",
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.gid),
        ])
        .args(["--clear-groups", "--"])
        .arg(&user.berth)
        .args(args)
        .env_clear()
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("XDG_RUNTIME_DIR", &user.xdg)
        .current_dir(&user.home)
        .stdin(Stdio::null());
        cmd.output().unwrap()
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // the user's processes are gone by now only if the test ended well: kill what is left
        if let Ok(procs) = fs::read_to_string(self.dir.join("leaf/cgroup.procs")) {
            for pid in procs.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let children: Vec<PathBuf> = fs::read_dir(&self.dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_dir())
                        .collect()
                })
                .unwrap_or_default();
            for child in &children {
                let _ = fs::write(child.join("cgroup.kill"), "1");
                let _ = fs::remove_dir(child);
            }
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `--userns keep-id`: the container's process is the user, with the user's host ids, in a
/// user namespace of its own where the image's files still read as the image says.
#[test]
fn a_user_keeps_its_id_in_a_container() {
    let Some((dir, user, tar)) = user_with_rootfs("a_user_keeps_its_id_in_a_container") else {
        return;
    };
    user.ok(&["import", tar.to_str().unwrap(), "bb"]);
    let keep = [
        "run",
        "--rm",
        "--network",
        "none",
        "--userns",
        "keep-id",
        "bb",
    ];
    let run = |script: &str| -> String {
        let mut args = keep.to_vec();
        args.extend(["sh", "-c", script]);
        user.ok(&args)
    };

    // the first run copies the layer with shifted owners; the second reuses the copy
    let first = Instant::now();
    let out = run("id -u; id -g; id -un; echo $HOME; pwd; cat /proc/self/uid_map");
    let first = first.elapsed();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], user.uid.to_string(), "{out}");
    assert_eq!(lines[1], user.gid.to_string(), "{out}");
    assert_eq!(lines[2], user.name, "{out}");
    assert_eq!(lines[3..5], ["/", "/"], "HOME is the working dir: {out}");
    let map: Vec<Vec<&str>> = lines[5..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let (u, after) = (user.uid.to_string(), (user.uid + 1).to_string());
    let rest = (65537 - user.uid - 1).to_string();
    assert_eq!(
        map,
        [
            vec!["0", "1", u.as_str()],
            vec![u.as_str(), "0", "1"],
            vec![after.as_str(), after.as_str(), rest.as_str()]
        ],
        "podman's keep-id map: {out}"
    );
    let again = Instant::now();
    let out = run(
        "stat -c %u:%g /bin/busybox /etc/passwd / /home/u; grep \"^$(id -un):\" /etc/passwd /etc/group",
    );
    eprintln!(
        "keep-id: first run (layer copy) {first:?}, second {:?}",
        again.elapsed()
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..4],
        ["0:0", "0:0", "0:0", "1000:100"],
        "owners as the image says: {out}"
    );
    assert_eq!(
        lines[4],
        format!(
            "/etc/passwd:{}:*:{}:{}::/:/bin/sh",
            user.name, user.uid, user.gid
        ),
        "{out}"
    );
    assert!(
        lines[5].starts_with(&format!("/etc/group:{}:x:{}:", user.name, user.gid)),
        "{out}"
    );
    let layers = user.home.join(".local/share/berth/layers");
    let copies: Vec<PathBuf> = fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_dir(e.path().join("idmap")).ok())
        .flat_map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "one copy per layer and mapping: {copies:?}"
    );
    let busybox = fs::metadata(copies[0].join("bin/busybox")).unwrap();
    assert_eq!(
        busybox.uid(),
        user.subuid,
        "the image's 0 is the container's 0 (subuid)"
    );

    // -u picks another user: here the image's root
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "--userns",
        "keep-id",
        "-u",
        "0",
        "bb",
        "id",
        "-u",
    ];
    assert_eq!(user.ok(&args).trim(), "0");

    // what the container writes to a bind of the user's home is the user's on the host
    let shared = user.home.join("kept");
    fs::create_dir(&shared).unwrap();
    user.give(&shared);
    let volume = format!("{}:/x", shared.display());
    let id = user.ok(&[
        "run",
        "-d",
        "--name",
        "kid",
        "--network",
        "none",
        "--userns",
        "keep-id",
        "-v",
        &volume,
        "bb",
        "sh",
        "-c",
        "touch /x/made; sleep 1000",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let made = shared.join("made");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !made.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let meta = fs::metadata(&made).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (user.uid, user.gid),
        "the user's, not a subuid"
    );

    // exec joins the container's user namespace: the same ids, the same map
    let out = user.ok(&[
        "exec",
        "kid",
        "sh",
        "-c",
        "id -u; id -un; head -1 /proc/self/uid_map",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        [user.uid.to_string(), user.name.clone()],
        "{out}"
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "1", &user.uid.to_string()],
        "{out}"
    );

    // what leaves the container has owners as the container sees them, not as they are
    // stored (its root is the user's first subuid there): cp's tar, export, commit
    user.ok(&[
        "exec",
        "-u",
        "0",
        "kid",
        "sh",
        "-c",
        "echo r > /etc/rootfile",
    ]);
    user.ok(&["exec", "kid", "sh", "-c", "echo u > /tmp/userfile"]);
    let own = format!("{}/{}", user.uid, user.gid);
    let listing = |args: &[&str]| -> String {
        let out = user.berth(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let tar = dir.path().join("out.tar");
        fs::write(&tar, &out.stdout).unwrap();
        let list = Command::new("tar")
            .args(["--numeric-owner", "-tvf", tar.to_str().unwrap()])
            .output()
            .unwrap();
        text(&list.stdout)
    };
    let owner_of = |list: &str, name: &str| -> String {
        list.lines()
            .find(|l| l.ends_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("{name} not in {list}"))
            .to_string()
    };
    let cp = listing(&["cp", "kid:/etc/rootfile", "-"]);
    assert_eq!(owner_of(&cp, "rootfile"), "0/0", "{cp}");
    // and what cp puts in is the container's root's, as docker's cp gives it
    let host_file = user.home.join("from-host");
    fs::write(&host_file, "h").unwrap();
    user.give(&host_file);
    user.ok(&["cp", host_file.to_str().unwrap(), "kid:/etc/from-host"]);
    let put = user.ok(&["exec", "kid", "stat", "-c", "%u:%g", "/etc/from-host"]);
    assert_eq!(put.trim(), "0:0");
    // a tar stream keeps its owners, as the container names them
    let src = dir.path().join("tarsrc");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("fromtar"), "t").unwrap();
    let in_tar = dir.path().join("in.tar");
    let made = Command::new("tar")
        .args(["--numeric-owner", "--owner=1000", "--group=100", "-C"])
        .args([
            src.to_str().unwrap(),
            "-cf",
            in_tar.to_str().unwrap(),
            "fromtar",
        ])
        .status()
        .unwrap();
    assert!(made.success());
    user.give(&in_tar);
    let out = user
        .command(&user.berth, &["cp", "-", "kid:/tmp"])
        .stdin(fs::File::open(&in_tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let put = user.ok(&["exec", "kid", "stat", "-c", "%u:%g", "/tmp/fromtar"]);
    assert_eq!(put.trim(), "1000:100");
    user.ok(&["stop", "-t", "0", "kid"]);
    let export = listing(&["export", "kid"]);
    assert_eq!(owner_of(&export, "bin/busybox"), "0/0", "{export}");
    assert_eq!(owner_of(&export, "etc/rootfile"), "0/0", "{export}");
    assert_eq!(owner_of(&export, "tmp/userfile"), own, "{export}");
    user.ok(&["commit", "kid", "kidimg"]);
    let committed = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "kidimg",
        "stat",
        "-c",
        "%u:%g",
        "/etc/rootfile",
        "/tmp/userfile",
    ]);
    assert_eq!(
        committed.lines().collect::<Vec<_>>(),
        ["0:0".to_string(), own.replace('/', ":")],
        "{committed}"
    );
    user.ok(&["rmi", "kidimg"]);

    // rm leaves nothing; rmi takes the shifted copies with the layer
    user.ok(&["rm", "-f", "kid"]);
    assert_eq!(user.ok(&["ps", "-aq"]).trim(), "");
    let containers = user.home.join(".local/share/berth/containers");
    let left = || -> Vec<String> {
        fs::read_dir(&containers)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64)
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(left().is_empty(), "container dirs left: {:?}", left());
    assert!(user.mounts_naming("berth/containers").is_empty());
    let procs = user.processes();
    assert!(
        procs.iter().all(|p| p.ends_with("berth-userns")),
        "only the holder is left: {procs:?}"
    );
    user.ok(&["rmi", "bb"]);
    assert!(copies.iter().all(|c| !c.exists()), "rmi removed the copies");
    drop(dir);
}

/// Root's containers have the host's ids: keep-id is refused with podman's words.
#[test]
fn root_is_refused_keep_id() {
    let Some((dir, _user, tar)) = user_with_rootfs("root_is_refused_keep_id") else {
        return;
    };
    let root = dir.path().join("root-store");
    let runroot = dir.path().join("root-run");
    let berth = |args: &[&str]| {
        Command::new(BERTH)
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = berth(&["import", tar.to_str().unwrap(), "bb"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns",
        "keep-id",
        "bb",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("--userns") && err.contains("keep-id is only supported in rootless mode"),
        "{err}"
    );
    assert!(
        berth(&["ps", "-aq"]).stdout.is_empty(),
        "no container was made"
    );
}
