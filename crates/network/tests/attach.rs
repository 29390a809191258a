//! Real-kernel tests of attaching network namespaces to bridge networks: traffic between
//! "containers", published ports from the host (TCP and UDP, 127.0.0.1), hairpin, internal
//! networks, parallel attaches, reclaim after a crash. Every test checks nothing is left.

mod support;

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use berth_network::{AttachRequest, parse_publish};
use support::*;

#[test]
fn two_containers_talk_by_ip() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("front", 1, "10.231.1.0/24", false);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let aa = env.attach("front", "ctr-a", &a);
    let ab = env.attach("front", "ctr-b", &b);
    assert_ne!(aa.ip, ab.ip);
    assert_eq!(aa.gateway.to_string(), "10.231.1.1");
    // Inside: eth0 with the address and MAC recorded, lo up, default route via the gateway.
    let addr = a.ip("-o addr show dev eth0");
    assert!(addr.contains(&format!("{}/24", aa.ip)), "{addr}");
    assert!(a.ip("link show dev eth0").contains(&aa.mac.to_string()));
    assert!(a.ip("-o link show dev lo").contains("UP"));
    assert!(
        a.ip("route show default")
            .contains("via 10.231.1.1 dev eth0")
    );
    let _srv = a.serve_tcp(7000, "hello-from-a");
    assert_eq!(
        b.nc_retry(&aa.ip.to_string(), 7000, 30).as_deref(),
        Some("hello-from-a")
    );
    let _srv = b.serve_tcp(7001, "hello-from-b");
    assert_eq!(
        a.nc_retry(&ab.ip.to_string(), 7001, 30).as_deref(),
        Some("hello-from-b")
    );
    env.nets.detach(&aa).unwrap();
    env.nets.detach(&ab).unwrap();
    // Detach is idempotent: the same record again, after everything is gone, is fine.
    env.nets.detach(&aa).unwrap();
    assert_eq!(env.our_links(), vec![env.bridge(1)]);
    env.nets.remove("front").unwrap();
    assert_clean(&env);
}

