//! The verbs on containers: create, start, stop, kill, rm, wait, exec. The CLI calls these
//! (and tests may call them directly); output formatting is the CLI's.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_container::ops::{ExecArgs, ExecOptions, ExecProcess};
use rustix::fs::{FlockOperation, Mode, OFlags};

use crate::Engine;
use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::record::{ContainerRecord, ImageDefaults, RunState};
use crate::spec;
use crate::status::{self, State};

/// Whether the container must be started by a berth running from a sealed copy of itself
/// (CAP_SYS_PTRACE in its bounding set: see `berth_container::sealed`). The command line
/// re-executes itself before doing anything when this says so.
pub fn needs_sealed_runtime(config: &ContainerConfig) -> bool {
    use crate::namespaces::Mode;
    // A joined pid namespace is shared with another container's processes.
    let shared_pid = matches!(
        config.namespace_options().pid,
        Mode::Container(_) | Mode::Path(_)
    );
    shared_pid
        || spec::capabilities(config).is_ok_and(|caps| caps.iter().any(|c| c == "CAP_SYS_PTRACE"))
        || !seccomp_file_allows_execveat(config)
}

/// A `--security-opt seccomp=FILE` profile that does not plainly allow execveat keeps the
/// init from exec'ing through its sealed trampoline (see `berth_container::sealed`); one
/// that cannot be read as an OCI profile counts as not allowing it. The default profile
/// and unconfined allow it.
fn seccomp_file_allows_execveat(config: &ContainerConfig) -> bool {
    let Some(path) = config.seccomp.as_deref().filter(|p| *p != "unconfined") else {
        return true;
    };
    fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<oci_spec::runtime::LinuxSeccomp>(&text).ok())
        .is_some_and(|profile| berth_container::sealed::profile_allows_execveat(&profile))
}

/// `create`: records a container (nothing runs yet). Returns its record.
pub fn create(
    engine: &Engine,
    name: Option<&str>,
    config: ContainerConfig,
) -> Result<ContainerRecord> {
    let (image_id, image) = match &config.rootfs {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Error::flag(
                    "--rootfs",
                    dir.display().to_string(),
                    "not a directory",
                ));
            }
            (String::new(), ImageDefaults::default())
        }
        None => crate::image::resolve(&engine.root, &config.image)?,
    };
    let mut config = config;
    if let Some(dir) = &config.rootfs {
        let dir = fs::canonicalize(dir).map_err(|e| Error::path("resolve --rootfs", dir, e))?;
        config.image = dir.display().to_string();
        config.rootfs = Some(dir);
    }
    for m in &config.mounts {
        if let Some(src) = &m.source
            && m.kind == "bind"
            && !src.exists()
        {
            return Err(Error::flag(
                "-v/--mount",
                src.display().to_string(),
                "the source does not exist on the host",
            ));
        }
    }
    // The image's Volumes: an anonymous volume each, unless a mount of the flags covers
    // the path (docker's and podman's rule).
    for dst in &image.volumes {
        let dst = match dst.trim_end_matches('/') {
            "" => "/",
            d => d,
        };
        if !dst.starts_with('/')
            || config
                .mounts
                .iter()
                .any(|m| m.destination.trim_end_matches('/') == dst)
        {
            continue;
        }
        config.mounts.push(crate::config::MountSpec {
            kind: "volume".into(),
            source: None,
            destination: dst.to_string(),
            read_only: false,
            options: Vec::new(),
        });
    }
    for m in config.mounts.iter_mut().filter(|m| m.kind == "volume") {
        let dir = match &m.source {
            Some(name) => crate::volume::path_for(engine, &name.to_string_lossy(), true)?,
            None => crate::volume::create_anonymous(engine)?.mountpoint,
        };
        m.source = Some(dir);
    }
    spec::capabilities(&config)?;
    if let Some(profile) = config.seccomp.as_deref()
        && profile != "unconfined"
    {
        let text = fs::read_to_string(profile)
            .map_err(|e| Error::path("read seccomp profile", profile, e))?;
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| Error::flag("--security-opt seccomp", profile, e.to_string()))?;
    }
    crate::network::check(engine, &config.net)?;
    config.namespaces.check(engine)?;
    config.resources.throttle.check()?;
    if crate::userns::active() {
        spec::refuse_rootless_limits_on_v1(config.resources.limits_asked())?;
    }
    let (id, name) = engine.records.reserve(name)?;
    let mut record = ContainerRecord {
        id: id.clone(),
        name,
        created: crate::time::now(),
        image_id,
        image,
        config,
        path: String::new(),
        args: Vec::new(),
        state: RunState::default(),
    };
    let made = (|| -> Result<()> {
        let argv = spec::command_line(&record)?;
        record.path = argv[0].clone();
        record.args = argv[1..].to_vec();
        let dir = engine.container_dir(&id);
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let files = [
            ("hostname", format!("{}\n", spec::hostname(&record))),
            ("hosts", spec::hosts_file(&record)),
            (
                "resolv.conf",
                spec::resolv_conf(&host_resolv, &record.config),
            ),
        ];
        for (file, text) in files {
            let path = dir.join(file);
            fs::write(&path, text).map_err(|e| Error::path("write", &path, e))?;
        }
        if !record.image_id.is_empty() {
            crate::image::hold(&engine.root, &record.image_id, &id)?;
        }
        engine.records.save(&record)
    })();
    if let Err(e) = made {
        remove_record(engine, &record);
        return Err(e);
    }
    crate::events::append(engine, &Event::container(&record, "create", &[]));
    Ok(record)
}

