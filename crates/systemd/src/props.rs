//! OCI `linux.resources` to systemd unit properties, converted as runc's systemd driver
//! (cgroup v2 flavour) does. What systemd has no property for is handed back, for the runtime
//! to write into the unit's cgroup files once the unit exists.

use std::collections::BTreeMap;

use berth_cgroups::Mode;
use berth_cgroups::convert::{blkio_weight_to_io_weight, cpu_shares_to_weight, swap_to_v2};
use berth_cgroups::cpulist::IdList;
use oci_spec::runtime::{LinuxBlockIo, LinuxResources};

use crate::dbus::{Type, Value};
use crate::error::Error;

/// systemd's "infinity" for byte and count limits (and USEC_INFINITY for times).
pub const INFINITY: u64 = u64::MAX;

/// The kernel's default CFS period, which systemd assumes when none is given.
const DEFAULT_PERIOD_US: u64 = 100_000;

/// One unit property: a name and a typed value (`(sv)` on the wire).
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub name: String,
    pub value: Value,
}

impl Property {
    pub fn new(name: &str, value: Value) -> Property {
        Property {
            name: name.into(),
            value,
        }
    }

    pub fn to_value(&self) -> Value {
        Value::Struct(vec![
            Value::str(self.name.clone()),
            Value::variant(self.value.clone()),
        ])
    }
}

/// `a(sv)` of a property list.
pub fn to_array(props: &[Property]) -> Value {
    Value::Array(
        Type::Struct(vec![Type::Str, Type::Variant]),
        props.iter().map(Property::to_value).collect(),
    )
}

/// The result of a conversion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    pub properties: Vec<Property>,
    /// `unified` keys systemd has no property for, to be written to the cgroup's files.
    pub unified_left: BTreeMap<String, String>,
    /// What systemd cannot be told and the cgroup files (or the device program) still
    /// enforce, for the runtime's log.
    pub warnings: Vec<String>,
}

/// The properties every container scope gets, before its resources: what runc sets.
pub fn scope_base(slice: &str, description: &str, pid: u32) -> Vec<Property> {
    vec![
        Property::new("Description", Value::str(description)),
        Property::new("Slice", Value::str(slice)),
        // no ordering against shutdown.target & co.: a container is not a system service
        Property::new("DefaultDependencies", Value::Bool(false)),
        // the subtree is ours: systemd leaves the cgroups below the unit alone
        Property::new("Delegate", Value::Bool(true)),
        Property::new("PIDs", Value::Array(Type::U32, vec![Value::U32(pid)])),
        Property::new("MemoryAccounting", Value::Bool(true)),
        Property::new("CPUAccounting", Value::Bool(true)),
        Property::new("IOAccounting", Value::Bool(true)),
        Property::new("TasksAccounting", Value::Bool(true)),
    ]
}

/// A byte limit of the OCI spec: -1 is unlimited, 0 unset, other negatives invalid.
fn bytes(field: &'static str, v: Option<i64>) -> Result<Option<u64>, Error> {
    match v {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(INFINITY)),
        Some(v) if v < 0 => Err(Error::Resource {
            field,
            reason: format!("{v} is negative (only -1, unlimited, is allowed)"),
        }),
        Some(v) => Ok(Some(v as u64)),
    }
}

/// CPUQuotaPerSecUSec from quota/period, as runc computes it: systemd keeps the quota as a
/// per-second value and turns it into a whole percent, so a quota that is not a multiple of
/// 10 ms per second is rounded up to one (a child asking for exactly the quota still fits).
pub fn cpu_quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 {
        DEFAULT_PERIOD_US
    } else {
        period
    };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// A CPU or node list to systemd's bitmask: byte i holds ids 8i..8i+7, lowest bit first.
pub fn id_mask(field: &'static str, list: &str) -> Result<Vec<u8>, Error> {
    let ids = IdList::parse(list).map_err(|reason| Error::Resource { field, reason })?;
    let Some(max) = ids.max() else {
        return Err(Error::Resource {
            field,
            reason: "empty list".into(),
        });
    };
    let mut mask = vec![0u8; max as usize / 8 + 1];
    for id in ids.ids() {
        mask[id as usize / 8] |= 1 << (id % 8);
    }
    Ok(mask)
}

