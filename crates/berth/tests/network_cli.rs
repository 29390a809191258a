//! `berth network create|ls|inspect|rm|prune` as a person runs them: the real binary on a temp
//! `--root`/`--runroot`, podman's output and exit codes, the refusals (overlapping subnets, a
//! gateway outside its subnet, reserved and invalid names, unknown drivers and networks), and
//! nothing left in the kernel afterwards (no bridge, no nftables table).

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// `network rm`/`prune` take bridges and nftables chains down: root and nft are needed.
fn can_run(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let nft = ["/usr/sbin/nft", "/sbin/nft"]
        .iter()
        .any(|p| Path::new(p).exists());
    if root && nft {
        return true;
    }
    let why = if root { "needs nft" } else { "needs root" };
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test}: {why}");
    }
    eprintln!("skipped: {test}: {why}");
    false
}

fn sh(line: &str) -> String {
    let out = Command::new("sh").args(["-c", line]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Links and nftables tables, to compare before and after.
fn kernel_state() -> (Vec<String>, String) {
    let links = sh("ip -o link show")
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with("br-") || n.starts_with("berth"))
        .collect();
    (links, sh("nft list tables"))
}

struct Env {
    dir: tempfile::TempDir,
    before: (Vec<String>, String),
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("berth-netcli-")
                .tempdir()
                .unwrap(),
            before: kernel_state(),
        }
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(BERTH)
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "{args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and expects exit `code` with `needle` in stderr.
    fn fails(&self, args: &[&str], code: i32, needle: &str) {
        let out = self.berth(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Whatever a failed test left: every user network goes (which takes their chains and
        // the table down), then compare.
        let out = self.berth(&["network", "prune", "-f"]);
        let _ = berth_network::release_claims(&self.dir.path().join("root"));
        let after = kernel_state();
        if !std::thread::panicking() {
            assert!(out.status.success());
            assert_eq!(after, self.before, "links or nftables tables left behind");
        }
    }
}

#[test]
fn create_ls_inspect_rm_prune() {
    if !can_run("create_ls_inspect_rm_prune") {
        return;
    }
    let env = Env::new();
    assert_eq!(
        env.ok(&[
            "network",
            "create",
            "--subnet",
            "10.232.10.0/24",
            "--label",
            "team=web",
            "front"
        ]),
        "front\n"
    );
    assert_eq!(
        env.ok(&[
            "network",
            "create",
            "--internal",
            "--subnet",
            "10.232.11.0/24",
            "--gateway",
            "10.232.11.254",
            "-d",
            "bridge",
            "back"
        ]),
        "back\n"
    );
    // ls: podman's table with the default network made on first use.
    let ls = env.ok(&["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert!(
        lines[0].starts_with("NETWORK ID")
            && lines[0].contains("NAME")
            && lines[0].contains("DRIVER"),
        "{ls}"
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names, ["back", "bridge", "front"], "{ls}");
    assert!(lines[1].split_whitespace().next().unwrap().len() == 12);
    assert_eq!(env.ok(&["network", "ls", "-q"]), "back\nbridge\nfront\n");
    assert_eq!(
        env.ok(&[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}}"
        ]),
        "back bridge \nbridge bridge \nfront bridge team=web\n"
    );
    assert_eq!(
        env.ok(&["network", "ls", "-q", "--filter", "label=team=web"]),
        "front\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["network", "ls", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);

    // inspect: podman's JSON.
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["network", "inspect", "back", "front"])).unwrap();
    let back = &v[0];
    assert_eq!(back["name"], "back");
    assert_eq!(back["id"].as_str().unwrap().len(), 64);
    assert_eq!(back["driver"], "bridge");
    assert_eq!(back["internal"], true);
    assert_eq!(back["subnets"][0]["subnet"], "10.232.11.0/24");
    assert_eq!(back["subnets"][0]["gateway"], "10.232.11.254");
    assert_eq!(v[1]["labels"]["team"], "web");
    assert_eq!(v[1]["subnets"][0]["gateway"], "10.232.10.1");
    assert_eq!(
        env.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Internal}}",
            "back"
        ]),
        "back true\n"
    );
    // The default network gets a subnet of its own, clear of docker's and podman's.
    let d: serde_json::Value =
        serde_json::from_str(&env.ok(&["network", "inspect", "bridge"])).unwrap();
    let sub = d[0]["subnets"][0]["subnet"].as_str().unwrap().to_string();
    assert!(
        sub.starts_with("10.") && !sub.starts_with("10.88."),
        "{sub}"
    );

    // rm and prune print what they removed; the default network stays.
    assert_eq!(env.ok(&["network", "rm", "back"]), "back\n");
    env.fails(&["network", "inspect", "back"], 125, "back");
    env.fails(&["network", "rm", "bridge"], 125, "cannot be removed");
    env.ok(&["network", "create", "--subnet", "10.232.12.0/24", "spare"]);
    assert_eq!(env.ok(&["network", "prune", "-f"]), "front\nspare\n");
    assert_eq!(env.ok(&["network", "ls", "-q"]), "bridge\n");
    assert_eq!(env.ok(&["network", "prune", "-f"]), "");
}

