//! Walking a container's cgroup subtree: creating the path, removing it
//! deepest first, listing its processes.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// How long to keep retrying EBUSY: processes that were just killed leave
/// the cgroup a few milliseconds after their parent reaps... or not at all
/// if someone keeps them alive, which is reported then.
const RETRY_DELAYS_MS: [u64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// How often [`mkdir_p`] makes a parent again that vanished before its child was made.
const PARENT_RETRIES: u32 = 100;

/// `mkdir -p` below `stop` (a mountpoint, never created or removed here).
/// Returns the directories this call created, parents first, so callers
/// can initialise exactly those (v1 cpuset, v2 subtree_control). The common
/// case of an existing parent costs one mkdir.
pub(crate) fn mkdir_p(dir: &Path, stop: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(vec![dir.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir != stop => {
            let parent = dir
                .parent()
                .filter(|p| *p != stop && p.starts_with(stop))
                .ok_or_else(|| Error::Mkdir {
                    path: dir.to_path_buf(),
                    source: e,
                })?;
            // An empty parent may go again before `dir` is made in it: its owner removes it
            // once nothing is left below (an engine's `/berth` after its last container, a
            // test's clean-up). Make it again; an ancestor this left uninitialised is found
            // empty and filled by the callers (v1 cpuset's `effective`).
            let mut tries = 0;
            loop {
                let mut created = mkdir_p(parent, stop)?;
                match std::fs::create_dir(dir) {
                    Ok(()) => created.push(dir.to_path_buf()),
                    // Created concurrently by another runtime: fine.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound && tries < PARENT_RETRIES => {
                        tries += 1;
                        continue;
                    }
                    Err(source) => {
                        return Err(Error::Mkdir {
                            path: dir.to_path_buf(),
                            source,
                        });
                    }
                }
                return Ok(created);
            }
        }
        Err(source) => Err(Error::Mkdir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// After a failed create, remove the leaf directories that create made
/// (never ones that existed before: they may belong to someone else).
pub(crate) fn undo_on_error<T>(r: &Result<T>, made: &[PathBuf]) {
    if r.is_err() {
        for d in made.iter().rev() {
            let _ = remove_tree(d);
        }
    }
}

fn rmdir(dir: &Path) -> io::Result<()> {
    std::fs::remove_dir(dir)
}

/// Remove `dir` (a cgroup) and its sub-cgroups, deepest first. A missing
/// directory is success. Only directories are ever removed: cgroupfs
/// control files disappear with their cgroup, and nothing is followed out
/// of the tree.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    // Fast path: a leaf cgroup with no processes goes in one rmdir.
    match rmdir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    remove_children(dir)?;
    let mut last = None;
    for delay in std::iter::once(0).chain(RETRY_DELAYS_MS) {
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        match rmdir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // A sub-cgroup may have appeared meanwhile (a container
                // process creating one while dying); clear again.
                remove_children(dir)?;
                last = Some(e);
            }
            Err(source) => {
                return Err(Error::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    Err(Error::Rmdir {
        path: dir.to_path_buf(),
        source: last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
    })
}

fn remove_children(dir: &Path) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in rd {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        // file_type() does not follow symlinks.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    Ok(())
}

/// Host pids in `dir` and every sub-cgroup below it.
pub(crate) fn pids_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    match std::fs::read_to_string(&procs) {
        Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Read {
                path: procs,
                source,
            });
        }
    }
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in rd.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pids_recursive(&entry.path(), out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkdir_p_survives_a_parent_removed_under_it() {
        // One thread keeps removing the (empty) parent, as an engine does after its last
        // container; the other keeps making a child in it, as a create does.
        let root = tempfile::tempdir().unwrap();
        let stop = root.path().to_path_buf();
        let parent = stop.join("berth");
        let done = std::sync::atomic::AtomicBool::new(false);
        // Stops the remover also when an assertion fails (else the scope waits for it).
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let (mut removed, mut results) = (0u32, Vec::new());
        std::thread::scope(|s| {
            let remover = s.spawn(|| {
                let mut n = 0u32;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    n += u32::from(std::fs::remove_dir(&parent).is_ok());
                    // A clean-up removes once, not in a spin: give the creator a moment.
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
                n
            });
            let _stop = Stop(&done);
            for i in 0..10_000 {
                let leaf = parent.join(format!("c{i}"));
                results.push((
                    i,
                    mkdir_p(&leaf, &stop).map(drop).map_err(|e| e.to_string()),
                ));
                let _ = std::fs::remove_dir(&leaf);
            }
            drop(_stop);
            removed = remover.join().unwrap();
        });
        let failed: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
        assert!(
            failed.is_empty(),
            "{} of 10000 failed, e.g. {:?}",
            failed.len(),
            failed.first()
        );
        // The race was really run: the parent went many times.
        assert!(removed > 20, "the parent was removed only {removed} times");
    }

    #[test]
    fn mkdir_p_reports_what_it_created() {
        let root = std::env::temp_dir().join(format!("berth-cg-mkdir-{}", std::process::id()));
        std::fs::create_dir_all(root.join("exists")).unwrap();
        let made = mkdir_p(&root.join("exists/a/b"), &root).unwrap();
        assert_eq!(made, [root.join("exists/a"), root.join("exists/a/b")]);
        assert!(mkdir_p(&root.join("exists/a/b"), &root).unwrap().is_empty());
        // Never above the mountpoint.
        let e = mkdir_p(&root.join("missing/x"), &root.join("missing")).unwrap_err();
        assert!(e.to_string().contains("creating cgroup"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn removes_nested_dirs_but_refuses_files() {
        let root = std::env::temp_dir().join(format!("berth-cg-destroy-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(root.join("a/d")).unwrap();
        remove_tree(&root.join("a")).unwrap();
        assert!(!root.join("a").exists());
        remove_tree(&root.join("a")).unwrap(); // already gone: fine
        // A plain file inside is not something a cgroup has: rmdir fails
        // (ENOTEMPTY) and we say so instead of deleting it.
        std::fs::create_dir_all(root.join("x")).unwrap();
        std::fs::write(root.join("x/file"), "").unwrap();
        let e = remove_tree(&root.join("x")).unwrap_err();
        assert!(e.to_string().contains("removing cgroup"), "{e}");
        assert!(root.join("x/file").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn pids_from_nested_procs_files() {
        let root = std::env::temp_dir().join(format!("berth-cg-pids-{}", std::process::id()));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("cgroup.procs"), "1\n2\n").unwrap();
        std::fs::write(root.join("sub/cgroup.procs"), "3\n").unwrap();
        let mut v = Vec::new();
        pids_recursive(&root, &mut v).unwrap();
        v.sort();
        assert_eq!(v, [1, 2, 3]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
