//! A container's state directory, `<root>/<id>/`: `state.json` (written by atomic rename),
//! `start.sock` while the container is created but not started (the init listens on it for
//! `start`), and an flock on the directory that serializes operations on one container.
//! Removed directories are emptied and kept for the next create (`spare.rs`).
//!
//! The status is never stored: it is read from the kernel (is the init alive, is it the same
//! process, is its cgroup frozen) and from the presence of the start socket.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::validate_id;

mod spare;

/// The file that holds the record of a container.
pub const STATE_FILE: &str = "state.json";
/// The unix socket the init of a created container listens on until `start`.
pub const START_SOCKET: &str = "start.sock";
/// What a create has made before its record exists (see [`Pending`]).
pub(crate) const PENDING_FILE: &str = "creating.json";
/// The runtime-spec version we implement.
pub const OCI_VERSION: &str = "1.2.1";

/// A container's status as the runtime-spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What we keep about a container between runtime invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub oci_version: String,
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// The init's start time (clock ticks after boot, /proc/<pid>/stat field 22), so that a
    /// recycled pid is never mistaken for the container.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroup of the container, as the cgroups layer serialized it.
    pub cgroup: serde_json::Value,
    /// The container's configuration, for exec defaults and the hooks of later commands.
    pub config: Spec,
    /// Written while `create` is still setting the container up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
    /// The systemd unit that owns the cgroup (`--systemd-cgroup`): `delete` stops it,
    /// `update` sets its properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

/// What a create is about to make, written before it makes it: if the create dies (SIGKILL,
/// a crash) before state.json exists, `delete` reads this to remove the cgroup, the
/// processes in it and the host mounts. A part-written file means nothing was made yet
/// (the cgroup comes after the write).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Pending {
    pub cgroup: serde_json::Value,
    /// The rootfs of a container without a mount namespace: its mounts are on the host.
    #[serde(default)]
    pub host_mounts: Option<PathBuf>,
    /// The systemd unit the create is about to start (`--systemd-cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
}

/// Who makes and owns the cgroup of a new container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupDriver {
    /// The runtime, through the cgroup filesystem (runc's default).
    #[default]
    Cgroupfs,
    /// systemd, as a transient scope unit (runc's `--systemd-cgroup`): `linux.cgroupsPath`
    /// is `slice:prefix:name`.
    Systemd,
}

impl CgroupDriver {
    /// What podman picks: systemd when it runs the host (it is PID 1 and has booted,
    /// sd_booted's test), cgroupfs otherwise.
    pub fn host_default() -> CgroupDriver {
        if Path::new("/run/systemd/system").is_dir() {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        }
    }
}

/// The state root (`--root`, default /run/berth), and how the containers made under it get
/// their cgroups. Like runc's `--systemd-cgroup`, the driver is a choice of the caller; a
/// container's record says which one made its cgroup, for the commands that follow.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
    cgroup_driver: CgroupDriver,
}

impl StateRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot {
            path: path.into(),
            cgroup_driver: CgroupDriver::Cgroupfs,
        }
    }

    /// The same root, with new containers' cgroups made by `driver`.
    pub fn with_cgroup_driver(mut self, driver: CgroupDriver) -> Self {
        self.cgroup_driver = driver;
        self
    }

    pub fn cgroup_driver(&self) -> CgroupDriver {
        self.cgroup_driver
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.path)
            .map_err(|e| Error::path("create state root", &self.path, e))
    }

    /// Reserves the directory of a new container and locks it. Fails if the id exists.
    pub fn create(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        self.ensure()?;
        let path = self.path.join(id);
        match spare::take(&self.path, &path) {
            spare::Taken::Yes => {}
            spare::Taken::Exists => return Err(Error::Exists(id.to_string())),
            spare::Taken::None => match fs::DirBuilder::new().mode(0o711).create(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::Exists(id.to_string()));
                }
                Err(e) => return Err(Error::path("create state directory", &path, e)),
            },
        }
        ContainerDir::open_locked(id, path)
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(&self, id: &str) -> Result<ContainerDir> {
        validate_id(id)?;
        ContainerDir::open_locked(id, self.path.join(id))
    }

    /// The ids of every container under this root.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::path("read state root", &self.path, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// A locked container directory. The lock is released when this is dropped.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: OwnedFd,
}

