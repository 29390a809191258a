//! Warnings shown to the user as `WARNING: ...` lines on stderr, as docker shows them: berth's
//! own (a limit the host cannot apply is discarded with docker's words; an OOM killer turned
//! off without a limit) and what the runtime core logs while it creates the container, which
//! before went into the container's own stderr log (or nowhere, with a terminal).

mod support_containers;

use support_containers::{Env, can_run};

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("WARNING: "))
        .collect()
}

#[test]
fn berths_and_the_runtimes_warnings_reach_stderr() {
    if !can_run("warnings", &[]) {
        return;
    }
    let env = Env::new();
    // Nothing to say: no WARNING line.
    let (code, out, err) = env.run(&["-m", "32m"], &["echo", "quiet"]);
    assert_eq!((code, out.as_str()), (0, "quiet\n"), "{err}");
    assert!(warnings(&err).is_empty(), "{err}");

    // docker: "WARNING: OOM killer is disabled for the container, but no memory limit is
    // set, this can result in the system running out of resources."
    let (code, out, err) = env.run(&["--oom-kill-disable"], &["echo", "ran"]);
    assert_eq!((code, out.as_str()), (0, "ran\n"), "{err}");
    assert_eq!(
        warnings(&err),
        [
            "WARNING: OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
        ],
        "{err}"
    );
    // Also for a detached run (docker prints it before the id).
    let rootfs = env.rootfs.to_str().unwrap();
    let out = env.berth(&[
        "run",
        "-d",
        "--oom-kill-disable",
        "--rootfs",
        rootfs,
        "sleep",
        "30",
    ]);
    assert!(out.status.success());
    let id = support_containers::text(&out.stdout).trim().to_string();
    assert_eq!(warnings(&support_containers::text(&out.stderr)).len(), 1);
    env.ok(&["rm", "-f", &id]);

    // A warning of the runtime core: its seccomp cache directory cannot be made (a file is
    // in the way). The container still runs; the warning is the user's, not the container's
    // output.
    let cache = env.runroot.join("runtime").join("seccomp:cache");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::write(&cache, "").unwrap();
    let out = env.berth(&[
        "run",
        "--name",
        "w",
        "--rootfs",
        rootfs,
        "echo",
        "still-ran",
    ]);
    let err = support_containers::text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(support_containers::text(&out.stdout), "still-ran\n");
    let shown = warnings(&err);
    assert!(
        !shown.is_empty()
            && shown
                .iter()
                .all(|w| w.contains("seccomp cache") && w.contains("seccomp:cache")),
        "{err}"
    );
    assert_eq!(
        env.ok(&["logs", "w"]),
        "still-ran\n",
        "a warning went into the log"
    );
    // With --log-level error the user still sees it (docker's warnings are not log lines).
    let (_, _, err) = env.run(&["--log-level", "error"], &["true"]);
    assert!(!warnings(&err).is_empty(), "{err}");
    std::fs::remove_file(&cache).unwrap();
    let (_, _, err) = env.run(&[], &["true"]);
    assert!(warnings(&err).is_empty(), "{err}");
    env.ok(&["rm", "w"]);
}
