//! Network definitions, bad input (each error names what is wrong and leaves nothing behind) and
//! names across containers (hosts files kept in sync), on the real kernel.

mod support;

use std::net::TcpListener;

use berth_network::{AttachRequest, CreateRequest, Error, HostsSpec, hosts_content, parse_publish};
use support::*;

#[test]
fn create_list_inspect_remove_prune() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    // The default network exists from the first look, avoiding docker's, podman's and the
    // host's subnets.
    let list = env.nets.list().unwrap();
    assert_eq!(
        list.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["bridge"]
    );
    let def = env.nets.inspect("bridge").unwrap();
    assert_eq!(def.bridge, format!("bt{}d", env.tag));
    let routes = sh("ip -o route show; ip -o -6 route show");
    for avoid in ["172.17.", "10.88."] {
        assert!(!def.subnet.to_string().starts_with(avoid), "{}", def.subnet);
    }
    assert!(
        !routes.contains(&def.subnet.to_string()),
        "{} in {routes}",
        def.subnet
    );
    assert_eq!(def.gateway, def.subnet.nth(1).unwrap());
    // An automatic subnet for a user network skips the default one.
    let auto = env
        .nets
        .create(&CreateRequest {
            name: "auto".into(),
            bridge: Some(env.bridge(1)),
            ..Default::default()
        })
        .unwrap();
    assert!(!auto.subnet.overlaps(&def.subnet));
    let n = env.network("web", 2, "10.231.20.0/24", true);
    assert_eq!(env.nets.inspect("web").unwrap(), n);
    let names: Vec<_> = env
        .nets
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["auto", "bridge", "web"]);
    // In use: refused, naming the holder; the default network can never go.
    let a = env.netns("a");
    let att = env.attach("web", "ctr-web", &a);
    let e = env.nets.remove("web").unwrap_err().to_string();
    assert!(e.contains("web") && e.contains("ctr-web"), "{e}");
    assert!(
        env.nets
            .remove("bridge")
            .unwrap_err()
            .to_string()
            .contains("bridge")
    );
    assert_eq!(env.nets.prune().unwrap(), vec!["auto".to_string()]);
    env.nets.detach(&att).unwrap();
    env.nets.remove("web").unwrap();
    assert!(matches!(
        env.nets.inspect("web"),
        Err(Error::UnknownNetwork(_))
    ));
    assert_clean(&env);
}

/// Nothing of a failed attach is left: no veth, no lease, no rule.
fn assert_nothing_from(env: &Env, network: &str) {
    assert!(env.nets.attachments(network).unwrap().is_empty());
    assert!(env.leases().is_empty(), "{:?}", env.leases());
    let links: Vec<_> = env
        .our_links()
        .into_iter()
        .filter(|l| l.starts_with('v'))
        .collect();
    assert!(links.is_empty(), "veths left: {links:?}");
    if env.table_exists() {
        let t = sh(&format!("nft list table inet {}", env.table));
        assert!(!t.contains(": 10.231.21."), "port rules left: {t}");
    }
}

