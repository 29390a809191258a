//! `berth limit PID`: put a process that already runs on the host under limits, as the
//! runtime puts a container's init (the seed's section 4: redis under 256 MiB).
//!
//! The process gets a cgroup of its own, `/berth-limit/<pid>`, in every hierarchy the host
//! has (on a hybrid host every v1 controller, name=systemd and the cgroup2 mount), made and
//! limited by `berth-cgroups` exactly as a container's is. Writing the pid to
//! `cgroup.procs` moves the whole thread group under the kernel's threadgroup lock, so
//! every thread moves at once and none created meanwhile is left behind. The memory it
//! already uses comes along where the kernel still can move charges (v1
//! `memory.move_charge_at_immigrate`), so the limit counts what the process holds, not
//! only what it allocates from now on.
//!
//! What was done is kept in `<runroot>/limits/<pid>.json` (with the process's start time,
//! so a recycled pid is never mistaken for it) for `--list` and `--release`, which moves
//! every process of the cgroup back where the process was and removes the cgroup.
//!
//! OOM: a process killed for memory is reported as a container is:
//! "berth: process PID was killed by the kernel: out of memory (limit 16 MiB)" — by
//! [`watch`] (`limit --wait`) the moment it happens, else by `--list` and `--release`
//! afterwards (the cgroup keeps the kill count until it is removed).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_cgroups::{
    Cgroup, CgroupsPath, Controller, Join, Layout, Mode, OomEvent, PlanOptions, Version,
    proc_cgroup::ProcCgroup,
};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::config::Resources;

/// The parent of every limit's cgroup, in each hierarchy.
pub const CGROUP_PARENT: &str = "/berth-limit";

/// What can go wrong putting a process under limits.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("no process with pid {0}")]
    NoProcess(i32),
    #[error("process {0} is not under berth limits (berth limit --list shows those that are)")]
    NotLimited(i32),
    #[error(
        "berth limit {0}: give at least one limit (-m, --memory-swap, --cpus, --cpu-shares, --pids-limit)"
    )]
    NoLimits(i32),
    #[error("process {pid}: {step}: {source}")]
    Cgroup {
        pid: i32,
        step: &'static str,
        #[source]
        source: berth_cgroups::Error,
    },
    #[error("process {pid}: {step} {}: {source}", path.display())]
    Path {
        pid: i32,
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("process {pid}: {message}")]
    Other { pid: i32, message: String },
}

pub type Result<T, E = LimitError> = std::result::Result<T, E>;

fn cg_err(pid: i32, step: &'static str) -> impl FnOnce(berth_cgroups::Error) -> LimitError {
    move |source| LimitError::Cgroup { pid, step, source }
}

fn path_err(
    pid: i32,
    step: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> LimitError {
    let path = path.to_path_buf();
    move |source| LimitError::Path {
        pid,
        step,
        path,
        source,
    }
}

/// Where a process was in one hierarchy before it was limited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The hierarchy's mount options (`memory`, `cpu,cpuacct`, `name=systemd`); empty for
    /// cgroup2.
    pub options: String,
    pub path: String,
}

/// A process under limits: `<runroot>/limits/<pid>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitRecord {
    pub pid: i32,
    /// /proc/<pid>/stat's start time when it was limited.
    pub start_time: u64,
    /// The command line (for `--list`).
    pub command: String,
    pub created: String,
    pub resources: Resources,
    pub cgroup: Cgroup,
    pub origins: Vec<Origin>,
}

/// How a limited process is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Running,
    Exited,
    /// The process is gone and the cgroup counted OOM kills.
    OomKilled,
}

/// `--list`'s view of one record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LimitStatus {
    pub pid: i32,
    pub command: String,
    pub cgroup: String,
    pub created: String,
    pub condition: Condition,
    pub memory_usage: u64,
    /// Bytes; `None`: unlimited.
    pub memory_limit: Option<u64>,
    pub oom_kills: u64,
    pub pids: u64,
    pub nano_cpus: Option<u64>,
    pub pids_limit: Option<i64>,
}

