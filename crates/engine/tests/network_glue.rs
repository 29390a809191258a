//! The engine's network glue on a real kernel: "containers" are processes the test starts in
//! new network namespaces (`unshare --net`), with real records (their monitor is this test
//! process, so the liveness callback calls them alive). `setup` must give eth0 an address,
//! publish a port that answers on 127.0.0.1, write the hosts file and resolv.conf and keep the
//! peers' hosts files in sync; `teardown` must leave no veth, lease or nftables element; bad
//! input must leave nothing. No address outside what the test makes is contacted, and
//! net.ipv4.ip_forward is never changed.

use std::io::Read;
use std::net::{IpAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_engine::Engine;
use berth_engine::network::{self, Container, NetworkFlags, NetworkOptions};
use berth_engine::record::ContainerRecord;
use berth_network::CreateRequest;

/// One test at a time: they compare kernel state before and after.
static SERIAL: Mutex<()> = Mutex::new(());

fn can_run(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let tools = ["/bin/busybox", "/usr/bin/unshare", "/usr/bin/nsenter"]
        .iter()
        .all(|p| Path::new(p).exists())
        && ["/usr/sbin/nft", "/sbin/nft"]
            .iter()
            .any(|p| Path::new(p).exists())
        && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
            .iter()
            .any(|p| Path::new(p).exists());
    if root && tools {
        return true;
    }
    let why = if root {
        "needs busybox, unshare, nsenter, ip and nft"
    } else {
        "needs root"
    };
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test}: {why}");
    }
    eprintln!("skipped: {test}: {why}");
    false
}