#[test]
fn published_ports_reach_from_host_on_localhost_tcp_and_udp() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("pub", 1, "10.231.2.0/24", false);
    let a = env.netns("a");
    let mut req = AttachRequest::new("pub", "ctr-a", a.path());
    req.ports = [
        parse_publish("127.0.0.1::7000").unwrap(),
        parse_publish("7002").unwrap(),
        parse_publish("127.0.0.1::7001/udp").unwrap(),
    ]
    .concat();
    let att = env.nets.attach(&req).unwrap();
    assert_eq!(att.ports.len(), 3);
    let (tcp_lo, tcp_any, udp) = (
        att.ports[0].host_port,
        att.ports[1].host_port,
        att.ports[2].host_port,
    );
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    {
        let _srv = a.serve_tcp(7000, "tcp-on-localhost");
        assert_eq!(
            host_tcp(lo, tcp_lo, 30).as_deref(),
            Some("tcp-on-localhost")
        );
    }
    {
        // Published on every address: from the host through 127.0.0.1 and through the gateway.
        let _srv = a.serve_tcp(7002, "tcp-any-1");
        assert_eq!(host_tcp(lo, tcp_any, 30).as_deref(), Some("tcp-any-1"));
        let _srv = a.serve_tcp(7002, "tcp-any-2");
        assert_eq!(
            host_tcp(att.gateway, tcp_any, 30).as_deref(),
            Some("tcp-any-2")
        );
    }
    // UDP: a server inside answers each datagram with its source address.
    let server = a.in_thread(|| {
        let s = UdpSocket::bind("0.0.0.0:7001").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        s.send_to(
            format!("pong {} {}", String::from_utf8_lossy(&buf[..n]), from.ip()).as_bytes(),
            from,
        )
        .unwrap();
    });
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = None;
    for _ in 0..25 {
        c.send_to(b"ping", ("127.0.0.1", udp)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = c.recv(&mut buf) {
            got = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    server.join().unwrap();
    // The container saw the gateway as source (masqueraded), not its own loopback.
    assert_eq!(got, Some(format!("pong ping {}", att.gateway)));
    // Unpublished after detach: nothing answers on the port.
    env.nets.detach(&att).unwrap();
    assert!(host_tcp(lo, tcp_lo, 1).is_none());
    env.nets.remove("pub").unwrap();
    assert_clean(&env);
}

#[test]
fn hairpin_container_reaches_its_own_published_port() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("hair", 1, "10.231.3.0/24", false);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let mut req = AttachRequest::new("hair", "ctr-a", a.path());
    req.ports = parse_publish("7100").unwrap();
    let aa = env.nets.attach(&req).unwrap();
    let _ab = env.attach("hair", "ctr-b", &b);
    let port = aa.ports[0].host_port;
    let gw = aa.gateway.to_string();
    // Through a host address (the gateway is one): DNAT back to itself, masqueraded.
    let _srv = a.serve_tcp(7100, "hairpin-ok");
    assert_eq!(a.nc_retry(&gw, port, 30).as_deref(), Some("hairpin-ok"));
    let _srv = a.serve_tcp(7100, "peer-via-host-ok");
    assert_eq!(
        b.nc_retry(&gw, port, 30).as_deref(),
        Some("peer-via-host-ok")
    );
}

#[test]
fn internal_network_cannot_reach_outside() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let pub_net = env.network("egress", 1, "10.231.4.0/24", false);
    let int_net = env.network("sealed", 2, "10.231.5.0/24", true);
    assert!(int_net.internal);
    // "Outside": a namespace of our own behind a veth, with a server on 10.231.6.2.
    let out = env.netns("out");
    let hv = format!("bt{}o", env.tag);
    sh(&format!(
        "ip link add {hv} type veth peer name eth0 netns {ns} && ip addr add 10.231.6.1/24 dev {hv} && ip link set {hv} up && \
         echo 1 > /proc/sys/net/ipv4/conf/{hv}/forwarding",
        ns = out.name
    ));
    out.sh("ip addr add 10.231.6.2/24 dev eth0 && ip link set eth0 up && ip link set lo up");
    // Let the outside route back to the internal subnet, so only Berth's rules can stop it.
    out.sh("ip route add 10.231.5.0/24 via 10.231.6.1");
    let (c1, c2) = (env.netns("c1"), env.netns("c2"));
    let a1 = env.attach("egress", "ctr-1", &c1);
    let a2 = env.attach("sealed", "ctr-2", &c2);
    assert!(a1.default_route && !a2.default_route);
    // Berth turns forwarding on for its bridges itself (the host-wide ip_forward stays as it is);
    // the outside's veth is the test's, set above.
    for br in [&pub_net.bridge, &int_net.bridge] {
        assert_eq!(
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{br}/forwarding"))
                .unwrap()
                .trim(),
            "1"
        );
    }
    // The non-internal network gets out, masqueraded (the outside sees the host's address).
    let _srv = out.serve_tcp(7200, "outside");
    assert_eq!(
        c1.nc_retry("10.231.6.2", 7200, 30).as_deref(),
        Some("outside")
    );
    drop(_srv);
    let _srv = out.serve_tcp(7200, "outside");
    std::thread::sleep(Duration::from_millis(200));
    // The internal one has no route out ...
    assert!(c2.nc("10.231.6.2", 7200).is_none());
    // ... and with one added by hand, the forward drop still stops it.
    c2.sh(&format!("ip route add default via {}", a2.gateway));
    assert!(c2.nc("10.231.6.2", 7200).is_none());
    assert!(c2.nc("10.231.6.2", 7200).is_none());
    // Still reachable inside the internal network itself: the gateway answers pings, and a
    // second container talks to the first.
    c2.sh(&format!("/bin/busybox ping -c 1 -W 2 {}", a2.gateway));
    let c3 = env.netns("c3");
    let _a3 = env.attach("sealed", "ctr-3", &c3);
    let _srv2 = c2.serve_tcp(7201, "inside-internal");
    assert_eq!(
        c3.nc_retry(&a2.ip.to_string(), 7201, 30).as_deref(),
        Some("inside-internal")
    );
    sh(&format!("ip link del {hv}"));
}