impl LimitStatus {
    /// The plain-words line when the kernel killed for memory (the process, or others of
    /// its cgroup while it lives).
    pub fn oom_message(&self) -> Option<String> {
        match (self.condition.clone(), self.oom_kills) {
            (_, 0) => None,
            (Condition::OomKilled, _) => Some(oom_message(self.pid, self.memory_limit)),
            (_, n) => Some(format!(
                "berth: process {}: {} killed by the kernel: out of memory{}",
                self.pid,
                if n == 1 {
                    "a process of its cgroup was".to_string()
                } else {
                    format!("{n} processes of its cgroup were")
                },
                limit_words(self.memory_limit)
            )),
        }
    }
}

fn limit_words(limit: Option<u64>) -> String {
    match limit {
        Some(l) => format!(" (limit {})", berth_container::ops::human_bytes(l)),
        None => String::new(),
    }
}

/// "berth: process 42 was killed by the kernel: out of memory (limit 16 MiB)": the line a
/// container's OOM kill gets, for a host process.
pub fn oom_message(pid: i32, limit: Option<u64>) -> String {
    format!(
        "berth: process {pid} was killed by the kernel: out of memory{}",
        limit_words(limit)
    )
}

/// The runtime-spec resources for docker's resource flags (what `run` asks, and `update`
/// and `limit` too). `swap_accounting`: the host counts memory+swap (v1 memsw, v2 swap);
/// without it a swap limit cannot be set and docker's default of swap = 2 x memory is
/// skipped. Unset flags stay unset: `update` leaves those limits as they are.
/// The OCI `linux.resources.cpu` of the CPU flags (`--cpus` as quota over the period, then
/// `--cpu-quota`/`--cpu-period`/`--cpu-shares`/`--cpuset-*`), or `None` when none was given.
/// Shared by a container's config.json, `update` and `limit`.
pub(crate) fn cpu_resources(r: &Resources) -> Option<serde_json::Value> {
    use serde_json::json;
    let mut cpu = json!({});
    if let Some(nano) = r.nano_cpus {
        let period = r.cpu_period.unwrap_or(100_000);
        cpu["period"] = json!(period);
        cpu["quota"] = json!((nano as u128 * period as u128 / 1_000_000_000) as i64);
    }
    if let Some(q) = r.cpu_quota {
        cpu["quota"] = json!(q);
    }
    if let Some(p) = r.cpu_period {
        cpu["period"] = json!(p);
    }
    if let Some(s) = r.cpu_shares {
        cpu["shares"] = json!(s);
    }
    if let Some(c) = &r.cpuset_cpus {
        cpu["cpus"] = json!(c);
    }
    if let Some(m) = &r.cpuset_mems {
        cpu["mems"] = json!(m);
    }
    cpu.as_object()
        .is_some_and(|m| !m.is_empty())
        .then_some(cpu)
}

pub fn linux_resources(r: &Resources, swap_accounting: bool) -> LinuxResources {
    use serde_json::json;
    let mut resources = json!({});
    let mut memory = json!({});
    if let Some(limit) = r.memory {
        memory["limit"] = json!(limit);
        if swap_accounting {
            memory["swap"] = json!(r.memory_swap.unwrap_or((limit as i64).saturating_mul(2)));
        }
    } else if let Some(s) = r.memory_swap
        && swap_accounting
    {
        memory["swap"] = json!(s);
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
    if let Some(cpu) = cpu_resources(r) {
        resources["cpu"] = cpu;
    }
    if let Some(p) = r.pids_limit {
        resources["pids"] = json!({"limit": if p <= 0 { -1 } else { p }});
    }
    if let Some(w) = r.blkio_weight {
        resources["blockIO"] = json!({"weight": w});
    }
    serde_json::from_value(resources).expect("resources built from typed values deserialize")
}

/// Whether the host accounts swap (a swap limit can be written).
pub fn swap_accounting() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
            .is_ok_and(|c| c.contains("memory"))
}

