//! [`Networks`]: the operations the engine calls (create, list, inspect, remove, prune, attach,
//! detach, reclaim, sync_hosts).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::attachment::{AttachRequest, Attachment};
use crate::claims::HostLock;
use crate::error::{Error, Result, file_err};
use crate::hosts::{Peer, rewrite_hosts_file};
use crate::ipam::{Leases, Lock};
use crate::netlink::Rtnl;
use crate::nfnl;
use crate::nft;
use crate::plumb;
use crate::publish;
use crate::store::{DEFAULT_NETWORK, Network, RESERVED, Store, validate_name};
use crate::subnet::{MacAddr, Subnet};

/// Subnets other tools use by default; never picked automatically.
const AVOID: [&str; 2] = ["172.17.0.0/16", "10.88.0.0/16"];
/// Where automatic subnets start.
const FIRST_AUTO: &str = "10.89.0.0/24";

type Liveness = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The networks of one Berth root/runroot pair.
pub struct Networks {
    store: Store,
    run_dir: PathBuf,
    table: String,
    default_bridge: String,
    veth_prefix: String,
    live: Option<Liveness>,
}

/// `network create`.
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub name: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<IpAddr>,
    pub internal: bool,
    /// `-d`; only `bridge` (the default).
    pub driver: Option<String>,
    /// The bridge interface name (docker's `-o com.docker.network.bridge.name`); at most 15
    /// characters. Default `br-` and 12 hex digits of the id.
    pub bridge: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub mtu: Option<u32>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn nl(op: &'static str, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.to_string();
    move |source| Error::Netlink { op, what, source }
}

/// Give back the host-wide subnet claims of every network defined under `root` (see
/// `claims.rs`), for a root about to be deleted as a whole (a test's temporary root): a claim
/// whose definition is gone is harmless, but lingers in /run until the next network is made.
pub fn release_claims(root: &Path) -> Result<()> {
    crate::claims::HostLock::take()?.release_all_under(&root.join("networks"));
    Ok(())
}

/// Turn on forwarding for the whole host, as docker does at start: containers on non-internal
/// networks need it to reach beyond the host (IPv4, and IPv6 for `v6` networks). The engine
/// calls this explicitly (when it attaches to a non-internal network); attach never does it
/// behind its back.
pub fn enable_ip_forwarding(v6: bool) -> Result<()> {
    if v6 {
        enable_ipv6_forwarding()?;
    }
    set_once("/proc/sys/net/ipv4/ip_forward")
}

/// Write 1 to a sysctl unless it holds 1 already.
fn set_once(path: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|source| Error::Sysctl {
        path: path.into(),
        source,
    })
}

/// A host that forwards IPv6 ignores router advertisements on interfaces with `accept_ra` 1,
/// so a host that learned its default route from one would lose it some minutes later (a
/// well-known docker surprise). Those interfaces get `accept_ra` 2 first, which accepts them
/// while forwarding: the host keeps the routing it had. Bridges and bridge ports are left
/// alone: containers' bridges must never listen to advertisements (see plumb.rs), and a
/// bridge port does no IP of its own.
fn enable_ipv6_forwarding() -> Result<()> {
    let all = "/proc/sys/net/ipv6/conf/all/forwarding";
    if std::fs::read_to_string(all).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    let conf = Path::new("/proc/sys/net/ipv6/conf");
    for dev in std::fs::read_dir(conf).into_iter().flatten().flatten() {
        let name = dev.file_name();
        let name = name.to_string_lossy();
        let class = Path::new("/sys/class/net").join(&*name);
        if matches!(&*name, "all" | "default" | "lo")
            || class.join("bridge").exists()
            || class.join("master").exists()
        {
            continue;
        }
        let accept_ra = dev.path().join("accept_ra");
        if std::fs::read_to_string(&accept_ra).is_ok_and(|v| v.trim() == "1") {
            std::fs::write(&accept_ra, "2").map_err(|source| Error::Sysctl {
                path: accept_ra.clone(),
                source,
            })?;
        }
    }
    set_once(all)
}

