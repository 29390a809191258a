//! Escapes that must fail: each test tries a known container-breakout attack for real, on a
//! real container, and checks the secure outcome on the host.
//!
//! - CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe (a private copy
//!   of the runtime plays the victim; its bytes are compared before and after).
//! - CVE-2021-30465: mount destinations that are, or race to become, symlinks out of the
//!   rootfs.
//! - CVE-2024-21626: a working directory through a leaked descriptor; descriptors that reach
//!   container processes.
//! - CVE-2025-31133: /dev/null replaced by a symlink to a /proc file while paths are masked.
//! - CVE-2025-52565: /dev/console and /dev/pts/ptmx entries swapped for something else.
//! - CVE-2025-52881: mounts that try to redirect the runtime's /proc writes.
//! - masked and read-only paths, the capability bounding set, no_new_privs, the devices
//!   cgroup, docker's default seccomp profile, and an AppArmor profile on a host without
//!   AppArmor.
//!
//! A test whose attack succeeds is a security bug: it stays, asserting the secure outcome,
//! and is marked `#[ignore = "security bug: ..."]` until the defence is fixed.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::security::*;
use common::*;
use serde_json::json;

/// Writes an executable file (mode 0755).
fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Waits until `path` exists and contains `text`.
fn wait_for_text(path: &Path, text: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        fs::read_to_string(path).is_ok_and(|t| t.contains(text))
    })
    .is_some()
}

/// `key=value` lines of a container's output.
fn value<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        l.trim()
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(str::trim)
    })
}

