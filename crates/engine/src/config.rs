//! What a container is made from: the flags of `run`/`create` as typed data, kept in the
//! record (so `start`, `restart` and `inspect` see exactly what was asked), and the parsers
//! that turn docker's flag syntax into it. Nothing here touches the system.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::units::{parse_duration, parse_size};

/// Everything `run`/`create` was told, after parsing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    /// The image as the user named it (or the `--rootfs` directory).
    pub image: String,
    /// `--rootfs DIR`: a plain directory used as the root filesystem.
    pub rootfs: Option<PathBuf>,
    /// The command after the image (replaces the image's Cmd).
    pub command: Vec<String>,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd); `Some([])` for
    /// `--entrypoint ""`.
    pub entrypoint: Option<Vec<String>>,
    /// `-e`/`--env-file`, resolved (`KEY=value`).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub group_add: Vec<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub interactive: bool,
    pub read_only: bool,
    pub mounts: Vec<MountSpec>,
    pub shm_size: Option<u64>,
    pub devices: Vec<DeviceSpec>,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `--security-opt seccomp=`: a profile file, or `unconfined`.
    pub seccomp: Option<String>,
    pub no_new_privileges: bool,
    pub network: NetworkMode,
    /// `--pid`, `--ipc`, `--uts`, `--cgroupns`, `--userns`.
    pub namespaces: crate::namespaces::Options,
    /// Records from before `namespaces`: read, never written (see
    /// [`ContainerConfig::namespace_options`]).
    #[serde(skip_serializing)]
    pub pid_host: bool,
    #[serde(skip_serializing)]
    pub ipc_host: bool,
    #[serde(skip_serializing)]
    pub uts_host: bool,
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL.
    pub stop_timeout: Option<u64>,
    pub resources: Resources,
    pub restart: RestartPolicy,
    /// `--rm`.
    pub auto_remove: bool,
    pub health: Option<HealthConfig>,
    pub no_healthcheck: bool,
    pub log: LogConfig,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP`.
    pub add_hosts: Vec<(String, String)>,
    /// `--network` and the flags that go with it (`-p`, `--ip`, `--network-alias`, ...),
    /// validated; `network` above is the namespace this asks for.
    pub net: crate::network::NetworkOptions,
    /// `--init`: the host's init binary (found at create), bound read-only at /dev/init and
    /// run as the container's PID 1 ahead of its command.
    pub init: Option<PathBuf>,
}

impl ContainerConfig {
    /// The namespace modes, with the host flags of an older record applied.
    pub fn namespace_options(&self) -> crate::namespaces::Options {
        use crate::namespaces::Mode;
        let mut o = self.namespaces.clone();
        for (legacy, mode) in [
            (self.pid_host, &mut o.pid),
            (self.ipc_host, &mut o.ipc),
            (self.uts_host, &mut o.uts),
        ] {
            if legacy {
                *mode = Mode::Host;
            }
        }
        o
    }

    /// The network as `ps` and `inspect` name it: `--network`'s value (`bridge` when not
    /// given), or for a record from before bridge networks its namespace mode.
    pub fn network_name(&self) -> &str {
        if self.net.network.is_empty() {
            self.network.name()
        } else {
            &self.net.network
        }
    }
}

/// Where docker and Debian's tini package put a static init (a dynamic one would need the
/// host's libc inside the container).
pub const INIT_CANDIDATES: &[&str] = &[
    "/usr/bin/tini-static",
    "/usr/bin/docker-init",
    "/usr/libexec/docker/docker-init",
    "/usr/local/bin/docker-init",
];

/// The init for `--init`: `--init-path` when given (it must be a file), else the first of
/// [`INIT_CANDIDATES`] that exists.
pub fn find_init(init_path: Option<&std::path::Path>) -> Result<PathBuf> {
    if let Some(path) = init_path {
        return match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(path.to_path_buf()),
            Ok(_) => Err(Error::flag(
                "--init-path",
                path.display().to_string(),
                "not a file",
            )),
            Err(e) => Err(Error::flag(
                "--init-path",
                path.display().to_string(),
                e.to_string(),
            )),
        };
    }
    INIT_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::flag(
                "--init",
                "true",
                format!(
                    "no init binary found (looked for {}); install tini (Debian: apt-get install tini) or give --init-path",
                    INIT_CANDIDATES.join(", ")
                ),
            )
        })
}

/// The network namespace a container gets: its own (bridge networks, `none`, and
/// `container:X`, whose namespace replaces it at start), or the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Private,
    None,
    Host,
}

impl NetworkMode {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "private" | "default" | "bridge" | "" => Ok(NetworkMode::Private),
            other => Err(Error::flag(
                "--network",
                other,
                "only none, host and the default private namespace exist so far",
            )),
        }
    }

    /// The name docker shows in `HostConfig.NetworkMode`.
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::Private => "private",
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
        }
    }
}

/// A mount asked for with `-v`, `--mount` or `--tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    pub source: Option<PathBuf>,
    pub destination: String,
    pub read_only: bool,
    /// Extra options (tmpfs size/mode, bind propagation).
    pub options: Vec<String>,
}

