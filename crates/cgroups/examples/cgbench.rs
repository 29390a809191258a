//! Measure the container-start path: probe + resolve + plan, create+apply,
//! attach a process, and destroy, with empty resources (the default device
//! policy is still applied). Needs root; cgroups are named
//! `/berth-test-bench-<pid>/c<N>` and removed.
//!
//! `cargo run --release -p berth-cgroups --example cgbench -- [ITERATIONS] [--once]`
//! `--once` does a single create+attach+destroy, for `strace -c`.

use std::process::Command;
use std::time::Instant;

use berth_cgroups::{Cgroup, CgroupsPath, Join, Layout, Mode, PlanOptions, Version};
use oci_spec::runtime::LinuxResources;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let top = format!("berth-test-bench-{}", std::process::id());
    let mut child = Command::new("sleep").arg("1000").spawn()?;
    let pid = child.id() as i32;
    let res = LinuxResources::default();

    let t = Instant::now();
    let layout = Layout::probe()?;
    let probe_us = t.elapsed().as_micros();
    let own = berth_cgroups::proc_cgroup::ProcCgroup::read_self()?;

    let mut samples: [Vec<u128>; 4] = Default::default();
    let mut result = Ok(());
    for i in 0..if once { 1 } else { n } {
        let path = CgroupsPath::parse(&format!("/{top}/c{i}"))?;
        let t0 = Instant::now();
        let cg = Cgroup::new(&layout, &path)?;
        let plan = cg.plan(&res, Mode::Create, PlanOptions::default())?;
        let t1 = Instant::now();
        cg.create(&plan)?;
        let t2 = Instant::now();
        cg.add_pid(pid, Join::All)?;
        let t3 = Instant::now();
        // Back to where it came from, so destroy does not wait for it.
        for m in cg.mounts() {
            let p = match m.version {
                Version::V1 => own.v1_path(&m.controllers).unwrap_or("/"),
                Version::V2 => own.v2_path().unwrap_or("/"),
            };
            std::fs::write(
                m.host_mountpoint
                    .join(p.trim_start_matches('/'))
                    .join("cgroup.procs"),
                pid.to_string(),
            )?;
        }
        let t4 = Instant::now();
        if let Err(e) = cg.destroy() {
            result = Err(e);
            break;
        }
        let t5 = Instant::now();
        for (s, d) in samples.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t5 - t4]) {
            s.push(d.as_micros());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for m in Cgroup::new(&layout, &CgroupsPath::parse(&format!("/{top}"))?)?.mounts() {
        let _ = std::fs::remove_dir(&m.host_dir);
    }
    result?;
    let med = |v: &mut Vec<u128>| {
        v.sort();
        v[v.len() / 2]
    };
    let [a, b, c, d] = &mut samples;
    let (a, b, c, d) = (med(a), med(b), med(c), med(d));
    println!(
        "{:?}, {} hierarchies, {} iterations (medians): probe {probe_us} µs (once), resolve+plan {a} µs, \
         create+apply {b} µs, attach {c} µs, destroy {d} µs => create+apply+attach {} µs",
        layout.kind,
        layout.v1.len() + usize::from(layout.unified.is_some()),
        if once { 1 } else { n },
        b + c
    );
    Ok(())
}
