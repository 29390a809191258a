//! The systemd cgroup driver through the runc command line (`--systemd-cgroup`): the
//! container's cgroup is a transient scope unit, its limits land in the unit (`systemctl
//! show`) and in its cgroup's files, update/pause/ps/stats/kill --all/OOM work on it, delete
//! stops the unit, a killed create leaves nothing `delete --force` cannot remove, blkio
//! throttles are the unit's per-device limits, the device list is its DevicePolicy= and
//! DeviceAllow= (next to the runtime's own device program).
//!
//! These need systemd as PID 1 with the system bus: scripts/systemd-vm-tests.sh runs them in
//! a guest with BERTH_REQUIRE_SYSTEMD=1 (a skip there fails). On a host without systemd they
//! skip, except the ones about what happens without a bus or with a bad cgroupsPath, which
//! run anywhere.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cgroups::*;
use common::exec::exec;
use common::*;
use serde_json::json;

const MIB: i64 = 1024 * 1024;
const SD: &str = "--systemd-cgroup";

/// Whether systemd runs this host; with BERTH_REQUIRE_SYSTEMD=1 a host without it fails.
#[track_caller]
fn systemd_or_skip() -> bool {
    if Path::new("/run/systemd/system").is_dir()
        && Path::new("/run/dbus/system_bus_socket").exists()
    {
        return true;
    }
    let why = "no systemd as PID 1 with the system bus (scripts/systemd-vm-tests.sh runs these in a guest)";
    if std::env::var_os("BERTH_REQUIRE_SYSTEMD").is_some_and(|v| v == "1") {
        panic!("BERTH_REQUIRE_SYSTEMD=1 forbids skipping: {why}");
    }
    eprintln!("skipped: {why}");
    false
}

/// A test environment on a host with systemd.
fn sd_env() -> Option<TestEnv> {
    let env = cg_env()?;
    systemd_or_skip().then_some(env)
}

/// `systemctl show UNIT -p P...` as `P=value` lines.
fn show(unit: &str, props: &[&str]) -> String {
    let mut args = vec!["show", unit];
    for p in props {
        args.extend(["-p", p]);
    }
    host("systemctl", &args).ok().stdout.clone()
}

fn load_state(unit: &str) -> String {
    show(unit, &["LoadState"]).trim().to_string()
}

/// Waits until systemd no longer knows `unit` (it collects a stopped transient unit).
#[track_caller]
fn assert_unit_gone(unit: &str) {
    let gone = wait_until(Duration::from_secs(10), || {
        load_state(unit) == "LoadState=not-found"
    });
    assert!(
        gone.is_some(),
        "{unit} is still loaded: {}",
        show(unit, &[])
    );
}

/// A bundle whose container is a scope in machine.slice, `berthtest-<id>.scope`.
fn scope_bundle(env: &TestEnv, id: &str) -> (Bundle, String, PathBuf) {
    let mut bundle = env.bundle();
    bundle.linux()["cgroupsPath"] = json!(format!("machine.slice:berthtest:{id}"));
    let unit = format!("berthtest-{id}.scope");
    let dir = PathBuf::from(format!("/sys/fs/cgroup/machine.slice/{unit}"));
    (bundle, unit, dir)
}

/// `create --systemd-cgroup` of `bundle` as container `id`.
#[track_caller]
fn create_sd<'e>(env: &'e TestEnv, bundle: &Bundle, id: &str) -> Container<'e> {
    bundle.save();
    let dir = bundle.dir.to_str().unwrap();
    let (out, io) = env.runtime_to_files(&[SD, "create", "--bundle", dir, id], COMMAND_TIMEOUT);
    out.ok();
    Container {
        env,
        id: id.to_string(),
        io,
    }
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