fn has_limits(r: &Resources) -> bool {
    r.memory.is_some()
        || r.memory_swap.is_some()
        || r.memory_reservation.is_some()
        || r.nano_cpus.is_some()
        || r.cpu_shares.is_some()
        || r.cpu_quota.is_some()
        || r.cpu_period.is_some()
        || r.cpuset_cpus.is_some()
        || r.cpuset_mems.is_some()
        || r.pids_limit.is_some()
        || r.blkio_weight.is_some()
}

fn limits_dir(engine: &Engine) -> PathBuf {
    engine.runroot.join("limits")
}

fn record_path(engine: &Engine, pid: i32) -> PathBuf {
    limits_dir(engine).join(format!("{pid}.json"))
}

fn start_time(pid: i32) -> Option<u64> {
    berth_container::state::proc_stat(pid)
        .filter(|s| !matches!(s.state, 'Z' | 'X' | 'x'))
        .map(|s| s.start_time)
}

fn command_of(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if words.is_empty() {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_default()
    } else {
        words.join(" ")
    }
}

/// Takes `<runroot>/limits/.lock` (two `limit`s of one pid must not both create).
fn lock(engine: &Engine, pid: i32) -> Result<std::os::fd::OwnedFd> {
    use rustix::fs::{FlockOperation, Mode as FsMode, OFlags};
    let dir = limits_dir(engine);
    fs::create_dir_all(&dir).map_err(path_err(pid, "create", &dir))?;
    let path = dir.join(".lock");
    let fd = rustix::fs::open(
        &path,
        OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
        FsMode::from_raw_mode(0o600),
    )
    .map_err(|e| path_err(pid, "open", &path)(e.into()))?;
    rustix::fs::flock(&fd, FlockOperation::LockExclusive)
        .map_err(|e| path_err(pid, "lock", &path)(e.into()))?;
    Ok(fd)
}

