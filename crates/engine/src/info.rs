//! `info` and `version`: the host, the storage and the containers, in podman's key names
//! (`--format json` and templates see them: `{{.Host.Kernel}}`, `{{.Store.GraphRoot}}`).

use serde_json::{Value, json};

use crate::Engine;
use crate::error::Result;
use crate::status::{self, State};

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// GOARCH names, as docker and podman print them.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn meminfo(key: &str) -> u64 {
    read_trimmed("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k * 1024)
        .unwrap_or(0)
}

/// `info`: one document.
pub fn info(engine: &Engine, version: &str) -> Result<Value> {
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let records = engine.records.list()?;
    for r in &records {
        match status::observe(engine, r).state {
            State::Running | State::Restarting => running += 1,
            State::Paused => paused += 1,
            State::Created | State::Exited => stopped += 1,
        }
    }
    let images = berth_image::Store::open(&engine.root)
        .and_then(|s| s.list())
        .map(|l| l.len())
        .unwrap_or(0);
    let volumes = crate::volume::list(engine).map(|v| v.len()).unwrap_or(0);
    let layout = berth_cgroups::Layout::probe().ok();
    let (cgroup_version, cgroup_layout) = match layout.as_ref().map(|l| l.kind) {
        Some(berth_cgroups::LayoutKind::V1) => ("v1", "v1"),
        Some(berth_cgroups::LayoutKind::V2) => ("v2", "unified"),
        Some(berth_cgroups::LayoutKind::Hybrid) => ("v1", "hybrid"),
        None => ("", "none"),
    };
    let controllers: Vec<String> = layout
        .as_ref()
        .map(|l| {
            l.v1.iter()
                .flat_map(|m| {
                    m.options()
                        .split(',')
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .unwrap_or_default();
    let driver = match std::env::var(berth_image::snapshot::DRIVER_ENV)
        .ok()
        .as_deref()
    {
        Some("vfs") => "vfs",
        _ => "overlay",
    };
    let uname = rustix::system::uname();
    Ok(json!({
        "Host": {
            "Arch": arch(),
            "OS": "linux",
            "Hostname": uname.nodename().to_string_lossy(),
            "Kernel": uname.release().to_string_lossy(),
            "Distribution": read_trimmed("/etc/os-release").lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME=")).unwrap_or_default().trim_matches('"'),
            "CPUs": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": meminfo("MemTotal"),
            "MemFree": meminfo("MemAvailable"),
            "SwapTotal": meminfo("SwapTotal"),
            "CgroupVersion": cgroup_version,
            "CgroupLayout": cgroup_layout,
            "CgroupControllers": controllers,
            "OCIRuntime": {"Name": "berth (in-process)", "Version": version},
            "Monitor": "berth (forked per container; no daemon)",
            "Security": {
                "Seccomp": std::path::Path::new("/proc/sys/kernel/seccomp/actions_avail").exists(),
                "AppArmor": read_trimmed("/sys/module/apparmor/parameters/enabled") == "Y",
                "SELinux": std::path::Path::new("/sys/fs/selinux/enforce").exists(),
                "Rootless": !rustix::process::getuid().is_root(),
            },
        },
        "Store": {
            "GraphRoot": engine.root,
            "RunRoot": engine.runroot,
            "GraphDriverName": driver,
            "ImageStore": {"Number": images},
            "ContainerStore": {"Number": records.len(), "Running": running, "Paused": paused, "Stopped": stopped},
            "VolumeStore": {"Number": volumes},
        },
        "Version": {"Version": version, "OsArch": format!("linux/{}", arch())},
    }))
}

/// `version`: podman's client/server shape (there is no server: the "server" is the
/// same engine, in-process).
pub fn version(version: &str) -> Value {
    let uname = rustix::system::uname();
    json!({
        "Client": {
            "Version": version,
            "OsArch": format!("linux/{}", arch()),
            "Os": "linux",
        },
        "Server": {
            "Version": version,
            "Runtime": "berth-container (in-process)",
            "Monitor": "berth (forked per container)",
            "Kernel": uname.release().to_string_lossy(),
        },
    })
}
