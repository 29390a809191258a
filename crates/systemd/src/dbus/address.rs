//! Bus addresses: `unix:path=...` and `unix:abstract=...`, the forms a system bus uses.

use std::path::PathBuf;

use super::error::{Error, Result};

/// The system bus when DBUS_SYSTEM_BUS_ADDRESS is not set (the spec's default).
pub const DEFAULT_SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
pub const SYSTEM_BUS_ENV: &str = "DBUS_SYSTEM_BUS_ADDRESS";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAddr {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl SocketAddr {
    /// For messages: the path, or `@name` for an abstract socket.
    pub fn display(&self) -> PathBuf {
        match self {
            SocketAddr::Path(p) => p.clone(),
            SocketAddr::Abstract(n) => PathBuf::from(format!("@{}", String::from_utf8_lossy(n))),
        }
    }
}

/// The system bus's address: the environment's, else the default socket.
pub fn system_bus() -> Result<Vec<SocketAddr>> {
    match std::env::var(SYSTEM_BUS_ENV) {
        Ok(a) if !a.is_empty() => parse(&a),
        _ => Ok(vec![SocketAddr::Path(DEFAULT_SYSTEM_BUS.into())]),
    }
}

/// Parse a server address list (`;`-separated), keeping the unix entries we can connect to,
/// in order. Other transports (tcp, unixexec) are skipped; none left is an error.
pub fn parse(address: &str) -> Result<Vec<SocketAddr>> {
    let bad = |reason: String| Error::Address {
        address: address.into(),
        reason,
    };
    let mut out = Vec::new();
    for entry in address.split(';').filter(|e| !e.is_empty()) {
        let Some((transport, params)) = entry.split_once(':') else {
            return Err(bad(format!("entry {entry:?} has no transport")));
        };
        if transport != "unix" {
            continue;
        }
        for kv in params.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(bad(format!("parameter {kv:?} has no value")));
            };
            let v = unescape(v).map_err(bad)?;
            match k {
                "path" => out.push(SocketAddr::Path(PathBuf::from(
                    String::from_utf8_lossy(&v).into_owned(),
                ))),
                "abstract" => out.push(SocketAddr::Abstract(v)),
                _ => {} // guid= and others: not needed to connect
            }
        }
    }
    if out.is_empty() {
        return Err(bad("no unix:path= or unix:abstract= entry".into()));
    }
    Ok(out)
}

fn unescape(v: &str) -> std::result::Result<Vec<u8>, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or_else(|| format!("bad escape in {v:?}"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses_parse() {
        assert_eq!(
            parse("unix:path=/run/dbus/system_bus_socket").unwrap(),
            vec![SocketAddr::Path(DEFAULT_SYSTEM_BUS.into())]
        );
        assert_eq!(
            parse("tcp:host=x,port=1;unix:abstract=/tmp/dbus-a%2cb,guid=00").unwrap(),
            vec![SocketAddr::Abstract(b"/tmp/dbus-a,b".to_vec())]
        );
    }

    #[test]
    fn unusable_addresses_name_themselves() {
        for a in ["tcp:host=x", "unix", "unix:path", "unix:path=%zz", ""] {
            let e = parse(a).unwrap_err().to_string();
            assert!(e.contains(&format!("{a:?}")), "{e}");
        }
    }
}
