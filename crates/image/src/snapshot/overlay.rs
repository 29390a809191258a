//! The overlay mount, made with the new mount API.
//!
//! Each lower dir is given as its own `lowerdir+` parameter (Linux >= 6.8), by fd where the
//! kernel takes one (>= 6.13) and by path otherwise: no joined option string, so the 4 KiB
//! limit of mount(2)'s data never caps the number of layers (overlay's own limit is 500),
//! and an fd cannot be redirected between the open and the mount. Older kernels get
//! mount(2) with one `lowerdir=` list; when the layers' paths would not fit in its page of
//! options, each lower dir is named by a short `/proc/self/fd/N` of an O_PATH fd instead
//! (18 bytes a layer, ~220 layers in a page: containers/storage's `l/` links do the same
//! job with a chdir). `BERTH_OVERLAY_LEGACY=1` takes the mount(2) path on any kernel, so
//! tests reach it here.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, fsconfig_create,
    fsconfig_set_fd, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
};

use crate::error::{Error, Result};

/// Whether the kernel knows overlay (built in, or its module loaded).
pub(super) fn available() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|list| list.lines().any(|l| l.trim_end().ends_with("\toverlay")))
        .unwrap_or(false)
        || Path::new("/sys/module/overlay").exists()
}

/// Set to `1`: mount with mount(2) and one `lowerdir=` even where `lowerdir+` exists.
pub(crate) const LEGACY_ENV: &str = "BERTH_OVERLAY_LEGACY";

/// mount(2)'s data is one page; the kernel cuts (or refuses) what is longer.
const OPTIONS_MAX: usize = 4095;

/// Mount options beyond the dirs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Options {
    /// overlay's `volatile` (Linux >= 5.10): no sync of the upper on unmount or syncfs, for
    /// an upper that is thrown away anyway. The kernel leaves `work/incompat/volatile` behind
    /// and refuses the next mount while it is there (see [`super::Rootfs::mount`]).
    pub volatile: bool,
}

/// The dir the kernel creates in the work dir of a volatile mount.
pub(super) fn volatile_marker(work: &Path) -> PathBuf {
    work.join("work").join("incompat").join("volatile")
}

pub(super) fn mount(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    options: Options,
) -> Result<()> {
    if std::env::var_os(LEGACY_ENV).is_some_and(|v| v == "1") {
        return mount_legacy(lowers, upper, work, target, options);
    }
    match mount_new_api(lowers, upper, work, target, options) {
        Ok(()) => Ok(()),
        Err(NewApi::Unsupported) => mount_legacy(lowers, upper, work, target, options),
        Err(NewApi::Failed(e)) => Err(e),
    }
}

enum NewApi {
    /// No fsopen, or no `lowerdir+`: try mount(2).
    Unsupported,
    Failed(Error),
}

fn mount_new_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    options: Options,
) -> Result<(), NewApi> {
    let fs = match fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOSYS) => return Err(NewApi::Unsupported),
        Err(e) => return Err(NewApi::Failed(mount_error("fsopen overlay for", target, e))),
    };
    let failed = |op: &'static str, path: &Path, e: rustix::io::Errno| {
        NewApi::Failed(mount_error(op, path, e))
    };
    // `source` is what /proc/self/mountinfo shows.
    fsconfig_set_string(&fs, "source", "berth").map_err(|e| failed("set source of", target, e))?;
    for lower in lowers {
        let fd = open_dir(lower).map_err(|e| failed("open lower dir", lower, e))?;
        match fsconfig_set_fd(&fs, "lowerdir+", fd.as_fd()) {
            Ok(()) => {}
            // A kernel that takes lowerdir+ only as a path.
            Err(rustix::io::Errno::INVAL) => {
                match fsconfig_set_string(&fs, "lowerdir+", lower.as_os_str()) {
                    Ok(()) => {}
                    // no lowerdir+ at all (before 6.8; a 6.1 kernel says EOPNOTSUPP in a
                    // user namespace)
                    Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => {
                        return Err(NewApi::Unsupported);
                    }
                    Err(e) => return Err(failed("add lower dir", lower, e)),
                }
            }
            Err(rustix::io::Errno::OPNOTSUPP) => return Err(NewApi::Unsupported),
            Err(e) => return Err(failed("add lower dir", lower, e)),
        }
    }
    fsconfig_set_string(&fs, "upperdir", upper.as_os_str())
        .map_err(|e| failed("set upper dir", upper, e))?;
    fsconfig_set_string(&fs, "workdir", work.as_os_str())
        .map_err(|e| failed("set work dir", work, e))?;
    if options.volatile {
        fsconfig_set_flag(&fs, "volatile").map_err(|e| failed("set volatile on", target, e))?;
    }
    if crate::overlay_xattr::in_user_namespace() {
        fsconfig_set_flag(&fs, "userxattr").map_err(|e| failed("set userxattr on", target, e))?;
    }
    fsconfig_create(&fs).map_err(|e| failed("create overlay for", target, e))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| failed("fsmount overlay for", target, e))?;
    move_mount(
        mnt.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| failed("move overlay onto", target, e))?;
    Ok(())
}

fn open_dir(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn mount_legacy(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    options: Options,
) -> Result<()> {
    let by_path: Vec<Vec<u8>> = lowers
        .iter()
        .map(|l| l.as_os_str().as_bytes().to_vec())
        .collect();
    let mut data = legacy_options(&by_path, upper, work, options);
    // Held until mount(2) has resolved the names: the kernel keeps its own references.
    let mut held = Vec::new();
    if data.len() > OPTIONS_MAX {
        let mut short = Vec::with_capacity(lowers.len());
        for lower in lowers {
            let fd = open_dir(lower).map_err(|e| mount_error("open lower dir", lower, e))?;
            short.push(proc_fd_path(&fd));
            held.push(fd);
        }
        data = legacy_options(&short, upper, work, options);
    }
    if data.len() > OPTIONS_MAX {
        return Err(Error::Mount {
            op: "mount overlay (this kernel has no lowerdir+, and even short names of its layers exceed a page of options) on",
            path: target.to_path_buf(),
            source: std::io::Error::from_raw_os_error(libc::E2BIG),
        });
    }
    let data = CString::new(data).map_err(|_| Error::Other("NUL in a layer path".into()))?;
    let mounted = rustix::mount::mount(
        "berth",
        target,
        "overlay",
        MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| mount_error("mount overlay on", target, e));
    drop(held);
    mounted
}

/// `lowerdir=A:B,upperdir=U,workdir=W[,volatile]`, each path escaped.
fn legacy_options(lowers: &[Vec<u8>], upper: &Path, work: &Path, options: Options) -> Vec<u8> {
    let mut data = b"lowerdir=".to_vec();
    for (i, lower) in lowers.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        data.extend(escape(lower));
    }
    data.extend(b",upperdir=");
    data.extend(escape(upper.as_os_str().as_bytes()));
    data.extend(b",workdir=");
    data.extend(escape(work.as_os_str().as_bytes()));
    if options.volatile {
        data.extend(b",volatile");
    }
    if crate::overlay_xattr::in_user_namespace() {
        data.extend(b",userxattr");
    }
    data
}

/// The short name of an open directory: overlay resolves it (following the magic link) to
/// the directory itself, so no path string of the layer is needed.
fn proc_fd_path(fd: &OwnedFd) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_raw_fd()).into_bytes()
}

/// overlay splits its options on `,` and its lower dirs on `:`; both may be escaped.
fn escape(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if matches!(b, b',' | b':' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fn mount_error(op: &'static str, path: &Path, e: rustix::io::Errno) -> Error {
    Error::Mount {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}