/// Remove an attachment's published ports, whether or not they are there.
fn unpublish(att: &Attachment) -> Result<()> {
    if att.ports.is_empty() {
        return Ok(());
    }
    match nfnl::update_ports(&att.table, att.ip, &att.ports, true) {
        Ok(()) => Ok(()),
        // No table or map: no rule to remove.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => {
            log::debug!("nf_tables fast path: {e}; using nft");
            nft::apply(&att.table, &nft::ports_del(&att.table, att.ip, &att.ports))
        }
    }
}

impl Networks {
    /// Open the networks under `root` (definitions) and `runroot` (leases), creating
    /// `<root>/networks` and `<runroot>/networks` as needed.
    pub fn open(root: &Path, runroot: &Path) -> Result<Networks> {
        let store = Store::open(root.join("networks"))?;
        let run_dir = runroot.join("networks");
        std::fs::create_dir_all(&run_dir).map_err(file_err("create", &run_dir))?;
        Ok(Networks {
            store,
            run_dir,
            table: "berth".to_string(),
            default_bridge: "berth0".to_string(),
            veth_prefix: "vb".to_string(),
            live: None,
        })
    }

    /// Use another nftables table (tests use one each, so they never share state).
    pub fn with_table(mut self, table: &str) -> Networks {
        self.table = table.to_string();
        self
    }

    /// Use another bridge name for the default network (`berth0` by default).
    pub fn with_default_bridge(mut self, bridge: &str) -> Networks {
        self.default_bridge = bridge.to_string();
        self
    }

    /// Name host veths `PREFIX` + random hex (`vb` by default; at most 11 characters).
    pub fn with_veth_prefix(mut self, prefix: &str) -> Networks {
        self.veth_prefix = prefix.chars().take(11).collect();
        self
    }

    /// Tell which lease holders are alive. Leases of dead holders are reclaimed — their veth,
    /// port rules and lease removed — whenever an attach, remove or prune meets them. Without
    /// it every holder counts as alive. It runs under the lease lock: it must not call back into
    /// `Networks`, and should be cheap (it is asked about every lease of the network on attach).
    pub fn with_liveness(
        mut self,
        live: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Networks {
        self.live = Some(Box::new(live));
        self
    }

    /// The nftables table in use.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn alive(&self, holder: &str) -> bool {
        self.live.as_ref().is_none_or(|f| f(holder))
    }

    fn lock(&self) -> Result<Lock> {
        Lock::take(&self.run_dir)
    }

    fn host_routes() -> Result<Vec<Subnet>> {
        Rtnl::open()
            .and_then(|mut rt| rt.route_destinations())
            .map_err(nl("list routes", "of the host"))
    }

    /// The first free /24 from 10.89.0.0 up that no network of ours, no host route and neither
    /// docker's nor podman's default subnet overlaps.
    fn pick_subnet(&self, name: &str, existing: &[Network], others: &[Subnet]) -> Result<Subnet> {
        let routes = Self::host_routes()?;
        let avoid: Vec<Subnet> = AVOID.iter().map(|s| s.parse().expect("constant")).collect();
        let mut cand: Subnet = FIRST_AUTO.parse().expect("constant");
        let last: Subnet = "10.255.255.0/24".parse().expect("constant");
        loop {
            let clash = existing.iter().any(|n| n.subnet.overlaps(&cand))
                || others.iter().any(|o| o.overlaps(&cand))
                || routes.iter().any(|r| r.overlaps(&cand))
                || avoid.iter().any(|a| a.overlaps(&cand));
            if !clash {
                return Ok(cand);
            }
            if cand == last {
                return Err(Error::NoFreeSubnet(name.to_string()));
            }
            cand = cand
                .next()
                .ok_or_else(|| Error::NoFreeSubnet(name.to_string()))?;
        }
    }

