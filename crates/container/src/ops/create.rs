//! `create` and `run`: plan, reserve the state directory, make the cgroup, spawn the init,
//! drive it through setup (hooks in between), record the container.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::cgroup::ContainerCgroup;
use crate::error::{Error, Result};
use crate::hooks::{HookKind, SpecState, run_hooks};
use crate::kill_point::kill_point;
use crate::plan::{ContainerPlan, InitOptions};
use crate::spawn::{SpawnOptions, Spawned, spawn_init};
use crate::spec::{self, NamespaceKind, Plan};
use crate::state::{self, ContainerDir, OCI_VERSION, Record, StateRoot, Status};
use crate::sync::{Message, SyncSocket};

/// Options of `create` (and `run`) besides the bundle.
#[derive(Debug, Default)]
pub struct CreateOptions {
    pub pid_file: Option<PathBuf>,
    /// A connected console socket (the caller connects to `--console-socket`).
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// Socket activation: fds 3.. 3+n-1 came from systemd (LISTEN_FDS); they are passed on
    /// (before the --preserve-fds ones) and the process gets LISTEN_FDS=n and LISTEN_PID=1.
    pub listen_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `run` in the foreground: a terminal without a console socket is relayed by the
    /// runtime itself.
    pub relay_terminal: bool,
}

/// A container whose init is set up and waiting.
pub struct Created {
    pub record: Record,
    pub dir: ContainerDir,
    pub cgroup: ContainerCgroup,
    pub spawned: Spawned,
    /// Our end of the console socket when the runtime relays the terminal.
    pub relay: Option<SyncSocket>,
}

/// Reads and plans `<bundle>/config.json` for container `id`.
pub fn load_plan(id: &str, bundle: &Path) -> Result<(oci_spec::runtime::Spec, Plan)> {
    let bundle = std::path::absolute(bundle).map_err(|e| Error::path("resolve", bundle, e))?;
    let config = spec::load_config(&bundle)?;
    let mut plan = spec::plan(id, &bundle, &config)?;
    let lsms = crate::lsm::Lsms::probe();
    if plan.mount_label.is_some() && !lsms.selinux {
        log::warn!("linux.mountLabel is ignored: SELinux is not enabled on this host");
        plan.mount_label = None;
    }
    crate::lsm::check(
        lsms,
        plan.process.apparmor_profile.as_deref(),
        plan.process.selinux_label.as_deref(),
        "process",
    )?;
    Ok((config, plan))
}

