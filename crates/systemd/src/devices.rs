//! `linux.resources.devices` to `DevicePolicy=` and `DeviceAllow=`, as runc's systemd driver
//! converts them (libcontainer/cgroups/devices/systemd.go).
//!
//! The rules are first reduced to the policy the device cgroup would end up with (the same
//! emulator the cgroupfs driver uses: deny all, the spec's rules, runc's default allow
//! list), and that policy is what systemd is given. systemd only knows allow lists, so:
//! - a deny-by-default policy becomes `DevicePolicy=strict` plus one `DeviceAllow=` entry
//!   per allowed device or device class;
//! - an allow-everything policy becomes `DevicePolicy=auto` with an empty list;
//! - an allow-by-default policy with exceptions cannot be said: systemd gets deny-all and
//!   the runtime's own device program (which runs too, runc's way) carries the real one.
//!
//! `DeviceAllow=` adds to the unit's list, so an empty array goes first: on update, the
//! entries of the old policy must not stay.

use berth_cgroups::ResourceErrors;
use berth_cgroups::devices::emulator::DeviceState;
use berth_cgroups::devices::{DevKind, container_state};
use oci_spec::runtime::LinuxDeviceCgroup;

use crate::dbus::{Type, Value};
use crate::error::Error;
use crate::props::Property;

/// One `DeviceAllow=` entry: a device path or class, and its `rwm` letters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAllow {
    pub path: String,
    pub access: String,
}

/// The `a(ss)` of a `DeviceAllow=` list.
fn allow_list(entries: &[DeviceAllow]) -> Value {
    Value::Array(
        Type::Struct(vec![Type::Str, Type::Str]),
        entries
            .iter()
            .map(|e| {
                Value::Struct(vec![
                    Value::str(e.path.clone()),
                    Value::str(e.access.clone()),
                ])
            })
            .collect(),
    )
}

/// The properties of a container's device rules; what systemd cannot express is left to
/// the runtime's device program and said in `warnings`.
pub(crate) fn properties(
    spec: &[LinuxDeviceCgroup],
    warnings: &mut Vec<String>,
) -> Result<Vec<Property>, Error> {
    let state = container_state(spec).map_err(|e| Error::Devices(ResourceErrors(e)))?;
    let (policy, entries) = systemd_policy(&state, warnings);
    let mut props = vec![
        Property::new("DevicePolicy", Value::str(policy)),
        Property::new("DeviceAllow", allow_list(&[])),
    ];
    if !entries.is_empty() {
        props.push(Property::new("DeviceAllow", allow_list(&entries)));
    }
    Ok(props)
}

