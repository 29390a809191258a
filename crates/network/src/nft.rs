//! Berth's firewall: one nftables table of its own (`table inet berth` by default), changed by
//! one `nft -f -` batch per change. Nothing outside the table is ever touched, so docker's,
//! podman's and iptables-nft's chains stay as they are.
//!
//! Layout, chosen so every change is handle-free and idempotent (teardown works from a record
//! alone, also after a crash): published ports live in maps keyed by (proto, port) or
//! (address, proto, port) whose values are the container's (address, port); per-network chains
//! are reached through verdict maps keyed by interface name. Adding an element that exists is a
//! no-op, and "add then delete" in one transaction deletes whether or not it was there. Base
//! chains are flushed and refilled with their fixed rules in the same transaction, which is
//! atomic, so no packet sees a half-built table.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ports::PublishedPort;
use crate::subnet::Subnet;

/// The per-network facts the rules need.
pub(crate) struct NetRules<'a> {
    pub bridge: &'a str,
    pub subnet: Subnet,
    pub internal: bool,
}

/// The table, maps, base chains and their fixed rules.
pub(crate) fn base(table: &str) -> String {
    let t = format!("inet {table}");
    let mut s = String::new();
    let _ = writeln!(s, "add table {t}");
    for (name, ty) in [
        (
            "pany4",
            "inet_proto . inet_service : ipv4_addr . inet_service",
        ),
        (
            "pip4",
            "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
        ),
        (
            "pany6",
            "inet_proto . inet_service : ipv6_addr . inet_service",
        ),
        (
            "pip6",
            "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
        ),
        ("post_oif", "ifname : verdict"),
        ("post_iif", "ifname : verdict"),
        ("fwd_iif", "ifname : verdict"),
        ("fwd_oif", "ifname : verdict"),
    ] {
        let _ = writeln!(s, "add map {t} {name} {{ type {ty}; }}");
    }
    let chains = [
        (
            "ports",
            "",
            vec![
                // The kernel cannot DNAT from ::1 (a loopback source may not leave `lo`, and
                // IPv6 has no route_localnet): [::1] is served by the container's relay
                // (berth-engine's loopback_relay) listening there, so it passes untranslated.
                "ip6 daddr ::1 return",
                "meta nfproto ipv4 meta l4proto { tcp, udp } dnat ip to ip daddr . meta l4proto . th dport map @pip4",
                "meta nfproto ipv4 meta l4proto { tcp, udp } dnat ip to meta l4proto . th dport map @pany4",
                "meta nfproto ipv6 meta l4proto { tcp, udp } dnat ip6 to ip6 daddr . meta l4proto . th dport map @pip6",
                "meta nfproto ipv6 meta l4proto { tcp, udp } dnat ip6 to meta l4proto . th dport map @pany6",
            ],
        ),
        // Ports are published on the host's own addresses: traffic arriving from outside or from
        // a container (hairpin) passes prerouting, the host's own (127.0.0.1 too) passes output.
        (
            "prerouting",
            "type nat hook prerouting priority -100; policy accept;",
            vec!["fib daddr type local jump ports"],
        ),
        (
            "output",
            "type nat hook output priority -100; policy accept;",
            vec!["fib daddr type local jump ports"],
        ),
        (
            "postrouting",
            "type nat hook postrouting priority 100; policy accept;",
            vec!["oifname vmap @post_oif", "iifname vmap @post_iif"],
        ),
        (
            "forward",
            "type filter hook forward priority 0; policy accept;",
            vec!["iifname vmap @fwd_iif", "oifname vmap @fwd_oif"],
        ),
    ];
    for (name, hook, rules) in chains {
        if hook.is_empty() {
            let _ = writeln!(s, "add chain {t} {name}");
        } else {
            let _ = writeln!(s, "add chain {t} {name} {{ {hook} }}");
        }
        let _ = writeln!(s, "flush chain {t} {name}");
        for r in rules {
            let _ = writeln!(s, "add rule {t} {name} {r}");
        }
    }
    s
}

fn ipkw(v6: bool) -> &'static str {
    if v6 { "ip6" } else { "ip" }
}

/// The network's chains and their verdict-map entries.
pub(crate) fn network_up(table: &str, n: &NetRules<'_>) -> String {
    let t = format!("inet {table}");
    let br = n.bridge;
    let ip = ipkw(n.subnet.is_v6());
    let sub = n.subnet;
    let mut s = String::new();
    let chain = |s: &mut String, name: String, map: &str, rules: &[String]| {
        let _ = writeln!(s, "add chain {t} {name}");
        let _ = writeln!(s, "flush chain {t} {name}");
        for r in rules {
            let _ = writeln!(s, "add rule {t} {name} {r}");
        }
        let _ = writeln!(s, "add element {t} {map} {{ \"{br}\" : jump {name} }}");
    };
    let mut out = Vec::new();
    if !sub.is_v6() {
        // The host reaching a port published on 127.0.0.1: the packet keeps its loopback source
        // after DNAT (allowed out of the bridge by route_localnet=1); masquerade it so the
        // container answers the gateway instead of its own loopback.
        out.push("ip saddr 127.0.0.0/8 masquerade".to_string());
    }
    // Hairpin: a container reaching a published port through a host address comes back out of
    // the bridge with its own source; masquerade so the reply goes back through the host.
    out.push(format!("{ip} saddr {sub} ct status dnat masquerade"));
    chain(&mut s, format!("po-{br}"), "post_oif", &out);
    if n.internal {
        chain(
            &mut s,
            format!("fi-{br}"),
            "fwd_iif",
            &[format!("oifname != \"{br}\" drop")],
        );
        chain(
            &mut s,
            format!("fo-{br}"),
            "fwd_oif",
            &[format!("iifname != \"{br}\" drop")],
        );
    } else {
        chain(
            &mut s,
            format!("pi-{br}"),
            "post_iif",
            &[format!("oifname != \"{br}\" {ip} saddr {sub} masquerade")],
        );
    }
    s
}