    /// Build a definition and store it, its subnet claimed host-wide (see `crate::claims`).
    fn build_and_store(
        &self,
        req: &CreateRequest,
        existing: &[Network],
        bridge: String,
    ) -> Result<Network> {
        let host = HostLock::take()?;
        let own = self.store.path(&req.name);
        let others = host.claimed_by_others(&own);
        let net = self.build(req, existing, &others, bridge)?;
        self.store.put(&net)?;
        if let Err(e) = host.claim(&net.subnet, &own) {
            let _ = self.store.delete(&net.name);
            return Err(e);
        }
        Ok(net)
    }

    fn build(
        &self,
        req: &CreateRequest,
        existing: &[Network],
        others: &[(Subnet, PathBuf)],
        bridge: String,
    ) -> Result<Network> {
        let name = &req.name;
        let driver = req.driver.clone().unwrap_or_else(|| "bridge".into());
        if driver != "bridge" {
            return Err(Error::UnsupportedDriver {
                name: name.clone(),
                driver,
            });
        }
        let subnet = match req.subnet {
            Some(s) => {
                if let Some(o) = existing.iter().find(|n| n.subnet.overlaps(&s)) {
                    return Err(Error::SubnetOverlap {
                        name: name.clone(),
                        subnet: s,
                        other: o.name.clone(),
                        other_subnet: o.subnet,
                    });
                }
                if let Some((o, owner)) = others.iter().find(|(o, _)| o.overlaps(&s)) {
                    return Err(Error::SubnetOverlap {
                        name: name.clone(),
                        subnet: s,
                        other: format!("{} (another berth root's)", owner.display()),
                        other_subnet: *o,
                    });
                }
                s
            }
            None => {
                let others: Vec<Subnet> = others.iter().map(|(s, _)| *s).collect();
                self.pick_subnet(name, existing, &others)?
            }
        };
        let gateway = match req.gateway {
            Some(g) => {
                if !subnet.is_host(g) {
                    return Err(Error::GatewayOutsideSubnet {
                        name: name.clone(),
                        gateway: g,
                        subnet,
                    });
                }
                g
            }
            None => subnet
                .nth(1)
                .expect("a subnet of /30 or larger has a first host"),
        };
        if bridge.is_empty() || bridge.len() > 15 || bridge.contains(['/', ' ', '"']) {
            return Err(Error::InvalidName(bridge));
        }
        Ok(Network {
            name: name.clone(),
            id: crate::sys::random_hex(64),
            driver,
            bridge,
            subnet,
            gateway,
            internal: req.internal,
            created: now(),
            labels: req.labels.clone(),
            mtu: req.mtu,
        })
    }

    /// `network create`: a new bridge network. Its bridge and rules appear with the first
    /// container attached.
    pub fn create(&self, req: &CreateRequest) -> Result<Network> {
        validate_name(&req.name)?;
        if RESERVED.contains(&req.name.as_str()) {
            return Err(Error::Predefined {
                name: req.name.clone(),
                what: "it",
                verb: "created",
            });
        }
        let _lock = self.lock()?;
        self.ensure_default_locked()?;
        if self.store.get(&req.name)?.is_some() {
            return Err(Error::NetworkExists(req.name.clone()));
        }
        let existing = self.store.list()?;
        let id = crate::sys::random_hex(12);
        let bridge = req.bridge.clone().unwrap_or_else(|| format!("br-{id}"));
        if let Some(o) = existing.iter().find(|n| n.bridge == bridge) {
            return Err(Error::NetworkExists(format!(
                "{} (bridge {bridge})",
                o.name
            )));
        }
        self.build_and_store(req, &existing, bridge)
    }

    fn ensure_default_locked(&self) -> Result<Network> {
        if let Some(n) = self.store.get(DEFAULT_NETWORK)? {
            return Ok(n);
        }
        let existing = self.store.list()?;
        let req = CreateRequest {
            name: DEFAULT_NETWORK.into(),
            ..Default::default()
        };
        self.build_and_store(&req, &existing, self.default_bridge.clone())
    }

    /// `network ls`: every network, the default one included (made on first use).
    pub fn list(&self) -> Result<Vec<Network>> {
        if self.store.get(DEFAULT_NETWORK)?.is_none() {
            let _lock = self.lock()?;
            self.ensure_default_locked()?;
        }
        self.store.list()
    }

