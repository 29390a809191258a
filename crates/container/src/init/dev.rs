//! The container's /dev: device nodes (or, inside a user namespace where mknod is refused,
//! binds of the host's nodes) and the standard symlinks.

use std::os::fd::BorrowedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode};

use super::InitError;
use super::fs::{fd_path, mkdir_all_in_root, reopen_dir, touch_in_root};
use crate::plan::DeviceStep;
use crate::spec::DeviceKind;
use crate::sys;

type Result<T> = std::result::Result<T, InitError>;

/// Creates every device node. `bind_instead` (a user namespace) binds the host's node.
pub fn create_devices(
    root: BorrowedFd<'_>,
    devices: &[DeviceStep],
    bind_instead: bool,
) -> Result<()> {
    for step in devices {
        create_device(root, step, bind_instead)
            .map_err(|e| InitError::Device(format!("/{}: {e}", step.node.path.display())))?;
    }
    Ok(())
}

fn create_device(
    root: BorrowedFd<'_>,
    step: &DeviceStep,
    bind_instead: bool,
) -> std::io::Result<()> {
    let device = &step.node;
    if bind_instead && device.kind != DeviceKind::Fifo {
        let target = touch_in_root(root, &device.path)?;
        return sys::mount(
            Some(&step.host),
            &fd_path(&target),
            None,
            libc::MS_BIND,
            None,
        );
    }
    let parent = device.path.parent().unwrap_or(Path::new(""));
    let name = device
        .path
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let dir = reopen_dir(&mkdir_all_in_root(root, parent)?)?;
    let file_type = match device.kind {
        DeviceKind::Char => FileType::CharacterDevice,
        DeviceKind::Block => FileType::BlockDevice,
        DeviceKind::Fifo => FileType::Fifo,
    };
    let dev = rustix::fs::makedev(device.major, device.minor);
    match rustix::fs::mknodat(&dir, name, file_type, Mode::from_raw_mode(device.mode), dev) {
        Ok(()) => {}
        // A node the image already has is replaced, so that its type, numbers and mode are
        // exactly what the configuration says.
        Err(rustix::io::Errno::EXIST) => {
            rustix::fs::unlinkat(&dir, name, AtFlags::empty())?;
            rustix::fs::mknodat(&dir, name, file_type, Mode::from_raw_mode(device.mode), dev)?;
        }
        Err(e) => return Err(e.into()),
    }
    // The init runs with umask 0, so the mode is exact already; the owner is root unless
    // the config says otherwise.
    if device.uid != 0 || device.gid != 0 {
        rustix::fs::chownat(
            &dir,
            name,
            Some(rustix::fs::Uid::from_raw(device.uid)),
            Some(rustix::fs::Gid::from_raw(device.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}

/// /dev/fd, stdin, stdout, stderr, ptmx (and core where /proc/kcore exists).
pub fn create_dev_symlinks(root: BorrowedFd<'_>) -> Result<()> {
    let dev = mkdir_all_in_root(root, Path::new("dev"))
        .and_then(|fd| reopen_dir(&fd))
        .map_err(|e| InitError::Device(format!("/dev: {e}")))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(InitError::Device(format!("/dev/{name}: {e}"))),
        }
    }
    // /dev/ptmx must be the devpts instance's own ptmx, whatever the image put there.
    match rustix::fs::unlinkat(&dev, "ptmx", AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(InitError::Device(format!("/dev/ptmx: {e}"))),
    }
    rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx")
        .map_err(|e| InitError::Device(format!("/dev/ptmx: {e}")))
}