#[track_caller]
fn expect_value(out: &Out, key: &str, want: &str) {
    assert_eq!(
        value(&out.stdout, key),
        Some(want),
        "{key} should be {want}:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// CVE-2019-5736: the runtime binary through /proc/<pid>/exe
// ---------------------------------------------------------------------------------------

/// The attacker inside the container (its init, pid 1): over and over, it opens the
/// /proc/<pid>/exe of every other process it can see; whatever is not busybox is logged, and
/// then it tries to reopen that descriptor for writing through /proc/self/fd/7 (retrying
/// while the binary is busy, as the exploit waits for the runtime to exit) and to append to
/// it. Log lines: `open PID EXE`, then `WROTE`, `write-refused` or `reopen-refused`.
const EXE_HUNTER: &str = r#"exec 2>/dev/null
: > /log
while [ ! -e /stop ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] && continue
    command exec 7<"$d/exe" || continue
    e=$(readlink /proc/self/fd/7)
    case "$e" in /bin/busybox) exec 7<&-; continue;; esac
    echo "open $p $e" >> /log
    i=0
    while [ $i -lt 300 ]; do
      if command exec 8>>/proc/self/fd/7; then
        if echo '#berth-cve-2019-5736' >&8; then echo "WROTE $p $e" >> /log; else echo "write-refused $p $e" >> /log; fi
        exec 8>&-
        break
      fi
      i=$((i+1)); usleep 10000
    done
    [ $i -ge 300 ] && echo "reopen-refused $p $e" >> /log
    exec 7<&-
  done
done
echo hunter-done >> /log
exec sleep 1000"#;

/// A script whose interpreter is /proc/self/exe: the trick that made runc run itself inside
/// the container.
const SELF_EXE_SCRIPT: &str = "#!/proc/self/exe\n";

/// Stops the hunter, kills and deletes the container through the copy, and returns the log.
fn stop_hunter(runtime: &RuntimeCopy, env: &TestEnv, c: &Container, rootfs: &Path) -> String {
    fs::write(rootfs.join("stop"), "").unwrap();
    wait_for_text(&rootfs.join("log"), "hunter-done", Duration::from_secs(10));
    let log = fs::read_to_string(rootfs.join("log")).unwrap_or_default();
    runtime.run(env, &["kill", &c.id, "KILL"]);
    wait_until(STATUS_TIMEOUT, || {
        runtime
            .run(env, &["state", &c.id])
            .stdout
            .contains("stopped")
    });
    runtime.run(env, &["delete", "--force", &c.id]);
    log
}

/// Asserts that the hunter never got hold of the runtime binary and that its bytes are the
/// same as before.
#[track_caller]
fn assert_runtime_untouched(runtime: &RuntimeCopy, log: &str) {
    let name = runtime.path.file_name().unwrap().to_string_lossy();
    let reached: Vec<&str> = log.lines().filter(|l| l.contains(&*name)).collect();
    let changed = runtime.changed();
    assert!(
        reached.is_empty() && changed.is_none(),
        "the container reached the runtime binary through /proc/<pid>/exe:\n  {}\n  binary: {}\n  whole log:\n{log}",
        reached.join("\n  "),
        changed.unwrap_or_else(|| "unchanged".into())
    );
}

#[test]
fn cve_2019_5736_a_proc_self_exe_script_never_runs_the_runtime() {
    let Some(env) = TestEnv::new() else { return };
    let runtime = RuntimeCopy::new(&env);
    let mut bundle = env.bundle();
    docker_like(&mut bundle, &[]);
    write_exec(&bundle.rootfs.join("evil"), SELF_EXE_SCRIPT);

    // As the container's program: the interpreter is whatever /proc/self/exe is at the
    // exec, never the runtime (which would print its usage error and exit 2).
    bundle.args(&["/evil"]);
    bundle.save();
    let id = env.new_id();
    let io = env.io_files();
    let dir = bundle.dir.to_str().unwrap().to_string();
    let out = run_to_files(
        &mut runtime.command(&env, &["run", "--bundle", &dir, &id]),
        &io,
        COMMAND_TIMEOUT,
    );
    assert_eq!(
        out.code, 127,
        "the trampoline ends a self-exe script with 127:\n{out}"
    );
    assert!(
        !out.all().contains("Usage") && !out.all().contains("berth"),
        "the runtime ran inside the container:\n{out}"
    );

    // As an exec'd program of a running container.
    bundle.args(&["sleep", "1000"]);
    let (created, c) = runtime.create(&env, &bundle, &[]);
    created.ok();
    runtime.run(&env, &["start", &c.id]).ok();
    let out = runtime.run(&env, &["exec", &c.id, "/evil"]);
    assert_eq!(out.code, 127, "{out}");
    assert!(!out.all().contains("Usage"), "{out}");
    // And through a symlink to it and as `sh /evil`'s interpreter-less twin.
    let out = runtime.run(
        &env,
        &["exec", &c.id, "sh", "-c", "ln -s /evil /evil2; /evil2"],
    );
    assert_eq!(out.code, 127, "{out}");
    runtime.run(&env, &["kill", &c.id, "KILL"]);
    c.wait_stopped();
    runtime.run(&env, &["delete", &c.id]).ok();
    if let Some(change) = runtime.changed() {
        panic!("the runtime binary was modified: {change}");
    }
}

/// The hunter runs while the host execs into the container again and again (a plain
/// program and the self-exe script, alternately).
fn exec_race(extra_caps: &[&str], seccomp: Option<serde_json::Value>) {
    let Some(env) = TestEnv::new() else { return };
    let runtime = RuntimeCopy::new(&env);
    let mut bundle = env.bundle();
    docker_like(&mut bundle, extra_caps);
    if let Some(profile) = seccomp {
        bundle.linux()["seccomp"] = profile;
    }
    write_exec(&bundle.rootfs.join("evil"), SELF_EXE_SCRIPT);
    bundle.sh(EXE_HUNTER);
    let (created, c) = runtime.create(&env, &bundle, &[]);
    created.ok();
    runtime.run(&env, &["start", &c.id]).ok();
    assert!(wait_for_text(
        &bundle.rootfs.join("log"),
        "",
        STATUS_TIMEOUT
    ));
    for i in 0..60 {
        let program = if i % 2 == 0 { "true" } else { "/evil" };
        let out = runtime.run(&env, &["exec", &c.id, program]);
        if program == "true" {
            out.ok();
        } else if i == 1 {
            eprintln!("exec /evil: {out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Give a hunter that holds a descriptor time to write once no runtime runs.
    std::thread::sleep(Duration::from_secs(4));
    let log = stop_hunter(&runtime, &env, &c, &bundle.rootfs);
    eprintln!(
        "hunter log ({} lines):\n{}",
        log.lines().count(),
        log.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    assert_runtime_untouched(&runtime, &log);
}

#[test]
fn cve_2019_5736_exec_never_exposes_the_runtime_binary() {
    exec_race(&[], None);
}

#[test]
fn cve_2019_5736_exec_never_exposes_the_runtime_binary_to_cap_sys_ptrace() {
    exec_race(&["CAP_SYS_PTRACE"], None);
}

/// Docker's default profile without execveat (as older or hand-written profiles are): the
/// exec trampoline cannot run, and the runtime falls back to a plain execve of the program.
/// If that program is the self-exe script, its interpreter would be the runtime binary: such
/// a profile makes the runtime run from its sealed copy. (A dynamically linked runtime is
/// also kept out of a busybox rootfs by its missing ELF interpreter, ENOENT; the static
/// build is not, nor is either in a rootfs with glibc.)
#[test]
fn cve_2019_5736_exec_never_exposes_the_runtime_binary_without_execveat() {
    let mut profile = docker_seccomp_profile();
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "execveat");
        }
    }
    exec_race(&[], Some(profile));
}

/// A second container joins the hunter's pid namespace (a pod); its init waits for `start`
/// as long as we like, in the hunter's view.
fn shared_pid_namespace_race(extra_caps: &[&str]) {
    let Some(env) = TestEnv::new() else { return };
    let runtime = RuntimeCopy::new(&env);
    let mut hunter = env.bundle();
    docker_like(&mut hunter, extra_caps);
    hunter.sh(EXE_HUNTER);
    let (created, a) = runtime.create(&env, &hunter, &[]);
    created.ok();
    runtime.run(&env, &["start", &a.id]).ok();
    assert!(wait_for_text(
        &hunter.rootfs.join("log"),
        "",
        STATUS_TIMEOUT
    ));
    let pid = a.pid();

    let mut second = env.bundle();
    docker_like(&mut second, &[]);
    second.namespace("pid", Some(&format!("/proc/{pid}/ns/pid")));
    second.args(&["sleep", "1000"]);
    let (created, b) = runtime.create(&env, &second, &[]);
    created.ok();
    // The hunter scans many times a second; the created init waits here.
    std::thread::sleep(Duration::from_secs(2));
    runtime.run(&env, &["start", &b.id]).ok();
    std::thread::sleep(Duration::from_secs(4));
    runtime.run(&env, &["kill", &b.id, "KILL"]);
    let log = stop_hunter(&runtime, &env, &a, &hunter.rootfs);
    runtime.run(&env, &["delete", "--force", &b.id]);
    eprintln!("hunter log:\n{log}");
    assert_runtime_untouched(&runtime, &log);
}

#[test]
fn cve_2019_5736_a_created_init_in_a_shared_pid_namespace_is_unreachable() {
    shared_pid_namespace_race(&[]);
}

#[test]
fn cve_2019_5736_a_created_init_in_a_shared_pid_namespace_is_unreachable_to_cap_sys_ptrace() {
    shared_pid_namespace_race(&["CAP_SYS_PTRACE"]);
}

// ---------------------------------------------------------------------------------------
// CVE-2021-30465: symlinks in mount destinations
// ---------------------------------------------------------------------------------------

/// A directory of the host that a mount must never land on, with one file.
struct HostMarker {
    dir: PathBuf,
}

impl HostMarker {
    fn new(env: &TestEnv) -> Self {
        let dir = env.new_dir("host-marker");
        fs::write(dir.join("host-file"), "host").unwrap();
        HostMarker { dir }
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Mount points (in `mounts`) at or below the marker.
    fn mounts_in(&self, mounts: &[MountInfo]) -> Vec<String> {
        let prefix = format!("{}/", self.path());
        mounts
            .iter()
            .map(|m| m.mount_point.clone())
            .filter(|p| p == self.path() || p.starts_with(&prefix))
            .collect()
    }

    /// The host sees no mount on the marker and its content is as made.
    #[track_caller]
    fn assert_untouched(&self) {
        let mounts = self.mounts_in(&host_mountinfo());
        assert!(mounts.is_empty(), "mounted on the host: {mounts:?}");
        let names: Vec<String> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["host-file"], "the marker's content changed");
        assert_eq!(
            fs::read_to_string(self.dir.join("host-file")).unwrap(),
            "host"
        );
    }
}

/// Checks the mountinfo that the createContainer hook saw: nothing mounted on the marker,
/// nothing new in the test's directory outside the rootfs, and no second mount on `/`.
#[track_caller]
fn assert_mounts_inside(env: &TestEnv, rootfs: &Path, marker: &HostMarker, mountinfo: &str) {
    let mounts = parse_mountinfo(mountinfo);
    let on_marker = marker.mounts_in(&mounts);
    assert!(
        on_marker.is_empty(),
        "a mount landed on the host marker: {on_marker:?}"
    );
    let test_dir = format!("{}/", env.dir().display());
    let rootfs = format!("{}", rootfs.display());
    let outside: Vec<&str> = mounts
        .iter()
        .map(|m| m.mount_point.as_str())
        .filter(|p| {
            p.starts_with(&test_dir) && *p != rootfs && !p.starts_with(&format!("{rootfs}/"))
        })
        .collect();
    assert!(outside.is_empty(), "mounts outside the rootfs: {outside:?}");
    let roots = |ms: &[MountInfo]| ms.iter().filter(|m| m.mount_point == "/").count();
    assert!(
        roots(&mounts) <= roots(&host_mountinfo()),
        "a mount landed on the host's /:\n{mountinfo}"
    );
}

#[test]
fn cve_2021_30465_a_symlinked_mount_destination_stays_in_the_rootfs() {
    let Some(env) = TestEnv::new() else { return };
    let marker = HostMarker::new(&env);
    let payload = env.new_dir("payload");
    fs::write(payload.join("payload-file"), "payload").unwrap();
    let marker_name = marker
        .dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // Each link, where it leads on the host, and where it leads resolved inside the rootfs.
    for (link, target, inside) in [
        (
            "evil-abs",
            marker.path().to_string(),
            marker.path().to_string(),
        ),
        // From rootfs/: .. is the bundle, ../.. the test directory that holds the marker.
        (
            "evil-rel",
            format!("../../{marker_name}"),
            format!("/{marker_name}"),
        ),
        (
            "evil-deep",
            format!("../../../../../../../../..{}", marker.path()),
            marker.path().to_string(),
        ),
    ] {
        for (kind, mount) in [
            ("tmpfs", json!({"type": "tmpfs", "source": "tmpfs"})),
            (
                "bind",
                json!({"type": "bind", "source": payload.to_str().unwrap(), "options": ["rbind"]}),
            ),
        ] {
            for decoy in [false, true] {
                let mut bundle = env.bundle();
                symlink(&target, bundle.rootfs.join(link)).unwrap();
                if decoy {
                    // Where the link leads when resolved inside the rootfs.
                    fs::create_dir_all(bundle.rootfs.join(inside.trim_start_matches('/'))).unwrap();
                }
                let mut m = mount.clone();
                m["destination"] = json!(format!("/{link}"));
                bundle.mount(m);
                let info = env.dir().join(format!("mountinfo-{link}-{kind}-{decoy}"));
                bundle.hooks("createContainer", mountinfo_hook(&info));
                bundle.sh(&format!("ls /{link}"));
                let out = env.run(&bundle);
                let what = format!("{link} -> {target} ({kind}, decoy {decoy})");
                if let Ok(text) = fs::read_to_string(&info) {
                    assert_mounts_inside(&env, &bundle.rootfs, &marker, &text);
                }
                if decoy {
                    // Resolved inside the rootfs, the mount lands in the decoy.
                    out.ok();
                    let text = fs::read_to_string(&info).unwrap();
                    let inside = format!("{}{inside}", bundle.rootfs.display());
                    assert!(
                        parse_mountinfo(&text)
                            .iter()
                            .any(|m| m.mount_point == inside),
                        "{what}: no mount at {inside}:\n{text}"
                    );
                    if kind == "bind" {
                        assert!(out.stdout.contains("payload-file"), "{what}: {out}");
                    }
                } else {
                    assert!(!out.stdout.contains("host-file"), "{what}: {out}");
                }
                marker.assert_untouched();
            }
        }
    }
}

#[test]
fn cve_2021_30465_a_symlink_exchange_race_never_mounts_outside() {
    let Some(env) = TestEnv::new() else { return };
    let marker = HostMarker::new(&env);
    let payload = env.new_dir("payload");
    fs::write(payload.join("payload-file"), "payload").unwrap();
    let mut bundle = env.bundle();
    let marker_name = marker
        .dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    // Two races: an absolute and a relative symlink, each exchanged with a real directory.
    let mut swappers = Vec::new();
    for (dir, target) in [
        ("race-abs", marker.path().to_string()),
        // From rootfs/race-rel: .. is the rootfs, ../.. the bundle, ../../.. the test dir.
        ("race-rel", format!("../../../{marker_name}")),
    ] {
        let base = bundle.rootfs.join(dir);
        fs::create_dir_all(base.join("dst")).unwrap();
        symlink(&target, base.join("dst-link")).unwrap();
        swappers.push(Swapper::start(base.join("dst"), base.join("dst-link")));
    }
    bundle.mount(json!({"destination": "/race-abs/dst", "type": "tmpfs", "source": "tmpfs"}));
    bundle.mount(json!({"destination": "/race-rel/dst", "type": "bind",
        "source": payload.to_str().unwrap(), "options": ["rbind"]}));
    let (mut created, mut failed) = (0, 0);
    for i in 0..30 {
        let info = env.dir().join(format!("mountinfo-race-{i}"));
        bundle.hooks("createContainer", mountinfo_hook(&info));
        let (out, c) = env.try_create(&bundle, &[]);
        if let Ok(text) = fs::read_to_string(&info) {
            assert_mounts_inside(&env, &bundle.rootfs, &marker, &text);
        }
        if out.success() {
            created += 1;
            c.delete_force().ok();
        } else {
            failed += 1;
        }
        marker.assert_untouched();
    }
    let swaps: Vec<u64> = swappers.iter_mut().map(Swapper::stop).collect();
    eprintln!("race: {created} creates succeeded, {failed} failed, exchanges {swaps:?}");
    assert!(swaps.iter().all(|s| *s > 0), "the swapper did not run");
    marker.assert_untouched();
}

/// A static symlink in the image at a bind's destination, leading to the container's root
/// (a mount point) or to a directory of the image: the `ro` of the bind must hold.
#[test]
fn cve_2021_30465_a_symlinked_destination_never_drops_a_read_only_option() {
    let Some(env) = TestEnv::new() else { return };
    let secret = env.new_dir("host-secret");
    fs::write(secret.join("secret-file"), "secret").unwrap();
    let secret_path = secret.to_str().unwrap().to_string();
    for target in ["/", "/etc", "../.."] {
        let mut bundle = env.bundle();
        fs::create_dir_all(bundle.rootfs.join("vol")).unwrap();
        symlink(target, bundle.rootfs.join("vol/ro")).unwrap();
        bundle.mount(
            json!({"destination": "/vol/ro", "type": "bind", "source": secret_path,
            "options": ["rbind", "ro", "nosuid"]}),
        );
        let (out, c) = env.try_create(&bundle, &[]);
        if !out.success() {
            eprintln!(
                "vol/ro -> {target}: create failed (acceptable): {}",
                out.stderr.trim()
            );
            continue;
        }
        let mountinfo = fs::read_to_string(format!("/proc/{}/mountinfo", c.pid())).unwrap();
        let binds: Vec<String> = parse_mountinfo(&mountinfo)
            .into_iter()
            .filter(|m| m.root == secret_path)
            .map(|m| format!("{} {}", m.mount_point, m.options))
            .collect();
        c.delete_force().ok();
        assert!(
            !binds.is_empty(),
            "vol/ro -> {target}: the bind is missing:\n{mountinfo}"
        );
        for b in &binds {
            let options = b.split(' ').nth(1).unwrap_or("");
            assert!(
                options.split(',').any(|o| o == "ro"),
                "vol/ro -> {target}: the read-only bind of {secret_path} came out writable: {binds:?}"
            );
        }
    }
}

/// The same race against the options of a bind: a `ro` bind of a host directory must be
/// read-only in the container whatever the destination turned into after the bind (the
/// options are applied in a second step).
#[test]
fn cve_2021_30465_a_symlink_exchange_race_never_drops_a_read_only_option() {
    let Some(env) = TestEnv::new() else { return };
    let secret = env.new_dir("host-secret");
    fs::write(secret.join("secret-file"), "secret").unwrap();
    let secret_path = secret.to_str().unwrap().to_string();
    let mut bundle = env.bundle();
    let base = bundle.rootfs.join("vol");
    fs::create_dir_all(base.join("ro")).unwrap();
    // A symlink to the container's root, which is a mount point (the rootfs bind).
    symlink("/", base.join("ro-link")).unwrap();
    let mut swapper = Swapper::start(base.join("ro"), base.join("ro-link"));
    bundle.mount(
        json!({"destination": "/vol/ro", "type": "bind", "source": secret_path,
        "options": ["rbind", "ro", "nosuid"]}),
    );
    let (mut created, mut failed) = (0, 0);
    let mut writable = Vec::new();
    for _ in 0..60 {
        let (out, c) = env.try_create(&bundle, &[]);
        if !out.success() {
            failed += 1;
            continue;
        }
        created += 1;
        let mountinfo = fs::read_to_string(format!("/proc/{}/mountinfo", c.pid())).unwrap();
        for m in parse_mountinfo(&mountinfo) {
            if m.root == secret_path && !m.options.split(',').any(|o| o == "ro") {
                writable.push(format!("{} {} {}", m.mount_point, m.root, m.options));
            }
        }
        c.delete_force().ok();
    }
    let swaps = swapper.stop();
    eprintln!("ro race: {created} created, {failed} failed, {swaps} exchanges");
    assert!(swaps > 0, "the swapper did not run");
    assert!(
        writable.is_empty(),
        "the read-only bind of {secret_path} came out writable: {writable:?}"
    );
}

/// A container without a mount namespace of its own is confined to its rootfs by chroot;
/// a process exec'd into it must be confined the same way, not run in the host's root.
#[test]
fn exec_into_a_container_without_a_mount_namespace_stays_in_its_rootfs() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.without_namespace("mount");
    bundle.without_namespace("cgroup");
    bundle.config["mounts"] = json!([]);
    bundle.linux()["maskedPaths"] = json!([]);
    bundle.linux()["readonlyPaths"] = json!([]);
    fs::write(bundle.rootfs.join("container-root-marker"), "").unwrap();
    let probe = "test -e /container-root-marker && echo root=container || echo root=host";
    bundle.sh(&format!("{probe}; exec sleep 1000"));
    let c = env.create_started(&bundle);
    c.wait_output("root=", STATUS_TIMEOUT);
    assert!(
        c.stdout().contains("root=container"),
        "the init: {}",
        c.stdout()
    );
    let out = env.runtime(&["exec", &c.id, "/bin/sh", "-c", probe]);
    c.kill("KILL").ok();
    out.ok();
    expect_value(&out, "root", "container");
}

/// With --no-pivot the rootfs is moved over / and the init chroots; a process exec'd into
/// the container must land in the rootfs as well.
#[test]
fn exec_into_a_no_pivot_container_stays_in_its_rootfs() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    fs::write(bundle.rootfs.join("container-root-marker"), "").unwrap();
    let probe = "test -e /container-root-marker && echo root=container || echo root=host";
    bundle.sh(&format!("{probe}; exec sleep 1000"));
    let (out, c) = env.try_create(&bundle, &["--no-pivot"]);
    out.ok();
    c.start().ok();
    c.wait_output("root=", STATUS_TIMEOUT);
    assert!(
        c.stdout().contains("root=container"),
        "the init: {}",
        c.stdout()
    );
    let out = env.runtime(&["exec", &c.id, "/bin/sh", "-c", probe]);
    c.kill("KILL").ok();
    out.ok();
    expect_value(&out, "root", "container");
}