    /// `network inspect NAME`.
    pub fn inspect(&self, name: &str) -> Result<Network> {
        if name == DEFAULT_NETWORK {
            if let Some(n) = self.store.get(name)? {
                return Ok(n);
            }
            let _lock = self.lock()?;
            return self.ensure_default_locked();
        }
        self.store
            .get(name)?
            .ok_or_else(|| Error::UnknownNetwork(name.to_string()))
    }

    /// The containers attached to `network` (its leases).
    pub fn attachments(&self, network: &str) -> Result<Vec<Attachment>> {
        Ok(Leases::load(&self.run_dir, network)?.leases)
    }

    /// Tear down one recorded attachment's kernel state and rules (lease bookkeeping is the
    /// caller's).
    fn teardown(&self, rt: &mut Rtnl, att: &Attachment) -> Result<()> {
        plumb::del_veth(rt, &att.host_veth)?;
        unpublish(att)
    }

    /// Reclaim dead holders' leases of `network` (with the lock held).
    fn reclaim_locked(
        &self,
        rt: &mut Rtnl,
        network: &str,
        leases: &mut Leases,
    ) -> Result<Vec<Attachment>> {
        let mut gone = Vec::new();
        let mut keep = Vec::new();
        for l in std::mem::take(&mut leases.leases) {
            if self.alive(&l.holder) {
                keep.push(l);
            } else {
                gone.push(l);
            }
        }
        leases.leases = keep;
        for att in &gone {
            log::info!(
                "network {network}: reclaiming lease {} of dead holder {}",
                att.ip,
                att.holder
            );
            self.teardown(rt, att)?;
        }
        Ok(gone)
    }

    /// Reclaim the leases of holders the liveness callback calls dead, on every network: their
    /// veths, port rules and leases go. Returns what was reclaimed.
    pub fn reclaim(&self) -> Result<Vec<Attachment>> {
        let _lock = self.lock()?;
        let mut rt = Rtnl::open().map_err(nl("open", "socket"))?;
        let mut out = Vec::new();
        for (name, mut leases) in crate::ipam::all(&self.run_dir)? {
            let gone = self.reclaim_locked(&mut rt, &name, &mut leases)?;
            if !gone.is_empty() {
                leases.save(&self.run_dir, &name)?;
                out.extend(gone);
            }
        }
        Ok(out)
    }