/// Gathers what the spec needs from the system and builds it.
/// Also returns the warnings for the user: what this host cannot apply was left out.
pub fn build_spec(
    engine: &Engine,
    record: &ContainerRecord,
    rootfs: &Path,
    console_size: Option<(u16, u16)>,
) -> Result<(oci_spec::runtime::Spec, Vec<String>)> {
    let host = crate::warnings::Host::probe();
    let mut record = record.clone();
    let warnings = crate::warnings::discard_unsupported(&mut record.config, host);
    let record = &record;
    let config = &record.config;
    let user_spec = config
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| record.image.user.clone());
    let mut passwd = read_in_root(rootfs, "etc/passwd");
    let mut group = read_in_root(rootfs, "etc/group");
    let mut namespaces = config.namespace_options().resolve(engine)?;
    if let Some(keep) = &namespaces.keep_id {
        // podman's keep-id: the user and its group are added to the image's files (bound
        // over them: the image's layers stay as they are), the home is the working dir
        let (p, g) = keep.etc_files(&passwd, &group, &spec::working_dir(record)?);
        let dir = engine.container_dir(&record.id);
        for (file, text) in [("passwd", &p), ("group", &g)] {
            let path = dir.join(file);
            fs::write(&path, text).map_err(|e| Error::path("write", &path, e))?;
            // root's inside, as the image's own files are
            let (uid, gid) = keep.root_ids();
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .map_err(|e| Error::path("give the container's root", &path, e))?;
        }
        (passwd, group) = (p, g);
    }
    let user = match &namespaces.keep_id {
        // the user's own ids unless --user says otherwise (the image's USER does not)
        Some(keep) if config.user.as_deref().is_none_or(str::is_empty) => spec::resolve_user(
            &format!("{}:{}", keep.uid, keep.gid),
            &config.group_add,
            &passwd,
            &group,
        )?,
        _ => spec::resolve_user(&user_spec, &config.group_add, &passwd, &group)?,
    };
    let limit = |r: rustix::process::Resource| {
        let l = rustix::process::getrlimit(r);
        (l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX))
    };
    let mut devices = Vec::new();
    for d in &config.devices {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = fs::metadata(&d.host).map_err(|e| Error::path("--device", &d.host, e))?;
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else if meta.file_type().is_block_device() {
            'b'
        } else {
            return Err(Error::flag(
                "--device",
                d.host.display().to_string(),
                "not a device node",
            ));
        };
        let rdev = meta.rdev();
        devices.push(spec::HostDevice {
            container_path: d.container.clone(),
            kind,
            major: rustix::fs::major(rdev) as i64,
            minor: rustix::fs::minor(rdev) as i64,
            mode: meta.mode() & 0o7777,
            permissions: d.permissions.clone(),
        });
    }
    let seccomp_file = match config.seccomp.as_deref() {
        Some("unconfined") | None => None,
        Some(path) => Some(
            fs::read_to_string(path).map_err(|e| Error::path("read seccomp profile", path, e))?,
        ),
    };
    crate::namespaces::expose_peer_shm(engine, &record.id, &mut namespaces)?;
    let swap_accounting = host.swap_accounting;
    let spec = spec::build(
        record,
        &spec::Inputs {
            rootfs,
            container_dir: &engine.container_dir(&record.id),
            user,
            nofile: limit(rustix::process::Resource::Nofile),
            nproc: limit(rustix::process::Resource::Nproc),
            devices,
            seccomp_file,
            swap_accounting,
            host_caps: spec::host_bounding_set(),
            console_size,
            network_peer: crate::network::join_netns(engine, &config.net)?,
            cgroup_manager: engine.cgroup_manager,
            namespaces,
            throttle: config.resources.throttle.spec_lists()?,
        },
    )?;
    Ok((spec, warnings))
}

