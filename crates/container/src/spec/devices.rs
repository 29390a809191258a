//! Device nodes created in the container's /dev: runc's default set plus `linux.devices`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::container_relative;
use crate::error::{Error, Result};

/// The type of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// One node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Relative to the container's root, e.g. `dev/null`.
    pub path: PathBuf,
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (the runtime-spec's list of default devices).
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("dev/null", 1, 3),
        ("dev/zero", 1, 5),
        ("dev/full", 1, 7),
        ("dev/random", 1, 8),
        ("dev/urandom", 1, 9),
        ("dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(path, major, minor)| DeviceNode {
        path: PathBuf::from(path),
        kind: DeviceKind::Char,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// The default devices, overridden and extended by `linux.devices`.
pub fn plan_devices(devices: &[LinuxDevice]) -> Result<Vec<DeviceNode>> {
    let mut out = default_devices();
    for (i, device) in devices.iter().enumerate() {
        let node = device_node(device, i)?;
        out.retain(|d| d.path != node.path);
        out.push(node);
    }
    Ok(out)
}

fn device_node(device: &LinuxDevice, i: usize) -> Result<DeviceNode> {
    let field = |f: &str| format!("linux.devices[{i}].{f}");
    let path: &Path = device.path();
    if !path.is_absolute() {
        return Err(Error::invalid(
            field("path"),
            format!("{} is not absolute", path.display()),
        ));
    }
    let rel = container_relative(path, &field("path"))?;
    if rel.as_os_str().is_empty() {
        return Err(Error::invalid(field("path"), "cannot be /"));
    }
    let kind = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
        LinuxDeviceType::B => DeviceKind::Block,
        LinuxDeviceType::P => DeviceKind::Fifo,
        LinuxDeviceType::A => {
            return Err(Error::invalid(
                field("type"),
                "\"a\" is only valid in linux.resources.devices",
            ));
        }
    };
    let number = |value: i64, name: &str| {
        u32::try_from(value)
            .map_err(|_| Error::invalid(field(name), format!("{value} is out of range")))
    };
    let (major, minor) = if kind == DeviceKind::Fifo {
        (0, 0)
    } else {
        (
            number(device.major(), "major")?,
            number(device.minor(), "minor")?,
        )
    };
    // podman passes the host node's whole st_mode (type bits included); keep the
    // permission bits, as runc does.
    let mode = device.file_mode().unwrap_or(0o666) & !libc::S_IFMT;
    if mode & !0o7777 != 0 {
        return Err(Error::invalid(
            field("fileMode"),
            format!("{mode:#o} has bits beyond the permission bits"),
        ));
    }
    Ok(DeviceNode {
        path: rel,
        kind,
        major,
        minor,
        mode,
        uid: device.uid().unwrap_or(0),
        gid: device.gid().unwrap_or(0),
    })
}
