//! Registry CA and client certificates as docker and podman read them: a TLS registry on
//! 127.0.0.1 with a certificate from a CA made here by openssl. Without the CA a pull fails
//! naming the host and the CA; with the CA in `$BERTH_CERTS_D/HOST:PORT/` (the stand-in for
//! /etc/containers/certs.d, so nothing here writes to /etc) or in a `--cert-dir` it works,
//! for pull, push and login; `--tls-verify=false` still does without. A registry that
//! requires client certificates gets the `NAME.cert`/`NAME.key` pair of the directory.

#[path = "../../image/tests/support_registry/mod.rs"]
mod support_registry;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_image::Store;
use support_registry::{Auth, CA_NAME, Images, PASSWORD, Registry, Tls, USER, registry_tools};

/// berth with a temp store, no host credentials, and `certs_d` as the only per-host
/// certificate root.
fn berth(root: &Path, certs_d: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.env("BERTH_DEFAULT_NETWORK", "none");
    cmd.arg("--root")
        .arg(root)
        .arg("--runroot")
        .arg(root.join("run"));
    cmd.env("REGISTRY_AUTH_FILE", root.join("auth.json"))
        .env_remove("DOCKER_CONFIG")
        .env("HOME", root)
        .env("BERTH_CERTS_D", certs_d);
    cmd.stdin(Stdio::null());
    cmd
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn images_in(root: &Path) -> usize {
    Store::open(root).unwrap().list().unwrap().len()
}

#[test]
fn a_ca_from_certs_d_or_cert_dir_is_trusted() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start_with(Auth::None, Tls::Ca);
    reg.push(&images.src("bb"), "t/bb:1", &[]);
    let tls = reg.tls.as_ref().unwrap();
    let work = tempfile::tempdir().unwrap();
    let certs_d = work.path().join("certs.d");
    fs::create_dir_all(&certs_d).unwrap();
    let name = format!("{}/t/bb:1", reg.addr);
    let id = images.config_digest("bb");
    let hex = id.trim_start_matches("sha256:");
    let fresh = |what: &str| {
        let root = work.path().join(what);
        fs::create_dir_all(&root).unwrap();
        root
    };

    // No CA: refused, naming the registry, the CA that signed its certificate and where a
    // CA would be read from; nothing stored.
    let root = fresh("none");
    let o = berth(&root, &certs_d)
        .args(["pull", &name])
        .output()
        .unwrap();
    let (_, stderr) = out(&o);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains(&format!("pinging container registry {}", reg.addr))
            && stderr.contains(&format!("https://{}/v2/", reg.addr))
            && stderr.contains(&format!(
                "certificate signed by unknown authority \"{CA_NAME}\""
            ))
            && stderr.contains(&format!("{}/ca.crt", certs_d.join(&reg.addr).display())),
        "{stderr}"
    );
    assert_eq!(images_in(&root), 0);

    // --tls-verify=false needs no CA.
    let o = berth(&root, &certs_d)
        .args(["pull", "-q", "--tls-verify=false", &name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o).1);
    assert_eq!(out(&o).0.trim(), hex);

    // The CA in HOST:PORT/ca.crt under the certs.d root.
    let host_dir = certs_d.join(&reg.addr);
    fs::create_dir_all(&host_dir).unwrap();
    fs::copy(&tls.ca, host_dir.join("ca.crt")).unwrap();
    let root = fresh("certs-d");
    let o = berth(&root, &certs_d)
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o).1);
    assert_eq!(out(&o).0.trim(), hex);

    // --cert-dir replaces the certs.d directory: an empty one trusts nothing more...
    let empty = work.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let o = berth(&fresh("empty-cert-dir"), &certs_d)
        .args(["pull", "-q", "--cert-dir"])
        .arg(&empty)
        .arg(&name)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", out(&o).1);
    assert!(out(&o).1.contains("unknown authority"), "{}", out(&o).1);
    // ...and any *.crt in it is a CA.
    fs::remove_dir_all(&host_dir).unwrap();
    let cert_dir = work.path().join("cert-dir");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(&tls.ca, cert_dir.join("my-registry-ca.crt")).unwrap();
    let root = fresh("cert-dir");
    let o = berth(&root, &certs_d)
        .args(["pull", "-q", "--cert-dir"])
        .arg(&cert_dir)
        .arg(&name)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o).1);
    assert_eq!(out(&o).0.trim(), hex);

    // Push too: refused without the CA, then with --cert-dir.
    let dest = format!("{}/t/pushed:2", reg.addr);
    let o = berth(&root, &certs_d)
        .args(["push", "-q", &name, &dest])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", out(&o).1);
    assert!(
        out(&o).1.contains("unknown authority") && out(&o).1.contains(&reg.addr),
        "{}",
        out(&o).1
    );
    let o = berth(&root, &certs_d)
        .args(["push", "-q", "--cert-dir"])
        .arg(&cert_dir)
        .args([&name, &dest])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o).1);
    assert_eq!(reg.manifest("t/pushed:2"), reg.manifest("t/bb:1"));

    // A --cert-dir that is not there, or a .crt that holds no certificate: named.
    let missing = work.path().join("no-such-dir");
    let o = berth(&root, &certs_d)
        .args(["pull", "--cert-dir"])
        .arg(&missing)
        .arg(&name)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        out(&o).1.contains(&missing.display().to_string()) && out(&o).1.contains("not a directory"),
        "{}",
        out(&o).1
    );
    fs::write(cert_dir.join("broken.crt"), "not a certificate\n").unwrap();
    let o = berth(&root, &certs_d)
        .args(["pull", "--cert-dir"])
        .arg(&cert_dir)
        .arg(&name)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        out(&o).1.contains("broken.crt") && out(&o).1.contains("no PEM certificate"),
        "{}",
        out(&o).1
    );
}

