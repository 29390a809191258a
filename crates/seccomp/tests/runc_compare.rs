//! Compare with runc: run a busybox container under runc with the docker and
//! podman profiles, read back the filter runc really installed
//! (tools/runc_filter.py, ptrace PTRACE_SECCOMP_GET_FILTER), and run it and
//! ours over every syscall of the x86_64, i386 and x32 tables with several
//! argument vectors.
//!
//! Ignored by default: needs root, runc, /bin/busybox, python3. Run with
//! `cargo test -p berth-seccomp --test runc_compare -- --ignored --nocapture`.
//!
//! Expected differences, each checked to be of one of these kinds:
//! * runc's "patchbpf" prologue returns ENOSYS for numbers above the highest
//!   syscall libseccomp knows (so new syscalls look unimplemented rather than
//!   forbidden). We do the same above the highest syscall of *our* tables, so
//!   syscalls between the two (known to the 6.1 headers, not to libseccomp
//!   2.5.4) get ENOSYS from runc and the default action from us.
//! * names the profile lists that runc's libseccomp (2.5.4) does not know are
//!   skipped by runc (-> default action); we know them from the 6.1 headers
//!   and apply the profile's rule, as the profile says.

mod common;

use std::process::Command;

use berth_seccomp::{Arch, RET_ERRNO, SockFilter, compile_for, syscall_table};
use common::*;

#[cfg(target_arch = "x86_64")]
#[test]
#[ignore = "needs root, runc, busybox, python3; run with --ignored"]
fn docker_and_podman_profiles_match_runc() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["docker-default-seccomp.json", "podman-default-seccomp.json"] {
        let src = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        let out = dir.path().join("runc.bpf");
        let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/runc_filter.py");
        assert!(
            Command::new("python3")
                .arg(tool)
                .arg(&src)
                .arg(&out)
                .status()
                .unwrap()
                .success()
        );
        let runc: Vec<SockFilter> = std::fs::read(&out)
            .unwrap()
            .chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let p = load_profile(name);
        let ours = compile_for(&p, Arch::X86_64).unwrap();
        let default = ret_of(p.default_action(), p.default_errno_ret());
        let argsets: [[u64; 6]; 5] = [
            [0; 6],
            [16, 0, 9, 0, 0, 0],
            [0xffff_ffff, 0, 0, 0, 0, 0],
            [0x7E02_0000, 0, 0, 0, 0, 0],
            [8, 1, 5, 0, 0, 0],
        ];
        let (mut total, mut enosys, mut unknown) = (0, Vec::new(), Vec::new());
        for (arch, audit) in [
            (Arch::X86_64, AUDIT_X86_64),
            (Arch::X86, AUDIT_I386),
            (Arch::X32, AUDIT_X86_64),
        ] {
            for &(sys, nr) in syscall_table(arch) {
                for args in argsets {
                    total += 1;
                    let a = run(ours.instructions(), &data(nr, audit, args)).0;
                    let b = run(&runc, &data(nr, audit, args)).0;
                    if a == b {
                        continue;
                    }
                    assert_eq!(
                        a,
                        reference(&p, Arch::X86_64, audit, nr, args),
                        "{name} {arch} {sys}"
                    );
                    if b == RET_ERRNO | 38 && a == default {
                        enosys.push(format!("{arch}:{sys}"));
                    } else if b == default {
                        unknown.push(format!("{arch}:{sys}"));
                    } else {
                        panic!("{name} {arch} {sys} {args:x?}: ours {a:#x} runc {b:#x}");
                    }
                }
            }
        }
        enosys.dedup();
        unknown.dedup();
        println!(
            "{name}: runc filter {} instructions, ours {}; {total} cases, {} identical; \
             runc ENOSYS (patchbpf, beyond libseccomp's table): {enosys:?}; \
             listed but unknown to runc's libseccomp (runc: default action, ours: the rule): {unknown:?}",
            runc.len(),
            ours.instructions().len(),
            total - enosys.len() * argsets.len() - unknown.len() * argsets.len(),
        );
    }
}