    /// Attach a container's network namespace to a network: bridge (made on first use, with its
    /// rules), veth pair, address, default route, published ports. On error nothing of it is
    /// left: no veth, no rule, no lease.
    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        let net = self.inspect(&req.network)?;
        if req.ifname.is_empty() || req.ifname.len() > 15 {
            return Err(Error::InvalidName(req.ifname.clone()));
        }
        let _lock = self.lock()?;
        let mut rt = Rtnl::open().map_err(nl("open", "socket"))?;
        let mut leases = Leases::load(&self.run_dir, &net.name)?;
        // A holder attaching again (a restart after a crash) replaces its old attachment.
        let (old, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut leases.leases)
            .into_iter()
            .partition(|l| l.holder == req.holder);
        leases.leases = rest;
        for att in &old {
            self.teardown(&mut rt, att)?;
        }
        let mut reclaimed = !old.is_empty();
        reclaimed |= !self
            .reclaim_locked(&mut rt, &net.name, &mut leases)?
            .is_empty();
        if reclaimed {
            leases.save(&self.run_dir, &net.name)?;
        }
        let ip = leases.choose(&net, req.ip)?;
        let mut taken = Vec::new();
        for (name, other) in crate::ipam::all(&self.run_dir)? {
            let other = if name == net.name {
                Leases {
                    last: None,
                    leases: leases.leases.clone(),
                }
            } else {
                other
            };
            for l in other.leases {
                for p in l.ports {
                    taken.push((l.holder.clone(), p));
                }
            }
        }
        let ports = publish::resolve(&req.ports, ip, &net.name, &taken)?;
        let att = Attachment {
            network: net.name.clone(),
            network_id: net.id.clone(),
            holder: req.holder.clone(),
            netns: req.netns.clone(),
            bridge: net.bridge.clone(),
            host_veth: format!(
                "{}{}",
                self.veth_prefix,
                crate::sys::random_hex(15 - self.veth_prefix.len())
            ),
            ifname: req.ifname.clone(),
            ip,
            prefix: net.subnet.prefix(),
            gateway: net.gateway,
            default_route: !net.internal,
            mac: req.mac.unwrap_or_else(|| MacAddr::for_ip(ip)),
            mtu: net.mtu.unwrap_or(plumb::DEFAULT_MTU),
            ports,
            names: req.names.clone(),
            hosts_file: req.hosts_file.clone(),
            table: self.table.clone(),
        };
        // Record first: a crash from here on leaves a lease naming everything to tear down.
        leases.leases.push(att.clone());
        leases.last = Some(ip);
        leases.save(&self.run_dir, &net.name)?;
        match self.plumb(&mut rt, &net, &att) {
            Ok(()) => Ok(att),
            Err(e) => {
                let _ = plumb::del_veth(&mut rt, &att.host_veth);
                let _ = unpublish(&att);
                leases.leases.retain(|l| l.holder != att.holder);
                leases.save(&self.run_dir, &net.name)?;
                Err(e)
            }
        }
    }

    fn plumb(&self, rt: &mut Rtnl, net: &Network, att: &Attachment) -> Result<()> {
        let (index, created) = plumb::ensure_bridge(rt, net)?;
        let mut batch = String::new();
        let rules = nft::NetRules {
            bridge: &net.bridge,
            subnet: net.subnet,
            internal: net.internal,
        };
        if created {
            batch.push_str(&nft::base(&self.table));
            batch.push_str(&nft::network_up(&self.table, &rules));
        }
        if !att.ports.is_empty() {
            if created {
                batch.push_str(&nft::ports_add(&self.table, att.ip, &att.ports));
            } else if let Err(e) = nfnl::update_ports(&self.table, att.ip, &att.ports, false) {
                // The table may be gone (someone flushed the ruleset) or the port taken by a
                // rule of another store: the nft path rebuilds the base and names the error.
                log::debug!("nf_tables fast path: {e}; using nft");
                batch.push_str(&nft::base(&self.table));
                batch.push_str(&nft::network_up(&self.table, &rules));
                batch.push_str(&nft::ports_add(&self.table, att.ip, &att.ports));
            }
        }
        // Rules before the veth: a failure here leaves a bridge (kept by design) and nothing else.
        if let Err(e) = nft::apply(&self.table, &batch) {
            if created {
                let _ = plumb::del_bridge(rt, &net.bridge);
            }
            return Err(e);
        }
        plumb::add_veth(rt, index, att)
    }

    /// Undo [`Networks::attach`] from its record: delete the veth, unpublish the ports, release
    /// the lease. Idempotent: anything already gone is skipped.
    pub fn detach(&self, att: &Attachment) -> Result<()> {
        let _lock = self.lock()?;
        let mut rt = Rtnl::open().map_err(nl("open", "socket"))?;
        self.teardown(&mut rt, att)?;
        self.drop_lease(att)
    }

    /// Like [`Networks::detach`] but leaves the veth to the kernel: for a container whose network
    /// namespace is gone or going (its last process exited and nothing pins the namespace), the
    /// kernel deletes both veth ends with the namespace, off the caller's path; a synchronous
    /// delete costs ~20 ms of RCU waits in the kernel. Ports and lease are released at once.
    pub fn release(&self, att: &Attachment) -> Result<()> {
        let _lock = self.lock()?;
        unpublish(att)?;
        self.drop_lease(att)
    }

    fn drop_lease(&self, att: &Attachment) -> Result<()> {
        let mut leases = Leases::load(&self.run_dir, &att.network)?;
        let before = leases.leases.len();
        leases
            .leases
            .retain(|l| !(l.holder == att.holder && l.ip == att.ip));
        if leases.leases.len() != before {
            leases.save(&self.run_dir, &att.network)?;
        }
        Ok(())
    }

    /// Rewrite the peer block of every attached container's hosts file on `network`, so
    /// containers find each other by name (and alias) whichever started first. The engine calls
    /// it after an attach and after a detach. Hosts files that no longer exist are skipped.
    pub fn sync_hosts(&self, network: &str) -> Result<()> {
        let leases = Leases::load(&self.run_dir, network)?.leases;
        for me in &leases {
            let Some(path) = &me.hosts_file else { continue };
            let peers: Vec<Peer> = leases
                .iter()
                .filter(|l| l.holder != me.holder)
                .map(|l| Peer {
                    ip: l.ip,
                    names: l.names.clone(),
                })
                .collect();
            match rewrite_hosts_file(path, network, &peers) {
                Err(Error::File { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                r => r?,
            }
        }
        Ok(())
    }

    fn remove_locked(&self, rt: &mut Rtnl, net: &Network) -> Result<()> {
        let mut leases = Leases::load(&self.run_dir, &net.name)?;
        self.reclaim_locked(rt, &net.name, &mut leases)?;
        if !leases.leases.is_empty() {
            leases.save(&self.run_dir, &net.name)?;
            return Err(Error::NetworkInUse {
                name: net.name.clone(),
                holders: leases.leases.iter().map(|l| l.holder.clone()).collect(),
            });
        }
        self.down_locked(rt, net)?;
        Leases::delete_file(&self.run_dir, &net.name)?;
        self.store.delete(&net.name)?;
        if let Ok(host) = HostLock::take() {
            host.release(&net.subnet, &self.store.path(&net.name));
        }
        Ok(())
    }

    /// Delete the network's bridge and chains; the table goes with the last bridge.
    fn down_locked(&self, rt: &mut Rtnl, net: &Network) -> Result<()> {
        plumb::del_bridge(rt, &net.bridge)?;
        let mut any_left = false;
        for other in self.store.list()? {
            if other.name != net.name
                && rt
                    .link_index(&other.bridge)
                    .map_err(nl("look up", &other.bridge))?
                    .is_some()
            {
                any_left = true;
            }
        }
        if !any_left {
            nft::apply(&self.table, &nft::table_delete(&self.table))
        } else {
            // The base first: the table may have been flushed by someone; the batch must not
            // fail for want of what it deletes.
            let batch = nft::base(&self.table) + &nft::network_down(&self.table, &net.bridge);
            nft::apply(&self.table, &batch)
        }
    }

    /// `network rm NAME`: refused while a live container is attached; the default network
    /// cannot be removed.
    pub fn remove(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NETWORK {
            return Err(Error::Predefined {
                name: name.to_string(),
                what: "it",
                verb: "removed",
            });
        }
        let net = self.inspect(name)?;
        let _lock = self.lock()?;
        let mut rt = Rtnl::open().map_err(nl("open", "socket"))?;
        self.remove_locked(&mut rt, &net)
    }

    /// `network prune`: remove every user network no live container uses; returns their names.
    pub fn prune(&self) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let mut rt = Rtnl::open().map_err(nl("open", "socket"))?;
        let mut out = Vec::new();
        for net in self.store.list()? {
            if net.name == DEFAULT_NETWORK {
                continue;
            }
            match self.remove_locked(&mut rt, &net) {
                Ok(()) => out.push(net.name),
                Err(Error::NetworkInUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Take down the bridges (and rules) of networks no live container uses, the default
    /// network's included, keeping their definitions; the table goes once no bridge is left.
    /// For `system reset` and for tests; a start after it recreates what it needs.
    pub fn teardown_idle(&self) -> Result<()> {
        let _lock = self.lock()?;
        let mut rt = Rtnl::open().map_err(nl("open", "socket"))?;
        for net in self.store.list()? {
            let mut leases = Leases::load(&self.run_dir, &net.name)?;
            self.reclaim_locked(&mut rt, &net.name, &mut leases)?;
            leases.save(&self.run_dir, &net.name)?;
            if leases.leases.is_empty() {
                self.down_locked(&mut rt, &net)?;
            }
        }
        Ok(())
    }
}
