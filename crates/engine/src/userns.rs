//! Rootless `berth`: an unprivileged user's commands run as root of a user namespace that
//! maps the user's own id to 0 and its /etc/subuid and /etc/subgid ranges above it (as
//! podman maps them), written by the setuid helpers newuidmap and newgidmap, which check
//! every range against those files. A holder process (podman calls it the pause process)
//! keeps that namespace and a mount namespace of its own alive between commands, so every
//! command, every container's monitor and every container share them: a container started
//! by one command is stopped, exec'd into and removed by the next, and the overlay mounts of
//! its root stay where its monitor sees them. The holder's pid is in the run root
//! (`pause.pid`); `berth system migrate`'s job (ending it) is done by killing it.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::rootless::{IdMap, SubIdRange, default_mapping, subid_ranges};
use crate::sys;

/// Set once the command runs as root of the user's namespace.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether this `berth` runs rootless (in its user's namespace): no bridges, no cgroups of
/// its own on cgroup v1, slirp4netns by default.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The effective uid: anyone but 0 runs `berth` rootless.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Who runs `berth`, read before anything changes.
#[derive(Debug, Clone)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

impl User {
    /// The calling user: its ids, and its name from /etc/passwd (`$USER` when the file
    /// does not know the uid).
    pub fn current() -> User {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let from_passwd = fs::read_to_string("/etc/passwd").ok().and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _ = f.next()?;
                (f.next()? == uid.to_string()).then(|| name.to_string())
            })
        });
        let name = from_passwd
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| uid.to_string());
        User { uid, gid, name }
    }
}

/// The user's maps: its own id as 0, then its subordinate ranges. A user without ranges
/// gets an error that says how to add them (a container of one id could not run an image
/// whose files belong to other users).
pub fn user_mappings(user: &User) -> Result<(Vec<IdMap>, Vec<IdMap>)> {
    let ranges = |file: &'static str, id: u32| -> Result<Vec<SubIdRange>> {
        let text = fs::read_to_string(file).unwrap_or_default();
        let found = subid_ranges(&text, &user.name, id);
        if found.is_empty() {
            return Err(Error::Rootless(format!(
                "no subordinate ids for user {} in {file}: add a range, e.g. `usermod \
                 --add-subuids 100000-165535 --add-subgids 100000-165535 {}` (as root)",
                user.name, user.name
            )));
        }
        Ok(found)
    };
    let uids = ranges("/etc/subuid", user.uid)?;
    let gids = ranges("/etc/subgid", user.gid)?;
    Ok((
        default_mapping(user.uid, &uids),
        default_mapping(user.gid, &gids),
    ))
}

/// The owner shift of a container's files: Some for a `--userns keep-id` container (its
/// layers are the shifted copies, its changes stored with shifted owners), None when the
/// container's ids are the namespace's own.
pub fn shift_of(
    record: &crate::record::ContainerRecord,
) -> Result<Option<berth_image::snapshot::IdShift>> {
    match record.config.namespace_options().user {
        crate::namespaces::Mode::KeepId => Ok(Some(KeepId::of_this_namespace()?.shift())),
        _ => Ok(None),
    }
}

/// A `--userns keep-id` container's identity and maps, as seen from the user's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepId {
    /// The user's ids on the host: the container's process runs as them.
    pub uid: u32,
    pub gid: u32,
    /// The user's name in the host's /etc/passwd (the uid when it has none).
    pub name: String,
    /// Its group's name in the host's /etc/group (the user's name when it has none).
    pub group_name: String,
    pub uid_maps: Vec<IdMap>,
    pub gid_maps: Vec<IdMap>,
}

