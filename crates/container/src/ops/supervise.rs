//! Staying with a container process in the foreground (`run`, `exec`): forward the signals
//! we get to it, reap it, and with a terminal relay our stdio to its pty, in raw mode, with
//! window size changes passed on.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
use rustix::process::{Pid, Signal, WaitOptions, pidfd_send_signal};
use rustix::termios::{OptionalActions, Termios};

use crate::error::{Error, Result};
use crate::sys;

/// The pty master of a foreground terminal container, with our own terminal's state.
pub struct TtyRelay {
    master: OwnedFd,
    saved: Option<Termios>,
}

impl TtyRelay {
    /// Takes over `master`: our stdin goes raw when it is a terminal, and the pty gets our
    /// window size.
    pub fn new(master: OwnedFd) -> Self {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(original) = &saved {
            let mut raw = original.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw);
        }
        let relay = TtyRelay { master, saved };
        relay.copy_window_size();
        relay
    }

    fn copy_window_size(&self) {
        if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdin().as_fd()) {
            let _ = rustix::termios::tcsetwinsize(&self.master, size);
        }
    }
}

impl Drop for TtyRelay {
    fn drop(&mut self) {
        if let Some(original) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin().as_fd(),
                OptionalActions::Now,
                original,
            );
        }
    }
}

/// The window size of the caller's terminal (our stdin), as (rows, columns).
pub fn caller_window_size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(std::io::stdin().as_fd()).ok()?;
    (size.ws_row > 0 || size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// Receives the pty master a container process sent over a console socket.
pub fn receive_master(socket: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut buf)],
        &mut ancillary,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys("receive the pty master", e))?;
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(Error::Init("the console socket carried no pty".into()))
}

/// Waits for `pid` (our child) to exit while forwarding signals and relaying the terminal.
/// Returns its exit code (128+signal when a signal killed it). Every signal must already be
/// blocked (it is, since before the fork), so none is lost.
pub fn supervise(pid: i32, pidfd: &OwnedFd, tty: Option<TtyRelay>) -> Result<i32> {
    let signals = sys::signalfd_all().map_err(|e| Error::sys("signalfd", e))?;
    let stdin = std::io::stdin();
    let mut stdin_open = tty.is_some();
    let mut master_open = tty.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if let Some(code) = reap(pid)? {
            // Drain what the process wrote last.
            if let Some(relay) = &tty {
                while master_open && copy(&relay.master, std::io::stdout().as_fd(), &mut buf) {}
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(&signals, PollFlags::IN)];
        if let Some(relay) = &tty {
            if master_open {
                fds.push(PollFd::new(&relay.master, PollFlags::IN));
            }
            if stdin_open {
                fds.push(PollFd::new(&stdin, PollFlags::IN));
            }
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready: Vec<(usize, PollFlags)> = fds
            .iter()
            .enumerate()
            .map(|(i, f)| (i, f.revents()))
            .collect();
        drop(fds);
        for (index, revents) in ready {
            if revents.is_empty() {
                continue;
            }
            match index {
                0 => {
                    while let Some(signal) = sys::read_signal(signals.as_fd())
                        .map_err(|e| Error::sys("read signalfd", e))?
                    {
                        match signal {
                            libc::SIGCHLD => {}
                            libc::SIGWINCH => {
                                if let Some(relay) = &tty {
                                    relay.copy_window_size();
                                }
                            }
                            other => {
                                if let Some(sig) = Signal::from_named_raw(other) {
                                    let _ = pidfd_send_signal(pidfd, sig);
                                }
                            }
                        }
                    }
                }
                _ => {
                    let relay = tty.as_ref().expect("only signals without a tty");
                    let is_master = master_open && index == 1;
                    if is_master {
                        master_open = copy(&relay.master, std::io::stdout().as_fd(), &mut buf);
                    } else {
                        stdin_open = copy(&stdin, relay.master.as_fd(), &mut buf);
                    }
                }
            }
        }
    }
}

/// Copies one chunk; false when the source is finished (EOF, or EIO from a pty whose other
/// side is closed).
fn copy(from: impl AsFd, to: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    let n = match rustix::io::read(from.as_fd(), &mut *buf) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => return true,
        Err(_) => return false,
    };
    let mut written = 0;
    while written < n {
        match rustix::io::write(to, &buf[written..n]) {
            Ok(w) => written += w,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Reaps every exited child; returns the exit code of `pid` if it was among them.
fn reap(pid: i32) -> Result<Option<i32>> {
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((reaped, status))) => {
                if reaped == Pid::from_raw(pid).expect("positive pid") {
                    let code = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => code,
                        (None, Some(sig)) => 128 + sig,
                        _ => 255,
                    };
                    return Ok(Some(code));
                }
            }
            Ok(None) => return Ok(None),
            Err(rustix::io::Errno::CHILD) => return Ok(None),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("wait", e)),
        }
    }
}
