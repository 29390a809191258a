//! The crate's error type: every variant names the network, address, port spec, link or file
//! it is about, so the engine can print it as it is (exit 125).

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::subnet::Subnet;

/// Everything that can fail in `berth-network`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network {0}: no such network")]
    UnknownNetwork(String),
    #[error("network {0} already exists")]
    NetworkExists(String),
    #[error(
        "invalid network name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error("network {name}: {what} is a predefined network and cannot be {verb}")]
    Predefined {
        name: String,
        what: &'static str,
        verb: &'static str,
    },
    #[error("network {name}: unsupported driver {driver:?} (only \"bridge\")")]
    UnsupportedDriver { name: String, driver: String },
    #[error("invalid subnet {spec:?}: {why}")]
    InvalidSubnet { spec: String, why: String },
    #[error("subnet {subnet} of network {name} overlaps subnet {other_subnet} of network {other}")]
    SubnetOverlap {
        name: String,
        subnet: Subnet,
        other: String,
        other_subnet: Subnet,
    },
    #[error("network {name}: gateway {gateway} is not a host address of subnet {subnet}")]
    GatewayOutsideSubnet {
        name: String,
        gateway: IpAddr,
        subnet: Subnet,
    },
    #[error("no free subnet found for network {0} (tried 10.89.0.0/24 to 10.255.255.0/24)")]
    NoFreeSubnet(String),
    #[error("network {name} is in use by {holders:?}")]
    NetworkInUse { name: String, holders: Vec<String> },
    #[error("network {network}: address {ip} is outside subnet {subnet}")]
    AddressOutsideSubnet {
        network: String,
        ip: IpAddr,
        subnet: Subnet,
    },
    #[error("network {network}: address {ip} is reserved (network, gateway or broadcast)")]
    AddressReserved { network: String, ip: IpAddr },
    #[error("network {network}: address {ip} is already in use by {holder}")]
    AddressInUse {
        network: String,
        ip: IpAddr,
        holder: String,
    },
    #[error("network {network}: no free address left in {subnet}")]
    PoolExhausted { network: String, subnet: Subnet },
    #[error("invalid MAC address {0:?}")]
    InvalidMac(String),
    #[error("invalid port spec {spec:?}: {why}")]
    InvalidPort { spec: String, why: String },
    #[error("port {spec}: host port {port}/{proto} is already in use{by}")]
    PortInUse {
        spec: String,
        port: u16,
        proto: &'static str,
        by: String,
    },
    #[error("invalid --add-host {spec:?}: {why}")]
    InvalidAddHost { spec: String, why: String },
    #[error("port {spec}: address family of host IP does not match network {network}")]
    PortFamily { spec: String, network: String },
    #[error("{op} {path}: {source}")]
    File {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path}: malformed JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("netlink: {op} {what}: {source}")]
    Netlink {
        op: &'static str,
        what: String,
        source: io::Error,
    },
    #[error("network namespace {path}: {op}: {source}")]
    Netns {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "nftables is not available ({0}): install the nftables package (nft) and make sure the kernel has nf_tables"
    )]
    NftMissing(String),
    #[error("nft -f - failed for table {table}: {stderr}")]
    Nft { table: String, stderr: String },
    #[error("sysctl {path}: {source}")]
    Sysctl { path: PathBuf, source: io::Error },
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn file_err(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::File { op, path, source }
}
