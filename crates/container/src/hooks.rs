//! The six OCI hooks: each runs with the container's state on stdin, its own args and env,
//! and an optional timeout. Output is captured (in a memfd, so a chatty hook can never block
//! on a full pipe) and quoted when the hook fails.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::MemfdFlags;
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::state::{OCI_VERSION, Status};

/// Which hook list is running (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

/// The runtime-spec state object, as hooks receive it on stdin and `state` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a std::path::Path,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: &'a std::collections::HashMap<String, String>,
}

impl<'a> SpecState<'a> {
    pub fn new(
        id: &'a str,
        status: Status,
        pid: i32,
        bundle: &'a std::path::Path,
        annotations: &'a std::collections::HashMap<String, String>,
    ) -> Self {
        SpecState {
            oci_version: OCI_VERSION,
            id,
            status,
            pid,
            bundle,
            annotations,
        }
    }

    /// The JSON text. Only a bundle path that is not UTF-8 cannot be written (the planner
    /// refuses one); it is an error, never an abort of the init, which runs hooks too.
    pub fn to_json(&self) -> crate::error::Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| {
            crate::error::Error::invalid("bundle", format!("the hooks' state document: {e}"))
        })
    }
}

/// Runs every hook of a list in order and stops at the first failure.
pub fn run_hooks(kind: HookKind, hooks: &[Hook], state: &[u8]) -> Result<()> {
    for hook in hooks {
        run_hook(kind, hook, state)?;
    }
    Ok(())
}

/// Runs every hook of a list, turning failures into warnings (poststart, poststop: the
/// runtime-spec says the lifecycle continues).
pub fn run_hooks_warning(kind: HookKind, hooks: &[Hook], state: &[u8]) -> Vec<Error> {
    hooks
        .iter()
        .filter_map(|hook| run_hook(kind, hook, state).err())
        .collect()
}

fn run_hook(kind: HookKind, hook: &Hook, state: &[u8]) -> Result<()> {
    let path = hook.path().display().to_string();
    let fail = |message: String| Error::Hook {
        hook: kind.name(),
        path: path.clone(),
        message,
    };
    let output = rustix::fs::memfd_create("berth-hook-output", MemfdFlags::CLOEXEC)
        .map_err(|e| fail(format!("memfd: {e}")))?;
    let output = std::fs::File::from(output);
    let args = hook.args().clone().unwrap_or_default();
    let mut command = Command::new(hook.path());
    if let Some((argv0, rest)) = args.split_first() {
        command.arg0(argv0).args(rest);
    }
    command.env_clear();
    for var in hook.env().iter().flatten() {
        match var.split_once('=') {
            Some((k, v)) => command.env(k, v),
            None => command.env(var, ""),
        };
    }
    command
        .stdin(Stdio::piped())
        .stdout(output.try_clone().map_err(|e| fail(e.to_string()))?)
        .stderr(output.try_clone().map_err(|e| fail(e.to_string()))?);
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin may exit first: EPIPE is not a failure.
        let _ = stdin.write_all(state);
    }
    let timeout = hook.timeout().map(|t| Duration::from_secs(t as u64));
    let status = match wait_with_timeout(&mut child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                timeout.unwrap_or_default().as_secs()
            )));
        }
        Err(e) => return Err(fail(format!("wait: {e}"))),
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut output = output;
    let _ = output.rewind();
    let _ = output.take(4096).read_to_string(&mut text);
    let text = text.trim();
    Err(fail(if text.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {text}")
    }))
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Option<Duration>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(timeout) = timeout else {
        return child.wait().map(Some);
    };
    // The kernel's pids are positive; without one there is nothing to wait on by pidfd.
    let pid = Pid::from_raw(child.id() as i32)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return child.try_wait();
        }
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    fn hook(path: &str, args: &[&str], timeout: Option<i64>) -> Hook {
        let mut h = Hook::default();
        h.set_path(PathBuf::from(path));
        h.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        h.set_env(Some(vec!["FOO=bar".into()]));
        h.set_timeout(timeout);
        h
    }

    fn state() -> Vec<u8> {
        let annotations = HashMap::new();
        SpecState::new("c1", Status::Created, 42, Path::new("/b"), &annotations)
            .to_json()
            .unwrap()
    }

    #[test]
    fn hook_gets_state_env_and_args() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("cat > {0}; echo \"$FOO $0 $1\" >> {0}", out.display());
        let h = hook("/bin/sh", &["sh", "-c", &script, "arg1"], None);
        run_hooks(HookKind::Prestart, &[h], &state()).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.starts_with("{\"ociVersion\""), "{got}");
        assert!(
            got.contains("\"id\":\"c1\"") && got.contains("\"pid\":42"),
            "{got}"
        );
        assert!(
            got.ends_with("bar arg1 \n") || got.ends_with("bar arg1\n"),
            "{got}"
        );
    }

    #[test]
    fn failing_hook_is_reported_with_its_output() {
        let h = hook("/bin/sh", &["sh", "-c", "echo broken >&2; exit 3"], None);
        let e = run_hooks(HookKind::CreateRuntime, &[h], &state())
            .unwrap_err()
            .to_string();
        assert!(e.contains("createRuntime") && e.contains("broken"), "{e}");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook("/bin/sh", &["sh", "-c", "sleep 10"], Some(1));
        let start = Instant::now();
        let e = run_hooks(HookKind::Poststart, &[h], &state())
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn warnings_do_not_stop_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let second = format!("touch {}", marker.display());
        let errors = run_hooks_warning(
            HookKind::Poststop,
            &[
                hook("/bin/false", &["false"], None),
                hook("/bin/sh", &["sh", "-c", &second], None),
            ],
            &state(),
        );
        assert_eq!(errors.len(), 1);
        assert!(marker.exists());
    }
}
