//! `port CONTAINER [PRIVATE[/PROTO]]`: the container's published ports. Nothing publishes
//! ports before the networking issue, so a container has none: docker then prints nothing
//! and exits 0, and names the port it was asked for with an error.

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
    // The record has no published ports yet (networking comes later).
    let published: Vec<Published> = Vec::new();
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
