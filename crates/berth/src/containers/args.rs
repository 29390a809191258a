//! The flags of `run` and `create`, as docker and podman spell them, turned into the
//! engine's [`ContainerConfig`].

use std::path::PathBuf;

use berth_engine::config::{
    self, ContainerConfig, DeviceSpec, HealthConfig, MountSpec, Resources, RestartPolicy, Ulimit,
    parse_health_duration,
};
use berth_engine::namespaces::{Kind as NsKind, Mode as NsMode, Options as NsOptions};
use berth_engine::network::{NetworkFlags, NetworkOptions};
use berth_engine::throttle::Kind as ThrottleKind;
use berth_engine::{Error, Result, units};
use clap::ArgAction;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in the background and print the container's id
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Pass signals to the container (the foreground, without -t)
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep stdin open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// KEY=VALUE (or KEY: taken from here)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// USER[:GROUP] (names or ids)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Run an init (the host's static tini) as PID 1: it reaps zombies and forwards signals
    #[arg(long)]
    pub init: bool,
    /// The init binary for --init (default: tini-static or docker-init)
    #[arg(long, value_name = "PATH")]
    pub init_path: Option<PathBuf>,
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// SRC:DST[:ro|rw|z]
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// type=bind|tmpfs,source=..,target=..[,readonly]
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// DST[:OPTIONS]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// HOST[:CONTAINER][:rwm]
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// NAME=SOFT[:HARD]
    #[arg(long = "ulimit")]
    pub ulimits: Vec<String>,
    #[arg(long = "sysctl", value_name = "KEY=VALUE")]
    pub sysctls: Vec<String>,
    #[arg(long)]
    pub cap_add: Vec<String>,
    #[arg(long)]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    /// seccomp=FILE|unconfined, no-new-privileges, label=...
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// bridge (the default), none, host, container:NAME|ID, or a network's name
    #[arg(long, visible_alias = "net")]
    pub network: Option<String>,
    /// Another name the container has on a user network
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// The container's IPv4 address on its network
    #[arg(long)]
    pub ip: Option<String>,
    /// The container's MAC address on its network
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Publish a port: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp], ranges as A-B
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Do not write the container's /etc/hosts
    #[arg(long)]
    pub no_hosts: bool,
    /// host, private, container:NAME or ns:PATH
    #[arg(long)]
    pub pid: Option<String>,
    /// host, private, shareable (the default), none, container:NAME or ns:PATH
    #[arg(long)]
    pub ipc: Option<String>,
    /// host, private, container:NAME or ns:PATH
    #[arg(long)]
    pub uts: Option<String>,
    /// host (the default) or private, container:NAME, ns:PATH
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// host (the default), container:NAME or ns:PATH
    #[arg(long)]
    pub userns: Option<String>,
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_swap: Option<String>,
    #[arg(long)]
    pub memory_reservation: Option<String>,
    #[arg(long)]
    pub oom_kill_disable: bool,
    #[arg(long)]
    pub cpus: Option<String>,
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// DEVICE:RATE, bytes per second read from a block device (e.g. /dev/sda:1mb)
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_read_bps: Vec<String>,
    /// DEVICE:RATE, bytes per second written to a block device
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_write_bps: Vec<String>,
    /// DEVICE:RATE, read operations per second on a block device
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_read_iops: Vec<String>,
    /// DEVICE:RATE, write operations per second on a block device
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_write_iops: Vec<String>,
    /// no, on-failure[:N], always, unless-stopped
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(long)]
    pub health_cmd: Option<String>,
    #[arg(long)]
    pub health_interval: Option<String>,
    #[arg(long)]
    pub health_retries: Option<u32>,
    #[arg(long)]
    pub health_timeout: Option<String>,
    #[arg(long)]
    pub health_start_period: Option<String>,
    #[arg(long)]
    pub no_healthcheck: bool,
    /// json-file (the only one)
    #[arg(long)]
    pub log_driver: Option<String>,
    /// max-size=SIZE, max-file=N
    #[arg(long)]
    pub log_opt: Vec<String>,
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long)]
    pub dns_search: Vec<String>,
    #[arg(long)]
    pub dns_option: Vec<String>,
    /// NAME:IP
    #[arg(long)]
    pub add_host: Vec<String>,
    /// The first argument is a directory to use as the root filesystem, not an image
    #[arg(long)]
    pub rootfs: bool,
    /// IMAGE (or the --rootfs DIR), then the command and its arguments
    #[arg(value_name = "IMAGE [COMMAND [ARG...]]", required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub image_and_command: Vec<String>,
}

fn size(flag: &'static str, value: &Option<String>) -> Result<Option<u64>> {
    value
        .as_deref()
        .map(|v| {
            units::parse_size(v).ok_or_else(|| Error::flag(flag, v, "not a size (e.g. 256m, 1g)"))
        })
        .transpose()
}