fn sh(line: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", line]).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn rand_tag() -> String {
    let mut b = [0u8; 3];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A "container": a process in a new network namespace, with a record naming it.
struct Ctr {
    id: String,
    name: String,
    child: Child,
}

impl Ctr {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A shell line inside the container's namespace.
    fn sh(&self, line: &str) -> (bool, String) {
        sh(&format!(
            "nsenter -t {} -n /bin/busybox sh -c '{line}'",
            self.pid()
        ))
    }

    /// One TCP connection on `port` answered with `reply`; returns once it listens.
    fn serve(&self, port: u16, reply: &str) -> Child {
        let child = Command::new("nsenter")
            .args([
                "-t",
                &self.pid().to_string(),
                "-n",
                "/bin/busybox",
                "sh",
                "-c",
            ])
            .arg(format!("echo {reply} | exec /bin/busybox nc -l -p {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let want = format!(":{port:04X}");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            // busybox nc listens on :: where IPv6 is up: its socket is in tcp6.
            let (_, tcp) = self.sh("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null");
            if tcp.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
            }) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }
}

struct Env {
    dir: tempfile::TempDir,
    engine: Engine,
    ctrs: Vec<Ctr>,
    forward_before: String,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Env {
    fn new() -> Env {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("berth-netglue-")
            .tempdir()
            .unwrap();
        let engine = Engine::new(&dir.path().join("root"), &dir.path().join("run"));
        Env {
            dir,
            engine,
            ctrs: Vec::new(),
            forward_before: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            _serial: serial,
        }
    }

    fn table(&self) -> String {
        network::networks(&self.engine).unwrap().table().to_string()
    }

    fn network(&self, name: &str, subnet: &str) -> berth_network::Network {
        network::networks(&self.engine)
            .unwrap()
            .create(&CreateRequest {
                name: name.into(),
                subnet: Some(subnet.parse().unwrap()),
                ..Default::default()
            })
            .unwrap()
    }

    /// A record whose monitor is this process, and its process in a new network namespace.
    fn container(&mut self, name: &str) -> usize {
        let (id, name) = self.engine.records.reserve(Some(name)).unwrap();
        let me = std::process::id() as i32;
        let mut r = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: berth_engine::time::now(),
            ..Default::default()
        };
        r.state.monitor_pid = me;
        r.state.monitor_start_time = berth_container::state::proc_stat(me).unwrap().start_time;
        self.engine.records.save(&r).unwrap();
        let dir = self.engine.container_dir(&id);
        std::fs::write(dir.join("hosts"), "127.0.0.1\tlocalhost\n").unwrap();
        std::fs::write(dir.join("resolv.conf"), "").unwrap();
        let child = Command::new("unshare")
            .args(["--net", "/bin/busybox", "sleep", "120"])
            .spawn()
            .unwrap();
        let ctr = Ctr { id, name, child };
        // unshare has made the namespace once /proc/PID/ns/net differs from ours.
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let t = Instant::now();
        while std::fs::read_link(format!("/proc/{}/ns/net", ctr.pid())).ok() == Some(ours.clone())
            || std::fs::read_link(format!("/proc/{}/exe", ctr.pid()))
                .is_ok_and(|e| e.ends_with("unshare"))
        {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "unshare did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        ctr.sh("ip link set lo up");
        self.ctrs.push(ctr);
        self.ctrs.len() - 1
    }

    fn setup(
        &self,
        i: usize,
        opts: &NetworkOptions,
    ) -> berth_engine::network::Result<Vec<berth_network::Attachment>> {
        let c = &self.ctrs[i];
        network::setup(
            &self.engine,
            &Container {
                id: &c.id,
                name: &c.name,
                hostname: &c.id[..12],
                opts,
                exposed_ports: &["9090/tcp".to_string()],
                pid: c.pid(),
                container_dir: &self.engine.container_dir(&c.id),
                enable_forwarding: false,
            },
        )
        .map(|set| set.attachments)
    }

    fn hosts(&self, i: usize) -> String {
        std::fs::read_to_string(self.engine.container_dir(&self.ctrs[i].id).join("hosts")).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &mut self.ctrs {
            let _ = network::teardown(&self.engine, &c.id);
            let _ = c.child.kill();
            let _ = c.child.wait();
        }
        if let Ok(nets) = network::networks(&self.engine) {
            let _ = nets.prune();
            let _ = nets.teardown_idle();
        }
        let _ = berth_network::release_claims(&self.engine.root);
        let table = format!("inet {}", self.table());
        let (_, tables) = sh("nft list tables");
        if tables.contains(&table) {
            let _ = sh(&format!("nft delete table {table}"));
        }
        if !std::thread::panicking() {
            assert!(!tables.contains(&table), "table {table} left behind");
            assert_eq!(
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
                self.forward_before
            );
        }
        let _ = &self.dir;
    }
}

fn opts(network: &str, publish: &[&str], aliases: &[&str]) -> NetworkOptions {
    let publish: Vec<String> = publish.iter().map(|s| s.to_string()).collect();
    let aliases: Vec<String> = aliases.iter().map(|s| s.to_string()).collect();
    let add_host = vec!["gw:host-gateway".to_string()];
    NetworkOptions::parse(&NetworkFlags {
        network: Some(network),
        publish: &publish,
        aliases: &aliases,
        add_host: &add_host,
        publish_all: true,
        ..Default::default()
    })
    .unwrap()
}

fn host_tcp(port: u16) -> Option<String> {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    for _ in 0..50 {
        if let Ok(mut s) = TcpStream::connect_timeout(&(lo, port).into(), Duration::from_secs(1)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if !out.trim().is_empty() {
                return Some(out.trim().to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn link_exists(name: &str) -> bool {
    sh(&format!("ip link show dev {name} 2>/dev/null")).0
}

#[test]
fn setup_publishes_names_and_teardown_leaves_nothing() {
    if !can_run("setup_publishes_names_and_teardown_leaves_nothing") {
        return;
    }
    let mut env = Env::new();
    let tag = rand_tag();
    let net = env.network("glue", "10.233.1.0/24");
    let a = env.container(&format!("web-{tag}"));
    let b = env.container(&format!("db-{tag}"));

    let t = Instant::now();
    let atts = env
        .setup(a, &opts("glue", &["127.0.0.1::8080"], &["www"]))
        .unwrap();
    eprintln!(
        "setup of the first container (bridge and rules made): {:?}",
        t.elapsed()
    );
    assert_eq!(atts.len(), 1);
    let att = &atts[0];
    assert_eq!(att.network, "glue");
    assert!(net.subnet.contains(att.ip));
    // eth0 has the address, the default route goes via the gateway.
    let (_, addr) = env.ctrs[a].sh("ip -o addr show dev eth0");
    assert!(addr.contains(&format!("{}/24", att.ip)), "{addr}");
    let (_, route) = env.ctrs[a].sh("ip route show default");
    assert!(route.contains("via 10.233.1.1"), "{route}");
    // -p 127.0.0.1::8080 got a free host port, -P added the image's 9090/tcp.
    assert_eq!(att.ports.len(), 2);
    assert_eq!(att.ports[0].container_port, 8080);
    assert_eq!(att.ports[1].container_port, 9090);
    assert_eq!(network::ports(&env.engine, &env.ctrs[a].id), att.ports);
    // The published port answers on 127.0.0.1 from the host.
    let mut server = env.ctrs[a].serve(8080, "hello-from-web");
    assert_eq!(
        host_tcp(att.ports[0].host_port).as_deref(),
        Some("hello-from-web")
    );
    let _ = server.kill();
    let _ = server.wait();
    // Its hosts file: its own address and names, --add-host host-gateway; resolv.conf written.
    let hosts = env.hosts(a);
    let short = &env.ctrs[a].id[..12];
    assert!(
        hosts.contains(&format!("{}\t{short} web-{tag}\n", att.ip)),
        "{hosts}"
    );
    assert!(hosts.contains("10.233.1.1\tgw\n"), "{hosts}");
    let resolv = std::fs::read_to_string(
        env.engine
            .container_dir(&env.ctrs[a].id)
            .join("resolv.conf"),
    )
    .unwrap();
    assert!(resolv.contains("nameserver"), "{resolv}");
    let settings = network::settings_json(&env.engine, &env.ctrs[a].id);
    assert_eq!(
        settings["Networks"]["glue"]["IPAddress"],
        att.ip.to_string()
    );
    assert_eq!(settings["Ports"]["8080/tcp"][0]["HostIp"], "127.0.0.1");

    // A second container: both know each other by name (and alias), whichever came first.
    let btts = env.setup(b, &opts("glue", &[], &[])).unwrap();
    assert_ne!(btts[0].ip, att.ip);
    let (ha, hb) = (env.hosts(a), env.hosts(b));
    assert!(ha.contains(&format!("{}\tdb-{tag}", btts[0].ip)), "{ha}");
    assert!(hb.contains(&format!("{}\tweb-{tag} www", att.ip)), "{hb}");
    // They reach each other over the bridge.
    let mut server = env.ctrs[b].serve(7000, "hello-from-db");
    let (_, got) = env.ctrs[a].sh(&format!(
        "/bin/busybox nc -w 3 {} 7000 </dev/null",
        btts[0].ip
    ));
    assert_eq!(got.trim(), "hello-from-db");
    let _ = server.kill();
    let _ = server.wait();

    // Teardown: veth, lease and port elements go, the peer forgets the container.
    let table = env.table();
    let t = Instant::now();
    network::teardown(&env.engine, &env.ctrs[a].id).unwrap();
    eprintln!("teardown: {:?}", t.elapsed());
    assert!(!link_exists(&att.host_veth));
    let (_, rules) = sh(&format!("nft list table inet {table}"));
    for p in &att.ports {
        assert!(
            !rules.contains(&format!(": {} . {}", att.ip, p.container_port)),
            "port element left: {rules}"
        );
    }
    let nets = network::networks(&env.engine).unwrap();
    let leases = nets.attachments("glue").unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].holder, env.ctrs[b].id);
    assert!(
        !env.hosts(b).contains(&format!("web-{tag}")),
        "{}",
        env.hosts(b)
    );
    assert!(network::attachments(&env.engine, &env.ctrs[a].id).is_empty());
    // Idempotent.
    network::teardown(&env.engine, &env.ctrs[a].id).unwrap();
    network::teardown(&env.engine, &env.ctrs[b].id).unwrap();
    assert!(!link_exists(&btts[0].host_veth));
    assert!(nets.attachments("glue").unwrap().is_empty());
    // With no container left the network goes, and with it the bridge and the table.
    nets.remove("glue").unwrap();
    assert!(!link_exists(&net.bridge));
    let (_, tables) = sh("nft list tables");
    assert!(!tables.contains(&format!("inet {table}")), "{tables}");
}

#[test]
fn bad_input_leaves_nothing() {
    if !can_run("bad_input_leaves_nothing") {
        return;
    }
    let mut env = Env::new();
    let tag = rand_tag();
    env.network("glue2", "10.233.2.0/24");
    let a = env.container(&format!("a-{tag}"));
    let b = env.container(&format!("b-{tag}"));
    // At create: unknown network, --ip outside the subnet, unknown container: named.
    let e = network::check(&env.engine, &opts("nope", &[], &[])).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    let mut o = opts("glue2", &[], &[]);
    o.ip = Some("10.9.9.9".parse().unwrap());
    let e = network::check(&env.engine, &o).unwrap_err();
    assert!(e.to_string().contains("10.9.9.9"), "{e}");
    network::check(&env.engine, &opts("glue2", &[], &[])).unwrap();
    let ghost = NetworkOptions {
        network: "container:ghost".into(),
        ..Default::default()
    };
    let e = network::check(&env.engine, &ghost).unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
    // At setup: an unknown network.
    assert!(env.setup(a, &opts("nope", &[], &[])).is_err());
    // A host port already published by another container: refused, nothing of b is left.
    let atts = env
        .setup(a, &opts("glue2", &["127.0.0.1:18181:80"], &[]))
        .unwrap();
    let e = env
        .setup(b, &opts("glue2", &["127.0.0.1:18181:80"], &[]))
        .unwrap_err();
    assert!(e.to_string().contains("18181"), "{e}");
    let (_, links) = env.ctrs[b].sh("ip -o link");
    assert!(!links.contains("eth0"), "{links}");
    let nets = network::networks(&env.engine).unwrap();
    assert_eq!(nets.attachments("glue2").unwrap().len(), 1);
    assert!(network::attachments(&env.engine, &env.ctrs[b].id).is_empty());
    // none and host: nothing attached.
    assert!(env.setup(b, &opts("none", &[], &[])).unwrap().is_empty());
    network::teardown(&env.engine, &env.ctrs[a].id).unwrap();
    assert!(!link_exists(&atts[0].host_veth));
    assert!(nets.attachments("glue2").unwrap().is_empty());
}
