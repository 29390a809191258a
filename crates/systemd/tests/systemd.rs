//! The driver against a real systemd (PID 1) over the real system bus: scripts/systemd-vm-tests.sh
//! runs these in a guest booted with systemd. Without a systemd bus (the host, CI) each test
//! says it skipped; with BERTH_REQUIRE_SYSTEMD=1 (the VM script sets it) a skip is a failure.
//! Every test cleans up what it made, also when it fails (the guards' Drop).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_cgroups::Mode;
use berth_systemd::dbus::Error as BusError;
use berth_systemd::{Error, ScopePlan, Systemd, UnitPath, props};

const REQUIRE_ENV: &str = "BERTH_REQUIRE_SYSTEMD";

/// A connection to systemd, or None (printed) when this machine has no systemd bus.
fn systemd(test: &str) -> Option<Systemd> {
    let why = match Systemd::connect() {
        Ok(mut s) => match s.version() {
            Ok(_) => return Some(s),
            Err(e) => format!("the system bus has no systemd: {e}"),
        },
        Err(e) => format!("no systemd bus: {e}"),
    };
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("{test}: {why} ({REQUIRE_ENV}=1 forbids skipping)");
    }
    eprintln!("{test}: skipped: {why}");
    None
}

/// A name no other test (or earlier run) uses.
fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A sleeping process, killed and reaped on drop.
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops the unit on drop (a failed assertion must not leave it behind).
struct UnitGuard(String);

impl Drop for UnitGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = Systemd::connect() {
            let _ = s.stop_unit(&self.0);
        }
    }
}

fn cgroup_root() -> Option<PathBuf> {
    // the unit's cgroup files are checked on a unified (v2) hierarchy only
    Path::new("/sys/fs/cgroup/cgroup.controllers")
        .exists()
        .then(|| PathBuf::from("/sys/fs/cgroup"))
}

