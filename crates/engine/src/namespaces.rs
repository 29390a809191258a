//! The namespace flags of `run`/`create` (`--pid`, `--ipc`, `--uts`, `--cgroupns`,
//! `--userns`): what each asks for (parsed and checked at create, kept in the record), and
//! at start the `linux.namespaces` entries they become. Another container's namespace is
//! joined by its init's `/proc/PID/ns/*` path, so it must be running then.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Engine;
use crate::error::{Error, Result};
use crate::status;

/// The kinds of namespace these flags choose (mount and network have their own flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pid,
    Ipc,
    Uts,
    Cgroup,
    User,
}

impl Kind {
    pub fn flag(self) -> &'static str {
        match self {
            Kind::Pid => "--pid",
            Kind::Ipc => "--ipc",
            Kind::Uts => "--uts",
            Kind::Cgroup => "--cgroupns",
            Kind::User => "--userns",
        }
    }

    /// The runtime-spec's `linux.namespaces[].type`.
    fn spec_type(self) -> &'static str {
        match self {
            Kind::Pid => "pid",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::Cgroup => "cgroup",
            Kind::User => "user",
        }
    }

    /// The name under `/proc/PID/ns/` (the same as the spec's for these kinds).
    fn proc_name(self) -> &'static str {
        self.spec_type()
    }

    fn known(self) -> &'static str {
        match self {
            Kind::Pid | Kind::Uts | Kind::Cgroup => "host, private, container:NAME or ns:PATH",
            Kind::Ipc => "host, private, shareable, none, container:NAME or ns:PATH",
            Kind::User => "host, keep-id, container:NAME or ns:PATH",
        }
    }
}

/// How a container gets one kind of namespace. Kept in records as its flag text
/// (`host`, `container:ID`, `ns:/path`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Mode {
    /// A new namespace of its own.
    #[default]
    Private,
    /// A new IPC namespace other containers may join (podman's default for IPC).
    Shareable,
    /// A new IPC namespace and no /dev/shm.
    None,
    /// The host's: no entry in `linux.namespaces`.
    Host,
    /// Another container's (its id, resolved at create).
    Container(String),
    /// A namespace file (`ns:PATH`).
    Path(PathBuf),
    /// `--userns keep-id` (rootless only): a user namespace of its own in the user's, where
    /// the user's host ids are themselves (see [`crate::userns::KeepId`]).
    KeepId,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Private => f.write_str("private"),
            Mode::Shareable => f.write_str("shareable"),
            Mode::None => f.write_str("none"),
            Mode::Host => f.write_str("host"),
            Mode::Container(id) => write!(f, "container:{id}"),
            Mode::Path(p) => write!(f, "ns:{}", p.display()),
            Mode::KeepId => f.write_str("keep-id"),
        }
    }
}

impl From<Mode> for String {
    fn from(m: Mode) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Mode {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Mode, String> {
        Ok(match text.as_str() {
            "private" | "" => Mode::Private,
            "shareable" => Mode::Shareable,
            "none" => Mode::None,
            "host" => Mode::Host,
            "keep-id" => Mode::KeepId,
            _ => match (text.strip_prefix("container:"), text.strip_prefix("ns:")) {
                (Some(c), _) => Mode::Container(c.to_string()),
                (_, Some(p)) => Mode::Path(PathBuf::from(p)),
                _ => return Err(format!("unknown namespace mode {text:?}")),
            },
        })
    }
}

impl Mode {
    /// One flag's value (None: the flag was not given: the kind's default).
    pub fn parse(kind: Kind, text: Option<&str>) -> Result<Mode> {
        let Some(text) = text else {
            return Ok(Options::default().get(kind).clone());
        };
        let bad = |m: &str| Error::flag(kind.flag(), text, m);
        let mode = match text {
            "" if kind == Kind::User => Mode::Host,
            "" if kind == Kind::Ipc => Mode::Shareable,
            "keep-id" if kind == Kind::User => Mode::KeepId,
            t if kind == Kind::User && t.starts_with("keep-id:") => {
                return Err(bad(
                    "keep-id's options (uid=, gid=) are not supported: use keep-id",
                ));
            }
            "auto" | "nomap" if kind == Kind::User => {
                return Err(bad("not supported (use keep-id, host or ns:PATH)"));
            }
            "private" if kind == Kind::User => {
                return Err(bad(
                    "a private user namespace needs id mappings, which berth does not set up yet (use host or ns:PATH)",
                ));
            }
            "shareable" | "none" if kind != Kind::Ipc => {
                return Err(bad(&format!("expected {}", kind.known())));
            }
            _ => Mode::try_from(text.to_string())
                .map_err(|_| bad(&format!("expected {}", kind.known())))?,
        };
        match &mode {
            Mode::Container(c) if c.is_empty() => Err(bad("container: needs a name or ID")),
            Mode::Path(p) if !p.is_absolute() => Err(bad("ns: needs an absolute path")),
            _ => Ok(mode),
        }
    }

