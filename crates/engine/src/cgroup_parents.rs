//! The cgroups the engine puts things under, in every hierarchy: containers at
//! `/berth/<id>`, host processes under `berth limit` at `/berth-limit/<pid>`. The runtime makes
//! a parent with the first cgroup below it and, like runc, removes only the container's own on
//! delete, so the parents stay while the host runs, as docker's `/docker` does: a start pays no
//! mkdir for them. [`remove_if_empty`] takes them down where nothing is left below (the test
//! suites call it as they end; a create racing with it makes the parent again, see
//! `berth_cgroups`' `mkdir_p`).

/// The parent of every container's cgroup.
pub const CONTAINERS: &str = "/berth";

/// Remove the engine's parent cgroups from every mounted hierarchy where they are empty. An
/// rmdir of a cgroup that still has a cgroup below fails (EBUSY), so one in use is never touched.
pub fn remove_if_empty() {
    let Ok(layout) = berth_cgroups::Layout::probe() else {
        return;
    };
    let mountpoints = layout
        .v1
        .iter()
        .map(|m| &m.mountpoint)
        .chain(layout.unified.iter().map(|u| &u.mountpoint));
    for mountpoint in mountpoints {
        for parent in [CONTAINERS, crate::limit::CGROUP_PARENT] {
            let _ = std::fs::remove_dir(mountpoint.join(parent.trim_start_matches('/')));
        }
    }
}