#[test]
fn the_container_is_a_scope_with_its_limits_until_delete() {
    let Some(env) = sd_env() else { return };
    let id = env.new_id();
    let (mut bundle, unit, dir) = scope_bundle(&env, &id);
    bundle.linux()["resources"] = json!({
        "memory": {"limit": 64 * MIB},
        "cpu": {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"},
        "pids": {"limit": 50},
        "unified": {"memory.high": "62914560", "memory.oom.group": "1"}
    });
    bundle.args(&["sleep", "1000"]);
    let c = create_sd(&env, &bundle, &id);
    // The init is in the unit's cgroup, which systemd made where the slice says.
    let pid = c.pid();
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(own.trim(), format!("0::/machine.slice/{unit}"));
    let props = show(
        &unit,
        &[
            "ActiveState",
            "Delegate",
            "MemoryMax",
            "MemoryHigh",
            "CPUQuotaPerSecUSec",
            "CPUWeight",
            "AllowedCPUs",
            "TasksMax",
            "Slice",
        ],
    );
    for want in [
        "ActiveState=active",
        "Delegate=yes",
        "MemoryMax=67108864",
        "MemoryHigh=62914560",
        "CPUQuotaPerSecUSec=500ms",
        &format!("CPUWeight={}", shares_to_weight(512)),
        "AllowedCPUs=0",
        "TasksMax=50",
        "Slice=machine.slice",
    ] {
        assert!(props.lines().any(|l| l == want), "no {want} in:\n{props}");
    }
    assert_eq!(read(&dir, "memory.max"), (64 * MIB).to_string());
    assert_eq!(read(&dir, "memory.high"), "62914560");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    assert_eq!(read(&dir, "pids.max"), "50");
    assert_eq!(read(&dir, "cpu.weight"), shares_to_weight(512).to_string());
    assert_eq!(read(&dir, "cpuset.cpus"), "0");
    // systemd has no property for it: the runtime wrote the file
    assert_eq!(read(&dir, "memory.oom.group"), "1");
    c.start().ok();
    assert_eq!(c.status(), "running");
    c.delete_force().ok();
    assert_unit_gone(&unit);
    assert!(!dir.exists(), "{} is left", dir.display());
    env.assert_nothing_left(&id);
}

#[test]
fn update_sets_the_unit_properties_and_the_files() {
    let Some(env) = sd_env() else { return };
    let id = env.new_id();
    let (mut bundle, unit, dir) = scope_bundle(&env, &id);
    bundle.linux()["resources"] = json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 50}});
    bundle.args(&["sleep", "1000"]);
    let c = create_sd(&env, &bundle, &id);
    c.start().ok();
    let body = json!({
        "memory": {"limit": 128 * MIB},
        "pids": {"limit": 60},
        "cpu": {"quota": 25000, "period": 100000},
        "unified": {"memory.oom.group": "1"}
    })
    .to_string();
    runtime_stdin(&env, &["update", "--resources", "-", &id], &body).ok();
    let props = show(&unit, &["MemoryMax", "TasksMax", "CPUQuotaPerSecUSec"]);
    for want in [
        "MemoryMax=134217728",
        "TasksMax=60",
        "CPUQuotaPerSecUSec=250ms",
    ] {
        assert!(props.lines().any(|l| l == want), "no {want} in:\n{props}");
    }
    assert_eq!(read(&dir, "memory.max"), (128 * MIB).to_string());
    assert_eq!(read(&dir, "pids.max"), "60");
    assert_eq!(read(&dir, "cpu.max"), "25000 100000");
    assert_eq!(read(&dir, "memory.oom.group"), "1");
    // The flags' form (runc's), and a bad value that changes nothing.
    env.runtime(&["update", "--pids-limit", "70", &id]).ok();
    assert!(show(&unit, &["TasksMax"]).contains("TasksMax=70"));
    assert_eq!(read(&dir, "pids.max"), "70");
    let out = runtime_stdin(
        &env,
        &["update", "--resources", "-", &id],
        r#"{"pids":{"limit":80},"unified":{"memory.high":"lots"}}"#,
    );
    out.fails().mentions(&["memory.high"]);
    assert_eq!(read(&dir, "pids.max"), "70");
    assert!(show(&unit, &["TasksMax"]).contains("TasksMax=70"));
    c.delete_force().ok();
    assert_unit_gone(&unit);
    env.assert_nothing_left(&id);
}

