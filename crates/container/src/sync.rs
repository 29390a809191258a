//! The conversation between the runtime and the container's init over a SOCK_SEQPACKET
//! socketpair: one message per packet, a tag byte and a small payload, an fd where needed.
//! Both ends are close-on-exec, so the init's successful exec is seen by the runtime as EOF.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType, recvmsg, sendmsg, socketpair,
};

use crate::error::{Error, Result};

/// A message between the runtime (parent) and the init (child).
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// parent → child: go on with the next step.
    Continue,
    /// parent → child (run mode): the state is written, exec the process now.
    Start,
    /// child → parent: the child made a user namespace; write its id maps.
    NeedIdMaps,
    /// child → parent: the init is this pid (the first child only prepared namespaces).
    InitPid(i32),
    /// child → parent: mounts are done; run the prestart and createRuntime hooks.
    RunHooks,
    /// child → parent: everything is set up, the init waits to be started.
    Ready,
    /// child → parent: the seccomp notify fd is attached.
    SeccompListener,
    /// child → parent: setup failed.
    Error(String),
}

const CONTINUE: u8 = 1;
const START: u8 = 2;
const NEED_ID_MAPS: u8 = 3;
const INIT_PID: u8 = 4;
const RUN_HOOKS: u8 = 5;
const READY: u8 = 6;
const SECCOMP_LISTENER: u8 = 7;
const ERROR: u8 = 8;

impl Message {
    fn encode(&self) -> Vec<u8> {
        match self {
            Message::Continue => vec![CONTINUE],
            Message::Start => vec![START],
            Message::NeedIdMaps => vec![NEED_ID_MAPS],
            Message::InitPid(pid) => {
                let mut v = vec![INIT_PID];
                v.extend_from_slice(&pid.to_le_bytes());
                v
            }
            Message::RunHooks => vec![RUN_HOOKS],
            Message::Ready => vec![READY],
            Message::SeccompListener => vec![SECCOMP_LISTENER],
            Message::Error(text) => {
                let mut v = vec![ERROR];
                v.extend_from_slice(text.as_bytes());
                v
            }
        }
    }

    fn decode(data: &[u8]) -> Option<Message> {
        let (&tag, payload) = data.split_first()?;
        Some(match tag {
            CONTINUE => Message::Continue,
            START => Message::Start,
            NEED_ID_MAPS => Message::NeedIdMaps,
            INIT_PID => Message::InitPid(i32::from_le_bytes(payload.try_into().ok()?)),
            RUN_HOOKS => Message::RunHooks,
            READY => Message::Ready,
            SECCOMP_LISTENER => Message::SeccompListener,
            ERROR => Message::Error(String::from_utf8_lossy(payload).into_owned()),
            _ => return None,
        })
    }
}

/// One end of the sync socketpair.
#[derive(Debug)]
pub struct SyncSocket {
    fd: OwnedFd,
}

/// Large enough for the longest error message we send.
const MAX_PACKET: usize = 64 * 1024;