/// Reads a record (`None` if the pid has none).
pub fn load(engine: &Engine, pid: i32) -> Result<Option<LimitRecord>> {
    let path = record_path(engine, pid);
    match fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| path_err(pid, "parse", &path)(std::io::Error::other(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(path_err(pid, "read", &path)(e)),
    }
}

fn save(engine: &Engine, record: &LimitRecord) -> Result<()> {
    let path = record_path(engine, record.pid);
    let data = serde_json::to_vec_pretty(record).expect("a limit record serializes");
    berth_container::state::write_atomically(&path, &data, 0o600).map_err(|e| LimitError::Other {
        pid: record.pid,
        message: e.to_string(),
    })
}

impl LimitRecord {
    /// The record's process is still the one limited (not gone, not a recycled pid).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Applied {
    pub record: LimitRecord,
    /// The limits were changed on a process already limited.
    pub updated: bool,
    /// Threads of the process now in its cgroup (all of them).
    pub threads: usize,
    pub warnings: Vec<String>,
}

/// `berth limit PID [flags]`: makes the process's cgroup in every hierarchy with the
/// limits and moves the process (all its threads) in; on a process already limited, changes
/// its limits (as `update` does for a container).
pub fn apply(engine: &Engine, pid: i32, resources: &Resources) -> Result<Applied> {
    if !has_limits(resources) {
        return Err(LimitError::NoLimits(pid));
    }
    if pid <= 1 {
        return Err(LimitError::Other {
            pid,
            message: "the init process (and pid 0) cannot be put under limits".into(),
        });
    }
    let _lock = lock(engine, pid)?;
    let started = start_time(pid).ok_or(LimitError::NoProcess(pid))?;
    let res = linux_resources(resources, swap_accounting());
    if let Some(mut record) = load(engine, pid)? {
        if record.start_time == started {
            let warnings = record
                .cgroup
                .update_resources(&res)
                .map_err(cg_err(pid, "update the limits"))?;
            merge(&mut record.resources, resources);
            save(engine, &record)?;
            let threads = threads_in(&record);
            return Ok(Applied {
                record,
                updated: true,
                threads,
                warnings,
            });
        }
        // A recycled pid: the old process is gone, its cgroup is stale.
        let _ = remove_cgroup(&record);
        let _ = fs::remove_file(record_path(engine, pid));
    }
    let layout = Layout::probe().map_err(cg_err(pid, "read the host's cgroup layout"))?;
    let path = CgroupsPath::parse(&format!("{CGROUP_PARENT}/{pid}"))
        .map_err(cg_err(pid, "name the cgroup"))?;
    let cgroup = Cgroup::new(&layout, &path).map_err(cg_err(pid, "resolve the cgroup"))?;
    let plan = cgroup
        .plan(&res, Mode::Create, PlanOptions::default())
        .map_err(cg_err(pid, "check the limits"))?;
    let warnings = plan.warnings().to_vec();
    let own = ProcCgroup::read_pid(pid).map_err(|_| LimitError::NoProcess(pid))?;
    let origins = origins_of(&cgroup, &own);
    // A container's process has its container's limits: taking it out would escape them.
    let containers = format!("{}/", crate::cgroup_parents::CONTAINERS);
    if let Some(o) = origins.iter().find(|o| o.path.starts_with(&containers)) {
        let id = o
            .path
            .trim_start_matches(&containers)
            .split('/')
            .next()
            .unwrap_or_default();
        return Err(LimitError::Other {
            pid,
            message: format!(
                "it belongs to container {}: change its limits with berth update",
                &id[..id.len().min(12)]
            ),
        });
    }
    cgroup
        .create(&plan)
        .map_err(cg_err(pid, "create the cgroup"))?;
    let record = LimitRecord {
        pid,
        start_time: started,
        command: command_of(pid),
        created: crate::time::now(),
        resources: resources.clone(),
        cgroup,
        origins,
    };
    let moved = (|| {
        move_charges(&record.cgroup);
        record
            .cgroup
            .add_pid(pid, Join::All)
            .map_err(cg_err(pid, "move the process into its cgroup"))?;
        // The process may have exited between the check and the move.
        if start_time(pid) != Some(started) {
            return Err(LimitError::NoProcess(pid));
        }
        save(engine, &record)
    })();
    if let Err(e) = moved {
        restore(&record);
        let _ = remove_cgroup(&record);
        return Err(e);
    }
    let threads = threads_in(&record);
    Ok(Applied {
        record,
        updated: false,
        threads,
        warnings,
    })
}

/// The record's limits with the newly given ones replacing them.
fn merge(old: &mut Resources, new: &Resources) {
    macro_rules! take {
        ($($f:ident),*) => { $( if new.$f.is_some() { old.$f = new.$f.clone(); } )* };
    }
    take!(
        memory,
        memory_swap,
        memory_reservation,
        nano_cpus,
        cpu_shares,
        cpu_quota,
        cpu_period,
        cpuset_cpus,
        cpuset_mems,
        pids_limit,
        blkio_weight
    );
    old.oom_kill_disable |= new.oom_kill_disable;
}

/// Asks v1 memory to bring the charges of what the process already holds along (anonymous
/// and file pages, 3). Newer kernels refuse it (the feature is deprecated): then only what
/// the process allocates from now on counts, which the kernel's own tools accept too.
fn move_charges(cgroup: &Cgroup) {
    if let Some((Version::V1, dir)) = cgroup.controller_dir(Controller::Memory) {
        let _ = fs::write(dir.join("memory.move_charge_at_immigrate"), "3");
    }
}

/// Where the process is now, per hierarchy of the cgroup.
fn origins_of(cgroup: &Cgroup, own: &ProcCgroup) -> Vec<Origin> {
    cgroup
        .mounts()
        .into_iter()
        .map(|m| {
            let path = if m.version == Version::V2 {
                own.entries
                    .iter()
                    .find(|e| e.hierarchy_id == 0)
                    .map(|e| e.path.clone())
            } else {
                let wanted: Vec<String> = m.options.split(',').map(str::to_string).collect();
                own.v1_path(&wanted).map(str::to_string)
            };
            Origin {
                options: m.options,
                path: path.unwrap_or_else(|| "/".into()),
            }
        })
        .collect()
}

/// How many of the process's threads are in its cgroup in every hierarchy.
fn threads_in(record: &LimitRecord) -> usize {
    let want = format!("{CGROUP_PARENT}/{}", record.pid);
    let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", record.pid)) else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter(|t| {
            fs::read_to_string(t.path().join("cgroup")).is_ok_and(|text| {
                ProcCgroup::parse(&text).is_ok_and(|pc| pc.entries.iter().all(|e| e.path == want))
            })
        })
        .count()
}

