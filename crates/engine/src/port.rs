//! `port CONTAINER [PRIVATE[/PROTO]]`: the container's published ports, as its network
//! attachments recorded them (a stopped container has none). Without ports docker prints
//! nothing and exits 0; asked for one that is not published, it names it in an error.

use crate::Engine;
use crate::error::{Error, Result};

/// One published port: `80/tcp -> 0.0.0.0:8080`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `80/tcp`.
    pub private: String,
    pub host_ip: String,
    pub host_port: u16,
}

/// The published ports of a container, optionally only those of one private port.
pub fn ports(engine: &Engine, container: &str, private: Option<&str>) -> Result<Vec<Published>> {
    let id = engine.records.resolve(container)?;
    let record = engine.records.load(&id)?;
    let published: Vec<Published> = crate::network::ports(engine, &id)
        .into_iter()
        .map(|p| Published {
            private: p.private(),
            host_ip: p.host_ip_text(),
            host_port: p.host_port,
        })
        .collect();
    let Some(wanted) = private else {
        return Ok(published);
    };
    let wanted = if wanted.contains('/') {
        wanted.to_string()
    } else {
        format!("{wanted}/tcp")
    };
    let (port, proto) = wanted.split_once('/').unwrap_or((&wanted, "tcp"));
    if port.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(Error::flag(
            "port",
            wanted.clone(),
            "expected PORT[/tcp|udp|sctp]",
        ));
    }
    let matching: Vec<Published> = published
        .into_iter()
        .filter(|p| p.private == wanted)
        .collect();
    if matching.is_empty() {
        return Err(Error::Other(format!(
            "no public port {wanted:?} published for {}",
            record.name
        )));
    }
    Ok(matching)
}
