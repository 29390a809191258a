//! `--network slirp4netns[:OPTIONS]`: a user-mode network stack (podman's rootless default, and
//! open to root as well). slirp4netns (the Debian package) joins the container's network
//! namespace, makes `tap0` there (10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3) and
//! carries the container's traffic through ordinary sockets of the host: no bridge, no veth,
//! no firewall rule, no privilege. Published ports are slirp's own host listeners, added over
//! its API socket.
//!
//! Its lifetime is the container's: slirp4netns exits when its exit fd closes, and the write
//! end is held by the container's watcher (the loopback relay process, which exits with the
//! container's init), so neither a daemon nor the monitor has to outlive the container.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_network::{Attachment, MacAddr, PortSpec, PublishedPort};

use crate::network::{Error, Result};

/// The name `ps`, `inspect` and `port` show for such a container's network.
pub const NETWORK: &str = "slirp4netns";
/// slirp's fixed addresses in its default 10.0.2.0/24.
pub const CONTAINER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
const IFNAME: &str = "tap0";
/// podman's default: large frames cut the per-packet cost of the user-mode copy.
const DEFAULT_MTU: u32 = 65520;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const API_SOCKET: &str = "slirp.sock";

/// The options after `slirp4netns:` (podman's names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Let the container reach the host's 127.0.0.1 through 10.0.2.2 (off by default: a
    /// container must not reach services the host keeps to itself).
    pub allow_host_loopback: bool,
    pub mtu: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            allow_host_loopback: false,
            mtu: DEFAULT_MTU,
        }
    }
}

impl Options {
    /// `allow_host_loopback=true,mtu=1500,port_handler=slirp4netns` (any subset, or empty).
    pub fn parse(text: &str) -> std::result::Result<Options, String> {
        let mut o = Options::default();
        for kv in text.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("{kv:?}: expected KEY=VALUE"))?;
            match k {
                "allow_host_loopback" => {
                    o.allow_host_loopback = v
                        .parse()
                        .map_err(|_| format!("{kv:?}: expected true or false"))?;
                }
                "mtu" => {
                    o.mtu = v
                        .parse()
                        .ok()
                        .filter(|m| (68..=65521).contains(m))
                        .ok_or_else(|| format!("{kv:?}: mtu must be a number in 68-65521"))?;
                }
                // slirp's own listeners are what Berth uses: the one handler there is.
                "port_handler" if v == "slirp4netns" => {}
                "port_handler" => {
                    return Err(format!(
                        "{kv:?}: only port_handler=slirp4netns is supported"
                    ));
                }
                _ => {
                    return Err(format!(
                        "unknown option {k:?} (allow_host_loopback, mtu, port_handler)"
                    ));
                }
            }
        }
        Ok(o)
    }
}

/// A started slirp4netns: its attachment (for `port`, `ps`, `inspect`) and the write end of
/// its exit fd, which must be held for exactly as long as the container runs.
pub struct Slirp {
    pub attachment: Attachment,
    pub exit: OwnedFd,
}

fn failed(message: String) -> Error {
    Error::Other(message)
}

fn sys(op: &str, e: impl std::fmt::Display) -> Error {
    failed(format!("--network slirp4netns: {op}: {e}"))
}

fn file(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::File { op, path, source }
}

/// Start slirp4netns for the container whose init is `pid`, with its state in `run_dir`, and
/// publish `ports` on the host. On error nothing is left running.
pub fn start(
    holder: &str,
    pid: i32,
    run_dir: &Path,
    opts: &Options,
    ports: &[PortSpec],
) -> Result<Slirp> {
    let published = berth_network::resolve_ports(ports, CONTAINER_IP.into(), NETWORK)?;
    let (ready_r, ready_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| sys("pipe", e))?;
    let (exit_r, exit_w) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| sys("pipe", e))?;
    // The two child ends stay open across its exec (the monitor is single-threaded: no other
    // thread can fork while they lack CLOEXEC); the parent closes its copies after the spawn.
    for fd in [&ready_w, &exit_r] {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(|e| sys("fcntl", e))?;
    }
    let _ = std::fs::remove_file(run_dir.join(API_SOCKET));
    let mac = MacAddr::random();
    let log_path = run_dir.join("slirp4netns.log");
    let log = std::fs::File::create(&log_path).map_err(file("create", &log_path))?;
    let mut cmd = Command::new("slirp4netns");
    cmd.current_dir(run_dir)
        .arg("--configure")
        .arg(format!("--mtu={}", opts.mtu))
        .arg(format!("--macaddress={mac}"))
        .arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        // Relative to run_dir: a socket path must fit in 108 bytes.
        .arg(format!("--api-socket={API_SOCKET}"));
    if !opts.allow_host_loopback {
        cmd.arg("--disable-host-loopback");
    }
    cmd.arg(pid.to_string())
        .arg(IFNAME)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let spawned = cmd.spawn();
    drop(ready_w);
    drop(exit_r);
    let mut child = spawned.map_err(|e| {
        failed(if e.kind() == std::io::ErrorKind::NotFound {
            "--network slirp4netns: slirp4netns is not installed (Debian package slirp4netns)"
                .to_string()
        } else {
            format!("--network slirp4netns: start slirp4netns: {e}")
        })
    })?;
    let result = wait_ready(&ready_r, &mut child, run_dir).and_then(|()| {
        let api = ApiSocket::at(run_dir)?;
        for p in &published {
            api.add_hostfwd(p)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        // Closing the exit fd ends it; the kill covers one that is stuck before its loop.
        drop(exit_w);
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    // The monitor reaps it (or init does, once the monitor is gone): no handle is kept.
    drop(child);
    let attachment = Attachment {
        network: NETWORK.to_string(),
        network_id: String::new(),
        holder: holder.to_string(),
        netns: format!("/proc/{pid}/ns/net").into(),
        bridge: String::new(),
        host_veth: String::new(),
        ifname: IFNAME.to_string(),
        ip: CONTAINER_IP.into(),
        prefix: 24,
        gateway: GATEWAY.into(),
        default_route: true,
        mac,
        mtu: opts.mtu,
        ports: published,
        names: Vec::new(),
        hosts_file: None,
        table: String::new(),
    };
    Ok(Slirp {
        attachment,
        exit: exit_w,
    })
}

/// slirp4netns writes to its ready fd once `tap0` is configured; EOF means it died.
fn wait_ready(ready: &OwnedFd, child: &mut Child, run_dir: &Path) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let why = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break format!("not ready after {} s", READY_TIMEOUT.as_secs());
        }
        let mut fds = [rustix::event::PollFd::new(
            ready,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) | Ok(0) => continue,
            Err(e) => break format!("poll its ready fd: {e}"),
            Ok(_) => {}
        }
        let mut byte = [0u8; 1];
        match rustix::io::read(ready.as_fd(), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                break format!("it exited ({status})");
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => break format!("read its ready fd: {e}"),
        }
    };
    let log = std::fs::read_to_string(run_dir.join("slirp4netns.log")).unwrap_or_default();
    let log = log.trim();
    Err(failed(format!(
        "--network slirp4netns: {why}{}{log}",
        if log.is_empty() { "" } else { ": " }
    )))
}

