//! `berth network create|ls|inspect|rm|prune|connect|disconnect`: podman's output, over
//! `berth_network::Networks` as `berth_engine::network::networks` opens it (so the CLI and the
//! containers' start path always agree on the nftables table and default bridge of a root).

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use berth_engine::Engine;
use berth_network::{CreateRequest, Error as NetError, Network};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::output::{self, Format};
use crate::{CmdResult, Global};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkVerb),
}

#[derive(Debug, Subcommand)]
pub enum NetworkVerb {
    /// Create a bridge network (prints its name)
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show networks in detail (podman's JSON)
    Inspect(InspectArgs),
    /// Remove networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove every network no container uses
    Prune(PruneArgs),
    /// Attach a running container to a network
    Connect(ConnectArgs),
    /// Detach a running container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The subnet in CIDR form (a free /24 from 10.89.0.0 up when not given)
    #[arg(long)]
    subnet: Option<String>,
    /// The gateway (the subnet's first address when not given)
    #[arg(long)]
    gateway: Option<String>,
    /// No masquerade and no route out of the network
    #[arg(long)]
    internal: bool,
    /// An IPv6 network (needs an IPv6 --subnet: one network has one subnet)
    #[arg(long)]
    ipv6: bool,
    /// The driver: only bridge
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// KEY=VALUE labels
    #[arg(long)]
    label: Vec<String>,
    /// Driver options: mtu=N, com.docker.network.bridge.name=NAME (docker's)
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only the names
    #[arg(short, long)]
    quiet: bool,
    /// table, json or a Go template
    #[arg(long)]
    format: Option<String>,
    /// name=, id=, driver=, label=KEY[=VALUE]
    #[arg(short, long)]
    filter: Vec<String>,
    /// Full network ids
    #[arg(long)]
    no_trunc: bool,
    /// No header row
    #[arg(short, long)]
    noheading: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A Go template applied to each network
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Remove the containers using the network first
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Another name for the container on this network
    #[arg(long)]
    alias: Vec<String>,
    /// The container's address on this network
    #[arg(long)]
    ip: Option<String>,
    network: String,
    container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Accepted for docker compatibility
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

pub fn run(global: &Global, command: NetworkCommand) -> CmdResult {
    let NetworkCommand::Network(verb) = command;
    let engine = Engine::new(&global.root, &global.runroot);
    match verb {
        NetworkVerb::Create(a) => create(&engine, &a),
        NetworkVerb::Ls(a) => list(&engine, &a),
        NetworkVerb::Inspect(a) => inspect(&engine, &a),
        NetworkVerb::Rm(a) => remove(&engine, &a),
        NetworkVerb::Prune(a) => prune(&engine, &a),
        NetworkVerb::Connect(a) => connect(&engine, &a),
        NetworkVerb::Disconnect(a) => disconnect(&engine, &a),
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

type Failure = Box<dyn std::error::Error>;

fn bad(flag: &str, value: &str, why: &str) -> Failure {
    format!("invalid {flag} {value:?}: {why}").into()
}

fn create(engine: &Engine, a: &CreateArgs) -> CmdResult {
    let subnet: Option<berth_network::Subnet> = match &a.subnet {
        Some(s) => Some(s.parse()?),
        None => None,
    };
    // docker's and podman's --ipv6 add an IPv6 subnet next to the IPv4 one; a Berth network
    // has one subnet, so say so rather than make a network without what was asked.
    if a.ipv6 && !subnet.is_some_and(|s| s.is_v6()) {
        return Err(bad(
            "--ipv6",
            a.subnet.as_deref().unwrap_or("(no --subnet)"),
            "dual-stack networks are not supported: give an IPv6 --subnet (e.g. fd00:1::/64) for an IPv6 network",
        ));
    }
    let gateway = match &a.gateway {
        Some(_) if subnet.is_none() => {
            return Err("cannot set a gateway without --subnet".into());
        }
        Some(g) => Some(
            g.parse()
                .map_err(|_| bad("--gateway", g, "not an IP address"))?,
        ),
        None => None,
    };
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(bad("--label", l, "expected KEY=VALUE"));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let mut req = CreateRequest {
        name: a.name.clone(),
        subnet,
        gateway,
        internal: a.internal,
        driver: Some(a.driver.clone()),
        labels,
        ..Default::default()
    };
    for o in &a.opt {
        match o.split_once('=') {
            Some(("mtu", v)) => {
                let mtu = v
                    .parse::<u32>()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| bad("-o", o, "mtu must be a number in 68-65535"))?;
                req.mtu = Some(mtu);
            }
            Some(("com.docker.network.bridge.name", v)) => req.bridge = Some(v.to_string()),
            _ => {
                return Err(bad(
                    "-o",
                    o,
                    "unknown option (mtu=, com.docker.network.bridge.name=)",
                ));
            }
        }
    }
    let net = berth_engine::network::networks(engine)?.create(&req)?;
    print(&format!("{}\n", net.name));
    Ok(0)
}

/// RFC 3339 in UTC, as podman shows `created`.
fn created(net: &Network) -> String {
    berth_engine::time::format(UNIX_EPOCH + Duration::from_secs(net.created))
}

#[derive(serde::Serialize)]
struct SubnetJson {
    subnet: String,
    gateway: String,
}

/// podman's `network inspect` object, its fields in podman's order.
#[derive(serde::Serialize)]
struct InspectJson {
    name: String,
    id: String,
    driver: String,
    network_interface: String,
    created: String,
    subnets: Vec<SubnetJson>,
    ipv6_enabled: bool,
    internal: bool,
    dns_enabled: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    options: BTreeMap<String, String>,
    ipam_options: BTreeMap<String, String>,
}

fn inspect_json(net: &Network) -> InspectJson {
    InspectJson {
        name: net.name.clone(),
        id: net.id.clone(),
        driver: net.driver.clone(),
        network_interface: net.bridge.clone(),
        created: created(net),
        subnets: vec![SubnetJson {
            subnet: net.subnet.to_string(),
            gateway: net.gateway.to_string(),
        }],
        ipv6_enabled: net.subnet.is_v6(),
        internal: net.internal,
        dns_enabled: false,
        labels: net.labels.clone(),
        options: net
            .mtu
            .map(|m| BTreeMap::from([("mtu".to_string(), m.to_string())]))
            .unwrap_or_default(),
        ipam_options: BTreeMap::from([("driver".to_string(), "host-local".to_string())]),
    }
}

/// JSON with podman's `inspect` indentation (4 spaces, as docker's).
fn to_pretty_json(value: &impl serde::Serialize) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    let _ = serde::Serialize::serialize(value, &mut ser);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The fields templates see (podman's Go names).
fn template_json(net: &Network, no_trunc: bool) -> Value {
    let labels: Vec<String> = net.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "Name": net.name,
        "ID": if no_trunc { net.id.clone() } else { net.id.chars().take(12).collect() },
        "Driver": net.driver,
        "NetworkInterface": net.bridge,
        "Created": created(net),
        "Subnets": [{"Subnet": net.subnet.to_string(), "Gateway": net.gateway.to_string()}],
        "IPv6Enabled": net.subnet.is_v6(),
        "Internal": net.internal,
        "DNSEnabled": false,
        "Labels": labels.join(","),
    })
}

fn keep(net: &Network, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "name" => net.name.contains(v.as_str()),
        "id" => net.id.starts_with(v.as_str()),
        "driver" => net.driver == *v,
        "label" => match v.split_once('=') {
            Some((lk, lv)) => net.labels.get(lk).is_some_and(|x| x == lv),
            None => net.labels.contains_key(v.as_str()),
        },
        _ => true,
    })
}

