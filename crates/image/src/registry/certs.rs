//! A registry's own TLS material where docker and podman keep it: a directory per
//! `HOST[:PORT]` under `~/.config/containers/certs.d`, `/etc/containers/certs.d` or
//! `/etc/docker/certs.d` (the first that has one wins, as in containers/image), or the one
//! `--cert-dir` names. In it, every `*.crt` holds CA certificates trusted for that registry
//! on top of the system's roots, and a `NAME.cert` with its `NAME.key` is a client
//! certificate (a `.cert` without its `.key`, or the reverse, is an error, as in docker).
//!
//! `$BERTH_CERTS_D` (a `:`-separated list of directories) replaces the three per-host
//! roots, so tests and unprivileged users need not write to /etc.

use std::fs;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::error::{Error, Result};

/// Replaces the per-host certificate roots (`DIR[:DIR...]`).
pub const CERTS_D_ENV: &str = "BERTH_CERTS_D";

/// The system's CA bundle, where Go's crypto/x509 (and so docker and podman) look on Linux.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// What a registry's certificate directory holds.
#[derive(Default)]
pub struct RegistryCerts {
    /// The directory read, if there was one.
    pub dir: Option<PathBuf>,
    /// CA certificates from its `*.crt` files.
    pub roots: Vec<Certificate<'static>>,
    /// The first `NAME.cert`/`NAME.key` pair.
    pub client: Option<ClientCert>,
}

/// The roots searched for `HOST[:PORT]` directories, in order.
pub fn per_host_roots() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os(CERTS_D_ENV).filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let mut roots = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        roots.push(Path::new(&home).join(".config/containers/certs.d"));
    }
    roots.push(PathBuf::from("/etc/containers/certs.d"));
    roots.push(PathBuf::from("/etc/docker/certs.d"));
    roots
}

/// Where a CA for `domain` would be read from first: for telling the user where to put one.
pub fn suggested_dir(domain: &str) -> PathBuf {
    let roots = per_host_roots();
    let root = roots
        .iter()
        .find(|r| r.starts_with("/etc/containers"))
        .or(roots.first())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/etc/containers/certs.d"));
    root.join(domain)
}

/// The certificates for `domain`: from `cert_dir` alone when given (it must exist), else
/// from the first per-host directory that exists.
pub fn for_registry(domain: &str, cert_dir: Option<&Path>) -> Result<RegistryCerts> {
    let dir = match cert_dir {
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Certs {
                    path: d.to_path_buf(),
                    reason: "--cert-dir: not a directory".into(),
                });
            }
            d.to_path_buf()
        }
        None => match per_host_roots()
            .into_iter()
            .map(|r| r.join(domain))
            .find(|d| d.is_dir())
        {
            Some(d) => d,
            None => return Ok(RegistryCerts::default()),
        },
    };
    load(&dir)
}

/// Reads one certificate directory (sorted by name, so the choice of a client pair is stable).
pub fn load(dir: &Path) -> Result<RegistryCerts> {
    let err = |path: &Path, reason: String| Error::Certs {
        path: path.to_path_buf(),
        reason,
    };
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| err(dir, e.to_string()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let has = |n: &str| names.iter().any(|x| x == n);
    let mut certs = RegistryCerts {
        dir: Some(dir.to_path_buf()),
        ..RegistryCerts::default()
    };
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(".crt") {
            let pem = fs::read(&path).map_err(|e| err(&path, e.to_string()))?;
            let found = pem_certificates(&pem).map_err(|e| err(&path, e))?;
            if found.is_empty() {
                return Err(err(&path, "no PEM certificate in it".into()));
            }
            certs.roots.extend(found);
        } else if let Some(base) = name.strip_suffix(".cert") {
            let key = format!("{base}.key");
            if !has(&key) {
                return Err(err(
                    &path,
                    format!(
                        "missing key {key} for this client certificate (CA certificates use the extension .crt)"
                    ),
                ));
            }
            if certs.client.is_some() {
                log::debug!(
                    "{}: a client certificate was taken already; ignored",
                    path.display()
                );
                continue;
            }
            certs.client = Some(client_pair(&path, &dir.join(&key))?);
        } else if let Some(base) = name.strip_suffix(".key") {
            let cert = format!("{base}.cert");
            if !has(&cert) {
                return Err(err(
                    &path,
                    format!("missing client certificate {cert} for this key"),
                ));
            }
        }
    }
    log::debug!(
        "{}: {} CA certificate(s), client certificate: {}",
        dir.display(),
        certs.roots.len(),
        certs.client.is_some()
    );
    Ok(certs)
}

