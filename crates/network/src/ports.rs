//! `-p` parsing (a pure function) and the published ports an attachment records.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// `tcp` or `udp`, as nft and docker write it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requested mapping from `-p`, before a host port is chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The host address to publish on; `None` means every host address.
    pub host_ip: Option<IpAddr>,
    /// `None`: pick a free host port.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
    /// The `-p` text it came from, for error messages.
    pub spec: String,
}

/// A mapping as set up: the host port is known.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
    /// The container's side is IPv6 (a v6 network): "every address" is then `::`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
}

impl PublishedPort {
    /// The host address as docker prints it beside a port: `0.0.0.0` (or `[::]` on an IPv6
    /// network) for every address, `[::1]` for an IPv6 one.
    pub fn host_ip_text(&self) -> String {
        match self.host_ip {
            Some(IpAddr::V6(a)) => format!("[{a}]"),
            Some(a) => a.to_string(),
            None if self.ipv6 => "[::]".to_string(),
            None => "0.0.0.0".to_string(),
        }
    }

    /// The host address as docker's inspect writes it (`HostIp`): `0.0.0.0` or `::` for
    /// every address.
    pub fn host_ip_plain(&self) -> String {
        match self.host_ip {
            Some(a) => a.to_string(),
            None if self.ipv6 => "::".to_string(),
            None => "0.0.0.0".to_string(),
        }
    }

    /// `80/tcp`.
    pub fn private(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }
}

impl fmt::Display for PublishedPort {
    /// docker port's form: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (private, ip) = (self.private(), self.host_ip_text());
        write!(f, "{private} -> {ip}:{}", self.host_port)
    }
}

fn port_range(s: &str, spec: &str, what: &str) -> Result<(u16, u16)> {
    let bad = |why: String| Error::InvalidPort {
        spec: spec.to_string(),
        why,
    };
    let one = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(0) => Err(bad(format!("{what} port 0 is not a port"))),
            Ok(n) => Ok(n),
            Err(_) => Err(bad(format!("{what} port {p:?} is not a number in 1-65535"))),
        }
    };
    match s.split_once('-') {
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(bad(format!("{what} port range {s} ends before it starts")));
            }
            Ok((a, b))
        }
    }
}

/// Parse one `-p` value: `[IP:][HOSTPORT:]CTRPORT[/tcp|udp]`, `IP::CTRPORT`, IPv6 host
/// addresses in brackets (`[::1]:8080:80`), and equal-length ranges (`8000-8002:80-82`), which
/// expand to one spec per port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortSpec>> {
    let bad = |why: &str| Error::InvalidPort {
        spec: spec.to_string(),
        why: why.to_string(),
    };
    let s = spec.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (rest, proto) = match s.rsplit_once('/') {
        None => (s, Proto::Tcp),
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(bad(&format!("unsupported protocol {p:?} (tcp or udp)"))),
    };
    // Split off a bracketed IPv6 host address first: its colons are not separators.
    let (host_ip, rest): (Option<IpAddr>, &str) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| bad("unclosed [ in host address"))?;
        let ip: IpAddr = ip.parse().map_err(|_| bad("bad IPv6 host address"))?;
        (Some(ip), r)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, ctr) = match (host_ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [ip, h, c]) => {
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| bad(&format!("host address {ip:?} is not an IP address")))?;
            (Some(ip), Some(*h), *c)
        }
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        _ => return Err(bad("expected [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]")),
    };
    let host = host.filter(|h| !h.is_empty());
    let ip = ip.filter(|ip| !ip.is_unspecified());
    let (c0, c1) = port_range(ctr, spec, "container")?;
    let hosts = match host {
        None => None,
        Some(h) => Some(port_range(h, spec, "host")?),
    };
    if let Some((h0, h1)) = hosts
        && h1 - h0 != c1 - c0
    {
        return Err(bad("host and container port ranges differ in length"));
    }
    Ok((0..=(c1 - c0))
        .map(|i| PortSpec {
            host_ip: ip,
            host_port: hosts.map(|(h0, _)| h0 + i),
            container_port: c0 + i,
            proto,
            spec: spec.to_string(),
        })
        .collect())
}

impl FromStr for PortSpec {
    type Err = Error;
    /// A single mapping (ranges are refused here: use [`parse_publish`]).
    fn from_str(s: &str) -> Result<PortSpec> {
        let mut v = parse_publish(s)?;
        if v.len() != 1 {
            return Err(Error::InvalidPort {
                spec: s.to_string(),
                why: "a range where one port was expected".into(),
            });
        }
        Ok(v.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortSpec {
        s.parse().unwrap()
    }

    #[test]
    fn forms() {
        let p = one("80");
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.proto),
            (None, None, 80, Proto::Tcp)
        );
        let p = one("8080:80/udp");
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (Some(8080), 80, Proto::Udp)
        );
        let p = one("127.0.0.1:8080:80");
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        let p = one("127.0.0.1::80/tcp");
        assert_eq!((p.host_port, p.container_port), (None, 80));
        let p = one("0.0.0.0:8080:80");
        assert_eq!(p.host_ip, None);
        let p = one("[::1]:8080:80");
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        let r = parse_publish("8000-8002:80-82/udp").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].container_port), (Some(8002), 82));
        assert_eq!(parse_publish("1000-1001").unwrap().len(), 2);
    }

    #[test]
    fn errors_name_the_spec() {
        for bad in [
            "",
            "abc",
            "80/sctp",
            "0",
            "70000",
            "1.2.3:80:80",
            "1:2:3:4",
            "[::1:80:80",
            "8000-8001:80",
            "90-80",
            "8080:",
            ":",
        ] {
            let e = parse_publish(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn display_like_docker_port() {
        let p = PublishedPort {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
            ipv6: false,
        };
        assert_eq!(p.to_string(), "80/tcp -> 0.0.0.0:8080");
        let v6 = PublishedPort { ipv6: true, ..p };
        assert_eq!(v6.to_string(), "80/tcp -> [::]:8080");
        assert_eq!(v6.host_ip_plain(), "::");
    }
}
