//! Pure validation of `linux.resources`: no syscalls, host facts come in
//! through [`HostInfo`]. Every error names the JSON field and the value.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use crate::cpulist::IdList;
use crate::devices;
use crate::error::{ResourceError, ResourceErrors};
use crate::host::HostInfo;

/// Whether the resources create a cgroup or update an existing one; a few
/// rules differ (an update may rely on limits already in place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

const F: &str = "linux.resources";

/// kernel: pids.max must be below PID_MAX_LIMIT + 1.
const PIDS_MAX: i64 = 4 * 1024 * 1024;
/// kernel: max_cfs_runtime, (1 << 44) - 1 microseconds.
const MAX_CFS_QUOTA: i64 = (1 << 44) - 1;

struct V {
    errs: Vec<ResourceError>,
    warnings: Vec<String>,
}

impl V {
    fn err(&mut self, field: String, msg: String) {
        self.errs.push(ResourceError::new(field, msg));
    }
}

/// Validate `res`. Returns warnings (for fields that are accepted but
/// ignored) or every problem found.
pub fn validate(
    res: &LinuxResources,
    host: &HostInfo,
    mode: Mode,
) -> Result<Vec<String>, ResourceErrors> {
    let mut v = V {
        errs: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(m) = res.memory() {
        memory(&mut v, m, mode);
    }
    if let Some(c) = res.cpu() {
        cpu(&mut v, c, host, mode);
    }
    if let Some(p) = res.pids() {
        let l = p.limit();
        if l > PIDS_MAX {
            v.err(
                format!("{F}.pids.limit"),
                format!("{F}.pids.limit ({l}) is above the kernel's maximum {PIDS_MAX}; use -1 for no limit"),
            );
        }
    }
    if let Some(b) = res.block_io() {
        block_io(&mut v, b);
    }
    if let Some(h) = res.hugepage_limits() {
        for (i, l) in h.iter().enumerate() {
            let field = format!("{F}.hugepageLimits[{i}]");
            if l.limit() < 0 {
                v.err(
                    format!("{field}.limit"),
                    format!("{field}.limit ({}) must not be negative", l.limit()),
                );
            }
            if let Some(sizes) = &host.hugepage_sizes {
                if !sizes.iter().any(|s| s == l.page_size()) {
                    v.err(
                        format!("{field}.pageSize"),
                        format!(
                            "{field}.pageSize ({:?}) is not a huge page size of this host (have: {})",
                            l.page_size(),
                            if sizes.is_empty() { "none".to_string() } else { sizes.join(", ") }
                        ),
                    );
                }
            } else if !valid_pagesize_format(l.page_size()) {
                v.err(
                    format!("{field}.pageSize"),
                    format!(
                        "{field}.pageSize ({:?}) must look like 2MB or 1GB",
                        l.page_size()
                    ),
                );
            }
        }
    }
    if let Some(n) = res.network() {
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let name = p.name();
            if name.is_empty()
                || name.len() > 15
                || name.contains(|c: char| c.is_whitespace() || c == '/')
            {
                v.err(
                    format!("{F}.network.priorities[{i}].name"),
                    format!(
                        "{F}.network.priorities[{i}].name ({name:?}) is not a valid interface name"
                    ),
                );
            }
        }
    }
    if let Some(d) = res.devices() {
        devices(&mut v, d);
    }
    if let Some(u) = res.unified() {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            if let Err(why) = unified_key_shape(k) {
                v.err(
                    format!("{F}.unified.{k}"),
                    format!("{F}.unified key {k:?} {why}"),
                );
            }
        }
    }
    if v.errs.is_empty() {
        Ok(v.warnings)
    } else {
        Err(ResourceErrors(v.errs))
    }
}

fn valid_pagesize_format(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

/// A unified key must be a plain `controller.parameter` file name, and not
/// one of the files through which the runtime itself manages the cgroup.
pub(crate) fn unified_key_shape(k: &str) -> Result<(), &'static str> {
    if k.contains('/') || k.contains('\0') {
        return Err("must be a file name (no '/')");
    }
    let Some((ctl, param)) = k.split_once('.') else {
        return Err("must have the form CONTROLLER.PARAMETER");
    };
    if ctl.is_empty() || param.is_empty() {
        return Err("must have the form CONTROLLER.PARAMETER");
    }
    if matches!(
        k,
        "cgroup.procs" | "cgroup.threads" | "cgroup.kill" | "cgroup.freeze"
    ) {
        return Err(
            "is managed by the runtime (join, kill, pause) and cannot be set as a resource",
        );
    }
    Ok(())
}

