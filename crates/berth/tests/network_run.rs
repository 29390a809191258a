//! `berth run` on bridge networks, as a person uses them: the default bridge, user networks
//! with names and aliases, published ports reached from the host on 127.0.0.1 (TCP, UDP, `-P`,
//! a free port), hairpin, `--network container:`, `--internal`, parallel starts, the seed's
//! redis benchmark over a published port, teardown on `rm`, `stop` and a SIGKILLed monitor,
//! and bad input refused with nothing set up. Only loopback and the bridges these tests make
//! are contacted; containers get `--dns 127.0.0.1` (their own loopback), never the host's
//! resolver.
//!
//! Every test runs on its own root, so it has its own nftables table and default bridge (named
//! from a hash of the root) and its own subnets (claimed host-wide): tests in parallel never
//! see each other's state, and each checks that its own is gone at the end.

mod support_containers;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support_containers::{Env, can_run, text};

const NO_DNS: &str = "--dns=127.0.0.1";

fn sh(line: &str) -> String {
    text(
        &Command::new("sh")
            .args(["-c", line])
            .output()
            .unwrap()
            .stdout,
    )
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A test's world on bridge networks: the container harness, plus a check on drop that the
/// kernel holds nothing of this root (bridges, veths, the table, leases).
struct Net {
    env: Env,
    veths: std::sync::Mutex<Vec<String>>,
}

impl Net {
    fn new() -> Net {
        Net {
            env: Env::new(),
            veths: Default::default(),
        }
    }

    /// This root's nftables table and default bridge.
    fn kernel_names(&self) -> (String, String) {
        berth_engine::network::kernel_names(&self.env.root)
    }

    /// `run -d` on the busybox rootfs; remembers the container's host veths.
    fn detached(&self, flags: &[&str], command: &[&str]) -> String {
        let f = with_network(flags);
        let id = self.env.run_detached(&f, command);
        self.remember(&id);
        id
    }

    /// The container's attachments (its network.json); their host veths are remembered, to
    /// check at the end that they are gone.
    fn remember(&self, id: &str) -> serde_json::Value {
        let path = self
            .env
            .runroot
            .join("containers")
            .join(id)
            .join("network.json");
        let atts: serde_json::Value = std::fs::read(path)
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or_default();
        for a in atts.as_array().into_iter().flatten() {
            // A user-mode stack (slirp4netns) has no veth.
            let veth = a["host_veth"].as_str().unwrap();
            if !veth.is_empty() {
                self.veths.lock().unwrap().push(veth.to_string());
            }
        }
        atts
    }

    /// `run --rm` of a command; (exit code, stdout, stderr).
    fn run(&self, flags: &[&str], command: &[&str]) -> (i32, String, String) {
        let f = with_network(flags);
        self.env.run(&f, command)
    }

    fn ip_of(&self, name: &str) -> String {
        self.env.inspect(name, "{{.NetworkSettings.IPAddress}}")
    }

    /// The pids of this root's `[::1]` port relays (forked from a monitor, whose command line
    /// names the runroot) and slirp4netns processes (which run in a container's run dir).
    fn relays(&self) -> Vec<String> {
        let runroot = self.env.runroot.to_string_lossy().into_owned();
        let mut out = Vec::new();
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let dir = p.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let cwd = std::fs::read_link(dir.join("cwd")).unwrap_or_default();
            let ours = match comm.trim() {
                "berth-relay" => String::from_utf8_lossy(&cmdline).contains(&runroot),
                "slirp4netns" => cwd.starts_with(&self.env.runroot),
                _ => false,
            };
            if ours {
                out.push(format!(
                    "{} {}",
                    p.file_name().to_string_lossy(),
                    comm.trim()
                ));
            }
        }
        out
    }

    /// Everything of this root that must be gone once its containers are.
    fn assert_clean(&self) {
        let (table, bridge) = self.kernel_names();
        let gone = self.env.eventually(Duration::from_secs(10), || {
            self.veths.lock().unwrap().iter().all(|v| !link_exists(v))
        });
        assert!(gone, "veths left: {:?}", self.veths.lock().unwrap());
        for leases in std::fs::read_dir(self.env.runroot.join("networks"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".leases"))
        {
            let l: serde_json::Value =
                serde_json::from_slice(&std::fs::read(leases.path()).unwrap()).unwrap();
            assert_eq!(l["leases"], serde_json::json!([]), "{:?}", leases.path());
        }
        let relays = self
            .env
            .eventually(Duration::from_secs(10), || self.relays().is_empty());
        assert!(relays, "port relays left: {:?}", self.relays());
        self.env.ok(&["network", "prune", "-f"]);
        assert!(!link_exists(&bridge), "default bridge {bridge} left");
        assert!(
            !sh("nft list tables").contains(&format!("inet {table}\n")),
            "nft table {table} left"
        );
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for id in self.env.ids() {
            let _ = self.env.cmd(&["rm", "-f", &id]).output();
        }
        let _ = self.env.cmd(&["network", "prune", "-f"]).output();
        // Whatever prune could not take (a failed test's bridge), by name.
        let (table, bridge) = self.kernel_names();
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &table])
            .output();
        // The root goes with the temp dir: its subnets' host-wide claims go now.
        let _ = berth_network::release_claims(&self.env.root);
    }
}

