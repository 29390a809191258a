//! The overlay made by a FUSE program (fuse-overlayfs) instead of the kernel: rootless on a
//! kernel whose overlay cannot be mounted in a user namespace (before 5.11), or where the
//! user asks for it (podman's `mount_program`). The program reads the same layer dirs,
//! with the same whiteouts (0/0 character devices) and opaque marks (`user.overlay.opaque`);
//! it mounts, forks its server into the background and exits, so the mount is there when
//! it returns. Unmounting the target ends the server.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Set to a program's path: every overlay is mounted by it (`--storage-opt
/// overlay.mount_program=PATH` sets it for one command).
pub const MOUNT_PROGRAM_ENV: &str = "BERTH_OVERLAY_MOUNT_PROGRAM";

/// The program that serves as the fallback when the kernel's overlay refuses a mount.
const FALLBACK: &str = "fuse-overlayfs";

static CHOSEN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes `program` mount every overlay of this process (the command's `--storage-opt
/// overlay.mount_program=`; its monitors are forks and keep it).
pub fn set_mount_program(program: PathBuf) {
    let _ = CHOSEN.set(program);
}

/// The mount program the user set, if any.
pub(super) fn chosen() -> Option<PathBuf> {
    CHOSEN.get().cloned().or_else(|| {
        std::env::var_os(MOUNT_PROGRAM_ENV)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    })
}

/// fuse-overlayfs on PATH, for the fallback.
pub(super) fn fallback() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(FALLBACK))
        .find(|p| p.is_file())
}

/// The program's `-o` argument: `lowerdir=A:B,upperdir=U,workdir=W[,fsync=0]`. It splits
/// on `,` and `:` without an escape, so a path holding either is refused (the store's own
/// paths never do; a --root might).
pub(super) fn options(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    volatile: bool,
) -> Result<OsString> {
    let mut data = b"lowerdir=".to_vec();
    for (i, lower) in lowers.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        data.extend(plain(lower)?);
    }
    data.extend(b",upperdir=");
    data.extend(plain(upper)?);
    data.extend(b",workdir=");
    data.extend(plain(work)?);
    if volatile {
        // fuse-overlayfs's volatile: no fsync of the upper
        data.extend(b",fsync=0");
    }
    Ok(OsString::from_vec(data))
}

fn plain(path: &Path) -> Result<&[u8]> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.iter().any(|b| matches!(b, b',' | b':')) {
        return Err(Error::Mount {
            op: "mount with fuse-overlayfs (which cannot take a ',' or ':' in a path):",
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    Ok(bytes)
}

/// Mounts the layers on `target` with `program`.
pub(super) fn mount(
    program: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    let out = Command::new(program)
        .arg("-o")
        .arg(options(lowers, upper, work, volatile)?)
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Mount {
            op: "run the overlay mount program for",
            path: program.to_path_buf(),
            source: e,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    Err(Error::Other(format!(
        "{} could not mount the layers on {}: {} ({})",
        program.display(),
        target.display(),
        said.trim(),
        out.status
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_the_layers_top_first() {
        let o = options(
            &[PathBuf::from("/s/l/b"), PathBuf::from("/s/l/a")],
            Path::new("/c/upper"),
            Path::new("/c/work"),
            false,
        )
        .unwrap();
        assert_eq!(
            o,
            "lowerdir=/s/l/b:/s/l/a,upperdir=/c/upper,workdir=/c/work"
        );
        let v = options(
            &[PathBuf::from("/a")],
            Path::new("/u"),
            Path::new("/w"),
            true,
        )
        .unwrap();
        assert_eq!(v, "lowerdir=/a,upperdir=/u,workdir=/w,fsync=0");
    }

    #[test]
    fn a_path_the_program_would_split_is_refused() {
        for bad in ["/s/a,b", "/s/a:b"] {
            let e = options(
                &[PathBuf::from(bad)],
                Path::new("/u"),
                Path::new("/w"),
                false,
            )
            .unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