fn limit_like(v: &mut V, field: &str, val: Option<i64>) {
    if let Some(x) = val
        && x < -1
    {
        v.err(
                format!("{F}.{field}"),
                format!("{F}.{field} ({x}) must be -1 (unlimited), 0 (unchanged) or a positive number of bytes"),
            );
    }
}

#[allow(deprecated)] // kernel is read only to warn about it
fn memory(v: &mut V, m: &LinuxMemory, mode: Mode) {
    limit_like(v, "memory.limit", m.limit());
    limit_like(v, "memory.kernelTCP", m.kernel_tcp());
    limit_like(v, "memory.reservation", m.reservation());
    limit_like(v, "memory.swap", m.swap());
    let limit = m.limit().unwrap_or(0);
    if let Some(r) = m.reservation()
        && limit > 0
        && r > limit
    {
        v.err(
            format!("{F}.memory.reservation"),
            format!("{F}.memory.reservation ({r}) is greater than memory.limit ({limit})"),
        );
    }
    if let Some(s) = m.swap() {
        if s > 0 && limit > 0 && s < limit {
            v.err(
                format!("{F}.memory.swap"),
                format!("{F}.memory.swap ({s}) is lower than memory.limit ({limit})"),
            );
        } else if s > 0 && limit <= 0 && mode == Mode::Create {
            v.err(
                format!("{F}.memory.swap"),
                format!(
                    "{F}.memory.swap ({s}) needs a positive memory.limit: it is the memory+swap total"
                ),
            );
        }
    }
    if let Some(sw) = m.swappiness()
        && sw > 100
    {
        v.err(
            format!("{F}.memory.swappiness"),
            format!("{F}.memory.swappiness ({sw}) is out of range (0..=100)"),
        );
    }
    if m.kernel().is_some_and(|k| k != 0) {
        v.warnings.push(format!(
            "{F}.memory.kernel is ignored: kernel memory limits were removed from Linux"
        ));
    }
    if m.use_hierarchy() == Some(false) {
        v.warnings.push(format!(
            "{F}.memory.useHierarchy=false is ignored: current kernels always account hierarchically"
        ));
    }
}

fn cpu(v: &mut V, c: &LinuxCpu, host: &HostInfo, mode: Mode) {
    if let Some(s) = c.shares()
        && s != 0
        && !(2..=262_144).contains(&s)
    {
        v.err(
            format!("{F}.cpu.shares"),
            format!("{F}.cpu.shares ({s}) is out of range (2..=262144, or 0 for unchanged)"),
        );
    }
    let quota = c.quota().unwrap_or(0);
    if let Some(q) = c.quota()
        && (q < -1 || (q > 0 && q < 1000) || q > MAX_CFS_QUOTA)
    {
        v.err(
                format!("{F}.cpu.quota"),
                format!(
                    "{F}.cpu.quota ({q}) must be -1 (unlimited), 0 (unchanged) or 1000..={MAX_CFS_QUOTA} microseconds"
                ),
            );
    }
    if let Some(p) = c.period()
        && p != 0
        && !(1000..=1_000_000).contains(&p)
    {
        v.err(
                format!("{F}.cpu.period"),
                format!("{F}.cpu.period ({p}) is out of range (1000..=1000000 microseconds, or 0 for unchanged)"),
            );
    }
    if let Some(b) = c.burst() {
        if b > 0 && quota > 0 && b > quota as u64 {
            v.err(
                format!("{F}.cpu.burst"),
                format!("{F}.cpu.burst ({b}) is greater than cpu.quota ({quota})"),
            );
        } else if b > 0 && quota == -1 {
            v.err(
                format!("{F}.cpu.burst"),
                format!("{F}.cpu.burst ({b}) needs a cpu.quota; the quota is unlimited"),
            );
        } else if b > 0 && quota == 0 && mode == Mode::Create {
            v.err(
                format!("{F}.cpu.burst"),
                format!("{F}.cpu.burst ({b}) needs a cpu.quota"),
            );
        }
    }
    if let Some(r) = c.realtime_runtime() {
        if r < -1 {
            v.err(
                format!("{F}.cpu.realtimeRuntime"),
                format!("{F}.cpu.realtimeRuntime ({r}) must be -1, 0 or positive"),
            );
        }
        if let Some(p) = c.realtime_period()
            && r > 0
            && p > 0
            && r as u64 > p
        {
            v.err(
                format!("{F}.cpu.realtimeRuntime"),
                format!("{F}.cpu.realtimeRuntime ({r}) is greater than cpu.realtimePeriod ({p})"),
            );
        }
    }
    if let Some(i) = c.idle()
        && i != 0
        && i != 1
    {
        v.err(
            format!("{F}.cpu.idle"),
            format!("{F}.cpu.idle ({i}) must be 0 or 1"),
        );
    }
    for (name, val, online, what) in [
        ("cpus", c.cpus(), &host.online_cpus, "CPUs"),
        ("mems", c.mems(), &host.online_mems, "memory nodes"),
    ] {
        let Some(s) = val.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        match IdList::parse(s) {
            Err(why) => v.err(
                format!("{F}.cpu.{name}"),
                format!("{F}.cpu.{name} ({s:?}) is not a valid list: {why}"),
            ),
            Ok(list) => {
                if let Some(online) = online
                    && let Some(missing) = list.not_in(online)
                {
                    v.err(
                            format!("{F}.cpu.{name}"),
                            format!("{F}.cpu.{name} ({s}) includes {what} not online on this host ({missing}; online: {online})"),
                        );
                }
            }
        }
    }
}

