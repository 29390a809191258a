//! Typed errors. Every compile error names the offending entry with a JSON
//! path such as `syscalls[3].args[1]`.

use std::io;

use crate::bpf::{AsmError, VerifyError};

/// The profile cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// An `args` list longer than the six arguments a syscall has.
    #[error("{at}: more than 6 args")]
    TooManyArgs {
        /// e.g. `syscalls[5].args[6]`
        at: String,
    },
    /// An argument index outside 0..=5.
    #[error("{at}: index {index} is out of range (a syscall has args 0-5)")]
    ArgIndex {
        /// e.g. `syscalls[5].args[0]`
        at: String,
        /// The index given.
        index: usize,
    },
    /// `errnoRet`/`defaultErrnoRet` does not fit in SECCOMP_RET_DATA (16 bits).
    #[error("{at}: errnoRet {value} does not fit in 16 bits")]
    ErrnoRange {
        /// e.g. `syscalls[2].errnoRet` or `defaultErrnoRet`
        at: String,
        /// The value given.
        value: u32,
    },
    /// An empty string in `names`.
    #[error("{at}: empty syscall name")]
    EmptyName {
        /// e.g. `syscalls[1].names[4]`
        at: String,
    },
    /// SCMP_ACT_NOTIFY as the default action would also trap the syscalls the
    /// runtime itself makes between install and exec (and every syscall the
    /// agent would need to reply), so, like runc, we refuse it.
    #[error("defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    /// A flag that the kernel accepts only together with a listener.
    #[error("flags: {0} needs a SCMP_ACT_NOTIFY rule (the kernel rejects it without a listener)")]
    FlagNeedsListener(&'static str),
    /// The program would exceed the kernel's limit.
    #[error("compiled program has {0} instructions, more than the kernel's limit of 4096")]
    TooLong(usize),
    /// A bug in the compiler: the program failed our own verifier.
    #[error("internal error: compiled program failed verification: {0}")]
    Verify(#[from] VerifyError),
    /// A bug in the compiler's assembler.
    #[error(transparent)]
    Asm(#[from] AsmError),
}

/// The profile JSON is not a valid `linux.seccomp` object.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not JSON at all.
    #[error("seccomp profile is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A field has the wrong JSON type.
    #[error("{at}: expected {expected}")]
    Type {
        /// JSON path of the field.
        at: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A required field is missing.
    #[error("{at}: missing")]
    Missing {
        /// JSON path of the field.
        at: String,
    },
    /// An action name that is not one of the SCMP_ACT_* values.
    #[error("{at}: unknown action {value:?}")]
    UnknownAction {
        /// e.g. `syscalls[3]`
        at: String,
        /// The name given.
        value: String,
    },
    /// An operator name that is not one of the SCMP_CMP_* values.
    #[error("{at}: unknown op {value:?}")]
    UnknownOp {
        /// e.g. `syscalls[2].args[0]`
        at: String,
        /// The name given.
        value: String,
    },
    /// An architecture name the OCI spec does not list.
    #[error("{at}: unknown architecture {value:?}")]
    UnknownArch {
        /// e.g. `architectures[1]`
        at: String,
        /// The name given.
        value: String,
    },
    /// A flag name the OCI spec does not list.
    #[error("{at}: unknown flag {value:?}")]
    UnknownFlag {
        /// e.g. `flags[0]`
        at: String,
        /// The name given.
        value: String,
    },
    /// Passed our checks but oci-spec still refused it (e.g. a number out of range).
    #[error("seccomp profile does not match the runtime-spec schema: {0}")]
    Schema(#[source] serde_json::Error),
}

/// Loading the filter into the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// EACCES from seccomp(2).
    #[error("seccomp filter install needs no_new_privs or CAP_SYS_ADMIN (EACCES)")]
    NeedsNoNewPrivs,
    /// EINVAL: a flag or action this kernel does not know, or a bad program.
    #[error("kernel rejected the seccomp filter or its flags {flags:#x} (EINVAL): {source}")]
    Rejected {
        /// The flags passed.
        flags: u32,
        /// The OS error.
        source: io::Error,
    },
    /// TSYNC could not synchronise another thread.
    #[error("SECCOMP_FILTER_FLAG_TSYNC: thread {0} could not be synchronised")]
    TsyncFailed(i64),
    /// Any other failure.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER) failed: {0}")]
    Os(#[source] io::Error),
}

/// Handing the listener fd to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Connecting to `listenerPath`.
    #[error("connect to seccomp listener socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// Serializing the container process state.
    #[error("serialize container process state: {0}")]
    Serialize(#[source] serde_json::Error),
    /// sendmsg failed.
    #[error("send seccomp fd to {path}: {source}")]
    Send {
        /// The socket path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel took only part of the message; the agent would see a truncated JSON.
    #[error("send seccomp fd to {path}: short write ({sent} of {len} bytes)")]
    ShortWrite {
        /// The socket path.
        path: String,
        /// Bytes sent.
        sent: usize,
        /// Bytes in the message.
        len: usize,
    },
}

/// Cache failures that are not simply "miss, recompile".
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Compiling on a miss failed.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// Writing the cache directory or file failed.
    #[error("seccomp cache {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}
