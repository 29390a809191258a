//! docker's resource flags, shared by `update` and `limit`.

use berth_engine::config::Resources;
use berth_engine::units::parse_size;

/// `-m`, `--cpus`, `--pids-limit`, ... as `docker update` takes them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ResourceFlags {
    /// Memory limit (e.g. 256m, 1g)
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "SIZE")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (e.g. 1.5)
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPUs allowed (0-3, 0,1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed (0-3, 0,1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10 to 1000)
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
}

fn size(flag: &'static str, value: &Option<String>) -> Result<Option<u64>, berth_engine::Error> {
    value
        .as_deref()
        .map(|v| {
            parse_size(v)
                .ok_or_else(|| berth_engine::Error::flag(flag, v, "not a size (e.g. 256m, 1g)"))
        })
        .transpose()
}

impl ResourceFlags {
    /// The flags as the engine's resources (unset flags stay unset).
    pub fn to_resources(&self) -> Result<Resources, berth_engine::Error> {
        let memory_swap = self
            .memory_swap
            .as_deref()
            .map(Resources::parse_swap)
            .transpose()?;
        if let Some(w) = self.blkio_weight
            && !(10..=1000).contains(&w)
        {
            return Err(berth_engine::Error::flag(
                "--blkio-weight",
                w.to_string(),
                "must be between 10 and 1000",
            ));
        }
        Ok(Resources {
            memory: size("--memory", &self.memory)?,
            memory_swap,
            memory_reservation: size("--memory-reservation", &self.memory_reservation)?,
            oom_kill_disable: false,
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
        })
    }
}