/// The unit properties of the per-device throttles, in the order of the OCI fields.
const THROTTLES: [(&str, &str); 4] = [
    ("blockIO.throttleReadBpsDevice", "IOReadBandwidthMax"),
    ("blockIO.throttleWriteBpsDevice", "IOWriteBandwidthMax"),
    ("blockIO.throttleReadIOPSDevice", "IOReadIOPSMax"),
    ("blockIO.throttleWriteIOPSDevice", "IOWriteIOPSMax"),
];

/// Largest major and minor of a dev_t (12 and 20 bits): systemd parses /dev/block/MAJ:MIN
/// itself and ignores, with only a log line of its own, a number beyond them.
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// systemd's name of a block device by number. It needs no node there: systemd (>= 240)
/// takes the numbers from the path, so a device without a /dev/block link (no udev) works.
fn block_path(field: &'static str, index: usize, major: i64, minor: i64) -> Result<String, Error> {
    if !(0..=MAX_MAJOR).contains(&major) || !(0..=MAX_MINOR).contains(&minor) {
        return Err(Error::Resource {
            field,
            reason: format!(
                "[{index}]: {major}:{minor} is not a device number (major 0..={MAX_MAJOR}, \
                 minor 0..={MAX_MINOR})"
            ),
        });
    }
    Ok(format!("/dev/block/{major}:{minor}"))
}

/// `a(st)`: per-device values.
fn device_values(entries: Vec<(String, u64)>) -> Value {
    Value::Array(
        Type::Struct(vec![Type::Str, Type::U64]),
        entries
            .into_iter()
            .map(|(path, v)| Value::Struct(vec![Value::Str(path), Value::U64(v)]))
            .collect(),
    )
}

/// A blkio weight (10..=1000) as an io.weight; `at` names the entry of a device list.
fn blkio_weight(field: &'static str, at: &str, w: u16) -> Result<u64, Error> {
    if !(10..=1000).contains(&w) {
        return Err(Error::Resource {
            field,
            reason: format!("{at}{w} is outside 10..=1000"),
        });
    }
    Ok(blkio_weight_to_io_weight(w))
}

/// blockIO: the weights as io.weight values (the v1 range converted), the throttles as the
/// unit's per-device limits. A device property adds to or replaces the entries of the same
/// device, as the io.max lines of the cgroupfs driver do, so an update names only the
/// devices it changes. Leaf weights have no v2 form (the cgroupfs plan refuses them).
fn block_io(p: &mut Vec<Property>, b: &LinuxBlockIo) -> Result<(), Error> {
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        p.push(Property::new(
            "IOWeight",
            Value::U64(blkio_weight("blockIO.weight", "", w)?),
        ));
    }
    const WEIGHT_DEVICE: &str = "blockIO.weightDevice";
    let mut weights = Vec::new();
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        // a device entry with only a leaf weight sets no weight
        let Some(w) = d.weight().filter(|&w| w != 0) else {
            continue;
        };
        let path = block_path(WEIGHT_DEVICE, i, d.major(), d.minor())?;
        weights.push((path, blkio_weight(WEIGHT_DEVICE, &format!("[{i}]: "), w)?));
    }
    if !weights.is_empty() {
        p.push(Property::new("IODeviceWeight", device_values(weights)));
    }
    let lists = [
        b.throttle_read_bps_device(),
        b.throttle_write_bps_device(),
        b.throttle_read_iops_device(),
        b.throttle_write_iops_device(),
    ];
    for ((field, name), list) in THROTTLES.into_iter().zip(lists) {
        let mut limits = Vec::new();
        for (i, d) in list.iter().flatten().enumerate() {
            let path = block_path(field, i, d.major(), d.minor())?;
            // a rate of 0 removes the limit (v1's meaning, which the io.max writes keep)
            let rate = if d.rate() == 0 { INFINITY } else { d.rate() };
            limits.push((path, rate));
        }
        if !limits.is_empty() {
            p.push(Property::new(name, device_values(limits)));
        }
    }
    Ok(())
}