/// `DevicePolicy=` and the `DeviceAllow=` entries of a device cgroup state.
pub fn systemd_policy(
    state: &DeviceState,
    warnings: &mut Vec<String>,
) -> (&'static str, Vec<DeviceAllow>) {
    if state.default_allow {
        if state.exceptions.is_empty() {
            // "auto" with no entries: systemd puts no device program on the unit
            return ("auto", Vec::new());
        }
        warnings.push(
            "linux.resources.devices: systemd has no deny rules; its unit gets deny-all, the \
             runtime's device program enforces the rules (as runc)"
                .into(),
        );
        return ("strict", Vec::new());
    }
    let mut entries = Vec::new();
    for (&(kind, major, minor), &access) in &state.exceptions {
        let class = match kind {
            DevKind::Block => "block",
            DevKind::Char => "char",
            // an `a` rule resets the state; the emulator never keeps one as an exception
            DevKind::All => continue,
        };
        let path = match (major, minor) {
            (None, None) => format!("{class}-*"),
            // "char-MAJOR" needs systemd >= 240 (older ones took /proc/devices group names
            // such as "char-pts"); Debian 12 has 252
            (Some(major), None) => format!("{class}-{major}"),
            (Some(major), Some(minor)) => format!("/dev/{class}/{major}:{minor}"),
            (None, Some(minor)) => {
                warnings.push(format!(
                    "linux.resources.devices: systemd cannot allow \"{} *:{minor} {}\" (any \
                     major, one minor); the runtime's device program still does",
                    kind.as_char(),
                    access
                ));
                continue;
            }
        };
        entries.push(DeviceAllow {
            path,
            access: access.to_string(),
        });
    }
    ("strict", entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    fn entries(json: &str) -> (&'static str, Vec<(String, String)>, Vec<String>) {
        let state = container_state(&spec(json)).unwrap();
        let mut warnings = Vec::new();
        let (policy, list) = systemd_policy(&state, &mut warnings);
        let list = list.into_iter().map(|e| (e.path, e.access)).collect();
        (policy, list, warnings)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, a)| (p.to_string(), a.to_string()))
            .collect()
    }

    /// runc's default list as systemd sees it (runc's own test expects the same entries).
    const DEFAULTS: [(&str, &str); 11] = [
        ("block-*", "m"),
        ("char-*", "m"),
        ("/dev/char/1:3", "rwm"),
        ("/dev/char/1:5", "rwm"),
        ("/dev/char/1:7", "rwm"),
        ("/dev/char/1:8", "rwm"),
        ("/dev/char/1:9", "rwm"),
        ("/dev/char/5:0", "rwm"),
        ("/dev/char/5:2", "rwm"),
        ("/dev/char/10:200", "rwm"),
        ("char-136", "rwm"),
    ];

    #[test]
    fn the_default_list_is_strict_with_pts_and_the_standard_nodes() {
        let (policy, list, warnings) = entries("[]");
        assert_eq!(policy, "strict");
        assert_eq!(list, pairs(&DEFAULTS));
        assert!(warnings.is_empty(), "{warnings:?}");
        // docker's leading deny-all changes nothing
        let (policy, list, _) = entries(r#"[{"allow":false,"access":"rwm"}]"#);
        assert_eq!((policy, list), ("strict", pairs(&DEFAULTS)));
    }

    #[test]
    fn spec_rules_add_paths_classes_and_access_subsets() {
        let (policy, list, warnings) = entries(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"b","major":7,"minor":0,"access":"r"},
                {"allow":true,"type":"c","major":4,"access":"rw"},
                {"allow":true,"type":"b","major":8,"minor":1,"access":"rwm"},
                {"allow":false,"type":"b","major":8,"minor":1,"access":"w"}]"#,
        );
        assert_eq!(policy, "strict");
        assert!(warnings.is_empty(), "{warnings:?}");
        for want in [
            ("/dev/block/7:0", "r"),
            ("char-4", "rw"),
            // a deny of one letter after an allow of the same device narrows it
            ("/dev/block/8:1", "rm"),
        ] {
            assert!(
                list.contains(&(want.0.to_string(), want.1.to_string())),
                "no {want:?} in {list:?}"
            );
        }
        assert_eq!(list.len(), DEFAULTS.len() + 3);
    }

    #[test]
    fn allow_all_is_policy_auto_and_denies_after_it_are_deny_all_with_a_warning() {
        // --privileged: allow everything
        let (policy, list, warnings) = entries(r#"[{"allow":true,"access":"rwm"}]"#);
        assert_eq!((policy, list.len(), warnings.len()), ("auto", 0, 0));
        let (policy, list, warnings) = entries(
            r#"[{"allow":true,"access":"rwm"},
                {"allow":false,"type":"b","major":8,"minor":0,"access":"rwm"}]"#,
        );
        assert_eq!((policy, list.len()), ("strict", 0));
        assert!(warnings[0].contains("deny-all"), "{warnings:?}");
    }

    #[test]
    fn any_major_with_one_minor_is_left_out_with_a_warning() {
        let (_, list, warnings) =
            entries(r#"[{"allow":true,"type":"c","major":-1,"minor":5,"access":"r"}]"#);
        assert_eq!(list, pairs(&DEFAULTS));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("c *:5 r"), "{warnings:?}");
    }

    #[test]
    fn the_properties_reset_the_list_first_and_bad_rules_name_their_index() {
        let mut w = Vec::new();
        let props = properties(&[], &mut w).unwrap();
        assert_eq!(
            props[0],
            Property::new("DevicePolicy", Value::str("strict"))
        );
        assert_eq!(props[1].name, "DeviceAllow");
        assert_eq!(props[1].value.ty().to_string(), "a(ss)");
        assert_eq!(props[1].value, allow_list(&[]));
        let Value::Array(_, items) = &props[2].value else {
            panic!("{:?}", props[2])
        };
        assert_eq!(items.len(), DEFAULTS.len());
        assert_eq!(
            items[2],
            Value::Struct(vec![Value::str("/dev/char/1:3"), Value::str("rwm")])
        );
        // allow-all: no entries to add after the reset
        let props = properties(&spec(r#"[{"allow":true,"access":"rwm"}]"#), &mut w).unwrap();
        assert_eq!(props.len(), 2);
        let e = properties(
            &spec(r#"[{"allow":true,"type":"c","major":1,"access":"x"}]"#),
            &mut w,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux.resources.devices[0].access"), "{e}");
        // a rule the device cgroup cannot enforce, named by its place in the spec
        let e = properties(
            &spec(
                r#"[{"allow":true,"type":"c","major":-1,"minor":-1,"access":"r"},
                    {"allow":false,"type":"c","major":1,"minor":3,"access":"r"}]"#,
            ),
            &mut w,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("linux.resources.devices[1]:"), "{e}");
    }
}
