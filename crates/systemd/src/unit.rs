//! runc's systemd form of `linux.cgroupsPath`, `slice:prefix:name`, to a unit and its slice.
//!
//! - empty cgroupsPath: `:berth:<container id>` (runc's is `:runc:<id>`, named after itself)
//! - empty slice: `system.slice`; `-` or `-.slice`: the root slice
//! - empty name: the container id
//! - the unit is `prefix-name.scope`, or `name.scope` when the prefix is empty (runc would
//!   make `-name.scope`, which systemctl then reads as an option); a name ending in `.slice`
//!   is used as is (a slice unit, prefix ignored), as runc does.
//! - a slice's place in the tree comes from its name: `machine-foo.slice` lives at
//!   `/machine.slice/machine-foo.slice`; systemd makes the parents itself when a unit names
//!   the slice.

use std::fmt;

use crate::error::Error;

pub const DEFAULT_SLICE: &str = "system.slice";
pub const DEFAULT_PREFIX: &str = "berth";
pub const ROOT_SLICE: &str = "-.slice";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    Scope,
    Slice,
}

/// A container's unit, as a cgroupsPath names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitPath {
    /// The parent slice (`Slice=` of the unit), e.g. `machine.slice`.
    pub slice: String,
    /// The unit name, e.g. `libpod-abc.scope`.
    pub unit: String,
    pub kind: UnitKind,
}

impl fmt::Display for UnitPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.slice, self.unit)
    }
}

impl UnitPath {
    pub fn parse(cgroups_path: &str, container_id: &str) -> Result<UnitPath, Error> {
        let bad = |reason: String| Error::CgroupsPath {
            path: cgroups_path.into(),
            reason,
        };
        let (slice, prefix, name) = if cgroups_path.is_empty() {
            ("", DEFAULT_PREFIX, container_id)
        } else {
            let parts: Vec<&str> = cgroups_path.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(bad(format!(
                    "expected \"slice:prefix:name\" for the systemd cgroup driver, found {} part(s)",
                    parts.len()
                )));
            };
            (slice, prefix, name)
        };
        let slice = match slice {
            "" => DEFAULT_SLICE,
            "-" => ROOT_SLICE,
            s => s,
        };
        expand_slice(slice).map_err(|e| bad(e.to_string()))?;
        let name = if name.is_empty() { container_id } else { name };
        let (unit, kind) = if name.ends_with(".slice") {
            expand_slice(name).map_err(|e| bad(e.to_string()))?;
            (name.to_owned(), UnitKind::Slice)
        } else if prefix.is_empty() {
            (format!("{name}.scope"), UnitKind::Scope)
        } else {
            (format!("{prefix}-{name}.scope"), UnitKind::Scope)
        };
        check_unit_name(&unit).map_err(bad)?;
        Ok(UnitPath {
            slice: slice.to_owned(),
            unit,
            kind,
        })
    }

    /// Where systemd will put the unit's cgroup, relative to the cgroup root
    /// (`/machine.slice/machine-foo.slice/x.scope`). The unit's ControlGroup property is the
    /// truth once it runs; this is for planning and for finding a leftover.
    pub fn cgroup(&self) -> String {
        let parent = expand_slice(&self.slice).expect("checked by parse");
        match (self.kind, parent.as_str()) {
            // a slice unit's cgroup follows from its own name, whatever the parent says
            (UnitKind::Slice, _) => expand_slice(&self.unit).expect("checked by parse"),
            (UnitKind::Scope, "/") => format!("/{}", self.unit),
            (UnitKind::Scope, p) => format!("{p}/{}", self.unit),
        }
    }
}

/// A slice name to its cgroup path, as systemd places it: each `-` opens a level.
pub fn expand_slice(slice: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::Slice {
        slice: slice.into(),
        reason: reason.into(),
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(bad("a slice name ends in .slice"));
    };
    if slice.contains('/') {
        return Err(bad("a slice name has no '/' (nesting is written with '-')"));
    }
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty() || stem.split('-').any(str::is_empty) {
        return Err(bad("empty component (leading, trailing or doubled '-')"));
    }
    check_unit_name(slice).map_err(|r| bad(&r))?;
    let mut path = String::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        path.push('/');
        path.push_str(&prefix);
        path.push_str(component);
        path.push_str(".slice");
        prefix.push_str(component);
        prefix.push('-');
    }
    Ok(path)
}

/// systemd's unit name rules: at most 255 bytes of `[A-Za-z0-9:_.\-@]` with `\` escapes.
fn check_unit_name(unit: &str) -> Result<(), String> {
    if unit.len() > 255 {
        return Err(format!("unit name {unit:?} is longer than 255 bytes"));
    }
    if let Some(c) = unit
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_.-@\\".contains(*c)))
    {
        return Err(format!(
            "unit name {unit:?} has {c:?}, which systemd does not allow"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> UnitPath {
        UnitPath::parse(p, "ctr1").unwrap()
    }

    #[test]
    fn runc_forms_and_defaults() {
        let u = parse("system.slice:docker:abc");
        assert_eq!(
            (u.slice.as_str(), u.unit.as_str()),
            ("system.slice", "docker-abc.scope")
        );
        assert_eq!(u.cgroup(), "/system.slice/docker-abc.scope");
        assert_eq!(parse("").unit, "berth-ctr1.scope");
        assert_eq!(parse("").slice, "system.slice");
        assert_eq!(parse("::").unit, "ctr1.scope");
        assert_eq!(parse(":crio:").unit, "crio-ctr1.scope");
        let u = parse("machine.slice:libpod:0123abcd");
        assert_eq!(u.cgroup(), "/machine.slice/libpod-0123abcd.scope");
        assert_eq!(parse("-:p:n").cgroup(), "/p-n.scope");
        assert_eq!(parse("-.slice:p:n").slice, "-.slice");
    }

    #[test]
    fn nested_slices_expand_by_dashes() {
        assert_eq!(
            expand_slice("machine-berthtest.slice").unwrap(),
            "/machine.slice/machine-berthtest.slice"
        );
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        let u = parse("machine-berthtest.slice:berth:x");
        assert_eq!(
            u.cgroup(),
            "/machine.slice/machine-berthtest.slice/berth-x.scope"
        );
        assert_eq!(u.to_string(), "machine-berthtest.slice/berth-x.scope");
    }

    #[test]
    fn a_slice_name_makes_a_slice_unit() {
        let u = parse("system.slice:ignored:kube-pod1.slice");
        assert_eq!(
            (u.unit.as_str(), u.kind),
            ("kube-pod1.slice", UnitKind::Slice)
        );
        assert_eq!(u.cgroup(), "/kube.slice/kube-pod1.slice");
    }

    #[test]
    fn bad_paths_name_the_path_and_the_reason() {
        for (p, why) in [
            ("/sys/fs/cgroup/x", "1 part"),
            ("a:b", "2 part"),
            ("a:b:c:d", "4 part"),
            ("system:p:n", "ends in .slice"),
            ("a--b.slice:p:n", "empty component"),
            ("-a.slice:p:n", "empty component"),
            ("a.slice/b.slice:p:n", "no '/'"),
            ("a.slice:p:n m", "' '"),
            ("a.slice:p:x--.slice", "empty component"),
        ] {
            let e = UnitPath::parse(p, "id").unwrap_err().to_string();
            assert!(e.contains(p) && e.contains(why), "{p}: {e}");
        }
        let long = format!("s.slice:p:{}", "n".repeat(260));
        assert!(
            UnitPath::parse(&long, "id")
                .unwrap_err()
                .to_string()
                .contains("255")
        );
    }
}
