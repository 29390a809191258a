//! The parent side of starting a container: prepare the namespaces that must exist before
//! the fork, clone the init with all namespace flags at once, then place it (id maps,
//! cgroups) and let it go.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

use crate::error::{Error, Result};
use crate::init::{CgroupView, InitContext, StartSignal, child_main};
use crate::plan::ContainerPlan;
use crate::spec::{IdMapping, NamespaceKind, Plan, TimeOffsets};
use crate::sync::{Message, SyncSocket};
use crate::sys::{self, Forked, SignalMask};

/// How the new init is placed into its cgroups.
pub trait CgroupPlacement {
    /// An fd of the container's cgroup v2 directory for CLONE_INTO_CGROUP, if any.
    fn clone_into(&self) -> Option<BorrowedFd<'_>>;
    /// What the init needs to join the v1 hierarchies itself (cheaper than being moved:
    /// see [`berth_cgroups::V1SelfJoin`]).
    fn open_v1_self_join(&self) -> Result<berth_cgroups::V1SelfJoin>;
    /// Moves `pid` into every cgroup it is not in yet: the v1 hierarchies unless
    /// `v1_joined` (the init did), and v2 unless `cloned_into`.
    fn attach(&self, pid: i32, cloned_into: bool, v1_joined: bool) -> Result<()>;
    /// Whether cgroup v1 hierarchies exist (the init joins them only after the clone).
    fn has_v1(&self) -> bool;
    /// Whether the cgroup comes into being only when the init is placed ([`Self::attach`]).
    fn made_at_placement(&self) -> bool {
        false
    }
}

/// The descriptors of a new init, and how its cgroups look from inside.
pub struct SpawnOptions {
    /// The listening start socket (`create`) or None (`run`: started over the sync socket).
    pub start_socket: Option<OwnedFd>,
    pub console_socket: Option<OwnedFd>,
    pub cgroup_view: CgroupView,
}

/// A running init that has not reported ready yet. Killed and reaped on drop unless
/// [`Spawned::release`] is called.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub sync: SyncSocket,
    /// The runtime's signal mask from before the spawn (all signals are blocked now).
    pub signal_mask: SignalMask,
    armed: bool,
}

impl Spawned {
    /// Leaves the process running when this value is dropped.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.armed {
            kill_and_reap(self.pid, &self.pidfd);
        }
    }
}

/// Sends SIGKILL through the pidfd and reaps the child.
/// Waits at most a second: a task frozen by the v1 freezer does not die until it is thawed,
/// and the runtime must not hang on it (whoever reaps orphans reaps it later).
pub fn kill_and_reap(pid: i32, pidfd: &OwnedFd) {
    let _ = pidfd_send_signal(pidfd, Signal::KILL);
    let timeout = rustix::event::Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    let mut fds = [rustix::event::PollFd::new(
        pidfd,
        rustix::event::PollFlags::IN,
    )];
    let _ = rustix::event::poll(&mut fds, Some(&timeout));
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
    }
}

