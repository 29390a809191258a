//! A small synchronous rtnetlink client: exactly the link, address and route operations a
//! bridge network needs, each one request and its ACK on a blocking socket.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::subnet::{MacAddr, Subnet};

/// A route-netlink socket bound in the network namespace of the thread that opened it.
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// The host side and the container side of a new veth pair.
pub(crate) struct VethPlan<'a> {
    pub host_name: &'a str,
    pub bridge_index: u32,
    pub peer_name: &'a str,
    pub peer_mac: MacAddr,
    pub peer_netns: &'a std::fs::File,
    pub mtu: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // The kernel answers at once; a bound keeps a lost answer from hanging a start forever.
        rustix::net::sockopt::set_socket_timeout(
            &sock,
            rustix::net::sockopt::Timeout::Recv,
            Some(std::time::Duration::from_secs(10)),
        )?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Send one request and collect the answers until its ACK (or DONE for dumps).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut got = Vec::new();
        loop {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, 0)?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                let seq = msg.header.sequence_number;
                off += len.max(16).next_multiple_of(4);
                if seq != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(got),
                            Some(_) => Err(e.to_io()),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(got),
                    NetlinkPayload::InnerMessage(m) => got.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of link `name`, or None when there is no such link.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(m), NLM_F_ACK) {
            Ok(v) => Ok(v.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if errno_is(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create bridge `name` with a fixed MAC (a bridge otherwise takes its ports' lowest MAC,
    /// which changes as containers come and go and confuses their ARP caches), up. An existing
    /// link of that name is fine (a parallel caller made it).
    pub fn create_bridge(&mut self, name: &str, mac: MacAddr, mtu: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Address(mac.0.to_vec()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        match self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if errno_is(&e, libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// One request creating the veth pair: the host end enslaved to the bridge and up, the peer
    /// created directly inside the container's namespace under its final name and MAC (no move,
    /// no rename).
    pub fn create_veth(&mut self, p: &VethPlan<'_>) -> io::Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes = vec![
            LinkAttribute::IfName(p.peer_name.to_string()),
            LinkAttribute::Address(p.peer_mac.0.to_vec()),
            LinkAttribute::Mtu(p.mtu),
            LinkAttribute::NetNsFd(p.peer_netns.as_raw_fd()),
        ];
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes = vec![
            LinkAttribute::IfName(p.host_name.to_string()),
            LinkAttribute::Mtu(p.mtu),
            LinkAttribute::Controller(p.bridge_index),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ];
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Bring link `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(drop)
    }

    /// Delete link `name`; a missing link is success (teardown is idempotent).
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(m), NLM_F_ACK) {
            Err(e) if errno_is(&e, libc::ENODEV) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Add `ip/prefix` to link `index`; already present is success. IPv6 addresses skip DAD so
    /// they are usable at once.
    pub fn add_address(&mut self, index: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = family(ip);
        m.header.prefix_len = prefix;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(ip));
        m.attributes.push(AddressAttribute::Address(ip));
        if ip.is_ipv6() {
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if errno_is(&e, libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Add the default route via `gateway` out of link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(gateway);
        m.header.table = libc::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(route_addr(gateway)));
        m.attributes.push(RouteAttribute::Oif(index));
        match self.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if errno_is(&e, libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// The destinations of the main table's routes (both families), default routes left out:
    /// they say nothing about which subnets are taken.
    pub fn route_destinations(&mut self) -> io::Result<Vec<Subnet>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut m = RouteMessage::default();
            m.header.address_family = fam;
            for r in self.request(RouteNetlinkMessage::GetRoute(m), NLM_F_DUMP)? {
                let RouteNetlinkMessage::NewRoute(r) = r else {
                    continue;
                };
                let plen = r.header.destination_prefix_length;
                if plen == 0 || r.header.table != libc::RT_TABLE_MAIN {
                    continue;
                }
                for a in &r.attributes {
                    if let RouteAttribute::Destination(d) = a {
                        let ip = match d {
                            RouteAddress::Inet(v4) => IpAddr::V4(*v4),
                            RouteAddress::Inet6(v6) => IpAddr::V6(*v6),
                            _ => continue,
                        };
                        if let Ok(s) = Subnet::new(ip, plen) {
                            out.push(s);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn errno_is(e: &io::Error, code: i32) -> bool {
    e.raw_os_error() == Some(code)
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}
