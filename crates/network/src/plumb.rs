//! The kernel side of an attachment: bridge, veth pair, addresses and routes over netlink,
//! sysctls of the bridge. Every step tolerates having been done already, and every teardown
//! step tolerates it having been undone already.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::attachment::Attachment;
use crate::error::{Error, Result};
use crate::netlink::{Rtnl, VethPlan};
use crate::store::Network;
use crate::subnet::MacAddr;

pub(crate) const DEFAULT_MTU: u32 = 1500;

fn nl(op: &'static str, what: &str) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.to_string();
    move |source| Error::Netlink { op, what, source }
}

fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| Error::Sysctl {
        path: PathBuf::from(path),
        source,
    })
}

/// A container must not configure the host. With the kernel's defaults (`accept_ra` 1 and
/// forwarding off) a router advertisement sent from inside a container (it needs only
/// NET_RAW, which docker grants by default) gives the host a default route and an address
/// through the container: CVE-2020-13401. The bridge is the host's side of every container's
/// link, so it ignores advertisements. No file: the host has IPv6 off, nothing to refuse.
fn refuse_router_advertisements(br: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{br}/accept_ra");
    match std::fs::read(&path) {
        Ok(v) if v.trim_ascii() == b"0" => Ok(()),
        Ok(_) => sysctl(&path, "0"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Sysctl {
            path: PathBuf::from(path),
            source,
        }),
    }
}

/// Make sure the bridge exists with its gateway address and is up; returns its index and
/// whether this call created it (then the caller installs the network's firewall rules).
pub(crate) fn ensure_bridge(rt: &mut Rtnl, net: &Network) -> Result<(u32, bool)> {
    let br = &net.bridge;
    let (index, created) = match rt.link_index(br).map_err(nl("look up bridge", br))? {
        Some(i) => (i, false),
        None => {
            rt.create_bridge(br, MacAddr::random(), net.mtu.unwrap_or(DEFAULT_MTU))
                .map_err(nl("create bridge", br))?;
            let i = rt
                .link_index(br)
                .map_err(nl("look up bridge", br))?
                .ok_or_else(|| nl("look up bridge", br)(std::io::ErrorKind::NotFound.into()))?;
            (i, true)
        }
    };
    // Also for a bridge an older berth made: this must hold wherever a container is attached.
    refuse_router_advertisements(br)?;
    if created {
        rt.add_address(index, net.gateway, net.subnet.prefix())
            .map_err(nl("add gateway address to", br))?;
        if !net.subnet.is_v6() {
            // Ports published on 127.0.0.1 are DNATed by the host's output chain; the kernel
            // drops a packet with a loopback source leaving a non-loopback device unless this is
            // set on that device.
            sysctl(&format!("/proc/sys/net/ipv4/conf/{br}/route_localnet"), "1")?;
            // Forwarding for packets that come in from this bridge only (the host-wide switch
            // is the engine's call, see `enable_ip_forwarding`): hairpin traffic is routed back
            // out of the bridge it came from when br_netfilter is not loaded.
            sysctl(&format!("/proc/sys/net/ipv4/conf/{br}/forwarding"), "1")?;
        }
    }
    Ok((index, created))
}

/// Everything done inside the container's namespace, on a thread that enters it: a netlink
/// socket belongs to the namespace of the thread that opens it, and the thread ends right after,
/// so the caller's namespace is never changed.
fn in_netns(ns: &File, path: &Path, f: impl FnOnce(&mut Rtnl) -> Result<()> + Send) -> Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::sys::enter_netns(ns).map_err(|source| Error::Netns {
                op: "enter",
                path: path.to_path_buf(),
                source,
            })?;
            let mut rt = Rtnl::open().map_err(nl("open socket in", &path.display().to_string()))?;
            f(&mut rt)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::Netns {
                op: "configure (thread panicked)",
                path: path.to_path_buf(),
                source: std::io::ErrorKind::Other.into(),
            })
        })
    })
}

/// Create the veth pair for `att` and configure the container side: lo up, address, up,
/// default route.
pub(crate) fn add_veth(rt: &mut Rtnl, bridge_index: u32, att: &Attachment) -> Result<()> {
    let ns = File::open(&att.netns).map_err(|source| Error::Netns {
        op: "open",
        path: att.netns.clone(),
        source,
    })?;
    let plan = VethPlan {
        host_name: &att.host_veth,
        bridge_index,
        peer_name: &att.ifname,
        peer_mac: att.mac,
        peer_netns: &ns,
        mtu: att.mtu,
    };
    let created = match rt.create_veth(&plan) {
        // A stale `eth0` in a namespace that outlived its record (released, not detached):
        // delete it and try once more.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let name = att.ifname.clone();
            in_netns(&ns, &att.netns, move |rt| {
                rt.delete_link(&name).map_err(nl("delete stale", &name))
            })?;
            rt.create_veth(&plan)
        }
        r => r,
    };
    created.map_err(nl(
        "create veth",
        &format!(
            "{} ({} in {})",
            att.host_veth,
            att.ifname,
            att.netns.display()
        ),
    ))?;
    // Hairpin mode on the bridge port: with br_netfilter loaded (docker loads it), a container
    // reaching its own published port is DNATed while being bridged, and the bridge sends the
    // frame back out of the port it came in by only in this mode (podman's default too).
    let hairpin = format!("/sys/class/net/{}/brport/hairpin_mode", att.host_veth);
    std::fs::write(&hairpin, "1").map_err(|source| Error::Sysctl {
        path: hairpin.into(),
        source,
    })?;
    let (ifname, ip, prefix, gw, route) = (
        att.ifname.clone(),
        att.ip,
        att.prefix,
        att.gateway,
        att.default_route,
    );
    in_netns(&ns, &att.netns, move |rt| {
        rt.set_up(1).map_err(nl("bring up", "lo"))?;
        let idx = rt
            .link_index(&ifname)
            .map_err(nl("look up", &ifname))?
            .ok_or_else(|| nl("look up", &ifname)(std::io::ErrorKind::NotFound.into()))?;
        rt.add_address(idx, ip, prefix)
            .map_err(nl("add address to", &format!("{ifname} ({ip}/{prefix})")))?;
        rt.set_up(idx).map_err(nl("bring up", &ifname))?;
        if route {
            rt.add_default_route(idx, gw)
                .map_err(nl("add default route via", &gw.to_string()))?;
        }
        Ok(())
    })
}

/// Delete the host end of the veth (the kernel deletes the peer with it).
pub(crate) fn del_veth(rt: &mut Rtnl, host_veth: &str) -> Result<()> {
    rt.delete_link(host_veth)
        .map_err(nl("delete veth", host_veth))
}

/// Delete a network's bridge, if present.
pub(crate) fn del_bridge(rt: &mut Rtnl, bridge: &str) -> Result<()> {
    rt.delete_link(bridge).map_err(nl("delete bridge", bridge))
}
