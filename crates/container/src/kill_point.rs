//! A test hook for crash safety: with `BERTH_TEST_KILL_AT=<step>` in its environment, a
//! debug build of the runtime SIGKILLs itself when it reaches that step of a command (the
//! steps are named `create:cgroup`, `start:sent`, …; see the call sites). The reliability
//! tests use it to check that whatever a killed command leaves behind, `delete --force`
//! removes. Release builds compile it to nothing: no environment lookup on the fast path.

/// Dies by SIGKILL here when the test hook names `step`. Only ever called in the runtime
/// process itself, never in a forked init or exec child.
#[cfg(debug_assertions)]
pub(crate) fn kill_point(step: &str) {
    if std::env::var_os("BERTH_TEST_KILL_AT").is_some_and(|v| v == step) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // The signal is taken on the way out of the kernel; nothing runs after it.
        loop {
            std::thread::park();
        }
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn kill_point(_step: &str) {}
