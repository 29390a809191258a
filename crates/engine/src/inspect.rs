//! `inspect`: a container in docker's JSON shape (the fields scripts read: Id, Name, State,
//! Config, HostConfig, Mounts, NetworkSettings, ...).

use serde_json::{Value, json};

use crate::Engine;
use crate::record::ContainerRecord;
use crate::status::{Live, State};

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The inspect document of one container.
pub fn document(engine: &Engine, record: &ContainerRecord, live: &Live) -> Value {
    let c = &record.config;
    let r = &c.resources;
    let ns = c.namespace_options();
    let mut host_config_throttle = serde_json::Map::new();
    for kind in crate::throttle::Kind::ALL {
        let list: Vec<Value> = r
            .throttle
            .get(kind)
            .iter()
            .map(|d| json!({"Path": d.path, "Rate": d.rate}))
            .collect();
        host_config_throttle.insert(kind.inspect_key().into(), json!(list));
    }
    let dir = engine.container_dir(&record.id);
    let env = crate::spec::merge_env(&[&record.image.env, &c.env]);
    let cmd: Vec<String> = if c.command.is_empty() && c.entrypoint.is_none() {
        record.image.cmd.clone().unwrap_or_default()
    } else {
        c.command.clone()
    };
    let entrypoint = c
        .entrypoint
        .clone()
        .or_else(|| record.image.entrypoint.clone());
    let health = record
        .state
        .health
        .as_ref()
        .map(|h| serde_json::to_value(h).unwrap_or_default());
    let mut state = json!({
        "Status": live.state.as_str(),
        "Running": live.state.is_active(),
        "Paused": live.state == State::Paused,
        "Restarting": live.state == State::Restarting,
        "OOMKilled": record.state.oom_killed,
        "Dead": false,
        "Pid": live.pid,
        "ExitCode": record.state.exit_code.unwrap_or(0),
        "Error": record.state.error,
        "StartedAt": record.state.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        "FinishedAt": record.state.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
    });
    if let Some(h) = health {
        state["Health"] = h;
    }
    let mounts: Vec<Value> = c
        .mounts
        .iter()
        .map(|m| {
            let name = m
                .source
                .as_deref()
                .filter(|_| m.kind == "volume")
                .and_then(crate::volume::name_of);
            let mut mount = json!({
                "Type": m.kind,
                "Source": m.source.as_ref().map(|s| s.display().to_string()).unwrap_or_default(),
                "Destination": m.destination,
                "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only,
                "Propagation": m.options.iter().find(|o| o.contains("private") || o.contains("shared") || o.contains("slave")).cloned().unwrap_or_else(|| if m.kind == "bind" || m.kind == "volume" { "rprivate".into() } else { String::new() }),
            });
            if let Some(name) = name {
                mount["Name"] = json!(name);
                mount["Driver"] = json!("local");
            }
            mount
        })
        .collect();
    let healthcheck = crate::monitor::health_config(record).map(|h| {
        json!({
            "Test": h.test,
            "Interval": h.interval.as_nanos() as u64,
            "Timeout": h.timeout.as_nanos() as u64,
            "StartPeriod": h.start_period.as_nanos() as u64,
            "Retries": h.retries,
        })
    });
    let mut labels = record.image.labels.clone();
    labels.extend(c.labels.clone());
    let mut doc = json!({
        "Id": record.id,
        "Created": record.created,
        "Path": record.path,
        "Args": record.args,
        "State": state,
        "Image": record.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": crate::logfile::path(&dir, &record.id),
        "Name": format!("/{}", record.name),
        "RestartCount": record.state.restart_count,
        "Driver": if c.rootfs.is_some() { "rootfs" } else { "overlay" },
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "Config": {
            "Hostname": crate::spec::hostname(record),
            "Domainname": "",
            "User": c.user.clone().unwrap_or_else(|| record.image.user.clone()),
            "AttachStdin": c.interactive,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": c.tty,
            "OpenStdin": c.interactive,
            "StdinOnce": c.interactive,
            "Env": env,
            "Cmd": cmd,
            "Healthcheck": healthcheck,
            "Image": c.image,
            "Volumes": null,
            "WorkingDir": c.workdir.clone().unwrap_or_else(|| record.image.working_dir.clone()),
            "Entrypoint": entrypoint,
            "Labels": labels,
            "StopSignal": c.stop_signal.clone().or_else(|| record.image.stop_signal.clone()).unwrap_or_else(|| "SIGTERM".into()),
            "StopTimeout": c.stop_timeout.unwrap_or(10),
        },
        "HostConfig": {
            "Binds": c.mounts.iter().filter(|m| m.kind == "bind").map(|m| format!("{}:{}{}", m.source.as_ref().map(|s| s.display().to_string()).unwrap_or_default(), m.destination, if m.read_only { ":ro" } else { "" })).collect::<Vec<_>>(),
            "LogConfig": {"Type": "json-file", "Config": {
                "max-size": c.log.max_size.map(|s| s.to_string()),
                "max-file": c.log.max_file.to_string(),
            }},
            "NetworkMode": c.network_name(),
            "PortBindings": port_bindings(&c.net),
            "PublishAllPorts": c.net.publish_all,
            "RestartPolicy": {"Name": if c.restart.name.is_empty() { "no" } else { c.restart.name.as_str() }, "MaximumRetryCount": c.restart.maximum_retry_count},
            "AutoRemove": c.auto_remove,
            "CapAdd": c.cap_add,
            "CapDrop": c.cap_drop,
            "Dns": c.dns,
            "DnsOptions": c.dns_options,
            "DnsSearch": c.dns_search,
            "ExtraHosts": c.add_hosts.iter().map(|(n, ip)| format!("{n}:{ip}")).collect::<Vec<_>>(),
            "GroupAdd": c.group_add,
            "IpcMode": ns.ipc.to_string(),
            "PidMode": ns.pid.to_string(),
            "UTSMode": ns.uts.to_string(),
            "CgroupnsMode": ns.cgroup.to_string(),
            "UsernsMode": if ns.user == crate::namespaces::Mode::Host { String::new() } else { ns.user.to_string() },
            "Privileged": c.privileged,
            "ReadonlyRootfs": c.read_only,
            "SecurityOpt": security_opts(record),
            "Tmpfs": c.mounts.iter().filter(|m| m.kind == "tmpfs").map(|m| (m.destination.clone(), Value::String(m.options.join(",")))).collect::<serde_json::Map<_, _>>(),
            "ShmSize": c.shm_size.unwrap_or(64 << 20),
            "Sysctls": c.sysctls,
            "Memory": r.memory.unwrap_or(0),
            "MemoryReservation": r.memory_reservation.unwrap_or(0),
            "MemorySwap": r.memory_swap.unwrap_or(if let Some(m) = r.memory { (m * 2) as i64 } else { 0 }),
            "OomKillDisable": r.oom_kill_disable,
            "NanoCpus": r.nano_cpus.unwrap_or(0),
            "CpuShares": r.cpu_shares.unwrap_or(0),
            "CpuPeriod": r.cpu_period.unwrap_or(0),
            "CpuQuota": r.cpu_quota.unwrap_or(0),
            "CpusetCpus": r.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": r.cpuset_mems.clone().unwrap_or_default(),
            "PidsLimit": r.pids_limit.unwrap_or(2048),
            "BlkioWeight": r.blkio_weight.unwrap_or(0),
            "Devices": c.devices.iter().map(|d| json!({"PathOnHost": d.host, "PathInContainer": d.container, "CgroupPermissions": d.permissions})).collect::<Vec<_>>(),
            "Ulimits": c.ulimits.iter().map(|u| json!({"Name": u.name.trim_start_matches("RLIMIT_").to_ascii_lowercase(), "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "CgroupParent": crate::cgroup_parents::CONTAINERS,
        },
        "GraphDriver": {"Name": if c.rootfs.is_some() { "rootfs" } else { "overlay" }, "Data": {
            "MergedDir": c.rootfs.clone().unwrap_or_else(|| crate::image::rootfs_target(&dir)),
            "UpperDir": if c.rootfs.is_some() { Value::Null } else { json!(dir.join("upper")) },
            "WorkDir": if c.rootfs.is_some() { Value::Null } else { json!(dir.join("work")) },
        }},
        "Mounts": mounts,
        "NetworkSettings": network_settings(engine, record, live.pid),
    });
    if let Some(host_config) = doc["HostConfig"].as_object_mut() {
        host_config.extend(host_config_throttle);
    }
    doc
}

/// docker's `NetworkSettings`: the attachments of a running container (what the network
/// glue recorded), plus the sandbox key.
fn network_settings(engine: &Engine, record: &ContainerRecord, pid: i32) -> Value {
    let mut v = crate::network::settings_json(engine, &record.id);
    let sandbox = if pid > 0 && record.config.network != crate::config::NetworkMode::Host {
        format!("/proc/{pid}/ns/net")
    } else {
        String::new()
    };
    v["Bridge"] = json!("");
    v["SandboxKey"] = json!(sandbox);
    v
}

/// docker's `HostConfig.PortBindings`: what `-p` asked for (`80/tcp` → host ip and port).
fn port_bindings(net: &crate::network::NetworkOptions) -> Value {
    let mut out = serde_json::Map::new();
    for p in &net.publish {
        let key = format!("{}/{}", p.container_port, p.proto);
        let binding = json!({
            "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
            "HostPort": p.host_port.map(|h| h.to_string()).unwrap_or_default(),
        });
        match out.get_mut(&key) {
            Some(Value::Array(a)) => a.push(binding),
            _ => {
                out.insert(key, json!([binding]));
            }
        }
    }
    Value::Object(out)
}

fn security_opts(record: &ContainerRecord) -> Vec<String> {
    let c = &record.config;
    let mut out = Vec::new();
    if let Some(s) = &c.seccomp {
        out.push(format!("seccomp={s}"));
    }
    if c.no_new_privileges {
        out.push("no-new-privileges".into());
    }
    out
}
