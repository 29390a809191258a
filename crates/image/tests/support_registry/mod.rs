//! Real registries for the registry tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 on a free port — anonymous, with htpasswd Basic auth, or with token auth
//! served by a small issuer in this process (RS256 JWTs signed by `openssl dgst`) — filled
//! by skopeo with images built by umoci. Everything lives in temp dirs and every process
//! is killed (by its pid) in Drop.

#![allow(dead_code)]

mod http;
mod token;

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use http::{Server, exchange, forward};
use token::TokenServer;
#[allow(unused_imports)]
pub use token::b64_std;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret";

/// Whether the tools a test needs are here; if not, the test is skipped (or fails when
/// BERTH_REQUIRE_ROOT=1, as CI sets it).
pub fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("BERTH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("needed tools missing: {missing:?}");
    }
    eprintln!("skipped: needs {missing:?}");
    false
}

pub fn registry_tools() -> bool {
    have(&["docker-registry", "skopeo", "umoci", "openssl", "htpasswd"])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Htpasswd,
    Token,
}

/// How a registry serves: plain http, https with a self-signed certificate, or https with
/// a certificate from a test CA (optionally requiring client certificates from that CA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Off,
    SelfSigned,
    Ca,
    CaAndClientCerts,
}

/// The files of a registry served with a test CA (all in the registry's temp dir).
pub struct TlsFiles {
    /// The CA certificate (PEM); its subject's CN is [`CA_NAME`].
    pub ca: PathBuf,
    /// A client certificate and key signed by the CA (for `Tls::CaAndClientCerts`).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A directory as skopeo's `--cert-dir` takes it: ca.crt, client.cert, client.key.
    pub skopeo_dir: PathBuf,
}

pub const CA_NAME: &str = "Berth Test CA";