impl MountSpec {
    /// `-v SRC:DST[:OPTS]` (OPTS: ro, rw, z, Z, and propagation). SRC is a host path
    /// (absolute) or the name of a volume; `-v DST` alone is an anonymous volume. A
    /// volume's `source` is its name here (none when anonymous) until `create` puts the
    /// volume's directory there.
    pub fn parse_volume(text: &str) -> Result<Self> {
        let bad = |m: &str| Error::flag("-v/--volume", text, m);
        let parts: Vec<&str> = text.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [dst] => ("", *dst, ""),
            [src, dst] => (*src, *dst, ""),
            [src, dst, opts] => (*src, *dst, *opts),
            _ => return Err(bad("expected [SRC:]DST[:OPTIONS]")),
        };
        let (kind, source) = if src.starts_with('/') {
            ("bind", Some(PathBuf::from(src)))
        } else if src.is_empty() {
            ("volume", None)
        } else if crate::volume::valid_name(src) {
            ("volume", Some(PathBuf::from(src)))
        } else {
            return Err(bad(
                "SRC must be an absolute host path or a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
            ));
        };
        if !dst.starts_with('/') {
            return Err(bad("the destination must be an absolute path"));
        }
        let mut spec = MountSpec {
            kind: kind.into(),
            source,
            destination: dst.to_string(),
            read_only: false,
            options: Vec::new(),
        };
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            match opt {
                "ro" => spec.read_only = true,
                "rw" => spec.read_only = false,
                // SELinux relabelling: there is no SELinux here; accepted as docker does.
                "z" | "Z" => {}
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => {
                    spec.options.push(opt.to_string())
                }
                other => return Err(bad(&format!("unknown option {other:?}"))),
            }
        }
        Ok(spec)
    }

    /// `--mount type=bind|tmpfs,source=...,target=...[,readonly][,tmpfs-size=..][,tmpfs-mode=..]`.
    pub fn parse_mount(text: &str) -> Result<Self> {
        let bad = |m: &str| Error::flag("--mount", text, m);
        let mut kind = "volume".to_string();
        let mut source = None;
        let mut destination = None;
        let mut read_only = false;
        let mut options = Vec::new();
        for field in text.split(',') {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (field, None),
            };
            match (key, value) {
                ("type", Some(v)) => kind = v.to_string(),
                ("source" | "src", Some(v)) => source = Some(PathBuf::from(v)),
                ("target" | "destination" | "dst", Some(v)) => destination = Some(v.to_string()),
                ("readonly" | "ro", None | Some("true" | "1")) => read_only = true,
                ("readonly" | "ro", Some("false" | "0")) => read_only = false,
                ("bind-propagation", Some(v)) => options.push(v.to_string()),
                ("tmpfs-size", Some(v)) => {
                    let size = parse_size(v).ok_or_else(|| bad("tmpfs-size is not a size"))?;
                    options.push(format!("size={size}"));
                }
                ("tmpfs-mode", Some(v)) => options.push(format!("mode={v}")),
                _ => return Err(bad(&format!("unknown field {field:?}"))),
            }
        }
        let destination = destination.ok_or_else(|| bad("target= is required"))?;
        if !destination.starts_with('/') {
            return Err(bad("the target must be an absolute path"));
        }
        match kind.as_str() {
            "bind" => {
                let src = source
                    .as_ref()
                    .ok_or_else(|| bad("source= is required for a bind"))?;
                if !src.is_absolute() {
                    return Err(bad("the source of a bind must be an absolute path"));
                }
            }
            "tmpfs" => source = None,
            "volume" => {
                if let Some(name) = &source
                    && !crate::volume::valid_name(&name.to_string_lossy())
                {
                    return Err(bad("source= of a volume must be a volume name"));
                }
            }
            other => return Err(bad(&format!("unknown type {other:?}"))),
        }
        Ok(MountSpec {
            kind,
            source,
            destination,
            read_only,
            options,
        })
    }

    /// `--tmpfs DST[:OPTIONS]`.
    pub fn parse_tmpfs(text: &str) -> Result<Self> {
        let (dst, opts) = text.split_once(':').unwrap_or((text, ""));
        if !dst.starts_with('/') {
            return Err(Error::flag(
                "--tmpfs",
                text,
                "the destination must be an absolute path",
            ));
        }
        let mut options: Vec<String> = opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        let read_only = options.iter().any(|o| o == "ro");
        options.retain(|o| o != "ro" && o != "rw");
        Ok(MountSpec {
            kind: "tmpfs".into(),
            source: None,
            destination: dst.to_string(),
            read_only,
            options,
        })
    }
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    pub host: PathBuf,
    pub container: String,
    pub permissions: String,
}