    /// A new namespace of its own (private, shareable, none).
    fn is_new(&self) -> bool {
        matches!(self, Mode::Private | Mode::Shareable | Mode::None)
    }
}

/// The five modes of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    pub pid: Mode,
    pub ipc: Mode,
    pub uts: Mode,
    pub cgroup: Mode,
    pub user: Mode,
}

impl Default for Options {
    /// podman's defaults on a cgroup v1 host: own pid, IPC (shareable) and UTS namespaces,
    /// the host's cgroup and user namespaces.
    fn default() -> Self {
        Options {
            pid: Mode::Private,
            ipc: Mode::Shareable,
            uts: Mode::Private,
            cgroup: Mode::Host,
            user: Mode::Host,
        }
    }
}

const KINDS: [Kind; 5] = [Kind::User, Kind::Pid, Kind::Ipc, Kind::Uts, Kind::Cgroup];

impl Options {
    pub fn get(&self, kind: Kind) -> &Mode {
        match kind {
            Kind::Pid => &self.pid,
            Kind::Ipc => &self.ipc,
            Kind::Uts => &self.uts,
            Kind::Cgroup => &self.cgroup,
            Kind::User => &self.user,
        }
    }

    fn get_mut(&mut self, kind: Kind) -> &mut Mode {
        match kind {
            Kind::Pid => &mut self.pid,
            Kind::Ipc => &mut self.ipc,
            Kind::Uts => &mut self.uts,
            Kind::Cgroup => &mut self.cgroup,
            Kind::User => &mut self.user,
        }
    }

