//! The namespaces of a container: which are new, which are joined by path.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Error, Result};

/// A kind of Linux namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamespaceKind {
    User,
    Mount,
    Pid,
    Network,
    Ipc,
    Uts,
    Cgroup,
    Time,
}

impl NamespaceKind {
    /// Every kind, in the order namespaces are joined: the user namespace first, so that
    /// joining the others is checked against the capabilities it grants.
    pub const ALL: [NamespaceKind; 8] = [
        NamespaceKind::User,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
        NamespaceKind::Network,
        NamespaceKind::Pid,
        NamespaceKind::Mount,
        NamespaceKind::Cgroup,
        NamespaceKind::Time,
    ];

    /// The CLONE_NEW* flag.
    pub fn clone_flag(self) -> u64 {
        (match self {
            NamespaceKind::User => libc::CLONE_NEWUSER,
            NamespaceKind::Mount => libc::CLONE_NEWNS,
            NamespaceKind::Pid => libc::CLONE_NEWPID,
            NamespaceKind::Network => libc::CLONE_NEWNET,
            NamespaceKind::Ipc => libc::CLONE_NEWIPC,
            NamespaceKind::Uts => libc::CLONE_NEWUTS,
            NamespaceKind::Cgroup => libc::CLONE_NEWCGROUP,
            NamespaceKind::Time => libc::CLONE_NEWTIME,
        }) as u64
    }

    /// The name under /proc/<pid>/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::User => "user",
            NamespaceKind::Mount => "mnt",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Network => "net",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }

    /// The name used by the runtime-spec (`linux.namespaces[].type`).
    pub fn spec_name(self) -> &'static str {
        match self {
            NamespaceKind::Mount => "mount",
            NamespaceKind::Network => "network",
            other => other.proc_name(),
        }
    }

    fn from_spec(kind: LinuxNamespaceType) -> Self {
        match kind {
            LinuxNamespaceType::User => NamespaceKind::User,
            LinuxNamespaceType::Mount => NamespaceKind::Mount,
            LinuxNamespaceType::Pid => NamespaceKind::Pid,
            LinuxNamespaceType::Network => NamespaceKind::Network,
            LinuxNamespaceType::Ipc => NamespaceKind::Ipc,
            LinuxNamespaceType::Uts => NamespaceKind::Uts,
            LinuxNamespaceType::Cgroup => NamespaceKind::Cgroup,
            LinuxNamespaceType::Time => NamespaceKind::Time,
        }
    }
}

/// The namespaces a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// Namespaces to create.
    pub new: Vec<NamespaceKind>,
    /// Namespaces to join, in [`NamespaceKind::ALL`] order.
    pub join: Vec<(NamespaceKind, PathBuf)>,
}

impl Namespaces {
    /// Validates `linux.namespaces`: no kind twice, join paths absolute.
    pub fn from_spec(list: &[LinuxNamespace]) -> Result<Self> {
        let mut out = Namespaces::default();
        for (i, ns) in list.iter().enumerate() {
            let kind = NamespaceKind::from_spec(ns.typ());
            if out.has(kind) {
                return Err(Error::invalid(
                    format!("linux.namespaces[{i}].type"),
                    format!("the {} namespace is listed twice", kind.spec_name()),
                ));
            }
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    if !path.is_absolute() {
                        return Err(Error::invalid(
                            format!("linux.namespaces[{i}].path"),
                            format!("{} is not absolute", path.display()),
                        ));
                    }
                    out.join.push((kind, path.clone()));
                }
                _ => out.new.push(kind),
            }
        }
        out.join.sort_by_key(|(kind, _)| {
            NamespaceKind::ALL
                .iter()
                .position(|k| k == kind)
                .unwrap_or(usize::MAX)
        });
        Ok(out)
    }

    /// The container has its own namespace of this kind (new or joined).
    pub fn has(&self, kind: NamespaceKind) -> bool {
        self.is_new(kind) || self.joined(kind).is_some()
    }

    /// A new namespace of this kind is created.
    pub fn is_new(&self, kind: NamespaceKind) -> bool {
        self.new.contains(&kind)
    }

    /// The path of the namespace of this kind to join.
    pub fn joined(&self, kind: NamespaceKind) -> Option<&PathBuf> {
        self.join.iter().find(|(k, _)| *k == kind).map(|(_, p)| p)
    }

    /// The CLONE_NEW* flags of every new namespace.
    pub fn new_flags(&self) -> u64 {
        self.new.iter().fold(0, |acc, k| acc | k.clone_flag())
    }
}
