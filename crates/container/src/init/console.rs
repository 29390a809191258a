//! The container's terminal: a pty from the container's own devpts instance, whose peer is
//! opened by fd (TIOCGPTPEER) and bound to /dev/console; the master goes to the caller over
//! the console socket. No path under /dev/pts is ever looked up, so a swapped entry cannot
//! redirect the console (CVE-2025-52565).

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
use rustix::pty::OpenptFlags;

use super::InitError;
use super::fs::{fd_path, touch_in_root};
use crate::sys;

const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;

type Result<T> = std::result::Result<T, InitError>;

/// A new pty: the master (for the caller) and the peer (the container's stdio).
pub struct Pty {
    pub master: OwnedFd,
    pub peer: OwnedFd,
}

/// Opens a pty from the container's `/dev/pts/ptmx` (inside `root`) and binds its peer onto
/// `/dev/console`.
pub fn open_console(root: BorrowedFd<'_>, size: Option<(u16, u16)>) -> Result<Pty> {
    let fail = |what: &str, e: std::io::Error| InitError::Console(format!("{what}: {e}"));
    let pty = open_pty(root, size)?;
    // Whatever the image has at /dev/console (a symlink, say) is replaced by an empty file
    // of our own, so the pty is bound there and nowhere else.
    let dev = super::fs::mkdir_all_in_root(root, Path::new("dev"))
        .and_then(|fd| super::fs::reopen_dir(&fd))
        .map_err(|e| fail("open /dev", e))?;
    match rustix::fs::unlinkat(&dev, "console", rustix::fs::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(fail("replace /dev/console", e.into())),
    }
    let console = touch_in_root(root, Path::new("dev/console"))
        .map_err(|e| fail("create /dev/console", e))?;
    sys::mount(
        Some(&fd_path(&pty.peer)),
        &fd_path(&console),
        None,
        libc::MS_BIND,
        None,
    )
    .map_err(|e| fail("bind the pty onto /dev/console", e))?;
    Ok(pty)
}

/// Opens a pty from the container's `/dev/pts/ptmx` (inside `root`), verified to be a real
/// devpts ptmx.
pub fn open_pty(root: BorrowedFd<'_>, size: Option<(u16, u16)>) -> Result<Pty> {
    let fail = |what: &str, e: std::io::Error| InitError::Console(format!("{what}: {e}"));
    let master = rustix::fs::openat2(
        root,
        "dev/pts/ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| {
        fail(
            "open /dev/pts/ptmx (is devpts mounted on /dev/pts?)",
            e.into(),
        )
    })?;
    let fs = rustix::fs::fstatfs(&master).map_err(|e| fail("statfs ptmx", e.into()))?;
    let st = rustix::fs::fstat(&master).map_err(|e| fail("stat ptmx", e.into()))?;
    if fs.f_type as i64 != DEVPTS_SUPER_MAGIC
        || rustix::fs::major(st.st_rdev) != 5
        || rustix::fs::minor(st.st_rdev) != 2
    {
        return Err(InitError::Console(
            "/dev/pts/ptmx is not the ptmx of a devpts filesystem".into(),
        ));
    }
    rustix::pty::unlockpt(&master).map_err(|e| fail("unlockpt", e.into()))?;
    let peer = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .map_err(|e| fail("open the pty peer", e.into()))?;
    if let Some((rows, cols)) = size {
        set_window_size(&master, rows, cols).map_err(|e| fail("set window size", e))?;
    }
    Ok(Pty { master, peer })
}

/// Sets the window size of a terminal.
pub fn set_window_size(fd: impl AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, ws).map_err(Into::into)
}

/// Sends the pty master over the console socket, as runc does (SCM_RIGHTS, with the pty's
/// name as the payload).
pub fn send_master(socket: BorrowedFd<'_>, master: &OwnedFd) -> Result<()> {
    let name = b"/dev/ptmx";
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = SendAncillaryBuffer::new(&mut space);
    let fds = [master.as_fd()];
    ancillary.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(
        socket,
        &[IoSlice::new(name)],
        &mut ancillary,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| InitError::Console(format!("send the pty master to the console socket: {e}")))?;
    Ok(())
}

/// Makes the pty peer our controlling terminal and our stdin, stdout and stderr.
pub fn become_console(peer: &OwnedFd) -> Result<()> {
    let fail = |what: &str, e: rustix::io::Errno| InitError::Console(format!("{what}: {e}"));
    rustix::process::setsid().map_err(|e| fail("setsid", e))?;
    rustix::process::ioctl_tiocsctty(peer)
        .map_err(|e| fail("make the pty the controlling terminal", e))?;
    rustix::stdio::dup2_stdin(peer).map_err(|e| fail("dup2 stdin", e))?;
    rustix::stdio::dup2_stdout(peer).map_err(|e| fail("dup2 stdout", e))?;
    rustix::stdio::dup2_stderr(peer).map_err(|e| fail("dup2 stderr", e))?;
    Ok(())
}
