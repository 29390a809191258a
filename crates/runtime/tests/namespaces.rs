//! Namespaces: every kind created new and seen from inside and outside, user namespace
//! mappings, time namespace offsets, joining existing namespaces by path, and refusing a
//! path of the wrong namespace type.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::*;
use serde_json::json;

/// Namespace links as `kind=link` lines, printed by the container.
const PRINT_NAMESPACES: &str = "for n in cgroup ipc mnt net pid time user uts; do echo \"$n=$(readlink /proc/self/ns/$n)\"; done";

fn parse_namespaces(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn host_ns(kind: &str) -> String {
    ns_link(format!("/proc/self/ns/{kind}"))
}

#[test]
fn new_namespaces_are_new_and_others_are_shared() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh(PRINT_NAMESPACES);
    let out = env.run(&bundle);
    out.ok();
    let inside = parse_namespaces(&out.stdout);
    // The default config: pid, network, ipc, uts, mount, cgroup.
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "uts"] {
        assert_ne!(
            inside[kind],
            host_ns(kind),
            "{kind} namespace is the host's"
        );
        assert!(inside[kind].starts_with(&format!("{kind}:[")), "{inside:?}");
    }
    for kind in ["user", "time"] {
        assert_eq!(
            inside[kind],
            host_ns(kind),
            "{kind} namespace is not the host's"
        );
    }
}

#[test]
fn pid_namespace_shows_only_the_container() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.run_sh("echo $$; exec ps -o pid,comm");
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "1", "the container's process is not pid 1: {out}");
    // ps replaced sh: it is the only process, as pid 1.
    let processes: Vec<Vec<String>> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(
        processes,
        vec![vec!["1".to_string(), "ps".to_string()]],
        "{out}"
    );
}

#[test]
fn network_namespace_has_only_loopback() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.run_sh("cat /proc/net/dev; echo ---; ip -o link");
    out.ok();
    let (dev, links) = out.stdout.split_once("---\n").unwrap();
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, ["lo"], "{out}");
    let links: Vec<&str> = links.lines().collect();
    assert_eq!(links.len(), 1, "{out}");
    assert!(links[0].contains("lo:"), "{out}");
    // Another namespace, whatever interfaces the host has (it may have only lo).
    let out = env.run_sh("readlink /proc/self/ns/net");
    out.ok();
    assert_ne!(out.stdout.trim(), host_ns("net"), "{out}");
}

#[test]
fn mount_namespace_has_the_container_mounts_and_none_of_the_host() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    for dest in ["/tmp", "/run"] {
        bundle.mount(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "mode=1777"]}),
        );
    }
    bundle.sh("cat /proc/self/mountinfo");
    let out = env.run(&bundle);
    out.ok();
    let inside = parse_mountinfo(&out.stdout);
    let fstype_at = |point: &str| {
        inside
            .iter()
            .rev()
            .find(|m| m.mount_point == point)
            .map(|m| m.fstype.clone())
    };
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/tmp", "tmpfs"),
        ("/run", "tmpfs"),
    ] {
        assert_eq!(
            fstype_at(point).as_deref(),
            Some(fstype),
            "{point} is not a {fstype} mount inside:\n{}",
            out.stdout
        );
    }
    assert!(fstype_at("/").is_some(), "no root mount:\n{}", out.stdout);
    // No host mount shows up inside: every mount point inside is one the config asked
    // for (or a masked or read-only path of it).
    let config = &bundle.config;
    let mut allowed: Vec<String> = ["/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    allowed.extend(["/dev/mqueue".into(), "/tmp".into(), "/run".into()]);
    for key in ["maskedPaths", "readonlyPaths"] {
        for p in config["linux"][key].as_array().unwrap() {
            allowed.push(p.as_str().unwrap().to_string());
        }
    }
    for m in &inside {
        assert!(
            allowed.contains(&m.mount_point),
            "unexpected mount inside: {m:?}"
        );
    }
    let host_only: Vec<String> = host_mountinfo()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| !allowed.contains(p))
        .collect();
    assert!(!host_only.is_empty(), "the host has no other mounts?");
    // The host's paths are no mount points inside (mountinfo's root field of the rootfs
    // bind does name the host directory, as with runc).
    let host_dir = env.dir().to_str().unwrap();
    assert!(
        inside.iter().all(|m| !m.mount_point.contains(host_dir)),
        "the bundle's host path is a mount point inside:\n{}",
        out.stdout
    );
}