/// The TLS configuration for a registry: no verification at all with `--tls-verify=false`;
/// else the system's roots plus the registry's own CAs (ureq's bundled Mozilla roots when it
/// has none), and its client certificate.
pub fn tls_config(verify: bool, certs: &RegistryCerts) -> Result<TlsConfig> {
    let mut builder = TlsConfig::builder()
        .disable_verification(!verify)
        .client_cert(certs.client.clone());
    if verify && !certs.roots.is_empty() {
        let mut roots = system_roots()?;
        roots.extend(certs.roots.iter().cloned());
        builder = builder.root_certs(RootCerts::new_with_certs(&roots));
    }
    Ok(builder.build())
}

/// The system bundle's certificates (extra roots are added to them, as Go adds a certs.d CA
/// to the system pool); none when the machine has no bundle.
fn system_roots() -> Result<Vec<Certificate<'static>>> {
    let explicit = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = explicit
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
    for path in candidates {
        match fs::read(&path) {
            Ok(pem) => {
                return pem_certificates(&pem).map_err(|reason| Error::Certs { path, reason });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Certs {
                    path,
                    reason: e.to_string(),
                });
            }
        }
    }
    log::debug!("no system CA bundle: only the registry's own CAs are trusted");
    Ok(Vec::new())
}

fn pem_certificates(pem: &[u8]) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item.map_err(|e| format!("invalid PEM: {e}"))? {
            PemItem::Certificate(c) => out.push(c),
            _ => continue,
        }
    }
    Ok(out)
}

/// A client certificate chain and its key, checked to belong together here (ureq would
/// panic on a pair rustls refuses).
fn client_pair(cert: &Path, key: &Path) -> Result<ClientCert> {
    let err = |path: &Path, reason: String| Error::Certs {
        path: path.to_path_buf(),
        reason,
    };
    let chain = pem_certificates(&fs::read(cert).map_err(|e| err(cert, e.to_string()))?)
        .map_err(|e| err(cert, e))?;
    if chain.is_empty() {
        return Err(err(cert, "no PEM certificate in it".into()));
    }
    let key_pem = fs::read(key).map_err(|e| err(key, e.to_string()))?;
    let private =
        PrivateKey::from_pem(&key_pem).map_err(|e| err(key, format!("no private key: {e}")))?;
    check_pair(&chain, &private).map_err(|reason| err(key, reason))?;
    Ok(ClientCert::new_with_certs(&chain, private))
}

fn check_pair(
    chain: &[Certificate<'static>],
    key: &PrivateKey<'static>,
) -> std::result::Result<(), String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = rustls::crypto::ring::default_provider();
    let der = PrivateKeyDer::try_from(key.der().to_vec()).map_err(|e| e.to_string())?;
    let chain: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    rustls::sign::CertifiedKey::from_der(chain, der, &provider)
        .map(|_| ())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("does not belong to the client certificate ({e})")
            }
            e => e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaired_files_and_empty_crt_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("client.cert"), "x").unwrap();
        let e = load(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("client.cert") && e.contains("missing key client.key"),
            "{e}"
        );
        fs::remove_file(dir.path().join("client.cert")).unwrap();
        fs::write(dir.path().join("client.key"), "x").unwrap();
        let e = load(dir.path()).err().unwrap().to_string();
        assert!(e.contains("missing client certificate client.cert"), "{e}");
        fs::remove_file(dir.path().join("client.key")).unwrap();
        fs::write(dir.path().join("ca.crt"), "not pem").unwrap();
        let e = load(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("ca.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
        fs::remove_file(dir.path().join("ca.crt")).unwrap();
        let certs = load(dir.path()).unwrap();
        assert!(certs.roots.is_empty() && certs.client.is_none());
        let e = for_registry("h:1", Some(&dir.path().join("nope")))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nope") && e.contains("not a directory"), "{e}");
    }
}