impl DeviceSpec {
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split(':').collect();
        let is_perm = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
        let (host, container, permissions) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, p] if is_perm(p) => (*h, *h, *p),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] if is_perm(p) => (*h, *c, *p),
            _ => {
                return Err(Error::flag(
                    "--device",
                    text,
                    "expected HOST[:CONTAINER][:rwm]",
                ));
            }
        };
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(Error::flag(
                "--device",
                text,
                "device paths must be absolute",
            ));
        }
        Ok(DeviceSpec {
            host: PathBuf::from(host),
            container: container.to_string(),
            permissions: permissions.to_string(),
        })
    }
}

/// `--ulimit NAME=SOFT[:HARD]` (`-1` is unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// The OCI name, `RLIMIT_NOFILE`.
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
    "as",
];

impl Ulimit {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |m: &str| Error::flag("--ulimit", text, m);
        let (name, values) = text
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=SOFT[:HARD]"))?;
        if !ULIMITS.contains(&name) {
            return Err(bad(&format!("unknown limit {name:?}")));
        }
        let value = |v: &str| -> Result<u64> {
            if v == "-1" || v == "unlimited" {
                return Ok(u64::MAX);
            }
            v.parse()
                .map_err(|_| bad(&format!("{v:?} is not a number")))
        };
        let (soft, hard) = match values.split_once(':') {
            Some((s, h)) => (value(s)?, value(h)?),
            None => (value(values)?, value(values)?),
        };
        if soft > hard {
            return Err(bad("the soft limit is above the hard limit"));
        }
        Ok(Ulimit {
            name: format!("RLIMIT_{}", name.to_ascii_uppercase()),
            soft,
            hard,
        })
    }
}

/// The resource flags (docker's `HostConfig` names in comments).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Memory, bytes.
    pub memory: Option<u64>,
    /// MemorySwap: memory + swap, bytes; -1 unlimited.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<u64>,
    pub oom_kill_disable: bool,
    /// NanoCpus.
    pub nano_cpus: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// BlkioDeviceReadBps, BlkioDeviceWriteBps, BlkioDeviceReadIOps, BlkioDeviceWriteIOps.
    pub throttle: crate::throttle::Throttle,
}

impl Resources {
    /// Whether any limit is asked for (what needs a cgroup of the container's own).
    pub fn limits_asked(&self) -> bool {
        self.memory.is_some()
            || self.memory_reservation.is_some()
            || self.oom_kill_disable
            || self.nano_cpus.is_some()
            || self.cpu_shares.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_period.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
            || self.pids_limit.is_some_and(|p| p > 0)
            || self.blkio_weight.is_some()
            || !self.throttle.is_empty()
    }

    /// `--cpus 1.5`.
    pub fn parse_cpus(text: &str) -> Result<u64> {
        let cpus: f64 = text
            .parse()
            .map_err(|_| Error::flag("--cpus", text, "not a number"))?;
        if cpus <= 0.0 {
            return Err(Error::flag("--cpus", text, "must be above 0"));
        }
        Ok((cpus * 1e9) as u64)
    }