#[test]
fn container_mounts_are_invisible_to_the_host() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.mount(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    bundle.sh("echo ready; exec sleep 100");
    // Filesystems a leak would add to the host: the container's proc, sysfs, devpts, mqueue.
    let count_special = || {
        host_mountinfo()
            .iter()
            .filter(|m| ["proc", "sysfs", "devpts", "mqueue"].contains(&m.fstype.as_str()))
            .count()
    };
    let before = count_special();
    let c = env.create_started(&bundle);
    c.wait_output("ready", STATUS_TIMEOUT);
    assert_eq!(env.host_mounts(), Vec::<String>::new());
    let rootfs = bundle.rootfs.to_str().unwrap();
    let leaked: Vec<MountInfo> = host_mountinfo()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(rootfs))
        .collect();
    assert!(
        leaked.is_empty(),
        "container mounts on the host: {leaked:?}"
    );
    assert_eq!(count_special(), before, "the host got new special mounts");
    // And the container does have its own mounts right now.
    let pid = c.pid();
    let theirs = parse_mountinfo(&fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap());
    assert!(
        theirs
            .iter()
            .any(|m| m.mount_point == "/tmp" && m.fstype == "tmpfs")
    );
    c.kill("KILL").ok();
    c.wait_stopped();
}

#[test]
fn uts_namespace_has_its_own_hostname() {
    let Some(env) = TestEnv::new() else { return };
    let host_before = read_trimmed("/proc/sys/kernel/hostname");
    let name = other_than(&host_before, &["berth-uts-test", "berth-uts-test-2"]);
    let mut bundle = env.bundle();
    bundle.config["hostname"] = json!(name);
    bundle.sh("hostname; readlink /proc/self/ns/uts");
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], name);
    assert_ne!(lines[1], host_ns("uts"));
    assert_eq!(read_trimmed("/proc/sys/kernel/hostname"), host_before);
}

/// A SysV message queue of the host, removed on drop.
struct HostQueue(String);

impl HostQueue {
    fn new() -> Self {
        let out = host("ipcmk", &["-Q"]);
        out.ok();
        let id = out
            .stdout
            .split(':')
            .nth(1)
            .expect("ipcmk prints the id")
            .trim()
            .to_string();
        HostQueue(id)
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        host("ipcrm", &["-q", &self.0]);
    }
}

#[test]
fn ipc_namespace_is_separate() {
    let Some(env) = TestEnv::new() else { return };
    let queue = HostQueue::new();
    let host_queues = fs::read_to_string("/proc/sysvipc/msg").unwrap();
    assert!(host_queues.lines().count() > 1, "ipcmk made no queue?");
    let out = env.run_sh("readlink /proc/self/ns/ipc; cat /proc/sysvipc/msg | wc -l");
    drop(queue);
    out.ok();
    let lines = out.lines();
    assert_ne!(lines[0], host_ns("ipc"));
    assert!(lines[0].starts_with("ipc:["), "{out}");
    // Only the header line: the host's queue is not visible inside.
    assert_eq!(lines[1], "1", "{out}");
}

