//! Names the authority behind a certificate we refused: rustls says only "UnknownIssuer", a
//! user needs to know which CA to trust. After such a failure one more handshake to the
//! registry records the chain it presents (and is then aborted, nothing is sent), and the
//! issuer's common name is read from the DER of the topmost certificate.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS error inside a ureq error (ureq passes handshake errors up as I/O errors).
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// Whether `e` is a server certificate no trusted root signed.
pub fn is_unknown_issuer(e: &ureq::Error) -> bool {
    matches!(
        rustls_error(e),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))
    )
}

/// Whether the server ended the handshake over our (missing or unwanted) client certificate.
pub fn is_client_cert_refused(e: &ureq::Error) -> bool {
    use rustls::AlertDescription::{BadCertificate, CertificateRequired, UnknownCA};
    matches!(
        rustls_error(e),
        Some(rustls::Error::AlertReceived(
            BadCertificate | CertificateRequired | UnknownCA
        ))
    )
}

/// What a refused certificate says of its issuer, e.g. `certificate signed by unknown
/// authority "Berth Test CA"`, or `self-signed certificate "127.0.0.1"`.
pub fn describe_unknown_issuer(host: &str) -> String {
    match peer_chain(host).as_deref().and_then(issuer_of_chain) {
        Some((issuer, true)) => format!("self-signed certificate {issuer:?} is not trusted"),
        Some((issuer, false)) => format!("certificate signed by unknown authority {issuer:?}"),
        None => "certificate signed by unknown authority".to_string(),
    }
}

/// The issuer of the topmost certificate of `chain` and whether it issued itself.
fn issuer_of_chain(chain: &[Vec<u8>]) -> Option<(String, bool)> {
    let top = chain.last()?;
    let (issuer, subject) = issuer_and_subject(top)?;
    Some((display_name(issuer)?, issuer == subject))
}

/// The certificate chain `host` (`HOST[:PORT]`, 443 by default) presents.
fn peer_chain(host: &str) -> Option<Vec<Vec<u8>>> {
    let (name, addr) = split_host(host);
    let server_name = ServerName::try_from(name.to_string()).ok()?;
    let recorder = Arc::new(Recorder::default());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .dangerous()
    .with_custom_certificate_verifier(recorder.clone())
    .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server_name).ok()?;
    let sock_addr = addr.to_socket_addrs().ok()?.next()?;
    let mut sock = TcpStream::connect_timeout(&sock_addr, PROBE_TIMEOUT).ok()?;
    sock.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    sock.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    // The recorder fails verification, which ends the handshake with an error: expected.
    while conn.is_handshaking() {
        if conn.complete_io(&mut sock).is_err() {
            break;
        }
    }
    let chain = recorder.chain.lock().ok()?.clone();
    (!chain.is_empty()).then_some(chain)
}

/// `HOST[:PORT]` or `[V6][:PORT]` → (the name to verify, the address with a port).
fn split_host(host: &str) -> (&str, String) {
    if let Some(v6) = host.strip_prefix('[') {
        let (name, rest) = v6.split_once(']').unwrap_or((v6, ""));
        let addr = if rest.starts_with(':') {
            host.to_string()
        } else {
            format!("[{name}]:443")
        };
        return (name, addr);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => (name, host.to_string()),
        _ => (host, format!("{host}:443")),
    }
}