fn list(engine: &Engine, a: &LsArgs) -> CmdResult {
    let mut filters = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some((k @ ("name" | "id" | "driver" | "label"), v)) => {
                filters.push((k.to_string(), v.to_string()))
            }
            _ => return Err(bad("--filter", f, "expected name=, id=, driver= or label=")),
        }
    }
    let nets: Vec<Network> = berth_engine::network::networks(engine)?
        .list()?
        .into_iter()
        .filter(|n| keep(n, &filters))
        .collect();
    if a.quiet {
        print(
            &nets
                .iter()
                .map(|n| format!("{}\n", n.name))
                .collect::<String>(),
        );
        return Ok(0);
    }
    let format = Format::parse(a.format.as_deref());
    if format == Format::Json {
        let items: Vec<InspectJson> = nets.iter().map(inspect_json).collect();
        print(&format!("{}\n", serde_json::to_string_pretty(&items)?));
        return Ok(0);
    }
    let items: Vec<Value> = nets.iter().map(|n| template_json(n, a.no_trunc)).collect();
    let mut text = output::render(&items, &format, || {
        let rows = nets
            .iter()
            .map(|n| {
                let id = if a.no_trunc {
                    n.id.clone()
                } else {
                    n.id[..12].to_string()
                };
                vec![id, n.name.clone(), n.driver.clone()]
            })
            .collect();
        (vec!["NETWORK ID", "NAME", "DRIVER"], rows)
    })?;
    if a.noheading && matches!(format, Format::Table) {
        text = text
            .split_once('\n')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
    }
    print(&text);
    Ok(0)
}

