//! A synchronous connection to a message bus: connect, SASL EXTERNAL, Hello, then method
//! calls and signals over one blocking unix socket. No threads, no async runtime: the runtime
//! makes a handful of calls per container and exits.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::address::{self, SocketAddr};
use super::error::{Error, Result};
use super::message::{Kind, Message};
use super::types::{Value, signature_of};

/// D-Bus's own default for a method call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);

/// Signals kept while a reply is awaited; beyond this the oldest are dropped (a match rule
/// keeps the stream small, this only bounds a misbehaving bus).
const MAX_QUEUED: usize = 4096;

const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

pub struct Connection {
    stream: UnixStream,
    path: PathBuf,
    serial: u32,
    unique_name: String,
    rbuf: Vec<u8>,
    queued: VecDeque<Message>,
}

impl Connection {
    /// The system bus (DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket).
    pub fn system() -> Result<Connection> {
        let addrs = address::system_bus()?;
        let mut last = None;
        for a in &addrs {
            match Connection::connect(a) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("address::parse returns at least one address"))
    }

    pub fn connect(addr: &SocketAddr) -> Result<Connection> {
        let path = addr.display();
        let stream = match addr {
            SocketAddr::Path(p) => UnixStream::connect(p),
            SocketAddr::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|a| UnixStream::connect_addr(&a))
            }
        }
        .map_err(|source| Error::Connect {
            path: path.clone(),
            source,
        })?;
        let mut c = Connection {
            stream,
            path,
            serial: 0,
            unique_name: String::new(),
            rbuf: Vec::new(),
            queued: VecDeque::new(),
        };
        c.authenticate()?;
        Ok(c)
    }

    /// The name the bus gave us in reply to Hello (`:1.42`).
    pub fn unique_name(&self) -> &str {
        &self.unique_name
    }

    pub fn socket_path(&self) -> &std::path::Path {
        &self.path
    }

    fn io(&self, op: &'static str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: self.path.clone(),
            op,
            source,
        }
    }

    /// SASL EXTERNAL with our effective uid (what the kernel reports for the socket), then
    /// BEGIN and Hello in one write: two round trips in all.
    fn authenticate(&mut self) -> Result<()> {
        let uid = rustix::process::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        self.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = self.read_line(deadline)?;
        if !line.starts_with("OK ") {
            return Err(Error::Auth {
                path: self.path.clone(),
                reply: line,
            });
        }
        let hello = self.prepare(Message::method_call(
            BUS_NAME,
            BUS_PATH,
            BUS_NAME,
            "Hello",
            vec![],
        ));
        let serial = hello.serial;
        let mut out = b"BEGIN\r\n".to_vec();
        out.extend_from_slice(&hello.encode());
        self.write_all(&out)?;
        let reply = self.wait_reply(serial, &hello, DEFAULT_TIMEOUT)?;
        self.unique_name = match reply.body.first() {
            Some(Value::Str(s)) => s.clone(),
            _ => return Err(reply_error(&hello, "s", &reply)),
        };
        Ok(())
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String> {
        loop {
            if let Some(i) = self.rbuf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.rbuf.drain(..i + 2).take(i).collect();
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.rbuf.len() > 16 << 10 {
                return Err(Error::Protocol {
                    path: self.path.clone(),
                    reason: "authentication line too long".into(),
                });
            }
            if !self.fill(deadline)? {
                return Err(Error::Timeout {
                    method: "AUTH EXTERNAL".into(),
                    destination: BUS_NAME.into(),
                    secs: DEFAULT_TIMEOUT.as_secs(),
                });
            }
        }
    }

    fn write_all(&mut self, b: &[u8]) -> Result<()> {
        let r = self.stream.write_all(b);
        r.map_err(self.io("write"))
    }

    /// Read more bytes; false when the deadline passed.
    fn fill(&mut self, deadline: Instant) -> Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let r = self.stream.set_read_timeout(Some(left));
        r.map_err(self.io("set timeout"))?;
        let mut chunk = [0u8; 16 << 10];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(Error::Closed {
                        path: self.path.clone(),
                    });
                }
                Ok(n) => {
                    self.rbuf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(false);
                }
                Err(e) => return Err(self.io("read")(e)),
            }
        }
    }

    /// The next whole message, or None at the deadline.
    fn read_message(&mut self, deadline: Instant) -> Result<Option<Message>> {
        loop {
            if self.rbuf.len() >= 16 {
                let fixed: [u8; 16] = self.rbuf[..16].try_into().expect("16 bytes");
                let total = Message::total_len(&fixed).map_err(|reason| Error::Protocol {
                    path: self.path.clone(),
                    reason,
                })?;
                if self.rbuf.len() >= total {
                    let bytes: Vec<u8> = self.rbuf.drain(..total).collect();
                    let m = Message::decode(&bytes).map_err(|reason| Error::Protocol {
                        path: self.path.clone(),
                        reason,
                    })?;
                    return Ok(Some(m));
                }
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    fn prepare(&mut self, mut m: Message) -> Message {
        self.serial = self.serial.wrapping_add(1).max(1);
        m.serial = self.serial;
        m
    }

    /// Send a call without waiting: returns the call as sent (with its serial), for
    /// [`Connection::reply`]. Several calls can be in flight, which saves round trips.
    pub fn send(&mut self, m: Message) -> Result<Message> {
        let m = self.prepare(m);
        self.write_all(&m.encode())?;
        Ok(m)
    }

    /// Wait for the reply to a call sent with [`Connection::send`]. An error reply is
    /// [`Error::Remote`] naming the method.
    pub fn reply(&mut self, call: &Message, timeout: Duration) -> Result<Message> {
        self.wait_reply(call.serial, call, timeout)
    }

    /// Call and wait for the reply.
    pub fn call(&mut self, m: Message, timeout: Duration) -> Result<Message> {
        let call = self.send(m)?;
        self.reply(&call, timeout)
    }

    fn wait_reply(&mut self, serial: u32, call: &Message, timeout: Duration) -> Result<Message> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(m) = self.read_message(deadline)? else {
                return Err(Error::Timeout {
                    method: call.method_name(),
                    destination: call.destination.clone().unwrap_or_default(),
                    secs: timeout.as_secs(),
                });
            };
            match m.kind {
                Kind::MethodReturn if m.reply_serial == Some(serial) => return Ok(m),
                Kind::Error if m.reply_serial == Some(serial) => {
                    return Err(Error::Remote {
                        method: call.method_name(),
                        destination: call.destination.clone().unwrap_or_default(),
                        name: m.error_name.clone().unwrap_or_default(),
                        message: m
                            .body
                            .first()
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    });
                }
                Kind::Signal => {
                    if self.queued.len() == MAX_QUEUED {
                        self.queued.pop_front();
                    }
                    self.queued.push_back(m);
                }
                // replies to calls nobody waits for any more, and calls to us: we serve none
                _ => {}
            }
        }
    }

    /// The first signal (queued or new) that `want` accepts; others are dropped. None at the
    /// deadline.
    pub fn wait_signal(
        &mut self,
        deadline: Instant,
        mut want: impl FnMut(&Message) -> bool,
    ) -> Result<Option<Message>> {
        while let Some(m) = self.queued.pop_front() {
            if want(&m) {
                return Ok(Some(m));
            }
        }
        loop {
            match self.read_message(deadline)? {
                None => return Ok(None),
                Some(m) if m.kind == Kind::Signal && want(&m) => return Ok(Some(m)),
                Some(_) => {}
            }
        }
    }

    /// org.freedesktop.DBus.AddMatch, sent without waiting (see [`Connection::send`]).
    pub fn send_add_match(&mut self, rule: &str) -> Result<Message> {
        self.send(Message::method_call(
            BUS_NAME,
            BUS_PATH,
            BUS_NAME,
            "AddMatch",
            vec![Value::str(rule)],
        ))
    }
}

/// A reply whose body is not what the method returns.
pub fn reply_error(call: &Message, expected: &'static str, reply: &Message) -> Error {
    Error::Reply {
        method: call.method_name(),
        expected,
        got: signature_of(&reply.body),
    }
}