    /// At create: `container:NAME` becomes the id of an existing container (whose IPC must
    /// be shareable, as podman and docker require), and an `ns:PATH` must exist.
    pub fn check(&mut self, engine: &Engine) -> Result<()> {
        for kind in KINDS {
            let mode = self.get_mut(kind);
            let text = mode.to_string();
            match mode {
                Mode::Container(reference) => {
                    let id = engine
                        .records
                        .resolve(reference)
                        .map_err(|e| Error::flag(kind.flag(), &text, e.to_string()))?;
                    if kind == Kind::Ipc {
                        let peer = engine.records.load(&id)?;
                        let peer_ipc = peer.config.namespace_options().ipc;
                        if !matches!(peer_ipc, Mode::Shareable | Mode::Host) {
                            return Err(Error::flag(
                                kind.flag(),
                                &text,
                                format!(
                                    "container {} has a non-shareable IPC namespace ({peer_ipc}); run it with --ipc shareable",
                                    peer.name
                                ),
                            ));
                        }
                    }
                    *reference = id;
                }
                Mode::Path(path) => {
                    if let Err(e) = std::fs::metadata(&*path) {
                        return Err(Error::flag(kind.flag(), &text, e.to_string()));
                    }
                }
                // podman's words: root's containers have the host's ids, nothing to keep
                Mode::KeepId if !crate::userns::active() => {
                    return Err(Error::flag(
                        kind.flag(),
                        &text,
                        "keep-id is only supported in rootless mode",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// At start: the namespaces as the spec needs them, with every `container:` mode
    /// resolved to the running peer's init.
    pub fn resolve(&self, engine: &Engine) -> Result<Resolved> {
        let mut out = Resolved {
            entries: Vec::new(),
            shm: Shm::Tmpfs,
            uts: Uts::Own,
            keep_id: None,
        };
        for kind in KINDS {
            let mode = self.get(kind);
            let mut peer = None;
            let entry = match mode {
                Mode::Host => None,
                m if m.is_new() => Some(json!({"type": kind.spec_type()})),
                Mode::KeepId => {
                    out.keep_id = Some(crate::userns::KeepId::of_this_namespace()?);
                    Some(json!({"type": kind.spec_type()}))
                }
                Mode::Path(p) => Some(json!({"type": kind.spec_type(), "path": p})),
                Mode::Container(id) => {
                    let (pid, dir) = running_peer(engine, kind, id)?;
                    peer = Some((pid, dir));
                    Some(json!({"type": kind.spec_type(),
                                "path": format!("/proc/{pid}/ns/{}", kind.proc_name())}))
                }
                _ => unreachable!("every mode is handled"),
            };
            out.entries.extend(entry);
            match kind {
                Kind::Ipc => {
                    out.shm = match (mode, peer) {
                        (Mode::Host, _) => Shm::Bind(PathBuf::from("/dev/shm")),
                        (Mode::None, _) => Shm::Absent,
                        // The peer's /dev/shm, as podman shares it.
                        (_, Some((pid, _))) => Shm::Peer(pid),
                        _ => Shm::Tmpfs,
                    }
                }
                Kind::Uts => {
                    out.uts = match (mode, peer) {
                        (Mode::Host, _) => Uts::Host,
                        (_, Some((_, dir))) => Uts::Peer(dir),
                        (Mode::Path(_), _) => Uts::Joined,
                        _ => Uts::Own,
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The init pid and container dir of the running container `id` whose namespace is joined.
fn running_peer(engine: &Engine, kind: Kind, id: &str) -> Result<(i32, PathBuf)> {
    let short = &id[..id.len().min(12)];
    let not_running = |state: &str| {
        Error::flag(
            kind.flag(),
            format!("container:{short}"),
            format!("the container is {state}: its namespaces exist only while it runs"),
        )
    };
    let (record, live) = match status::live(engine, id) {
        Ok(found) => found,
        Err(Error::NoSuchContainer(_)) => return Err(not_running("gone")),
        Err(e) => return Err(e),
    };
    let Some(record) = record else {
        return Err(not_running("gone"));
    };
    if !live.state.is_active() || live.pid <= 0 {
        return Err(Error::flag(
            kind.flag(),
            format!("container:{}", record.name),
            format!(
                "container {} is {}: its namespaces exist only while it runs",
                record.name,
                live.state.as_str()
            ),
        ));
    }
    Ok((live.pid, engine.container_dir(id)))
}

/// What /dev/shm is in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shm {
    /// Its own tmpfs (`--shm-size`).
    Tmpfs,
    /// A bind of a host directory (the host's /dev/shm, or the IPC peer's, once
    /// [`expose_peer_shm`] put it there).
    Bind(PathBuf),
    /// The IPC peer's (its init's pid), still in its mount namespace.
    Peer(i32),
    /// Nothing (`--ipc none`).
    Absent,
}

/// Where the IPC peer's /dev/shm is attached for the runtime to bind it: under the
/// container's run dir, only while it is created.
pub fn peer_shm_path(engine: &Engine, id: &str) -> PathBuf {
    engine.run_dir(id).join("peer-shm")
}

/// Makes a [`Shm::Peer`] a [`Shm::Bind`]: clones the peer's /dev/shm onto
/// [`peer_shm_path`]. The caller holds a [`PeerShmGuard`] until the container is created
/// (its own mount namespace has the bind then) or failed.
pub fn expose_peer_shm(engine: &Engine, id: &str, resolved: &mut Resolved) -> Result<()> {
    let Shm::Peer(pid) = resolved.shm else {
        return Ok(());
    };
    let target = peer_shm_path(engine, id);
    std::fs::create_dir_all(&target).map_err(|e| Error::path("create", &target, e))?;
    crate::sys::clone_mount_from(pid, "/dev/shm", &target).map_err(|e| {
        Error::path(
            "--ipc container: clone the peer's /dev/shm onto",
            &target,
            e,
        )
    })?;
    resolved.shm = Shm::Bind(target);
    Ok(())
}

/// Detaches what [`expose_peer_shm`] attached (nothing there: nothing done) when dropped.
/// Must go before the run dir is removed: removing it recursively would delete the peer's
/// files.
pub struct PeerShmGuard {
    target: PathBuf,
}

impl PeerShmGuard {
    pub fn new(engine: &Engine, id: &str) -> Self {
        PeerShmGuard {
            target: peer_shm_path(engine, id),
        }
    }
}

impl Drop for PeerShmGuard {
    fn drop(&mut self) {
        while rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH).is_ok() {}
        let _ = std::fs::remove_dir(&self.target);
    }
}

/// Where the container's hostname comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uts {
    /// Its own UTS namespace: the runtime sets the hostname, /etc/hostname is ours.
    Own,
    /// The host's: neither the hostname nor /etc/hostname is touched.
    Host,
    /// A peer container's: its /etc/hostname (in its container dir) is shared.
    Peer(PathBuf),
    /// A namespace file's: its hostname stays, /etc/hostname is ours.
    Joined,
}

/// The namespaces of a container about to start.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `linux.namespaces` entries (besides mount and network).
    pub entries: Vec<Value>,
    pub shm: Shm,
    pub uts: Uts,
    /// `--userns keep-id`: the new user namespace's maps and the user it keeps.
    pub keep_id: Option<crate::userns::KeepId>,
}

impl Resolved {
    /// The runtime sets the hostname only in a UTS namespace of the container's own.
    pub fn sets_hostname(&self) -> bool {
        self.uts == Uts::Own
    }

    /// Where /etc/hostname is bound from (none: the host's or the joined namespace's is
    /// left alone).
    pub fn hostname_file(&self, own_dir: &Path) -> Option<PathBuf> {
        match &self.uts {
            Uts::Own | Uts::Joined => Some(own_dir.join("hostname")),
            Uts::Peer(dir) => Some(dir.join("hostname")),
            Uts::Host => None,
        }
    }

    /// What [`Options::resolve`] gives for the default options (no peer involved).
    pub fn defaults() -> Resolved {
        Resolved {
            entries: vec![
                json!({"type": "pid"}),
                json!({"type": "ipc"}),
                json!({"type": "uts"}),
            ],
            shm: Shm::Tmpfs,
            uts: Uts::Own,
            keep_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_like_podman() {
        assert_eq!(Mode::parse(Kind::Pid, Some("host")).unwrap(), Mode::Host);
        assert_eq!(
            Mode::parse(Kind::Pid, Some("container:web")).unwrap(),
            Mode::Container("web".into())
        );
        assert_eq!(Mode::parse(Kind::Ipc, None).unwrap(), Mode::Shareable);
        assert_eq!(Mode::parse(Kind::Ipc, Some("none")).unwrap(), Mode::None);
        assert_eq!(Mode::parse(Kind::Cgroup, None).unwrap(), Mode::Host);
        assert_eq!(
            Mode::parse(Kind::Cgroup, Some("private")).unwrap(),
            Mode::Private
        );
        assert_eq!(
            Mode::parse(Kind::User, Some("ns:/proc/1/ns/user")).unwrap(),
            Mode::Path("/proc/1/ns/user".into())
        );
        assert_eq!(Mode::parse(Kind::User, Some("")).unwrap(), Mode::Host);
        for (kind, bad) in [
            (Kind::Pid, "shareable"),
            (Kind::Uts, "bogus"),
            (Kind::User, "keep-id:uid=5"),
            (Kind::User, "auto"),
            (Kind::User, "private"),
            (Kind::Pid, "container:"),
            (Kind::Pid, "ns:relative"),
        ] {
            let e = Mode::parse(kind, Some(bad)).unwrap_err().to_string();
            assert!(e.contains(kind.flag()) && e.contains(bad), "{e}");
        }
        assert_eq!(
            Mode::parse(Kind::User, Some("keep-id")).unwrap(),
            Mode::KeepId
        );
        assert_eq!(Mode::try_from("keep-id".to_string()).unwrap(), Mode::KeepId);
        assert_eq!(Mode::KeepId.to_string(), "keep-id");
    }

    #[test]
    fn keep_id_is_refused_outside_the_users_namespace() {
        let engine = Engine::new(Path::new("/nonexistent/r"), Path::new("/nonexistent/rr"));
        let mut o = Options {
            user: Mode::KeepId,
            ..Options::default()
        };
        let e = o.check(&engine).unwrap_err().to_string();
        assert!(
            e.contains("--userns") && e.contains("keep-id is only supported in rootless mode"),
            "{e}"
        );
    }

    #[test]
    fn modes_round_trip_through_records() {
        let o = Options {
            pid: Mode::Container("a".repeat(64)),
            ipc: Mode::None,
            uts: Mode::Host,
            cgroup: Mode::Private,
            user: Mode::Path("/proc/7/ns/user".into()),
        };
        let text = serde_json::to_string(&o).unwrap();
        assert!(text.contains("\"ns:/proc/7/ns/user\""), "{text}");
        assert_eq!(serde_json::from_str::<Options>(&text).unwrap(), o);
        assert_eq!(
            serde_json::from_str::<Options>("{}").unwrap(),
            Options::default()
        );
    }

    #[test]
    fn defaults_resolve_without_a_peer() {
        let engine = Engine::new(Path::new("/nonexistent/r"), Path::new("/nonexistent/rr"));
        let r = Options::default().resolve(&engine).unwrap();
        assert_eq!(r.entries, Resolved::defaults().entries);
        let o = Options {
            pid: Mode::Host,
            ipc: Mode::Host,
            uts: Mode::Host,
            cgroup: Mode::Private,
            user: Mode::Path("/x".into()),
        };
        let r = o.resolve(&engine).unwrap();
        assert_eq!(
            r.entries,
            vec![
                json!({"type": "user", "path": "/x"}),
                json!({"type": "cgroup"})
            ]
        );
        assert_eq!(r.shm, Shm::Bind("/dev/shm".into()));
        assert!(!r.sets_hostname() && r.hostname_file(Path::new("/d")).is_none());
    }
}