impl CreateArgs {
    /// The container's name (if given) and configuration.
    pub fn to_config(&self) -> Result<(Option<String>, ContainerConfig)> {
        if let Some(driver) = self.log_driver.as_deref()
            && driver != "json-file"
        {
            return Err(Error::flag(
                "--log-driver",
                driver,
                "only json-file is supported",
            ));
        }
        let (image, command) = self
            .image_and_command
            .split_first()
            .expect("clap requires the image");
        let mut c = ContainerConfig {
            image: image.clone(),
            command: command.to_vec(),
            tty: self.tty,
            interactive: self.interactive,
            auto_remove: self.rm,
            read_only: self.read_only,
            privileged: self.privileged,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            group_add: self.group_add.clone(),
            hostname: self.hostname.clone(),
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            no_healthcheck: self.no_healthcheck,
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_option.clone(),
            init: if self.init {
                Some(berth_engine::config::find_init(self.init_path.as_deref())?)
            } else {
                None
            },
            ..Default::default()
        };
        if self.rootfs {
            c.rootfs = Some(PathBuf::from(image));
        }
        if let Some(s) = &c.stop_signal {
            berth_engine::signals::parse(s)?;
        }
        if let Some(ep) = &self.entrypoint {
            // docker: the entrypoint is one program (no splitting); "" clears it.
            c.entrypoint = Some(if ep.is_empty() {
                Vec::new()
            } else {
                vec![ep.clone()]
            });
        }
        for file in &self.env_file {
            c.env.extend(config::parse_env_file(file)?);
        }
        c.env
            .extend(self.env.iter().filter_map(|e| config::parse_env(e)));
        for l in &self.labels {
            let (k, v) = config::parse_label(l);
            c.labels.insert(k, v);
        }
        for v in &self.volumes {
            c.mounts.push(MountSpec::parse_volume(v)?);
        }
        for m in &self.mounts {
            c.mounts.push(MountSpec::parse_mount(m)?);
        }
        for t in &self.tmpfs {
            c.mounts.push(MountSpec::parse_tmpfs(t)?);
        }
        c.shm_size = size("--shm-size", &self.shm_size)?;
        for d in &self.devices {
            c.devices.push(DeviceSpec::parse(d)?);
        }
        for u in &self.ulimits {
            c.ulimits.push(Ulimit::parse(u)?);
        }
        for s in &self.sysctls {
            let (k, v) = config::parse_sysctl(s)?;
            c.sysctls.insert(k, v);
        }
        for opt in &self.security_opt {
            match opt.split_once(['=', ':']) {
                Some(("seccomp", v)) => c.seccomp = Some(v.to_string()),
                Some(("label" | "apparmor", _)) => {}
                Some(("no-new-privileges", v)) => c.no_new_privileges = v != "false",
                None if opt == "no-new-privileges" => c.no_new_privileges = true,
                _ => {
                    return Err(Error::flag(
                        "--security-opt",
                        opt,
                        "known: seccomp=FILE|unconfined, no-new-privileges, label=...",
                    ));
                }
            }
        }
        // Like containers.conf's `netns`: what --network means when it is not given.
        let default_network = std::env::var("BERTH_DEFAULT_NETWORK").ok();
        c.net = NetworkOptions::parse(&NetworkFlags {
            network: self.network.as_deref().or(default_network.as_deref()),
            aliases: &self.network_alias,
            ip: self.ip.as_deref(),
            mac: self.mac_address.as_deref(),
            publish: &self.publish,
            publish_all: self.publish_all,
            dns: &self.dns,
            dns_search: &self.dns_search,
            dns_option: &self.dns_option,
            add_host: &self.add_host,
            no_hosts: self.no_hosts,
        })?;
        c.network = c.net.namespace();
        c.namespaces = NsOptions {
            pid: NsMode::parse(NsKind::Pid, self.pid.as_deref())?,
            ipc: NsMode::parse(NsKind::Ipc, self.ipc.as_deref())?,
            uts: NsMode::parse(NsKind::Uts, self.uts.as_deref())?,
            cgroup: NsMode::parse(NsKind::Cgroup, self.cgroupns.as_deref())?,
            user: NsMode::parse(NsKind::User, self.userns.as_deref())?,
        };
        c.resources = Resources {
            memory: size("--memory", &self.memory)?,
            memory_swap: self
                .memory_swap
                .as_deref()
                .map(Resources::parse_swap)
                .transpose()?,
            memory_reservation: size("--memory-reservation", &self.memory_reservation)?,
            oom_kill_disable: self.oom_kill_disable,
            nano_cpus: self
                .cpus
                .as_deref()
                .map(Resources::parse_cpus)
                .transpose()?,
            cpu_shares: self.cpu_shares,
            cpu_quota: self.cpu_quota,
            cpu_period: self.cpu_period,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
            throttle: Default::default(),
        };
        for (kind, values) in [
            (ThrottleKind::ReadBps, &self.device_read_bps),
            (ThrottleKind::WriteBps, &self.device_write_bps),
            (ThrottleKind::ReadIops, &self.device_read_iops),
            (ThrottleKind::WriteIops, &self.device_write_iops),
        ] {
            for v in values {
                c.resources.throttle.add(kind, v)?;
            }
        }
        if let (Some(m), Some(s)) = (c.resources.memory, c.resources.memory_swap)
            && s != -1
            && (s as u64) < m
        {
            return Err(Error::flag(
                "--memory-swap",
                s.to_string(),
                "must be at least --memory (it is memory + swap)",
            ));
        }
        if let Some(r) = &self.restart {
            c.restart = RestartPolicy::parse(r)?;
            if c.auto_remove && c.restart.name != "no" {
                return Err(Error::flag("--restart", r, "conflicts with --rm"));
            }
        }
        if let Some(cmd) = &self.health_cmd {
            let mut h = HealthConfig::with_defaults(vec!["CMD-SHELL".into(), cmd.clone()]);
            if let Some(v) = &self.health_interval {
                h.interval = parse_health_duration("--health-interval", v)?;
            }
            if let Some(v) = &self.health_timeout {
                h.timeout = parse_health_duration("--health-timeout", v)?;
            }
            if let Some(v) = &self.health_start_period {
                h.start_period = parse_health_duration("--health-start-period", v)?;
            }
            if let Some(n) = self.health_retries {
                h.retries = n;
            }
            c.health = Some(h);
        }
        for opt in &self.log_opt {
            c.log.apply(opt)?;
        }
        for h in &self.add_host {
            c.add_hosts.push(config::parse_add_host(h)?);
        }
        Ok((self.name.clone(), c))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    #[command(disable_help_flag = true)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .unwrap()
            .run
    }