impl ContainerDir {
    fn open_locked(id: &str, path: PathBuf) -> Result<Self> {
        let fd = match rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Err(Error::NotFound(id.to_string())),
            Err(e) => return Err(Error::path("open state directory", &path, e.into())),
        };
        rustix::fs::flock(&fd, FlockOperation::LockExclusive)
            .map_err(|e| Error::path("lock state directory", &path, e.into()))?;
        // A concurrent delete may have removed the directory while we waited for the lock,
        // or moved it aside, where another container may take it (spare.rs): the lock
        // counts only if the path still names the directory we locked.
        let ours = rustix::fs::fstat(&fd)
            .map_err(|e| Error::path("stat state directory", &path, e.into()))?;
        match rustix::fs::stat(&path) {
            Ok(now) if now.st_ino == ours.st_ino && now.st_dev == ours.st_dev => {}
            _ => return Err(Error::NotFound(id.to_string())),
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: fd,
        })
    }

    pub fn start_socket_path(&self) -> PathBuf {
        self.path.join(START_SOCKET)
    }

    /// The start socket's address, through our fd of the directory: socket paths are
    /// limited to 108 bytes and state roots can be deep.
    fn start_socket_address(&self) -> Result<rustix::net::SocketAddrUnix> {
        use std::os::fd::AsRawFd;
        let short = format!("/proc/self/fd/{}/{START_SOCKET}", self._lock.as_raw_fd());
        rustix::net::SocketAddrUnix::new(short.as_str())
            .map_err(|e| Error::path("socket address", self.start_socket_path(), e.into()))
    }

    /// Creates the start socket and listens on it (for the init to accept `start`).
    pub fn listen_start_socket(&self) -> Result<OwnedFd> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, bind, listen, socket_with};
        let path = self.start_socket_path();
        let fail = |op: &'static str, e: rustix::io::Errno| Error::path(op, &path, e.into());
        let socket = socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| fail("socket", e))?;
        // Only root may connect (and so start the container): the socket file gets its
        // mode from the umask at bind time.
        let umask = rustix::process::umask(Mode::from_raw_mode(0o077));
        let bound = bind(&socket, &self.start_socket_address()?);
        rustix::process::umask(umask);
        bound.map_err(|e| fail("bind", e))?;
        listen(&socket, 1).map_err(|e| fail("listen", e))?;
        Ok(socket)
    }

    /// Connects to the init of a created container; `None` when nobody listens any more.
    pub fn connect_start_socket(&self) -> Result<Option<OwnedFd>> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, connect, socket_with};
        let path = self.start_socket_path();
        let socket = socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::path("socket", &path, e.into()))?;
        match connect(&socket, &self.start_socket_address()?) {
            Ok(()) => Ok(Some(socket)),
            Err(rustix::io::Errno::CONNREFUSED | rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::path("connect", &path, e.into())),
        }
    }

    /// Reads the record; `None` while the container is still being created.
    pub fn load(&self) -> Result<Option<Record>> {
        let path = self.path.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::path("read", &path, e)),
        };
        crate::spec::parse(&path, &data).map(Some)
    }

    /// Writes the record atomically (temporary file + rename).
    pub fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_vec(record).map_err(|e| Error::sys("serialize state", e))?;
        write_atomically(&self.path.join(STATE_FILE), &data, 0o600)
    }

    /// Records what the create is about to make. A plain write: no rename is needed, as
    /// nothing exists yet that a part-written file would fail to name.
    pub(crate) fn save_pending(&self, pending: &Pending) -> Result<()> {
        let path = self.path.join(PENDING_FILE);
        let data = serde_json::to_vec(pending).map_err(|e| Error::sys("serialize state", e))?;
        fs::write(&path, data).map_err(|e| Error::path("write", &path, e))
    }

    /// What a create that died before writing the record had begun to make.
    pub(crate) fn load_pending(&self) -> Option<Pending> {
        let data = fs::read(self.path.join(PENDING_FILE)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Removes everything in the directory, then the directory itself: it is kept as a
    /// spare for the next create when a slot is free (see spare.rs).
    pub fn remove(self) -> Result<()> {
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let fail = |e| Error::path("remove state directory", &self.path, e);
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(fail(e)),
        };
        for entry in entries {
            let entry = entry.map_err(fail)?;
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Err(e) if !gone(&e) => return Err(fail(e)),
                _ => {}
            }
        }
        if let Some(root) = self.path.parent()
            && spare::park(root, &self.path)
        {
            return Ok(());
        }
        match fs::remove_dir(&self.path) {
            Err(e) if !gone(&e) => Err(fail(e)),
            _ => Ok(()),
        }
    }
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so
/// readers see the old or the new content, never a part.
pub fn write_atomically(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(data)?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::path("write", path, e)
    })
}