/// Moves every process of the record's cgroup back where the limited process came from
/// (the hierarchy's root when that cgroup is gone).
fn restore(record: &LimitRecord) {
    let pids = record.cgroup.pids().unwrap_or_default();
    for m in record.cgroup.mounts() {
        let origin = record
            .origins
            .iter()
            .find(|o| o.options == m.options)
            .map(|o| o.path.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let mut target = m.host_mountpoint.join(&origin);
        if !target.join("cgroup.procs").exists() {
            target = m.host_mountpoint.clone();
        }
        for pid in &pids {
            // A process that exited meanwhile: nothing to move.
            let _ = fs::write(target.join("cgroup.procs"), pid.to_string());
        }
    }
}

fn remove_cgroup(record: &LimitRecord) -> Result<()> {
    let pid = record.pid;
    // Emptied first: rmdir of a v1 cgroup with tasks fails with EBUSY.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match record.cgroup.destroy() {
            Ok(()) => return Ok(()),
            Err(_) if Instant::now() < deadline => {
                restore(record);
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(cg_err(pid, "remove the cgroup")(e)),
        }
    }
}

/// Reads what `--list` shows for a record.
pub fn status(record: &LimitRecord) -> LimitStatus {
    let cg = &record.cgroup;
    let stats = cg.stats().ok();
    let oom_kills = cg.oom_kill_count().unwrap_or(0);
    let condition = if record.alive() {
        Condition::Running
    } else if oom_kills > 0 {
        Condition::OomKilled
    } else {
        Condition::Exited
    };
    LimitStatus {
        pid: record.pid,
        command: record.command.clone(),
        cgroup: cg.path().as_str().to_string(),
        created: record.created.clone(),
        condition,
        memory_usage: stats.as_ref().map(|s| s.memory.usage.usage).unwrap_or(0),
        memory_limit: cg.memory_limit().ok().flatten(),
        oom_kills,
        pids: stats.as_ref().map(|s| s.pids.current).unwrap_or(0),
        nano_cpus: record.resources.nano_cpus,
        pids_limit: record.resources.pids_limit,
    }
}

/// `--list`: every limited process, by pid.
pub fn list(engine: &Engine) -> Result<Vec<LimitStatus>> {
    let dir = limits_dir(engine);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(path_err(0, "read", &dir)(e)),
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut out = Vec::new();
    for pid in pids {
        if let Some(record) = load(engine, pid)? {
            out.push(status(&record));
        }
    }
    Ok(out)
}

/// `--release PID`: the process (and whatever it forked since) back to its cgroups, the
/// cgroup removed. Returns the status just before (with the OOM kill, if there was one).
pub fn release(engine: &Engine, pid: i32) -> Result<LimitStatus> {
    let _lock = lock(engine, pid)?;
    let record = load(engine, pid)?.ok_or(LimitError::NotLimited(pid))?;
    let status = status(&record);
    restore(&record);
    remove_cgroup(&record)?;
    let path = record_path(engine, pid);
    fs::remove_file(&path).map_err(path_err(pid, "remove", &path))?;
    Ok(status)
}

/// How a watched process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub pid: i32,
    /// The kernel's OOM killer killed it.
    pub oom_killed: bool,
    pub memory_limit: Option<u64>,
    /// docker-style: the exit status, 128 + signal; `None` when its parent reaped it
    /// before we could read it.
    pub exit_code: Option<i32>,
}

impl Ended {
    pub fn oom_message(&self) -> Option<String> {
        self.oom_killed
            .then(|| oom_message(self.pid, self.memory_limit))
    }
}

/// The exit status of a zombie (field 52 of /proc/<pid>/stat), while its parent has not
/// reaped it yet.
fn zombie_exit_code(pid: i32) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    let status: i32 = fields.get(49)?.parse().ok()?;
    Some(if status & 0x7f != 0 {
        128 + (status & 0x7f)
    } else {
        (status >> 8) & 0xff
    })
}

