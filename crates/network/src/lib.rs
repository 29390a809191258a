//! `berth-network`: bridge networks for Berth containers, without a daemon and without helper
//! processes on the start path except one `nft` batch when firewall rules change.
//!
//! The engine opens a [`Networks`] on its root and run dirs, attaches a container's network
//! namespace on start ([`Networks::attach`]) and records the returned [`Attachment`]; on stop,
//! on `rm` or after a crash it hands the record back to [`Networks::detach`], which is idempotent.
//!
//! ```no_run
//! use berth_network::{AttachRequest, Networks, parse_publish};
//! # fn main() -> berth_network::Result<()> {
//! let nets = Networks::open("/var/lib/berth".as_ref(), "/run/berth".as_ref())?
//!     .with_liveness(|holder| std::path::Path::new("/run/berth/containers").join(holder).exists());
//! let mut req = AttachRequest::new("bridge", "c0ffee", "/proc/4242/ns/net");
//! req.ports = parse_publish("127.0.0.1:8080:80")?;
//! req.names = vec!["web".into()];
//! let att = nets.attach(&req)?;          // record `att` (it is Serialize) with the container
//! println!("{} via {}", att.ip, att.gateway);
//! nets.detach(&att)?;                    // on stop/rm/crash recovery
//! # Ok(()) }
//! ```
//!
//! Layout: definitions in `<root>/networks/NAME.json`, leases in `<runroot>/networks/NAME.leases`
//! (under `<runroot>/networks/lock`), firewall rules in `table inet berth`.

mod attachment;
mod claims;
pub mod error;
pub mod hosts;
mod ipam;
mod netlink;
mod networks;
mod nfnl;
mod nft;
mod plumb;
pub mod ports;
mod publish;
mod store;
pub mod subnet;
mod sys;

pub use attachment::{AttachRequest, Attachment};
pub use error::{Error, Result};
pub use hosts::{DnsSpec, HostsSpec, Peer, hosts_content, parse_add_host, resolv_conf};
pub use networks::{CreateRequest, Networks, enable_ip_forwarding, release_claims};
pub use ports::{PortSpec, Proto, PublishedPort, parse_publish};
pub use publish::resolve_ports;
pub use store::{DEFAULT_NETWORK, Network, RESERVED};
pub use subnet::{MacAddr, Subnet};