// ---------------------------------------------------------------------------------------
// CVE-2024-21626: leaked descriptors
// ---------------------------------------------------------------------------------------

/// What `ls -a` of the container's `/` shows (to recognize a cwd inside the container).
fn root_listing(env: &TestEnv) -> String {
    let out = env.run_sh("ls -a /");
    out.ok();
    out.stdout
}

#[test]
fn cve_2024_21626_a_cwd_through_a_leaked_descriptor_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let root = root_listing(&env);
    for n in 3..=10 {
        let mut bundle = env.bundle();
        docker_like(&mut bundle, &[]);
        bundle.process()["cwd"] = json!(format!("/proc/self/fd/{n}"));
        bundle.sh("echo CWD-LISTING; ls -a");
        let (out, c) = env.try_create(&bundle, &[]);
        if out.success() {
            // Accepted only if the cwd is the container's own.
            c.start().ok();
            c.wait_stopped();
            let listing = c.stdout();
            let listing = listing.split("CWD-LISTING\n").nth(1).unwrap_or("");
            assert_eq!(
                listing, root,
                "cwd /proc/self/fd/{n} gave a foreign directory"
            );
        } else {
            out.mentions(&["cwd"]);
            env.assert_nothing_left(&c.id);
        }
    }
}

#[test]
fn cve_2024_21626_exec_with_a_cwd_through_a_leaked_descriptor_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    let root = root_listing(&env);
    let mut bundle = env.bundle();
    docker_like(&mut bundle, &[]);
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = env.runtime(&["exec", "--cwd", &cwd, &c.id, "ls", "-a"]);
        if out.success() {
            assert_eq!(out.stdout, root, "exec cwd {cwd} gave a foreign directory");
        }
        // The same through --process.
        let process = env.dir().join(format!("process-{n}.json"));
        let mut p = bundle.config["process"].clone();
        p["cwd"] = json!(cwd);
        p["args"] = json!(["ls", "-a"]);
        fs::write(&process, serde_json::to_vec(&p).unwrap()).unwrap();
        let out = env.runtime(&["exec", "--process", process.to_str().unwrap(), &c.id]);
        if out.success() {
            assert_eq!(
                out.stdout, root,
                "exec --process cwd {cwd} gave a foreign directory"
            );
        }
    }
    c.kill("KILL").ok();
}