impl KeepId {
    /// From the namespace this command runs in (the holder's): its 0 is the user, its maps
    /// say how many ids it has.
    pub fn of_this_namespace() -> Result<KeepId> {
        let read = |file: &str| -> Result<(u32, u32)> {
            let path = format!("/proc/self/{file}");
            let text = fs::read_to_string(&path).map_err(|e| Error::path("read", &path, e))?;
            crate::rootless::map_owner_and_size(&text).ok_or_else(|| {
                Error::Rootless(format!(
                    "{path} maps no id 0: this is not the user's namespace"
                ))
            })
        };
        let (uid, uid_size) = read("uid_map")?;
        let (gid, gid_size) = read("gid_map")?;
        let name_of = |file: &str, id: u32| {
            fs::read_to_string(file).ok().and_then(|text| {
                text.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[2] == id.to_string()).then(|| f[0].to_string())
                })
            })
        };
        let name = name_of("/etc/passwd", uid).unwrap_or_else(|| uid.to_string());
        let group_name = name_of("/etc/group", gid).unwrap_or_else(|| name.clone());
        Ok(KeepId {
            uid,
            gid,
            name,
            group_name,
            uid_maps: crate::rootless::keep_id_mapping(uid, uid_size),
            gid_maps: crate::rootless::keep_id_mapping(gid, gid_size),
        })
    }

    /// The container's root as this namespace's ids (who owns the container's own files).
    pub fn root_ids(&self) -> (u32, u32) {
        let outside = |maps: &[IdMap]| maps.iter().find(|m| m.container == 0).map_or(0, |m| m.host);
        (outside(&self.uid_maps), outside(&self.gid_maps))
    }

    /// How the image's file owners move for this container (see berth_image's `shift`).
    pub fn shift(&self) -> berth_image::snapshot::IdShift {
        let ranges = |maps: &[IdMap]| {
            maps.iter()
                .map(|m| berth_image::snapshot::IdRange {
                    inside: m.container,
                    outside: m.host,
                    size: m.size,
                })
                .collect()
        };
        berth_image::snapshot::IdShift {
            uids: ranges(&self.uid_maps),
            gids: ranges(&self.gid_maps),
        }
    }

    /// The container's /etc/passwd and /etc/group: the image's, plus the user and its group
    /// as podman adds them (home: the working directory; shell /bin/sh) unless the image
    /// has their ids already.
    pub fn etc_files(&self, passwd: &str, group: &str, home: &str) -> (String, String) {
        let has = |text: &str, id: u32, field: usize| {
            text.lines()
                .any(|l| l.split(':').nth(field) == Some(id.to_string().as_str()))
        };
        let with_line = |text: &str, line: String| {
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
            out
        };
        let passwd = if has(passwd, self.uid, 2) {
            passwd.to_string()
        } else {
            with_line(
                passwd,
                format!(
                    "{}:*:{}:{}::{home}:/bin/sh\n",
                    self.name, self.uid, self.gid
                ),
            )
        };
        let group = if has(group, self.gid, 2) {
            group.to_string()
        } else {
            with_line(
                group,
                format!("{}:x:{}:{}\n", self.group_name, self.gid, self.name),
            )
        };
        (passwd, group)
    }
}

/// The variable that tells the re-executed `berth` it runs in its user's namespace.
const MARK: &str = "_BERTH_USERNS";

/// Makes this command root of the user's namespace: joins the holder's namespaces (starting
/// a holder first, under a lock in `runroot`, so that concurrent commands make one), then
/// executes `berth` again there with the same arguments and working directory, and `root`
/// and `runroot` in the environment (as root of the namespace it would pick root's
/// defaults). The exec matters: a process keeps the user namespace its program was started
/// in as its memory's owner, and the kernel lets only that namespace's root look into a
/// non-dumpable process of its (the container's init before its exec); the monitor of a
/// container forked from a command not started in the namespace could not reach its own
/// container's namespaces. Must be called while the process is single-threaded.
pub fn enter(user: &User, root: &Path, runroot: &Path) -> Result<std::convert::Infallible> {
    join_or_start(user, runroot)?;
    // the program's path, not /proc/self/exe: `ps` names processes after the file run
    let exe = std::env::current_exe().map_err(|e| Error::sys("find berth's program", e))?;
    let mut cmd = Command::new(exe);
    let mut args = std::env::args_os();
    if let Some(argv0) = args.next() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
    }
    cmd.args(args)
        .env(MARK, "1")
        .env("BERTH_ROOT", root)
        .env("BERTH_RUNROOT", runroot);
    let e = std::os::unix::process::CommandExt::exec(&mut cmd);
    Err(Error::sys("execute berth in the user's namespace", e))
}

