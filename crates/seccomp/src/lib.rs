//! # berth-seccomp
//!
//! Compiles an OCI runtime-spec `linux.seccomp` object into a classic BPF
//! program in pure Rust (no libseccomp), installs it, and hands the
//! SCMP_ACT_NOTIFY listener fd to the seccomp agent.
//!
//! ```text
//! parent (plan)                         child (last step before exec)
//! let prog = compile(&profile)?;        prctl(PR_SET_NO_NEW_PRIVS) or CAP_SYS_ADMIN (caller)
//!   // errors surface before           let listener = prog.install()?;   // Some(fd) iff needs_listener()
//!   // anything is created              pass the fd to the parent -> send_listener_fd(listenerPath, fd, &state)
//! ```
//!
//! ## API
//! * [`compile`] / [`compile_for`]: profile -> [`Program`] (verified, <= 4096 instructions).
//! * [`Program::install`]: `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`.
//! * [`parse_profile`]: JSON -> `LinuxSeccomp` with errors like `syscalls[3]: unknown action "SCMP_ACT_FOO"`.
//! * [`send_listener_fd`] + [`container_process_state`]: the runtime-spec listener protocol.
//! * [`Cache`]: compiled programs on disk keyed by SHA-256 of profile + arch.
//! * [`Arch`], [`native_arch`]; [`SockFilter`], [`verify`] for callers that inspect programs.
//!
//! ## Program shape
//! `ld arch` -> one `jeq` per architecture (native first, else KILL_THREAD) ->
//! `ld nr` -> (x86_64: split on the x32 bit) -> a balanced binary search over
//! the *ranges* of syscall numbers that share an outcome (adjacent allowed
//! syscalls collapse into one range) -> `ret`, or a small block that tests
//! the arguments of a conditional syscall. The docker default profile becomes
//! a few hundred instructions, and a syscall is decided in about a dozen.
//!
//! ## Semantics
//! Documented in full at the top of `compile.rs`. They follow runc +
//! libseccomp 2.5: the native arch is always filtered, a bad arch gets
//! KILL_THREAD, x32 calls are told apart by `__X32_SYSCALL_BIT`, i386/x32/arm
//! compare only the low 32 bits of an argument, unknown names are skipped
//! (debug log), entries equal to the default action are skipped, the first
//! unconditional entry for a syscall wins, repeated arg indices are ORed, and
//! syscalls newer than our tables get ENOSYS (runc's patchbpf). One thing
//! libseccomp leaves to its tree layout is defined here: overlapping
//! conditional rules resolve to the most restrictive action. i386
//! `socketcall`/`ipc` multiplexing is not expanded.
//!
//! With an empty `architectures` list the filter covers the native
//! architecture only, and a rule naming a syscall the native architecture
//! lacks (e.g. `chown32` on x86_64) adds nothing (as in runc).
//!
//! SCMP_ACT_NOTIFY: the caller sends the fd from [`Program::install`] to the
//! agent; the runtime must not let the filter notify a syscall it still
//! needs after install (it would wait on itself), which is why NOTIFY as the
//! default action is refused.
//!
//! ## Tests and tools
//! * `tests/behaviour.rs`: programs run in a cBPF interpreter, per op/arch/
//!   action case, plus a proptest against a reference evaluator of the profile.
//! * `tests/kernel.rs`: real seccomp(2) in child processes (errno, args,
//!   TRAP/KILL, x32, docker profile with busybox, NNP/EACCES as nobody, NOTIFY).
//! * `tests/cache.rs`: cache hits and every kind of corrupt file.
//! * `tests/libseccomp_compare.rs`, `tests/runc_compare.rs` (ignored by
//!   default): differential tests against libseccomp 2.5.4 and runc, using
//!   `tools/libseccomp_export.py` and `tools/runc_filter.py`.
//! * `tools/gen-syscalls.py`: regenerates `src/tables/generated.rs`.
//! * `fuzz/`: cargo-fuzz target (`cargo +nightly fuzz run compile`).

mod action;
mod arch;
mod bpf;
mod cache;
mod compile;
mod error;
mod notify;
mod profile;
mod program;
mod sys;
mod tables;

pub use action::{
    RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_TRACE, RET_TRAP,
    RET_USER_NOTIF,
};
pub use arch::{Arch, X32_SYSCALL_BIT, native_arch};
pub use bpf::{MAX_INSNS, SockFilter, VerifyError, verify};
pub use cache::{Cache, cache_key};
pub use compile::{
    FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_TSYNC_ESRCH,
    FLAG_WAIT_KILLABLE_RECV, compile_for,
};
pub use error::{CacheError, CompileError, InstallError, NotifyError, ProfileError};
pub use notify::{container_process_state, send_listener_fd};
pub use profile::{parse_profile, parse_profile_value};
pub use program::Program;

/// The syscall number of `name` on `arch` (x32 numbers include the x32 bit).
pub fn syscall_number(arch: Arch, name: &str) -> Option<u32> {
    tables::lookup(arch, name)
}

/// Every syscall name known on `arch`, with its number, sorted by name.
pub fn syscall_table(arch: Arch) -> &'static [(&'static str, u32)] {
    tables::all(arch)
}

/// Compile `profile` for the architecture this binary runs on (plus the
/// compat architectures listed in `architectures`).
pub fn compile(profile: &oci_spec::runtime::LinuxSeccomp) -> Result<Program, CompileError> {
    compile_for(profile, native_arch())
}