/// Runs the runtime through sh so that fds 3 and 4 are open in it.
fn runtime_with_two_fds(env: &TestEnv, args: &[&str]) -> Out {
    let input = env.dir().join("fd3-input");
    let output = env.dir().join("fd4-output");
    fs::write(&input, "fd3\n").unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!(
            "exec \"$0\" \"$@\" 3<'{}' 4>>'{}'",
            input.display(),
            output.display()
        ))
        .arg(BIN)
        .arg("--root")
        .arg(env.state_root())
        .args(args)
        .stdin(std::process::Stdio::null());
    run_piped(&mut cmd, COMMAND_TIMEOUT)
}

/// `ls /proc/self/fd` as one line.
const LS_FDS: &str = "ls /proc/self/fd | tr '\\n' ' '";

#[test]
fn cve_2024_21626_only_stdio_and_preserved_fds_reach_container_processes() {
    let Some(env) = TestEnv::new() else { return };
    // The init: 0 1 2 and ls's own directory.
    let out = env.run_sh(LS_FDS);
    out.ok();
    assert_eq!(out.stdout.trim(), "0 1 2 3", "{out}");

    let mut bundle = env.bundle();
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    // exec'd processes: only stdio.
    let out = env.runtime(&["exec", &c.id, "sh", "-c", LS_FDS]);
    out.ok();
    assert_eq!(out.stdout.trim(), "0 1 2 3", "{out}");
    // The runtime's caller has fds 3 and 4 open: without --preserve-fds none arrives...
    let out = runtime_with_two_fds(&env, &["exec", &c.id, "sh", "-c", LS_FDS]);
    out.ok();
    assert_eq!(out.stdout.trim(), "0 1 2 3", "{out}");
    // ...with --preserve-fds 1 only fd 3, with 2 both.
    let out = runtime_with_two_fds(
        &env,
        &[
            "exec",
            "--preserve-fds",
            "1",
            &c.id,
            "sh",
            "-c",
            &format!("{LS_FDS}; cat <&3"),
        ],
    );
    out.ok();
    assert_eq!(out.lines(), ["0 1 2 3 4 fd3"], "{out}");
    let out = runtime_with_two_fds(
        &env,
        &["exec", "--preserve-fds", "2", &c.id, "sh", "-c", LS_FDS],
    );
    out.ok();
    assert_eq!(out.stdout.trim(), "0 1 2 3 4 5", "{out}");
    // The container's init, seen from the host after exec, holds only stdio.
    let fds: Vec<String> = fs::read_dir(format!("/proc/{}/fd", c.pid()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut fds = fds;
    fds.sort();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "the container's init holds more than stdio"
    );
    c.kill("KILL").ok();
}

// ---------------------------------------------------------------------------------------
// CVE-2025-31133: /dev/null swapped for a symlink while masking
// ---------------------------------------------------------------------------------------

/// Reads and writes masked paths from inside; the writes would reach the host's
/// core_pattern if a mask were a bind of the symlink's target.
const MASK_PROBE: &str = "echo timer=$(wc -c < /proc/timer_list); \
     echo timer_dev=$(stat -c '%t:%T' /proc/timer_list); \
     echo secret=$(wc -c < /secret); \
     echo secret_dev=$(stat -c '%t:%T' /secret); \
     echo berth-31133-canary > /proc/timer_list; \
     echo berth-31133-canary > /secret; \
     echo timer_after=$(wc -c < /proc/timer_list); \
     echo secret_after=$(wc -c < /secret)";

#[track_caller]
fn assert_masked(out: &Out, guard: &CorePatternGuard) {
    out.ok();
    for (key, want) in [
        ("timer", "0"),
        ("timer_dev", "1:3"),
        ("secret", "0"),
        ("secret_dev", "1:3"),
        ("timer_after", "0"),
        ("secret_after", "0"),
    ] {
        expect_value(out, key, want);
    }
    assert_eq!(guard.changed(), None, "the host's core_pattern was changed");
}

fn dev_null_bundle(env: &TestEnv, own_dev: bool) -> Bundle {
    let mut bundle = env.bundle();
    docker_like(&mut bundle, &[]);
    if own_dev {
        // No tmpfs on /dev: the rootfs's own dev/ is used.
        without_mount(&mut bundle, "/dev");
    }
    fs::write(bundle.rootfs.join("secret"), "secret").unwrap();
    bundle.linux()["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/secret"));
    bundle.sh(MASK_PROBE);
    bundle
}