#[test]
fn cgroup_namespace_root_is_the_container_cgroup() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.run_sh("cat /proc/self/cgroup");
    out.ok();
    assert!(!out.stdout.is_empty(), "{out}");
    for line in out.stdout.lines() {
        assert!(
            line.ends_with(":/"),
            "not the cgroup namespace's root: {line:?}\n{out}"
        );
    }
    // Without a cgroup namespace the container sees where it really is.
    let mut bundle = env.bundle();
    bundle
        .without_namespace("cgroup")
        .sh("cat /proc/self/cgroup");
    let out = env.run(&bundle);
    out.ok();
    assert!(
        out.stdout.lines().any(|l| !l.ends_with(":/")),
        "without a cgroup namespace every cgroup shows as '/':\n{out}"
    );
}

const MAPPED: u32 = 100_000;

fn userns_bundle(env: &TestEnv) -> Bundle {
    let mut bundle = env.bundle();
    bundle.map_user_namespace(MAPPED);
    bundle
}

#[test]
fn user_namespace_maps_ids() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = userns_bundle(&env);
    let shared = env.new_dir("shared");
    std::os::unix::fs::chown(&shared, Some(MAPPED), Some(MAPPED)).unwrap();
    bundle.mount(json!({"destination": "/data", "type": "bind",
                        "source": shared.to_str().unwrap(), "options": ["rbind", "rw"]}));
    let caps = json!(["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]);
    for set in ["bounding", "effective", "permitted"] {
        bundle.process()["capabilities"][set] = caps.clone();
    }
    bundle.sh(
        "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/gid_map; \
         readlink /proc/self/ns/user; touch /data/made-inside; \
         mkdir /data/dir-inside && chown 1000:100 /data/dir-inside",
    );
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "0", "{out}");
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(&lines[2]), ["0", "100000", "65536"], "{out}");
    assert_eq!(words(&lines[3]), ["0", "100000", "65536"], "{out}");
    assert_ne!(lines[4], host_ns("user"));
    let file = fs::metadata(shared.join("made-inside")).unwrap();
    assert_eq!((file.uid(), file.gid()), (MAPPED, MAPPED));
    let dir = fs::metadata(shared.join("dir-inside")).unwrap();
    assert_eq!((dir.uid(), dir.gid()), (MAPPED + 1000, MAPPED + 100));
}

#[test]
fn user_namespace_with_a_non_root_process() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = userns_bundle(&env);
    bundle.process()["user"] = json!({"uid": 1000, "gid": 100});
    bundle.sh("id -u; id -g; cat /proc/self/status | grep -E '^(Uid|Gid):'");
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "100", "{out}");
}

#[test]
fn time_namespace_offsets() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.namespace("time", None);
    bundle.linux()["timeOffsets"] = json!({
        "boottime": {"secs": 864000, "nanosecs": 0},
        "monotonic": {"secs": 86400, "nanosecs": 0}
    });
    bundle.sh("cat /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time");
    let host_uptime: f64 = read_trimmed("/proc/uptime")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    let uptime: f64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        uptime >= host_uptime + 864000.0 && uptime < host_uptime + 864000.0 + 60.0,
        "uptime inside {uptime}, host {host_uptime}"
    );
    let offsets: Vec<Vec<&str>> = lines[1..3]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        offsets.contains(&vec!["monotonic", "86400", "0"]),
        "{offsets:?}"
    );
    assert!(
        offsets.contains(&vec!["boottime", "864000", "0"]),
        "{offsets:?}"
    );
    assert_ne!(lines[3], host_ns("time"));
}

/// Waits until a helper has exec'd `comm` (so that its namespaces are in place).
fn wait_comm(pid: i32, comm: &str) {
    wait_until(Duration::from_secs(10), || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
    })
    .unwrap_or_else(|| panic!("helper {pid} never became {comm}"));
}

#[test]
fn joins_a_network_namespace_by_path() {
    let Some(env) = TestEnv::new() else { return };
    let helper = env.helper(&["unshare", "--net", "sleep", "1000"]);
    wait_comm(helper, "sleep");
    let path = format!("/proc/{helper}/ns/net");
    let target = ns_link(&path);
    assert_ne!(target, host_ns("net"));
    let mut bundle = env.bundle();
    bundle
        .namespace("network", Some(&path))
        .sh("readlink /proc/self/ns/net");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), [target], "{out}");
}

