//! The engine's side of networking: what `run`'s network flags mean ([`NetworkOptions`]), and
//! the calls the container's lifecycle makes into `berth-network` — [`setup`] once the
//! container's network namespace exists, [`teardown`] once its process is gone — with the
//! container's `/etc/hosts` and `/etc/resolv.conf` written and every peer's hosts file kept in
//! sync. The attachments of a running container are kept in `<runroot>/containers/<id>/
//! network.json` (they live as long as the leases do, which are in the runroot too), so a
//! teardown needs nothing but the container's id, also after its monitor was killed.
//!
//! # Wiring
//!
//! 1. Flags: in the CLI's `RunArgs`/`CreateArgs` → config conversion, build
//!    `NetworkFlags { network, aliases: &network_alias, ip, mac: mac_address, publish,
//!    publish_all, dns, dns_search, dns_option, add_host, no_hosts }` and store
//!    `NetworkOptions::parse(&flags)?` in a new `ContainerConfig` field (`pub net:
//!    crate::network::NetworkOptions`, `#[serde(default)]`); set the existing
//!    `config.network = opts.namespace()` (none/host/private) so `spec.rs` keeps deciding on it.
//! 2. `ops::create`, before `records.reserve`: `crate::network::check(engine, &config.net)?`
//!    (unknown network, `--ip` outside its subnet, `container:X` unknown: exit 125, nothing made).
//! 3. `spec::build` (namespaces): for `container:X`, give the network namespace the path
//!    `crate::network::join_netns(engine, &config.net)?` (`/proc/PID/ns/net` of X's init)
//!    instead of none; with `config.net.no_hosts` skip the `/etc/hosts` bind mount.
//! 4. `monitor::Monitor::start`, right after `sys::loopback_up_in(spawned.pid)` succeeded and
//!    before `ops::start`: `crate::network::setup(&self.engine, &crate::network::Container {
//!    id: &record.id, name: &record.name, hostname: &spec::hostname(&record), opts:
//!    &record.config.net, exposed_ports: &record.image.exposed_ports, pid: spawned.pid,
//!    container_dir: &self.dir, enable_forwarding: true })` — on `Err`, `ops::delete(&runtime,
//!    &self.id, true)` and return it as the loopback failure does (setup leaves nothing behind).
//! 5. Teardown, `crate::network::teardown(&engine, id)` (idempotent, logs instead of failing
//!    when called as `let _ =`): in `monitor::cleanup_runtime_by_id` after `ops::delete` (that
//!    covers the monitor's `finish`, `start_failed`, `status::settle_lost` after a SIGKILLed
//!    monitor, and `ops::remove`), and in `ops::remove_record` before
//!    `remove_dir_all(engine.run_dir(..))`.
//! 6. `port.rs`: the published ports are [`ports`]`(engine, id)` (`Display` is docker's
//!    `80/tcp -> 0.0.0.0:8080`); `inspect.rs`: `NetworkSettings` is
//!    [`settings_json`]`(engine, id)`. `system reset`: [`reset`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth_network::{
    AttachRequest, Attachment, DnsSpec, HostsSpec, MacAddr, Networks, PortSpec, PublishedPort,
    hosts_content, parse_add_host, parse_publish, resolv_conf,
};
use rustix::fs::{FlockOperation, Mode as FileMode, OFlags};
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::config::NetworkMode;
use crate::status;

/// Where a running container's attachments are kept, under its run dir.
pub const STATE_FILE: &str = "network.json";