/// What /proc/<pid>/stat says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub state: char,
    pub start_time: u64,
}

/// Reads the state letter and start time of `pid`; `None` if there is no such process.
pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    // One read: the line is far below 1 KiB, and procfs files report no size to size by.
    let fd = rustix::fs::open(
        format!("/proc/{pid}/stat").as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 1024];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    parse_proc_stat(std::str::from_utf8(&buf[..n]).ok()?)
}

/// Parses /proc/<pid>/stat. The command name may contain spaces and parentheses, so the
/// fields are counted from the last ')'.
pub fn parse_proc_stat(data: &str) -> Option<ProcStat> {
    let rest = &data[data.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) the start time is field 22: 18 fields further.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

impl Record {
    /// Whether the record's init is still alive (not a zombie, not a recycled pid).
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && proc_stat(self.pid).is_some_and(|s| {
                s.start_time == self.pid_start_time && !matches!(s.state, 'Z' | 'X' | 'x')
            })
    }
}

/// The current time as RFC 3339 in UTC with nanoseconds, as runc prints `created`.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Formats a Unix time as RFC 3339 UTC.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes a pid file the way runc does: atomically, the number without a newline.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    write_atomically(path, pid.to_string().as_bytes(), 0o644)
}

/// Opens a file we created for the caller, with O_CLOEXEC (std does this by default).
pub fn open_for_append(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_odd_command_names() {
        let line = "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(
            parse_proc_stat(line),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
    }

    #[test]
    fn reads_our_own_stat() {
        let me = proc_stat(std::process::id() as i32).unwrap();
        assert!(matches!(me.state, 'R' | 'S'), "{me:?}");
        assert!(me.start_time > 0);
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_798_761_599, 0), "2026-12-31T23:59:59.000000000Z");
    }

    #[test]
    fn create_then_open_then_remove() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().join("state"));
        let c = root.create("abc").unwrap();
        assert!(matches!(root.create("abc"), Err(Error::Exists(_))));
        drop(c);
        let c = root.open("abc").unwrap();
        assert!(c.load().unwrap().is_none());
        assert_eq!(root.ids().unwrap(), vec!["abc".to_string()]);
        c.remove().unwrap();
        assert!(matches!(root.open("abc"), Err(Error::NotFound(_))));
    }

    /// A removed directory is emptied and kept for the next create.
    #[test]
    fn a_removed_directory_is_reused_and_its_old_name_is_gone() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().join("state"));
        let c = root.create("old").unwrap();
        c.save_pending(&Pending {
            cgroup: serde_json::Value::Null,
            host_mounts: None,
            systemd_unit: None,
        })
        .unwrap();
        let inode = fs::metadata(&c.path).unwrap().ino();
        // Someone opened the directory under its old name before it went away.
        let stale = fs::File::open(&c.path).unwrap();
        c.remove().unwrap();
        let new = root.create("new").unwrap();
        assert_eq!(fs::metadata(&new.path).unwrap().ino(), inode);
        assert_eq!(fs::read_dir(&new.path).unwrap().count(), 0, "emptied");
        assert_eq!(root.ids().unwrap(), ["new"]);
        assert!(matches!(root.create("new"), Err(Error::Exists(_))));
        // Whoever opened it under the old name and locks it now finds that the old name
        // is gone, not the new container's record.
        drop(new);
        drop(stale);
        assert!(matches!(root.open("old"), Err(Error::NotFound(_))));
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pid");
        write_pid_file(&path, 42).unwrap();
        write_pid_file(&path, 7).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "7");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
