//! pids, hugepageLimits, network, rdma and unified.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxHugepageLimit, LinuxNetwork, LinuxPids, LinuxRdma};

use super::{Builder, Op, Version};
use crate::controller::Controller;
use crate::error::ResourceError;
use crate::layout::LayoutKind;

pub(super) fn pids(b: &mut Builder<'_>, p: &LinuxPids) {
    let limit = p.limit();
    // 0 means "leave unchanged" (runc), so it never needs the controller.
    if limit == 0 {
        return;
    }
    if let Some(v) = b.need(Controller::Pids, "linux.resources.pids.limit") {
        let value = if limit < 0 {
            "max".to_string()
        } else {
            limit.to_string()
        };
        b.write(v, Controller::Pids, "pids.max", value);
    }
}

pub(super) fn hugetlb(b: &mut Builder<'_>, limits: &[LinuxHugepageLimit]) {
    if limits.is_empty() {
        return;
    }
    let Some(v) = b.need(Controller::Hugetlb, "linux.resources.hugepageLimits") else {
        return;
    };
    for l in limits {
        let size = l.page_size();
        let limit = l.limit().to_string();
        // Also limit reservations where the kernel has them (5.7+), as runc
        // does: otherwise a mapping could reserve pages beyond the limit
        // and fault later instead of failing at mmap().
        let (max, rsvd) = match v {
            Version::V1 => (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
            ),
            Version::V2 => (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
            ),
        };
        b.write(v, Controller::Hugetlb, max, limit.clone());
        b.write_if_present(v, Controller::Hugetlb, rsvd, limit);
    }
}

pub(super) fn network(b: &mut Builder<'_>, n: &LinuxNetwork) {
    if let Some(id) = n.class_id().filter(|&c| c != 0)
        && let Some(v) = b.need(Controller::NetCls, "linux.resources.network.classID")
    {
        b.write(v, Controller::NetCls, "net_cls.classid", id.to_string());
    }
    let prios = n.priorities().as_deref().unwrap_or(&[]);
    if !prios.is_empty()
        && let Some(v) = b.need(Controller::NetPrio, "linux.resources.network.priorities")
    {
        for p in prios {
            b.write(
                v,
                Controller::NetPrio,
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            );
        }
    }
}

pub(super) fn rdma(b: &mut Builder<'_>, r: &HashMap<String, LinuxRdma>) {
    if r.is_empty() {
        return;
    }
    let Some(v) = b.need(Controller::Rdma, "linux.resources.rdma") else {
        return;
    };
    let mut devs: Vec<(&String, &LinuxRdma)> = r.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        let n = |x: Option<u32>| x.map_or_else(|| "max".to_string(), |v| v.to_string());
        b.write(
            v,
            Controller::Rdma,
            "rdma.max",
            format!(
                "{dev} hca_handle={} hca_object={}",
                n(l.hca_handles()),
                n(l.hca_objects())
            ),
        );
    }
}

pub(super) fn unified(b: &mut Builder<'_>, u: &HashMap<String, String>) {
    if u.is_empty() {
        return;
    }
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    if b.b.kind == LayoutKind::V1 || !b.b.unified {
        b.errs.push(ResourceError::new(
            "linux.resources.unified",
            format!(
                "linux.resources.unified ({}) needs cgroup v2, and this host has only v1 hierarchies",
                keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ));
        return;
    }
    for k in keys {
        let Some((ctl, _)) = k.split_once('.') else {
            continue; // validate() already refused it
        };
        if ctl != "cgroup" && !b.b.v2.iter().any(|c| c == ctl) {
            let field = format!("linux.resources.unified.{k}");
            let bound_to_v1 = Controller::ALL
                .into_iter()
                .find(|c| c.v2_name() == Some(ctl) || c.v1_name() == ctl)
                .filter(|c| b.b.v1.contains(c));
            let where_ = match bound_to_v1 {
                Some(_) => format!(
                    "it is bound to a cgroup v1 hierarchy on this host ({})",
                    b.b.kind
                ),
                None => "the cgroup v2 hierarchy does not offer it".to_string(),
            };
            b.errs.push(ResourceError::new(
                field.clone(),
                format!("{field} cannot be set: controller {ctl:?} is not available on cgroup v2 ({where_})"),
            ));
            continue;
        }
        b.ops.push(Op::Unified {
            file: k.clone(),
            value: u[k].clone(),
        });
    }
}