fn inspect(engine: &Engine, a: &InspectArgs) -> CmdResult {
    let nets = berth_engine::network::networks(engine)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match nets.inspect(name) {
            Ok(n) => found.push(n),
            Err(NetError::UnknownNetwork(_)) => missing.push(name.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    match Format::parse(a.format.as_deref()) {
        Format::Table | Format::Json => {
            let items: Vec<InspectJson> = found.iter().map(inspect_json).collect();
            print(&format!("{}\n", to_pretty_json(&items)));
        }
        Format::Template { template, .. } => {
            let t = output::Template::parse(&template)?;
            let mut out = String::new();
            for n in &found {
                out.push_str(&t.render(&template_json(n, true))?);
                out.push('\n');
            }
            print(&out);
        }
    }
    if let Some(first) = missing.first() {
        return Err(format!(
            "network {first}: unable to find network with name or ID {first}: network not found"
        )
        .into());
    }
    Ok(0)
}

fn remove(engine: &Engine, a: &RmArgs) -> CmdResult {
    let nets = berth_engine::network::networks(engine)?;
    let mut code = 0;
    for name in &a.names {
        let mut result = nets.remove(name);
        if a.force
            && let Err(NetError::NetworkInUse { holders, .. }) = &result
        {
            for id in holders {
                if let Err(e) = berth_engine::ops::remove(engine, id, true) {
                    eprintln!("Error: removing container {id}: {e}");
                }
            }
            result = nets.remove(name);
        }
        match result {
            Ok(()) => print(&format!("{name}\n")),
            Err(e) => {
                // podman's codes: 1 for no such network, 2 for one in use.
                let c = match &e {
                    NetError::UnknownNetwork(_) => 1,
                    NetError::NetworkInUse { .. } => 2,
                    _ => 125,
                };
                let msg = match &e {
                    NetError::UnknownNetwork(n) => {
                        format!("unable to find network with name or ID {n}: network not found")
                    }
                    NetError::NetworkInUse { name, .. } => format!(
                        "{name:?} has associated containers with it: use -f to remove them: {e}"
                    ),
                    _ => e.to_string(),
                };
                eprintln!("Error: {msg}");
                if code == 0 || c == 125 {
                    code = c;
                }
            }
        }
    }
    Ok(code)
}

fn prune(engine: &Engine, a: &PruneArgs) -> CmdResult {
    if !a.force {
        eprint!(
            "WARNING! This will remove all networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
        );
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let removed = berth_engine::network::networks(engine)?.prune()?;
    // The bridges (and firewall rules) no container uses go too, the default network's
    // included: its definition stays, and the next container on it brings them back.
    berth_engine::network::reset(engine)?;
    print(&removed.iter().map(|n| format!("{n}\n")).collect::<String>());
    Ok(0)
}

fn connect(engine: &Engine, a: &ConnectArgs) -> CmdResult {
    let id = engine.records.resolve(&a.container)?;
    let ip = match &a.ip {
        Some(ip) => Some(
            ip.parse()
                .map_err(|_| bad("--ip", ip, "not an IP address"))?,
        ),
        None => None,
    };
    berth_engine::network::connect(engine, &id, &a.network, &a.alias, ip)?;
    Ok(0)
}

fn disconnect(engine: &Engine, a: &DisconnectArgs) -> CmdResult {
    let id = engine.records.resolve(&a.container)?;
    berth_engine::network::disconnect(engine, &id, &a.network)?;
    Ok(0)
}