/// `limit --wait`: waits for the limited process to end, watching for the OOM killer, then
/// releases what is left (the cgroup, the record). We are not its parent, so its exit is
/// seen through a pidfd; whether the OOM killer took it is read from the zombie's status
/// (SIGKILL) and the cgroup's kill count, or when the parent reaped it first, from an OOM
/// event just before it ended.
pub fn watch(engine: &Engine, pid: i32) -> Result<Ended> {
    let record = load(engine, pid)?.ok_or(LimitError::NotLimited(pid))?;
    let pidfd = match rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).ok_or(LimitError::NoProcess(pid))?,
        rustix::process::PidfdFlags::empty(),
    ) {
        Ok(fd) if record.alive() => Some(fd),
        // Already gone: report what the cgroup counted.
        _ => None,
    };
    let mut watcher = record
        .cgroup
        .oom_watcher()
        .map_err(cg_err(pid, "watch for OOM kills"))?;
    let mut last_oom: Option<Instant> = None;
    if let Some(pidfd) = &pidfd {
        loop {
            if let Ok(OomEvent::Oom { .. }) = watcher.wait(Some(Duration::from_millis(100))) {
                last_oom = Some(Instant::now());
            }
            let mut fds = [rustix::event::PollFd::new(
                pidfd,
                rustix::event::PollFlags::IN,
            )];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            if rustix::event::poll(&mut fds, Some(&zero)).unwrap_or(0) > 0 {
                break;
            }
        }
    }
    let exit_code = zombie_exit_code(pid);
    let kills = record.cgroup.oom_kill_count().unwrap_or(0);
    let memory_limit = record.cgroup.memory_limit().ok().flatten();
    let oom_killed = kills > 0
        && match exit_code {
            Some(code) => code == 128 + libc::SIGKILL,
            None => last_oom.is_none_or(|t| t.elapsed() < Duration::from_secs(2)),
        };
    if oom_killed {
        let limit = memory_limit
            .map(berth_container::ops::human_bytes)
            .unwrap_or_default();
        crate::events::append(
            engine,
            &crate::events::Event::now(
                "process",
                "oom",
                &pid.to_string(),
                &[
                    ("command", record.command.as_str()),
                    ("limit", limit.as_str()),
                ],
            ),
        );
    }
    // The process is gone: what is left of it goes too.
    let _ = release(engine, pid);
    Ok(Ended {
        pid,
        oom_killed,
        memory_limit,
        exit_code: if oom_killed { Some(137) } else { exit_code },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_follow_docker_flags() {
        let r = Resources {
            memory: Some(256 << 20),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(10),
            cpu_shares: Some(512),
            ..Default::default()
        };
        let lr = linux_resources(&r, true);
        let v = serde_json::to_value(&lr).unwrap();
        assert_eq!(v["memory"]["limit"], 256 << 20);
        assert_eq!(v["memory"]["swap"], 512 << 20);
        assert_eq!(v["cpu"]["quota"], 50_000);
        assert_eq!(v["cpu"]["period"], 100_000);
        assert_eq!(v["cpu"]["shares"], 512);
        assert_eq!(v["pids"]["limit"], 10);
        let v = serde_json::to_value(linux_resources(&r, false)).unwrap();
        assert!(v["memory"].get("swap").is_none());
        let none = serde_json::to_value(linux_resources(&Resources::default(), true)).unwrap();
        assert!(none.get("memory").is_none() && none.get("cpu").is_none());
    }

    #[test]
    fn oom_words_match_the_containers() {
        assert_eq!(
            oom_message(42, Some(16 << 20)),
            "berth: process 42 was killed by the kernel: out of memory (limit 16 MiB)"
        );
    }

    #[test]
    fn merging_keeps_what_was_not_given() {
        let mut old = Resources {
            memory: Some(1),
            pids_limit: Some(5),
            ..Default::default()
        };
        merge(
            &mut old,
            &Resources {
                memory: Some(2),
                ..Default::default()
            },
        );
        assert_eq!((old.memory, old.pids_limit), (Some(2), Some(5)));
    }
}