/// Reads a small file of a container's root filesystem, resolved inside it (a symlink in
/// the image cannot make us read a host file). Missing: empty.
fn read_in_root(rootfs: &Path, path: &str) -> String {
    use std::io::Read;
    let Ok(root) = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return String::new();
    };
    let Ok(fd) = rustix::fs::openat2(
        &root,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    ) else {
        return String::new();
    };
    let mut text = String::new();
    let _ = fs::File::from(fd).take(1 << 20).read_to_string(&mut text);
    text
}

/// Holds `<dir>/start.lock` while a monitor is being started, so two `start`s of one
/// container never fork two monitors.
pub struct StartLock(#[allow(dead_code)] OwnedFd);

fn start_lock(engine: &Engine, id: &str) -> Result<StartLock> {
    let path = engine.container_dir(id).join("start.lock");
    let fd = rustix::fs::open(
        &path,
        OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| Error::path("open", &path, e.into()))?;
    rustix::fs::flock(&fd, FlockOperation::LockExclusive)
        .map_err(|e| Error::path("lock", &path, e.into()))?;
    Ok(StartLock(fd))
}

/// `start`: forks the container's monitor, which starts it. Returns the connection to the
/// monitor (the caller waits for STARTED on it, or attaches) and the start lock, to drop
/// once STARTED or ERROR came. `None` when the container already runs (docker's start of
/// a running container succeeds and does nothing).
///
/// `console_size` is the caller's terminal size for a `-t` container (see
/// [`crate::client::terminal_size`]).
pub fn start(
    engine: &Engine,
    id: &str,
    console_size: Option<(u16, u16)>,
) -> Result<Option<(OwnedFd, StartLock)>> {
    let lock = start_lock(engine, id)?;
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    match live.state {
        State::Running | State::Paused => return Ok(None),
        State::Restarting => {
            return Err(Error::State {
                name: record.name,
                state: "restarting".into(),
                message: "it is waiting to be restarted by its policy".into(),
            });
        }
        State::Created | State::Exited => {}
    }
    // A container that is started again forgets a previous stop (a new one has none: no
    // write).
    if record.state.stopped_by_user || !record.state.error.is_empty() {
        engine.records.update(id, |r| {
            r.state.stopped_by_user = false;
            r.state.error.clear();
        })?;
    }
    let socket = crate::monitor::spawn(engine, id, console_size)?;
    Ok(Some((socket, lock)))
}

/// `stop`: the stop signal, then SIGKILL after the timeout; waits until the container is
/// recorded as exited. A stopped container is left alone.
pub fn stop(engine: &Engine, id: &str, timeout: Option<Duration>) -> Result<()> {
    stop_process(engine, id, timeout)?;
    if let Ok(record) = engine.records.load(id) {
        crate::events::append(engine, &Event::container(&record, "stop", &[]));
    }
    Ok(())
}

fn stop_process(engine: &Engine, id: &str, timeout: Option<Duration>) -> Result<()> {
    let (record, live) = status::live(engine, id)?;
    let Some(record) = record else { return Ok(()) };
    engine
        .records
        .update(id, |r| r.state.stopped_by_user = true)?;
    if live.state == State::Exited || live.state == State::Created {
        return Ok(());
    }
    let runtime = engine.runtime();
    let signal = crate::signals::stop_signal_number(&record);
    let timeout = timeout.unwrap_or_else(|| crate::signals::stop_timeout(&record));
    if live.state == State::Running && timeout > Duration::ZERO {
        let _ = berth_container::ops::kill(&runtime, id, signal, false);
        if wait_until_stopped(engine, id, timeout) {
            return Ok(());
        }
    }
    let _ = berth_container::ops::kill(&runtime, id, libc::SIGKILL, true);
    if !wait_until_stopped(engine, id, Duration::from_secs(30)) {
        return Err(Error::State {
            name: record.name,
            state: "running".into(),
            message: "it did not stop within 30 seconds of SIGKILL".into(),
        });
    }
    Ok(())
}

/// Polls until the container is no longer running (and its monitor has written the
/// exit down, or settled it if the monitor is gone). False at the timeout.
fn wait_until_stopped(engine: &Engine, id: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        match status::live(engine, id) {
            Ok((_, live)) if !live.state.is_active() && live.state != State::Restarting => {
                return true;
            }
            Err(_) => return true,
            Ok(_) => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// `kill -s SIGNAL`.
pub fn kill(engine: &Engine, id: &str, signal: i32) -> Result<()> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    crate::events::append(
        engine,
        &Event::container(&record, "kill", &[("signal", &signal.to_string())]),
    );
    if !live.state.is_active() {
        return Err(Error::State {
            name: record.name,
            state: live.state.as_str().into(),
            message: "the container is not running".into(),
        });
    }
    if signal == libc::SIGKILL {
        engine
            .records
            .update(id, |r| r.state.stopped_by_user = true)?;
    }
    berth_container::ops::kill(&engine.runtime(), id, signal, false)?;
    Ok(())
}

/// `rm [-f]`: a running container needs `force` (it is killed first).
pub fn remove(engine: &Engine, id: &str, force: bool) -> Result<()> {
    remove_stopping_within(engine, id, force, Duration::ZERO)
}

/// [`remove`], where `--force` stops a running container as `stop -t` does (its stop
/// signal, then SIGKILL after `timeout`) rather than killing it at once: podman's `rm -t`.
pub fn remove_stopping_within(
    engine: &Engine,
    id: &str,
    force: bool,
    timeout: Duration,
) -> Result<()> {
    let (record, live) = status::live(engine, id)?;
    let Some(record) = record else { return Ok(()) };
    if live.state.is_active() || live.state == State::Restarting {
        if !force {
            return Err(Error::State {
                name: record.name,
                state: live.state.as_str().into(),
                message: "cannot remove a running container: stop it first or use --force".into(),
            });
        }
        stop(engine, id, Some(timeout))?;
    }
    // The monitor may still be finishing (an --rm container removes itself).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match engine.records.load(id) {
            Ok(r) if status::monitor_alive(&r) => std::thread::sleep(Duration::from_millis(5)),
            Ok(_) => break,
            Err(_) => return Ok(()),
        }
    }
    let locked = match engine.records.lock(id) {
        Ok(l) => l,
        Err(Error::NoSuchContainer(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let record = locked.load()?;
    crate::monitor::cleanup_runtime(engine, &record);
    remove_record(engine, &record);
    Ok(())
}

/// Deletes a container's record and everything of it on disk (the runtime state must be
/// gone already): the image hold, the rootfs mount, the directories, the name.
pub fn remove_record(engine: &Engine, record: &ContainerRecord) {
    if let Some(tree) = remove_record_deferred(engine, record) {
        let _ = fs::remove_dir_all(tree);
    }
}

/// [`remove_record`] but for the deletion of the container's directory tree: it is moved
/// out of the way (the container no longer exists for anyone) and its new path returned
/// for the caller to delete, so a `--rm` monitor tells its client the exit first.
pub fn remove_record_deferred(
    engine: &Engine,
    record: &ContainerRecord,
) -> Option<std::path::PathBuf> {
    crate::events::append(engine, &Event::container(record, "destroy", &[]));
    if let Err(e) = crate::network::teardown(engine, &record.id) {
        log::warn!("container {}: {e}", record.name);
    }
    let dir = engine.container_dir(&record.id);
    if let Err(e) = crate::image::unmount(&dir) {
        log::warn!("container {}: {e}", record.name);
    }
    if !record.image_id.is_empty()
        && let Err(e) = crate::image::release(&engine.root, &record.image_id, &record.id)
    {
        log::warn!("container {}: {e}", record.name);
    }
    let _ = fs::remove_dir_all(engine.run_dir(&record.id));
    match engine.records.unpublish(record) {
        Ok(tree) => tree,
        Err(e) => {
            log::warn!("container {}: {e}", record.name);
            None
        }
    }
}

/// `wait`: blocks until the container is not running, returns its exit code.
pub fn wait(engine: &Engine, id: &str) -> Result<i32> {
    let mut pause = Duration::from_millis(2);
    let mut last_code = 0;
    loop {
        match status::live(engine, id) {
            Ok((Some(record), live)) => {
                last_code = record.state.exit_code.unwrap_or(0);
                if matches!(live.state, State::Exited | State::Created) {
                    return Ok(last_code);
                }
            }
            // An --rm container removed itself: docker reports the code it saw.
            Ok((None, _)) | Err(Error::NoSuchContainer(_)) => return Ok(last_code),
            Err(e) => return Err(e),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    /// The caller's terminal size for `tty` (its stdin may be /dev/null by now: `exec -t`
    /// without `-i`).
    pub console_size: Option<(u16, u16)>,
    pub detach: bool,
    pub privileged: bool,
}

/// `exec`: runs a process in a running container through the runtime core, in this
/// process (its stdio is ours; with a terminal the core relays it). Returns its exit code.
pub fn exec(engine: &Engine, id: &str, request: ExecRequest) -> Result<i32> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    if live.state != State::Running {
        return Err(Error::State {
            name: record.name,
            state: live.state.as_str().into(),
            message: "can only exec into a running container".into(),
        });
    }
    let user = match request.user.as_deref() {
        Some(u) => {
            let rootfs = format!("/proc/{}/root", live.pid);
            let passwd = read_in_root(Path::new(&rootfs), "etc/passwd");
            let group = read_in_root(Path::new(&rootfs), "etc/group");
            let u = spec::resolve_user(u, &[], &passwd, &group)?;
            Some(format!("{}:{}", u.uid, u.gid))
        }
        None => None,
    };
    let code = berth_container::ops::exec(
        &engine.runtime(),
        id,
        ExecOptions {
            process: ExecProcess::Args(ExecArgs {
                args: request.args,
                env: request.env,
                cwd: request.workdir.map(Into::into),
                user,
                capabilities: if request.privileged {
                    spec::all_caps().map(str::to_string).collect()
                } else {
                    Vec::new()
                },
                tty: request.tty,
                console_size: request.console_size,
                ..Default::default()
            }),
            console_socket: None,
            preserve_fds: 0,
            detach: request.detach,
            pid_file: None,
            ignore_paused: false,
        },
    );
    match code {
        Ok(c) => Ok(c),
        Err(e) => {
            let message = e.to_string();
            Err(Error::Start {
                exit_code: crate::error::start_exit_code(&message),
                message,
            })
        }
    }
}

/// Re-executes this command from a sealed copy of its binary (see
/// [`needs_sealed_runtime`]); only returns on failure.
pub fn reexec_sealed() -> std::io::Error {
    berth_container::sealed::reexec()
}

/// Whether this process already runs from the sealed copy.
pub fn is_sealed() -> bool {
    berth_container::sealed::is_sealed()
}

/// Makes our stdin /dev/null (an `exec` without `-i` must not read the caller's input).
pub fn detach_stdin() -> Result<()> {
    let null = rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::path("open", "/dev/null", e.into()))?;
    crate::sys::dup_onto(std::os::fd::AsFd::as_fd(&null), 0).map_err(|e| Error::sys("dup2", e))
}
