//! The container's seccomp filter: compiled (or loaded from the cache) in the runtime before
//! anything is created, installed by the init as late as it can be.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_seccomp::{Cache, Program, container_process_state, native_arch, send_listener_fd};
use oci_spec::runtime::{LinuxSeccomp, State};

use crate::error::{Error, Result};
use crate::spec::Plan;
use crate::state::OCI_VERSION;

/// The directory under the state root that holds compiled filters. Its name contains a
/// character container ids may not have, so it can never be taken for a container.
pub const CACHE_DIR: &str = "seccomp:cache";

/// Compiles the plan's profile for this machine, through the on-disk cache.
pub fn compile(plan: &Plan, state_root: &Path) -> Result<Option<Program>> {
    let Some(profile) = &plan.seccomp else {
        return Ok(None);
    };
    let dir = state_root.join(CACHE_DIR);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        log::warn!("seccomp cache {}: {e}", dir.display());
    }
    let program = Cache::new(dir)
        .load_or_compile(profile, native_arch())
        .map_err(Error::SeccompProfile)?;
    if program.needs_listener() && profile.listener_path().is_none() {
        return Err(Error::invalid(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs a listenerPath to send the notify fd to",
        ));
    }
    Ok(Some(program))
}

/// The container a notify fd belongs to.
pub struct ListenerTarget<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub annotations: &'a HashMap<String, String>,
}

/// Sends a notify fd (of the init or of an exec'd process `pid`) to the seccomp agent at
/// `listenerPath`, with the container's state, as the runtime-spec describes.
pub fn send_listener_to(
    profile: &LinuxSeccomp,
    target: &ListenerTarget<'_>,
    pid: i32,
    fd: &OwnedFd,
) -> Result<()> {
    let path = profile
        .listener_path()
        .as_ref()
        .ok_or_else(|| Error::invalid("linux.seccomp.listenerPath", "missing"))?;
    let mut state = State::default();
    state.set_version(OCI_VERSION.to_string());
    state.set_id(target.id.to_string());
    state.set_status(oci_spec::runtime::ContainerState::Creating);
    state.set_pid(Some(pid));
    state.set_bundle(target.bundle.to_path_buf());
    state.set_annotations(Some(target.annotations.clone()));
    let message = container_process_state(
        OCI_VERSION,
        pid,
        profile.listener_metadata().as_deref(),
        state,
    );
    send_listener_fd(path, fd.as_fd(), &message).map_err(Error::SeccompNotify)
}

/// [`send_listener_to`] for the init of a planned container.
pub fn send_listener(profile: &LinuxSeccomp, plan: &Plan, pid: i32, fd: &OwnedFd) -> Result<()> {
    let target = ListenerTarget {
        id: &plan.id,
        bundle: &plan.bundle,
        annotations: &plan.annotations,
    };
    send_listener_to(profile, &target, pid, fd)
}
