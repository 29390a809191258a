//! The client side of attach, in the command that runs in the foreground (`run`, `start -a`,
//! `attach`): the container's stdout and stderr to ours, our stdin to it (`-i`), our
//! terminal in raw mode with its size passed on (`-t`), the signals we get passed to the
//! container (docker's --sig-proxy), and the exit at the end.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::termios::{OptionalActions, Termios};

use crate::attach::{self, ExitInfo, FrameReader};
use crate::error::{Error, Result};
use crate::sys;

/// Waits for the monitor's STARTED (or the start's error) on a fresh connection. Returns
/// the reader, which may hold frames that came after (pass it on to [`attach`]).
pub fn wait_started(socket: &OwnedFd) -> Result<FrameReader> {
    let mut reader = FrameReader::default();
    loop {
        if let Some(kind) = reader.peek_kind() {
            match kind {
                attach::STARTED => {
                    let (_, payload) = reader.next_frame().expect("peeked");
                    let warnings: Vec<String> =
                        serde_json::from_slice(&payload).unwrap_or_default();
                    crate::warnings::print(&warnings);
                    return Ok(reader);
                }
                attach::ERROR => {
                    let (_, payload) = reader.next_frame().expect("peeked");
                    let value: serde_json::Value =
                        serde_json::from_slice(&payload).unwrap_or_default();
                    let warnings: Vec<String> =
                        serde_json::from_value(value["warnings"].clone()).unwrap_or_default();
                    crate::warnings::print(&warnings);
                    return Err(start_error(&payload));
                }
                // Anything else means it already started (output, or the exit).
                _ => return Ok(reader),
            }
        }
        if !reader
            .fill(socket)
            .map_err(|e| Error::sys("read from the monitor", e))?
        {
            return Err(Error::Other(
                "the container's monitor went away before the start".into(),
            ));
        }
    }
}

fn start_error(payload: &[u8]) -> Error {
    let value: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    Error::Start {
        message: value["message"]
            .as_str()
            .unwrap_or("the container failed to start")
            .to_string(),
        exit_code: value["exit_code"].as_u64().unwrap_or(125) as u8,
    }
}

/// The size of our terminal (stdin) as (rows, columns), if it is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(std::io::stdin()).ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// How to attach.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Forward our stdin.
    pub stdin: bool,
    /// The container has a terminal: raw mode, window size, detach keys (ctrl-p ctrl-q).
    pub tty: bool,
    /// Pass SIGINT, SIGTERM, ... on to the container (not with a terminal, where they are
    /// keys).
    pub sig_proxy: bool,
}

/// How an attach ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitInfo),
    /// Ctrl-p ctrl-q: the container keeps running.
    Detached,
}

struct RawMode(Option<Termios>);

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), OptionalActions::Now, t);
        }
    }
}

fn send_window_size(socket: &OwnedFd) {
    if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdin()) {
        let mut payload = size.ws_row.to_be_bytes().to_vec();
        payload.extend_from_slice(&size.ws_col.to_be_bytes());
        let _ = attach::write_frame(socket.as_fd(), attach::RESIZE, &payload);
    }
}

/// Relays until the container exits (or we detach). An ERROR from the monitor (the start
/// failed) is returned as the error.
pub fn attach(socket: OwnedFd, reader: FrameReader, options: AttachOptions) -> Result<Ended> {
    let forwarded = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
    ];
    let old_mask = sys::block_all_signals().map_err(|e| Error::sys("block signals", e))?;
    let result = relay(&socket, reader, options, &forwarded);
    sys::restore_signals(&old_mask);
    result
}

fn relay(
    socket: &OwnedFd,
    mut reader: FrameReader,
    options: AttachOptions,
    forwarded: &[i32],
) -> Result<Ended> {
    let signals = sys::signalfd(forwarded).map_err(|e| Error::sys("signalfd", e))?;
    let stdin = std::io::stdin();
    let _raw = if options.tty {
        let saved = rustix::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(&stdin, OptionalActions::Now, &raw);
        }
        send_window_size(socket);
        RawMode(saved)
    } else {
        RawMode(None)
    };
    let mut stdin_open = options.stdin;
    let mut buf = vec![0u8; 32 * 1024];
    let mut ctrl_p = false;
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    loop {
        while let Some((kind, payload)) = reader.next_frame() {
            match kind {
                attach::STDOUT => {
                    let _ = stdout.write_all(&payload);
                    let _ = stdout.flush();
                }
                attach::STDERR => {
                    let _ = stderr.write_all(&payload);
                }
                attach::EXIT => {
                    let info: ExitInfo = serde_json::from_slice(&payload).unwrap_or_default();
                    return Ok(Ended::Exited(info));
                }
                attach::ERROR => return Err(start_error(&payload)),
                _ => {}
            }
        }
        let mut fds = vec![
            PollFd::new(socket, PollFlags::IN),
            PollFd::new(&signals, PollFlags::IN),
        ];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !ready[0].is_empty()
            && !reader
                .fill(socket)
                .map_err(|e| Error::sys("read from the monitor", e))?
        {
            return Err(Error::Other("the container's monitor went away".into()));
        }
        if !ready[1].is_empty() {
            while let Some(sig) = sys::read_signal(signals.as_fd()) {
                if sig == libc::SIGWINCH {
                    if options.tty {
                        send_window_size(socket);
                    }
                } else if options.sig_proxy && !options.tty {
                    let _ = attach::write_frame(socket.as_fd(), attach::SIGNAL, &sig.to_be_bytes());
                }
            }
        }
        if stdin_open && ready.get(2).is_some_and(|r| !r.is_empty()) {
            match rustix::io::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = attach::write_frame(socket.as_fd(), attach::STDIN_EOF, b"");
                }
                Ok(n) => {
                    let mut data = &buf[..n];
                    if options.tty {
                        // A ctrl-p held back from the last read that turns out not to
                        // start the detach keys is the container's after all.
                        if ctrl_p && data[0] != 0x11 {
                            attach::write_frame(socket.as_fd(), attach::STDIN, b"\x10")
                                .map_err(|e| Error::sys("write to the monitor", e))?;
                        }
                        // docker's detach keys: ctrl-p then ctrl-q.
                        for (i, b) in data.iter().enumerate() {
                            if ctrl_p && *b == 0x11 {
                                // What was typed before them in this read still goes in.
                                let before = &data[..i.saturating_sub(1)];
                                if !before.is_empty() {
                                    attach::write_frame(socket.as_fd(), attach::STDIN, before)
                                        .map_err(|e| Error::sys("write to the monitor", e))?;
                                }
                                return Ok(Ended::Detached);
                            }
                            ctrl_p = *b == 0x10;
                            if ctrl_p && i + 1 == data.len() {
                                data = &data[..i];
                                break;
                            }
                        }
                    }
                    if !data.is_empty() {
                        attach::write_frame(socket.as_fd(), attach::STDIN, data)
                            .map_err(|e| Error::sys("write to the monitor", e))?;
                    }
                }
            }
        }
    }
}
