//! The OCI config.json of a container, built the way podman builds its own (mounts,
//! masked and read-only paths, default capabilities, the default seccomp profile, rlimits
//! from the caller) from the runtime's default, the image's config and the flags. Pure: the
//! inputs that come from the system (the caller's rlimits, the user database of the root
//! filesystem, device numbers) are passed in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_container::state::CgroupDriver;
use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::{Error, Result};
use crate::namespaces::Shm;
use crate::record::ContainerRecord;

/// The default seccomp profile (podman's, in OCI form).
const DEFAULT_SECCOMP: &str = include_str!("default-seccomp.json");

/// podman's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Every capability by name, at its kernel number (for `--privileged` and `--cap-add ALL`;
/// the runtime drops the ones this kernel does not know): berth-container's one table.
pub fn all_caps() -> impl Iterator<Item = &'static str> {
    berth_container::spec::CAPABILITIES
        .iter()
        .map(|(_, name)| *name)
}

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The cgroup of a container: absolute below every hierarchy's root with cgroupfs, the
/// systemd driver's `slice:prefix:name` (the scope `berth-<id>.scope` in machine.slice,
/// where podman puts its `libpod-<id>.scope`) with systemd.
pub fn cgroups_path(id: &str, manager: CgroupDriver) -> String {
    match manager {
        CgroupDriver::Cgroupfs if crate::userns::active() => {
            let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            rootless_cgroups_path(&own, id)
        }
        CgroupDriver::Cgroupfs => format!("{}/{id}", crate::cgroup_parents::CONTAINERS),
        CgroupDriver::Systemd => format!("machine.slice:berth:{id}"),
    }
}

/// A rootless container's cgroup on cgroup v2: `berth-<id>` beside the cgroup `berth` runs
/// in (`own`: /proc/self/cgroup). A subtree delegated to a user (systemd's user@UID.service)
/// has the user's processes in leaves, and a cgroup with processes cannot hand controllers
/// to children (v2's no-internal-processes rule), so the container goes next to the leaf,
/// into the delegated parent the user may write. cgroup v1 gives a user nothing, and the
/// runtime then runs the container without a cgroup of its own.
fn rootless_cgroups_path(own: &str, id: &str) -> String {
    let unified = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    let parent = std::path::Path::new(unified.trim())
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("/")
        .trim_end_matches('/');
    format!("{parent}/berth-{id}")
}

/// A capability name as the runtime-spec writes it (`net_admin` → `CAP_NET_ADMIN`).
pub fn normalize_cap(name: &str) -> Result<String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") || upper == "ALL" {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if full != "ALL" && !all_caps().any(|c| c == full) {
        return Err(Error::flag(
            "--cap-add/--cap-drop",
            name,
            "unknown capability",
        ));
    }
    Ok(full)
}