/// Creates a container up to the point where its init waits for `start` (socket) or, with
/// `sync_start` (`run`), until it has been told to start (the caller then waits for the
/// exec on the sync socket).
pub fn create_container(
    root: &StateRoot,
    id: &str,
    bundle: &Path,
    options: CreateOptions,
    sync_start: bool,
) -> Result<Created> {
    let (config, mut plan) = load_plan(id, bundle)?;
    if crate::sealed::required(&config) && !crate::sealed::is_sealed() {
        return Err(Error::NeedsSealedRuntime);
    }
    if options.listen_fds > 0 {
        plan.process
            .env
            .retain(|v| !v.starts_with("LISTEN_FDS=") && !v.starts_with("LISTEN_PID="));
        plan.process
            .env
            .push(format!("LISTEN_FDS={}", options.listen_fds));
        plan.process.env.push("LISTEN_PID=1".to_string());
    }
    let mut options = options;
    let mut relay = None;
    if plan.process.terminal && options.console_socket.is_none() && options.relay_terminal {
        let (ours, theirs) = SyncSocket::pair()?;
        relay = Some(ours);
        options.console_socket = Some(theirs.into_fd());
        // The pty starts with the caller's window size, before the process looks at it.
        if plan.process.console_size.is_none() {
            plan.process.console_size = super::supervise::caller_window_size();
        }
    }
    if plan.process.terminal && options.console_socket.is_none() {
        return Err(Error::invalid(
            "process.terminal",
            "a terminal was requested: pass --console-socket (or run in the foreground)",
        ));
    }
    // Everything the init will read, in the kernel's form: bad input fails here, before
    // anything exists.
    let container = ContainerPlan::new(
        plan,
        InitOptions {
            preserve_fds: options.listen_fds + options.preserve_fds,
            no_pivot: options.no_pivot,
            no_new_keyring: options.no_new_keyring,
        },
        root,
    )?;
    let plan = &container.spec;
    let cgroup_plan = &container.cgroup;
    let dir = root.create(id)?;
    kill_point("create:reserved");
    let host_mounts = (!plan.namespaces.has(NamespaceKind::Mount)).then(|| plan.rootfs.clone());
    // Before anything else exists: a create killed from here on is cleaned up by `delete`.
    dir.save_pending(&state::Pending {
        cgroup: cgroup_plan.to_record(),
        host_mounts: host_mounts.clone(),
        systemd_unit: cgroup_plan.systemd_unit(),
    })?;
    // From here on, a failure must remove what was made: the guard does it on drop.
    let mut undo = Undo {
        dir: Some(dir),
        cgroup: None,
        host_mounts,
    };
    kill_point("create:pending");
    let cgroup = cgroup_plan.create()?;
    kill_point("create:cgroup");
    let cgroup = &*undo.cgroup.insert(cgroup);
    let dir = undo.dir.as_ref().expect("set above");
    let start_socket = if sync_start {
        None
    } else {
        Some(dir.listen_start_socket()?)
    };
    let options_pid_file = options.pid_file.clone();
    let mut spawned = spawn_init(
        &container,
        SpawnOptions {
            start_socket,
            console_socket: options.console_socket,
            cgroup_view: cgroup.view(plan.namespaces.is_new(NamespaceKind::Cgroup))?,
        },
        cgroup,
    )
    .map_err(|e| oom_during_setup(cgroup).unwrap_or(e))?;
    kill_point("create:spawned");
    let start_time = state::proc_stat(spawned.pid)
        .map(|s| s.start_time)
        .ok_or_else(|| Error::Init("the container init vanished during setup".into()))?;
    let mut record = Record {
        oci_version: OCI_VERSION.to_string(),
        id: id.to_string(),
        pid: spawned.pid,
        pid_start_time: start_time,
        bundle: plan.bundle.clone(),
        rootfs: plan.rootfs.clone(),
        created: state::rfc3339_now(),
        annotations: plan.annotations.clone(),
        cgroup: cgroup.to_record(),
        config,
        creating: true,
        systemd_unit: cgroup.systemd_unit().map(str::to_string),
    };
    // `state` shows the container as creating while its hooks run.
    if plan.hooks.prestart().is_some()
        || plan.hooks.create_runtime().is_some()
        || plan.hooks.create_container().is_some()
    {
        dir.save(&record)?;
    }
    drive_setup(plan, &spawned, cgroup).map_err(|e| oom_during_setup(cgroup).unwrap_or(e))?;
    kill_point("create:setup");
    if sync_start {
        // `run`: the process may start while the record is written (nothing reads it in
        // between that would care).
        spawned.sync.send(&Message::Start)?;
    }
    record.creating = false;
    dir.save(&record)?;
    kill_point("create:saved");
    if let Some(pid_file) = &options_pid_file {
        state::write_pid_file(pid_file, spawned.pid)?;
    }
    spawned.disarm();
    let (dir, cgroup) = undo.disarm();
    let cgroup = cgroup.created();
    Ok(Created {
        record,
        dir,
        cgroup,
        spawned,
        relay,
    })
}

