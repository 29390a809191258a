//! Block I/O throttling (`--device-read-bps`, `--device-write-bps`, `--device-read-iops`,
//! `--device-write-iops`, docker's `DEVICE:RATE`): parsed and checked at create (the device
//! must be a block device of the host), turned into `linux.resources.blockIO`'s throttle
//! lists at start from the device's current numbers.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::units::parse_size;

/// Which limit: bytes or operations per second, read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::ReadBps,
        Kind::WriteBps,
        Kind::ReadIops,
        Kind::WriteIops,
    ];

    pub fn flag(self) -> &'static str {
        match self {
            Kind::ReadBps => "--device-read-bps",
            Kind::WriteBps => "--device-write-bps",
            Kind::ReadIops => "--device-read-iops",
            Kind::WriteIops => "--device-write-iops",
        }
    }

    /// The list in `linux.resources.blockIO`.
    fn spec_key(self) -> &'static str {
        match self {
            Kind::ReadBps => "throttleReadBpsDevice",
            Kind::WriteBps => "throttleWriteBpsDevice",
            Kind::ReadIops => "throttleReadIOPSDevice",
            Kind::WriteIops => "throttleWriteIOPSDevice",
        }
    }

    /// docker's `HostConfig` field.
    pub fn inspect_key(self) -> &'static str {
        match self {
            Kind::ReadBps => "BlkioDeviceReadBps",
            Kind::WriteBps => "BlkioDeviceWriteBps",
            Kind::ReadIops => "BlkioDeviceReadIOps",
            Kind::WriteIops => "BlkioDeviceWriteIOps",
        }
    }

    fn is_bytes(self) -> bool {
        matches!(self, Kind::ReadBps | Kind::WriteBps)
    }
}

/// One `DEVICE:RATE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleDevice {
    pub path: PathBuf,
    /// Bytes or operations per second.
    pub rate: u64,
}

/// The four lists, as the flags gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Throttle {
    pub read_bps: Vec<ThrottleDevice>,
    pub write_bps: Vec<ThrottleDevice>,
    pub read_iops: Vec<ThrottleDevice>,
    pub write_iops: Vec<ThrottleDevice>,
}

impl Throttle {
    pub fn get(&self, kind: Kind) -> &[ThrottleDevice] {
        match kind {
            Kind::ReadBps => &self.read_bps,
            Kind::WriteBps => &self.write_bps,
            Kind::ReadIops => &self.read_iops,
            Kind::WriteIops => &self.write_iops,
        }
    }

    fn get_mut(&mut self, kind: Kind) -> &mut Vec<ThrottleDevice> {
        match kind {
            Kind::ReadBps => &mut self.read_bps,
            Kind::WriteBps => &mut self.write_bps,
            Kind::ReadIops => &mut self.read_iops,
            Kind::WriteIops => &mut self.write_iops,
        }
    }

    /// Adds one flag's value (syntax only; [`Throttle::check`] looks at the device).
    pub fn add(&mut self, kind: Kind, text: &str) -> Result<()> {
        let device = parse(kind, text)?;
        self.get_mut(kind).push(device);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        Kind::ALL.iter().all(|k| self.get(*k).is_empty())
    }

    /// At create: every device is a block device of the host.
    pub fn check(&self) -> Result<()> {
        for kind in Kind::ALL {
            for d in self.get(kind) {
                numbers(kind, &d.path)?;
            }
        }
        Ok(())
    }

    /// At start: the `blockIO` throttle lists, with the devices' numbers as they are now.
    pub fn spec_lists(&self) -> Result<Vec<(&'static str, Value)>> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let list = self.get(kind);
            if list.is_empty() {
                continue;
            }
            let mut entries = Vec::new();
            for d in list {
                let (major, minor) = numbers(kind, &d.path)?;
                entries.push(json!({"major": major, "minor": minor, "rate": d.rate}));
            }
            out.push((kind.spec_key(), Value::Array(entries)));
        }
        Ok(out)
    }
}