/// In the `berth` that [`enter`] executed: marks the command rootless. The mark counts only
/// in a user namespace, so that it cannot make root's `berth` pretend.
pub fn resume() {
    if std::env::var_os(MARK).is_some_and(|v| v == "1")
        && berth_container::privilege::unprivileged()
    {
        ACTIVE.store(true, Ordering::Relaxed);
    }
}

fn join_or_start(user: &User, runroot: &Path) -> Result<()> {
    make_private_dir(runroot, user.uid)?;
    let cwd = std::env::current_dir().ok();
    let lock_path = runroot.join("pause.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::path("open", &lock_path, e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::path("lock", &lock_path, e.into()))?;
    let pid_path = runroot.join("pause.pid");
    // a holder that died (a reboot, a kill) leaves its pid behind: start a new one
    let existing = holder_pid(&pid_path, user.uid).and_then(|pid| open_namespaces(pid).ok());
    let namespaces = match existing {
        Some(fds) => fds,
        None => {
            let pid = start_holder(user)?;
            let tmp = pid_path.with_extension("pid.tmp");
            fs::write(&tmp, pid.to_string()).map_err(|e| Error::path("write", &tmp, e))?;
            fs::rename(&tmp, &pid_path).map_err(|e| Error::path("rename", &pid_path, e))?;
            open_namespaces(pid)?
        }
    };
    join(namespaces)?;
    drop(lock);
    if let Some(dir) = cwd {
        // setns into a mount namespace moves the working directory to its root
        let _ = std::env::set_current_dir(dir);
    }
    Ok(())
}

/// The live holder named by `pid_path`: a process of the user's whose user namespace is
/// not ours (a stale file after a reboot may name any process).
fn holder_pid(pid_path: &Path, uid: u32) -> Option<i32> {
    let pid: i32 = fs::read_to_string(pid_path).ok()?.trim().parse().ok()?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if fs::metadata(&proc).ok()?.uid() != uid {
        return None;
    }
    let theirs = fs::metadata(proc.join("ns/user")).ok()?;
    let ours = fs::metadata("/proc/self/ns/user").ok()?;
    (theirs.ino() != ours.ino()).then_some(pid)
}

/// Forks the holder: it unshares a user namespace, waits until we have mapped it, becomes
/// its root, makes its own mount namespace, and sleeps for good in a session of its own.
fn start_holder(user: &User) -> Result<i32> {
    let (uid_maps, gid_maps) = user_mappings(user)?;
    let (mut to_parent_r, to_parent_w) = pipe()?;
    let (to_child_r, mut to_child_w) = pipe()?;
    // SAFETY: `berth` is single-threaded here (before any command has started a thread).
    match unsafe { sys::fork() }.map_err(|e| Error::sys("fork the namespace holder", e))? {
        sys::Forked::Child => {
            drop(to_parent_r);
            drop(to_child_w);
            holder_main(to_parent_w, to_child_r)
        }
        sys::Forked::Parent(pid) => {
            drop(to_parent_w);
            drop(to_child_r);
            let mut byte = [0u8; 1];
            let unshared = to_parent_r.read(&mut byte).unwrap_or(0) == 1 && byte[0] == b'u';
            if !unshared {
                return Err(Error::Rootless(
                    "the namespace holder could not make a user namespace (is \
                     kernel.unprivileged_userns_clone 0, or user.max_user_namespaces?)"
                        .into(),
                ));
            }
            let mapped = write_maps(pid, &uid_maps, &gid_maps);
            let go: &[u8] = if mapped.is_ok() { b"m" } else { b"x" };
            let _ = to_child_w.write_all(go);
            mapped?;
            // the holder says it is ready (root, own mount namespace) or dies
            let ready = to_parent_r.read(&mut byte).unwrap_or(0) == 1 && byte[0] == b'r';
            if !ready {
                return Err(Error::Rootless(
                    "the namespace holder failed to set up its namespaces".into(),
                ));
            }
            Ok(pid)
        }
    }
}

fn pipe() -> Result<(fs::File, fs::File)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::sys("pipe", std::io::Error::from(e)))?;
    Ok((fs::File::from(r), fs::File::from(w)))
}

