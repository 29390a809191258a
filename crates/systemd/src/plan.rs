//! What `create` decides before anything exists: the unit, its slice, its properties, and the
//! `unified` keys the files must take afterwards. Bad input fails here, so nothing is left to
//! clean up; starting the scope is then one call that cannot fail on data.

use berth_cgroups::Mode;
use oci_spec::runtime::LinuxResources;

use crate::error::Result;
use crate::props::{self, Resources};
use crate::unit::UnitPath;

#[derive(Clone, Debug, PartialEq)]
pub struct ScopePlan {
    pub unit: UnitPath,
    /// The unit's Description= (`systemctl status` shows it).
    pub description: String,
    pub resources: Resources,
}

impl ScopePlan {
    /// From the spec's `linux.cgroupsPath` (runc's systemd form) and `linux.resources`.
    pub fn new(
        cgroups_path: &str,
        container_id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<ScopePlan> {
        let unit = UnitPath::parse(cgroups_path, container_id)?;
        // no resources still makes a device policy (deny-by-default, runc's list)
        let none = LinuxResources::default();
        let resources = props::convert(resources.unwrap_or(&none), Mode::Create)?;
        Ok(ScopePlan {
            unit,
            description: format!("berth container {container_id}"),
            resources,
        })
    }

    /// The cgroup systemd will make, relative to the cgroup root.
    pub fn cgroup(&self) -> String {
        self.unit.cgroup()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_holds_the_unit_and_the_converted_resources() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"pids":{"limit":5},"unified":{"io.max":"8:0 rbps=1"}}"#)
                .unwrap();
        let p = ScopePlan::new("machine.slice:libpod:abc", "abc", Some(&r)).unwrap();
        assert_eq!(p.cgroup(), "/machine.slice/libpod-abc.scope");
        assert_eq!(p.description, "berth container abc");
        let names: Vec<&str> = p
            .resources
            .properties
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["TasksMax", "DevicePolicy", "DeviceAllow", "DeviceAllow"]
        );
        assert!(p.resources.unified_left.contains_key("io.max"));
        assert!(ScopePlan::new("bad", "abc", None).is_err());
        // without linux.resources the unit still gets the default device policy
        let p = ScopePlan::new("", "abc", None).unwrap();
        let names: Vec<&str> = p
            .resources
            .properties
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["DevicePolicy", "DeviceAllow", "DeviceAllow"]);
        let r: LinuxResources = serde_json::from_str(r#"{"cpu":{"cpus":"x"}}"#).unwrap();
        let e = ScopePlan::new("", "abc", Some(&r)).unwrap_err().to_string();
        assert!(e.contains("cpu.cpus"), "{e}");
    }
}