#[test]
fn cve_2025_31133_a_dev_null_symlink_in_the_image_does_not_unmask() {
    let Some(env) = TestEnv::new() else { return };
    let guard = CorePatternGuard::new();
    for target in [
        CORE_PATTERN,
        "/proc/sysrq-trigger",
        "../proc/sys/kernel/core_pattern",
    ] {
        let bundle = dev_null_bundle(&env, true);
        symlink(target, bundle.rootfs.join("dev/null")).unwrap();
        let out = env.run(&bundle);
        assert_masked(&out, &guard);
    }
}

#[test]
fn cve_2025_31133_dev_null_swapped_right_before_masking() {
    let Some(env) = TestEnv::new() else { return };
    let guard = CorePatternGuard::new();
    for own_dev in [true, false] {
        let mut bundle = dev_null_bundle(&env, own_dev);
        // A createContainer hook runs in the container's mount namespace after /dev is
        // set up and just before the masks: there it swaps /dev/null for a symlink.
        let null = bundle.rootfs.join("dev/null");
        bundle.hooks(
            "createContainer",
            json!([{"path": "/bin/sh", "args": ["sh", "-c",
                format!("rm -f '{0}' && ln -s {CORE_PATTERN} '{0}'", null.display())]}]),
        );
        let out = env.run(&bundle);
        assert_masked(&out, &guard);
    }
}

// ---------------------------------------------------------------------------------------
// CVE-2025-52565: /dev/console and the pty
// ---------------------------------------------------------------------------------------

/// What the terminal process reports: /dev/console's and stdin's device numbers.
const CONSOLE_PROBE: &str = "echo console=$(stat -L -c '%t:%T' /dev/console); \
     echo stdin=$(stat -L -c '%t:%T' /proc/self/fd/0); \
     echo tty=$(tty)";

/// create with a terminal and a console socket, start, and the terminal's output.
fn run_with_console(env: &TestEnv, bundle: &Bundle) -> (Out, ConsoleOutcome) {
    let console = ConsoleReceiver::new(env);
    let (out, c) = env.try_create(bundle, &["--console-socket", console.path_str()]);
    if !out.success() {
        env.assert_nothing_left(&c.id);
        return (out, console.finish(Duration::from_secs(5)));
    }
    c.start().ok();
    c.wait_stopped();
    (out, console.finish(COMMAND_TIMEOUT))
}

#[track_caller]
fn assert_real_console(what: &str, created: &Out, console: &ConsoleOutcome) {
    assert!(
        console.got_master,
        "{what}: no pty master arrived:\n{created}"
    );
    let text = &console.output;
    let console_dev = value(text, "console").unwrap_or("");
    let stdin_dev = value(text, "stdin").unwrap_or("");
    assert!(
        console_dev.starts_with("88:"),
        "{what}: /dev/console is not a pty (major 136): {text:?}"
    );
    assert_eq!(
        console_dev, stdin_dev,
        "{what}: /dev/console is not the process's pty: {text:?}"
    );
    assert!(
        value(text, "tty").is_some_and(|t| t.starts_with("/dev/pts/")),
        "{what}: {text:?}"
    );
}

