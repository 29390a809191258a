//! `run`: create and start in one process, then (in the foreground) forward signals to the
//! container's process, wait for it, and delete the container.
//!
//! Every signal is blocked from before the fork until the end, and waited for with
//! sigwaitinfo, so the init's SIGCHLD can never be lost however early it exits.

use std::path::Path;

use super::create::{CreateOptions, create_container};
use super::lifecycle;
use super::oom::{OomKill, OomTally};
use super::supervise::{TtyRelay, receive_master, supervise};
use crate::error::{Error, Result};
use crate::hooks::HookKind;
use crate::state::{StateRoot, Status};
use crate::sync::Message;
use crate::sys;

/// What `run` does after the process started.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub detach: bool,
    /// Keep the container's state after it exits (runc's --keep).
    pub keep: bool,
}

/// The result of a foreground run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The container process's exit code (128+signal when killed by a signal).
    pub exit_code: i32,
    /// Warnings of poststart and poststop hooks (and of OOM kills of other processes).
    pub warnings: Vec<Error>,
    /// The process died by SIGKILL and the container's cgroup counted OOM kills: the
    /// kernel's OOM killer killed it.
    pub oom: Option<OomKill>,
}

/// Runs a container. In the foreground this returns when the container's process exits.
pub fn run(
    root: &StateRoot,
    id: &str,
    bundle: &Path,
    create: CreateOptions,
    options: RunOptions,
) -> Result<RunOutcome> {
    let created = create_container(root, id, bundle, create, true)?;
    let super::create::Created {
        record,
        dir,
        cgroup,
        mut spawned,
        relay,
    } = created;
    if !options.detach {
        // Without a pid namespace the container's orphans would otherwise escape us.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    }
    // Let the others (state, kill) see and act on the container from now on.
    drop(dir);
    let pid = spawned.pid;
    // Start went out with the create; the sync socket is close-on-exec: EOF means the exec
    // happened.
    let start = match spawned.sync.recv() {
        Ok(None) => Ok(()),
        Ok(Some((Message::Error(text), _))) => Err(Error::Init(text)),
        Ok(Some((other, _))) => Err(Error::Init(format!("unexpected {other:?} at start"))),
        Err(e) => Err(e),
    };
    if let Err(e) = start {
        drop(spawned);
        let _ = cgroup.destroy();
        let _ = root.open(id).and_then(|d| d.remove());
        return Err(e);
    }
    spawned.disarm();
    let mut warnings = lifecycle::recorded_hooks(&record, HookKind::Poststart, Status::Running);
    if options.detach {
        sys::restore_signal_mask(&spawned.signal_mask).map_err(|e| Error::sys("sigprocmask", e))?;
        return Ok(RunOutcome {
            exit_code: 0,
            warnings,
            oom: None,
        });
    }
    let tty = match &relay {
        Some(socket) => Some(TtyRelay::new(receive_master(socket.as_fd())?)),
        None => None,
    };
    // systemd removes an emptied scope's cgroup at once: count while it is there.
    let tally = cgroup.systemd_unit().and_then(|_| OomTally::watch(&cgroup));
    let exit_code = supervise(pid, &spawned.pidfd, tty)?;
    // Only a SIGKILL can be the OOM killer's: then (and only then) ask the cgroup.
    let oom = if exit_code == 128 + libc::SIGKILL {
        match tally {
            Some(tally) => tally.finish(id, &cgroup, true),
            None => OomKill::of(id, &cgroup, true),
        }
    } else {
        None
    };
    if !options.keep {
        let deleted = lifecycle::delete(root, id, true)?;
        // delete tells of the same kills again.
        warnings.extend(
            deleted
                .into_iter()
                .filter(|w| oom.is_none() || !matches!(w, Error::OomKilled(_))),
        );
    }
    Ok(RunOutcome {
        exit_code,
        warnings,
        oom,
    })
}