#[test]
fn twenty_parallel_attaches_get_twenty_addresses() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("many", 1, "10.231.7.0/24", false);
    let nss: Vec<Ns> = (0..20).map(|i| env.netns(&format!("p{i}"))).collect();
    let atts: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let nets = &env.nets;
                s.spawn(move || {
                    nets.attach(&AttachRequest::new("many", &format!("h{i}"), ns.path()))
                        .unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<_> = atts.iter().map(|a| a.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20);
    assert_eq!(env.nets.attachments("many").unwrap().len(), 20);
    // Each really has its address.
    for (a, ns) in atts.iter().zip(&nss) {
        assert!(ns.ip("-o addr show dev eth0").contains(&a.ip.to_string()));
    }
    std::thread::scope(|s| {
        for a in &atts {
            let nets = &env.nets;
            s.spawn(move || nets.detach(a).unwrap());
        }
    });
    assert_eq!(env.our_links(), vec![env.bridge(1)]);
    assert!(env.leases().is_empty());
}

#[test]
fn dead_holders_are_reclaimed_and_reattach_replaces() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    let dead = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let d2 = dead.clone();
    env.set_liveness(move |h| !d2.lock().unwrap().iter().any(|x| x == h));
    env.network("rec", 1, "10.231.8.0/30", false);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let mut req = AttachRequest::new("rec", "crashed", a.path());
    req.ports = parse_publish("127.0.0.1::7300").unwrap();
    let first = env.nets.attach(&req).unwrap();
    // A /30 has one address for containers: the pool is full ...
    let e = env
        .nets
        .attach(&AttachRequest::new("rec", "next", b.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no free address") && e.contains("rec"), "{e}");
    // ... until its holder is dead: then its veth, rule and lease are reclaimed.
    dead.lock().unwrap().push("crashed".into());
    let second = env
        .nets
        .attach(&AttachRequest::new("rec", "next", b.path()))
        .unwrap();
    assert_eq!(second.ip, first.ip);
    assert!(!env.our_links().contains(&first.host_veth));
    let rules = sh(&format!("nft list table inet {}", env.table));
    assert!(!rules.contains(&format!("{} . 7300", first.ip)), "{rules}");
    // Attaching the same holder again replaces its attachment (a restart after a crash).
    let again = env
        .nets
        .attach(&AttachRequest::new("rec", "next", b.path()))
        .unwrap();
    assert_ne!(again.host_veth, second.host_veth);
    assert!(!env.our_links().contains(&second.host_veth));
    assert_eq!(env.nets.attachments("rec").unwrap().len(), 1);
    // The engine's explicit sweep.
    dead.lock().unwrap().push("next".into());
    let gone = env.nets.reclaim().unwrap();
    assert_eq!(gone.len(), 1);
    assert!(env.leases().is_empty());
}

#[test]
fn mac_and_ip_requests_are_honoured() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("fixed", 1, "10.231.9.0/24", false);
    let a = env.netns("a");
    let mut req = AttachRequest::new("fixed", "ctr-a", a.path());
    req.ip = Some("10.231.9.77".parse().unwrap());
    req.mac = Some("02:42:0a:e7:09:4d".parse().unwrap());
    let att = env.nets.attach(&req).unwrap();
    assert_eq!(att.ip.to_string(), "10.231.9.77");
    assert!(a.ip("link show dev eth0").contains("02:42:0a:e7:09:4d"));
    assert!(a.ip("-o addr show dev eth0").contains("10.231.9.77/24"));
}

#[test]
fn ipv6_subnet_gets_v6_addresses() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("six", 1, "fd00:be:17::/64", false);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let aa = env.attach("six", "ctr-a", &a);
    let _ab = env.attach("six", "ctr-b", &b);
    assert!(aa.ip.is_ipv6());
    assert!(a.ip("-6 route show default").contains("via fd00:be:17::1"));
    let _srv = a.serve_tcp(7400, "v6-ok");
    assert_eq!(
        b.nc_retry(&aa.ip.to_string(), 7400, 30).as_deref(),
        Some("v6-ok")
    );
}

#[test]
fn attach_and_detach_timing() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("speed", 1, "10.231.10.0/24", false);
    let nss: Vec<Ns> = (0..11).map(|i| env.netns(&format!("s{i}"))).collect();
    // The first attach creates the bridge and the network's rules.
    let t = Instant::now();
    let first = env.attach("speed", "warm", &nss[0]);
    let first_ms = elapsed_ms(t);
    let (mut att_ms, mut det_ms, mut port_att_ms, mut port_det_ms) =
        (vec![], vec![], vec![], vec![]);
    for (i, ns) in nss[1..].iter().enumerate() {
        let t = Instant::now();
        let a = env.attach("speed", &format!("c{i}"), ns);
        att_ms.push(elapsed_ms(t));
        let t = Instant::now();
        env.nets.detach(&a).unwrap();
        det_ms.push(elapsed_ms(t));
        let mut req = AttachRequest::new("speed", &format!("p{i}"), ns.path());
        req.ports = parse_publish("127.0.0.1::80").unwrap();
        let t = Instant::now();
        let a = env.nets.attach(&req).unwrap();
        port_att_ms.push(elapsed_ms(t));
        let t = Instant::now();
        env.nets.detach(&a).unwrap();
        port_det_ms.push(elapsed_ms(t));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    eprintln!(
        "timing: first attach (bridge + rules) {first_ms:.2} ms; attach {:.2} ms, detach {:.2} ms (median of 10); \
         with one published port: attach {:.2} ms, detach {:.2} ms",
        med(&mut att_ms),
        med(&mut det_ms),
        med(&mut port_att_ms),
        med(&mut port_det_ms)
    );
    // release(): the namespace is gone, the kernel deletes the veth with it, off our path.
    let gone = env.netns("gone");
    let a = env.attach("speed", "gone", &gone);
    sh(&format!("ip netns del {}", gone.name));
    let t = Instant::now();
    env.nets.release(&a).unwrap();
    let release_ms = elapsed_ms(t);
    let mut left = true;
    for _ in 0..50 {
        left = env.our_links().contains(&a.host_veth);
        if !left {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!left, "the kernel did not delete {}", a.host_veth);
    eprintln!("timing: release after the namespace is gone {release_ms:.2} ms");
    env.nets.detach(&first).unwrap();
}

#[test]
fn rules_come_back_after_someone_deletes_the_table() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("again", 1, "10.231.11.0/24", false);
    let (a, b) = (env.netns("a"), env.netns("b"));
    let _first = env.attach("again", "ctr-a", &a);
    // Someone flushes Berth's table while the bridge stays up.
    sh(&format!("nft delete table inet {}", env.table));
    let mut req = AttachRequest::new("again", "ctr-b", b.path());
    req.ports = parse_publish("127.0.0.1::7600").unwrap();
    let att = env.nets.attach(&req).unwrap();
    let _srv = b.serve_tcp(7600, "rebuilt");
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(
        host_tcp(lo, att.ports[0].host_port, 30).as_deref(),
        Some("rebuilt")
    );
}
