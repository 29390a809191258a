//! `linux.sysctl`: only keys that belong to one of the container's own namespaces are
//! allowed, as runc does; anything else would change the host.

use std::collections::HashMap;

use super::namespaces::{NamespaceKind, Namespaces};
use crate::error::{Error, Result};

/// One sysctl to write, with its path under /proc/sys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub key: String,
    /// Relative to /proc/sys, e.g. `net/ipv4/ip_forward`.
    pub path: String,
    pub value: String,
}

const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

fn namespace_of(key: &str) -> Option<NamespaceKind> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(NamespaceKind::Ipc)
    } else if key.starts_with("net.") {
        Some(NamespaceKind::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(NamespaceKind::Uts)
    } else {
        None
    }
}

/// Checks every key and computes its /proc/sys path (sorted by key for a stable order).
pub fn plan_sysctls(
    sysctls: Option<&HashMap<String, String>>,
    namespaces: &Namespaces,
) -> Result<Vec<Sysctl>> {
    let mut out = Vec::new();
    for (key, value) in sysctls.into_iter().flatten() {
        let field = format!("linux.sysctl.{key}");
        if key.is_empty() || key.contains("..") || key.starts_with('.') || key.contains('\0') {
            return Err(Error::invalid(field, "malformed key"));
        }
        super::reject_nul(&field, value)?;
        // runc accepts both dotted keys and slash-separated ones (for interface names that
        // contain dots, e.g. net/ipv4/conf/eth0.100/forwarding).
        let normalized = if key.contains('/') {
            key.replace('/', ".")
        } else {
            key.clone()
        };
        let Some(ns) = namespace_of(&normalized) else {
            return Err(Error::invalid(
                field,
                "is not in a separate kernel namespace; setting it would change the host",
            ));
        };
        if !namespaces.has(ns) {
            return Err(Error::invalid(
                field,
                format!("needs the container's own {} namespace", ns.spec_name()),
            ));
        }
        let path = if key.contains('/') {
            key.clone()
        } else {
            key.replace('.', "/")
        };
        out.push(Sysctl {
            key: key.clone(),
            path,
            value: value.clone(),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}