#[test]
fn joins_a_pid_namespace_by_pid_for_children() {
    let Some(env) = TestEnv::new() else { return };
    let helper = env.helper(&["unshare", "--pid", "--fork", "sleep", "1000"]);
    // The forked child is the namespace's pid 1.
    wait_until(Duration::from_secs(10), || {
        let children = fs::read_to_string(format!("/proc/{helper}/task/{helper}/children"))
            .unwrap_or_default();
        children.split_whitespace().any(|c| {
            fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|s| s.trim() == "sleep")
        })
    })
    .expect("unshare never forked sleep");
    let path = format!("/proc/{helper}/ns/pid_for_children");
    let target = ns_link(&path);
    assert_ne!(target, host_ns("pid"));
    let mut bundle = env.bundle();
    bundle
        .namespace("pid", Some(&path))
        .sh("readlink /proc/self/ns/pid; echo $$; ps -o pid,comm");
    let out = env.run(&bundle);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], target, "{out}");
    assert_ne!(
        lines[1], "1",
        "the container is pid 1 of a namespace it joined: {out}"
    );
    assert!(
        lines[2..]
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep"]),
        "the namespace's init (sleep) is not visible: {out}"
    );
}

#[test]
fn joins_a_uts_namespace_by_path() {
    let Some(env) = TestEnv::new() else { return };
    let helper = env.helper(&[
        "unshare",
        "--uts",
        "sh",
        "-c",
        "hostname joined-uts && exec sleep 1000",
    ]);
    wait_comm(helper, "sleep");
    let path = format!("/proc/{helper}/ns/uts");
    let target = ns_link(&path);
    let mut bundle = env.bundle();
    bundle.config.as_object_mut().unwrap().remove("hostname");
    bundle
        .namespace("uts", Some(&path))
        .sh("hostname; readlink /proc/self/ns/uts");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), ["joined-uts".to_string(), target], "{out}");
}

#[test]
fn joins_an_ipc_namespace_by_path() {
    let Some(env) = TestEnv::new() else { return };
    let helper = env.helper(&["unshare", "--ipc", "sleep", "1000"]);
    wait_comm(helper, "sleep");
    let path = format!("/proc/{helper}/ns/ipc");
    let target = ns_link(&path);
    let mut bundle = env.bundle();
    bundle
        .namespace("ipc", Some(&path))
        .sh("readlink /proc/self/ns/ipc");
    let out = env.run(&bundle);
    out.ok();
    assert_eq!(out.lines(), [target], "{out}");
}

#[test]
fn a_namespace_path_of_the_wrong_type_fails_create() {
    let Some(env) = TestEnv::new() else { return };
    for (kind, wrong) in [
        ("network", "ipc"),
        ("ipc", "uts"),
        ("uts", "net"),
        ("pid", "net"),
        ("mount", "net"),
        ("cgroup", "net"),
        ("time", "net"),
    ] {
        let mut bundle = env.bundle();
        let path = format!("/proc/self/ns/{wrong}");
        bundle.namespace(kind, Some(&path));
        let (out, c) = env.try_create(&bundle, &[]);
        out.fails().mentions(&[&path]);
        env.assert_nothing_left(&c.id);
    }
}

#[test]
fn a_namespace_path_that_does_not_exist_fails_create() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.namespace("network", Some("/proc/999999999/ns/net"));
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["/proc/999999999/ns/net"]);
    env.assert_nothing_left(&c.id);
}