impl SyncSocket {
    /// A connected pair: (parent end, child end).
    pub fn pair() -> Result<(SyncSocket, SyncSocket)> {
        let (a, b) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::sys("socketpair", e))?;
        Ok((SyncSocket { fd: a }, SyncSocket { fd: b }))
    }

    pub fn send(&self, message: &Message) -> Result<()> {
        self.send_with_fd(message, None)
    }

    /// Sends a message with an fd attached (SCM_RIGHTS).
    pub fn send_with_fd(&self, message: &Message, fd: Option<&OwnedFd>) -> Result<()> {
        let data = message.encode();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd.as_fd()];
            ancillary.push(SendAncillaryMessage::ScmRights(&fds));
        }
        sendmsg(
            &self.fd,
            &[IoSlice::new(&data)],
            &mut ancillary,
            SendFlags::NOSIGNAL,
        )
        .map_err(|e| Error::sys("send to sync socket", e))?;
        Ok(())
    }

    /// Receives the next message; `None` when the other end is closed (for the runtime: the
    /// init exec'd or died).
    pub fn recv(&self) -> Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_PACKET];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            match recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buf)],
                &mut ancillary,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(r) => break r,
                Err(rustix::io::Errno::INTR) => continue,
                // The other side closed while a message of ours was unread. The kernel
                // reports that once (and clears it); what it sent before is still queued,
                // so read on: its last words (an error report) matter more than ours.
                Err(rustix::io::Errno::CONNRESET) => continue,
                Err(e) => return Err(Error::sys("receive from sync socket", e)),
            }
        };
        if received.bytes == 0 {
            return Ok(None);
        }
        let mut fd = None;
        for message in ancillary.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message {
                fd = fds.next();
            }
        }
        let message = Message::decode(&buf[..received.bytes]).ok_or_else(|| {
            Error::Init(format!(
                "malformed message from the container init ({} bytes)",
                received.bytes
            ))
        })?;
        Ok(Some((message, fd)))
    }

    /// Like [`SyncSocket::recv`], while also watching `signals` (a signalfd): the runtime
    /// blocks every signal while it sets a process up, and must still react to them. Each
    /// signal goes to `on_signal`, whose error ends the wait. A message that is already
    /// there is taken first: once the other side has exec'd, a signal is for the new
    /// process, not a reason to give up.
    pub fn recv_or_signal(
        &self,
        signals: std::os::fd::BorrowedFd<'_>,
        on_signal: &mut dyn FnMut(i32) -> Result<()>,
    ) -> Result<Option<(Message, Option<OwnedFd>)>> {
        use rustix::event::{PollFd, PollFlags, poll};
        loop {
            let mut fds = [
                PollFd::new(&self.fd, PollFlags::IN),
                PollFd::from_borrowed_fd(signals, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::sys("poll", e)),
            }
            if !fds[0].revents().is_empty() {
                return self.recv();
            }
            if !fds[1].revents().is_empty() {
                while let Some(signal) =
                    crate::sys::read_signal(signals).map_err(|e| Error::sys("read signalfd", e))?
                {
                    on_signal(signal)?;
                }
            }
        }
    }

    /// The signals that ask a process to end.
    pub fn is_terminating(signal: i32) -> bool {
        matches!(
            signal,
            libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT
        )
    }

    /// The error the other side already sent, if any (without waiting): when talking to the
    /// child failed because it died, its own account of why is the better message.
    pub fn pending_error(&self) -> Option<String> {
        let mut fds = [rustix::event::PollFd::new(
            &self.fd,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(n) if n > 0 => match self.recv() {
                Ok(Some((Message::Error(text), _))) => Some(text),
                _ => None,
            },
            _ => None,
        }
    }

    /// Waits for a specific message; anything else is a protocol error.
    pub fn expect(&self, wanted: Message) -> Result<()> {
        match self.recv()? {
            Some((m, _)) if m == wanted => Ok(()),
            Some((Message::Error(text), _)) => Err(Error::Init(text)),
            Some((other, _)) => Err(Error::Init(format!(
                "expected {wanted:?} from the other side, got {other:?}"
            ))),
            None => Err(Error::Init(format!(
                "the other side closed the sync socket while we waited for {wanted:?}"
            ))),
        }
    }

    /// The socket as a plain fd (for use as a console socket).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = SyncSocket::pair().unwrap();
        for m in [
            Message::Continue,
            Message::InitPid(123456),
            Message::Error("mount /proc: EPERM".into()),
            Message::Ready,
        ] {
            a.send(&m).unwrap();
            let (got, fd) = b.recv().unwrap().unwrap();
            assert_eq!(got, m);
            assert!(fd.is_none());
        }
    }

    #[test]
    fn the_last_words_of_a_peer_that_left_our_message_unread_survive() {
        // The init reports an error and exits before reading the runtime's Continue: the
        // kernel flags the runtime's socket with ECONNRESET, but the report must still come
        // through, followed by EOF.
        let (runtime, init) = SyncSocket::pair().unwrap();
        runtime.send(&Message::Continue).unwrap();
        init.send(&Message::Error("cwd: not a directory".into()))
            .unwrap();
        drop(init);
        let (got, _) = runtime.recv().unwrap().unwrap();
        assert_eq!(got, Message::Error("cwd: not a directory".into()));
        assert!(runtime.recv().unwrap().is_none());
    }

    #[test]
    fn carries_an_fd() {
        let (a, b) = SyncSocket::pair().unwrap();
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fd: OwnedFd = file.into();
        a.send_with_fd(&Message::SeccompListener, Some(&fd))
            .unwrap();
        let (m, got) = b.recv().unwrap().unwrap();
        assert_eq!(m, Message::SeccompListener);
        assert!(got.is_some());
    }

    #[test]
    fn eof_when_peer_closes() {
        let (a, b) = SyncSocket::pair().unwrap();
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }
}