#[test]
fn pause_ps_stats_and_kill_all_act_on_the_units_cgroup() {
    let Some(env) = sd_env() else { return };
    let id = env.new_id();
    let (mut bundle, unit, dir) = scope_bundle(&env, &id);
    bundle.linux()["resources"] = json!({"memory": {"limit": 64 * MIB}});
    bundle.sh("sleep 1000 & echo started; exec sleep 1000");
    let c = create_sd(&env, &bundle, &id);
    c.start().ok();
    c.wait_output("started", Duration::from_secs(20));
    let out = env.runtime(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_str(out.ok().stdout.trim()).unwrap();
    let procs: Vec<i32> = read(&dir, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_eq!(
        pids.iter().collect::<std::collections::BTreeSet<_>>(),
        procs.iter().collect()
    );

    env.runtime(&["pause", &id]).ok();
    assert_eq!(c.status(), "paused");
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    env.runtime(&["resume", &id]).ok();
    assert_eq!(c.status(), "running");
    assert_eq!(read(&dir, "cgroup.freeze"), "0");

    let s = stats(&env, &id);
    assert_eq!(s["type"], "stats", "{s}");
    assert_eq!(s["data"]["memory"]["usage"]["limit"], 64 * MIB, "{s}");
    assert_eq!(s["data"]["pids"]["current"], 2, "{s}");

    // kill --all of a paused container: every process dies, the unit with them
    env.runtime(&["pause", &id]).ok();
    env.runtime(&["kill", "--all", &id, "KILL"]).ok();
    c.wait_stopped();
    assert_unit_gone(&unit);
    c.delete().ok();
    env.assert_nothing_left(&id);
}

#[test]
fn oom_kills_are_reported_though_systemd_removes_the_cgroup() {
    let Some(env) = sd_env() else { return };
    // The container's process itself: `run` says so, although the scope and its cgroup are
    // gone by the time it has reaped the process.
    let id = env.new_id();
    let (mut bundle, unit, _) = scope_bundle(&env, &id);
    bundle.linux()["resources"] = json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}});
    bundle.sh("sleep 0.5; exec dd if=/dev/zero of=/dev/null bs=128M count=1");
    bundle.save();
    let dir = bundle.dir.to_str().unwrap();
    let (out, _) =
        env.runtime_to_files(&[SD, "run", "--bundle", dir, &id], Duration::from_secs(60));
    assert_eq!(out.code, 137, "{out}");
    out.mentions(&[&format!(
        "container {id} was killed by the kernel: out of memory (limit 32 MiB)"
    )]);
    assert_unit_gone(&unit);
    env.assert_nothing_left(&id);

    // A process of a container that lives on: state counts it, delete reports it.
    let id = env.new_id();
    let (mut bundle, unit, _) = scope_bundle(&env, &id);
    bundle.linux()["resources"] = json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}});
    bundle.sh("dd if=/dev/zero of=/dev/null bs=128M count=1; echo survived; exec sleep 1000");
    let c = create_sd(&env, &bundle, &id);
    c.start().ok();
    c.wait_output("survived", Duration::from_secs(30));
    let state = c.state();
    assert_eq!(state["annotations"]["berth.oom-kills"], "1", "{state}");
    let out = c.delete_force();
    out.ok().mentions(&[&format!(
        "container {id}: a process killed by the kernel's OOM killer"
    )]);
    assert_unit_gone(&unit);
    env.assert_nothing_left(&id);
}