fn dev_num(v: &mut V, field: String, n: i64, max: i64) {
    if !(0..=max).contains(&n) {
        v.err(
            field.clone(),
            format!("{field} ({n}) is out of range (0..={max})"),
        );
    }
}

fn weight(v: &mut V, field: String, w: Option<u16>) {
    if let Some(w) = w
        && w != 0
        && !(10..=1000).contains(&w)
    {
        v.err(
            field.clone(),
            format!("{field} ({w}) is out of range (10..=1000, or 0 for unchanged)"),
        );
    }
}

fn block_io(v: &mut V, b: &LinuxBlockIo) {
    weight(v, format!("{F}.blockIO.weight"), b.weight());
    weight(v, format!("{F}.blockIO.leafWeight"), b.leaf_weight());
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let f = format!("{F}.blockIO.weightDevice[{i}]");
        dev_num(v, format!("{f}.major"), d.major(), 4095);
        dev_num(v, format!("{f}.minor"), d.minor(), (1 << 20) - 1);
        weight(v, format!("{f}.weight"), d.weight());
        weight(v, format!("{f}.leafWeight"), d.leaf_weight());
    }
    for (name, list) in [
        ("throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ] {
        for (i, d) in list.iter().flatten().enumerate() {
            let f = format!("{F}.blockIO.{name}[{i}]");
            dev_num(v, format!("{f}.major"), d.major(), 4095);
            dev_num(v, format!("{f}.minor"), d.minor(), (1 << 20) - 1);
        }
    }
}