    #[test]
    fn options_after_the_image_belong_to_the_command() {
        let a = parse(&["-it", "--rm", "busybox", "sh", "-c", "echo -n hi", "-x"]);
        assert!(a.create.interactive && a.create.tty && a.create.rm);
        assert_eq!(
            a.create.image_and_command,
            vec!["busybox", "sh", "-c", "echo -n hi", "-x"]
        );
        let (_, c) = a.create.to_config().unwrap();
        assert_eq!(c.image, "busybox");
        assert_eq!(c.command, vec!["sh", "-c", "echo -n hi", "-x"]);
    }

    #[test]
    fn flags_become_the_config() {
        let a = parse(&[
            "-d",
            "--name",
            "web",
            "-m",
            "256m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "100",
            "-e",
            "A=1",
            "-l",
            "x=y",
            "-v",
            "/tmp:/data:ro",
            "--restart",
            "on-failure:2",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "--network",
            "host",
            "--security-opt",
            "seccomp=unconfined",
            "--ulimit",
            "nofile=100:200",
            "--log-opt",
            "max-size=1k",
            "-h",
            "box",
            "--rootfs",
            "/some/dir",
            "true",
        ]);
        assert!(a.detach);
        let (name, c) = a.create.to_config().unwrap();
        assert_eq!(name.as_deref(), Some("web"));
        assert_eq!(c.resources.memory, Some(256 << 20));
        assert_eq!(c.resources.nano_cpus, Some(500_000_000));
        assert_eq!(c.resources.pids_limit, Some(100));
        assert_eq!(c.env, vec!["A=1"]);
        assert_eq!(c.labels.get("x").map(String::as_str), Some("y"));
        assert!(c.mounts[0].read_only);
        assert_eq!(c.restart.maximum_retry_count, 2);
        assert_eq!(
            c.health.unwrap().interval,
            std::time::Duration::from_secs(1)
        );
        assert_eq!(c.network, config::NetworkMode::Host);
        assert_eq!(c.seccomp.as_deref(), Some("unconfined"));
        assert_eq!(c.log.max_size, Some(1024));
        assert_eq!(c.hostname.as_deref(), Some("box"));
        assert_eq!(c.rootfs.as_deref(), Some(std::path::Path::new("/some/dir")));
        assert_eq!(c.command, vec!["true"]);
    }

    #[test]
    fn bad_values_name_their_flag() {
        let e = parse(&["-m", "lots", "img"])
            .create
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("--memory"), "{e}");
        let e = parse(&["--rm", "--restart", "always", "img"])
            .create
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("--restart"), "{e}");
        let e = parse(&["--network", "bad/name", "img"])
            .create
            .to_config()
            .unwrap_err();
        assert!(e.to_string().contains("--network"), "{e}");
    }
}
