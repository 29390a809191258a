//! Paths inside the container's root, resolved by the kernel so that no symlink (planted or
//! swapped in a race) can lead outside it: every lookup is openat2(RESOLVE_IN_ROOT) relative
//! to an fd of the root, and every mount targets the fd that lookup returned.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
use rustix::io::Errno;

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// The magic-link path of an fd, for syscalls that only take paths (mount(2)).
pub fn fd_path(fd: impl AsFd) -> CString {
    let mut path = b"/proc/self/fd/".to_vec();
    path.extend_from_slice(fd.as_fd().as_raw_fd().to_string().as_bytes());
    // Digits and a fixed prefix hold no NUL byte: the empty fallback is never taken (and
    // would fail in the kernel with ENOENT, not abort the forked child).
    CString::new(path).unwrap_or_default()
}

/// Opens `path` (relative to `root`) as an O_PATH fd, never leaving `root`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    open_in_root_with(root, path, OFlags::PATH)
}

/// Opens `path` inside `root` with the given flags (O_CLOEXEC is added).
pub fn open_in_root_with(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    retry(|| openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), IN_ROOT))
}

/// openat2 fails with EAGAIN when a rename raced the lookup; trying again is the documented
/// answer.
fn retry<T>(mut op: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    for _ in 0..32 {
        match op() {
            Err(Errno::AGAIN) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
    op().map_err(io::Error::from)
}

/// Makes every missing directory of `path` inside `root` (mode 0755) and returns an O_PATH
/// fd of the last one.
pub fn mkdir_all_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    match open_in_root(root, path) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let names: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    // The deepest directory that exists: usually the parent.
    let mut existing = names.len().saturating_sub(1);
    let mut dir = loop {
        let prefix: std::path::PathBuf = names[..existing].iter().collect();
        match open_in_root(root, &prefix) {
            Ok(fd) => break fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && existing > 0 => existing -= 1,
            Err(e) => return Err(e),
        }
    };
    for (i, name) in names.iter().enumerate().skip(existing) {
        match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        // Open what is there now without following a symlink; a symlink (which the image
        // may have there) is resolved from the root instead, where it cannot lead outside.
        dir = match rustix::fs::openat(
            &dir,
            *name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOTDIR | Errno::LOOP) => {
                let prefix: std::path::PathBuf = names[..=i].iter().collect();
                open_in_root(root, &prefix)?
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(dir)
}

/// Makes sure a regular file exists at `path` (creating parents) and returns an O_PATH fd.
pub fn touch_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    match open_in_root(root, path) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let parent = path.parent().unwrap_or(Path::new(""));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let dir = mkdir_all_in_root(root, parent)?;
    let dir = reopen_dir(&dir)?;
    match rustix::fs::openat(
        &dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_in_root(root, path)
}

/// An O_PATH directory fd cannot be used with *at calls that create entries on older
/// kernels' LSM paths; reopen it as a real directory fd through the fd itself.
pub fn reopen_dir(fd: &OwnedFd) -> io::Result<OwnedFd> {
    retry(|| {
        openat2(
            fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
    })
}

/// Whether an fd refers to a directory.
pub fn is_dir(fd: impl AsFd) -> io::Result<bool> {
    let st = rustix::fs::fstat(fd)?;
    Ok(rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
}
