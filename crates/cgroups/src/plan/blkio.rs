//! linux.resources.blockIO: v1 blkio, v2 io.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::{Builder, Op, Version};
use crate::controller::Controller::Blkio;

const F: &str = "linux.resources.blockIO";

/// (OCI field, v1 file, v2 io.max key)
const THROTTLES: [(&str, &str, &str); 4] = [
    (
        "throttleReadBpsDevice",
        "blkio.throttle.read_bps_device",
        "rbps",
    ),
    (
        "throttleWriteBpsDevice",
        "blkio.throttle.write_bps_device",
        "wbps",
    ),
    (
        "throttleReadIOPSDevice",
        "blkio.throttle.read_iops_device",
        "riops",
    ),
    (
        "throttleWriteIOPSDevice",
        "blkio.throttle.write_iops_device",
        "wiops",
    ),
];

fn throttle_lists(b: &LinuxBlockIo) -> [&Option<Vec<LinuxThrottleDevice>>; 4] {
    [
        b.throttle_read_bps_device(),
        b.throttle_write_bps_device(),
        b.throttle_read_iops_device(),
        b.throttle_write_iops_device(),
    ]
}

pub(super) fn plan(bld: &mut Builder<'_>, b: &LinuxBlockIo) {
    let weight = b.weight().unwrap_or(0);
    let leaf = b.leaf_weight().unwrap_or(0);
    let dev_weights: Vec<(i64, i64, u16)> = b
        .weight_device()
        .iter()
        .flatten()
        .filter_map(|d| {
            d.weight()
                .filter(|&w| w != 0)
                .map(|w| (d.major(), d.minor(), w))
        })
        .collect();
    let dev_leaf: Vec<(i64, i64, u16)> = b
        .weight_device()
        .iter()
        .flatten()
        .filter_map(|d| {
            d.leaf_weight()
                .filter(|&w| w != 0)
                .map(|w| (d.major(), d.minor(), w))
        })
        .collect();
    let lists = throttle_lists(b);
    let mut set = Vec::new();
    if weight != 0 {
        set.push("weight".to_string());
    }
    if leaf != 0 {
        set.push("leafWeight".into());
    }
    if !dev_weights.is_empty() || !dev_leaf.is_empty() {
        set.push("weightDevice".into());
    }
    for (i, l) in lists.iter().enumerate() {
        if l.as_ref().is_some_and(|v| !v.is_empty()) {
            set.push(THROTTLES[i].0.into());
        }
    }
    let Some(first) = set.first() else {
        return;
    };
    let Some(version) = bld.need(Blkio, &format!("{F}.{first}")) else {
        return;
    };
    match version {
        Version::V1 => {
            if weight != 0 || !dev_weights.is_empty() {
                bld.ops.push(Op::BlkioWeightV1 {
                    weight,
                    devices: dev_weights,
                });
            }
            // Only CFQ had leaf weights (gone since Linux 5.0); on newer
            // kernels the write fails with a clear ENOENT on the file.
            if leaf != 0 {
                bld.write(version, Blkio, "blkio.leaf_weight", leaf.to_string());
            }
            for (ma, mi, w) in dev_leaf {
                bld.write(
                    version,
                    Blkio,
                    "blkio.leaf_weight_device",
                    format!("{ma}:{mi} {w}"),
                );
            }
            for (i, l) in lists.iter().enumerate() {
                for d in l.iter().flatten() {
                    bld.write(
                        version,
                        Blkio,
                        THROTTLES[i].1,
                        format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                    );
                }
            }
        }
        Version::V2 => {
            if weight != 0 || !dev_weights.is_empty() {
                bld.ops.push(Op::IoWeightV2 {
                    weight,
                    devices: dev_weights,
                });
            }
            if leaf != 0 || !dev_leaf.is_empty() {
                bld.not_on(
                    &format!("{F}.leafWeight"),
                    version,
                    "the io controller has no leaf weights",
                );
            }
            for (i, l) in lists.iter().enumerate() {
                for d in l.iter().flatten() {
                    // On v1 a rate of 0 removes the limit; io.max spells
                    // that "max" (a literal 0 would be a zero limit).
                    let rate = if d.rate() == 0 {
                        "max".to_string()
                    } else {
                        d.rate().to_string()
                    };
                    bld.write(
                        version,
                        Blkio,
                        "io.max",
                        format!("{}:{} {}={rate}", d.major(), d.minor(), THROTTLES[i].2),
                    );
                }
            }
        }
    }
}