/// slirp4netns's API: one JSON request per connection, one JSON answer.
struct ApiSocket {
    dir: OwnedFd,
}

impl ApiSocket {
    fn at(run_dir: &Path) -> Result<ApiSocket> {
        let dir = rustix::fs::open(
            run_dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| file("open", run_dir)(e.into()))?;
        Ok(ApiSocket { dir })
    }

    fn call(&self, request: &serde_json::Value) -> Result<serde_json::Value> {
        // By the directory's fd: the run dir's own path can be too long for a socket address.
        let path = format!("/proc/self/fd/{}/{API_SOCKET}", self.dir.as_raw_fd());
        let err = |e: std::io::Error| failed(format!("slirp4netns API: {e}"));
        let mut s = UnixStream::connect(&path).map_err(err)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(err)?;
        s.write_all(request.to_string().as_bytes()).map_err(err)?;
        s.shutdown(std::net::Shutdown::Write).map_err(err)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(err)?;
        let v: serde_json::Value = serde_json::from_str(&answer)
            .map_err(|e| failed(format!("slirp4netns API: bad answer {answer:?}: {e}")))?;
        if let Some(desc) = v.get("error") {
            let desc = desc["desc"].as_str().unwrap_or("(no description)");
            return Err(failed(format!("slirp4netns: {desc}")));
        }
        Ok(v)
    }

    fn add_hostfwd(&self, p: &PublishedPort) -> Result<()> {
        let host: IpAddr = p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED.into());
        self.call(&hostfwd_request(p, host))
            .map_err(|e| {
                failed(format!(
                    "publish {host}:{}/{}: {e}",
                    p.host_port,
                    p.proto.as_str()
                ))
            })
            .map(drop)
    }
}

fn hostfwd_request(p: &PublishedPort, host: IpAddr) -> serde_json::Value {
    serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": p.proto.as_str(),
            "host_addr": host.to_string(),
            "host_port": p.host_port,
            "guest_addr": CONTAINER_IP.to_string(),
            "guest_port": p.container_port,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_network::Proto;

    #[test]
    fn options_are_podmans() {
        assert_eq!(Options::parse("").unwrap(), Options::default());
        let o =
            Options::parse("allow_host_loopback=true,mtu=1500,port_handler=slirp4netns").unwrap();
        assert!(o.allow_host_loopback);
        assert_eq!(o.mtu, 1500);
        for bad in [
            "mtu=0",
            "mtu=x",
            "allow_host_loopback=yes",
            "port_handler=rootlesskit",
            "cidr=10.1.0.0/24",
            "loopback",
        ] {
            let e = Options::parse(bad).unwrap_err();
            assert!(e.contains(bad.split('=').next().unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn hostfwd_names_the_container_address() {
        let p = PublishedPort {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            proto: Proto::Udp,
            ipv6: false,
        };
        let r = hostfwd_request(&p, Ipv4Addr::UNSPECIFIED.into());
        assert_eq!(r["execute"], "add_hostfwd");
        assert_eq!(r["arguments"]["proto"], "udp");
        assert_eq!(r["arguments"]["host_addr"], "0.0.0.0");
        assert_eq!(r["arguments"]["host_port"], 8080);
        assert_eq!(r["arguments"]["guest_addr"], "10.0.2.100");
        assert_eq!(r["arguments"]["guest_port"], 80);
    }
}