#[test]
fn bad_input_errors_name_it_and_leave_nothing() {
    if !can_run() {
        return;
    }
    let mut env = Env::new();
    env.network("one", 1, "10.231.21.0/24", false);
    // Overlapping subnets: both networks named.
    let e = env
        .nets
        .create(&CreateRequest {
            name: "two".into(),
            subnet: Some("10.231.0.0/16".parse().unwrap()),
            bridge: Some(env.bridge(2)),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("two") && e.contains("one") && e.contains("10.231.21.0/24"),
        "{e}"
    );
    // A gateway outside, an existing name, a reserved name, a bad driver, a bad name.
    let e = env
        .nets
        .create(&CreateRequest {
            name: "gw".into(),
            subnet: Some("10.231.22.0/24".parse().unwrap()),
            gateway: Some("10.231.23.1".parse().unwrap()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("10.231.23.1"), "{e}");
    for (name, driver, want) in [
        ("one", None, "exists"),
        ("host", None, "predefined"),
        ("x", Some("macvlan"), "macvlan"),
        ("-x", None, "-x"),
    ] {
        let e = env
            .nets
            .create(&CreateRequest {
                name: name.into(),
                driver: driver.map(str::to_string),
                subnet: Some("10.231.24.0/24".parse().unwrap()),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
    assert_eq!(env.nets.list().unwrap().len(), 2);
    let a = env.netns("a");
    // Unknown network.
    let e = env
        .nets
        .attach(&AttachRequest::new("nosuch", "c", a.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nosuch"), "{e}");
    // Address outside the subnet, and reserved ones.
    for (ip, want) in [
        ("10.231.99.5", "outside"),
        ("10.231.21.1", "reserved"),
        ("10.231.21.255", "reserved"),
    ] {
        let mut req = AttachRequest::new("one", "c", a.path());
        req.ip = Some(ip.parse().unwrap());
        let e = env.nets.attach(&req).unwrap_err().to_string();
        assert!(e.contains(ip) && e.contains(want), "{e}");
        assert_nothing_from(&env, "one");
    }
    // A host port someone listens on: named, and nothing set up (no veth, no lease, no rule).
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let spec = format!("127.0.0.1:{port}:80");
    let mut req = AttachRequest::new("one", "c", a.path());
    req.ports = parse_publish(&spec).unwrap();
    let e = env.nets.attach(&req).unwrap_err().to_string();
    assert!(e.contains(&spec) && e.contains("in use"), "{e}");
    assert_nothing_from(&env, "one");
    assert!(a.ip("-o link").lines().count() == 1, "{}", a.ip("-o link"));
    // A host port another container publishes.
    let b = env.netns("b");
    let mut req = AttachRequest::new("one", "holder-b", b.path());
    req.ports = parse_publish("127.0.0.1::80").unwrap();
    let ab = env.nets.attach(&req).unwrap();
    let spec = format!("{}:81", ab.ports[0].host_port);
    let mut req = AttachRequest::new("one", "c", a.path());
    req.ports = parse_publish(&spec).unwrap();
    let e = env.nets.attach(&req).unwrap_err().to_string();
    assert!(e.contains(&spec) && e.contains("holder-b"), "{e}");
    // An address in use.
    let mut req = AttachRequest::new("one", "c", a.path());
    req.ip = Some(ab.ip);
    let e = env.nets.attach(&req).unwrap_err().to_string();
    assert!(
        e.contains(&ab.ip.to_string()) && e.contains("holder-b"),
        "{e}"
    );
    // A netns that does not exist: named, nothing left.
    let e = env
        .nets
        .attach(&AttachRequest::new(
            "one",
            "c",
            "/run/netns/berth-test-none",
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/run/netns/berth-test-none"), "{e}");
    env.nets.detach(&ab).unwrap();
    assert_nothing_from(&env, "one");
    // Malformed -p.
    let e = parse_publish("80:abc/tcp").unwrap_err().to_string();
    assert!(e.contains("80:abc/tcp"), "{e}");
}

#[test]
fn containers_reach_each_other_by_name_whichever_started_first() {
    if !can_run() {
        return;
    }
    // Remove /etc/netns afterwards only if this test made it.
    struct EtcNetns(bool);
    impl Drop for EtcNetns {
        fn drop(&mut self) {
            if self.0 {
                let _ = std::fs::remove_dir("/etc/netns");
            }
        }
    }
    // Declared before the Env: dropped after it, once the per-namespace dirs are gone.
    let _etc = EtcNetns(!std::path::Path::new("/etc/netns").exists());
    let mut env = Env::new();
    env.network("names", 1, "10.231.25.0/24", false);
    let (a, b) = (env.netns("a"), env.netns("b"));
    // `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts: the engine's bind
    // mount of the container's hosts file, for these stand-in containers.
    let hosts = |ns: &Ns| {
        let dir = std::path::Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("hosts")
    };
    let (ha, hb) = (hosts(&a), hosts(&b));
    let mut ra = AttachRequest::new("names", "ctr-a", a.path());
    ra.names = vec!["alpha".into(), "web".into()];
    ra.hosts_file = Some(ha.clone());
    let aa = env.nets.attach(&ra).unwrap();
    std::fs::write(
        &ha,
        hosts_content(&HostsSpec {
            own: vec![(aa.ip, ra.names.clone())],
            ..Default::default()
        }),
    )
    .unwrap();
    env.nets.sync_hosts("names").unwrap();
    // B starts second.
    let mut rb = AttachRequest::new("names", "ctr-b", b.path());
    rb.names = vec!["beta".into()];
    rb.hosts_file = Some(hb.clone());
    let ab = env.nets.attach(&rb).unwrap();
    std::fs::write(
        &hb,
        hosts_content(&HostsSpec {
            own: vec![(ab.ip, rb.names.clone())],
            ..Default::default()
        }),
    )
    .unwrap();
    env.nets.sync_hosts("names").unwrap();
    let _s = a.serve_tcp(7500, "a-by-name");
    assert_eq!(b.nc_retry("web", 7500, 30).as_deref(), Some("a-by-name"));
    let _s = b.serve_tcp(7501, "b-by-name");
    assert_eq!(a.nc_retry("beta", 7501, 30).as_deref(), Some("b-by-name"));
    // B leaves: A's hosts no longer lists it.
    env.nets.detach(&ab).unwrap();
    env.nets.sync_hosts("names").unwrap();
    let text = std::fs::read_to_string(&ha).unwrap();
    assert!(!text.contains("beta") && text.contains("alpha"), "{text}");
    env.nets.detach(&aa).unwrap();
}
