//! OOM accounting and notification.
//!
//! * count: v1 `memory.oom_control` field `oom_kill` (Linux 4.13+), v2
//!   `memory.events` field `oom_kill` (hierarchical: includes sub-cgroups).
//! * wait: v1 registers an eventfd on memory.oom_control through
//!   `cgroup.event_control` (the kernel signals it on every OOM in the
//!   cgroup, and once more when the cgroup is removed); v2 watches
//!   memory.events with inotify (kernfs raises IN_MODIFY when it changes).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::stats::parse_flat_keyed;

fn sys_err(context: String) -> impl FnOnce(rustix::io::Errno) -> Error {
    move |e| Error::Sys {
        context,
        source: e.into(),
    }
}

fn count_in(dir: &Path, file: &str, missing_ok: bool) -> Result<Option<u64>> {
    let path = dir.join(file);
    match fsutil::read_io(&path) {
        Ok(s) => Ok(Some(
            parse_flat_keyed(&s).get("oom_kill").copied().unwrap_or(0),
        )),
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

pub(crate) fn v1_count(dir: &Path) -> Result<u64> {
    Ok(count_in(dir, "memory.oom_control", false)?.unwrap_or(0))
}

pub(crate) fn v2_count(dir: &Path) -> Result<u64> {
    Ok(count_in(dir, "memory.events", false)?.unwrap_or(0))
}

/// What [`OomWatcher::wait`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomEvent {
    /// The cgroup hit its memory limit and the OOM killer ran (or, with
    /// the killer disabled on v1, the cgroup is under OOM).
    /// `oom_kill_total` is the cgroup's OOM kill count afterwards.
    Oom { oom_kill_total: u64 },
    /// The cgroup was removed; no more events will come.
    CgroupRemoved,
    /// The timeout passed with nothing to report.
    Timeout,
}

/// How often a v2 watcher checks whether its cgroup still exists.
const V2_REMOVAL_CHECK: Duration = Duration::from_millis(250);

enum Kind {
    V1 {
        eventfd: OwnedFd,
        // Kept open: the registration lives as long as this fd.
        _control: File,
        event_control: PathBuf,
    },
    V2 {
        inotify: OwnedFd,
        events: PathBuf,
        last_oom: u64,
        last_kill: u64,
    },
}

/// Waits for OOM events of one cgroup. Its fd ([`AsFd`]) becomes readable
/// when there may be news, so a runtime can poll it next to a pidfd and
/// call [`OomWatcher::wait`] with a zero timeout.
pub struct OomWatcher {
    dir: PathBuf,
    kind: Kind,
}

impl OomWatcher {
    pub(crate) fn v1(dir: &Path) -> Result<OomWatcher> {
        let eventfd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
            .map_err(sys_err("eventfd for OOM notification".into()))?;
        let control_path = dir.join("memory.oom_control");
        let control = File::open(&control_path).map_err(|source| Error::Read {
            path: control_path,
            source,
        })?;
        let line = format!("{} {}", eventfd.as_raw_fd(), control.as_raw_fd());
        fsutil::write("memory", dir, "cgroup.event_control", &line)?;
        Ok(OomWatcher {
            dir: dir.to_path_buf(),
            kind: Kind::V1 {
                eventfd,
                _control: control,
                event_control: dir.join("cgroup.event_control"),
            },
        })
    }

    pub(crate) fn v2(dir: &Path) -> Result<OomWatcher> {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .map_err(sys_err("inotify_init1 for OOM notification".into()))?;
        let events = dir.join("memory.events");
        inotify::add_watch(&fd, &events, inotify::WatchFlags::MODIFY)
            .map_err(sys_err(format!("inotify_add_watch {}", events.display())))?;
        let text = fsutil::read(&events)?;
        let m = parse_flat_keyed(&text);
        Ok(OomWatcher {
            dir: dir.to_path_buf(),
            kind: Kind::V2 {
                inotify: fd,
                last_oom: m.get("oom").copied().unwrap_or(0),
                last_kill: m.get("oom_kill").copied().unwrap_or(0),
                events,
            },
        })
    }

    /// The cgroup directory being watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        let ts = timeout.map(|d| Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        let mut fds = [PollFd::new(self, PollFlags::IN)];
        loop {
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(n) => return Ok(n > 0),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(sys_err("poll on OOM watcher".into())(e)),
            }
        }
    }

    /// Block until an OOM event, removal of the cgroup, or `timeout`
    /// (`None` waits forever).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<OomEvent> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // On v2 nothing wakes us when the cgroup is removed: an inotify mark pins the
            // kernfs inode, so IN_IGNORED does not come until the watch is dropped. Look
            // for the removal between slices of the wait instead.
            let slice = match self.kind {
                Kind::V2 { .. } => Some(left.map_or(V2_REMOVAL_CHECK, |l| l.min(V2_REMOVAL_CHECK))),
                Kind::V1 { .. } => left,
            };
            if !self.poll(slice)? {
                if let Kind::V2 { events, .. } = &self.kind
                    && !events.exists()
                {
                    return Ok(OomEvent::CgroupRemoved);
                }
                if left.is_some_and(|l| l <= slice.unwrap_or_default()) {
                    return Ok(OomEvent::Timeout);
                }
                continue;
            }
            match &mut self.kind {
                Kind::V1 {
                    eventfd,
                    event_control,
                    ..
                } => {
                    let mut buf = [0u8; 8];
                    match rustix::io::read(&*eventfd, &mut buf) {
                        Ok(_) | Err(rustix::io::Errno::AGAIN) => {}
                        Err(e) => return Err(sys_err("read OOM eventfd".into())(e)),
                    }
                    // The kernel also signals the eventfd when the cgroup
                    // goes away; tell the two apart by the control file.
                    if !event_control.exists() {
                        return Ok(OomEvent::CgroupRemoved);
                    }
                    return Ok(OomEvent::Oom {
                        oom_kill_total: v1_count(&self.dir)?,
                    });
                }
                Kind::V2 {
                    inotify,
                    events,
                    last_oom,
                    last_kill,
                } => {
                    let mut buf = [0u8; 4096];
                    loop {
                        match rustix::io::read(&*inotify, &mut buf) {
                            Ok(0) | Err(rustix::io::Errno::AGAIN) => break,
                            Ok(_) => continue,
                            Err(e) => return Err(sys_err("read inotify".into())(e)),
                        }
                    }
                    let text = match fsutil::read_io(events) {
                        Ok(t) => t,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            return Ok(OomEvent::CgroupRemoved);
                        }
                        Err(source) => {
                            return Err(Error::Read {
                                path: events.clone(),
                                source,
                            });
                        }
                    };
                    let m = parse_flat_keyed(&text);
                    let (oom, kill) = (
                        m.get("oom").copied().unwrap_or(0),
                        m.get("oom_kill").copied().unwrap_or(0),
                    );
                    if oom > *last_oom || kill > *last_kill {
                        *last_oom = oom;
                        *last_kill = kill;
                        return Ok(OomEvent::Oom {
                            oom_kill_total: kill,
                        });
                    }
                    // Another counter (low/high/max) changed; keep waiting.
                }
            }
        }
    }
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { eventfd, .. } => eventfd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }
}
