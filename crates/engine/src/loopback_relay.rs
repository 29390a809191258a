//! Published ports on IPv6's loopback. The kernel cannot DNAT a connection from `::1` to a
//! container: a packet with a loopback source may never leave `lo`, and IPv6 has no
//! `route_localnet` (the knob that makes 127.0.0.1 work). netavark's ports on `[::1]` time
//! out for this reason; docker runs docker-proxy. Berth forks a small relay per container
//! from its monitor: it listens on `[::1]:HOSTPORT` and copies bytes to the container's
//! address. It runs exactly while the container runs: it watches the container's init by
//! pidfd and exits with it (so a SIGKILLed monitor, after which the container runs on as
//! under a killed conmon, does not take the ports away), and the monitor also kills it at
//! the exit. No daemon stays when no container does.
//! Berth's nftables table lets `::1` pass untranslated so the relay's listener gets it.
//!
//! Which ports get one: those published on `[::1]`, and those on every address (there
//! `localhost` means `::1` first to most programs, as it does with docker). Other addresses
//! are served by the kernel's DNAT. A user-mode stack's (slirp4netns's) ports are its own
//! IPv4 listeners on the host: the relay forwards `[::1]` to those. The relay also holds the
//! fd that keeps such a stack running, which makes it the stack's watcher too.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_network::{Attachment, Proto, PublishedPort};

use crate::error::{Error, Result};
use crate::sys;

/// A UDP client's flow is forgotten after this long without a reply.
const UDP_IDLE: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One port to relay: where it listens on the host and where it goes.
struct Route {
    listen: SocketAddr,
    target: SocketAddr,
    proto: Proto,
    /// The user asked for `[::1]` itself (or the network is IPv6): a failed bind is an
    /// error. For a v4 network's every-address port the relay is a courtesy.
    required: bool,
}

fn routes(atts: &[Attachment]) -> Vec<Route> {
    let mut out = Vec::new();
    for att in atts {
        // No bridge: a user-mode stack, whose listener on the host's 127.0.0.1 takes it on.
        let user_mode = att.bridge.is_empty();
        for p in &att.ports {
            if let Some(required) = wants_relay(p, att.ip) {
                let target = if user_mode {
                    SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), p.host_port)
                } else {
                    SocketAddr::new(att.ip, p.container_port)
                };
                out.push(Route {
                    listen: SocketAddr::new(Ipv6Addr::LOCALHOST.into(), p.host_port),
                    target,
                    proto: p.proto,
                    required,
                });
            }
        }
    }
    out
}

/// Whether `p` of a container at `ctr` is served on `[::1]` by the relay, and if so whether
/// it must be (`Some(true)`).
fn wants_relay(p: &PublishedPort, ctr: IpAddr) -> Option<bool> {
    match p.host_ip {
        Some(IpAddr::V6(a)) if a.is_loopback() => Some(true),
        Some(_) => None,
        None => Some(ctr.is_ipv6()),
    }
}

enum Listener {
    Tcp(TcpListener, SocketAddr),
    Udp(UdpSocket, SocketAddr),
}

/// A running relay process; dropping it kills it.
pub struct Relay {
    pidfd: OwnedFd,
}