fn devices(v: &mut V, d: &[oci_spec::runtime::LinuxDeviceCgroup]) {
    if let Err(errs) = devices::container_state(d) {
        v.errs.extend(errs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn errs(json: &str) -> Vec<String> {
        let host = HostInfo {
            online_cpus: Some(IdList::parse("0-1").unwrap()),
            online_mems: Some(IdList::parse("0").unwrap()),
            hugepage_sizes: Some(vec!["1GB".into(), "2MB".into()]),
        };
        match validate(&res(json), &host, Mode::Create) {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|e| e.message).collect(),
        }
    }

    fn ok(json: &str) {
        assert_eq!(errs(json), Vec::<String>::new(), "{json}");
    }

    #[test]
    fn accepts_what_real_clients_send() {
        ok("{}");
        ok(
            r#"{"memory":{"limit":67108864,"reservation":0,"swap":67108864,"kernel":0},"cpu":{"shares":512,"quota":0,"period":0},"blockIO":{"weight":0}}"#,
        );
        ok(
            r#"{"pids":{"limit":2048},"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#,
        );
        ok(
            r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"quota":-1,"period":100000,"cpus":"0-1","mems":"0"}}"#,
        );
        ok(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":0}],"pids":{"limit":-1}}"#);
        ok(r#"{"unified":{"memory.high":"1G","io.max":"8:0 rbps=1"}}"#);
    }

    #[test]
    fn swap_below_limit_names_both_values() {
        assert_eq!(
            errs(r#"{"memory":{"limit":2048,"swap":1024}}"#),
            ["linux.resources.memory.swap (1024) is lower than memory.limit (2048)"]
        );
    }

    #[test]
    fn memory_errors() {
        let e = errs(r#"{"memory":{"limit":-2,"reservation":4096,"swappiness":101}}"#);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("linux.resources.memory.limit (-2)"));
        assert!(e[1].starts_with("linux.resources.memory.swappiness (101)"));
        let e = errs(r#"{"memory":{"limit":1000,"reservation":4096}}"#);
        assert!(e[0].contains("reservation (4096) is greater than memory.limit (1000)"));
        let e = errs(r#"{"memory":{"swap":4096}}"#);
        assert!(e[0].contains("needs a positive memory.limit"));
        // On update the limit may already be in place.
        let r = res(r#"{"memory":{"swap":4096}}"#);
        assert!(validate(&r, &HostInfo::default(), Mode::Update).is_ok());
    }

    #[test]
    #[allow(deprecated)]
    fn kernel_memory_is_a_warning() {
        let w = validate(
            &res(r#"{"memory":{"kernel":1048576,"kernelTCP":1048576}}"#),
            &HostInfo::default(),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("memory.kernel is ignored"));
        let e = errs(r#"{"memory":{"kernelTCP":-2}}"#);
        assert!(e[0].contains("memory.kernelTCP (-2) must be -1"), "{e:?}");
    }

    #[test]
    fn cpu_errors() {
        let e = errs(r#"{"cpu":{"shares":1,"quota":999,"period":2000000,"idle":2}}"#);
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("cpu.shares (1)"));
        assert!(e[1].contains("cpu.quota (999)"));
        assert!(e[2].contains("cpu.period (2000000)"));
        assert!(e[3].contains("cpu.idle (2)"));
        let e = errs(r#"{"cpu":{"quota":50000,"burst":60000}}"#);
        assert!(e[0].contains("burst (60000) is greater than cpu.quota (50000)"));
        let e = errs(r#"{"cpu":{"realtimeRuntime":2000,"realtimePeriod":1000}}"#);
        assert!(e[0].contains("realtimeRuntime (2000) is greater"));
    }

    #[test]
    fn cpuset_must_be_online() {
        let e = errs(r#"{"cpu":{"cpus":"0-3","mems":"1"}}"#);
        assert_eq!(
            e,
            [
                "linux.resources.cpu.cpus (0-3) includes CPUs not online on this host (2-3; online: 0-1)",
                "linux.resources.cpu.mems (1) includes memory nodes not online on this host (1; online: 0)"
            ]
        );
        let e = errs(r#"{"cpu":{"cpus":"1-0"}}"#);
        assert!(e[0].contains("is not a valid list"));
    }

    #[test]
    fn block_io_errors() {
        let e = errs(
            r#"{"blockIO":{"weight":5,"weightDevice":[{"major":-1,"minor":0,"weight":2000}],
                "throttleReadBpsDevice":[{"major":8,"minor":-3,"rate":100}]}}"#,
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("blockIO.weight (5)"));
        assert!(e[1].contains("weightDevice[0].major (-1)"));
        assert!(e[2].contains("weightDevice[0].weight (2000)"));
        assert!(e[3].contains("throttleReadBpsDevice[0].minor (-3)"));
    }

    #[test]
    fn hugepages_network_pids_unified() {
        let e = errs(r#"{"hugepageLimits":[{"pageSize":"4MB","limit":-5}]}"#);
        assert_eq!(e.len(), 2);
        assert!(e[1].contains("not a huge page size of this host (have: 1GB, 2MB)"));
        let e = errs(r#"{"network":{"priorities":[{"name":"has space","priority":1}]}}"#);
        assert!(e[0].contains("priorities[0].name"));
        let e = errs(r#"{"pids":{"limit":99999999}}"#);
        assert!(e[0].contains("pids.limit (99999999)"));
        let e = errs(r#"{"unified":{"../x":"1","nodot":"1","cgroup.procs":"1"}}"#);
        assert_eq!(e.len(), 3, "{e:?}");
    }

    #[test]
    fn device_errors_name_the_rule() {
        let e = errs(
            r#"{"devices":[{"allow":true,"type":"c","access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"r"}]}"#,
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("linux.resources.devices[1]: rule \"deny c 1:3 r\""),
            "{e:?}"
        );
        let e = errs(r#"{"devices":[{"allow":true,"type":"b","access":"q"}]}"#);
        assert!(e[0].contains("devices[0].access"));
    }

    #[test]
    fn pagesize_format_without_host_info() {
        assert!(
            valid_pagesize_format("2MB")
                && valid_pagesize_format("64KB")
                && valid_pagesize_format("1GB")
        );
        assert!(
            !valid_pagesize_format("2mb")
                && !valid_pagesize_format("MB")
                && !valid_pagesize_format("2 MB")
        );
        let r = res(r#"{"hugepageLimits":[{"pageSize":"huge","limit":1}]}"#);
        assert!(validate(&r, &HostInfo::default(), Mode::Create).is_err());
    }
}
