//! Syscall name -> number tables, generated from the kernel UAPI headers by
//! `tools/gen-syscalls.py` (see the header of `generated.rs` for the exact sources).

mod generated;

use crate::arch::Arch;

fn table(arch: Arch) -> &'static [(&'static str, u32)] {
    match arch {
        Arch::X86_64 => generated::X86_64,
        Arch::X86 => generated::X86,
        Arch::X32 => generated::X32,
        Arch::Aarch64 => generated::AARCH64,
        Arch::Arm => generated::ARM,
    }
}

/// The syscall number of `name` on `arch`, as the kernel sees it in
/// `seccomp_data.nr` (x32 numbers include `__X32_SYSCALL_BIT`).
pub fn lookup(arch: Arch, name: &str) -> Option<u32> {
    let t = table(arch);
    t.binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| t[i].1)
}

/// Whether any supported architecture knows `name` (used to tell "unknown
/// syscall" from "not on the architectures of this filter" in the debug log).
pub fn known_anywhere(name: &str) -> bool {
    Arch::ALL.iter().any(|&a| lookup(a, name).is_some())
}

/// All (name, number) pairs of `arch`, sorted by name.
pub fn all(arch: Arch) -> &'static [(&'static str, u32)] {
    table(arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for &a in Arch::ALL {
            let t = table(a);
            assert!(t.len() > 300, "{a:?}");
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{a:?} not sorted");
        }
    }

    #[test]
    fn well_known_numbers() {
        // Spot checks against numbers everyone knows; they catch a wrong header.
        assert_eq!(lookup(Arch::X86_64, "read"), Some(0));
        assert_eq!(lookup(Arch::X86_64, "getpid"), Some(39));
        assert_eq!(lookup(Arch::X86, "getpid"), Some(20));
        assert_eq!(lookup(Arch::X32, "getpid"), Some(0x4000_0000 | 39));
        assert_eq!(lookup(Arch::Aarch64, "getpid"), Some(172));
        assert_eq!(lookup(Arch::Arm, "getpid"), Some(20));
        assert_eq!(lookup(Arch::Arm, "cacheflush"), Some(0x0f_0002));
        assert_eq!(lookup(Arch::X86_64, "chown32"), None);
        assert_eq!(lookup(Arch::Aarch64, "open"), None);
        assert!(known_anywhere("chown32"));
        assert!(!known_anywhere("no_such_syscall"));
    }
}