/// Records the presented chain and refuses it, so the probe never completes a session.
#[derive(Debug, Default)]
struct Recorder {
    chain: Mutex<Vec<Vec<u8>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            chain.push(end_entity.to_vec());
            chain.extend(intermediates.iter().map(|c| c.to_vec()));
        }
        Err(rustls::Error::General("probe only".into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("probe only".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("probe only".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One DER TLV: (tag, contents, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The DER of a certificate's issuer and subject Names.
fn issuer_and_subject(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let (tag, _, mut rest) = tlv(tbs)?;
    // [0] EXPLICIT version is optional (absent in v1 certificates); then the serial.
    if tag == 0xa0 {
        rest = tlv(rest)?.2;
    }
    let (_signature_alg, rest) = tlv(rest).map(|(_, _, r)| ((), r))?;
    let (SEQUENCE, issuer, rest) = tlv(rest)? else {
        return None;
    };
    let (_validity, rest) = tlv(rest).map(|(_, _, r)| ((), r))?;
    let (SEQUENCE, subject, _) = tlv(rest)? else {
        return None;
    };
    Some((issuer, subject))
}

/// A Name's common name, or its attributes as `O=..,OU=..` when it has none.
fn display_name(name: &[u8]) -> Option<String> {
    let mut attrs = Vec::new();
    let mut sets = name;
    while !sets.is_empty() {
        let (_, set, rest) = tlv(sets)?;
        sets = rest;
        let (_, attr, _) = tlv(set)?;
        let (_, oid, value) = tlv(attr)?;
        let (_, value, _) = tlv(value)?;
        let label = match oid {
            [0x55, 0x04, 0x03] => "CN",
            [0x55, 0x04, 0x06] => "C",
            [0x55, 0x04, 0x07] => "L",
            [0x55, 0x04, 0x08] => "ST",
            [0x55, 0x04, 0x0a] => "O",
            [0x55, 0x04, 0x0b] => "OU",
            _ => continue,
        };
        attrs.push((label, String::from_utf8_lossy(value).into_owned()));
    }
    if let Some((_, cn)) = attrs.iter().find(|(l, _)| *l == "CN") {
        return Some(cn.clone());
    }
    let all: Vec<String> = attrs.iter().map(|(l, v)| format!("{l}={v}")).collect();
    (!all.is_empty()).then(|| all.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER of `tag` around `body`.
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        out.extend(body);
        out
    }

    fn name(attrs: &[(&[u8], &str)]) -> Vec<u8> {
        let mut sets = Vec::new();
        for (oid, v) in attrs {
            let attr = [der(0x06, oid), der(0x0c, v.as_bytes())].concat();
            sets.extend(der(0x31, &der(0x30, &attr)));
        }
        der(0x30, &sets)
    }

    fn cert(issuer: &[u8], subject: &[u8]) -> Vec<u8> {
        let tbs = [
            der(0xa0, &der(0x02, &[2])),
            der(0x02, &[1, 2, 3]),
            der(0x30, &der(0x06, &[1, 2])),
            issuer.to_vec(),
            der(0x30, &[0u8; 200]),
            subject.to_vec(),
        ]
        .concat();
        der(
            0x30,
            &[der(0x30, &tbs), der(0x30, &[]), der(0x03, &[0])].concat(),
        )
    }

    #[test]
    fn issuer_names() {
        let ca = name(&[(&[0x55, 4, 6], "DE"), (&[0x55, 4, 3], "Berth Test CA")]);
        let leaf = name(&[(&[0x55, 4, 3], "127.0.0.1")]);
        assert_eq!(
            issuer_of_chain(&[cert(&ca, &leaf)]),
            Some(("Berth Test CA".to_string(), false))
        );
        assert_eq!(
            issuer_of_chain(&[cert(&leaf, &leaf)]),
            Some(("127.0.0.1".to_string(), true))
        );
        let org = name(&[(&[0x55, 4, 10], "Acme"), (&[0x55, 4, 11], "Ops")]);
        assert_eq!(display_name(&org[2..]).as_deref(), Some("O=Acme,OU=Ops"));
        assert_eq!(issuer_of_chain(&[b"junk".to_vec()]), None);
        assert_eq!(issuer_of_chain(&[]), None);
        assert_eq!(
            split_host("127.0.0.1:5000"),
            ("127.0.0.1", "127.0.0.1:5000".into())
        );
        assert_eq!(split_host("quay.io"), ("quay.io", "quay.io:443".into()));
        assert_eq!(split_host("[::1]:5000"), ("::1", "[::1]:5000".into()));
        assert_eq!(split_host("[::1]"), ("::1", "[::1]:443".into()));
    }
}