/// Convert the resources of a container: all of them at create, the set ones at update.
pub fn convert(r: &LinuxResources, mode: Mode) -> Result<Resources, Error> {
    let mut out = Resources::default();
    let p = &mut out.properties;
    let u64p = |name: &str, v: u64| Property::new(name, Value::U64(v));
    if let Some(m) = r.memory() {
        let limit = bytes("memory.limit", m.limit())?;
        if let Some(v) = limit {
            p.push(u64p("MemoryMax", v));
        }
        if let Some(v) = bytes("memory.reservation", m.reservation())? {
            p.push(u64p("MemoryLow", v));
        }
        let swap = swap_to_v2(m.swap().unwrap_or(0), m.limit().unwrap_or(0)).map_err(|reason| {
            Error::Resource {
                field: "memory.swap",
                reason,
            }
        })?;
        match swap {
            Some(-1) => p.push(u64p("MemorySwapMax", INFINITY)),
            Some(v) => p.push(u64p("MemorySwapMax", v as u64)),
            None => {}
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            p.push(u64p("CPUWeight", cpu_shares_to_weight(s)));
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if period != 0 {
            // systemd >= 242
            p.push(u64p("CPUQuotaPeriodUSec", period));
        }
        if quota != 0 || period != 0 {
            p.push(u64p("CPUQuotaPerSecUSec", cpu_quota_per_sec(quota, period)));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.trim().is_empty()) {
            p.push(Property::new(
                "AllowedCPUs",
                Value::bytes(&id_mask("cpu.cpus", cpus)?),
            ));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.trim().is_empty()) {
            p.push(Property::new(
                "AllowedMemoryNodes",
                Value::bytes(&id_mask("cpu.mems", mems)?),
            ));
        }
    }
    if let Some(pids) = r.pids() {
        match pids.limit() {
            -1 => p.push(u64p("TasksMax", INFINITY)),
            l if l > 0 => p.push(u64p("TasksMax", l as u64)),
            0 => {}
            l => {
                return Err(Error::Resource {
                    field: "pids.limit",
                    reason: format!("{l} is negative"),
                });
            }
        }
    }
    if let Some(b) = r.block_io() {
        block_io(p, b)?;
    }
    // Devices first in runc; here after the limits, which changes nothing (each property
    // is its own setting) and keeps the old order of everything else.
    let devices = match (r.devices(), mode) {
        (Some(d), _) => Some(d.as_slice()),
        // a new container is deny-by-default even when the spec says nothing (as the
        // cgroupfs plan), an update without devices leaves the policy alone
        (None, Mode::Create) => Some(&[][..]),
        (None, Mode::Update) => None,
    };
    if let Some(d) = devices {
        let props = crate::devices::properties(d, &mut out.warnings)?;
        out.properties.extend(props);
    }
    if let Some(unified) = r.unified() {
        // sorted, so that the property list is the same for the same input
        let sorted: BTreeMap<_, _> = unified.iter().collect();
        for (k, v) in sorted {
            match unified_property(k, v)? {
                Some(prop) => out.properties.push(prop),
                None => {
                    out.unified_left.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Ok(out)
}

/// The unified keys with a systemd property of their own (runc maps the same ones, and the
/// cpu/cpuset ones, which the files take as well). They come after the typed fields, so they
/// win, as in runc.
fn unified_property(key: &str, value: &str) -> Result<Option<Property>, Error> {
    let name = match key {
        "memory.min" => "MemoryMin",
        "memory.low" => "MemoryLow",
        "memory.high" => "MemoryHigh",
        "memory.max" => "MemoryMax",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        _ => return Ok(None),
    };
    let v = value.trim();
    let n = if v == "max" {
        INFINITY
    } else {
        v.parse::<u64>().map_err(|_| Error::Unified {
            key: key.into(),
            value: value.into(),
            reason: "neither a number nor \"max\"",
        })?
    };
    if key == "cpu.weight" && !(1..=10_000).contains(&n) {
        return Err(Error::Unified {
            key: key.into(),
            value: value.into(),
            reason: "outside 1..=10000",
        });
    }
    Ok(Some(Property::new(name, Value::U64(n))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn get(r: &Resources, name: &str) -> Option<Value> {
        r.properties
            .iter()
            .rev()
            .find(|p| p.name == name)
            .map(|p| p.value.clone())
    }

    #[test]
    fn memory_limits_map_to_memory_properties() {
        let r = convert(
            &res(r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":134217728}}"#),
            Mode::Update,
        )
        .unwrap();
        assert_eq!(get(&r, "MemoryMax"), Some(Value::U64(64 << 20)));
        assert_eq!(get(&r, "MemoryLow"), Some(Value::U64(32 << 20)));
        // OCI swap is memory+swap: 128M - 64M of swap alone
        assert_eq!(get(&r, "MemorySwapMax"), Some(Value::U64(64 << 20)));
        let r = convert(&res(r#"{"memory":{"limit":-1}}"#), Mode::Update).unwrap();
        assert_eq!(get(&r, "MemoryMax"), Some(Value::U64(INFINITY)));
        assert_eq!(get(&r, "MemorySwapMax"), Some(Value::U64(INFINITY)));
        let e = convert(&res(r#"{"memory":{"limit":100,"swap":50}}"#), Mode::Update)
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory.swap"), "{e}");
        let e = convert(&res(r#"{"memory":{"limit":-5}}"#), Mode::Update)
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory.limit") && e.contains("-5"), "{e}");
    }

    #[test]
    fn cpu_quota_is_per_second_rounded_up_to_a_percent() {
        // runc's cases: 50000/100000 = 0.5 s per second
        assert_eq!(cpu_quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(cpu_quota_per_sec(50_000, 0), 500_000);
        // 1.23 % of a CPU -> 2 %
        assert_eq!(cpu_quota_per_sec(1_230, 100_000), 20_000);
        assert_eq!(cpu_quota_per_sec(-1, 100_000), INFINITY);
        let r = convert(
            &res(r#"{"cpu":{"quota":20000,"period":50000,"shares":1024}}"#),
            Mode::Update,
        )
        .unwrap();
        assert_eq!(get(&r, "CPUQuotaPeriodUSec"), Some(Value::U64(50_000)));
        assert_eq!(get(&r, "CPUQuotaPerSecUSec"), Some(Value::U64(400_000)));
        // the default shares give the default weight
        assert_eq!(get(&r, "CPUWeight"), Some(Value::U64(100)));
        let r = convert(&res(r#"{"cpu":{"period":50000}}"#), Mode::Update).unwrap();
        assert_eq!(get(&r, "CPUQuotaPerSecUSec"), Some(Value::U64(INFINITY)));
        assert_eq!(
            convert(&res(r#"{"cpu":{}}"#), Mode::Update)
                .unwrap()
                .properties,
            vec![]
        );
    }

    #[test]
    fn cpusets_become_little_endian_bitmasks() {
        assert_eq!(id_mask("cpu.cpus", "0-3,5").unwrap(), vec![0x2f]);
        assert_eq!(id_mask("cpu.cpus", "9").unwrap(), vec![0x00, 0x02]);
        assert_eq!(id_mask("cpu.mems", "0").unwrap(), vec![0x01]);
        assert_eq!(
            id_mask("cpu.cpus", "0,8-9,16").unwrap(),
            vec![0x01, 0x03, 0x01]
        );
        let e = id_mask("cpu.cpus", "3-1").unwrap_err().to_string();
        assert!(e.contains("cpu.cpus") && e.contains("reversed"), "{e}");
        let r = convert(&res(r#"{"cpu":{"cpus":"1","mems":"0"}}"#), Mode::Update).unwrap();
        assert_eq!(get(&r, "AllowedCPUs"), Some(Value::bytes(&[2])));
        assert_eq!(get(&r, "AllowedMemoryNodes"), Some(Value::bytes(&[1])));
    }

    #[test]
    fn pids_io_and_unified() {
        let r = convert(&res(
            r#"{"pids":{"limit":32},"blockIO":{"weight":500},
                "unified":{"memory.high":"max","io.max":"8:0 rbps=1","pids.max":"40","memory.oom.group":"1"}}"#,
        ), Mode::Update)
        .unwrap();
        assert_eq!(
            get(&r, "IOWeight"),
            Some(Value::U64(blkio_weight_to_io_weight(500)))
        );
        assert_eq!(get(&r, "MemoryHigh"), Some(Value::U64(INFINITY)));
        // unified comes later and wins
        assert_eq!(get(&r, "TasksMax"), Some(Value::U64(40)));
        assert_eq!(
            r.unified_left.keys().collect::<Vec<_>>(),
            ["io.max", "memory.oom.group"]
        );
        assert_eq!(
            get(
                &convert(&res(r#"{"pids":{"limit":-1}}"#), Mode::Update).unwrap(),
                "TasksMax"
            ),
            Some(Value::U64(INFINITY))
        );
        let e = convert(&res(r#"{"unified":{"memory.high":"lots"}}"#), Mode::Update)
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory.high") && e.contains("lots"), "{e}");
        let e = convert(&res(r#"{"blockIO":{"weight":5}}"#), Mode::Update)
            .unwrap_err()
            .to_string();
        assert!(e.contains("blockIO.weight"), "{e}");
    }

    #[test]
    fn scope_properties_marshal_as_a_sv() {
        let mut props = scope_base("machine.slice", "berth container x", 42);
        props.extend(
            convert(&res(r#"{"memory":{"limit":4096}}"#), Mode::Update)
                .unwrap()
                .properties,
        );
        let v = to_array(&props);
        assert_eq!(v.ty().to_string(), "a(sv)");
        let Value::Array(_, items) = &v else { panic!() };
        assert_eq!(items.len(), 10);
        // byte-exact for one element: ("MemoryMax", v t 4096), offsets from an 8-aligned start
        let b = crate::dbus::marshal::marshal(std::slice::from_ref(items.last().unwrap()));
        #[rustfmt::skip]
        let want: &[u8] = &[
            9, 0, 0, 0, b'M', b'e', b'm', b'o', b'r', b'y', b'M', b'a', b'x', 0, // s at 0..14
            1, b't', 0,             // g "t" at 14..17
            0, 0, 0, 0, 0, 0, 0,    // pad to 24
            0, 0x10, 0, 0, 0, 0, 0, 0, // t 4096
        ];
        assert_eq!(b, want);
    }

    fn per_device(entries: &[(&str, u64)]) -> Value {
        device_values(entries.iter().map(|(p, v)| (p.to_string(), *v)).collect())
    }

    #[test]
    fn block_io_devices_become_per_device_properties() {
        let r = convert(
            &res(r#"{"blockIO":{
                "weightDevice":[{"major":8,"minor":0,"weight":500},
                                {"major":8,"minor":16,"leafWeight":300},
                                {"major":7,"minor":2,"weight":10}],
                "throttleReadBpsDevice":[{"major":7,"minor":0,"rate":1048576},
                                         {"major":8,"minor":0,"rate":0}],
                "throttleWriteBpsDevice":[{"major":7,"minor":0,"rate":2097152}],
                "throttleReadIOPSDevice":[{"major":7,"minor":0,"rate":100}],
                "throttleWriteIOPSDevice":[{"major":253,"minor":1,"rate":50}]}}"#),
            Mode::Update,
        )
        .unwrap();
        // weights as io.weight values; the leaf-only entry sets none
        assert_eq!(
            get(&r, "IODeviceWeight"),
            Some(per_device(&[
                ("/dev/block/8:0", blkio_weight_to_io_weight(500)),
                ("/dev/block/7:2", blkio_weight_to_io_weight(10)),
            ]))
        );
        // a rate of 0 lifts the limit
        assert_eq!(
            get(&r, "IOReadBandwidthMax"),
            Some(per_device(&[
                ("/dev/block/7:0", 1 << 20),
                ("/dev/block/8:0", INFINITY)
            ]))
        );
        assert_eq!(
            get(&r, "IOWriteBandwidthMax"),
            Some(per_device(&[("/dev/block/7:0", 2 << 20)]))
        );
        assert_eq!(
            get(&r, "IOReadIOPSMax"),
            Some(per_device(&[("/dev/block/7:0", 100)]))
        );
        assert_eq!(
            get(&r, "IOWriteIOPSMax"),
            Some(per_device(&[("/dev/block/253:1", 50)]))
        );
        assert_eq!(
            get(&r, "IOReadBandwidthMax").unwrap().ty().to_string(),
            "a(st)"
        );
        // none of them is also left for the files as a unified key: the cgroupfs plan
        // writes io.max from the same fields
        assert!(r.unified_left.is_empty());
        // empty lists set nothing (not even an empty array, which would reset the unit's)
        let r = convert(
            &res(r#"{"blockIO":{"weightDevice":[],"throttleReadBpsDevice":[]}}"#),
            Mode::Update,
        )
        .unwrap();
        assert_eq!(r.properties, vec![]);
    }

    #[test]
    fn bad_block_io_devices_name_the_field_and_the_entry() {
        for (json, want) in [
            (
                r#"{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1},{"major":-1,"minor":0,"rate":1}]}"#,
                "linux.resources.blockIO.throttleReadBpsDevice: [1]: -1:0",
            ),
            (
                r#"{"throttleWriteIOPSDevice":[{"major":4096,"minor":0,"rate":1}]}"#,
                "linux.resources.blockIO.throttleWriteIOPSDevice: [0]: 4096:0",
            ),
            (
                r#"{"weightDevice":[{"major":8,"minor":0,"weight":5}]}"#,
                "linux.resources.blockIO.weightDevice: [0]: 5 is outside 10..=1000",
            ),
        ] {
            let e = convert(&res(&format!(r#"{{"blockIO":{json}}}"#)), Mode::Update)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn a_new_container_always_gets_a_device_policy_an_update_only_when_given() {
        let r = convert(&res("{}"), Mode::Create).unwrap();
        assert_eq!(get(&r, "DevicePolicy"), Some(Value::str("strict")));
        let Some(Value::Array(_, allowed)) = get(&r, "DeviceAllow") else {
            panic!("{r:?}")
        };
        assert!(allowed.contains(&Value::Struct(vec![
            Value::str("/dev/char/1:3"),
            Value::str("rwm")
        ])));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(
            convert(&res("{}"), Mode::Update).unwrap().properties,
            vec![]
        );
        let r = convert(
            &res(r#"{"devices":[{"allow":true,"type":"b","major":7,"minor":0,"access":"rw"}]}"#),
            Mode::Update,
        )
        .unwrap();
        let Some(Value::Array(_, allowed)) = get(&r, "DeviceAllow") else {
            panic!("{r:?}")
        };
        assert!(allowed.contains(&Value::Struct(vec![
            Value::str("/dev/block/7:0"),
            Value::str("rw")
        ])));
        let e = convert(
            &res(r#"{"devices":[{"allow":true,"type":"p","access":"rw"}]}"#),
            Mode::Create,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux.resources.devices[0].type"), "{e}");
    }

    #[test]
    fn per_device_properties_marshal_as_a_st_and_a_ss() {
        // ("IOReadBandwidthMax", v a(st) [("/dev/block/7:0", 1024)]), from an 8-aligned start
        let prop = Property::new(
            "IOReadBandwidthMax",
            per_device(&[("/dev/block/7:0", 1024)]),
        );
        let b = crate::dbus::marshal::marshal(&[prop.to_value()]);
        let mut want = vec![18, 0, 0, 0];
        want.extend_from_slice(b"IOReadBandwidthMax\0"); // s at 0..23
        want.extend_from_slice(&[5, b'a', b'(', b's', b't', b')', 0]); // g at 23..30
        want.extend_from_slice(&[0, 0]); // pad to 32 for the array length
        want.extend_from_slice(&[32, 0, 0, 0]); // 32 bytes of elements
        want.extend_from_slice(&[0, 0, 0, 0]); // pad to 40: the struct is 8-aligned
        want.extend_from_slice(&[14, 0, 0, 0]);
        want.extend_from_slice(b"/dev/block/7:0\0"); // s at 40..59
        want.extend_from_slice(&[0, 0, 0, 0, 0]); // pad to 64
        want.extend_from_slice(&1024u64.to_le_bytes()); // t at 64..72
        assert_eq!(b, want);
        let back = crate::dbus::unmarshal::unmarshal(&b, "(sv)", false).unwrap();
        assert_eq!(back, [prop.to_value()]);

        // ("DeviceAllow", v a(ss) [("char-*", "m")])
        let prop = Property::new(
            "DeviceAllow",
            Value::Array(
                Type::Struct(vec![Type::Str, Type::Str]),
                vec![Value::Struct(vec![Value::str("char-*"), Value::str("m")])],
            ),
        );
        let b = crate::dbus::marshal::marshal(&[prop.to_value()]);
        let mut want = vec![11, 0, 0, 0];
        want.extend_from_slice(b"DeviceAllow\0"); // s at 0..16
        want.extend_from_slice(&[5, b'a', b'(', b's', b's', b')', 0]); // g at 16..23
        want.push(0); // pad to 24
        want.extend_from_slice(&[18, 0, 0, 0]); // 18 bytes of elements, from 32
        want.extend_from_slice(&[0, 0, 0, 0]); // pad to 32
        want.extend_from_slice(&[6, 0, 0, 0]);
        want.extend_from_slice(b"char-*\0"); // s at 32..43
        want.push(0); // pad to 44
        want.extend_from_slice(&[1, 0, 0, 0, b'm', 0]); // s at 44..50
        assert_eq!(b, want);
        let back = crate::dbus::unmarshal::unmarshal(&b, "(sv)", false).unwrap();
        assert_eq!(back, [prop.to_value()]);
    }
}