/// A runtime killed right after systemd started the unit, and one killed with the init set
/// up and waiting (a live unit, no record): delete --force removes both, and the name can
/// be used again.
#[test]
fn delete_force_removes_the_unit_of_a_killed_create() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the kill points exist in debug builds only");
        return;
    }
    let Some(env) = sd_env() else { return };
    for step in ["create:scope", "create:setup"] {
        let id = env.new_id();
        let (mut bundle, unit, dir) = scope_bundle(&env, &id);
        bundle.args(&["sleep", "1000"]);
        bundle.save();
        let bdir = bundle.dir.to_str().unwrap();
        let mut cmd = env.command(&[SD, "create", "--bundle", bdir, &id]);
        cmd.env("BERTH_TEST_KILL_AT", step);
        let out = run_to_files(&mut cmd, &env.io_files(), COMMAND_TIMEOUT);
        assert_eq!(out.code, 128 + 9, "create was not killed at {step}: {out}");
        if step == "create:setup" {
            assert!(
                show(&unit, &["ActiveState"]).contains("ActiveState=active"),
                "no live unit after a kill at {step}"
            );
        }
        env.runtime(&["delete", "--force", &id]).ok();
        assert_unit_gone(&unit);
        assert!(!dir.exists(), "{} is left after {step}", dir.display());
        env.assert_nothing_left(&id);
        // the name is free again
        let c = create_sd(&env, &bundle, &id);
        c.delete_force().ok();
        assert_unit_gone(&unit);
        env.assert_nothing_left(&id);
    }
}

#[test]
fn a_nested_slice_is_made_where_its_name_says() {
    let Some(env) = sd_env() else { return };
    let id = env.new_id();
    let mut bundle = env.bundle();
    bundle.linux()["cgroupsPath"] = json!(format!("machine-berthtest.slice:berth:{id}"));
    bundle.args(&["sleep", "1000"]);
    let c = create_sd(&env, &bundle, &id);
    let own = fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert_eq!(
        own.trim(),
        format!("0::/machine.slice/machine-berthtest.slice/berth-{id}.scope")
    );
    c.delete_force().ok();
    assert_unit_gone(&format!("berth-{id}.scope"));
    env.assert_nothing_left(&id);
    let _ = host("systemctl", &["stop", "machine-berthtest.slice"]);
}

/// No cgroupsPath: runc's defaults, named after us (`system.slice`, `berth-<id>.scope`).
#[test]
fn without_a_cgroups_path_the_unit_is_berth_id_in_system_slice() {
    let Some(env) = sd_env() else { return };
    let id = env.new_id();
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "1000"]);
    let c = create_sd(&env, &bundle, &id);
    let own = fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert_eq!(own.trim(), format!("0::/system.slice/berth-{id}.scope"));
    c.delete_force().ok();
    assert_unit_gone(&format!("berth-{id}.scope"));
    env.assert_nothing_left(&id);
}

/// Runs anywhere: without a bus the create fails before the fork, naming the socket.
#[test]
fn without_the_system_bus_create_fails_naming_the_socket() {
    let Some(env) = cg_env() else { return };
    let id = env.new_id();
    let mut bundle = env.bundle();
    bundle.args(&["sleep", "1000"]);
    bundle.save();
    let dir = bundle.dir.to_str().unwrap();
    let mut cmd = env.command(&[SD, "create", "--bundle", dir, &id]);
    cmd.env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        "unix:path=/run/berth-no-bus/socket",
    );
    let out = run_piped(&mut cmd, COMMAND_TIMEOUT);
    out.fails()
        .mentions(&["--systemd-cgroup", "system bus", "/run/berth-no-bus/socket"]);
    env.assert_nothing_left(&id);
}

/// Runs anywhere: a cgroupfs path given to the systemd driver fails in planning.
#[test]
fn a_cgroupfs_path_is_refused_by_the_systemd_driver() {
    let Some(env) = cg_env() else { return };
    let id = env.new_id();
    let mut bundle = env.bundle();
    bundle.linux()["cgroupsPath"] = json!(format!("/berth/{id}"));
    bundle.save();
    let dir = bundle.dir.to_str().unwrap();
    let out = env.runtime(&[SD, "create", "--bundle", dir, &id]);
    out.fails()
        .mentions(&[&format!("/berth/{id}"), "slice:prefix:name"]);
    env.assert_nothing_left(&id);
}

