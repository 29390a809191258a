//! Reading and validating a bundle's config.json into a [`Plan`]: everything the init needs,
//! decided before the first syscall that changes the system. Bad input fails here, so there
//! is nothing to clean up.

mod capabilities;
mod devices;
mod id;
mod load;
pub mod memory_policy;
pub mod mount_options;
mod mounts;
mod namespaces;
mod process;
pub mod scheduler;
mod sysctl;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Hooks, LinuxResources, LinuxSeccomp, Spec};

pub use capabilities::{
    CAPABILITIES, CapabilitySets, capability_number, last_cap, parse_capability,
};
pub use devices::{DeviceKind, DeviceNode, default_devices};
pub use id::validate_id;
pub use load::{CONFIG_FILE, load_config, load_process, parse, read_input};
pub use mounts::{MountKind, MountPlan};
pub use namespaces::{NamespaceKind, Namespaces};
pub use process::{ProcessPlan, RlimitPlan, plan_process};
pub use sysctl::Sysctl;

use crate::error::{Error, Result};

/// A uid or gid mapping of a user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// Offsets of a new time namespace, in seconds and nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeOffsets {
    pub monotonic: (i64, u32),
    pub boottime: (i64, u32),
}

/// Everything needed to create one container, validated.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    /// The bundle directory, absolute.
    pub bundle: PathBuf,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    pub root_readonly: bool,
    /// MS_* propagation of the container's `/`, when configured.
    pub root_propagation: Option<libc::c_ulong>,
    pub namespaces: Namespaces,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub time_offsets: Option<TimeOffsets>,
    pub mounts: Vec<MountPlan>,
    /// Create device nodes and the /dev symlinks (false when /dev is bind-mounted).
    pub setup_dev: bool,
    pub devices: Vec<DeviceNode>,
    /// Paths inside the container, relative to its root.
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctls: Vec<Sysctl>,
    pub process: ProcessPlan,
    pub hooks: Hooks,
    pub cgroups_path: Option<PathBuf>,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<LinuxSeccomp>,
    pub personality: Option<libc::c_ulong>,
    pub annotations: HashMap<String, String>,
    /// SELinux context for the container's tmpfs and mqueue mounts.
    pub mount_label: Option<String>,
}

/// Turns a parsed config.json into a plan for container `id` in `bundle` (absolute).
pub fn plan(id: &str, bundle: &Path, spec: &Spec) -> Result<Plan> {
    validate_id(id)?;
    let linux = spec.linux().clone().unwrap_or_default();

    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::invalid("root", "missing: a container needs a root filesystem"))?;
    let rootfs = absolute_in(bundle, root.path());
    check_rootfs(&rootfs)?;

    let namespaces = Namespaces::from_spec(linux.namespaces().as_deref().unwrap_or_default())?;
    let uid_mappings = id_mappings(linux.uid_mappings(), "linux.uidMappings")?;
    let gid_mappings = id_mappings(linux.gid_mappings(), "linux.gidMappings")?;
    if namespaces.is_new(NamespaceKind::User)
        && (uid_mappings.is_empty() || gid_mappings.is_empty())
    {
        return Err(Error::invalid(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    let has_mappings = !uid_mappings.is_empty() || !gid_mappings.is_empty();
    if !namespaces.has(NamespaceKind::User) && has_mappings {
        return Err(Error::invalid(
            "linux.uidMappings",
            "id mappings are set but there is no user namespace",
        ));
    }
    let time_offsets = time_offsets(&linux, &namespaces)?;

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::invalid("process", "missing: nothing to run"))?;
    let mut process = plan_process(process, "process", last_cap())?;
    process.memory_policy = linux
        .memory_policy()
        .as_ref()
        .map(memory_policy::plan_memory_policy)
        .transpose()?;

    let spec_mounts = spec.mounts().as_deref().unwrap_or_default();
    let mounts = mounts::plan_mounts(spec_mounts, bundle)?;
    let setup_dev = !mounts
        .iter()
        .any(|m| m.destination == Path::new("dev") && matches!(m.kind, MountKind::Bind { .. }));
    let devices = devices::plan_devices(linux.devices().as_deref().unwrap_or_default())?;

    let masked_paths = container_paths(linux.masked_paths(), "linux.maskedPaths")?;
    let readonly_paths = container_paths(linux.readonly_paths(), "linux.readonlyPaths")?;

    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !namespaces.has(NamespaceKind::Uts)
    {
        return Err(Error::invalid(
            "hostname",
            "cannot set the hostname without a uts namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !namespaces.has(NamespaceKind::Uts)
    {
        return Err(Error::invalid(
            "domainname",
            "cannot set the domainname without a uts namespace",
        ));
    }
    let sysctls = sysctl::plan_sysctls(linux.sysctl().as_ref(), &namespaces)?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    validate_hooks(&hooks)?;

    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
        ("linux.mountLabel", linux.mount_label()),
    ] {
        reject_nul(field, value.as_deref().unwrap_or_default())?;
    }
    reject_nul("root.path", &rootfs.to_string_lossy())?;
    // The bundle is named in JSON (state.json, the hooks' state on stdin), which holds
    // UTF-8 only: refused here rather than when the first document is written.
    if bundle.to_str().is_none() {
        return Err(Error::invalid(
            "bundle",
            format!("{} is not valid UTF-8", bundle.display()),
        ));
    }

    let root_propagation = mount_options::root_propagation(linux.rootfs_propagation().as_deref())
        .map_err(|m| Error::invalid("linux.rootfsPropagation", m))?;

    let personality = match linux.personality() {
        None => None,
        Some(p) => Some(personality(p)?),
    };

    if linux.intel_rdt().is_some() {
        let message = if host_has_resctrl() {
            "Intel RDT (resctrl) is not supported by this runtime"
        } else {
            "this host has no Intel RDT: the kernel has no resctrl filesystem"
        };
        return Err(Error::invalid("linux.intelRdt", message));
    }
    if let Some(devices) = linux.net_devices()
        && let Some(name) = devices.keys().min()
    {
        return Err(Error::invalid(
            format!("linux.netDevices.{name}"),
            "moving host network devices into the container is not supported by this runtime",
        ));
    }

    Ok(Plan {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        rootfs,
        root_readonly: root.readonly().unwrap_or(false),
        root_propagation,
        namespaces,
        uid_mappings,
        gid_mappings,
        time_offsets,
        mounts,
        setup_dev,
        devices,
        masked_paths,
        readonly_paths,
        hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname().clone().filter(|h| !h.is_empty()),
        sysctls,
        process,
        hooks,
        cgroups_path: linux.cgroups_path().clone(),
        resources: linux.resources().clone(),
        seccomp: linux.seccomp().clone(),
        personality,
        annotations: spec.annotations().clone().unwrap_or_default(),
        mount_label: linux.mount_label().clone().filter(|l| !l.is_empty()),
    })
}

/// Refuses a string the kernel could not take (C strings end at NUL).
pub fn reject_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL byte"));
    }
    Ok(())
}

/// `path` made absolute against `base` when it is relative.
pub fn absolute_in(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn check_rootfs(rootfs: &Path) -> Result<()> {
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::invalid(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        )),
        Err(e) => Err(Error::invalid(
            "root.path",
            format!("{}: {e}", rootfs.display()),
        )),
    }
}

