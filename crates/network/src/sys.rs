//! Small wrappers over system calls (all safe through rustix; kept here so the rest of the
//! crate reads as plain logic).

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use rustix::fs::{FlockOperation, flock};

/// Fill `buf` from the kernel's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            // getrandom cannot fail on a kernel this crate supports except for EINTR.
            Err(e) => panic!("getrandom: {e}"),
        }
    }
}

/// Random lowercase hex of `n` characters.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    random_bytes(&mut b);
    let mut s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    s.truncate(n);
    s
}

/// Take an exclusive flock on `f`, waiting for it (released when `f` is closed).
pub(crate) fn lock_exclusive(f: &File) -> io::Result<()> {
    loop {
        match flock(f, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Move the calling thread into the network namespace open at `ns`.
pub(crate) fn enter_netns(ns: &File) -> io::Result<()> {
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(io::Error::from)
}
