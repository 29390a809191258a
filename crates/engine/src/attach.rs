//! The attach protocol between a monitor and its clients (foreground `run`, `start -a`,
//! `attach`), over the unix socket `<runroot>/containers/<id>/attach.sock` (or the
//! socketpair a starting command hands the monitor, so no output is missed).
//!
//! Frames: one kind byte, a big-endian u32 length, the payload. Monitor → client: stdout,
//! stderr, started, exit (JSON [`ExitInfo`]), error (text). Client → monitor: stdin,
//! stdin EOF, a window size, a signal to forward.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use serde::{Deserialize, Serialize};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;
pub const ERROR: u8 = 4;
pub const STARTED: u8 = 5;
pub const STDIN_EOF: u8 = 6;
pub const RESIZE: u8 = 7;
pub const SIGNAL: u8 = 8;

/// The socket's file name in `<runroot>/containers/<id>/`.
pub const SOCKET: &str = "attach.sock";

/// How the container ended, as the monitor tells its clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub oom_killed: bool,
    pub memory_limit: Option<u64>,
    pub name: String,
}

impl ExitInfo {
    /// The plain-words line for an OOM kill.
    pub fn oom_message(&self) -> Option<String> {
        self.oom_killed.then(|| {
            let limit = match self.memory_limit {
                Some(l) => {
                    let text = crate::units::human_bytes(l);
                    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(0);
                    format!(" (limit {} {})", &text[..split], &text[split..])
                }
                None => String::new(),
            };
            format!(
                "berth: container {} was killed by the kernel: out of memory{limit}",
                self.name
            )
        })
    }
}

/// Writes one frame (blocking; a short write is continued).
pub fn write_frame(fd: BorrowedFd<'_>, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let mut written = 0;
    while written < frame.len() {
        match rustix::net::send(fd, &frame[written..], rustix::net::SendFlags::NOSIGNAL) {
            Ok(n) => written += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                let _ = rustix::event::poll(&mut fds, None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reassembles frames from what a socket delivers.
#[derive(Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Reads what is available; `Ok(false)` at EOF.
    pub fn fill(&mut self, fd: impl AsFd) -> io::Result<bool> {
        // read straight into the buffer's spare room: a zeroed array on the stack would
        // dirty 32 KiB of a monitor's stack for every keystroke's frame
        self.buf.reserve(32 * 1024);
        loop {
            match rustix::io::read(fd.as_fd(), rustix::buffer::spare_capacity(&mut self.buf)) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Ok(true),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The kind of the next complete frame, if one is buffered.
    pub fn peek_kind(&self) -> Option<u8> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        (self.buf.len() >= 5 + len).then(|| self.buf[0])
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Some((kind, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        write_frame(a.as_fd(), STDOUT, b"hello").unwrap();
        write_frame(a.as_fd(), EXIT, b"{}").unwrap();
        let mut r = FrameReader::default();
        while r.buf.len() < 12 {
            assert!(r.fill(&b).unwrap());
        }
        assert_eq!(r.next_frame(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(r.next_frame(), Some((EXIT, b"{}".to_vec())));
        assert_eq!(r.next_frame(), None);
    }

    #[test]
    fn oom_words() {
        let info = ExitInfo {
            exit_code: 137,
            oom_killed: true,
            memory_limit: Some(256 << 20),
            name: "redis".into(),
        };
        assert_eq!(
            info.oom_message().unwrap(),
            "berth: container redis was killed by the kernel: out of memory (limit 256 MiB)"
        );
    }
}