/// The capability set: podman's defaults, then the drops, then the additions (docker's
/// order: `--cap-drop ALL --cap-add NET_ADMIN` keeps only NET_ADMIN).
pub fn capabilities(config: &ContainerConfig) -> Result<Vec<String>> {
    if config.privileged {
        return Ok(all_caps().map(str::to_string).collect());
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    for drop in &config.cap_drop {
        let drop = normalize_cap(drop)?;
        if drop == "ALL" {
            caps.clear();
        } else {
            caps.retain(|c| *c != drop);
        }
    }
    for add in &config.cap_add {
        let add = normalize_cap(add)?;
        if add == "ALL" {
            caps = all_caps().map(str::to_string).collect();
        } else if !caps.contains(&add) {
            caps.push(add);
        }
    }
    Ok(caps)
}

/// `KEY=VALUE` lists merged by key, later ones winning, order of first appearance kept.
pub fn merge_env(layers: &[&[String]]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for layer in layers {
        for entry in layer.iter() {
            let key = entry.split('=').next().unwrap_or(entry);
            match out.iter_mut().find(|e| e.split('=').next() == Some(key)) {
                Some(existing) => *existing = entry.clone(),
                None => out.push(entry.clone()),
            }
        }
    }
    out
}

/// The program and arguments docker runs: `--entrypoint` replaces the image's Entrypoint
/// and drops its Cmd; a command given after the image replaces the Cmd.
pub fn command_line(record: &ContainerRecord) -> Result<Vec<String>> {
    let config = &record.config;
    let (entrypoint, cmd) = match &config.entrypoint {
        Some(ep) => (ep.clone(), config.command.clone()),
        None => {
            let cmd = if config.command.is_empty() {
                record.image.cmd.clone().unwrap_or_default()
            } else {
                config.command.clone()
            };
            (record.image.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(Error::Other(format!(
            "no command specified for container {}: the image has no Entrypoint or Cmd; give one after the image",
            record.name
        )));
    }
    Ok(argv)
}

/// The container's hostname: `--hostname`, or the short id (docker's default).
pub fn hostname(record: &ContainerRecord) -> String {
    record
        .config
        .hostname
        .clone()
        .unwrap_or_else(|| record.short_id().to_string())
}

/// A resolved user: uid, gid and the supplementary groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolves `user[:group]` (names or numbers) and `--group-add` against the container's
/// /etc/passwd and /etc/group contents.
pub fn resolve_user(spec: &str, group_add: &[String], passwd: &str, group: &str) -> Result<User> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd_entry = |pred: &dyn Fn(&[&str]) -> bool| {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 4 && pred(f))
    };
    let (uid, primary_gid, user_name) = if user_part.is_empty() {
        (0, 0, "root".to_string())
    } else if let Ok(uid) = user_part.parse::<u32>() {
        match passwd_entry(&|f| f[2] == user_part) {
            Some(f) => (uid, f[3].parse().unwrap_or(0), f[0].to_string()),
            None => (uid, 0, String::new()),
        }
    } else {
        let f = passwd_entry(&|f| f[0] == user_part).ok_or_else(|| {
            Error::flag(
                "--user",
                spec,
                "no such user in the container's /etc/passwd",
            )
        })?;
        (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[0].to_string(),
        )
    };
    let group_id = |name: &str, flag: &'static str| -> Result<u32> {
        if let Ok(gid) = name.parse::<u32>() {
            return Ok(gid);
        }
        group
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && f[0] == name)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| Error::flag(flag, name, "no such group in the container's /etc/group"))
    };
    let gid = match group_part {
        Some(g) => group_id(g, "--user")?,
        None => primary_gid,
    };
    // Supplementary groups from /etc/group (as docker does when no group was given).
    let mut additional_gids: Vec<u32> = Vec::new();
    if group_part.is_none() && !user_name.is_empty() {
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4
                && f[3].split(',').any(|m| m == user_name)
                && let Ok(g) = f[2].parse::<u32>()
                && g != gid
            {
                additional_gids.push(g);
            }
        }
    }
    for g in group_add {
        let g = group_id(g, "--group-add")?;
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

/// A device node of the host, as `stat` found it.
#[derive(Debug, Clone)]
pub struct HostDevice {
    pub container_path: String,
    /// 'c' or 'b'.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub mode: u32,
    pub permissions: String,
}

/// What the spec needs from the system, gathered by the caller.
pub struct Inputs<'a> {
    pub rootfs: &'a Path,
    /// `<root>/containers/<id>`: hosts, hostname and resolv.conf are bind-mounted from here.
    pub container_dir: &'a Path,
    pub user: User,
    /// RLIMIT_NOFILE and RLIMIT_NPROC of the caller: (soft, hard).
    pub nofile: (u64, u64),
    pub nproc: (u64, u64),
    pub devices: Vec<HostDevice>,
    /// A `--security-opt seccomp=FILE` profile's contents.
    pub seccomp_file: Option<String>,
    /// The host has cgroup v1 swap accounting (memory.memsw.*) or v2 memory.swap.max.
    pub swap_accounting: bool,
    /// Our own bounding set (bit n = capability n): `--privileged` and `--cap-add ALL`
    /// give what we have, as docker does, not what we cannot give.
    pub host_caps: u64,
    /// The caller's terminal size (rows, columns), so a `-t` container starts with it.
    pub console_size: Option<(u16, u16)>,
    /// `--network container:X`: X's network namespace (`/proc/PID/ns/net`) and X's container
    /// dir, whose hosts and resolv.conf the container shares, as docker does.
    pub network_peer: Option<(PathBuf, PathBuf)>,
    /// Who makes the container's cgroup (it decides the form of `cgroupsPath`).
    pub cgroup_manager: CgroupDriver,
    /// The pid, IPC, UTS, cgroup and user namespaces, peers resolved.
    pub namespaces: crate::namespaces::Resolved,
    /// `blockIO`'s throttle lists, device numbers resolved.
    pub throttle: Vec<(&'static str, Value)>,
}

/// The bounding set of this process, from /proc/self/status.
pub fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The process's working directory: `--workdir`, else the image's, else `/`.
pub fn working_dir(record: &ContainerRecord) -> Result<String> {
    let cwd = record
        .config
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| Some(record.image.working_dir.clone()).filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(Error::flag("--workdir", cwd, "must be an absolute path"));
    }
    Ok(cwd)
}