/// `flags` with `--dns 127.0.0.1`, and `--network bridge` unless they name a network: the
/// harness makes `none` the default for the older suites.
fn with_network<'a>(flags: &[&'a str]) -> Vec<&'a str> {
    let mut f = vec![NO_DNS];
    if !flags.contains(&"--network") {
        f.push("--network=bridge");
    }
    f.extend_from_slice(flags);
    f
}

fn can_net(test: &str) -> bool {
    can_run(test, &["nft", "ip"])
}

/// A busybox httpd answering `body` on port 80 of the container.
fn httpd(body: &str) -> [String; 3] {
    [
        "sh".into(),
        "-c".into(),
        format!(
            "mkdir -p /w/{body} && echo {body} > /w/{body}/index.html && exec httpd -f -p 80 -h /w/{body}"
        ),
    ]
}

fn argv(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

/// GET / from the host; the body's last line.
fn get(addr: &str) -> String {
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if !out.is_empty() {
                return out.lines().last().unwrap_or_default().to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    String::new()
}

/// The shell line a client container runs to GET / of `host:port`.
fn wget_line(host: &str, port: u16) -> String {
    format!(
        "(for i in $(seq 50); do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} | tail -n 1); [ -n \"$r\" ] && echo \"$r\" && exit 0; sleep 0.1; done; exit 1)"
    )
}

/// Nothing listens on 127.0.0.1:`port` and nothing forwards it: a connection is refused at once.
/// (A forwarding left to a stopped container's address would time out instead.)
fn assert_refused(port: u16) {
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match TcpStream::connect_timeout(&to, Duration::from_secs(3)) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("127.0.0.1:{port} is still forwarded: {other:?}"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn default_bridge_ports_from_the_host_and_hairpin() {
    if !can_net("default_bridge_ports_from_the_host_and_hairpin") {
        return;
    }
    let n = Net::new();
    let (p1, p2) = (free_port(), free_port());
    // No --network: the default bridge, as docker's run does.
    let mut cmd = n.env.cmd(&[]);
    cmd.env_remove(support_containers::NETWORK_ENV);
    let rootfs = n.env.rootfs.to_str().unwrap();
    let (l1, l2) = (format!("127.0.0.1:{p1}:80"), format!("{p2}:80"));
    let mut args = vec![
        "run", "-d", "--name", "web", NO_DNS, "-p", &l1, "-p", &l2, "--rootfs", rootfs,
    ];
    let body = httpd("hello-web");
    args.extend(argv(&body));
    let out = cmd.args(&args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let atts = n.remember(&id);
    assert_eq!(atts[0]["network"], "bridge");
    assert_eq!(get(&format!("127.0.0.1:{p1}")), "hello-web");
    assert_eq!(get(&format!("127.0.0.1:{p2}")), "hello-web");
    // docker port, ps and inspect tell the same.
    let ports = n.env.ok(&["port", "web"]);
    assert!(
        ports.contains(&format!("80/tcp -> 127.0.0.1:{p1}")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("80/tcp -> 0.0.0.0:{p2}")),
        "{ports}"
    );
    assert_eq!(
        n.env.ok(&["port", "web", "80"]).lines().next().unwrap(),
        format!("127.0.0.1:{p1}")
    );
    let ps = n.env.ok(&["ps", "--format", "{{.Ports}} {{.Networks}}"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{p1}->80/tcp")) && ps.contains("bridge"),
        "{ps}"
    );
    let bindings = n.env.inspect("web", "{{json .HostConfig.PortBindings}}");
    assert!(
        bindings.contains(&format!("\"HostPort\":\"{p1}\"")) && bindings.contains("127.0.0.1"),
        "{bindings}"
    );
    let ip = n.ip_of("web");
    assert!(ip.starts_with("10."), "{ip}");
    // Another container on the default network: by IP, and through the published port on the
    // gateway (hairpin through the host's NAT).
    let gw = n.env.inspect("web", "{{.NetworkSettings.Gateway}}");
    let line = format!("{} && {}", wget_line(&ip, 80), wget_line(&gw, p2));
    let (code, out, err) = n.run(&["--network", "bridge"], &["sh", "-c", &line]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out, "hello-web\nhello-web\n");
    n.env.ok(&["rm", "-f", "web"]);
    // The forwarding went with it: the host's own (empty) port answers, not a dead address.
    assert_refused(p1);
    n.assert_clean();
}

#[test]
fn user_network_names_aliases_both_ways() {
    if !can_net("user_network_names_aliases_both_ways") {
        return;
    }
    let n = Net::new();
    n.env
        .ok(&["network", "create", "--subnet", "10.231.7.0/24", "front"]);
    let body = httpd("from-a");
    n.detached(
        &["--name", "a", "--network", "front", "--network-alias", "db"],
        &argv(&body),
    );
    let body = httpd("from-b");
    n.detached(
        &["--name", "b", "--network", "front", "--ip", "10.231.7.77"],
        &argv(&body),
    );
    assert_eq!(n.ip_of("b"), "10.231.7.77");
    // a started first, b second: each reaches the other by name; a also by its alias.
    for (from, to, want) in [
        ("a", "b", "from-b"),
        ("b", "a", "from-a"),
        ("b", "db", "from-a"),
    ] {
        let out = n.env.ok(&["exec", from, "sh", "-c", &wget_line(to, 80)]);
        assert_eq!(out.trim(), want, "{from} -> {to}");
    }
    // The network cannot go while in use.
    let out = n.env.berth(&["network", "rm", "front"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("front"), "{}", text(&out.stderr));
    // b leaves: a's hosts file forgets it.
    n.env.ok(&["rm", "-f", "b"]);
    let hosts = n.env.ok(&["exec", "a", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("10.231.7.77"), "{hosts}");
    n.env.ok(&["rm", "-f", "a"]);
    n.env.ok(&["network", "rm", "front"]);
    n.assert_clean();
}

#[test]
fn udp_publish_all_and_a_free_port() {
    if !can_net("udp_publish_all_and_a_free_port") {
        return;
    }
    let n = Net::new();
    let rootfs = n.env.rootfs.to_str().unwrap();
    // An image that exposes 80/tcp, for -P.
    n.env
        .ok(&["import", "--change", "EXPOSE 80", rootfs, "exposer"]);
    let body = httpd("exposed");
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "web",
        NO_DNS,
        "--network=bridge",
        "-P",
        "exposer",
    ];
    args.extend(argv(&body));
    let id = n.env.ok(&args).trim().to_string();
    n.remember(&id);
    let port = n.env.ok(&["port", "web", "80/tcp"]);
    let addr = port.lines().next().unwrap().replace("0.0.0.0", "127.0.0.1");
    assert_eq!(get(&addr), "exposed");

    // UDP on a host port the kernel picks (`-p IP::CTRPORT/udp`). busybox has no UDP server:
    // the host's python3 answers, from the host's /usr mounted read-only.
    n.detached(
        &[
            "--name",
            "echo",
            "-p",
            "127.0.0.1::5353/udp",
            "-v",
            "/usr:/usr:ro",
            "-v",
            "/usr/lib:/lib:ro",
            "-v",
            "/usr/lib64:/lib64:ro",
        ],
        &[
            "/usr/bin/python3",
            "-c",
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 5353))\nwhile True:\n    d, a = s.recvfrom(100)\n    s.sendto(b'echo:' + d, a)",
        ],
    );
    let port = n.env.ok(&["port", "echo", "5353/udp"]);
    let addr = port.trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    let answered = n.env.eventually(Duration::from_secs(15), || {
        let _ = sock.send_to(b"ping-udp", &addr);
        // The answer comes back from the published address (the reply is un-NATed).
        matches!(sock.recv_from(&mut buf), Ok((len, from))
            if &buf[..len] == b"echo:ping-udp" && from.to_string() == addr)
    });
    assert!(answered, "no UDP answer from {addr}");
    n.env.ok(&["rm", "-f", "web", "echo"]);
    n.assert_clean();
}

#[test]
fn container_network_mode_shares_the_stack() {
    if !can_net("container_network_mode_shares_the_stack") {
        return;
    }
    let n = Net::new();
    let body = httpd("shared");
    n.detached(&["--name", "web", "--network", "bridge"], &argv(&body));
    let ip = n.ip_of("web");
    // Same interfaces and address; the server is on its loopback.
    let (code, out, err) = n.env.run(
        &["--network", "container:web"],
        &[
            "sh",
            "-c",
            &format!(
                "ip -o -4 addr show eth0 | grep -q ' {ip}/' && {}",
                wget_line("127.0.0.1", 80)
            ),
        ],
    );
    assert_eq!((code, out.as_str()), (0, "shared\n"), "{err}");
    // Flags that belong to the other container are refused.
    let (code, _, err) = n
        .env
        .run(&["--network", "container:web", "-p", "80"], &["true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("-p/--publish"), "{err}");
    // An unknown or stopped peer.
    let (code, _, err) = n.env.run(&["--network", "container:nosuch"], &["true"]);
    assert_eq!(code, 125);
    assert!(err.contains("nosuch"), "{err}");
    n.env.ok(&["stop", "-t", "1", "web"]);
    let (code, _, err) = n.env.run(&["--network", "container:web"], &["true"]);
    assert_ne!(code, 0);
    assert!(err.contains("not running"), "{err}");
    n.env.ok(&["rm", "-f", "web"]);
    n.assert_clean();
}

#[test]
fn internal_network_has_no_way_out() {
    if !can_net("internal_network_has_no_way_out") {
        return;
    }
    let n = Net::new();
    n.env.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.231.8.0/24",
        "sealed",
    ]);
    n.env
        .ok(&["network", "create", "--subnet", "10.231.9.0/24", "open"]);
    let body = httpd("outside");
    n.detached(&["--name", "target", "--network", "bridge"], &argv(&body));
    let ip = n.ip_of("target");
    // From another (non-internal) network the target is reachable through the host...
    let (code, out, err) = n.run(&["--network", "open"], &["sh", "-c", &wget_line(&ip, 80)]);
    assert_eq!((code, out.as_str()), (0, "outside\n"), "{err}");
    // ...from the internal one it is not, and there is no default route.
    let line = format!(
        "ip route | grep -q default && echo has-default; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80; echo done"
    );
    let (code, out, _) = n.run(&["--network", "sealed"], &["sh", "-c", &line]);
    assert_eq!((code, out.as_str()), (0, "done\n"));
    n.env.ok(&["rm", "-f", "target"]);
    n.env.ok(&["network", "rm", "sealed", "open"]);
    n.assert_clean();
}

#[test]
fn twenty_parallel_runs_get_distinct_addresses() {
    if !can_net("twenty_parallel_runs_get_distinct_addresses") {
        return;
    }
    let n = Net::new();
    n.env
        .ok(&["network", "create", "--subnet", "10.231.10.0/24", "many"]);
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let n = &n;
                s.spawn(move || {
                    let name = format!("c{i}");
                    let rootfs = n.env.rootfs.to_str().unwrap();
                    n.env
                        .ok(&[
                            "run",
                            "-d",
                            "--name",
                            &name,
                            NO_DNS,
                            "--network",
                            "many",
                            "--rootfs",
                            rootfs,
                            "sleep",
                            "60",
                        ])
                        .trim()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<String> = (0..20).map(|i| n.ip_of(&format!("c{i}"))).collect();
    for id in &ids {
        n.remember(id);
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with("10.231.10.")), "{ips:?}");
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    n.env.ok(&args);
    n.env.ok(&["network", "rm", "many"]);
    n.assert_clean();
}

#[test]
fn teardown_on_stop_and_after_a_killed_monitor() {
    if !can_net("teardown_on_stop_and_after_a_killed_monitor") {
        return;
    }
    let n = Net::new();
    let p = free_port();
    let spec = format!("127.0.0.1:{p}:80");
    let body = httpd("stoppable");
    let id = n.detached(&["--name", "s", "-p", &spec], &argv(&body));
    assert_eq!(get(&format!("127.0.0.1:{p}")), "stoppable");
    // stop: the veth, the lease and the port go; start brings them back.
    n.env.ok(&["stop", "-t", "1", "s"]);
    let veth = n.veths.lock().unwrap()[0].clone();
    assert!(
        n.env
            .eventually(Duration::from_secs(10), || !link_exists(&veth)),
        "veth {veth} left after stop"
    );
    assert_refused(p);
    assert_eq!(n.env.ok(&["port", "s"]), "");
    n.env.ok(&["start", "s"]);
    assert_eq!(get(&format!("127.0.0.1:{p}")), "stoppable");
    n.remember(&id);
    // The monitor is SIGKILLed and the container dies with it: the next command settles it.
    let record = n.env.record(&id);
    let monitor = record["state"]["monitor_pid"].as_i64().unwrap();
    let pid = record["state"]["pid"].as_i64().unwrap();
    for p in [monitor, pid] {
        let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
    }
    assert!(n.env.eventually(Duration::from_secs(10), || {
        n.env
            .inspect("s", "{{.State.Status}}")
            .starts_with("exited")
    }));
    assert_eq!(n.env.ok(&["port", "s"]), "");
    n.env.ok(&["rm", "s"]);
    // A process that ends by itself: its monitor takes the network down before any rm.
    let p = free_port();
    let spec = format!("127.0.0.1:{p}:80");
    let id = n.detached(&["--name", "brief", "-p", &spec], &["sleep", "1"]);
    let veths = n.remember(&id);
    let veth = veths[0]["host_veth"].as_str().unwrap().to_string();
    assert!(link_exists(&veth));
    assert!(
        n.env
            .eventually(Duration::from_secs(10), || !link_exists(&veth)),
        "veth {veth} left after the container exited on its own"
    );
    // the monitor takes the network down, then records the exit
    assert!(n.env.eventually(Duration::from_secs(10), || {
        n.env.inspect("brief", "{{.State.Status}}") == "exited"
    }));
    assert_eq!(n.env.ok(&["port", "brief"]), "");
    n.env.ok(&["rm", "brief"]);
    n.assert_clean();
}

#[test]
fn bad_network_input_is_refused_with_nothing_set_up() {
    if !can_net("bad_network_input_is_refused_with_nothing_set_up") {
        return;
    }
    let n = Net::new();
    n.env
        .ok(&["network", "create", "--subnet", "10.231.11.0/24", "small"]);
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let busy_spec = format!("127.0.0.1:{busy_port}:80");
    let cases: [(&[&str], &str); 6] = [
        (&["--network", "nosuch"], "nosuch"),
        (&["--network", "small", "--ip", "10.9.9.9"], "10.9.9.9"),
        (&["-p", "80:abc"], "80:abc"),
        (&["-p", "70000:80"], "70000"),
        (&["-p", &busy_spec], &busy_port.to_string()),
        (&["--mac-address", "zz"], "zz"),
    ];
    for (flags, needle) in cases {
        let (code, out, err) = n.run(flags, &["true"]);
        assert_eq!(code, 125, "{flags:?}: {out} {err}");
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
    // Nothing half made: no container, no lease, no veth of this root.
    assert!(n.env.ids().is_empty(), "{:?}", n.env.ids());
    drop(busy);
    n.env.ok(&["network", "rm", "small"]);
    n.assert_clean();
}

/// The host's redis-server and the libraries it links, copied into the busybox rootfs.
fn add_redis(rootfs: &Path) -> bool {
    let Some(bin) = ["/usr/bin/redis-server", "/usr/sbin/redis-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return false;
    };
    let ldd = sh(&format!("ldd {bin}"));
    let mut files = vec![bin.to_string()];
    for line in ldd.lines() {
        let path = match line.split("=>").nth(1) {
            Some(rest) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(p.to_string());
        }
    }
    for f in files {
        let dst = rootfs.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap();
    }
    true
}

/// The seed's benchmark: redis-server in a container limited to 256 MiB, published on
/// 127.0.0.1, `redis-benchmark -c 20 -t set -n 300 -d 1000000 -r 10000` from the host, until
/// the kernel kills it for memory; berth says so.
#[test]
fn seed_redis_benchmark_over_a_published_port() {
    if !can_run(
        "seed_redis_benchmark_over_a_published_port",
        &["nft", "redis-server", "redis-cli", "redis-benchmark", "ldd"],
    ) {
        return;
    }
    let n = Net::new();
    assert!(add_redis(&n.env.rootfs));
    let p = free_port();
    let spec = format!("127.0.0.1:{p}:6379");
    n.detached(
        &["--name", "redis", "-m", "256m", "-p", &spec],
        &[
            "redis-server",
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    );
    let up = n.env.eventually(Duration::from_secs(20), || {
        sh(&format!("redis-cli -h 127.0.0.1 -p {p} ping 2>/dev/null")).contains("PONG")
    });
    assert!(up, "redis did not answer on 127.0.0.1:{p}");
    let _ = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &p.to_string()])
        .args([
            "-c", "20", "-t", "set", "-n", "300", "-d", "1000000", "-r", "10000", "-q",
        ])
        .output()
        .unwrap();
    let killed = n.env.eventually(Duration::from_secs(30), || {
        n.env.inspect("redis", "{{.State.OOMKilled}}") == "true"
    });
    assert!(killed, "{}", n.env.inspect("redis", "{{json .State}}"));
    assert_eq!(n.env.inspect("redis", "{{.State.ExitCode}}"), "137");
    n.env.ok(&["rm", "redis"]);
    n.assert_clean();
}

/// The flags that shape a container's view of its network, each checked from inside it.
#[test]
fn mac_dns_search_add_host_and_no_hosts_inside() {
    if !can_net("mac_dns_search_add_host_and_no_hosts_inside") {
        return;
    }
    let n = Net::new();
    let line = "cat /sys/class/net/eth0/address; cat /etc/resolv.conf; grep -E 'gw|fixed' /etc/hosts; ip route | grep default";
    let (code, out, err) = n.run(
        &[
            "--mac-address",
            "02:42:0a:59:99:01",
            "--dns-search",
            "corp.example",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "gw:host-gateway",
            "--add-host",
            "fixed:192.0.2.7",
        ],
        &["sh", "-c", line],
    );
    assert_eq!(code, 0, "{err}");
    let gw = out
        .lines()
        .find_map(|l| l.strip_prefix("default via "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no default route: {out}"))
        .to_string();
    assert!(out.starts_with("02:42:0a:59:99:01\n"), "{out}");
    assert!(out.contains("nameserver 127.0.0.1"), "{out}");
    assert!(out.contains("search corp.example"), "{out}");
    assert!(out.contains("options ndots:2"), "{out}");
    // host-gateway is the network's gateway, as docker resolves it.
    assert!(
        out.lines().any(|l| l.starts_with(&gw) && l.ends_with("gw")),
        "gw -> {gw}: {out}"
    );
    assert!(out.contains("192.0.2.7\tfixed"), "{out}");
    // --no-hosts: the root's own /etc/hosts (here the empty mount point an earlier run left
    // in the shared --rootfs dir), not the one berth writes, which always names localhost.
    let (code, out, _) = n.run(
        &["--no-hosts"],
        &["sh", "-c", "cat /etc/hosts 2>/dev/null; echo end"],
    );
    assert_eq!(code, 0);
    assert!(
        !out.contains("localhost") && out.ends_with("end\n"),
        "{out}"
    );
    n.assert_clean();
}

/// The host's python3 inside the busybox rootfs (read-only mounts of /usr): busybox has no UDP
/// server and no raw sockets.
const HOST_PYTHON: [&str; 6] = [
    "-v",
    "/usr:/usr:ro",
    "-v",
    "/usr/lib:/lib:ro",
    "-v",
    "/usr/lib64:/lib64:ro",
];

fn ipv6_on_host() -> bool {
    Path::new("/proc/sys/net/ipv6/conf/all/forwarding").exists()
}

fn sysctl_value(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn ipv6_network_names_ports_and_loopback() {
    if !can_net("ipv6_network_names_ports_and_loopback") {
        return;
    }
    assert!(ipv6_on_host(), "the host has IPv6 off");
    let n = Net::new();
    // docker's --ipv6 is dual-stack, which a one-subnet network cannot be: said, not ignored.
    let out = n.env.berth(&["network", "create", "--ipv6", "v6x"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("--ipv6"),
        "{}",
        text(&out.stderr)
    );
    n.env.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd42:b7::/64",
        "six",
    ]);
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let (l1, l2, l3) = (
        format!("[::1]:{p1}:80"),
        format!("{p2}:80"),
        format!("{p3}:5353/udp"),
    );
    let body = httpd("hello-six");
    n.detached(
        &[
            "--name",
            "a",
            "--network",
            "six",
            "--network-alias",
            "web6",
            "-p",
            &l1,
            "-p",
            &l2,
        ],
        &argv(&body),
    );
    let ip = n.env.inspect("a", "{{.NetworkSettings.GlobalIPv6Address}}");
    let gw = n.env.inspect("a", "{{.NetworkSettings.IPv6Gateway}}");
    assert!(ip.starts_with("fd42:b7::"), "{ip}");
    assert_eq!(gw, "fd42:b7::1");
    // docker's fields: no IPv4 address on an IPv6 network.
    assert_eq!(n.env.inspect("a", "{{.NetworkSettings.IPAddress}}"), "");
    let ports = n.env.ok(&["port", "a"]);
    assert!(ports.contains(&format!("80/tcp -> [::1]:{p1}")), "{ports}");
    assert!(ports.contains(&format!("80/tcp -> [::]:{p2}")), "{ports}");
    // From the host: [::1] through the relay (the kernel cannot DNAT from ::1), the
    // every-address port on [::1] too, and on the gateway's address by DNAT.
    assert_eq!(get(&format!("[::1]:{p1}")), "hello-six");
    assert_eq!(get(&format!("[::1]:{p2}")), "hello-six");
    assert_eq!(get(&format!("[{gw}]:{p2}")), "hello-six");
    assert!(!n.relays().is_empty(), "no relay for the [::1] ports");
    // Names both ways, whichever started first, and hairpin through the gateway.
    n.detached(&["--name", "b", "--network", "six"], &["sleep", "1d"]);
    let line = format!(
        "{} && {} && {}",
        wget_line("a", 80),
        wget_line("web6", 80),
        wget_line(&gw, p2)
    );
    let out = n.env.ok(&["exec", "b", "sh", "-c", &line]);
    assert_eq!(out, "hello-six\nhello-six\nhello-six\n");
    let hosts = n.env.ok(&["exec", "a", "cat", "/etc/hosts"]);
    let b_ip = n.env.inspect("b", "{{.NetworkSettings.GlobalIPv6Address}}");
    assert!(hosts.contains(&format!("{b_ip}\tb ")), "{hosts}");
    // A port on an IPv4 address cannot reach an IPv6 network.
    let (code, _, err) = n.run(&["--network", "six", "-p", "127.0.0.1:8080:80"], &["true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("address family"), "{err}");
    // UDP on [::1], relayed.
    let mut flags = vec!["--name", "echo", "--network", "six", "-p", &l3];
    flags.extend(HOST_PYTHON);
    n.detached(
        &flags,
        &[
            "/usr/bin/python3",
            "-c",
            "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\ns.bind(('::', 5353))\nwhile True:\n    d, a = s.recvfrom(100)\n    s.sendto(b'echo:' + d, a)",
        ],
    );
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let to = format!("[::1]:{p3}");
    let mut buf = [0u8; 64];
    let answered = n.env.eventually(Duration::from_secs(15), || {
        let _ = sock.send_to(b"ping6", &to);
        matches!(sock.recv_from(&mut buf), Ok((len, _)) if &buf[..len] == b"echo:ping6")
    });
    assert!(answered, "no UDP answer on {to}");
    // A non-internal IPv6 network forwards (egress), and the bridge ignores advertisements.
    assert_eq!(sysctl_value("/proc/sys/net/ipv6/conf/all/forwarding"), "1");
    let nets: serde_json::Value =
        serde_json::from_str(&n.env.ok(&["network", "inspect", "six"])).unwrap();
    let bridge = nets[0]["network_interface"].as_str().unwrap().to_string();
    assert_eq!(
        sysctl_value(&format!("/proc/sys/net/ipv6/conf/{bridge}/accept_ra")),
        "0"
    );
    // stop: the relay goes with the container; start brings it back.
    n.env.ok(&["stop", "-t", "1", "a"]);
    assert!(
        n.env.eventually(Duration::from_secs(10), || {
            TcpStream::connect(format!("[::1]:{p1}")).is_err()
        }),
        "[::1]:{p1} still served after stop"
    );
    n.env.ok(&["start", "a"]);
    assert_eq!(get(&format!("[::1]:{p1}")), "hello-six");
    n.env.ok(&["rm", "-f", "a", "b", "echo"]);
    n.env.ok(&["network", "rm", "six"]);
    n.assert_clean();
}

#[test]
fn ipv4_ports_answer_on_ipv6_loopback_too() {
    if !can_net("ipv4_ports_answer_on_ipv6_loopback_too") {
        return;
    }
    assert!(ipv6_on_host(), "the host has IPv6 off");
    let n = Net::new();
    let p = free_port();
    let spec = format!("{p}:80");
    let body = httpd("both-loopbacks");
    n.detached(&["--name", "web", "-p", &spec], &argv(&body));
    // `localhost` is ::1 first to most programs: docker's proxy answers there, so does Berth.
    assert_eq!(get(&format!("127.0.0.1:{p}")), "both-loopbacks");
    assert_eq!(get(&format!("[::1]:{p}")), "both-loopbacks");
    // A SIGKILLed monitor leaves the container running (as a killed conmon does): its
    // ports, the relayed one too, keep working until it exits.
    let id = n.env.ids()[0].clone();
    let monitor = n.env.record(&id)["state"]["monitor_pid"].as_i64().unwrap();
    let _ = Command::new("kill")
        .args(["-9", &monitor.to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(&format!("[::1]:{p}")), "both-loopbacks");
    n.env.ok(&["rm", "-f", "web"]);
    n.assert_clean();
}

/// CVE-2020-13401: a container with NET_RAW (docker grants it) sends router advertisements
/// to its bridge. A host that listened would take a default route and an address through the
/// container. The attack is tried on the default network; the host's routes must not move and
/// the bridge must be set to ignore them (on a host that forwards IPv6 the kernel ignores
/// them anyway, so the setting is checked as well as the routes).
#[test]
fn router_advertisements_from_a_container_do_not_route_the_host() {
    if !can_net("router_advertisements_from_a_container_do_not_route_the_host") {
        return;
    }
    assert!(ipv6_on_host(), "the host has IPv6 off");
    let n = Net::new();
    let routes = || sh("ip -6 route show; ip -6 addr show");
    let before = routes();
    let attack = "import socket, struct\n\
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)\n\
        i = socket.if_nametoindex('eth0')\n\
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)\n\
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, i)\n\
        ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)\n\
        pio = struct.pack('!BBBBIII', 3, 4, 64, 0xC0, 3600, 3600, 0) + socket.inet_pton(socket.AF_INET6, 'fd66:13:401::')\n\
        for _ in range(3):\n    s.sendto(ra + pio, ('ff02::1', 0, 0, i))\n\
        print('sent')";
    let mut flags = vec!["--cap-add", "NET_RAW", "--network", "bridge"];
    flags.extend(HOST_PYTHON);
    // Wait for the container's link-local address (the advertisement's source) first.
    let line = format!(
        "for i in $(seq 50); do ip -6 addr show dev eth0 | grep -q 'fe80.*scope link $' && break; sleep 0.1; done; exec /usr/bin/python3 -c \"{attack}\""
    );
    let (code, out, err) = n.run(&flags, &["sh", "-c", &line]);
    assert_eq!((code, out.as_str()), (0, "sent\n"), "{err}");
    let (_, bridge) = n.kernel_names();
    assert_eq!(
        sysctl_value(&format!("/proc/sys/net/ipv6/conf/{bridge}/accept_ra")),
        "0"
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = routes();
    let taken = after.contains("fd66:13:401")
        || after
            .lines()
            .any(|l| l.contains("proto ra") && l.contains(&bridge));
    if taken {
        // Put the host back before failing.
        let _ = sh(&format!(
            "ip -6 route del default dev {bridge} proto ra; ip -6 route del fd66:13:401::/64 dev {bridge}; ip -6 addr flush dev {bridge} scope global dynamic"
        ));
    }
    assert!(
        !taken,
        "the host took a route from a container:\n{before}\n---\n{after}"
    );
    n.assert_clean();
}

/// `--network slirp4netns`: the user-mode stack (podman's rootless default), here as root.
/// Ports are slirp's own listeners on the host (and the relay's on [::1]); the host's loopback
/// is out of the container's reach unless `allow_host_loopback=true`. Nothing outside the host
/// is contacted: the only peer is a listener of the test's own on 127.0.0.1.
#[test]
fn slirp4netns_ports_and_the_host_loopback_rule() {
    if !can_run(
        "slirp4netns_ports_and_the_host_loopback_rule",
        &["slirp4netns", "nft", "ip"],
    ) {
        return;
    }
    let n = Net::new();
    let (p1, p2) = (free_port(), free_port());
    let (l1, l2) = (format!("127.0.0.1:{p1}:80"), format!("{p2}:80"));
    let body = httpd("user-mode");
    n.detached(
        &[
            "--name",
            "web",
            "--network",
            "slirp4netns",
            "-p",
            &l1,
            "-p",
            &l2,
        ],
        &argv(&body),
    );
    assert_eq!(get(&format!("127.0.0.1:{p1}")), "user-mode");
    assert_eq!(get(&format!("127.0.0.1:{p2}")), "user-mode");
    assert_eq!(get(&format!("[::1]:{p2}")), "user-mode");
    let ports = n.env.ok(&["port", "web"]);
    assert!(
        ports.contains(&format!("80/tcp -> 127.0.0.1:{p1}")),
        "{ports}"
    );
    assert_eq!(n.ip_of("web"), "10.0.2.100");
    let inside = n.env.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "ip -o -4 addr show tap0; ip route",
    ]);
    assert!(
        inside.contains("10.0.2.100/24") && inside.contains("default via 10.0.2.2"),
        "{inside}"
    );
    // The host's 127.0.0.1 through slirp's gateway: refused by default, reachable on request.
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = host.local_addr().unwrap().port();
    let greeter = std::thread::spawn(move || {
        if let Ok((mut c, _)) = host.accept() {
            let _ = c.write_all(b"host-loopback\n");
        }
    });
    let line = format!("nc -w 3 10.0.2.2 {hp} </dev/null; true");
    let (_, out, _) = n.run(&["--network", "slirp4netns"], &["sh", "-c", &line]);
    assert_eq!(out, "", "the host's loopback was reachable by default");
    let (code, out, err) = n.run(
        &["--network", "slirp4netns:allow_host_loopback=true"],
        &["sh", "-c", &line],
    );
    assert_eq!((code, out.as_str()), (0, "host-loopback\n"), "{err}");
    greeter.join().unwrap();
    // Bad options and flags that belong to bridges.
    for (flags, needle) in [
        (&["--network", "slirp4netns:mtu=0"][..], "mtu"),
        (&["--network", "slirp4netns:cidr=10.1.0.0/24"][..], "cidr"),
        (
            &["--network", "slirp4netns", "--ip", "10.0.2.5"][..],
            "--ip",
        ),
    ] {
        let (code, _, err) = n.run(flags, &["true"]);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
    let out = n.env.berth(&["network", "create", "slirp4netns"]);
    assert_eq!(out.status.code(), Some(125));
    // stop: slirp4netns and the relay go with the container.
    n.env.ok(&["stop", "-t", "1", "web"]);
    assert!(
        n.env
            .eventually(Duration::from_secs(10), || n.relays().is_empty()),
        "left after stop: {:?}",
        n.relays()
    );
    n.env.ok(&["rm", "-f", "web"]);
    n.assert_clean();
}

/// `network connect` and `disconnect` on a running container (docker's verbs): a second
/// interface with its address on the other network, the peers there reach it by name and by
/// its alias, disconnect takes the interface and the name away; a network's `-o mtu=` is the
/// MTU of the bridge and of the container's interface.
#[test]
fn connect_and_disconnect_a_running_container_and_the_mtu() {
    if !can_net("connect_and_disconnect_a_running_container_and_the_mtu") {
        return;
    }
    let n = Net::new();
    n.env.ok(&[
        "network",
        "create",
        "--subnet",
        "10.231.9.0/24",
        "-o",
        "mtu=1400",
        "back",
    ]);
    n.env
        .ok(&["network", "create", "--subnet", "10.231.10.0/24", "side"]);
    let body = httpd("from-web");
    n.detached(&["--name", "web", "--network", "side"], &argv(&body));
    n.detached(&["--name", "peer", "--network", "back"], &["sleep", "1000"]);
    // the peer's interface has the network's MTU
    let mtu = n
        .env
        .ok(&["exec", "peer", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1400");

    // web joins back: eth1 with an address of back, the MTU of back, a name and an alias there
    n.env.ok(&[
        "network",
        "connect",
        "--alias",
        "www",
        "--ip",
        "10.231.9.50",
        "back",
        "web",
    ]);
    // its new host veth must go too
    n.remember(&n.env.inspect("web", "{{.Id}}"));
    let addrs = n
        .env
        .ok(&["exec", "web", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(addrs.contains("10.231.9.50/24"), "{addrs}");
    let mtu = n.env.ok(&["exec", "web", "cat", "/sys/class/net/eth1/mtu"]);
    assert_eq!(mtu.trim(), "1400");
    for name in ["web", "www"] {
        let out = n
            .env
            .ok(&["exec", "peer", "sh", "-c", &wget_line(name, 80)]);
        assert_eq!(out.trim(), "from-web", "peer -> {name}");
    }
    let nets = n.env.inspect(
        "web",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert!(nets.contains("back") && nets.contains("side"), "{nets}");
    // connecting twice is refused, naming both
    let out = n.env.berth(&["network", "connect", "back", "web"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("already connected"),
        "{}",
        text(&out.stderr)
    );

    // disconnect: the interface goes, the peer no longer finds it by name
    n.env.ok(&["network", "disconnect", "back", "web"]);
    let links = n.env.ok(&["exec", "web", "ls", "/sys/class/net"]);
    assert!(!links.contains("eth1"), "{links}");
    let hosts = n.env.ok(&["exec", "peer", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("10.231.9.50"), "{hosts}");
    let out = n.env.berth(&["network", "disconnect", "back", "web"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("not connected"),
        "{}",
        text(&out.stderr)
    );
    // a stopped container cannot be connected
    n.env.ok(&["stop", "-t", "0", "peer"]);
    let out = n.env.berth(&["network", "connect", "side", "peer"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );

    n.env.ok(&["rm", "-f", "web", "peer"]);
    n.env.ok(&["network", "rm", "back", "side"]);
    n.assert_clean();
}
