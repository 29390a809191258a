//! `run` of /bin/true a thousand times: every run must return, with exit code 0. A runtime
//! that can lose the container's SIGCHLD (it exits before the runtime waits) hangs here
//! sooner or later; the per-run timeout turns that hang into a failure.

mod common;

use std::time::{Duration, Instant};

use common::*;

const RUNS: usize = 1000;
const PER_RUN_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn run_true_a_thousand_times() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.args(&["/bin/true"]);
    bundle.save();
    let bundle_dir = bundle.dir.to_str().unwrap().to_string();
    // One id for every run: run deletes its container, so a leak fails the next run.
    let id = env.new_id();
    let io = env.io_files();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..RUNS {
        let t = Instant::now();
        let mut cmd = env.command(&["run", "--bundle", &bundle_dir, &id]);
        let out = run_to_files(&mut cmd, &io, PER_RUN_TIMEOUT);
        assert_eq!(out.code, 0, "run {i} of {RUNS}:\n{out}");
        slowest = slowest.max(t.elapsed());
        if i % 100 == 99 {
            reap_orphans();
        }
    }
    let total = started.elapsed();
    eprintln!(
        "{RUNS} runs in {total:?} ({:?} per run, slowest {slowest:?})",
        total / RUNS as u32
    );
    assert_eq!(io.stdout(), "");
    assert!(!env.state_root().join(&id).exists());
    assert!(env.cgroups_of(&id).is_empty(), "{:?}", env.cgroups_of(&id));
}
