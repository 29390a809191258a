//! flock(2) locks on files of the store. flock (not fcntl) locks belong to the open file,
//! so they work between processes and are released by the kernel when a process dies,
//! even by kill -9.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};

pub(crate) struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    pub(crate) fn open(path: &Path) -> Result<Lock> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(Error::path("open lock", path))?;
        Ok(Lock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn exclusive(&self) -> Result<()> {
        self.op(FlockOperation::LockExclusive)
    }

    pub(crate) fn shared(&self) -> Result<()> {
        self.op(FlockOperation::LockShared)
    }

    /// Tries to take the lock exclusive without waiting; `false` when someone else holds it.
    pub(crate) fn try_exclusive(&self) -> Result<bool> {
        match flock(&self.file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(Error::Path {
                op: "lock",
                path: self.path.clone(),
                source: e.into(),
            }),
        }
    }

    fn op(&self, op: FlockOperation) -> Result<()> {
        loop {
            match flock(&self.file, op) {
                Err(rustix::io::Errno::INTR) => continue,
                other => {
                    return other.map_err(|e| Error::Path {
                        op: "lock",
                        path: self.path.clone(),
                        source: e.into(),
                    });
                }
            }
        }
    }
}