fn read(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn show(unit: &str, props: &[&str]) -> String {
    let mut c = Command::new("systemctl");
    c.arg("show").arg(unit);
    for p in props {
        c.arg("-p").arg(p);
    }
    let out = c.output().expect("run systemctl show");
    assert!(
        out.status.success(),
        "systemctl show {unit}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn resources(json: &str) -> props::Resources {
    props::convert(&serde_json::from_str(json).unwrap(), Mode::Update).unwrap()
}

#[test]
fn a_scope_gets_its_limits_update_changes_them_and_stop_removes_it() {
    let Some(mut sd) = systemd("a_scope_gets_its_limits") else {
        return;
    };
    let spec: oci_spec::runtime::LinuxResources = serde_json::from_str(
        r#"{"memory":{"limit":67108864},"pids":{"limit":32},
            "cpu":{"quota":50000,"period":100000,"shares":512,"cpus":"0","mems":"0"}}"#,
    )
    .unwrap();
    let path = format!("system.slice:berth-test:{}", unique("limits"));
    let plan = ScopePlan::new(&path, "unused", Some(&spec)).unwrap();
    let unit = plan.unit.clone();
    let sleeper = Sleeper::new();
    let _guard = UnitGuard(unit.unit.clone());
    sd.start(&plan, sleeper.pid()).unwrap();
    assert!(show(&unit.unit, &["Description"]).contains("Description=berth container unused"));

    let cg = sd.control_group(&unit.unit).unwrap();
    assert_eq!(cg, unit.cgroup());
    assert_eq!(
        sd.unit_state(&unit.unit).unwrap().unwrap().active_state,
        "active"
    );
    let shown = show(
        &unit.unit,
        &[
            "MemoryMax",
            "TasksMax",
            "CPUQuotaPerSecUSec",
            "Delegate",
            "Slice",
            "AllowedCPUs",
        ],
    );
    for want in [
        "MemoryMax=67108864",
        "TasksMax=32",
        "CPUQuotaPerSecUSec=500ms",
        "Delegate=yes",
        "Slice=system.slice",
        "AllowedCPUs=0",
    ] {
        assert!(
            shown.lines().any(|l| l == want),
            "systemctl show lacks {want}:\n{shown}"
        );
    }
    if let Some(root) = cgroup_root() {
        let dir = root.join(cg.trim_start_matches('/'));
        assert!(
            read(&dir, "cgroup.procs")
                .lines()
                .any(|l| l == sleeper.pid().to_string()),
            "pid not in {}",
            dir.display()
        );
        assert_eq!(read(&dir, "memory.max"), "67108864");
        assert_eq!(read(&dir, "pids.max"), "32");
        assert_eq!(read(&dir, "cpu.max"), "50000 100000");
        assert_eq!(
            read(&dir, "cpu.weight"),
            berth_cgroups::convert::cpu_shares_to_weight(512).to_string()
        );
        assert_eq!(read(&dir, "cpuset.cpus"), "0");

        // update: systemd rewrites the files
        let upd = resources(
            r#"{"memory":{"limit":134217728},"pids":{"limit":64},"cpu":{"quota":25000,"period":100000}}"#,
        );
        sd.set_properties(&unit.unit, &upd.properties).unwrap();
        assert_eq!(read(&dir, "memory.max"), "134217728");
        assert_eq!(read(&dir, "pids.max"), "64");
        assert_eq!(read(&dir, "cpu.max"), "25000 100000");
        assert!(show(&unit.unit, &["TasksMax"]).contains("TasksMax=64"));

        assert!(sd.stop_unit(&unit.unit).unwrap(), "the unit existed");
        assert!(!dir.exists(), "{} still exists after stop", dir.display());
    } else {
        assert!(sd.stop_unit(&unit.unit).unwrap());
    }
    assert_eq!(
        sd.unit_state(&unit.unit).unwrap(),
        None,
        "the unit is still loaded"
    );
    // the scope's process died with it
    let mut sleeper = sleeper;
    let status = sleeper.0.wait().unwrap();
    assert!(
        status.code().is_none(),
        "sleep was killed by a signal, not {status}"
    );
    // stopping again: nothing there
    assert!(!sd.stop_unit(&unit.unit).unwrap());
}

#[test]
fn a_nested_slice_is_made_where_its_name_says() {
    let Some(mut sd) = systemd("a_nested_slice") else {
        return;
    };
    let unit = UnitPath::parse(
        &format!("machine-berthtest.slice:berth-test:{}", unique("nested")),
        "unused",
    )
    .unwrap();
    let sleeper = Sleeper::new();
    let _guard = UnitGuard(unit.unit.clone());
    sd.start_scope(&unit, sleeper.pid(), "berth test nested", &[])
        .unwrap();
    let cg = sd.control_group(&unit.unit).unwrap();
    assert!(
        cg.starts_with("/machine.slice/machine-berthtest.slice/berth-test-nested-"),
        "{cg}"
    );
    assert_eq!(cg, unit.cgroup());
    assert!(show(&unit.unit, &["Slice"]).contains("Slice=machine-berthtest.slice"));
    if let Some(root) = cgroup_root() {
        assert!(root.join(cg.trim_start_matches('/')).is_dir());
    }
    assert!(sd.stop_unit(&unit.unit).unwrap());
    // the slice was made for this test (systemd keeps an implicit slice loaded): stop it too
    let _ = sd.stop_unit("machine-berthtest.slice");
}

#[test]
fn a_unit_left_by_a_killed_create_blocks_the_name_until_delete_force_stops_it() {
    let Some(mut sd) = systemd("a_unit_left_by_a_killed_create") else {
        return;
    };
    let unit = UnitPath::parse(&format!(":berth-test:{}", unique("left")), "unused").unwrap();
    let first = Sleeper::new();
    let _guard = UnitGuard(unit.unit.clone());
    sd.start_scope(&unit, first.pid(), "berth test leftover", &[])
        .unwrap();
    drop(sd); // the runtime that made it was killed: its connection is gone, the unit stays

    let mut again = systemd("a_unit_left_by_a_killed_create").unwrap();
    let second = Sleeper::new();
    let e = again
        .start_scope(&unit, second.pid(), "berth test leftover", &[])
        .unwrap_err();
    assert!(matches!(e, Error::UnitExists { .. }), "{e}");
    assert!(e.to_string().contains(&unit.unit), "{e}");

    // delete --force: a new runtime process stops it
    let mut delete = systemd("a_unit_left_by_a_killed_create").unwrap();
    assert!(delete.stop_unit(&unit.unit).unwrap());
    let mut first = first;
    assert!(
        first.0.wait().unwrap().code().is_none(),
        "the leftover's process was killed"
    );

    // the name is usable again
    again
        .start_scope(&unit, second.pid(), "berth test leftover", &[])
        .unwrap();
    assert_eq!(
        again.unit_state(&unit.unit).unwrap().unwrap().active_state,
        "active"
    );
    assert!(again.stop_unit(&unit.unit).unwrap());
}

#[test]
fn a_failed_start_names_the_unit_and_the_bus_error() {
    let Some(mut sd) = systemd("a_failed_start") else {
        return;
    };
    let unit = UnitPath::parse(&format!(":berth-test:{}", unique("bad")), "unused").unwrap();
    let _guard = UnitGuard(unit.unit.clone());
    // no such process: systemd refuses the PIDs property
    let e = sd
        .start_scope(&unit, 0x3fff_fff0, "berth test bad pid", &[])
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("StartTransientUnit") && msg.contains("org.freedesktop.systemd1"),
        "{msg}"
    );
    assert!(matches!(&e, Error::Bus(BusError::Remote { .. })), "{e:?}");
    assert_eq!(sd.unit_state(&unit.unit).unwrap(), None);
}

/// Runs anywhere: no bus at the address is an error naming the socket.
#[test]
fn a_missing_bus_is_an_error_naming_the_socket() {
    let path = format!(
        "/run/berth-test-no-bus-{}/system_bus_socket",
        std::process::id()
    );
    let Err(e) = Systemd::connect_address(&format!("unix:path={path}")) else {
        panic!("connected to {path}")
    };
    let msg = e.to_string();
    assert!(msg.contains(&path), "{msg}");
    assert!(matches!(e, Error::Bus(BusError::Connect { .. })), "{e:?}");
}