/// The container's /sys/fs/cgroup is the unit's cgroup, with a cgroup namespace (a fresh
/// mount) and without (a bind of the unit's directory, which exists only once systemd has
/// made the unit: the init waits for it).
#[test]
fn a_cgroup_mount_shows_the_units_cgroup() {
    let Some(env) = sd_env() else { return };
    for cgroupns in [true, false] {
        let id = env.new_id();
        let (mut bundle, unit, _) = scope_bundle(&env, &id);
        bundle.linux()["resources"] = json!({"pids": {"limit": 33}});
        bundle.mount(json!({
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
        }));
        if cgroupns {
            bundle.namespace("cgroup", None);
        } else {
            bundle.without_namespace("cgroup");
        }
        bundle.sh("cat /sys/fs/cgroup/pids.max; cat /proc/self/cgroup");
        bundle.save();
        let dir = bundle.dir.to_str().unwrap();
        let (out, _) =
            env.runtime_to_files(&[SD, "run", "--bundle", dir, &id], Duration::from_secs(60));
        out.ok();
        let own = if cgroupns {
            "0::/".to_string()
        } else {
            format!("0::/machine.slice/{unit}")
        };
        assert_eq!(
            out.lines(),
            ["33", own.as_str()],
            "cgroupns {cgroupns}: {out}"
        );
        assert_unit_gone(&unit);
        env.assert_nothing_left(&id);
    }
}

/// A loop device over a file of the test's: a real block device in the guest, which boots
/// without a disk. Detached on drop.
struct LoopDevice {
    path: String,
    major: u32,
    minor: u32,
}

impl LoopDevice {
    #[track_caller]
    fn new(dir: &Path) -> LoopDevice {
        use std::os::unix::fs::MetadataExt;
        let file = dir.join("loop.img");
        fs::write(&file, vec![0u8; 1 << 20]).unwrap();
        let out = host("losetup", &["--find", "--show", file.to_str().unwrap()]);
        out.ok();
        let path = out.stdout.trim().to_string();
        let rdev = fs::metadata(&path)
            .unwrap_or_else(|e| panic!("stat {path}: {e}"))
            .rdev();
        LoopDevice {
            path,
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
        }
    }

    fn number(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = host("losetup", &["--detach", &self.path]);
    }
}

/// The lines of `P=` in `systemctl show` output (a list property has one per entry).
fn values<'a>(show: &'a str, prop: &str) -> Vec<&'a str> {
    let prefix = format!("{prop}=");
    show.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect()
}

#[test]
fn blkio_throttles_are_the_units_device_limits_and_its_io_max() {
    let Some(env) = sd_env() else { return };
    let dev = LoopDevice::new(env.dir());
    let id = env.new_id();
    let (mut bundle, unit, dir) = scope_bundle(&env, &id);
    let throttle = |rate: u64| json!([{"major": dev.major, "minor": dev.minor, "rate": rate}]);
    bundle.linux()["resources"] = json!({"blockIO": {
        "throttleReadBpsDevice": throttle(1 << 20),
        "throttleWriteBpsDevice": throttle(2 << 20),
        "throttleReadIOPSDevice": throttle(300),
        "throttleWriteIOPSDevice": throttle(100),
    }});
    bundle.args(&["sleep", "1000"]);
    let c = create_sd(&env, &bundle, &id);
    let node = format!("/dev/block/{}", dev.number());
    let props = show(
        &unit,
        &[
            "IOReadBandwidthMax",
            "IOWriteBandwidthMax",
            "IOReadIOPSMax",
            "IOWriteIOPSMax",
        ],
    );
    for want in [
        format!("IOReadBandwidthMax={node} 1048576"),
        format!("IOWriteBandwidthMax={node} 2097152"),
        format!("IOReadIOPSMax={node} 300"),
        format!("IOWriteIOPSMax={node} 100"),
    ] {
        assert!(props.lines().any(|l| l == want), "no {want} in:\n{props}");
    }
    assert_eq!(
        read(&dir, "io.max"),
        format!(
            "{} rbps=1048576 wbps=2097152 riops=300 wiops=100",
            dev.number()
        )
    );
    // update: the unit's entry for the device changes, the other limits stay
    let body = json!({"blockIO": {"throttleReadBpsDevice": throttle(4 << 20)}}).to_string();
    runtime_stdin(&env, &["update", "--resources", "-", &id], &body).ok();
    let props = show(&unit, &["IOReadBandwidthMax", "IOWriteIOPSMax"]);
    assert_eq!(
        values(&props, "IOReadBandwidthMax"),
        [format!("{node} 4194304")]
    );
    assert_eq!(values(&props, "IOWriteIOPSMax"), [format!("{node} 100")]);
    assert_eq!(
        read(&dir, "io.max"),
        format!(
            "{} rbps=4194304 wbps=2097152 riops=300 wiops=100",
            dev.number()
        )
    );
    c.delete_force().ok();
    assert_unit_gone(&unit);
    env.assert_nothing_left(&id);
}

