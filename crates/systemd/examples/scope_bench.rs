//! What the systemd driver costs a container start and delete, in a guest with systemd:
//! connect + StartTransientUnit (waiting for the job) + StopUnit (waiting for the job), for a
//! sleeping process with a few limits, against `systemd-run --scope` doing the same start
//! for `true` (the scope ends when `true` exits, no stop job). Medians over N rounds,
//! interleaved. Not a test: scripts/systemd-vm-tests.sh prints it.
//!
//! usage: scope_bench [ROUNDS]

use std::process::Command;
use std::time::Instant;

use berth_cgroups::Mode;
use berth_systemd::{Systemd, UnitPath, props};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let res = props::convert(
        &serde_json::from_str(r#"{"memory":{"limit":67108864},"pids":{"limit":32},"cpu":{"quota":50000,"period":100000}}"#)
            .unwrap(),
        // what a container's create sends, the default device policy included
        Mode::Create,
    )
    .unwrap();
    let (mut connect, mut start, mut stop, mut total, mut run, mut fs) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    for i in 0..rounds {
        let mut child = Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let unit =
            UnitPath::parse(&format!(":berth-bench:{}-{i}", std::process::id()), "x").unwrap();
        let t0 = Instant::now();
        let mut sd = Systemd::connect().expect("connect to systemd");
        let t1 = Instant::now();
        sd.start_scope(&unit, child.id(), "berth bench", &res.properties)
            .expect("start scope");
        let t2 = Instant::now();
        sd.stop_unit(&unit.unit).expect("stop scope");
        let t3 = Instant::now();
        let _ = child.kill();
        let _ = child.wait();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        connect.push(ms(t0, t1));
        start.push(ms(t1, t2));
        stop.push(ms(t2, t3));
        total.push(ms(t0, t3));

        let t = Instant::now();
        let st = Command::new("systemd-run")
            .args([
                "--quiet",
                "--scope",
                "-p",
                "MemoryMax=64M",
                "-p",
                "TasksMax=32",
                "-p",
                "CPUQuota=50%",
            ])
            .arg(format!("--unit=berth-bench-run-{}-{i}", std::process::id()))
            .arg("true")
            .status()
            .expect("run systemd-run");
        run.push(ms(t, Instant::now()));
        assert!(st.success(), "systemd-run failed");

        if v2 {
            fs.push(cgroupfs_round(i));
        }
    }
    let (c, s, p, t, r) = (
        median(&mut connect),
        median(&mut start),
        median(&mut stop),
        median(&mut total),
        median(&mut run),
    );
    println!("scope_bench: {rounds} rounds, medians in ms");
    println!("  berth-systemd connect+auth+Hello   {c:8.2}");
    println!("  berth-systemd StartTransientUnit   {s:8.2}  (subscribe + call + JobRemoved)");
    println!("  berth-systemd StopUnit             {p:8.2}  (call + JobRemoved)");
    println!("  berth-systemd create+stop in all   {t:8.2}");
    println!(
        "  systemd-run --scope true           {r:8.2}  (a process: exec, connect, start, exec true)"
    );
    println!("  ratio systemd-run / berth          {:8.2}", r / t);
    if !fs.is_empty() {
        let f = median(&mut fs);
        println!(
            "  cgroupfs by hand (reference)       {f:8.2}  (mkdir, 3 limits, cgroup.procs, kill+reap, rmdir)"
        );
        println!("  berth-systemd - cgroupfs           {:8.2}", t - f);
    }
}

/// The same limits the cgroupfs way, in a cgroup of our own at the root (the guest is a
/// throw-away VM), with the kill and reap that systemd's stop does: what the driver replaces.
fn cgroupfs_round(i: usize) -> f64 {
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/cgroup/berth-bench-fs-{}-{i}",
        std::process::id()
    ));
    let mut child = Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    let t = Instant::now();
    std::fs::create_dir(&dir).expect("mkdir the cgroup");
    for (f, v) in [
        ("memory.max", "67108864"),
        ("pids.max", "32"),
        ("cpu.max", "50000 100000"),
        ("cgroup.procs", &child.id().to_string()),
    ] {
        std::fs::write(dir.join(f), v).unwrap_or_else(|e| panic!("write {f}: {e}"));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir(&dir).expect("rmdir the cgroup");
    (Instant::now() - t).as_secs_f64() * 1e3
}
