//! Architectures: their audit numbers (what the kernel puts in
//! `seccomp_data.arch`), argument width and the names the OCI spec uses.

use oci_spec::runtime::Arch as OciArch;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive with `AUDIT_ARCH_X86_64` and this
/// bit set in the syscall number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture berth-seccomp has a syscall table for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// `SCMP_ARCH_X86_64`
    X86_64,
    /// `SCMP_ARCH_X86` (i386)
    X86,
    /// `SCMP_ARCH_X32`
    X32,
    /// `SCMP_ARCH_AARCH64`
    Aarch64,
    /// `SCMP_ARCH_ARM` (EABI)
    Arm,
}

impl Arch {
    /// Every supported architecture.
    pub const ALL: &'static [Arch] =
        &[Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm];

    /// The `AUDIT_ARCH_*` value the kernel reports in `seccomp_data.arch`.
    /// x32 shares x86_64's value; the syscall number tells them apart.
    pub const fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => 0xC000_003E,
            Arch::X86 => 0x4000_0003,
            Arch::Aarch64 => 0xC000_00B7,
            Arch::Arm => 0x4000_0028,
        }
    }

    /// Whether syscall arguments are 64 bits wide. libseccomp treats i386, x32
    /// and arm as 32-bit: only the low word of an argument is compared and the
    /// rule's value is truncated to 32 bits. We do the same so profiles mean
    /// the same thing under berth and runc.
    pub const fn has_64bit_args(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    /// The libseccomp / OCI name, e.g. `SCMP_ARCH_X86_64`.
    pub const fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// Map an OCI architecture; `None` for the ones we have no table for
    /// (mips, ppc, s390, riscv, ...). `SCMP_ARCH_NATIVE` maps to `native`.
    pub fn from_oci(arch: OciArch, native: Arch) -> Option<Arch> {
        Some(match arch {
            OciArch::ScmpArchNative => native,
            OciArch::ScmpArchX86_64 => Arch::X86_64,
            OciArch::ScmpArchX86 => Arch::X86,
            OciArch::ScmpArchX32 => Arch::X32,
            OciArch::ScmpArchAarch64 => Arch::Aarch64,
            OciArch::ScmpArchArm => Arch::Arm,
            _ => return None,
        })
    }

    /// Stable one-byte id, used in the cache key and file header.
    pub(crate) const fn id(self) -> u8 {
        match self {
            Arch::X86_64 => 1,
            Arch::X86 => 2,
            Arch::X32 => 3,
            Arch::Aarch64 => 4,
            Arch::Arm => 5,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.oci_name())
    }
}

/// The architecture this crate was built for. The filter always covers it,
/// whatever `architectures` says (libseccomp, and so runc, keep the native
/// architecture in every filter).
pub const fn native_arch() -> Arch {
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    {
        Arch::X86_64
    }
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "32"))]
    {
        Arch::X32
    }
    #[cfg(target_arch = "x86")]
    {
        Arch::X86
    }
    #[cfg(target_arch = "aarch64")]
    {
        Arch::Aarch64
    }
    #[cfg(target_arch = "arm")]
    {
        Arch::Arm
    }
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm"
)))]
compile_error!("berth-seccomp has syscall tables for x86_64, x86, x32, aarch64 and arm only");