#[test]
fn cve_2025_52565_dev_console_is_the_pty_whatever_the_image_put_there() {
    let Some(env) = TestEnv::new() else { return };
    let guard = CorePatternGuard::new();
    type Plant = fn(&Path);
    let plants: [(&str, bool, Plant); 6] = [
        ("console symlink to core_pattern, tmpfs /dev", false, |r| {
            symlink(CORE_PATTERN, r.join("dev/console")).unwrap()
        }),
        ("console symlink to core_pattern, image /dev", true, |r| {
            symlink(CORE_PATTERN, r.join("dev/console")).unwrap()
        }),
        ("console symlink to a file of the image", true, |r| {
            fs::write(r.join("etc/console-target"), "image").unwrap();
            symlink("/etc/console-target", r.join("dev/console")).unwrap()
        }),
        ("console is a regular file", true, |r| {
            fs::write(r.join("dev/console"), "image").unwrap()
        }),
        ("pts/0 and pts/ptmx planted under devpts", true, |r| {
            fs::create_dir_all(r.join("dev/pts")).unwrap();
            symlink(CORE_PATTERN, r.join("dev/pts/0")).unwrap();
            symlink("/dev/null", r.join("dev/pts/ptmx")).unwrap()
        }),
        ("ptmx symlink to a file", true, |r| {
            fs::write(r.join("etc/fake-ptmx"), "image").unwrap();
            symlink("/etc/fake-ptmx", r.join("dev/ptmx")).unwrap()
        }),
    ];
    for (what, own_dev, plant) in plants {
        let mut bundle = env.bundle();
        docker_like(&mut bundle, &[]);
        bundle.process()["terminal"] = json!(true);
        if own_dev {
            without_mount(&mut bundle, "/dev");
        }
        plant(&bundle.rootfs);
        bundle.sh(CONSOLE_PROBE);
        let (created, console) = run_with_console(&env, &bundle);
        created.ok();
        assert_real_console(what, &created, &console);
        assert_eq!(
            guard.changed(),
            None,
            "{what}: the host's core_pattern changed"
        );
    }
}

#[test]
fn cve_2025_52565_a_ptmx_that_is_not_devpts_is_refused() {
    let Some(env) = TestEnv::new() else { return };
    type Plant = fn(&Path);
    let plants: [(&str, Plant); 4] = [
        ("symlink to the host's ptmx", |r| {
            symlink("/dev/ptmx", r.join("dev/pts/ptmx")).unwrap()
        }),
        ("regular file", |r| {
            fs::write(r.join("dev/pts/ptmx"), "").unwrap()
        }),
        ("char 5:2 node on the rootfs's filesystem", |r| {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                r.join("dev/pts/ptmx"),
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::from_raw_mode(0o666),
                rustix::fs::makedev(5, 2),
            )
            .unwrap()
        }),
        ("symlink to a pts entry", |r| {
            symlink("/dev/pts/0", r.join("dev/pts/ptmx")).unwrap()
        }),
    ];
    for (what, plant) in plants {
        let mut bundle = env.bundle();
        docker_like(&mut bundle, &[]);
        bundle.process()["terminal"] = json!(true);
        // No devpts and no tmpfs /dev: what is at dev/pts/ptmx comes from the image.
        without_mounts_under(&mut bundle, "/dev");
        fs::create_dir_all(bundle.rootfs.join("dev/pts")).unwrap();
        plant(&bundle.rootfs);
        bundle.sh(CONSOLE_PROBE);
        let (created, console) = run_with_console(&env, &bundle);
        if created.success() {
            // Accepted only with a real pty of a devpts instance.
            assert_real_console(what, &created, &console);
            panic!(
                "{what}: a pty was opened without a devpts mount:\n{}",
                console.output
            );
        }
        created.mentions(&["ptmx"]);
        assert!(
            !console.got_master,
            "{what}: a master was sent although create failed"
        );
    }
}

#[test]
fn cve_2025_52565_exec_tty_refuses_a_ptmx_swapped_by_the_container() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    docker_like(&mut bundle, &[]);
    // The rootfs's own /dev without devpts: the container can change dev/pts/ptmx itself.
    without_mounts_under(&mut bundle, "/dev");
    fs::create_dir_all(bundle.rootfs.join("dev/pts")).unwrap();
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    for (what, swap) in [
        ("symlink", "ln -sf /dev/null /dev/pts/ptmx"),
        ("regular file", "echo x > /dev/pts/ptmx"),
        ("char 5:2 node", "mknod /dev/pts/ptmx c 5 2"),
    ] {
        env.runtime(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            &format!("rm -f /dev/pts/ptmx; {swap}"),
        ])
        .ok();
        let console = ConsoleReceiver::new(&env);
        let out = env.runtime(&[
            "exec",
            "--tty",
            "--console-socket",
            console.path_str(),
            &c.id,
            "sh",
            "-c",
            CONSOLE_PROBE,
        ]);
        let outcome = console.finish(Duration::from_secs(10));
        if out.success() {
            assert_real_console(what, &out, &outcome);
            panic!(
                "{what}: exec --tty got a pty without devpts: {}",
                outcome.output
            );
        }
        out.mentions(&["ptmx"]);
    }
    c.kill("KILL").ok();
}

// ---------------------------------------------------------------------------------------
// CVE-2025-52881: /proc writes redirected by mounts
// ---------------------------------------------------------------------------------------

/// A container's value of a network sysctl, read from the host in its network namespace.
fn container_sysctl(pid: i32, path: &str) -> String {
    let out = host(
        "nsenter",
        &[
            "-t",
            &pid.to_string(),
            "-n",
            "cat",
            &format!("/proc/sys/{path}"),
        ],
    );
    out.ok();
    out.stdout.trim().to_string()
}

#[test]
fn cve_2025_52881_mounts_over_proc_files_do_not_catch_the_runtimes_writes() {
    let Some(env) = TestEnv::new() else { return };
    let guard = CorePatternGuard::new();
    let host_forward = read_trimmed("/proc/sys/net/ipv4/ip_forward");
    // A value the host does not have: a new network namespace starts with the host's.
    let forward = other_than(&host_forward, &["1", "0"]);
    let planted = env.dir().join("planted");
    fs::write(&planted, "planted\n").unwrap();
    for (what, source) in [
        ("a planted file", planted.to_str().unwrap()),
        ("the host's core_pattern", CORE_PATTERN),
    ] {
        for target in ["/proc/sys/net/ipv4/ip_forward", "/proc/self/oom_score_adj"] {
            let mut bundle = env.bundle();
            docker_like(&mut bundle, &[]);
            bundle.mount(
                json!({"destination": target, "type": "bind", "source": source,
                "options": ["bind"]}),
            );
            bundle.linux()["sysctl"] = json!({"net.ipv4.ip_forward": forward});
            bundle.process()["oomScoreAdj"] = json!(123);
            bundle.args(&["sleep", "1000"]);
            let (out, c) = env.try_create(&bundle, &[]);
            let what = format!("{what} over {target}");
            if out.success() {
                let pid = c.pid();
                assert_eq!(
                    container_sysctl(pid, "net/ipv4/ip_forward"),
                    forward,
                    "{what}: the sysctl did not reach the container's network namespace"
                );
                assert_eq!(
                    read_trimmed(format!("/proc/{pid}/oom_score_adj")),
                    "123",
                    "{what}"
                );
                c.delete_force().ok();
            } else {
                eprintln!("{what}: create failed (acceptable): {}", out.stderr.trim());
            }
            assert_eq!(fs::read_to_string(&planted).unwrap(), "planted\n", "{what}");
            assert_eq!(
                guard.changed(),
                None,
                "{what}: the host's core_pattern changed"
            );
            assert_eq!(
                read_trimmed("/proc/sys/net/ipv4/ip_forward"),
                host_forward,
                "{what}"
            );
        }
    }
}