/// The holder's side. Never returns; any failure ends it (the parent reports).
fn holder_main(mut to_parent: fs::File, mut from_parent: fs::File) -> ! {
    // SAFETY: the forked child of a single-threaded process is single-threaded.
    if unsafe { sys::unshare_user_namespace() }.is_err() {
        sys::exit_now(1);
    }
    let _ = to_parent.write_all(b"u");
    let mut byte = [0u8; 1];
    if from_parent.read(&mut byte).unwrap_or(0) != 1 || byte[0] != b'm' {
        sys::exit_now(1);
    }
    let root_ok = rustix::thread::set_thread_res_gid(
        rustix::process::Gid::ROOT,
        rustix::process::Gid::ROOT,
        rustix::process::Gid::ROOT,
    )
    .is_ok()
        && rustix::thread::set_thread_res_uid(
            rustix::process::Uid::ROOT,
            rustix::process::Uid::ROOT,
            rustix::process::Uid::ROOT,
        )
        .is_ok();
    if !root_ok || sys::unshare_mount_namespace().is_err() {
        sys::exit_now(1);
    }
    let _ = rustix::process::setsid();
    // `ps` shows the fork's command line still; the name says what it is
    let _ = rustix::thread::set_name(c"berth-userns");
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..3 {
            let _ = sys::dup_onto(null.as_fd(), target);
        }
    }
    let _ = to_parent.write_all(b"r");
    drop(to_parent);
    drop(from_parent);
    sys::close_fds_except(&[]);
    sys::pause_forever()
}

/// newuidmap/newgidmap PID, with every map as INSIDE OUTSIDE COUNT.
fn write_maps(pid: i32, uid_maps: &[IdMap], gid_maps: &[IdMap]) -> Result<()> {
    for (helper, maps) in [("newuidmap", uid_maps), ("newgidmap", gid_maps)] {
        let mut cmd = Command::new(helper);
        cmd.arg(pid.to_string());
        for m in maps {
            cmd.args([
                m.container.to_string(),
                m.host.to_string(),
                m.size.to_string(),
            ]);
        }
        let out = cmd.output().map_err(|e| {
            Error::Rootless(format!(
                "{helper} is needed to map the user's subordinate ids (Debian package \
                 uidmap): {e}"
            ))
        })?;
        if !out.status.success() {
            return Err(Error::Rootless(format!(
                "{helper} refused the user's mapping: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// The holder's user and mount namespaces.
fn open_namespaces(pid: i32) -> Result<(OwnedFd, OwnedFd)> {
    let open = |kind: &str| -> Result<OwnedFd> {
        let path = format!("/proc/{pid}/ns/{kind}");
        fs::File::open(&path)
            .map(OwnedFd::from)
            .map_err(|e| Error::path("open", &path, e))
    };
    Ok((open("user")?, open("mnt")?))
}

/// setns into the holder's user namespace, then its mount namespace.
fn join((user, mnt): (OwnedFd, OwnedFd)) -> Result<()> {
    // SAFETY: single-threaded (see `enter`).
    unsafe { sys::set_namespace(user.as_fd(), libc::CLONE_NEWUSER) }
        .map_err(|e| Error::sys("join the user's user namespace", e))?;
    // SAFETY: as above.
    unsafe { sys::set_namespace(mnt.as_fd(), libc::CLONE_NEWNS) }
        .map_err(|e| Error::sys("join the user's mount namespace", e))?;
    Ok(())
}

/// The run root: made 0700 if missing; else it must be the user's own and private.
fn make_private_dir(dir: &Path, uid: u32) -> Result<()> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(Error::path("create", dir, e)),
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::path("stat", dir, e))?;
    crate::rootless::check_private_dir(dir, &meta, uid).map_err(Error::Rootless)
}