/// Builds the config.json of a container.
pub fn build(record: &ContainerRecord, inputs: &Inputs<'_>) -> Result<Spec> {
    let config = &record.config;
    let mut argv = command_line(record)?;
    if config.init.is_some() {
        // docker's --init: the init is PID 1, reaps orphans and forwards signals.
        argv.splice(0..0, ["/dev/init".to_string(), "--".to_string()]);
    }
    let hostname = hostname(record);
    let mut env_base = vec![DEFAULT_PATH.to_string()];
    if config.tty {
        env_base.push("TERM=xterm".into());
    }
    env_base.push("container=berth".into());
    let host_env = [format!("HOSTNAME={hostname}")];
    let env = merge_env(&[&env_base, &record.image.env, &host_env, &config.env]);
    let cwd = working_dir(record)?;
    let mut caps = capabilities(config)?;
    if config.privileged || config.cap_add.iter().any(|c| c.eq_ignore_ascii_case("all")) {
        caps.retain(|c| {
            all_caps()
                .position(|a| a == c)
                .is_none_or(|bit| bit >= 64 || inputs.host_caps & (1u64 << bit) != 0)
        });
    }
    let mut rlimits: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    rlimits.insert("RLIMIT_NOFILE".into(), inputs.nofile);
    rlimits.insert("RLIMIT_NPROC".into(), inputs.nproc);
    for u in &config.ulimits {
        rlimits.insert(u.name.clone(), (u.soft, u.hard));
    }
    let rlimits: Vec<Value> = rlimits
        .iter()
        .map(|(k, (soft, hard))| json!({"type": k, "soft": soft, "hard": hard}))
        .collect();

    let mut process = json!({
        "terminal": config.tty,
        "user": {"uid": inputs.user.uid, "gid": inputs.user.gid, "umask": 18},
        "args": argv,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": rlimits,
        "noNewPrivileges": config.no_new_privileges,
    });
    if let Some((rows, cols)) = inputs.console_size.filter(|_| config.tty) {
        process["consoleSize"] = json!({"height": rows, "width": cols});
    }
    if !inputs.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(inputs.user.additional_gids);
    }

    let dir = inputs.container_dir;
    let shm_size = config.shm_size.unwrap_or(64 << 20);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    ];
    match &inputs.namespaces.shm {
        Shm::Bind(source) => mounts.push(
            json!({"destination": "/dev/shm", "type": "bind", "source": source,
                           "options": ["rbind", "nosuid", "noexec", "nodev"]}),
        ),
        Shm::Tmpfs => mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                           "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]})),
        Shm::Absent => {}
        Shm::Peer(_) => {
            return Err(Error::Other(format!(
                "container {}: the IPC peer's /dev/shm was not exposed for the runtime",
                record.name
            )));
        }
    }
    mounts.push(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    for file in ["hostname", "hosts", "resolv.conf"] {
        if file == "hosts" && config.net.no_hosts {
            continue;
        }
        let source = match &inputs.network_peer {
            _ if file == "hostname" => match inputs.namespaces.hostname_file(dir) {
                Some(source) => source,
                None => continue,
            },
            Some((_, peer_dir)) => peer_dir.join(file),
            _ => dir.join(file),
        };
        mounts.push(
            json!({"destination": format!("/etc/{file}"), "type": "bind",
                           "source": source, "options": ["bind", "rprivate"]}),
        );
    }
    if inputs.namespaces.keep_id.is_some() {
        // the image's files with the user added (`ops::build_spec` wrote them)
        for file in ["passwd", "group"] {
            mounts.push(
                json!({"destination": format!("/etc/{file}"), "type": "bind",
                       "source": dir.join(file), "options": ["bind", "rprivate"]}),
            );
        }
    }
    if let Some(init) = &config.init {
        mounts.push(
            json!({"destination": "/dev/init", "type": "bind", "source": init,
                           "options": ["bind", "rprivate", "ro", "nosuid", "nodev"]}),
        );
    }
    for m in &config.mounts {
        let mut options: Vec<String> = Vec::new();
        match m.kind.as_str() {
            // A volume is a bind of its directory (`ops::create` resolved the name).
            "bind" | "volume" => {
                options.push("rbind".into());
                if !m
                    .options
                    .iter()
                    .any(|o| o.contains("shared") || o.contains("slave"))
                {
                    options.push("rprivate".into());
                }
                options.extend(m.options.iter().cloned());
                if m.read_only {
                    options.push("ro".into());
                }
                mounts.push(json!({"destination": m.destination, "type": "bind",
                                   "source": m.source, "options": options}));
            }
            _ => {
                options.extend(["nosuid".to_string(), "nodev".to_string()]);
                options.extend(m.options.iter().cloned());
                if m.read_only {
                    options.push("ro".into());
                }
                mounts.push(json!({"destination": m.destination, "type": "tmpfs",
                                   "source": "tmpfs", "options": options}));
            }
        }
    }

    let mut namespaces = vec![json!({"type": "mount"})];
    namespaces.extend(inputs.namespaces.entries.iter().cloned());
    match (&inputs.network_peer, config.network) {
        (Some((netns, _)), _) => namespaces.push(json!({"type": "network", "path": netns})),
        (None, NetworkMode::Host) => {}
        (None, _) => namespaces.push(json!({"type": "network"})),
    }

    let mut sysctl: BTreeMap<String, String> = BTreeMap::new();
    if config.network != NetworkMode::Host {
        sysctl.insert("net.ipv4.ping_group_range".into(), "0 0".into());
    }
    sysctl.extend(config.sysctls.clone());

    let r = &config.resources;
    let mut resources = json!({});
    let mut device_rules = vec![json!({"allow": config.privileged, "access": "rwm"})];
    let mut devices = Vec::new();
    for d in &inputs.devices {
        devices.push(json!({"path": d.container_path, "type": d.kind.to_string(),
                            "major": d.major, "minor": d.minor, "fileMode": d.mode,
                            "uid": 0, "gid": 0}));
        device_rules.push(
            json!({"allow": true, "type": d.kind.to_string(), "major": d.major,
                                 "minor": d.minor, "access": d.permissions}),
        );
    }
    resources["devices"] = json!(device_rules);
    let mut memory = json!({});
    if let Some(limit) = r.memory {
        memory["limit"] = json!(limit);
        if inputs.swap_accounting {
            // docker: without --memory-swap, as much swap as memory (swap = 2 x memory).
            let swap = match r.memory_swap {
                Some(s) => s,
                None => (limit as i64).saturating_mul(2),
            };
            memory["swap"] = json!(swap);
        }
    } else if let Some(s) = r.memory_swap
        && inputs.swap_accounting
        && s == -1
    {
        memory["swap"] = json!(-1);
    }
    if let Some(res) = r.memory_reservation {
        memory["reservation"] = json!(res);
    }
    if r.oom_kill_disable {
        memory["disableOOMKiller"] = json!(true);
    }
    if memory.as_object().is_some_and(|m| !m.is_empty()) {
        resources["memory"] = memory;
    }
    if let Some(cpu) = crate::limit::cpu_resources(r) {
        resources["cpu"] = cpu;
    }
    // podman's default pids limit (not for a user: a default must not make a container
    // need a cgroup that cgroup v1 does not give a user).
    let default_pids = if crate::userns::active() { 0 } else { 2048 };
    let pids = r.pids_limit.unwrap_or(default_pids);
    if pids > 0 {
        resources["pids"] = json!({"limit": pids});
    }
    let mut block_io = json!({});
    if let Some(w) = r.blkio_weight {
        block_io["weight"] = json!(w);
    }
    for (key, list) in &inputs.throttle {
        block_io[*key] = list.clone();
    }
    if block_io.as_object().is_some_and(|b| !b.is_empty()) {
        resources["blockIO"] = block_io;
    }

    if crate::userns::active() {
        let limits = ["memory", "cpu", "pids", "blockIO"]
            .iter()
            .any(|k| resources.get(k).is_some());
        refuse_rootless_limits_on_v1(limits)?;
    }
    let mut linux = json!({
        "sysctl": sysctl,
        "resources": resources,
        "cgroupsPath": cgroups_path(&record.id, inputs.cgroup_manager),
        "namespaces": namespaces,
    });
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }
    if let Some(keep) = &inputs.namespaces.keep_id {
        let maps = |maps: &[crate::rootless::IdMap]| -> Value {
            maps.iter()
                .map(|m| json!({"containerID": m.container, "hostID": m.host, "size": m.size}))
                .collect()
        };
        linux["uidMappings"] = maps(&keep.uid_maps);
        linux["gidMappings"] = maps(&keep.gid_maps);
    }
    if !config.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        let profile = match config.seccomp.as_deref() {
            Some("unconfined") => None,
            Some(_) => inputs.seccomp_file.clone(),
            None => Some(DEFAULT_SECCOMP.to_string()),
        };
        if let Some(text) = profile {
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                Error::flag(
                    "--security-opt seccomp",
                    config.seccomp.clone().unwrap_or_default(),
                    e.to_string(),
                )
            })?;
            linux["seccomp"] = value;
        }
    }

    let mut annotations = json!({
        "io.container.manager": "berth",
        "org.opencontainers.image.stopSignal": crate::signals::stop_signal_number(record).to_string(),
    });
    for (k, v) in &config.labels {
        annotations[k] = json!(v);
    }

    let mut spec = json!({
        "ociVersion": berth_container::state::OCI_VERSION,
        "process": process,
        "root": {"path": inputs.rootfs, "readonly": config.read_only},
        "mounts": mounts,
        "annotations": annotations,
        "linux": linux,
    });
    if inputs.namespaces.sets_hostname() {
        spec["hostname"] = json!(hostname);
    }
    serde_json::from_value(spec).map_err(|e| {
        Error::Other(format!(
            "container {}: building config.json: {e}",
            record.name
        ))
    })
}