#[test]
fn cve_2025_52881_a_fake_proc_does_not_catch_the_runtimes_writes() {
    let Some(env) = TestEnv::new() else { return };
    let fake = env.new_dir("fake-proc");
    fs::create_dir_all(fake.join("sys/net/ipv4")).unwrap();
    fs::write(fake.join("sys/net/ipv4/ip_forward"), "fake\n").unwrap();
    fs::create_dir_all(fake.join("1")).unwrap();
    fs::write(fake.join("1/oom_score_adj"), "fake\n").unwrap();
    symlink("1", fake.join("self")).unwrap();
    let mut bundle = env.bundle();
    docker_like(&mut bundle, &[]);
    // Over the container's procfs, after it is mounted.
    bundle.mount(json!({"destination": "/proc", "type": "bind",
        "source": fake.to_str().unwrap(), "options": ["rbind"]}));
    let forward = other_than(&read_trimmed("/proc/sys/net/ipv4/ip_forward"), &["1", "0"]);
    bundle.linux()["sysctl"] = json!({"net.ipv4.ip_forward": forward});
    bundle.process()["oomScoreAdj"] = json!(321);
    bundle.args(&["sleep", "1000"]);
    let (out, c) = env.try_create(&bundle, &[]);
    if out.success() {
        let pid = c.pid();
        assert_eq!(container_sysctl(pid, "net/ipv4/ip_forward"), forward);
        assert_eq!(read_trimmed(format!("/proc/{pid}/oom_score_adj")), "321");
        c.delete_force().ok();
    } else {
        eprintln!("create failed (acceptable): {}", out.stderr.trim());
    }
    assert_eq!(read_trimmed(fake.join("sys/net/ipv4/ip_forward")), "fake");
    assert_eq!(read_trimmed(fake.join("1/oom_score_adj")), "fake");
}

// ---------------------------------------------------------------------------------------
// Masked and read-only paths
// ---------------------------------------------------------------------------------------

#[test]
fn masked_paths_hide_kernel_files() {
    let Some(env) = TestEnv::new() else { return };
    assert!(!fs::read_to_string("/proc/timer_list").unwrap().is_empty());
    assert!(fs::read_dir("/sys/firmware").unwrap().next().is_some());
    assert!(
        !Path::new("/proc/kcore").exists(),
        "this kernel has /proc/kcore after all"
    );
    let mut bundle = env.bundle();
    docker_like(&mut bundle, &[]);
    bundle.sh(
        "echo timer=$(wc -c < /proc/timer_list); \
         echo timer_dev=$(stat -c '%t:%T' /proc/timer_list); \
         echo firmware=$(ls -A /sys/firmware | wc -l); \
         echo firmware_fs=$(stat -f -c %T /sys/firmware); \
         touch /sys/firmware/x 2>/dev/null && echo firmware_write=ok || echo firmware_write=refused; \
         test -e /proc/kcore && echo kcore=present || echo kcore=absent; \
         for f in keys sched_debug timer_stats latency_stats; do \
           test -f /proc/$f && echo $f=$(wc -c < /proc/$f); done; true",
    );
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "timer", "0");
    expect_value(&out, "timer_dev", "1:3");
    expect_value(&out, "firmware", "0");
    expect_value(&out, "firmware_fs", "tmpfs");
    expect_value(&out, "firmware_write", "refused");
    expect_value(&out, "kcore", "absent");
    for f in ["keys", "sched_debug", "timer_stats", "latency_stats"] {
        if let Some(v) = value(&out.stdout, f) {
            assert_eq!(v, "0", "/proc/{f} is not masked:\n{out}");
        }
    }
}

#[test]
fn readonly_paths_reject_writes() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    docker_like(&mut bundle, &[]);
    // Only namespaced, harmless files are written (the hostname is the container's own,
    // ip_forward its network namespace's); the others are checked for a read-only mount.
    bundle.sh(
        "echo other > /proc/sys/kernel/hostname 2>/dev/null && echo hostname=written || echo hostname=refused; \
         echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null && echo forward=written || echo forward=refused; \
         for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do \
           test -e $p || continue; \
           o=$(awk -v p=$p '$5 == p {print $6}' /proc/self/mountinfo | tail -1); \
           echo \"$p=${o%%,*}\"; done",
    );
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "hostname", "refused");
    expect_value(&out, "forward", "refused");
    for p in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if Path::new(p).exists() {
            expect_value(&out, p, "ro");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Capabilities and no_new_privs
// ---------------------------------------------------------------------------------------

/// A rootfs with setuid-root probes: /suid-euid (exit code = euid & 0xff) and
/// /suid-unshare (errno of unshare(CLONE_NEWNS), which needs CAP_SYS_ADMIN). None without
/// probes for this architecture.
fn setuid_bundle(env: &TestEnv) -> Option<Bundle> {
    let mut bundle = env.bundle();
    let r = &bundle.rootfs;
    if !install_probe(r, "suid-euid", 0o4755, nr::GETEUID, &[], Report::Value)
        || !install_probe(
            r,
            "suid-unshare",
            0o4755,
            nr::UNSHARE,
            &[Arg::Int(CLONE_NEWNS)],
            Report::Errno,
        )
    {
        return None;
    }
    bundle.process()["user"] = json!({"uid": 1000, "gid": 100});
    bundle.sh("/suid-euid; echo euid=$?; /suid-unshare; echo unshare=$?; \
         echo bnd=$(grep CapBnd /proc/self/status | cut -f2)");
    Some(bundle)
}

#[test]
fn no_new_privs_holds_across_a_setuid_binary() {
    let Some(env) = TestEnv::new() else { return };
    let Some(mut bundle) = setuid_bundle(&env) else {
        return;
    };
    // Without no_new_privs the setuid bit works (the control)...
    bundle.process()["noNewPrivileges"] = json!(false);
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "euid", "0");
    // ...with it, user 1000 stays user 1000 (1000 & 0xff = 232).
    bundle.process()["noNewPrivileges"] = json!(true);
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "euid", "232");
    expect_value(&out, "unshare", "1");
}

#[test]
fn the_bounding_set_limits_a_setuid_root_binary() {
    let Some(env) = TestEnv::new() else { return };
    let Some(mut bundle) = setuid_bundle(&env) else {
        return;
    };
    bundle.process()["noNewPrivileges"] = json!(false);
    // The control: CAP_SYS_ADMIN in the bounding set (nowhere else) comes back with setuid
    // root, and unshare(CLONE_NEWNS) works.
    let bounding = [
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_ADMIN",
    ];
    bundle.process()["capabilities"] = json!({"bounding": bounding, "effective": [],
        "permitted": [], "inheritable": [], "ambient": []});
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "euid", "0");
    expect_value(&out, "unshare", "0");
    // Outside the bounding set it cannot be regained: EPERM.
    bundle.process()["capabilities"]["bounding"] = json!(&bounding[..3]);
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "euid", "0");
    expect_value(&out, "unshare", "1");
    // CapBnd is exactly the three: AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
    let want = (1u64 << 29) | (1 << 5) | (1 << 10);
    expect_value(&out, "bnd", &format!("{want:016x}"));
}