/// The default device list is the unit's DevicePolicy=strict with runc's entries, and the
/// container keeps /dev/null & co both under the runtime's own device program (which
/// replaces systemd's at create, as runc's does) and once systemd has put its own program
/// back next to it: `set-property` makes systemd apply the unit's device policy again.
#[test]
fn the_device_list_is_the_units_device_policy_and_dev_null_stays_usable() {
    let Some(env) = sd_env() else { return };
    let id = env.new_id();
    let (mut bundle, unit, dir) = scope_bundle(&env, &id);
    // a node of the first SCSI disk, which no rule allows: the control
    rustix::fs::mknodat(
        rustix::fs::CWD,
        bundle.rootfs.join("sda-node"),
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(8, 0),
    )
    .unwrap();
    bundle.args(&["sleep", "1000"]);
    let c = create_sd(&env, &bundle, &id);
    c.start().ok();
    let props = show(&unit, &["DevicePolicy", "DeviceAllow"]);
    assert_eq!(values(&props, "DevicePolicy"), ["strict"], "{props}");
    let allowed = values(&props, "DeviceAllow");
    for want in [
        "/dev/char/1:3 rwm",
        "/dev/char/1:5 rwm",
        "/dev/char/1:8 rwm",
        "/dev/char/1:9 rwm",
        "/dev/char/5:0 rwm",
        "/dev/char/5:2 rwm",
        "/dev/char/10:200 rwm",
        "char-136 rwm",
        "char-* m",
        "block-* m",
    ] {
        assert!(
            allowed.contains(&want),
            "no DeviceAllow={want} in:\n{props}"
        );
    }
    let probe = "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | \
                 wc -c && echo null-zero-urandom-ok; head -c 1 /sda-node 2>&1; true";
    let check = |when: &str| {
        let out = exec(&c, &[], &["sh", "-c", probe]);
        out.ok();
        let text = out.all();
        assert!(text.contains("null-zero-urandom-ok"), "{when}:\n{out}");
        assert!(
            text.contains("Operation not permitted"),
            "{when}: /sda-node:\n{out}"
        );
    };
    check("after create");
    let programs = |when: &str| {
        berth_cgroups::devices::v2::attached_program_ids(&dir)
            .unwrap_or_else(|e| panic!("{when}: {e}"))
            .len()
    };
    // the runtime's program took systemd's place (BPF_F_REPLACE of the only one)
    assert_eq!(programs("after create"), 1);
    host(
        "systemctl",
        &["set-property", "--runtime", &unit, "DevicePolicy=strict"],
    )
    .ok();
    // systemd's program from the unit's DeviceAllow= list joins ours (a device passes only
    // if both allow it), once systemd has realized the unit again: after its reply
    let both = poll(Duration::from_secs(10), || {
        (programs("after set-property") == 2).then_some(())
    });
    assert!(
        both.is_some(),
        "{} device programs after set-property",
        programs("after set-property")
    );
    check("with systemd's device program too");
    c.delete_force().ok();
    assert_unit_gone(&unit);
    env.assert_nothing_left(&id);
}
