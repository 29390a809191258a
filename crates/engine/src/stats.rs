//! `stats`: docker's resource table for containers, from their cgroups (through the
//! runtime core's `ops::stats`) and, for network I/O, the interfaces of their network
//! namespace (`/proc/<init>/net/dev`).
//!
//! CPU % needs two readings: a [`Sampler`] keeps each container's previous one. On the
//! first reading it is the average since the container started (podman's choice, which
//! lets `--no-stream` print at once instead of sleeping a second as docker does).

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::Engine;
use crate::error::Result;
use crate::record::ContainerRecord;
use crate::status::{self, State};

/// One container's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sample {
    pub id: String,
    pub name: String,
    /// Running (or paused): the figures are live; else all zero.
    pub active: bool,
    pub cpu_percent: f64,
    /// Bytes in use, without the page cache the kernel can drop (docker's choice).
    pub mem_usage: u64,
    /// The limit, or the host's memory when unlimited.
    pub mem_limit: u64,
    pub mem_percent: f64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

/// Keeps the previous CPU reading of each container between refreshes.
#[derive(Debug, Default)]
pub struct Sampler {
    previous: HashMap<String, (u64, Instant)>,
}

/// Total host memory, bytes (docker shows it as the limit of an unlimited container).
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

/// Bytes received and sent on the interfaces (but loopback) of `pid`'s network namespace.
pub fn net_io(pid: i32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    parse_net_dev(&text)
}

fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in text.lines().skip(2) {
        let Some((name, values)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let v: Vec<u64> = values
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() >= 9 {
            rx += v[0];
            tx += v[8];
        }
    }
    (rx, tx)
}

impl Sampler {
    pub fn new() -> Self {
        Sampler::default()
    }

    /// Reads one container now. A container that does not run gives zeros.
    pub fn sample(&mut self, engine: &Engine, record: &ContainerRecord) -> Sample {
        let mut out = Sample {
            id: record.id.clone(),
            name: record.name.clone(),
            ..Default::default()
        };
        let live = status::observe(engine, record);
        if !matches!(live.state, State::Running | State::Paused) {
            self.previous.remove(&record.id);
            return out;
        }
        let Ok(event) = berth_container::ops::stats(&engine.runtime(), &record.id) else {
            return out;
        };
        let Some(stats) = event.data else { return out };
        out.active = true;
        let now = Instant::now();
        let total = stats.cpu.usage.total;
        out.cpu_percent = match self.previous.get(&record.id) {
            Some(&(before, at)) => {
                let wall = now.duration_since(at).as_nanos() as f64;
                if wall > 0.0 {
                    total.saturating_sub(before) as f64 / wall * 100.0
                } else {
                    0.0
                }
            }
            None => {
                let since = record
                    .state
                    .started_at
                    .as_deref()
                    .and_then(crate::time::parse)
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map(|d| d.as_nanos() as f64)
                    .unwrap_or(0.0);
                if since > 0.0 {
                    total as f64 / since * 100.0
                } else {
                    0.0
                }
            }
        };
        self.previous.insert(record.id.clone(), (total, now));
        let m = &stats.memory;
        // docker: usage minus the inactive page cache (v1 total_inactive_file, v2
        // inactive_file).
        let inactive = m
            .raw
            .get("total_inactive_file")
            .or_else(|| m.raw.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        out.mem_usage = m.usage.usage.saturating_sub(inactive);
        let host = host_memory();
        out.mem_limit = match m.usage.limit {
            0 => host,
            l if host > 0 && l > host => host,
            l => l,
        };
        if out.mem_limit > 0 {
            out.mem_percent = out.mem_usage as f64 / out.mem_limit as f64 * 100.0;
        }
        for e in &stats.blkio.io_service_bytes_recursive {
            match e.op.to_ascii_lowercase().as_str() {
                "read" => out.block_read += e.value,
                "write" => out.block_write += e.value,
                _ => {}
            }
        }
        out.pids = stats.pids.current;
        if live.pid > 0 {
            (out.net_rx, out.net_tx) = net_io(live.pid);
        }
        out
    }
}

/// The containers `stats` shows: those named, or every running one (`all`: every one).
pub fn select(engine: &Engine, names: &[String], all: bool) -> Result<Vec<ContainerRecord>> {
    if names.is_empty() {
        let mut out = Vec::new();
        for record in engine.records.list()? {
            if all || status::observe(engine, &record).state.is_active() {
                out.push(record);
            }
        }
        return Ok(out);
    }
    names
        .iter()
        .map(|n| {
            let id = engine.records.resolve(n)?;
            engine.records.load(&id)
        })
        .collect()
}

/// Sizes as docker's `units.HumanSizeWithPrecision(size, 3)` (decimal: `1.23kB`, `4.1MB`),
/// used for network and block I/O.
pub fn human_decimal(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    // Go's %.3g: three significant digits, no trailing zeros.
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_skips_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:  100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 2000 10 0 0 0 0 0 0 3000 20 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), (2000, 3000));
    }

    #[test]
    fn decimal_sizes_like_docker() {
        assert_eq!(human_decimal(0), "0B");
        assert_eq!(human_decimal(1234), "1.23kB");
        assert_eq!(human_decimal(4_100_000), "4.1MB");
        assert_eq!(human_decimal(123_000_000), "123MB");
    }
}