#[test]
fn login_over_tls_with_a_cert_dir() {
    if !registry_tools() {
        return;
    }
    let reg = Registry::start_with(Auth::Htpasswd, Tls::Ca);
    let tls = reg.tls.as_ref().unwrap();
    let work = tempfile::tempdir().unwrap();
    let certs_d = work.path().join("certs.d");
    let cert_dir = work.path().join("cert-dir");
    fs::create_dir_all(&cert_dir).unwrap();
    fs::copy(&tls.ca, cert_dir.join("ca.crt")).unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let login = |extra: &[&str]| {
        berth(&root, &certs_d)
            .args(["login", "-u", USER, "-p", PASSWORD])
            .args(extra)
            .arg(&reg.addr)
            .output()
            .unwrap()
    };
    let o = login(&[]);
    assert_eq!(o.status.code(), Some(125), "{}", out(&o).1);
    assert!(
        out(&o).1.contains(&reg.addr) && out(&o).1.contains(CA_NAME),
        "{}",
        out(&o).1
    );
    assert!(!root.join("auth.json").exists());
    let o = login(&["--cert-dir", cert_dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", out(&o).1);
    assert_eq!(out(&o).0, "Login Succeeded!\n");
    assert!(
        fs::read_to_string(root.join("auth.json"))
            .unwrap()
            .contains(&reg.addr)
    );
}

#[test]
fn a_client_certificate_pair_is_presented() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start_with(Auth::None, Tls::CaAndClientCerts);
    reg.push(&images.src("bb"), "t/bb:1", &[]);
    let tls = reg.tls.as_ref().unwrap();
    let work = tempfile::tempdir().unwrap();
    let certs_d = work.path().join("certs.d");
    let host_dir = certs_d.join(&reg.addr);
    fs::create_dir_all(&host_dir).unwrap();
    fs::copy(&tls.ca, host_dir.join("ca.crt")).unwrap();
    let name = format!("{}/t/bb:1", reg.addr);
    let root = work.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let pull = || {
        berth(&root, &certs_d)
            .args(["pull", "-q", &name])
            .output()
            .unwrap()
    };

    // The CA alone: the registry refuses the handshake.
    let o = pull();
    assert_eq!(o.status.code(), Some(125), "{}", out(&o).1);
    assert!(
        out(&o)
            .1
            .contains(&format!("pinging container registry {}", reg.addr)),
        "{}",
        out(&o).1
    );
    assert_eq!(images_in(&root), 0);

    // A .cert without its .key, a key that is not the certificate's: named.
    fs::copy(&tls.client_cert, host_dir.join("me.cert")).unwrap();
    let o = pull();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        out(&o).1.contains("me.cert") && out(&o).1.contains("missing key me.key"),
        "{}",
        out(&o).1
    );
    fs::copy(tls.ca.with_file_name("ca.key"), host_dir.join("me.key")).unwrap();
    let o = pull();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        out(&o).1.contains("me.key") && out(&o).1.contains("does not belong"),
        "{}",
        out(&o).1
    );

    // The pair: pulled.
    fs::copy(&tls.client_key, host_dir.join("me.key")).unwrap();
    let o = pull();
    assert!(o.status.success(), "{}", out(&o).1);
    assert_eq!(
        out(&o).0.trim(),
        images.config_digest("bb").trim_start_matches("sha256:")
    );
}