    /// `--memory-swap`: a size, or -1 for unlimited.
    pub fn parse_swap(text: &str) -> Result<i64> {
        if text == "-1" {
            return Ok(-1);
        }
        parse_size(text)
            .map(|v| v as i64)
            .ok_or_else(|| Error::flag("--memory-swap", text, "not a size"))
    }
}

/// `--restart`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// "no", "on-failure", "always", "unless-stopped" (docker's `Name`, "" = no).
    pub name: String,
    pub maximum_retry_count: u32,
}

impl RestartPolicy {
    pub fn parse(text: &str) -> Result<Self> {
        let (name, count) = match text.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (text, None),
        };
        let bad = |m: &str| Error::flag("--restart", text, m);
        let maximum_retry_count = match (name, count) {
            ("on-failure", Some(c)) => c.parse().map_err(|_| bad("the count is not a number"))?,
            (_, Some(_)) => return Err(bad("only on-failure takes a count")),
            _ => 0,
        };
        match name {
            "no" | "" | "on-failure" | "always" | "unless-stopped" => Ok(RestartPolicy {
                name: if name.is_empty() {
                    "no".into()
                } else {
                    name.into()
                },
                maximum_retry_count,
            }),
            _ => Err(bad("expected no, on-failure[:N], always or unless-stopped")),
        }
    }

    /// Whether a container that exited with `code` (not stopped by the user) restarts,
    /// after `restarts` restarts so far.
    pub fn should_restart(&self, code: i32, restarts: u32) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0 && (self.maximum_retry_count == 0 || restarts < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

/// `--health-*` (or the image's Healthcheck).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// docker's Test: `["CMD-SHELL", "cmd"]` or `["CMD", "prog", "arg"]`.
    pub test: Vec<String>,
    #[serde(with = "duration_nanos")]
    pub interval: Duration,
    #[serde(with = "duration_nanos")]
    pub timeout: Duration,
    #[serde(with = "duration_nanos")]
    pub start_period: Duration,
    pub retries: u32,
}

impl HealthConfig {
    /// docker's defaults: every 30 s, 30 s timeout, 3 retries, no start period.
    pub fn with_defaults(test: Vec<String>) -> Self {
        HealthConfig {
            test,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period: Duration::ZERO,
            retries: 3,
        }
    }

    /// The command line to exec for one check.
    pub fn argv(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
            }
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            _ => None,
        }
    }
}

/// A duration flag of the healthcheck family.
pub fn parse_health_duration(flag: &'static str, text: &str) -> Result<Duration> {
    parse_duration(text).ok_or_else(|| Error::flag(flag, text, "not a duration (30s, 1m, 500ms)"))
}

mod duration_nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_nanos() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_nanos(u64::deserialize(d)?))
    }
}

/// `--log-opt max-size=10m --log-opt max-file=3` (docker's json-file options).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    pub max_size: Option<u64>,
    /// How many files at most (the current one included); 1 without rotation.
    pub max_file: u32,
}

impl LogConfig {
    /// Applies one `--log-opt KEY=VALUE`.
    pub fn apply(&mut self, text: &str) -> Result<()> {
        let bad = |m: &str| Error::flag("--log-opt", text, m);
        match text.split_once('=') {
            Some(("max-size", v)) => {
                self.max_size = Some(
                    parse_size(v)
                        .filter(|s| *s > 0)
                        .ok_or_else(|| bad("not a size"))?,
                )
            }
            Some(("max-file", v)) => {
                self.max_file = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("must be a number >= 1"))?
            }
            _ => return Err(bad("only max-size= and max-file= are known (json-file)")),
        }
        Ok(())
    }

    /// Files kept: the current one and max_file-1 rotated ones.
    pub fn files(&self) -> u32 {
        self.max_file.max(1)
    }
}

/// `-e KEY=VALUE` or `-e KEY` (taken from our environment; skipped when unset, as docker).
pub fn parse_env(text: &str) -> Option<String> {
    if text.contains('=') {
        Some(text.to_string())
    } else {
        std::env::var(text).ok().map(|v| format!("{text}={v}"))
    }
}

/// The lines of an `--env-file`: `KEY=VALUE` or `KEY`; `#` comments and blank lines skipped.
pub fn parse_env_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::path("read --env-file", path, e))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_env)
        .collect())
}