/// `DEVICE:RATE`: an absolute device path, and a size (`1mb`, `512k`, bytes) for the bps
/// flags or a whole number for the iops ones.
pub fn parse(kind: Kind, text: &str) -> Result<ThrottleDevice> {
    let bad = |m: &str| Error::flag(kind.flag(), text, m);
    let (path, rate) = text
        .rsplit_once(':')
        .filter(|(p, r)| !p.is_empty() && !r.is_empty())
        .ok_or_else(|| bad("expected DEVICE:RATE (e.g. /dev/sda:1mb)"))?;
    if !path.starts_with('/') {
        return Err(bad("the device must be an absolute path (e.g. /dev/sda)"));
    }
    let rate = if kind.is_bytes() {
        // A rate is whole bytes: no fractions of a unit below one byte, no negatives.
        parse_size(rate)
            .filter(|_| !rate.starts_with('-'))
            .ok_or_else(|| {
                bad("the rate must be a size: a number with an optional unit kb, mb or gb")
            })?
    } else {
        rate.parse::<u64>()
            .map_err(|_| bad("the rate must be a whole number of operations per second"))?
    };
    Ok(ThrottleDevice {
        path: PathBuf::from(path),
        rate,
    })
}

/// The major and minor numbers of a block device.
fn numbers(kind: Kind, path: &Path) -> Result<(u32, u32)> {
    let shown = path.display().to_string();
    let meta =
        std::fs::metadata(path).map_err(|e| Error::flag(kind.flag(), &shown, e.to_string()))?;
    if !meta.file_type().is_block_device() {
        return Err(Error::flag(kind.flag(), &shown, "not a block device"));
    }
    let rdev = meta.rdev();
    Ok((rustix::fs::major(rdev), rustix::fs::minor(rdev)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_like_docker() {
        let d = parse(Kind::ReadBps, "/dev/sda:1mb").unwrap();
        assert_eq!((d.path.as_path(), d.rate), (Path::new("/dev/sda"), 1 << 20));
        assert_eq!(parse(Kind::WriteBps, "/dev/sda:2M").unwrap().rate, 2 << 20);
        assert_eq!(
            parse(Kind::WriteBps, "/dev/sda:512k").unwrap().rate,
            512 << 10
        );
        assert_eq!(parse(Kind::ReadBps, "/dev/sda:4096").unwrap().rate, 4096);
        assert_eq!(parse(Kind::ReadIops, "/dev/sda:100").unwrap().rate, 100);
        for (kind, bad) in [
            (Kind::ReadBps, "/dev/sda"),
            (Kind::ReadBps, "/dev/sda:"),
            (Kind::ReadBps, ":1mb"),
            (Kind::ReadBps, "/dev/sda:lots"),
            (Kind::ReadBps, "/dev/sda:-1"),
            (Kind::ReadBps, "sda:1mb"),
            (Kind::ReadIops, "/dev/sda:1.5"),
            (Kind::WriteIops, "/dev/sda:1k"),
        ] {
            let e = parse(kind, bad).unwrap_err().to_string();
            assert!(e.contains(kind.flag()) && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn only_block_devices() {
        let mut t = Throttle::default();
        t.add(Kind::ReadBps, "/dev/null:1mb").unwrap();
        let e = t.check().unwrap_err().to_string();
        assert!(
            e.contains("/dev/null") && e.contains("not a block device"),
            "{e}"
        );
        let mut t = Throttle::default();
        t.add(Kind::WriteIops, "/dev/no-such-disk:10").unwrap();
        let e = t.check().unwrap_err().to_string();
        assert!(
            e.contains("--device-write-iops") && e.contains("/dev/no-such-disk"),
            "{e}"
        );
        assert!(Throttle::default().spec_lists().unwrap().is_empty());
    }
}