/// /etc/hosts of a container.
/// A rootless container's limits need a cgroup of the user's own: cgroup v2 can delegate a
/// subtree to a user, cgroup v1 gives a user none. podman then warns and runs without the
/// limits; a limit the user asked for must not silently vanish, so berth refuses.
pub fn refuse_rootless_limits_on_v1(limits: bool) -> Result<()> {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let v2 = rustix::fs::statfs("/sys/fs/cgroup").is_ok_and(|fs| fs.f_type == CGROUP2_SUPER_MAGIC);
    if limits && !v2 {
        return Err(Error::Rootless(
            "resource limits (--memory, --cpus, --cpu-shares, --pids-limit, --blkio-weight, \
             --device-*-bps/iops) need a cgroup of the user's own, and on this cgroup v1 \
             host an unprivileged user gets none: run without them (as root they work), or \
             on a cgroup v2 host that delegates a subtree to the user"
                .into(),
        ));
    }
    Ok(())
}

pub fn hosts_file(record: &ContainerRecord) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in &record.config.add_hosts {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    let hostname = hostname(record);
    text.push_str(&format!("127.0.1.1\t{hostname} {}\n", record.name));
    text
}

/// /etc/resolv.conf of a container: the host's without loopback resolvers (they do not
/// answer inside a private network namespace), or the `--dns*` flags. No resolver is ever
/// added that neither the host nor the user named.
pub fn resolv_conf(host: &str, config: &ContainerConfig) -> String {
    let mut nameservers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    let loopback = ns.starts_with("127.") || ns == "::1";
                    if !loopback || config.network == NetworkMode::Host {
                        nameservers.push(ns.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    if !config.dns.is_empty() {
        nameservers = config.dns.clone();
    }
    if !config.dns_search.is_empty() {
        search = config.dns_search.clone();
    }
    if !config.dns_options.is_empty() {
        options = config.dns_options.clone();
    }
    let mut text = String::new();
    if !search.is_empty() {
        text.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in nameservers {
        text.push_str(&format!("nameserver {ns}\n"));
    }
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MountSpec, Ulimit};

    fn record() -> ContainerRecord {
        ContainerRecord {
            id: "a".repeat(64),
            name: "web".into(),
            config: ContainerConfig {
                command: vec!["sh".into()],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn inputs<'a>(dir: &'a Path) -> Inputs<'a> {
        Inputs {
            rootfs: dir,
            container_dir: dir,
            user: User::default(),
            nofile: (1024, 4096),
            nproc: (100, 200),
            devices: Vec::new(),
            seccomp_file: None,
            swap_accounting: true,
            host_caps: u64::MAX,
            console_size: None,
            network_peer: None,
            cgroup_manager: CgroupDriver::Cgroupfs,
            namespaces: crate::namespaces::Resolved::defaults(),
            throttle: Vec::new(),
        }
    }

    #[test]
    fn defaults_mirror_podman() {
        let r = record();
        let spec = build(&r, &inputs(Path::new("/x"))).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["hostname"], "aaaaaaaaaaaa");
        assert_eq!(
            v["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            11
        );
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], 2048);
        assert_eq!(
            rootless_cgroups_path(
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/shell.scope\n",
                "c1"
            ),
            "/user.slice/user-1000.slice/user@1000.service/app.slice/berth-c1"
        );
        assert_eq!(
            rootless_cgroups_path("0::/deleg/shell\n", "c1"),
            "/deleg/berth-c1"
        );
        assert_eq!(rootless_cgroups_path("0::/\n", "c1"), "/berth-c1");
        assert_eq!(rootless_cgroups_path("12:cpu:/x\n", "c1"), "/berth-c1");
        assert_eq!(v["linux"]["cgroupsPath"], format!("/berth/{}", r.id));
        let systemd = Inputs {
            cgroup_manager: CgroupDriver::Systemd,
            ..inputs(Path::new("/x"))
        };
        let v = serde_json::to_value(build(&r, &systemd).unwrap()).unwrap();
        assert_eq!(
            v["linux"]["cgroupsPath"],
            format!("machine.slice:berth:{}", r.id)
        );
        assert!(v["linux"]["seccomp"]["syscalls"].is_array());
        let rl = v["process"]["rlimits"].as_array().unwrap();
        assert!(
            rl.iter()
                .any(|l| l["type"] == "RLIMIT_NOFILE" && l["hard"] == 4096)
        );
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"network") && ns.contains(&"pid"));
        let env = v["process"]["env"].as_array().unwrap();
        assert!(env.iter().any(|e| e == "HOSTNAME=aaaaaaaaaaaa"));
    }

    #[test]
    fn flags_change_the_spec() {
        let mut r = record();
        r.config.resources.memory = Some(256 << 20);
        r.config.resources.nano_cpus = Some(1_500_000_000);
        r.config.network = NetworkMode::Host;
        r.config.cap_drop = vec!["ALL".into()];
        r.config.cap_add = vec!["net_admin".into()];
        r.config.read_only = true;
        r.config.ulimits = vec![Ulimit::parse("nofile=10:20").unwrap()];
        r.config.mounts = vec![MountSpec::parse_volume("/tmp:/data:ro").unwrap()];
        r.config.seccomp = Some("unconfined".into());
        let mut i = inputs(Path::new("/x"));
        i.namespaces.entries.retain(|e| e["type"] != "pid");
        let v = serde_json::to_value(build(&r, &i).unwrap()).unwrap();
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 256 << 20);
        assert_eq!(v["linux"]["resources"]["memory"]["swap"], 512 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            json!(["CAP_NET_ADMIN"])
        );
        assert_eq!(v["root"]["readonly"], true);
        assert!(v["linux"]["seccomp"].is_null());
        let ns = v["linux"]["namespaces"].to_string();
        assert!(!ns.contains("network") && !ns.contains("\"pid\""));
        let mounts = v["mounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["destination"] == "/data"
            && m["options"].as_array().unwrap().contains(&json!("ro"))));
        let rl = v["process"]["rlimits"].as_array().unwrap();
        assert!(
            rl.iter()
                .any(|l| l["type"] == "RLIMIT_NOFILE" && l["soft"] == 10)
        );
        assert!(normalize_cap("bogus").is_err());
    }

    #[test]
    fn image_entrypoint_and_cmd_combine_like_docker() {
        let mut r = record();
        r.config.command.clear();
        r.image.entrypoint = Some(vec!["/ep".into()]);
        r.image.cmd = Some(vec!["a".into()]);
        assert_eq!(command_line(&r).unwrap(), vec!["/ep", "a"]);
        r.config.command = vec!["b".into()];
        assert_eq!(command_line(&r).unwrap(), vec!["/ep", "b"]);
        r.config.entrypoint = Some(vec!["/other".into()]);
        assert_eq!(command_line(&r).unwrap(), vec!["/other", "b"]);
        r.config.command.clear();
        assert_eq!(command_line(&r).unwrap(), vec!["/other"]);
        r.config.entrypoint = Some(vec![]);
        assert!(command_line(&r).is_err());
    }

    #[test]
    fn users_resolve_from_the_container() {
        let passwd = "root:x:0:0::/root:/bin/sh\nuser:x:1000:100::/tmp:/bin/sh\n";
        let group = "root:x:0:\nusers:x:100:\nwheel:x:10:user\n";
        let u = resolve_user("user", &[], passwd, group).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 100, vec![10])
        );
        let u = resolve_user("1000:0", &["users".into()], passwd, group).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 0, vec![100]));
        let u = resolve_user("4242", &[], passwd, group).unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        assert!(resolve_user("nobody", &[], passwd, group).is_err());
    }

    #[test]
    fn resolv_conf_drops_loopback_resolvers() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch example\n";
        let c = ContainerConfig::default();
        assert_eq!(
            resolv_conf(host, &c),
            "search example\nnameserver 10.0.0.1\n"
        );
        let c = ContainerConfig {
            dns: vec!["127.0.0.1".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, &c),
            "search example\nnameserver 127.0.0.1\n"
        );
    }
}