#[test]
fn without_cap_sys_admin_root_cannot_mount() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    if !install_probe(
        &bundle.rootfs,
        "mount-probe",
        0o755,
        nr::MOUNT,
        &[
            Arg::Str("none"),
            Arg::Str("/tmp"),
            Arg::Str("tmpfs"),
            Arg::Int(0),
            Arg::Int(0),
        ],
        Report::Errno,
    ) {
        return;
    }
    docker_like(&mut bundle, &[]);
    bundle.sh(
        "mount -t tmpfs none /tmp 2>/dev/null && echo mount=ok || echo mount=refused; \
         /mount-probe; echo errno=$?; \
         unshare -m true 2>/dev/null && echo unshare=ok || echo unshare=refused",
    );
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "mount", "refused");
    expect_value(&out, "errno", "1");
    expect_value(&out, "unshare", "refused");
}

// ---------------------------------------------------------------------------------------
// The devices cgroup
// ---------------------------------------------------------------------------------------

#[test]
fn the_devices_cgroup_denies_a_block_device() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let r = bundle.rootfs.clone();
    // A node of the first SCSI disk, made by the host in the image.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("sda-node"),
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(8, 0),
    )
    .unwrap();
    let o_rdonly = 0;
    let open = |path| [Arg::Int(AT_FDCWD), Arg::Str(path), Arg::Int(o_rdonly)];
    let mknod = [
        Arg::Int(AT_FDCWD),
        Arg::Str("/tmp/sda-new"),
        Arg::Int(S_IFBLK | 0o600),
        Arg::Int(0x800),
    ];
    let probes = [
        ("open-sda", nr::OPENAT, open("/sda-node").to_vec()),
        ("mknod-sda", nr::MKNODAT, mknod.to_vec()),
        ("open-new", nr::OPENAT, open("/tmp/sda-new").to_vec()),
        ("open-null", nr::OPENAT, open("/dev/null").to_vec()),
    ];
    for (name, nr, args) in &probes {
        if !install_probe(&r, name, 0o755, *nr, args, Report::Errno) {
            return;
        }
    }
    // Docker's capabilities include CAP_MKNOD: only the cgroup stands in the way. Like
    // runc's defaults, "b *:* m" lets mknod through; opening the node is what is denied.
    docker_like(&mut bundle, &[]);
    bundle.sh("/open-sda; echo open=$?; /mknod-sda; echo mknod=$?; \
         test -b /tmp/sda-new && { /open-new; echo open_new=$?; }; /open-null; echo null=$?; \
         head -c 1 /sda-node > /dev/null 2>&1 && echo bb_read=ok || echo bb_read=refused");
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "open", "1");
    expect_value(&out, "null", "0");
    expect_value(&out, "bb_read", "refused");
    match value(&out.stdout, "mknod") {
        Some("0") => expect_value(&out, "open_new", "1"),
        Some("1") => {}
        other => panic!("mknod gave {other:?}:\n{out}"),
    }
}

// ---------------------------------------------------------------------------------------
// seccomp: docker's default profile
// ---------------------------------------------------------------------------------------

#[test]
fn docker_default_seccomp_runs_a_workload_and_blocks_unshare_mount_keyctl() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    let r = bundle.rootfs.clone();
    let probes: [(&str, u32, Vec<Arg>); 3] = [
        ("unshare-user", nr::UNSHARE, vec![Arg::Int(CLONE_NEWUSER)]),
        (
            "keyctl",
            nr::KEYCTL,
            vec![
                Arg::Int(KEYCTL_GET_KEYRING_ID),
                Arg::Int(KEY_SPEC_SESSION_KEYRING),
                Arg::Int(0),
            ],
        ),
        (
            "mount",
            nr::MOUNT,
            vec![
                Arg::Str("none"),
                Arg::Str("/mnt"),
                Arg::Str("tmpfs"),
                Arg::Int(0),
                Arg::Int(0),
            ],
        ),
    ];
    fs::create_dir_all(r.join("mnt")).unwrap();
    for (name, nr, args) in &probes {
        if !install_probe(&r, name, 0o755, *nr, args, Report::Errno) {
            return;
        }
    }
    let script = "ls / > /tmp/ls && wc -l < /tmp/ls > /dev/null && \
         echo data > /tmp/f && cat /tmp/f > /dev/null && sleep 0 && \
         (echo sub) > /dev/null && echo workload=ok; \
         for p in unshare-user keyctl mount; do /$p; echo $p=$?; done; \
         unshare -U true 2>/dev/null && echo bb_unshare=ok || echo bb_unshare=refused";
    bundle.sh(script);
    // With CAP_SYS_ADMIN, only seccomp stands between the process and these calls.
    docker_like(&mut bundle, &["CAP_SYS_ADMIN"]);

    // The control: without a profile every probe succeeds.
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "workload", "ok");
    for name in ["unshare-user", "keyctl", "mount"] {
        expect_value(&out, name, "0");
    }

    bundle.linux()["seccomp"] = docker_seccomp_profile();
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "workload", "ok");
    for name in ["unshare-user", "keyctl", "mount"] {
        expect_value(&out, name, "1");
    }
    expect_value(&out, "bb_unshare", "refused");

    // And with docker's capabilities (no CAP_SYS_ADMIN), as docker runs it.
    docker_like(&mut bundle, &[]);
    let out = env.run(&bundle);
    out.ok();
    expect_value(&out, "workload", "ok");
    for name in ["unshare-user", "keyctl", "mount"] {
        expect_value(&out, name, "1");
    }
}

// ---------------------------------------------------------------------------------------
// LSMs on a host without them
// ---------------------------------------------------------------------------------------

fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.trim() == "Y")
}

#[test]
fn an_apparmor_profile_on_a_host_without_apparmor_is_a_clear_error() {
    let Some(env) = TestEnv::new() else { return };
    if apparmor_enabled() {
        skip("the test is of a host without AppArmor, and this host has it");
        return;
    }
    let mut bundle = env.bundle();
    bundle.process()["apparmorProfile"] = json!("berth-test-profile");
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["AppArmor", "berth-test-profile"]);
    env.assert_nothing_left(&c.id);

    // exec --apparmor into a running container is refused the same way.
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "1000"]);
    let c = env.create_started(&bundle);
    let out = env.runtime(&["exec", "--apparmor", "berth-test-profile", &c.id, "true"]);
    out.fails().mentions(&["AppArmor"]);
    let mut p = bundle.config["process"].clone();
    p["apparmorProfile"] = json!("berth-test-profile");
    p["args"] = json!(["true"]);
    let process = env.dir().join("process-apparmor.json");
    fs::write(&process, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = env.runtime(&["exec", "--process", process.to_str().unwrap(), &c.id]);
    out.fails().mentions(&["AppArmor"]);
    c.kill("KILL").ok();
}

#[test]
fn an_selinux_label_on_a_host_without_selinux_is_a_clear_error() {
    let Some(env) = TestEnv::new() else { return };
    if Path::new("/sys/fs/selinux/enforce").exists() {
        skip("the test is of a host without SELinux, and this host has it");
        return;
    }
    let mut bundle = env.bundle();
    bundle.process()["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["SELinux"]);
    env.assert_nothing_left(&c.id);
}