/// The root whose networks use the plain names (`table inet berth`, bridge `berth0`).
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// What can go wrong on the network side of a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Network(#[from] berth_network::Error),
    #[error("invalid {flag} {value:?}: {message}")]
    Flag {
        flag: &'static str,
        value: String,
        message: String,
    },
    #[error("--network container:{0}: {1}")]
    Peer(String, String),
    #[error("{0}")]
    Engine(#[from] crate::Error),
    #[error("{0}")]
    Other(String),
    #[error("{op} {}: {source}", path.display())]
    File {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Flag {
                flag,
                value,
                message,
            } => crate::Error::Flag {
                flag,
                value,
                message,
            },
            Error::File { op, path, source } => crate::Error::Path { op, path, source },
            Error::Engine(e) => e,
            other => crate::Error::Other(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn flag(flag: &'static str, value: &str, message: impl Into<String>) -> Error {
    Error::Flag {
        flag,
        value: value.to_string(),
        message: message.into(),
    }
}

fn file_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::File { op, path, source }
}

/// The network flags of `run`/`create` as the command line gives them.
#[derive(Debug, Clone, Default)]
pub struct NetworkFlags<'a> {
    /// `--network`: `bridge` (the default), `none`, `host`, `container:NAME|ID`, a network name.
    pub network: Option<&'a str>,
    pub aliases: &'a [String],
    pub ip: Option<&'a str>,
    pub mac: Option<&'a str>,
    /// `-p` values.
    pub publish: &'a [String],
    /// `-P`.
    pub publish_all: bool,
    pub dns: &'a [String],
    pub dns_search: &'a [String],
    pub dns_option: &'a [String],
    pub add_host: &'a [String],
    pub no_hosts: bool,
}

/// The network side of a container's config, validated; kept in the container's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkOptions {
    /// `bridge`, `none`, `host`, `container:X` or a user network's name (empty: see
    /// [`NetworkOptions::mode`]).
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<IpAddr>,
    pub mac: Option<MacAddr>,
    pub publish: Vec<PortSpec>,
    pub publish_all: bool,
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP` as given (`host-gateway` is resolved at setup).
    pub add_hosts: Vec<String>,
    pub no_hosts: bool,
}

/// What `--network` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// A bridge network by name (`bridge` is the default one).
    Bridge(&'a str),
    None,
    Host,
    /// Another container's network namespace.
    Container(&'a str),
    /// A user-mode stack (slirp4netns) with these options (podman's `slirp4netns:OPTS`).
    Slirp(&'a str),
}

fn valid_network_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl NetworkOptions {
    /// Validate the flags (pure: whether a named network exists is [`check`]'s business).
    pub fn parse(f: &NetworkFlags<'_>) -> Result<NetworkOptions> {
        let rootless = crate::userns::active();
        let network = match f.network.map(str::trim) {
            // podman's default for a user: a user-mode stack (a user makes no bridge)
            None | Some("" | "default" | "private") if rootless => {
                crate::slirp::NETWORK.to_string()
            }
            None | Some("" | "default" | "private") => "bridge".to_string(),
            Some("bridge") if !rootless => "bridge".to_string(),
            Some(n @ ("none" | "host")) => n.to_string(),
            Some(n) if n == crate::slirp::NETWORK || n.starts_with("slirp4netns:") => {
                let opts = n.split_once(':').map_or("", |(_, o)| o);
                crate::slirp::Options::parse(opts).map_err(|why| flag("--network", n, why))?;
                n.to_string()
            }
            Some(n) if n.starts_with("container:") => {
                if n.len() == "container:".len() {
                    return Err(flag(
                        "--network",
                        n,
                        "container: needs a container name or ID",
                    ));
                }
                n.to_string()
            }
            Some(n) if rootless && valid_network_name(n) => {
                return Err(flag(
                    "--network",
                    n,
                    "bridge networks need root (a bridge and NAT in the host's network \
                     namespace); rootless containers use slirp4netns (the default), none or host",
                ));
            }
            Some(n) if valid_network_name(n) => n.to_string(),
            Some(n) => {
                return Err(flag(
                    "--network",
                    n,
                    "expected bridge, none, host, container:NAME, slirp4netns or a network name",
                ));
            }
        };
        let mut o = NetworkOptions {
            network,
            publish_all: f.publish_all,
            no_hosts: f.no_hosts,
            dns_search: f.dns_search.to_vec(),
            dns_options: f.dns_option.to_vec(),
            ..Default::default()
        };
        for a in f.aliases {
            if !valid_network_name(a) {
                return Err(flag("--network-alias", a, "not a valid name"));
            }
            o.aliases.push(a.clone());
        }
        if let Some(ip) = f.ip {
            o.ip = Some(
                ip.parse()
                    .map_err(|_| flag("--ip", ip, "not an IP address"))?,
            );
        }
        if let Some(mac) = f.mac {
            let m: MacAddr = mac.parse().map_err(|_| {
                flag(
                    "--mac-address",
                    mac,
                    "expected a unicast address of six hex bytes, like 02:42:0a:59:00:02",
                )
            })?;
            o.mac = Some(m);
        }
        for p in f.publish {
            o.publish.extend(parse_publish(p)?);
        }
        for d in f.dns {
            o.dns.push(
                d.parse()
                    .map_err(|_| flag("--dns", d, "not an IP address"))?,
            );
        }
        for h in f.add_host {
            // Any gateway will do to check the form; the real one is known at setup.
            parse_add_host(h, Some(IpAddr::from([0, 0, 0, 0])))?;
            o.add_hosts.push(h.clone());
        }
        let mode = o.mode();
        let conflicts: [(&'static str, bool); 5] = [
            ("-p/--publish", !o.publish.is_empty()),
            ("--ip", o.ip.is_some()),
            ("--mac-address", o.mac.is_some()),
            ("--network-alias", !o.aliases.is_empty()),
            ("--dns", !o.dns.is_empty()),
        ];
        for (name, given) in conflicts {
            let bad = match mode {
                Mode::Container(_) => true,
                Mode::None | Mode::Host => name != "--dns",
                Mode::Slirp(_) => !matches!(name, "--dns" | "-p/--publish"),
                // docker: aliases are for user networks.
                Mode::Bridge(n) => name == "--network-alias" && n == "bridge",
            };
            if given && bad {
                return Err(flag(
                    "--network",
                    &o.network,
                    format!("{name} cannot be used with this network mode"),
                ));
            }
        }
        if matches!(mode, Mode::Container(_))
            && (!o.add_hosts.is_empty() || !o.dns_search.is_empty() || !o.dns_options.is_empty())
        {
            return Err(flag(
                "--network",
                &o.network,
                "--add-host and --dns* come from the other container",
            ));
        }
        Ok(o)
    }

    /// What `--network` asks for. Empty (a record from before bridge networks, or a config
    /// built in code) is a namespace of its own with loopback only, as it was then; the
    /// command line always names the network (`bridge` when not told).
    pub fn mode(&self) -> Mode<'_> {
        match self.network.as_str() {
            "bridge" => Mode::Bridge("bridge"),
            "" | "none" => Mode::None,
            "host" => Mode::Host,
            "slirp4netns" => Mode::Slirp(""),
            n => match (n.strip_prefix("container:"), n.strip_prefix("slirp4netns:")) {
                (Some(c), _) => Mode::Container(c),
                (_, Some(o)) => Mode::Slirp(o),
                _ => Mode::Bridge(n),
            },
        }
    }

    /// The namespace the spec gives the container: its own (bridge networks and none), the
    /// host's, or (for `container:X`) a private one that [`join_netns`] replaces by X's.
    pub fn namespace(&self) -> NetworkMode {
        match self.mode() {
            Mode::None => NetworkMode::None,
            Mode::Host => NetworkMode::Host,
            Mode::Bridge(_) | Mode::Container(_) | Mode::Slirp(_) => NetworkMode::Private,
        }
    }
}

fn hash_hex(bytes: &[u8]) -> String {
    // FNV-1a: a stable short tag of the root path.
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The networks of this engine, with the liveness of lease holders from the container
/// records. The default root uses `table inet berth` and bridge `berth0`; any other root gets
/// a table and default bridge of its own (`berth_<tag>`, `berth<tag>`, the tag hashed from the
/// root path), so two roots on one host (tests, a user's second root) never tear down or
/// readdress each other's rules and bridges.
pub fn networks(engine: &Engine) -> Result<Networks> {
    let (table, bridge) = kernel_names(&engine.root);
    let nets = Networks::open(&engine.root, &engine.runroot)?
        .with_table(&table)
        .with_default_bridge(&bridge);
    let e = engine.clone();
    Ok(nets.with_liveness(move |holder| holder_alive(&e, holder)))
}

/// The nftables table and the default network's bridge of the root `root` (see [`networks`]).
pub fn kernel_names(root: &Path) -> (String, String) {
    if root == Path::new(DEFAULT_ROOT) {
        return ("berth".to_string(), "berth0".to_string());
    }
    let tag = hash_hex(root.as_os_str().as_encoded_bytes());
    (format!("berth_{tag}"), format!("berth{tag}"))
}

/// A lease holder is alive while its record exists and its monitor or its process runs.
fn holder_alive(engine: &Engine, id: &str) -> bool {
    engine
        .records
        .load(id)
        .is_ok_and(|r| status::monitor_alive(&r) || status::observe(engine, &r).state.is_active())
}

/// At `create`: the named network exists and `--ip` fits it; `container:X` names a container.
pub fn check(engine: &Engine, opts: &NetworkOptions) -> Result<()> {
    match opts.mode() {
        Mode::Bridge(name) => {
            let net = networks(engine)?.inspect(name)?;
            if let Some(ip) = opts.ip
                && !net.subnet.is_host(ip)
            {
                return Err(berth_network::Error::AddressOutsideSubnet {
                    network: net.name,
                    ip,
                    subnet: net.subnet,
                }
                .into());
            }
            Ok(())
        }
        Mode::Container(c) => engine
            .records
            .resolve(c)
            .map(drop)
            .map_err(|e| Error::Peer(c.to_string(), e.to_string())),
        Mode::None | Mode::Host | Mode::Slirp(_) => Ok(()),
    }
}

/// For `container:X`: the network namespace of X's running init, and X's container dir (whose
/// hosts and resolv.conf the container shares). `None` for other modes.
pub fn join_netns(engine: &Engine, opts: &NetworkOptions) -> Result<Option<(PathBuf, PathBuf)>> {
    let Mode::Container(c) = opts.mode() else {
        return Ok(None);
    };
    let peer = |m: &str| Error::Peer(c.to_string(), m.to_string());
    let id = engine
        .records
        .resolve(c)
        .map_err(|e| peer(&e.to_string()))?;
    let (_, live) = status::live(engine, &id).map_err(|e| peer(&e.to_string()))?;
    if !live.state.is_active() || live.pid <= 0 {
        return Err(peer("the container is not running"));
    }
    Ok(Some((
        PathBuf::from(format!("/proc/{}/ns/net", live.pid)),
        engine.container_dir(&id),
    )))
}

/// One container, as [`setup`] needs it.
#[derive(Debug, Clone)]
pub struct Container<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    pub opts: &'a NetworkOptions,
    /// The image's ExposedPorts keys (`80/tcp`), published by `-P`.
    pub exposed_ports: &'a [String],
    /// The container's init (host pid), whose network namespace is attached.
    pub pid: i32,
    /// `<root>/containers/<id>`: `hosts` and `resolv.conf` are rewritten there, in place
    /// (they are bind-mounted already).
    pub container_dir: &'a Path,
    /// Turn on `net.ipv4.ip_forward` for a non-internal network (docker does); tests pass
    /// false.
    pub enable_forwarding: bool,
}

fn state_path(engine: &Engine, id: &str) -> PathBuf {
    engine.run_dir(id).join(STATE_FILE)
}

fn save_state(engine: &Engine, id: &str, atts: &[Attachment]) -> Result<()> {
    let dir = engine.run_dir(id);
    std::fs::create_dir_all(&dir).map_err(file_err("create", &dir))?;
    let data = serde_json::to_vec_pretty(atts).expect("attachments serialize");
    berth_container::state::write_atomically(&dir.join(STATE_FILE), &data, 0o600).map_err(|e| {
        Error::File {
            op: "write",
            path: dir.join(STATE_FILE),
            source: std::io::Error::other(e.to_string()),
        }
    })
}

/// The networks a running container is attached to (empty when it has none or is stopped).
pub fn attachments(engine: &Engine, id: &str) -> Vec<Attachment> {
    std::fs::read(state_path(engine, id))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The ports a running container publishes.
pub fn ports(engine: &Engine, id: &str) -> Vec<PublishedPort> {
    attachments(engine, id)
        .into_iter()
        .flat_map(|a| a.ports)
        .collect()
}

/// docker's `NetworkSettings` of a container.
pub fn settings_json(engine: &Engine, id: &str) -> serde_json::Value {
    let atts = attachments(engine, id);
    let mut ports: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut networks = serde_json::Map::new();
    for a in &atts {
        for p in &a.ports {
            ports
                .entry(p.private())
                .or_default()
                .push(serde_json::json!({
                    "HostIp": p.host_ip_plain(),
                    "HostPort": p.host_port.to_string(),
                }));
        }
        let mut fields = address_fields(Some(a));
        fields.insert("NetworkID".into(), a.network_id.clone().into());
        fields.insert("EndpointID".into(), a.host_veth.clone().into());
        fields.insert("Aliases".into(), serde_json::json!(a.names));
        networks.insert(a.network.clone(), fields.into());
    }
    let mut settings = address_fields(atts.first());
    settings.insert("Ports".into(), serde_json::json!(ports));
    settings.insert("Networks".into(), networks.into());
    settings.into()
}

/// An attachment's addresses in docker's fields: IPv4 in `IPAddress`/`Gateway`, IPv6 in
/// `GlobalIPv6Address`/`IPv6Gateway`, the other family's empty (as docker shows them).
fn address_fields(a: Option<&Attachment>) -> serde_json::Map<String, serde_json::Value> {
    let (v4, v6) = match a {
        Some(a) if a.ip.is_ipv6() => (None, Some(a)),
        a => (a, None),
    };
    let ip = |a: Option<&Attachment>| a.map(|a| a.ip.to_string()).unwrap_or_default();
    let gateway = |a: Option<&Attachment>| a.map(|a| a.gateway.to_string()).unwrap_or_default();
    let prefix = |a: Option<&Attachment>| a.map(|a| a.prefix).unwrap_or(0);
    let fields: [(&str, serde_json::Value); 7] = [
        ("IPAddress", ip(v4).into()),
        ("IPPrefixLen", prefix(v4).into()),
        ("Gateway", gateway(v4).into()),
        ("GlobalIPv6Address", ip(v6).into()),
        ("GlobalIPv6PrefixLen", prefix(v6).into()),
        ("IPv6Gateway", gateway(v6).into()),
        (
            "MacAddress",
            a.map(|a| a.mac.to_string()).unwrap_or_default().into(),
        ),
    ];
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// An flock serializing every write of containers' hosts files (a container's own full write
/// and the peer-block rewrites of [`Networks::sync_hosts`]), so none of them is lost.
fn hosts_lock(engine: &Engine) -> Result<OwnedFd> {
    let dir = engine.runroot.join("networks");
    std::fs::create_dir_all(&dir).map_err(file_err("create", &dir))?;
    let path = dir.join("hosts.lock");
    let fd = rustix::fs::open(
        &path,
        OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
        FileMode::from_raw_mode(0o600),
    )
    .map_err(|e| file_err("open", &path)(e.into()))?;
    rustix::fs::flock(&fd, FlockOperation::LockExclusive)
        .map_err(|e| file_err("lock", &path)(e.into()))?;
    Ok(fd)
}

/// Write in place: the file is bind-mounted into the container, which keeps the inode.
fn write_in_place(path: &Path, text: &str) -> Result<()> {
    Ok(berth_network::hosts::write_in_place(path, text)?)
}

/// The names peers know a container by: its name, its aliases, its hostname.
fn peer_names(c: &Container<'_>) -> Vec<String> {
    let mut names = vec![c.name.to_string()];
    for n in c
        .opts
        .aliases
        .iter()
        .map(String::as_str)
        .chain([c.hostname])
    {
        if !n.is_empty() && !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    names
}

/// What [`setup`] made: the attachments (recorded with the container), and for a user-mode
/// stack the fd that keeps it running (to be held exactly as long as the container runs).
pub struct Setup {
    pub attachments: Vec<Attachment>,
    pub keep_alive: Option<OwnedFd>,
}

/// Attach the container's network namespace as its options say (nothing for none, host and
/// container:X), publish its ports, write its hosts file and resolv.conf and update its peers'
/// hosts files. On error nothing of it is left.
pub fn setup(engine: &Engine, c: &Container<'_>) -> Result<Setup> {
    match c.opts.mode() {
        Mode::Bridge(network) => Ok(Setup {
            attachments: setup_bridge(engine, c, network)?,
            keep_alive: None,
        }),
        Mode::Slirp(options) => setup_slirp(engine, c, options),
        Mode::None | Mode::Host | Mode::Container(_) => Ok(Setup {
            attachments: Vec::new(),
            keep_alive: None,
        }),
    }
}

/// `-p` and `-P` together: -P skips what -p already maps.
fn requested_ports(c: &Container<'_>) -> Result<Vec<PortSpec>> {
    let mut ports = c.opts.publish.clone();
    if c.opts.publish_all {
        for p in c.exposed_ports {
            let spec = parse_publish(p)?;
            ports.extend(spec.into_iter().filter(|s| {
                !c.opts
                    .publish
                    .iter()
                    .any(|q| q.container_port == s.container_port && q.proto == s.proto)
            }));
        }
    }
    Ok(ports)
}

fn setup_bridge(engine: &Engine, c: &Container<'_>, network: &str) -> Result<Vec<Attachment>> {
    let nets = networks(engine)?;
    let net = nets.inspect(network)?;
    let mut req = AttachRequest::new(&net.name, c.id, format!("/proc/{}/ns/net", c.pid));
    req.ip = c.opts.ip;
    req.mac = c.opts.mac;
    req.ports = requested_ports(c)?;
    req.names = peer_names(c);
    let hosts = c.container_dir.join("hosts");
    req.hosts_file = (!c.opts.no_hosts).then(|| hosts.clone());
    if c.enable_forwarding && !net.internal {
        berth_network::enable_ip_forwarding(net.subnet.is_v6())?;
    }
    let att = nets.attach(&req)?;
    let atts = vec![att.clone()];
    let rest = save_state(engine, c.id, &atts)
        .and_then(|()| write_files(engine, c, &att, None))
        .and_then(|()| {
            if c.opts.no_hosts {
                return Ok(());
            }
            let _lock = hosts_lock(engine)?;
            Ok(nets.sync_hosts(&net.name)?)
        });
    if let Err(e) = rest {
        if let Err(e2) = teardown(engine, c.id) {
            log::warn!("container {}: network teardown: {e2}", c.name);
        }
        return Err(e);
    }
    Ok(atts)
}

/// `--network slirp4netns[:OPTS]`: slirp4netns joins the namespace; it has no peers, so the
/// hosts file names only the container (and `host-gateway` is slirp's 10.0.2.2), and without
/// `--dns` the resolver is slirp's forwarder, as podman has it.
fn setup_slirp(engine: &Engine, c: &Container<'_>, options: &str) -> Result<Setup> {
    let opts = crate::slirp::Options::parse(options)
        .map_err(|why| flag("--network", &c.opts.network, why))?;
    let run_dir = engine.run_dir(c.id);
    std::fs::create_dir_all(&run_dir).map_err(file_err("create", &run_dir))?;
    let slirp = crate::slirp::start(c.id, c.pid, &run_dir, &opts, &requested_ports(c)?)?;
    let atts = vec![slirp.attachment.clone()];
    save_state(engine, c.id, &atts)?;
    write_files(engine, c, &slirp.attachment, Some(crate::slirp::DNS.into()))?;
    Ok(Setup {
        attachments: atts,
        keep_alive: Some(slirp.exit),
    })
}

/// The container's own hosts file (unless `--no-hosts`) and its resolv.conf; `default_dns` is
/// the resolver when `--dns` is not given (otherwise the host's, loopback ones replaced).
fn write_files(
    engine: &Engine,
    c: &Container<'_>,
    att: &Attachment,
    default_dns: Option<IpAddr>,
) -> Result<()> {
    if !c.opts.no_hosts {
        let mut extra = Vec::new();
        for h in &c.opts.add_hosts {
            extra.push(parse_add_host(h, Some(att.gateway))?);
        }
        let mut own = vec![c.hostname.to_string()];
        if c.name != c.hostname {
            own.push(c.name.to_string());
        }
        let text = hosts_content(&HostsSpec {
            own: vec![(att.ip, own)],
            hostname: c.hostname.to_string(),
            extra,
            peers: Vec::new(),
        });
        let _lock = hosts_lock(engine)?;
        write_in_place(&c.container_dir.join("hosts"), &text)?;
    }
    let mut servers = c.opts.dns.clone();
    if servers.is_empty()
        && let Some(d) = default_dns
    {
        servers.push(d);
    }
    let dns = DnsSpec {
        servers,
        search: c.opts.dns_search.clone(),
        options: c.opts.dns_options.clone(),
    };
    let text = resolv_conf(&berth_network::hosts::host_resolv_conf(), &dns);
    write_in_place(&c.container_dir.join("resolv.conf"), &text)
}

/// Undo [`setup`] from what it recorded: veths, published ports and leases go, peers' hosts
/// files lose the container. Idempotent; a record whose lease is gone already (reclaimed, or
/// the runroot was wiped by a reboot) touches nothing in the kernel, so a stale record can never
/// remove another container's port.
pub fn teardown(engine: &Engine, id: &str) -> Result<()> {
    let path = state_path(engine, id);
    let atts = attachments(engine, id);
    if atts.is_empty() {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let nets = networks(engine)?;
    let mut first_err = None;
    for att in &atts {
        let leased = nets.attachments(&att.network).map(|ls| {
            ls.iter()
                .any(|l| l.holder == att.holder && l.host_veth == att.host_veth)
        });
        // Once the namespace is gone (the container's processes are), the kernel deletes both
        // veth ends itself, off our path; a delete of our own would wait ~20 ms in the kernel.
        let ns_gone = !att.netns.exists();
        let r = match leased {
            Ok(true) if ns_gone => nets.release(att).map_err(Error::from),
            Ok(true) => nets.detach(att).map_err(Error::from),
            Ok(false) => Ok(()),
            Err(e) => Err(e.into()),
        }
        .and_then(|()| {
            let _lock = hosts_lock(engine)?;
            nets.sync_hosts(&att.network).map_err(Error::from)
        });
        if let Err(e) = r {
            log::warn!("container {id}: network {}: {e}", att.network);
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => {
            let _ = std::fs::remove_file(&path);
            Ok(())
        }
    }
}

/// `network connect NETWORK CONTAINER`: attach a running container to one more network (the
/// next free `ethN`), and let the network's containers know it by name. Lasts until the
/// container stops (a restart comes back on its `--network` only).
pub fn connect(
    engine: &Engine,
    id: &str,
    network: &str,
    aliases: &[String],
    ip: Option<IpAddr>,
) -> Result<Attachment> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| crate::Error::NoSuchContainer(id.to_string()))?;
    if !live.state.is_active() || live.pid <= 0 {
        return Err(Error::Other(format!(
            "container {} is not running: only a running container can be connected",
            record.name
        )));
    }
    let nets = networks(engine)?;
    let net = nets.inspect(network)?;
    let mut atts = attachments(engine, id);
    if atts.iter().any(|a| a.network == net.name) {
        return Err(Error::Other(format!(
            "container {} is already connected to network {}",
            record.name, net.name
        )));
    }
    for a in aliases {
        if !valid_network_name(a) {
            return Err(flag("--alias", a, "not a valid name"));
        }
    }
    let ifname = (0..)
        .map(|n| format!("eth{n}"))
        .find(|n| !atts.iter().any(|a| &a.ifname == n))
        .expect("a free interface name");
    let mut req = AttachRequest::new(&net.name, id, format!("/proc/{}/ns/net", live.pid));
    req.ifname = ifname;
    req.ip = ip;
    let hostname = crate::spec::hostname(&record);
    let opts = NetworkOptions {
        aliases: aliases.to_vec(),
        ..Default::default()
    };
    req.names = peer_names(&Container {
        id,
        name: &record.name,
        hostname: &hostname,
        opts: &opts,
        exposed_ports: &[],
        pid: live.pid,
        container_dir: &engine.container_dir(id),
        enable_forwarding: false,
    });
    let hosts = engine.container_dir(id).join("hosts");
    req.hosts_file = hosts.exists().then_some(hosts);
    let att = nets.attach(&req)?;
    atts.push(att.clone());
    let rest = save_state(engine, id, &atts).and_then(|()| {
        let _lock = hosts_lock(engine)?;
        Ok(nets.sync_hosts(&net.name)?)
    });
    if let Err(e) = rest {
        let _ = nets.detach(&att);
        return Err(e);
    }
    Ok(att)
}

/// `network disconnect NETWORK CONTAINER`.
pub fn disconnect(engine: &Engine, id: &str, network: &str) -> Result<()> {
    let nets = networks(engine)?;
    let net = nets.inspect(network)?;
    let mut atts = attachments(engine, id);
    let Some(i) = atts.iter().position(|a| a.network == net.name) else {
        let name = engine
            .records
            .load(id)
            .map(|r| r.name)
            .unwrap_or_else(|_| id.to_string());
        return Err(Error::Other(format!(
            "container {name} is not connected to network {}",
            net.name
        )));
    };
    let att = atts.remove(i);
    nets.detach(&att)?;
    save_state(engine, id, &atts)?;
    let _lock = hosts_lock(engine)?;
    nets.sync_hosts(&net.name)?;
    if let Some(h) = &att.hosts_file {
        // Our own file keeps an empty block for the network: the peers are gone from it.
        match berth_network::hosts::rewrite_hosts_file(h, &net.name, &[]) {
            Err(berth_network::Error::File { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(())
}

/// `system reset`: bridges and rules of networks no live container uses go (definitions stay).
pub fn reset(engine: &Engine) -> Result<()> {
    Ok(networks(engine)?.teardown_idle()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn modes() {
        let m = |n: Option<&str>| {
            NetworkOptions::parse(&NetworkFlags {
                network: n,
                ..Default::default()
            })
            .unwrap()
        };
        assert_eq!(m(None).mode(), Mode::Bridge("bridge"));
        assert_eq!(m(Some("private")).network, "bridge");
        assert_eq!(m(Some("none")).mode(), Mode::None);
        assert_eq!(m(Some("host")).namespace(), NetworkMode::Host);
        assert_eq!(m(Some("container:web")).mode(), Mode::Container("web"));
        assert_eq!(m(Some("container:web")).namespace(), NetworkMode::Private);
        assert_eq!(m(Some("front-1")).mode(), Mode::Bridge("front-1"));
        assert_eq!(NetworkOptions::default().mode(), Mode::None);
        for bad in ["container:", "a b", "-x", "bad/name"] {
            let e = NetworkOptions::parse(&NetworkFlags {
                network: Some(bad),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains("--network") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn flags_are_parsed() {
        let (p, al, dns, hosts) = (
            s(&["127.0.0.1:8080:80", "53/udp"]),
            s(&["db"]),
            s(&["10.0.0.53"]),
            s(&["gw:host-gateway", "x:10.1.1.1"]),
        );
        let o = NetworkOptions::parse(&NetworkFlags {
            network: Some("front"),
            aliases: &al,
            ip: Some("10.89.3.7"),
            mac: Some("02:42:0a:59:03:07"),
            publish: &p,
            publish_all: true,
            dns: &dns,
            add_host: &hosts,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(o.publish.len(), 2);
        assert_eq!(o.publish[0].host_port, Some(8080));
        assert_eq!(o.ip, Some("10.89.3.7".parse().unwrap()));
        assert_eq!(o.mac.unwrap().to_string(), "02:42:0a:59:03:07");
        assert_eq!(o.add_hosts.len(), 2);
        // Round trip through the record.
        let back: NetworkOptions =
            serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn bad_flags_name_the_value() {
        let one = |f: NetworkFlags<'_>, want: &str| {
            let e = NetworkOptions::parse(&f).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        };
        let bad_p = s(&["80:abc"]);
        one(
            NetworkFlags {
                publish: &bad_p,
                ..Default::default()
            },
            "80:abc",
        );
        one(
            NetworkFlags {
                ip: Some("10.1.2"),
                ..Default::default()
            },
            "--ip \"10.1.2\"",
        );
        one(
            NetworkFlags {
                mac: Some("zz:00"),
                ..Default::default()
            },
            "zz:00",
        );
        one(
            NetworkFlags {
                mac: Some("01:00:5e:00:00:01"),
                ..Default::default()
            },
            "unicast",
        );
        let dns = s(&["dns.example"]);
        one(
            NetworkFlags {
                dns: &dns,
                ..Default::default()
            },
            "dns.example",
        );
        let h = s(&["nocolon"]);
        one(
            NetworkFlags {
                add_host: &h,
                ..Default::default()
            },
            "nocolon",
        );
        let p = s(&["80"]);
        for mode in ["none", "host", "container:web"] {
            one(
                NetworkFlags {
                    network: Some(mode),
                    publish: &p,
                    ..Default::default()
                },
                "-p/--publish",
            );
        }
        let al = s(&["db"]);
        one(
            NetworkFlags {
                aliases: &al,
                ..Default::default()
            },
            "--network-alias",
        );
        one(
            NetworkFlags {
                network: Some("container:web"),
                add_host: &s(&["a:1.2.3.4"]),
                ..Default::default()
            },
            "other container",
        );
    }

    #[test]
    fn peers_know_name_aliases_hostname() {
        let opts = NetworkOptions {
            aliases: s(&["db", "web"]),
            ..Default::default()
        };
        let c = Container {
            id: "x",
            name: "web",
            hostname: "abc123",
            opts: &opts,
            exposed_ports: &[],
            pid: 1,
            container_dir: Path::new("/nonexistent"),
            enable_forwarding: false,
        };
        assert_eq!(peer_names(&c), s(&["web", "db", "abc123"]));
    }

    #[test]
    fn other_roots_get_their_own_table() {
        let a = Engine::new(Path::new("/tmp/a"), Path::new("/tmp/ra"));
        assert_eq!(hash_hex(a.root.as_os_str().as_encoded_bytes()).len(), 8);
        assert_ne!(hash_hex(b"/tmp/a"), hash_hex(b"/tmp/b"));
    }
}
