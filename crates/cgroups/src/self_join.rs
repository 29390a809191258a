//! A process joining the v1 hierarchies itself.
//!
//! Writing a pid to `cgroup.procs` takes the kernel's global threadgroup lock for writing,
//! and taking it may wait for an RCU grace period: measured here, 0.1 ms per write with a
//! tail up to 15 ms. A single-threaded process that writes `0` (itself) to `tasks` moves
//! only its own thread and skips that lock (0.04 ms, no tail). So the runtime opens the
//! `tasks` files of the container's v1 cgroups before it forks the init, and the init
//! writes `0` to each first thing. The files are opened by the runtime, so the kernel's
//! permission check sees the runtime's credentials whatever the init becomes later.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Open `tasks` files of the v1 hierarchies, ready for [`V1SelfJoin::join_calling_thread`].
#[derive(Debug, Default)]
pub struct V1SelfJoin {
    files: Vec<(&'static str, PathBuf, File)>,
}

impl V1SelfJoin {
    /// Opens `<dir>/tasks` of each `(controller name, directory)`.
    pub(crate) fn open<'a>(dirs: impl Iterator<Item = (&'static str, &'a Path)>) -> Result<Self> {
        let mut files = Vec::new();
        for (controller, dir) in dirs {
            let path = dir.join("tasks");
            let file = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(|source| Error::Write {
                    controller,
                    path: path.clone(),
                    value: "(open)".into(),
                    source,
                })?;
            files.push((controller, path, file));
        }
        Ok(V1SelfJoin { files })
    }

    /// Whether there is nothing to join (a pure cgroup v2 host).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The hierarchies in the order they are joined, by their first controller.
    pub fn order(&self) -> Vec<&'static str> {
        self.files.iter().map(|(name, _, _)| *name).collect()
    }

    /// Moves the calling thread into every hierarchy: the whole process when it has only
    /// this thread, which is the caller's to guarantee (the init of a container is a fork
    /// of a single-threaded runtime).
    pub fn join_calling_thread(&self) -> Result<()> {
        for (controller, path, file) in &self.files {
            let mut delay = Duration::from_millis(1);
            for attempt in 0.. {
                match (&*file).write_all(b"0") {
                    Ok(()) => break,
                    // As for cgroup.procs: a cgroup made a moment ago may refuse once.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) && attempt < 5 => {
                        std::thread::sleep(delay);
                        delay *= 4;
                    }
                    Err(source) => {
                        return Err(Error::Write {
                            controller,
                            path: path.clone(),
                            value: "0".into(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