/// Forks the init of `plan` and performs the placement steps (until the init reports the
/// next step itself: RunHooks, Ready or an error).
pub fn spawn_init(
    container: &ContainerPlan,
    options: SpawnOptions,
    cgroups: &dyn CgroupPlacement,
) -> Result<Spawned> {
    let plan = &container.spec;
    let (parent_sync, child_sync) = SyncSocket::pair()?;
    let staged = plan.namespaces.joined(NamespaceKind::User).is_some()
        || (plan.namespaces.is_new(NamespaceKind::User)
            && plan
                .namespaces
                .join
                .iter()
                .any(|(k, _)| !matches!(k, NamespaceKind::Pid | NamespaceKind::Time)));

    // The init joins its v1 cgroups itself, first thing. The files are opened here, so the
    // kernel checks our credentials, also when the init is in a new user namespace. Not in
    // the staged case, where the init is a grandchild forked after namespace changes.
    let mut v1_self_join = if staged {
        None
    } else {
        Some(cgroups.open_v1_self_join()?).filter(|j| !j.is_empty())
    };

    let signal_mask = sys::block_all_signals().map_err(|e| Error::sys("block signals", e))?;
    let restore = ParentNamespaces::enter(plan)?;
    let flags = if staged {
        0
    } else {
        plan.namespaces.new_flags()
            & !(NamespaceKind::Cgroup.clone_flag() | NamespaceKind::Time.clone_flag())
    };
    let into = cgroups.clone_into();
    // Born in its cgroup on a pure v2 host, the init can get its cgroup namespace at once.
    let cgroupns_flag = if into.is_some()
        && !cgroups.has_v1()
        && !staged
        && plan.namespaces.is_new(NamespaceKind::Cgroup)
    {
        NamespaceKind::Cgroup.clone_flag()
    } else {
        0
    };
    let mut cgroupns_at_clone = cgroupns_flag != 0;
    let mut cloned_into = into.is_some();
    // SAFETY: create runs single-threaded; the child side runs the init, which ends in
    // exec or exit_now and never returns here.
    let forked = match unsafe { sys::clone3(flags | cgroupns_flag, into) } {
        Ok(f) => f,
        // CLONE_INTO_CGROUP may be refused (e.g. an older kernel); attach afterwards.
        Err(e) if into.is_some() && e.raw_os_error() == Some(libc::EINVAL) => {
            cgroupns_at_clone = false;
            cloned_into = false;
            // SAFETY: as for the first attempt.
            unsafe { sys::clone3(flags, None) }.map_err(|e| Error::sys("clone3", e))?
        }
        Err(e) => {
            restore.leave()?;
            let _ = sys::restore_signal_mask(&signal_mask);
            return Err(Error::sys(format!("clone3 (flags {flags:#x})"), e));
        }
    };
    let (pid, pidfd) = match forked {
        Forked::Child => {
            drop(parent_sync);
            let ctx = InitContext {
                plan: container,
                start: match options.start_socket {
                    Some(fd) => StartSignal::Socket(fd),
                    None => StartSignal::Sync,
                },
                console_socket: options.console_socket,
                cgroups: options.cgroup_view,
                staged,
                signal_mask: &signal_mask,
                cgroupns_at_clone,
                v1_self_join: v1_self_join.as_ref(),
                cgroup_made_at_placement: cgroups.made_at_placement(),
            };
            child_main(&ctx, &child_sync)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(child_sync);
    drop(options.start_socket);
    let v1_joined = v1_self_join.take().is_some();
    let mut spawned = Spawned {
        pid,
        pidfd,
        sync: parent_sync,
        signal_mask,
        armed: true,
    };
    restore.leave()?;

    let placed = if staged {
        place_staged(plan, &mut spawned, cgroups, cloned_into)
    } else {
        (|| {
            if plan.namespaces.is_new(NamespaceKind::User) {
                write_id_maps(pid, plan)?;
            }
            cgroups.attach(pid, cloned_into, v1_joined)?;
            spawned.sync.send(&Message::Continue)
        })()
    };
    // The init works while we place it; if it failed meanwhile, its reason beats ours.
    if let Err(e) = placed {
        return Err(match spawned.sync.pending_error() {
            Some(text) => Error::Init(text),
            None => e,
        });
    }
    Ok(spawned)
}

/// The staged conversation: id maps for the first child, then the pid of the real init.
fn place_staged(
    plan: &Plan,
    spawned: &mut Spawned,
    cgroups: &dyn CgroupPlacement,
    cloned_into: bool,
) -> Result<()> {
    let first = spawned.pid;
    loop {
        match spawned.sync.recv()? {
            Some((Message::NeedIdMaps, _)) => {
                write_id_maps(first, plan)?;
                spawned.sync.send(&Message::Continue)?;
            }
            Some((Message::InitPid(pid), _)) => {
                if pid != first {
                    // The first child forked the init as our child (CLONE_PARENT) and exits.
                    if let Some(p) = Pid::from_raw(first) {
                        let _ = rustix::process::waitpid(
                            Some(p),
                            rustix::process::WaitOptions::empty(),
                        );
                    }
                    let p = Pid::from_raw(pid)
                        .ok_or_else(|| Error::Init(format!("invalid init pid {pid}")))?;
                    spawned.pidfd = pidfd_open(p, PidfdFlags::empty())
                        .map_err(|e| Error::sys("pidfd_open of the init", e))?;
                    spawned.pid = pid;
                }
                cgroups.attach(spawned.pid, cloned_into, false)?;
                spawned.sync.send(&Message::Continue)?;
                return Ok(());
            }
            Some((Message::Error(text), _)) => return Err(Error::Init(text)),
            Some((other, _)) => {
                return Err(Error::Init(format!(
                    "unexpected {other:?} while preparing namespaces"
                )));
            }
            None => {
                return Err(Error::Init(
                    "the container init exited while preparing its namespaces".into(),
                ));
            }
        }
    }
}

/// Writes the uid and gid maps of a child's new user namespace.
///
/// Root writes them. An unprivileged user (a rootless runtime) may write only a map of its
/// own id, and a gid map only once setgroups is denied in the namespace (the kernel's rule:
/// else dropping a group could give access its denial was meant to stop); any other map
/// goes through the setuid helpers newuidmap and newgidmap, which check it against
/// /etc/subuid and /etc/subgid, as runc and podman do.
fn write_id_maps(pid: i32, plan: &Plan) -> Result<()> {
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    for (file, maps, own, helper) in [
        ("uid_map", &plan.uid_mappings, euid, "newuidmap"),
        ("gid_map", &plan.gid_mappings, egid, "newgidmap"),
    ] {
        let path = format!("/proc/{pid}/{file}");
        if euid == 0 {
            fs::write(&path, render_id_maps(maps)).map_err(|e| Error::path("write", path, e))?;
        } else if is_own_id_only(maps, own) {
            if file == "gid_map" {
                let setgroups = format!("/proc/{pid}/setgroups");
                fs::write(&setgroups, "deny").map_err(|e| Error::path("write", setgroups, e))?;
            }
            fs::write(&path, render_id_maps(maps)).map_err(|e| Error::path("write", path, e))?;
        } else {
            run_id_map_helper(helper, pid, maps, file)?;
        }
    }
    Ok(())
}

fn render_id_maps(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// The map is one id: the caller's own.
fn is_own_id_only(maps: &[IdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.host_id == own && m.size == 1)
}

/// newuidmap/newgidmap PID INSIDE OUTSIDE COUNT...
fn run_id_map_helper(helper: &str, pid: i32, maps: &[IdMapping], file: &str) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id.to_string(),
            m.host_id.to_string(),
            m.size.to_string(),
        ]);
    }
    let field = if file == "uid_map" {
        "linux.uidMappings"
    } else {
        "linux.gidMappings"
    };
    let out = cmd.output().map_err(|e| {
        Error::Unsupported(format!(
            "{field} maps more than the user's own id, which needs {helper} (Debian \
             package uidmap): {e}"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Unsupported(format!(
            "{field}: {helper} refused the mapping ({}): the user's ranges in /etc/subuid \
             and /etc/subgid must hold every host id it names",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Namespaces the runtime itself enters before the fork because they only take effect for
/// children (pid, time), and how to get back out afterwards.
struct ParentNamespaces {
    saved: Vec<(OwnedFd, u64)>,
}

impl ParentNamespaces {
    fn enter(plan: &Plan) -> Result<Self> {
        let mut saved = Vec::new();
        for kind in [NamespaceKind::Pid, NamespaceKind::Time] {
            let joined = plan.namespaces.joined(kind);
            let new_time = kind == NamespaceKind::Time && plan.namespaces.is_new(kind);
            if joined.is_none() && !new_time {
                continue;
            }
            let own = format!("/proc/self/ns/{}", kind.proc_name());
            let own_fd = rustix::fs::open(&own, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::path("open", &own, e.into()))?;
            saved.push((own_fd, kind.clone_flag()));
            if let Some(path) = joined {
                let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| Error::path("open namespace", path, e.into()))?;
                sys::set_namespace(fd.as_fd(), kind.clone_flag())
                    .map_err(|e| Error::path("join namespace", path, e))?;
            } else {
                // SAFETY: single-threaded; a new time namespace applies only to the
                // children forked next, and the runtime leaves it right after the fork.
                unsafe { sys::unshare(kind.clone_flag()) }
                    .map_err(|e| Error::sys("unshare time namespace", e))?;
                if let Some(offsets) = plan.time_offsets {
                    write_time_offsets(&offsets)?;
                }
            }
        }
        Ok(ParentNamespaces { saved })
    }

    fn leave(self) -> Result<()> {
        for (fd, flag) in self.saved {
            sys::set_namespace(fd.as_fd(), flag)
                .map_err(|e| Error::sys("return to the runtime's namespace", e))?;
        }
        Ok(())
    }
}

fn write_time_offsets(offsets: &TimeOffsets) -> Result<()> {
    let text = format!(
        "monotonic {} {}\nboottime {} {}\n",
        offsets.monotonic.0, offsets.monotonic.1, offsets.boottime.0, offsets.boottime.1
    );
    fs::write("/proc/self/timens_offsets", text)
        .map_err(|e| Error::path("write", "/proc/self/timens_offsets", e))
}