/// Answers the init's requests until it reports ready.
fn drive_setup(plan: &Plan, spawned: &Spawned, cgroup: &ContainerCgroup) -> Result<()> {
    let signals = crate::sys::signalfd_all().map_err(|e| Error::sys("signalfd", e))?;
    // Until the container's process exists, a terminating signal ends the create.
    let mut on_signal = |signal: i32| {
        if SyncSocket::is_terminating(signal) {
            Err(Error::Interrupted(signal))
        } else {
            Ok(())
        }
    };
    loop {
        match spawned
            .sync
            .recv_or_signal(std::os::fd::AsFd::as_fd(&signals), &mut on_signal)?
        {
            Some((Message::RunHooks, _)) => {
                let state = SpecState::new(
                    &plan.id,
                    Status::Creating,
                    spawned.pid,
                    &plan.bundle,
                    &plan.annotations,
                )
                .to_json()?;
                if let Some(hooks) = plan.hooks.prestart() {
                    run_hooks(HookKind::Prestart, hooks, &state)?;
                }
                if let Some(hooks) = plan.hooks.create_runtime() {
                    run_hooks(HookKind::CreateRuntime, hooks, &state)?;
                }
                spawned.sync.send(&Message::Continue)?;
            }
            Some((Message::SeccompListener, Some(fd))) => {
                let profile = plan.seccomp.as_ref().ok_or_else(|| {
                    Error::Init("a seccomp notify fd arrived without a seccomp profile".into())
                })?;
                crate::seccomp::send_listener(profile, plan, spawned.pid, &fd)?;
            }
            Some((Message::Ready, _)) => return Ok(()),
            Some((Message::Error(text), _)) => return Err(Error::Init(text)),
            Some((other, _)) => {
                return Err(Error::Init(format!(
                    "unexpected {other:?} from the container init"
                )));
            }
            None => return Err(Error::Init(vanished_init(spawned.pid, cgroup))),
        }
    }
}

const OOM_DURING_SETUP: &str = "the container init was killed by the kernel's OOM killer \
                                during setup: linux.resources.memory.limit is too low";

/// The reason of a failed setup when the OOM killer took the init: whichever step noticed
/// first (a send that found the socket closed, say) would otherwise speak of itself.
fn oom_during_setup(cgroup: &ContainerCgroup) -> Option<Error> {
    (cgroup.inner().oom_kill_count().unwrap_or(0) > 0).then(|| Error::Init(OOM_DURING_SETUP.into()))
}

/// Why the init went away without a word: its exit status, and the OOM killer when the
/// memory limit was too small for the setup itself.
fn vanished_init(pid: i32, cgroup: &ContainerCgroup) -> String {
    use rustix::process::{Pid, WaitOptions, waitpid};
    let status = Pid::from_raw(pid)
        .and_then(|p| waitpid(Some(p), WaitOptions::empty()).ok().flatten())
        .map(|(_, status)| status);
    let how = match status {
        Some(s) if s.terminating_signal() == Some(libc::SIGKILL) => {
            if cgroup.inner().oom_kill_count().unwrap_or(0) > 0 {
                return OOM_DURING_SETUP.into();
            }
            "was killed by SIGKILL".to_string()
        }
        Some(s) => match (s.exit_status(), s.terminating_signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            _ => "exited".to_string(),
        },
        None => "exited".to_string(),
    };
    format!("the container init {how} during setup without reporting an error")
}

/// Detaches every mount at or below `dir` (a container without a mount namespace of its
/// own mounted them on the host).
pub fn unmount_below(dir: &Path) {
    for point in crate::init::mounts_below(dir) {
        if let Err(e) = rustix::mount::unmount(&point, rustix::mount::UnmountFlags::DETACH) {
            log::warn!("unmount {}: {e}", point.display());
        }
    }
}

/// Removes what a failed create made.
struct Undo {
    dir: Option<ContainerDir>,
    cgroup: Option<ContainerCgroup>,
    /// The rootfs of a container without a mount namespace: its mounts are on the host.
    host_mounts: Option<PathBuf>,
}

impl Undo {
    fn disarm(mut self) -> (ContainerDir, ContainerCgroup) {
        self.host_mounts = None;
        (
            self.dir.take().expect("dir is set"),
            self.cgroup.take().expect("cgroup is set"),
        )
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(rootfs) = self.host_mounts.take() {
            unmount_below(&rootfs);
        }
        // The init (if any) is killed and reaped by Spawned's own drop, which runs first.
        if let Some(cgroup) = self.cgroup.take()
            && let Err(e) = cgroup.destroy()
        {
            log::warn!("cleanup after failed create: {e}");
        }
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.remove()
        {
            log::warn!("cleanup after failed create: {e}");
        }
    }
}
