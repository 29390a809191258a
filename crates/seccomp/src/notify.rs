//! Handing the notify listener fd to the seccomp agent at `listenerPath`.
//!
//! runtime-spec (config-linux.md "seccomp", runtime.md): the runtime connects
//! to the AF_UNIX SOCK_STREAM socket at `listenerPath` and sends exactly one
//! "container process state" JSON object per connection, with the listener
//! fd attached as SCM_RIGHTS; `fds` names the attached fds in order
//! (`["seccompFd"]`), `metadata` is `listenerMetadata`, `state` is the
//! container's runtime-spec state.

use std::io::{IoSlice, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use oci_spec::runtime::{ContainerProcessState, SECCOMP_FD_NAME, State};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use crate::error::NotifyError;

/// Build the message for [`send_listener_fd`]: `pid` is the container
/// process as the runtime sees it, `metadata` the profile's
/// `listenerMetadata`, `state` the container's state (status "creating" at
/// that point), `oci_version` the runtime-spec version the runtime speaks.
pub fn container_process_state(
    oci_version: &str,
    pid: i32,
    metadata: Option<&str>,
    state: State,
) -> ContainerProcessState {
    let mut s = ContainerProcessState::default();
    s.set_version(oci_version.to_string());
    s.set_fds(vec![SECCOMP_FD_NAME.to_string()]);
    s.set_pid(pid);
    s.set_metadata(metadata.map(str::to_string));
    s.set_state(state);
    s
}

/// Connect to `listener_path` and send `state` as JSON with `fd` attached
/// (SCM_RIGHTS), then close the connection. `state.fds` should be
/// `["seccompFd"]` (use [`container_process_state`]).
pub fn send_listener_fd(
    listener_path: &Path,
    fd: BorrowedFd<'_>,
    state: &ContainerProcessState,
) -> Result<(), NotifyError> {
    let path = listener_path.display().to_string();
    let body = serde_json::to_vec(state).map_err(NotifyError::Serialize)?;
    let mut stream = UnixStream::connect(listener_path).map_err(|source| NotifyError::Connect {
        path: path.clone(),
        source,
    })?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    // Cannot fail: the buffer was sized for exactly this message.
    let pushed = cmsg.push(SendAncillaryMessage::ScmRights(&fds));
    debug_assert!(pushed);
    let sent = rustix::net::sendmsg(
        stream.as_fd(),
        &[IoSlice::new(&body)],
        &mut cmsg,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| NotifyError::Send {
        path: path.clone(),
        source: e.into(),
    })?;
    // A stream socket may take part of the message; the fd went with the first
    // byte, the rest follows as plain data.
    stream
        .write_all(&body[sent..])
        .map_err(|source| NotifyError::Send { path, source })?;
    Ok(())
}
