//! Emptied container directories kept for the next create, in `<root>/spare:/0`..`7`.
//!
//! Making and removing a directory are the state dir's costliest steps where the root is on
//! a disk filesystem rather than a tmpfs (/run on this kind of machine): mkdir allocates a
//! directory block, and freeing it again, at the last close after the rmdir, waits on the
//! disk. On an ext4 without a journal mounted with `discard` the free is a synchronous
//! discard: measured here 0.15 ms at best and 3-5 ms while other builds write (perf: close
//! → evict → ext4_free_blocks → blkdev_issue_discard). A directory moved aside instead and
//! renamed into place by the next create is neither freed nor allocated. runc pays the same
//! cost on such a root.
//!
//! The slots' parent has a name no container id can have (`:`), so nothing takes it for a
//! container. Every move is a rename(2) with RENAME_NOREPLACE: two deletes never park in the
//! same slot, two creates never take the same directory, and a create whose id exists fails
//! as mkdir would.

use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags, RenameFlags, renameat_with};
use rustix::io::Errno;

/// The directory of the slots, below the state root.
pub const SPARE_DIR: &str = "spare:";

/// How many emptied directories are kept.
const SLOTS: [&str; 8] = ["0", "1", "2", "3", "4", "5", "6", "7"];

/// What taking a spare directory for a new container gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// A spare directory is now `<root>/<id>`.
    Yes,
    /// There was none: make the directory.
    None,
    /// `<root>/<id>` exists already.
    Exists,
}

/// Renames a spare directory (empty, mode 0711) to `target`.
pub fn take(root: &Path, target: &Path) -> Taken {
    let Ok(spare) = rustix::fs::open(
        root.join(SPARE_DIR),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Taken::None;
    };
    for slot in SLOTS {
        match renameat_with(&spare, slot, CWD, target, RenameFlags::NOREPLACE) {
            Ok(()) => return Taken::Yes,
            Err(Errno::EXIST) => return Taken::Exists,
            // An empty slot (or one another create took first).
            Err(Errno::NOENT) => continue,
            // Anything else: the ordinary mkdir will say what is wrong.
            Err(_) => return Taken::None,
        }
    }
    Taken::None
}

/// Moves the emptied directory `dir` into a free slot; `false` when every slot is taken or
/// the move failed (the caller removes the directory then).
pub fn park(root: &Path, dir: &Path) -> bool {
    let spare_path = root.join(SPARE_DIR);
    match rustix::fs::mkdir(&spare_path, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(_) => return false,
    }
    let Ok(spare) = rustix::fs::open(
        &spare_path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    for slot in SLOTS {
        match renameat_with(CWD, dir, &spare, slot, RenameFlags::NOREPLACE) {
            Ok(()) => return true,
            Err(Errno::EXIST) => continue,
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_directory_is_taken_again_and_slots_run_out() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        assert_eq!(take(root, &root.join("a")), Taken::None);
        for i in 0..SLOTS.len() + 1 {
            let dir = root.join(format!("c{i}"));
            std::fs::create_dir(&dir).unwrap();
            let parked = park(root, &dir);
            assert_eq!(parked, i < SLOTS.len(), "directory {i}");
            assert_eq!(dir.exists(), !parked);
        }
        assert_eq!(take(root, &root.join("a")), Taken::Yes);
        assert!(root.join("a").is_dir());
        // An existing id is not overwritten, and the spare stays.
        assert_eq!(take(root, &root.join("a")), Taken::Exists);
        let spares = std::fs::read_dir(root.join(SPARE_DIR)).unwrap().count();
        assert_eq!(spares, SLOTS.len() - 1);
    }
}