#[test]
fn bad_input_is_refused_and_nothing_is_stored() {
    if !can_run("bad_input_is_refused_and_nothing_is_stored") {
        return;
    }
    let env = Env::new();
    env.ok(&["network", "create", "--subnet", "10.232.20.0/24", "one"]);
    // Overlapping subnets: the error names both networks and subnets.
    env.fails(
        &["network", "create", "--subnet", "10.232.20.128/25", "two"],
        125,
        "overlaps subnet 10.232.20.0/24 of network one",
    );
    env.fails(
        &["network", "create", "--subnet", "10.232.0.0/16", "two"],
        125,
        "10.232.0.0/16",
    );
    env.fails(
        &["network", "create", "--subnet", "10.232.21.0/33", "two"],
        125,
        "10.232.21.0/33",
    );
    env.fails(
        &["network", "create", "--subnet", "nonsense", "two"],
        125,
        "nonsense",
    );
    env.fails(
        &[
            "network",
            "create",
            "--subnet",
            "10.232.22.0/24",
            "--gateway",
            "10.232.23.1",
            "two",
        ],
        125,
        "10.232.23.1",
    );
    env.fails(
        &["network", "create", "--gateway", "10.232.23.1", "two"],
        125,
        "--subnet",
    );
    env.fails(&["network", "create", "one"], 125, "already exists");
    env.fails(&["network", "create", "bridge"], 125, "predefined");
    env.fails(&["network", "create", "none"], 125, "predefined");
    env.fails(&["network", "create", "bad/name"], 125, "bad/name");
    env.fails(
        &["network", "create", "-d", "macvlan", "two"],
        125,
        "macvlan",
    );
    env.fails(&["network", "create", "-o", "mtu=12", "two"], 125, "mtu=12");
    env.fails(
        &["network", "ls", "--filter", "color=red"],
        125,
        "color=red",
    );
    // Unknown networks: podman's exit codes (rm 1, inspect 125), the others still done.
    env.fails(&["network", "rm", "nope"], 1, "nope");
    env.fails(&["network", "inspect", "nope"], 125, "nope");
    let out = env.berth(&["network", "rm", "nope", "one"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
    // Nothing half-stored by any refusal.
    assert_eq!(env.ok(&["network", "ls", "-q"]), "bridge\n");
    // prune without -f asks, and a closed stdin is a no.
    env.ok(&["network", "create", "--subnet", "10.232.24.0/24", "kept"]);
    assert_eq!(env.ok(&["network", "prune"]), "");
    assert_eq!(env.ok(&["network", "ls", "-q"]), "bridge\nkept\n");
}