impl Relay {
    /// Binds the `[::1]` listeners the container's ports need and forks the relay that
    /// serves them while the container whose init is `init` lives, holding `keep_alive` open
    /// as long; `None` when there is nothing to do. Must be called from a single-threaded
    /// process (the monitor is).
    pub fn start(
        atts: &[Attachment],
        init: i32,
        keep_alive: Option<OwnedFd>,
    ) -> Result<Option<Relay>> {
        let mut listeners = Vec::new();
        for r in routes(atts) {
            let bound = match r.proto {
                Proto::Tcp => TcpListener::bind(r.listen).map(|l| Listener::Tcp(l, r.target)),
                Proto::Udp => UdpSocket::bind(r.listen).map(|s| Listener::Udp(s, r.target)),
            };
            match bound {
                Ok(l) => listeners.push(l),
                Err(e) if r.required => {
                    return Err(Error::Start {
                        message: format!(
                            "publish [::1]:{}/{}: cannot listen there: {e}",
                            r.listen.port(),
                            r.proto.as_str()
                        ),
                        exit_code: 125,
                    });
                }
                Err(e) => log::debug!("no relay on [::1]:{}: {e}", r.listen.port()),
            }
        }
        if listeners.is_empty() && keep_alive.is_none() {
            return Ok(None);
        }
        let init = rustix::process::Pid::from_raw(init)
            .ok_or_else(|| Error::sys("watch the container", io::Error::from_raw_os_error(22)))?;
        let container = rustix::process::pidfd_open(init, rustix::process::PidfdFlags::empty())
            .map_err(|e| Error::sys("pidfd_open the container's init", e))?;
        // SAFETY: the caller is single-threaded (the monitor); the child only closes fds,
        // names itself and then runs its own threads until the container exits.
        match unsafe { sys::fork() }.map_err(|e| Error::sys("fork the port relay", e))? {
            sys::Forked::Child => {
                let mut keep: Vec<i32> = listeners
                    .iter()
                    .map(|l| match l {
                        Listener::Tcp(s, _) => s.as_raw_fd(),
                        Listener::Udp(s, _) => s.as_raw_fd(),
                    })
                    .collect();
                keep.push(container.as_raw_fd());
                keep.extend(keep_alive.as_ref().map(|fd| fd.as_raw_fd()));
                sys::close_fds_except(&keep);
                // `ps -e` tells it from the monitor, whose command line it shares.
                let _ = rustix::thread::set_name(c"berth-relay");
                serve(listeners);
                exit_with(container)
            }
            sys::Forked::Parent(pid) => {
                let pid = rustix::process::Pid::from_raw(pid).expect("fork returns a pid");
                let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                    .map_err(|e| Error::sys("pidfd_open the port relay", e))?;
                Ok(Some(Relay { pidfd }))
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // By pidfd: the relay may have been reaped already (the monitor reaps orphans), and a
        // pid could be someone else's by now.
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL);
        let _ = rustix::process::waitid(
            rustix::process::WaitId::PidFd(std::os::fd::AsFd::as_fd(&self.pidfd)),
            rustix::process::WaitIdOptions::EXITED,
        );
    }
}

/// Ends the relay when the container's init exits (its pidfd turns readable).
fn exit_with(container: OwnedFd) -> ! {
    let mut fds = [rustix::event::PollFd::new(
        &container,
        rustix::event::PollFlags::IN,
    )];
    while let Err(rustix::io::Errno::INTR) = rustix::event::poll(&mut fds, None) {}
    sys::exit_now(0)
}

/// A thread per listener; they serve until the process ends (with the container, or killed).
fn serve(listeners: Vec<Listener>) {
    for l in listeners {
        std::thread::spawn(move || match l {
            Listener::Tcp(l, target) => serve_tcp(l, target),
            Listener::Udp(s, target) => serve_udp(s, target),
        });
    }
}

fn serve_tcp(listener: TcpListener, target: SocketAddr) {
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        std::thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
                // The client sees its connection closed, as when nothing listens inside.
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                return;
            };
            let back = std::thread::spawn(move || pipe(u2, c2));
            pipe(client, upstream);
            let _ = back.join();
        });
    }
}

/// Copies until EOF, then passes the EOF on (a half close, as a direct connection has).
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

fn serve_udp(socket: UdpSocket, target: SocketAddr) {
    let socket = Arc::new(socket);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let existing = flows.lock().expect("flows lock").get(&client).cloned();
        let upstream = match existing {
            Some(u) => u,
            None => match new_flow(&socket, &flows, client, target) {
                Ok(u) => u,
                Err(e) => {
                    log::debug!("udp relay to {target}: {e}");
                    continue;
                }
            },
        };
        let _ = upstream.send(&buf[..n]);
    }
}

/// A socket of the client's own towards the container, so replies find their way back; a
/// thread carries them to the client until the flow is idle.
fn new_flow(
    socket: &Arc<UdpSocket>,
    flows: &Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
    client: SocketAddr,
    target: SocketAddr,
) -> io::Result<Arc<UdpSocket>> {
    let any: IpAddr = match target {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let upstream = UdpSocket::bind(SocketAddr::new(any, 0))?;
    upstream.connect(target)?;
    upstream.set_read_timeout(Some(UDP_IDLE))?;
    let upstream = Arc::new(upstream);
    flows
        .lock()
        .expect("flows lock")
        .insert(client, upstream.clone());
    let (socket, flows, reader) = (socket.clone(), flows.clone(), upstream.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = reader.recv(&mut buf) {
            if socket.send_to(&buf[..n], client).is_err() {
                break;
            }
        }
        flows.lock().expect("flows lock").remove(&client);
    });
    Ok(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host_ip: Option<&str>) -> PublishedPort {
        PublishedPort {
            host_ip: host_ip.map(|h| h.parse().unwrap()),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
            ipv6: false,
        }
    }

    #[test]
    fn relays_loopback_v6_and_every_address() {
        let v6: IpAddr = "fd42:b::2".parse().unwrap();
        let v4: IpAddr = "10.89.0.2".parse().unwrap();
        assert_eq!(wants_relay(&port(Some("::1")), v6), Some(true));
        assert_eq!(wants_relay(&port(None), v6), Some(true));
        // A v4 network's every-address port gets one if [::1] is free.
        assert_eq!(wants_relay(&port(None), v4), Some(false));
        // The kernel serves other addresses.
        assert_eq!(wants_relay(&port(Some("127.0.0.1")), v4), None);
        assert_eq!(wants_relay(&port(Some("fd42:b::1")), v6), None);
    }
}