/// `-l KEY=VALUE` (`KEY` alone is an empty value).
pub fn parse_label(text: &str) -> (String, String) {
    match text.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (text.to_string(), String::new()),
    }
}

/// `--sysctl KEY=VALUE`.
pub fn parse_sysctl(text: &str) -> Result<(String, String)> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| Error::flag("--sysctl", text, "expected KEY=VALUE"))
}

/// `--add-host NAME:IP`.
pub fn parse_add_host(text: &str) -> Result<(String, String)> {
    text.split_once(':')
        .filter(|(n, ip)| !n.is_empty() && !ip.is_empty())
        .map(|(n, ip)| (n.to_string(), ip.to_string()))
        .ok_or_else(|| Error::flag("--add-host", text, "expected NAME:IP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_like_docker() {
        let v = MountSpec::parse_volume("/a:/b:ro").unwrap();
        assert_eq!(v.source.as_deref(), Some(std::path::Path::new("/a")));
        assert_eq!(v.destination, "/b");
        assert!(v.read_only);
        assert!(!MountSpec::parse_volume("/a:/b").unwrap().read_only);
        let named = MountSpec::parse_volume("vol:/b").unwrap();
        assert_eq!(
            (named.kind.as_str(), named.source.as_deref()),
            ("volume", Some(std::path::Path::new("vol")))
        );
        let anonymous = MountSpec::parse_volume("/b").unwrap();
        assert_eq!(
            (anonymous.kind.as_str(), anonymous.source),
            ("volume", None)
        );
        assert!(MountSpec::parse_volume("-bad:/b").is_err());
        assert!(MountSpec::parse_volume("/a:b").is_err());
        assert!(MountSpec::parse_volume("/a:/b:bogus").is_err());
    }

    #[test]
    fn mounts_and_tmpfs_parse() {
        let m = MountSpec::parse_mount("type=bind,src=/x,dst=/y,readonly").unwrap();
        assert_eq!((m.kind.as_str(), m.read_only), ("bind", true));
        let t = MountSpec::parse_mount("type=tmpfs,target=/t,tmpfs-size=1m").unwrap();
        assert_eq!(t.options, vec!["size=1048576".to_string()]);
        assert!(MountSpec::parse_mount("type=bind,dst=/y").is_err());
        let t = MountSpec::parse_tmpfs("/run:size=64k,mode=700").unwrap();
        assert_eq!(t.options, vec!["size=64k", "mode=700"]);
    }

    #[test]
    fn devices_ulimits_restart() {
        let d = DeviceSpec::parse("/dev/fuse:rw").unwrap();
        assert_eq!(
            (d.container.as_str(), d.permissions.as_str()),
            ("/dev/fuse", "rw")
        );
        let d = DeviceSpec::parse("/dev/null:/dev/mynull").unwrap();
        assert_eq!(d.container, "/dev/mynull");
        let u = Ulimit::parse("nofile=100:200").unwrap();
        assert_eq!(
            (u.name.as_str(), u.soft, u.hard),
            ("RLIMIT_NOFILE", 100, 200)
        );
        assert!(Ulimit::parse("nofile=300:200").is_err());
        assert!(Ulimit::parse("bogus=1").is_err());
        let r = RestartPolicy::parse("on-failure:3").unwrap();
        assert!(r.should_restart(1, 2) && !r.should_restart(1, 3) && !r.should_restart(0, 0));
        assert!(
            RestartPolicy::parse("always")
                .unwrap()
                .should_restart(0, 100)
        );
        assert!(!RestartPolicy::parse("no").unwrap().should_restart(1, 0));
        assert!(RestartPolicy::parse("sometimes").is_err());
    }

    #[test]
    fn cpus_logs_and_health() {
        assert_eq!(Resources::parse_cpus("1.5").unwrap(), 1_500_000_000);
        assert!(Resources::parse_cpus("0").is_err());
        let mut log = LogConfig::default();
        log.apply("max-size=1k").unwrap();
        log.apply("max-file=3").unwrap();
        assert_eq!((log.max_size, log.files()), (Some(1024), 3));
        assert!(log.apply("compress=true").is_err());
        let h = HealthConfig::with_defaults(vec!["CMD-SHELL".into(), "true".into()]);
        assert_eq!(h.argv().unwrap(), vec!["/bin/sh", "-c", "true"]);
    }
}