/// No namespaces at all: the container shares every namespace of the host (the runtime-spec
/// default), its mounts are made in the host's mount namespace under the rootfs, the root is
/// entered with chroot, and `delete` removes those mounts again.
#[test]
fn no_namespaces_share_the_hosts_and_delete_removes_the_mounts() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.linux()["namespaces"] = json!([]);
    bundle.config.as_object_mut().unwrap().remove("hostname");
    bundle.config["root"]["readonly"] = json!(false);
    bundle.sh(&format!(
        "{PRINT_NAMESPACES}; ls /proc/self/fd >/dev/null && echo proc-mounted"
    ));
    let out = env.run(&bundle);
    out.ok();
    let inside = parse_namespaces(&out.stdout);
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
        assert_eq!(
            inside[kind],
            host_ns(kind),
            "{kind} namespace is not the host's"
        );
    }
    assert!(out.stdout.contains("proc-mounted"), "{}", out.all());
    let left = env.host_mounts();
    assert!(left.is_empty(), "mounts left on the host: {left:?}");
}

/// The mount a host path lives on (the longest mount point that contains it): its id and
/// options.
fn mount_of(path: &std::path::Path) -> (u32, String) {
    host_mountinfo()
        .into_iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.len())
        .map(|m| (m.id, m.options))
        .expect("some mount holds every path")
}

/// A read-only root without a mount namespace: the rootfs gets a read-only bind of its own
/// in the runtime's namespace; the mount the bundle lives on is not changed, the container's
/// writes to its root fail with EROFS (its tmpfs /dev stays writable), and delete leaves no
/// mount and a rootfs the host can write to.
#[test]
fn read_only_root_without_a_mount_namespace_is_a_read_only_bind_of_the_rootfs() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.without_namespace("mount");
    bundle.config["root"]["readonly"] = json!(true);
    bundle.sh(
        "touch /written 2>&1; echo root=$?; touch /tmp/written 2>&1; echo tmp=$?; \
         touch /dev/written && echo dev=ok; exec sleep 1000",
    );
    let under = mount_of(&bundle.rootfs);
    let c = env.create_started(&bundle);
    c.wait_output("dev=", STATUS_TIMEOUT);
    let out = c.stdout();
    assert!(out.contains("root=1") && out.contains("tmp=1"), "{out}");
    assert_eq!(
        out.matches("Read-only file system").count(),
        2,
        "writes to the root did not fail with EROFS: {out}"
    );
    assert!(out.contains("dev=ok"), "{out}");
    // The rootfs is a read-only mount of its own, in this (the runtime's) namespace.
    let rootfs = bundle.rootfs.to_string_lossy().into_owned();
    let own: Vec<MountInfo> = host_mountinfo()
        .into_iter()
        .filter(|m| m.mount_point == rootfs)
        .collect();
    assert_eq!(own.len(), 1, "{own:?}");
    assert!(
        own[0].options.split(',').any(|o| o == "ro"),
        "the rootfs bind is not read-only: {own:?}"
    );
    assert_eq!(
        mount_of(&bundle.dir),
        under,
        "the bundle's own mount changed"
    );
    assert!(!bundle.rootfs.join("written").exists());

    c.kill("KILL").ok();
    c.wait_stopped();
    c.delete().ok();
    let left = env.host_mounts();
    assert!(left.is_empty(), "delete left mounts: {left:?}");
    assert_eq!(mount_of(&bundle.rootfs), under);
    fs::write(bundle.rootfs.join("written-by-the-host"), "x")
        .expect("the host cannot write to the rootfs after delete");
    env.assert_nothing_left(&c.id);
}

/// A create that fails after the rootfs bind was made (in a createRuntime hook) removes it.
#[test]
fn a_failed_create_removes_the_read_only_rootfs_bind() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.without_namespace("mount");
    bundle.config["root"]["readonly"] = json!(true);
    // createRuntime hooks run once the init has built the root filesystem.
    bundle.hooks("createRuntime", json!([{"path": "/bin/false"}]));
    let (out, c) = env.try_create(&bundle, &[]);
    out.fails().mentions(&["createRuntime"]);
    env.assert_nothing_left(&c.id);
    fs::write(bundle.rootfs.join("written-by-the-host"), "x")
        .expect("the host cannot write to the rootfs after a failed create");
}
