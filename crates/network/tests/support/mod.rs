//! Test support: a per-test environment (temp root/runroot, an nftables table, bridge and veth
//! names of its own) whose Drop tears everything down and checks nothing is left: no veth, no
//! netns, no lease, no table.
#![allow(dead_code)]

use std::io::Read;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_network::{AttachRequest, Attachment, CreateRequest, Networks};

/// Tests in one binary run one at a time: the before/after comparisons of links and netns
/// would otherwise see each other's.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let tools = Path::new("/bin/busybox").exists() && which("ip") && which("nft");
    if root && tools {
        return true;
    }
    let why = if root {
        "needs ip, nft and /bin/busybox"
    } else {
        "needs root"
    };
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("cannot run: {why}");
    }
    eprintln!("skipped: {why}");
    false
}

fn which(tool: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

pub fn sh(line: &str) -> String {
    let out = run(Command::new("sh").args(["-c", line]));
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rand_hex(n: usize) -> String {
    let mut b = [0u8; 8];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n].to_string()
}

fn link_names() -> Vec<String> {
    sh("ip -o link show")
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn netns_names() -> Vec<String> {
    sh("ip netns list")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// One test's world.
pub struct Env {
    pub tag: String,
    pub dir: tempfile::TempDir,
    pub nets: Networks,
    pub table: String,
    created_ns: Vec<String>,
    tables_before: String,
    _serial: MutexGuard<'static, ()>,
}

impl Env {
    pub fn new() -> Env {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let tag = rand_hex(5);
        let dir = tempfile::tempdir().unwrap();
        let table = format!("bt{tag}");
        let nets = Self::open_nets(dir.path(), &tag);
        let tables_before = sh("nft list tables")
            + &std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        Env {
            tag,
            dir,
            nets,
            table,
            created_ns: Vec::new(),
            tables_before,
            _serial: serial,
        }
    }

    fn open_nets(dir: &Path, tag: &str) -> Networks {
        Networks::open(&dir.join("root"), &dir.join("run"))
            .unwrap()
            .with_table(&format!("bt{tag}"))
            .with_default_bridge(&format!("bt{tag}d"))
            .with_veth_prefix(&format!("v{tag}"))
    }

    /// Reopen the networks with a liveness callback.
    pub fn set_liveness(&mut self, f: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.nets = Self::open_nets(self.dir.path(), &self.tag).with_liveness(f);
    }

    /// A bridge name of this test.
    pub fn bridge(&self, n: u32) -> String {
        format!("bt{}n{n}", self.tag)
    }

    /// Create a user network on `subnet` with a bridge of this test.
    pub fn network(
        &self,
        name: &str,
        n: u32,
        subnet: &str,
        internal: bool,
    ) -> berth_network::Network {
        self.nets
            .create(&CreateRequest {
                name: name.into(),
                subnet: Some(subnet.parse().unwrap()),
                internal,
                bridge: Some(self.bridge(n)),
                ..Default::default()
            })
            .unwrap()
    }

    /// A fresh network namespace standing in for a container.
    pub fn netns(&mut self, what: &str) -> Ns {
        let name = format!("berth-test-{}-{what}", self.tag);
        sh(&format!("ip netns add {name}"));
        self.created_ns.push(name.clone());
        Ns { name }
    }

    pub fn attach(&self, network: &str, holder: &str, ns: &Ns) -> Attachment {
        self.nets
            .attach(&AttachRequest::new(network, holder, ns.path()))
            .unwrap_or_else(|e| panic!("attach {holder} to {network}: {e}"))
    }

    pub fn our_links(&self) -> Vec<String> {
        link_names()
            .into_iter()
            .filter(|n| n.contains(&self.tag))
            .collect()
    }

    /// The holders of all leases in this test's run dir (lease files without leases only keep
    /// the allocation cursor).
    pub fn leases(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.dir.path().join("run/networks")) else {
            return vec![];
        };
        let mut out = Vec::new();
        for p in rd.filter_map(|e| e.ok().map(|e| e.path())) {
            if p.extension().is_some_and(|x| x == "leases") {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                for l in v["leases"].as_array().unwrap() {
                    out.push(format!("{}: {}", p.display(), l["holder"]));
                }
            }
        }
        out
    }

    pub fn table_exists(&self) -> bool {
        run(Command::new("nft").args(["list", "table", "inet", &self.table]))
            .status
            .success()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Tear down in the order the engine would: containers' attachments (their leases),
        // their namespaces, the networks.
        let cleanup = (|| -> berth_network::Result<()> {
            for n in self.nets.list()? {
                for a in self.nets.attachments(&n.name)? {
                    self.nets.detach(&a)?;
                }
            }
            self.nets.prune()?;
            self.nets.teardown_idle()?;
            // The root goes with the temp dir: its subnets' host-wide claims go now.
            berth_network::release_claims(&self.dir.path().join("root"))
        })();
        for ns in &self.created_ns {
            let _ = run(Command::new("ip").args(["netns", "del", ns]));
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
        let _ = run(Command::new("nft").args(["delete", "table", "inet", &self.table]));
        if std::thread::panicking() {
            return;
        }
        cleanup.expect("teardown");
        let links = self.our_links();
        assert!(links.is_empty(), "links left: {links:?}");
        let ns: Vec<_> = netns_names()
            .into_iter()
            .filter(|n| n.contains(&self.tag))
            .collect();
        assert!(ns.is_empty(), "netns left: {ns:?}");
        assert!(self.leases().is_empty(), "leases left: {:?}", self.leases());
        let rules = sh("nft list ruleset");
        assert!(
            !rules.contains(&self.table),
            "nft table {} left",
            self.table
        );
    }
}

/// Checks made after the test body, before Env's own cleanup: what the product removed by
/// itself (detach, remove) must already be gone.
pub fn assert_clean(env: &Env) {
    assert!(
        env.our_links().is_empty(),
        "links left: {:?}",
        env.our_links()
    );
    assert!(env.leases().is_empty(), "leases left: {:?}", env.leases());
    assert!(!env.table_exists(), "table {} left", env.table);
}

pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    pub fn sh(&self, line: &str) -> String {
        let out = run(&mut self.cmd(&["sh", "-c", line]));
        assert!(
            out.status.success(),
            "in {}: {line}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A one-shot TCP server: busybox nc answering `reply` to the first connection on `port`.
    pub fn serve_tcp(&self, port: u16, reply: &str) -> Server {
        let child = self
            .cmd(&[
                "sh",
                "-c",
                &format!("echo {reply} | exec /bin/busybox nc -l -p {port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it listens (the machine may be busy): clients then need no luck.
        let hex = format!(":{port:04X} ");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            let out = run(&mut self.cmd(&["cat", "/proc/net/tcp", "/proc/net/tcp6"]));
            let text = String::from_utf8_lossy(&out.stdout);
            if text.lines().any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(hex.trim()))
                    && l.split_whitespace().nth(3) == Some("0A")
            }) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child }
    }

    /// Connect with busybox nc from inside; the text received, or None when it fails.
    pub fn nc(&self, host: &str, port: u16) -> Option<String> {
        let out = run(self
            .cmd(&["/bin/busybox", "nc", "-w", "1", host, &port.to_string()])
            .stdin(Stdio::null()));
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    }

    /// Retry `nc` until it gets an answer (the server may not listen yet) or `tries` run out.
    pub fn nc_retry(&self, host: &str, port: u16, tries: u32) -> Option<String> {
        for _ in 0..tries {
            if let Some(s) = self.nc(host, port) {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Run `f` on a thread inside the namespace (a UDP server: busybox nc here has no -u).
    pub fn in_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let file = std::fs::File::open(self.path()).unwrap();
        std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            f()
        })
    }

    /// `ip -o addr`/`link` etc. inside.
    pub fn ip(&self, args: &str) -> String {
        self.sh(&format!("ip {args}"))
    }
}

pub struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connect from the host (this process's namespace) and read the reply.
pub fn host_tcp(addr: IpAddr, port: u16, tries: u32) -> Option<String> {
    for _ in 0..tries {
        if let Ok(mut s) =
            std::net::TcpStream::connect_timeout(&(addr, port).into(), Duration::from_secs(1))
        {
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

pub fn elapsed_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
