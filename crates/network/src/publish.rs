//! Choosing host ports for `-p`: a fixed port must be free of other containers' mappings and of
//! listeners on the host; `-p CTRPORT` gets a free port from the kernel (bind to port 0, read it,
//! release it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

use crate::error::{Error, Result};
use crate::ports::{PortSpec, Proto, PublishedPort};

fn overlaps(a: &PublishedPort, proto: Proto, port: u16, ip: Option<IpAddr>) -> bool {
    a.proto == proto
        && a.host_port == port
        && (a.host_ip.is_none() || ip.is_none() || a.host_ip == ip)
}

/// Bind the address to find out whether someone listens there; returns the bound port.
fn probe(proto: Proto, ip: IpAddr, port: u16) -> std::io::Result<u16> {
    let addr = SocketAddr::new(ip, port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Proto::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

/// Resolve `specs` for a container at `ctr` on `network`, whose host listeners are its own
/// (a user-mode stack such as slirp4netns): the ports must be free on the host.
pub fn resolve_ports(specs: &[PortSpec], ctr: IpAddr, network: &str) -> Result<Vec<PublishedPort>> {
    resolve(specs, ctr, network, &[])
}

/// Resolve `specs` for a container at `ctr` on network `network`, given the mappings already
/// held by others (holder, mapping).
pub(crate) fn resolve(
    specs: &[PortSpec],
    ctr: IpAddr,
    network: &str,
    taken: &[(String, PublishedPort)],
) -> Result<Vec<PublishedPort>> {
    let mut out: Vec<PublishedPort> = Vec::new();
    for spec in specs {
        if let Some(h) = spec.host_ip
            && h.is_ipv6() != ctr.is_ipv6()
        {
            return Err(Error::PortFamily {
                spec: spec.spec.clone(),
                network: network.to_string(),
            });
        }
        let any: IpAddr = if ctr.is_ipv6() {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let bind_ip = spec.host_ip.unwrap_or(any);
        let in_use = |port: u16, by: String| Error::PortInUse {
            spec: spec.spec.clone(),
            port,
            proto: spec.proto.as_str(),
            by,
        };
        let clash = |port: u16| -> Option<String> {
            if let Some((holder, _)) = taken
                .iter()
                .find(|(_, p)| overlaps(p, spec.proto, port, spec.host_ip))
            {
                return Some(format!(" by container {holder}"));
            }
            out.iter()
                .any(|p| overlaps(p, spec.proto, port, spec.host_ip))
                .then(|| " (published twice)".to_string())
        };
        let host_port = match spec.host_port {
            Some(port) => {
                if let Some(by) = clash(port) {
                    return Err(in_use(port, by));
                }
                match probe(spec.proto, bind_ip, port) {
                    Ok(_) => port,
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        return Err(in_use(
                            port,
                            " (something on the host listens on it)".into(),
                        ));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                        return Err(Error::InvalidPort {
                            spec: spec.spec.clone(),
                            why: format!("{bind_ip} is not an address of this host"),
                        });
                    }
                    Err(e) => return Err(in_use(port, format!(" ({e})"))),
                }
            }
            None => {
                let mut found = None;
                for _ in 0..64 {
                    let p = probe(spec.proto, bind_ip, 0).map_err(|e| Error::InvalidPort {
                        spec: spec.spec.clone(),
                        why: format!("no free host port on {bind_ip}: {e}"),
                    })?;
                    if clash(p).is_none() {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or_else(|| Error::InvalidPort {
                    spec: spec.spec.clone(),
                    why: "no free host port found".into(),
                })?
            }
        };
        out.push(PublishedPort {
            host_ip: spec.host_ip,
            host_port,
            container_port: spec.container_port,
            proto: spec.proto,
            ipv6: ctr.is_ipv6(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::parse_publish;

    #[test]
    fn listener_on_host_is_refused_and_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let specs = parse_publish(&format!("127.0.0.1:{port}:80")).unwrap();
        let e = resolve(&specs, "10.89.0.2".parse().unwrap(), "n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("127.0.0.1:{port}:80")) && e.contains("in use"),
            "{e}"
        );
        // Every-address publishing also collides with a listener on one address.
        let specs = parse_publish(&format!("{port}:80")).unwrap();
        assert!(resolve(&specs, "10.89.0.2".parse().unwrap(), "n", &[]).is_err());
    }

    #[test]
    fn other_containers_mapping_is_refused() {
        let taken = vec![(
            "c1".to_string(),
            PublishedPort {
                host_ip: None,
                host_port: 40999,
                container_port: 80,
                proto: Proto::Tcp,
                ipv6: false,
            },
        )];
        let specs = parse_publish("127.0.0.1:40999:80").unwrap();
        let e = resolve(&specs, "10.89.0.2".parse().unwrap(), "n", &taken)
            .unwrap_err()
            .to_string();
        assert!(e.contains("by container c1"), "{e}");
        let udp = parse_publish("40999:80/udp").unwrap();
        assert!(resolve(&udp, "10.89.0.2".parse().unwrap(), "n", &taken).is_ok());
    }

    #[test]
    fn auto_port_is_free() {
        let specs = parse_publish("80").unwrap();
        let r = resolve(&specs, "10.89.0.2".parse().unwrap(), "n", &[]).unwrap();
        assert!(r[0].host_port > 0);
        assert!(TcpListener::bind(("0.0.0.0", r[0].host_port)).is_ok());
    }
}