/// Remove the network's chains whether or not they exist.
pub(crate) fn network_down(table: &str, bridge: &str) -> String {
    let t = format!("inet {table}");
    let mut s = String::new();
    for (prefix, map) in [
        ("po", "post_oif"),
        ("pi", "post_iif"),
        ("fi", "fwd_iif"),
        ("fo", "fwd_oif"),
    ] {
        let name = format!("{prefix}-{bridge}");
        let _ = writeln!(s, "add chain {t} {name}");
        let _ = writeln!(s, "add element {t} {map} {{ \"{bridge}\" : jump {name} }}");
        let _ = writeln!(
            s,
            "delete element {t} {map} {{ \"{bridge}\" : jump {name} }}"
        );
        let _ = writeln!(s, "delete chain {t} {name}");
    }
    s
}

fn port_element(p: &PublishedPort, ctr: IpAddr) -> (String, String) {
    let v6 = ctr.is_ipv6();
    let fam = if v6 { "6" } else { "4" };
    match p.host_ip {
        None => (
            format!("pany{fam}"),
            format!(
                "{} . {} : {} . {}",
                p.proto, p.host_port, ctr, p.container_port
            ),
        ),
        Some(h) => (
            format!("pip{fam}"),
            format!(
                "{} . {} . {} : {} . {}",
                h, p.proto, p.host_port, ctr, p.container_port
            ),
        ),
    }
}

/// Publish `ports` of the container at `ctr`.
pub(crate) fn ports_add(table: &str, ctr: IpAddr, ports: &[PublishedPort]) -> String {
    let mut s = String::new();
    for p in ports {
        let (map, el) = port_element(p, ctr);
        let _ = writeln!(s, "add element inet {table} {map} {{ {el} }}");
    }
    s
}

/// Unpublish `ports`, whether or not they are there.
pub(crate) fn ports_del(table: &str, ctr: IpAddr, ports: &[PublishedPort]) -> String {
    let mut s = String::new();
    for p in ports {
        let (map, el) = port_element(p, ctr);
        let _ = writeln!(s, "add element inet {table} {map} {{ {el} }}");
        let _ = writeln!(s, "delete element inet {table} {map} {{ {el} }}");
    }
    s
}

/// Delete the whole table, whether or not it exists.
pub(crate) fn table_delete(table: &str) -> String {
    format!("add table inet {table}\ndelete table inet {table}\n")
}

fn nft_binary() -> &'static str {
    #[cfg(test)]
    if let Some(p) = TEST_NFT.with(|p| p.get()) {
        return p;
    }
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nft")
}

#[cfg(test)]
thread_local! {
    static TEST_NFT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Run one batch: `nft -f -`, atomically applied by the kernel or not at all.
pub(crate) fn apply(table: &str, batch: &str) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut child = Command::new(nft_binary())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::NftMissing(format!("cannot run nft: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let write = stdin.write_all(batch.as_bytes());
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| Error::NftMissing(format!("nft: {e}")))?;
    write.map_err(|e| Error::NftMissing(format!("writing to nft: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.contains("Protocol not supported") || stderr.contains("Operation not supported") {
        return Err(Error::NftMissing(stderr));
    }
    Err(Error::Nft {
        table: table.to_string(),
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Proto;

    #[test]
    fn ipv6_loopback_is_left_to_the_relay() {
        let b = base("bt");
        let pass = b
            .find("ip6 daddr ::1 return")
            .expect("::1 passes untranslated");
        let dnat = b.find("dnat ip6 to").expect("a v6 DNAT rule");
        assert!(pass < dnat, "{b}");
    }

    #[test]
    fn missing_nft_is_a_clear_error() {
        TEST_NFT.with(|p| p.set(Some("/nonexistent/nft")));
        let e = apply("bt", "add table inet bt\n").unwrap_err().to_string();
        TEST_NFT.with(|p| p.set(None));
        assert!(e.contains("nftables") && e.contains("nft"), "{e}");
    }

    #[test]
    fn batches_stay_in_the_table() {
        let n = NetRules {
            bridge: "br-x",
            subnet: "10.89.5.0/24".parse().unwrap(),
            internal: false,
        };
        let p = [PublishedPort {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
            ipv6: false,
        }];
        let all = [
            base("bt"),
            network_up("bt", &n),
            network_down("bt", "br-x"),
            ports_add("bt", "10.89.5.2".parse().unwrap(), &p),
            ports_del("bt", "10.89.5.2".parse().unwrap(), &p),
            table_delete("bt"),
        ]
        .concat();
        for line in all.lines() {
            assert!(line.contains(" inet bt"), "{line}");
            assert!(!line.starts_with("flush ruleset"), "{line}");
        }
        let add = ports_add("bt", "10.89.5.2".parse().unwrap(), &p);
        assert_eq!(
            add,
            "add element inet bt pip4 { 127.0.0.1 . tcp . 8080 : 10.89.5.2 . 80 }\n"
        );
        assert!(
            network_up("bt", &n).contains("oifname != \"br-x\" ip saddr 10.89.5.0/24 masquerade")
        );
        let internal = network_up(
            "bt",
            &NetRules {
                internal: true,
                ..n
            },
        );
        assert!(internal.contains("fwd_iif") && !internal.contains("post_iif"));
    }
}
