//! `linux.memoryPolicy`: the arguments of set_mempolicy(2), checked before anything exists.

use berth_cgroups::cpulist::IdList;
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::error::{Error, Result};

const FIELD: &str = "linux.memoryPolicy";

/// Memory nodes a policy may name: the kernel's MAX_NUMNODES is at most 1024.
const MAX_NODES: u32 = 1024;

/// A validated set_mempolicy(2) call: the mode with its flags, and the node mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPolicyPlan {
    /// The mode (MPOL_*) ORed with the mode flags (MPOL_F_*).
    pub mode: i32,
    /// One bit per node, 64 nodes a word.
    pub nodemask: Vec<u64>,
    /// The mode's name, for errors.
    pub name: &'static str,
}

/// The modes, by number, and the mode flags the runtime-spec names.
const MODES: [&str; 7] = [
    "MPOL_DEFAULT",
    "MPOL_PREFERRED",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_LOCAL",
    "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];
const FLAGS: [(&str, i32); 3] = [
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// The modes and flags this kernel accepts, for `features`: each is tried on the calling
/// thread (with the first online memory node; flags with MPOL_BIND), which is then put back
/// to the default policy. A kernel without NUMA accepts none.
pub fn supported() -> (Vec<&'static str>, Vec<&'static str>) {
    let node = std::fs::read_to_string("/sys/devices/system/node/online")
        .ok()
        .and_then(|t| IdList::parse(&t).ok())
        .and_then(|l| l.ids().next())
        .unwrap_or(0);
    let mut mask = vec![0u64; node as usize / 64 + 1];
    mask[node as usize / 64] |= 1 << (node % 64);
    let accepted = |mode: i32| {
        let nodes: &[u64] = if matches!(mode & 0xff, 0 | 4) {
            &[]
        } else {
            &mask
        };
        let ok = crate::sys::set_mempolicy(mode, nodes).is_ok();
        let _ = crate::sys::set_mempolicy(0, &[]);
        ok
    };
    let modes = (0..MODES.len() as i32)
        .filter(|&m| accepted(m))
        .map(|m| MODES[m as usize])
        .collect();
    let flags = FLAGS
        .iter()
        .filter(|(_, bit)| accepted(2 | bit))
        .map(|(name, _)| *name)
        .collect();
    (modes, flags)
}

/// Checks a memory policy: modes that place memory on nodes need nodes, the default and
/// local modes take none, node numbers are in the kernel's range.
pub fn plan_memory_policy(policy: &LinuxMemoryPolicy) -> Result<MemoryPolicyPlan> {
    use MemoryPolicyModeType::*;
    let (mode, name, needs_nodes) = match policy.mode() {
        MpolDefault => (0, "MPOL_DEFAULT", Some(false)),
        MpolPreferred => (1, "MPOL_PREFERRED", None),
        MpolBind => (2, "MPOL_BIND", Some(true)),
        MpolInterleave => (3, "MPOL_INTERLEAVE", Some(true)),
        MpolLocal => (4, "MPOL_LOCAL", Some(false)),
        MpolPreferredMany => (5, "MPOL_PREFERRED_MANY", Some(true)),
        MpolWeightedInterleave => (6, "MPOL_WEIGHTED_INTERLEAVE", Some(true)),
    };
    let nodes_text = policy.nodes().as_deref().unwrap_or_default();
    let nodes =
        IdList::parse(nodes_text).map_err(|m| Error::invalid(format!("{FIELD}.nodes"), m))?;
    match needs_nodes {
        Some(true) if nodes.is_empty() => {
            return Err(Error::invalid(
                format!("{FIELD}.nodes"),
                format!("{name} needs memory nodes"),
            ));
        }
        Some(false) if !nodes.is_empty() => {
            return Err(Error::invalid(
                format!("{FIELD}.nodes"),
                format!("{name} takes no memory nodes"),
            ));
        }
        _ => {}
    }
    if let Some(max) = nodes.max()
        && max >= MAX_NODES
    {
        return Err(Error::invalid(
            format!("{FIELD}.nodes"),
            format!("node {max} is beyond the kernel's {MAX_NODES} nodes"),
        ));
    }
    let mut nodemask = vec![0u64; nodes.max().map_or(0, |m| m as usize / 64 + 1)];
    for node in nodes.ids() {
        nodemask[node as usize / 64] |= 1 << (node % 64);
    }
    let mut flags = 0;
    for flag in policy.flags().as_deref().unwrap_or_default() {
        flags |= match flag {
            MemoryPolicyFlagType::MpolFNumaBalancing => FLAGS[0].1,
            MemoryPolicyFlagType::MpolFRelativeNodes => FLAGS[1].1,
            MemoryPolicyFlagType::MpolFStaticNodes => FLAGS[2].1,
        };
    }
    Ok(MemoryPolicyPlan {
        mode: mode | flags,
        nodemask,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Result<MemoryPolicyPlan> {
        plan_memory_policy(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn modes_nodes_and_flags_become_set_mempolicy_arguments() {
        let p = plan(r#"{"mode":"MPOL_BIND","nodes":"0,2-3,64","flags":["MPOL_F_STATIC_NODES"]}"#)
            .unwrap();
        assert_eq!(p.mode, 2 | 1 << 15);
        assert_eq!(p.nodemask, [0b1101, 1]);
        let p = plan(r#"{"mode":"MPOL_DEFAULT"}"#).unwrap();
        assert_eq!((p.mode, p.nodemask.len()), (0, 0));
        let p = plan(r#"{"mode":"MPOL_PREFERRED"}"#).unwrap();
        assert_eq!(p.mode, 1);
    }

    #[test]
    fn this_kernel_accepts_the_basic_modes() {
        let (modes, _) = supported();
        if !modes.is_empty() {
            for mode in ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_LOCAL"] {
                assert!(modes.contains(&mode), "{modes:?}");
            }
        }
    }

    #[test]
    fn bad_policies_name_the_field() {
        for json in [
            r#"{"mode":"MPOL_BIND"}"#,
            r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#,
            r#"{"mode":"MPOL_INTERLEAVE","nodes":"3-1"}"#,
            r#"{"mode":"MPOL_INTERLEAVE","nodes":"4096"}"#,
        ] {
            let e = plan(json).unwrap_err().to_string();
            assert!(e.contains("linux.memoryPolicy.nodes:"), "{json}: {e}");
        }
    }
}
