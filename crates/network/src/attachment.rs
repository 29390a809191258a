//! What attaching a container produces: everything needed later to describe it (`inspect`,
//! `port`, hosts files) and to tear it down again from this record alone.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ports::{PortSpec, PublishedPort};
use crate::subnet::MacAddr;

/// A container's place on a network, as set up. The engine records it with the container;
/// [`crate::Networks::detach`] takes it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub network_id: String,
    /// The engine's id for the lease (normally the container id).
    pub holder: String,
    /// The namespace given at attach (informative: teardown does not need it).
    pub netns: PathBuf,
    /// The host bridge.
    pub bridge: String,
    /// The host end of the veth pair (deleting it deletes both ends).
    pub host_veth: String,
    /// The interface inside the container (`eth0`).
    pub ifname: String,
    pub ip: IpAddr,
    pub prefix: u8,
    pub gateway: IpAddr,
    /// Whether a default route via the gateway was set (not on internal networks).
    pub default_route: bool,
    pub mac: MacAddr,
    pub mtu: u32,
    pub ports: Vec<PublishedPort>,
    /// Names other containers on the network know this one by (name, hostname, aliases).
    pub names: Vec<String>,
    /// The container's hosts file, kept in sync by [`crate::Networks::sync_hosts`].
    pub hosts_file: Option<PathBuf>,
    /// The nftables table its port rules are in.
    pub table: String,
}

/// What the engine asks for when attaching a container.
#[derive(Clone, Debug)]
pub struct AttachRequest {
    pub network: String,
    pub holder: String,
    /// `/proc/PID/ns/net` or a bind-mounted netns file.
    pub netns: PathBuf,
    /// Interface name inside the container; `eth0` by default.
    pub ifname: String,
    /// `--ip`.
    pub ip: Option<IpAddr>,
    /// `--mac-address`.
    pub mac: Option<MacAddr>,
    /// `-p` (already parsed with [`crate::parse_publish`]).
    pub ports: Vec<PortSpec>,
    /// Container name, hostname, `--network-alias`es.
    pub names: Vec<String>,
    pub hosts_file: Option<PathBuf>,
}

impl AttachRequest {
    /// A request with `eth0`, no fixed address, no ports and no names.
    pub fn new(network: &str, holder: &str, netns: impl Into<PathBuf>) -> AttachRequest {
        AttachRequest {
            network: network.to_string(),
            holder: holder.to_string(),
            netns: netns.into(),
            ifname: "eth0".to_string(),
            ip: None,
            mac: None,
            ports: Vec::new(),
            names: Vec::new(),
            hosts_file: None,
        }
    }
}