/// A path inside the container as a clean path relative to its root. `..` is refused:
/// nothing in a config may point outside the container.
pub fn container_relative(path: &Path, field: &str) -> Result<PathBuf> {
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(Error::invalid(field, "contains a NUL byte"));
    }
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(c) => out.push(c),
            Component::ParentDir => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} escapes the container's root filesystem (contains ..)",
                        path.display()
                    ),
                ));
            }
            Component::Prefix(_) => unreachable!("no prefixes on unix"),
        }
    }
    Ok(out)
}

fn container_paths(paths: &Option<Vec<String>>, field: &str) -> Result<Vec<PathBuf>> {
    paths
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            let field = format!("{field}[{i}]");
            if !p.starts_with('/') {
                return Err(Error::invalid(field, format!("{p:?} is not absolute")));
            }
            container_relative(Path::new(p), &field)
        })
        .collect()
}

fn id_mappings(
    maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>,
    field: &str,
) -> Result<Vec<IdMapping>> {
    let maps: Vec<IdMapping> = maps
        .iter()
        .flatten()
        .map(|m| IdMapping {
            container_id: m.container_id(),
            host_id: m.host_id(),
            size: m.size(),
        })
        .collect();
    for (i, m) in maps.iter().enumerate() {
        if m.size == 0 {
            return Err(Error::invalid(
                format!("{field}[{i}].size"),
                "must not be 0",
            ));
        }
    }
    if maps.len() > 340 {
        return Err(Error::invalid(field, "the kernel allows at most 340 lines"));
    }
    Ok(maps)
}

fn time_offsets(
    linux: &oci_spec::runtime::Linux,
    namespaces: &Namespaces,
) -> Result<Option<TimeOffsets>> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(None);
    };
    if offsets.is_empty() {
        return Ok(None);
    }
    if !namespaces.is_new(NamespaceKind::Time) {
        return Err(Error::invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    let mut out = TimeOffsets::default();
    for (clock, offset) in offsets {
        let value = (offset.secs().unwrap_or(0), offset.nanosecs().unwrap_or(0));
        if value.1 >= 1_000_000_000 {
            return Err(Error::invalid(
                format!("linux.timeOffsets.{clock}.nanosecs"),
                "must be below 1000000000",
            ));
        }
        match clock.as_str() {
            "monotonic" => out.monotonic = value,
            "boottime" => out.boottime = value,
            other => {
                return Err(Error::invalid(
                    format!("linux.timeOffsets.{other}"),
                    "unknown clock (expected monotonic or boottime)",
                ));
            }
        }
    }
    Ok(Some(out))
}

fn validate_hooks(hooks: &Hooks) -> Result<()> {
    let lists = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (name, list) in lists {
        for (i, hook) in list.iter().flatten().enumerate() {
            if !hook.path().is_absolute() {
                return Err(Error::invalid(
                    format!("hooks.{name}[{i}].path"),
                    format!("{} is not absolute", hook.path().display()),
                ));
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::invalid(
                    format!("hooks.{name}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

fn personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<libc::c_ulong> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::invalid(
            "linux.personality.flags",
            "personality flags are not supported",
        ));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

/// Whether the kernel knows the resctrl filesystem (Intel RDT, AMD PQoS).
fn host_has_resctrl() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some("resctrl"))
    })
}

#[cfg(test)]
mod tests;