pub struct Registry {
    pub addr: String,
    pub auth: Auth,
    pub tls: Option<TlsFiles>,
    child: Child,
    token: Option<TokenServer>,
    pub dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        Registry::start_with(auth, Tls::Off)
    }

    /// Serving https with a self-signed certificate for 127.0.0.1 (made here with openssl).
    pub fn start_tls() -> Registry {
        Registry::start_with(Auth::None, Tls::SelfSigned)
    }

    pub fn start_with(auth: Auth, tls: Tls) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth_cfg = String::new();
        let mut token = None;
        match auth {
            Auth::None => {}
            Auth::Htpasswd => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "htpasswd: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
                auth_cfg = format!(
                    "auth: {{htpasswd: {{realm: test-realm, path: {}}}}}\n",
                    dir.path().join("htpasswd").display()
                );
            }
            Auth::Token => {
                let server = TokenServer::start(dir.path());
                auth_cfg = format!(
                    "auth: {{token: {{realm: \"http://{}/token\", service: test-registry, issuer: test-issuer, rootcertbundle: {}}}}}\n",
                    server.addr,
                    server.cert.display()
                );
                token = Some(server);
            }
        }
        let (tls_cfg, tls_files) = match tls {
            Tls::Off => (String::new(), None),
            Tls::SelfSigned => (self_signed(dir.path()), None),
            Tls::Ca | Tls::CaAndClientCerts => {
                let (cfg, files) = ca_signed(dir.path(), tls == Tls::CaAndClientCerts);
                (cfg, Some(files))
            }
        };
        let config = format!(
            "version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\n\
             storage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\n\
             http: {{addr: \"{addr}\", secret: test{tls_cfg}}}\n{auth_cfg}",
            dir.path().join("storage").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            addr,
            auth,
            tls: tls_files,
            child,
            token,
            dir,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("HTTP/") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        panic!("registry on {} did not start: {log}", self.addr);
    }

    /// `--dest-creds` for skopeo when the registry wants them.
    fn creds_args(&self, flag: &str) -> Vec<String> {
        let mut args = match self.auth {
            Auth::None => vec![],
            _ => vec![format!("--{flag}-creds={USER}:{PASSWORD}")],
        };
        if let Some(tls) = &self.tls {
            args.push(format!("--{flag}-cert-dir={}", tls.skopeo_dir.display()));
        }
        args
    }

    /// Copies `src` (a skopeo source such as `oci:DIR:TAG`) to `REPO:TAG` here.
    pub fn push(&self, src: &str, dest: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--dest-tls-verify=false"])
            .args(self.creds_args("dest"))
            .args(extra);
        cmd.arg(src).arg(format!("docker://{}/{dest}", self.addr));
        run(&mut cmd);
    }

    /// Where the registry keeps blob `digest` (`sha256:<hex>`) on disk.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// The manifest bytes the registry serves for `REPO:TAG` (skopeo, with creds).
    pub fn manifest(&self, repo_tag: &str) -> Vec<u8> {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--raw", "--tls-verify=false"]);
        if self.auth != Auth::None {
            cmd.arg(format!("--creds={USER}:{PASSWORD}"));
        }
        if let Some(tls) = &self.tls {
            cmd.arg(format!("--cert-dir={}", tls.skopeo_dir.display()));
        }
        let out = cmd
            .arg(format!("docker://{}/{repo_tag}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for 127.0.0.1; the registry's `tls:` settings.
fn self_signed(dir: &Path) -> String {
    let (key, cert) = (dir.join("tls.key"), dir.join("tls.crt"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null()));
    format!(
        ", tls: {{certificate: {}, key: {}}}",
        cert.display(),
        key.display()
    )
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate it signed; the
/// registry's `tls:` settings (with `clientcas` when client certificates are required).
fn ca_signed(dir: &Path, client_certs: bool) -> (String, TlsFiles) {
    let ca_dir = dir.join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    let (ca_key, ca) = (ca_dir.join("ca.key"), ca_dir.join("ca.crt"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args(["-days", "2", "-subj", &format!("/CN={CA_NAME}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca)
        .stderr(Stdio::null()));
    let issue = |name: &str, cn: &str, ext: &str| -> (PathBuf, PathBuf) {
        let key = ca_dir.join(format!("{name}.key"));
        let csr = ca_dir.join(format!("{name}.csr"));
        let cert = ca_dir.join(format!("{name}.crt"));
        let ext_file = ca_dir.join(format!("{name}.ext"));
        std::fs::write(&ext_file, ext).unwrap();
        run(Command::new("openssl")
            .arg("req")
            .args(ec)
            .args(["-subj", &format!("/CN={cn}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .stderr(Stdio::null()));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext_file)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()));
        (cert, key)
    };
    let (server_cert, server_key) = issue(
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    let (client_cert, client_key) = issue(
        "client",
        "berth-test-client",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    let skopeo_dir = dir.join("skopeo-certs");
    std::fs::create_dir_all(&skopeo_dir).unwrap();
    std::fs::copy(&ca, skopeo_dir.join("ca.crt")).unwrap();
    std::fs::copy(&client_cert, skopeo_dir.join("client.cert")).unwrap();
    std::fs::copy(&client_key, skopeo_dir.join("client.key")).unwrap();
    let clientcas = if client_certs {
        format!(", clientcas: [{}]", ca.display())
    } else {
        String::new()
    };
    let cfg = format!(
        ", tls: {{certificate: {}, key: {}{clientcas}}}",
        server_cert.display(),
        server_key.display()
    );
    let files = TlsFiles {
        ca,
        client_cert,
        client_key,
        skopeo_dir,
    };
    (cfg, files)
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An OCI layout built with umoci: `bb` (busybox, then a second layer with /etc/hello and a
/// /data tree), `bb-arm64` (the same marked linux/arm64), `bb-arm` (linux/arm/v7) and
/// `multi`, an index of the three.
pub struct Images {
    pub dir: tempfile::TempDir,
}

impl Images {
    pub fn build() -> Images {
        Images::build_with(&[])
    }

    /// Also adds one layer per entry of `extra`: (name, bytes of pseudo-random content).
    pub fn build_with(extra: &[(&str, usize)]) -> Images {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let layout = d.join("oci");
        let img = |tag: &str| format!("{}:{tag}", layout.display());
        run(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout));
        run(Command::new("umoci").args(["new", "--image", &img("bb")]));
        // umoci repack diffs against the image the bundle was unpacked from: one fresh
        // unpack per layer.
        let bundle = d.join("bundle");
        let layer = |change: &dyn Fn(&Path)| {
            let _ = std::fs::remove_dir_all(&bundle);
            run(Command::new("umoci")
                .args(["unpack", "--image", &img("bb")])
                .arg(&bundle));
            change(&bundle.join("rootfs"));
            run(Command::new("umoci")
                .args(["repack", "--image", &img("bb")])
                .arg(&bundle));
        };
        layer(&|rootfs| {
            std::fs::create_dir_all(rootfs.join("bin")).unwrap();
            std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
            for applet in ["sh", "ls", "cat", "echo"] {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
            }
        });
        layer(&|rootfs| {
            std::fs::create_dir_all(rootfs.join("etc")).unwrap();
            std::fs::write(rootfs.join("etc/hello"), "hello from layer 2\n").unwrap();
            std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
            std::fs::write(rootfs.join("data/sub/file"), vec![b'x'; 100_000]).unwrap();
        });
        let seed = std::cell::Cell::new(0x9e37_79b9_7f4a_7c15u64);
        for (name, size) in extra {
            layer(&|rootfs| {
                let mut bytes = vec![0u8; *size];
                let mut x = seed.get();
                for chunk in bytes.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Half random, half zeros: compressible like real files, not trivially.
                    let v = if x & 1 == 0 { x.to_le_bytes() } else { [0; 8] };
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
                seed.set(x);
                std::fs::write(rootfs.join(name), bytes).unwrap();
            });
        }
        let _ = std::fs::remove_dir_all(&bundle);
        run(Command::new("umoci").args([
            "config",
            "--image",
            &img("bb"),
            "--config.cmd",
            "/bin/sh",
        ]));
        for (tag, arch, variant) in [("bb-arm64", "arm64", None), ("bb-arm", "arm", Some("v7"))] {
            run(Command::new("umoci").args(["tag", "--image", &img("bb"), tag]));
            run(Command::new("umoci").args([
                "config",
                "--image",
                &img(tag),
                "--architecture",
                arch,
            ]));
            let _ = variant;
        }
        let images = Images { dir };
        images.make_index();
        images
    }

    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    pub fn src(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.layout().display())
    }

    /// A skopeo source of `tag` with zstd layers (skopeo 1.9 recompresses into `dir:` only).
    pub fn zstd_src(&self, tag: &str) -> String {
        let dir = self.dir.path().join(format!("zstd-{tag}"));
        if !dir.exists() {
            run(Command::new("skopeo")
                .args([
                    "copy",
                    "-q",
                    "--format",
                    "oci",
                    "--dest-compress",
                    "--dest-compress-format",
                    "zstd",
                    &self.src(tag),
                ])
                .arg(format!("dir:{}", dir.display())));
        }
        format!("dir:{}", dir.display())
    }

    /// The descriptor index.json has for `tag`.
    fn descriptor(&self, tag: &str) -> serde_json::Value {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.layout().join("index.json")).unwrap())
                .unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag}"))
            .clone()
    }

    pub fn manifest_digest(&self, tag: &str) -> String {
        self.descriptor(tag)["digest"].as_str().unwrap().to_string()
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(
            self.layout()
                .join("blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap()
    }

    /// The config digest (= image id) of `tag`.
    pub fn config_digest(&self, tag: &str) -> String {
        let m: serde_json::Value =
            serde_json::from_slice(&self.blob(&self.manifest_digest(tag))).unwrap();
        m["config"]["digest"].as_str().unwrap().to_string()
    }

    /// Writes an OCI index of bb (host arch), bb-arm64 and bb-arm/v7 and tags it `multi`.
    fn make_index(&self) {
        let host = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let mut entries = Vec::new();
        for (tag, arch, variant) in [
            ("bb", host, None),
            ("bb-arm64", "arm64", None),
            ("bb-arm", "arm", Some("v7")),
        ] {
            if tag != "bb" && arch == host {
                continue;
            }
            let d = self.descriptor(tag);
            let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
            if let Some(v) = variant {
                platform["variant"] = v.into();
            }
            entries.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": d["digest"], "size": d["size"], "platform": platform,
            }));
        }
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries,
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let digest = sha256_hex(&bytes);
        std::fs::write(self.layout().join("blobs/sha256").join(&digest), &bytes).unwrap();
        let path = self.layout().join("index.json");
        let mut top: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        top["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": format!("sha256:{digest}"), "size": bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }));
        std::fs::write(&path, serde_json::to_vec(&top).unwrap()).unwrap();
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    berth_image::Digest::of(bytes).hex()
}
