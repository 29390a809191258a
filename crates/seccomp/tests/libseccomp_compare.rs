//! Differential test against libseccomp 2.5 driven the way runc drives it
//! (tools/libseccomp_export.py, through ctypes: no C in this crate).
//!
//! Ignored by default because it needs python3 and libseccomp.so.2 on the
//! machine (Debian: python3, libseccomp2). Run with
//! `cargo test -p berth-seccomp --test libseccomp_compare -- --ignored --nocapture`.
//!
//! Both programs run in the same cBPF interpreter over every syscall of the
//! x86_64, i386 and x32 tables (plus raw numbers, other architectures and
//! nr -1) with many argument vectors, and must return the same action.
//! Random profiles avoid the two places where we deliberately differ:
//! overlapping conditional rules with different actions (libseccomp's answer
//! depends on its tree layout) and i386 socketcall/ipc multiplexing.

mod common;

use std::path::Path;
use std::process::Command;

use berth_seccomp::{Arch, SockFilter, X32_SYSCALL_BIT, compile_for, syscall_table};
use common::*;

fn libseccomp_program(json: &str, dir: &Path) -> Vec<SockFilter> {
    let src = dir.join("p.json");
    let out = dir.join("p.bpf");
    std::fs::write(&src, json).unwrap();
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/libseccomp_export.py");
    let st = Command::new("python3")
        .arg(tool)
        .arg(&src)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "libseccomp export failed for {json}");
    std::fs::read(&out)
        .unwrap()
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// A small deterministic PRNG (xorshift*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, s: &'a [T]) -> &'a T {
        &s[self.below(s.len())]
    }
}

const VALUES: &[u64] = &[
    0,
    1,
    2,
    5,
    16,
    0xff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0005,
    0xffff_ffff_0000_0000,
    u64::MAX,
];

/// Run ours and libseccomp's program over many calls. Returns (cases,
/// disagreements); a disagreement where we differ from the reference
/// evaluator fails at once (that is our bug), the others are libseccomp's
/// and are returned for the caller to judge.
fn compare(json: &str, dir: &Path, rng: &mut Rng, arg_vectors: usize) -> (usize, Vec<String>) {
    let p = profile(json);
    let ours = compile_for(&p, Arch::X86_64).unwrap();
    let theirs = libseccomp_program(json, dir);
    let mut argsets: Vec<[u64; 6]> =
        vec![[0; 6], [16, 0, 9, 0, 0, 0], [0xffff_ffff, 8, 0, 0, 0, 0]];
    for _ in 0..arg_vectors {
        argsets.push(std::array::from_fn(|_| *rng.pick(VALUES)));
    }
    let mut calls: Vec<(u32, u32)> = Vec::new();
    for (arch, audit) in [
        (Arch::X86_64, AUDIT_X86_64),
        (Arch::X86, AUDIT_I386),
        (Arch::X32, AUDIT_X86_64),
    ] {
        calls.extend(syscall_table(arch).iter().map(|&(_, n)| (audit, n)));
    }
    calls.extend([
        (AUDIT_X86_64, u32::MAX),
        (AUDIT_X86_64, 5000),
        (AUDIT_X86_64, X32_SYSCALL_BIT | 5000),
    ]);
    calls.extend([
        (AUDIT_AARCH64, 172),
        (AUDIT_ARM, 20),
        (AUDIT_I386, u32::MAX),
    ]);
    // Numbers beyond our tables get ENOSYS from us (runc's patchbpf stub,
    // which runc adds in front of libseccomp's program), not from libseccomp.
    let max = |a: Arch| syscall_table(a).iter().map(|e| e.1).max().unwrap();
    let beyond = |audit: u32, nr: u32| {
        let arch = match audit {
            AUDIT_I386 => Arch::X86,
            AUDIT_X86_64 if nr >= X32_SYSCALL_BIT => Arch::X32,
            AUDIT_X86_64 => Arch::X86_64,
            _ => return false,
        };
        nr != u32::MAX && nr > max(arch)
    };
    let (mut n, mut diffs) = (0, Vec::new());
    for &(audit, nr) in &calls {
        for args in &argsets {
            let a = run(ours.instructions(), &data(nr, audit, *args)).0;
            let b = run(&theirs, &data(nr, audit, *args)).0;
            n += 1;
            if a != b && beyond(audit, nr) && a == berth_seccomp::RET_ERRNO | 38 {
                continue;
            }
            if a != b {
                let want = reference(&p, Arch::X86_64, audit, nr, *args);
                assert_eq!(
                    a, want,
                    "we differ from the reference: audit {audit:#x} nr {nr:#x} args {args:x?}\n{json}"
                );
                diffs.push(format!("audit {audit:#x} nr {nr:#x} args {args:x?}: ours/reference {a:#x}, libseccomp {b:#x}"));
            }
        }
    }
    (n, diffs)
}

#[test]
#[ignore = "needs python3 + libseccomp.so.2; run with --ignored"]
fn real_profiles_match_libseccomp() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for name in ["docker-default-seccomp.json", "podman-default-seccomp.json"] {
        let json =
            std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        let (n, diffs) = compare(&json, dir.path(), &mut rng, 40);
        assert!(diffs.is_empty(), "{name}: {diffs:#?}");
        println!("{name}: {n} (arch, nr, args) cases agree with libseccomp");
    }
}

#[test]
#[ignore = "needs python3 + libseccomp.so.2; run with --ignored"]
fn random_profiles_match_libseccomp() {
    const NAMES: &[&str] = &[
        "read",
        "write",
        "getpid",
        "getppid",
        "chown32",
        "open",
        "clone",
        "personality",
        "mmap",
        "_llseek",
        "renameat",
        "kcmp",
        "no_such_call",
        "getuid32",
        "umount2",
        "ioctl",
    ];
    const ACTIONS: &[&str] = &[
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ];
    const OPS: &[&str] = &[
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    const ARCHES: &[&str] = &["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"];
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0xfeed_beef_cafe_f00d);
    let (mut total, mut bad_profiles, mut bad_cases) = (0, 0, 0);
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    for _ in 0..rounds {
        let default = *rng.pick(&ACTIONS[..7]);
        let mut arches: Vec<&str> = ARCHES
            .iter()
            .copied()
            .filter(|_| rng.below(2) == 0)
            .collect();
        arches.dedup();
        let mut entries = Vec::new();
        let mut names: Vec<&str> = NAMES.to_vec();
        for _ in 0..rng.below(6) + 1 {
            if names.is_empty() {
                break;
            }
            let name = names.remove(rng.below(names.len()));
            let act = *rng.pick(ACTIONS);
            let errno = if rng.below(2) == 0 {
                format!(r#","errnoRet":{}"#, rng.below(100))
            } else {
                String::new()
            };
            if rng.below(3) == 0 {
                entries.push(format!(r#"{{"names":["{name}"],"action":"{act}"{errno}}}"#));
                continue;
            }
            // One conditional entry with any ops, or up to three with EQ only
            // (like docker's personality rules): libseccomp 2.5.4 merges
            // several range comparisons on one argument wrongly, see
            // `libseccomp_merge_bug` below.
            let several = rng.below(2) == 0;
            for _ in 0..if several { rng.below(3) + 1 } else { 1 } {
                let mut idx: Vec<usize> = (0..6).collect();
                let args: Vec<String> = (0..rng.below(3) + 1)
                    .map(|_| {
                        let i = idx.remove(rng.below(idx.len()));
                        let op = if several {
                            "SCMP_CMP_EQ"
                        } else {
                            *rng.pick(OPS)
                        };
                        let (v, v2) = (*rng.pick(VALUES), *rng.pick(VALUES));
                        format!(r#"{{"index":{i},"value":{v},"valueTwo":{v2},"op":"{op}"}}"#)
                    })
                    .collect();
                entries.push(format!(
                    r#"{{"names":["{name}"],"action":"{act}"{errno},"args":[{}]}}"#,
                    args.join(",")
                ));
            }
        }
        let json = format!(
            r#"{{"defaultAction":"{default}","architectures":[{}],"syscalls":[{}]}}"#,
            arches
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(","),
            entries.join(",")
        );
        let (n, diffs) = compare(&json, dir.path(), &mut rng, 6);
        total += n;
        if !diffs.is_empty() {
            if bad_profiles < 3 {
                println!(
                    "libseccomp disagrees with the profile ({} cases), e.g. {}\n  {json}",
                    diffs.len(),
                    diffs[0]
                );
            }
            bad_profiles += 1;
            bad_cases += diffs.len();
        }
    }
    println!(
        "{rounds} random profiles, {total} cases: {} agree; {bad_cases} cases in {bad_profiles} profiles where \
         libseccomp's program contradicts the profile (ours matches the reference evaluator there)",
        total - bad_cases
    );
    // libseccomp's bugs are the exception; a flood would mean we misread it.
    assert!(
        bad_profiles * 10 <= rounds,
        "{bad_profiles} of {rounds} profiles disagree"
    );
}

/// A libseccomp 2.5.4 bug found by this comparison: two conditional rules
/// that both compare argument 0 with GE are merged so that one rule's other
/// conditions are lost. With all arguments 0 neither rule holds
/// (R1 needs a0 >= 0xffffffff, R2 needs a3 > 2), so the call must get the
/// default action; libseccomp's program returns ERRNO. We (and the
/// reference evaluator) return the default.
#[test]
#[ignore = "needs python3 + libseccomp.so.2; run with --ignored"]
fn libseccomp_merge_bug() {
    let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
      {"names":["open"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":4294967296,"op":"SCMP_CMP_LT"},{"index":0,"value":4294967295,"op":"SCMP_CMP_GE"}]},
      {"names":["open"],"action":"SCMP_ACT_ERRNO","args":[{"index":3,"value":2,"op":"SCMP_CMP_GT"},{"index":1,"value":5,"op":"SCMP_CMP_NE"},{"index":0,"value":0,"op":"SCMP_CMP_GE"}]}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let p = profile(json);
    let open = nr(Arch::X86_64, "open");
    let d = data(open, AUDIT_X86_64, [0; 6]);
    let ours = run(compile_for(&p, Arch::X86_64).unwrap().instructions(), &d).0;
    let theirs = run(&libseccomp_program(json, dir.path()), &d).0;
    assert_eq!(ours, berth_seccomp::RET_ALLOW);
    assert_eq!(
        ours,
        reference(&p, Arch::X86_64, AUDIT_X86_64, open, [0; 6])
    );
    println!(
        "libseccomp returns {theirs:#x} for open(0, 0, 0, 0, 0, 0); the profile says {ours:#x}"
    );
    assert_eq!(
        theirs,
        berth_seccomp::RET_ERRNO | 1,
        "libseccomp fixed? then fold this case into the random test"
    );
}

/// A second libseccomp 2.5.4 bug found by this comparison: with x86, x32 and
/// x86_64 in the filter and rules of this shape, the x86_64 section of the
/// generated program compares the syscall number without loading it (the
/// accumulator still holds `seccomp_data.arch`), so every x86_64 syscall
/// falls to the default action; here kcmp(0xffffffff, ...) should TRAP.
#[test]
#[ignore = "needs python3 + libseccomp.so.2; run with --ignored"]
fn libseccomp_missing_nr_load_bug() {
    let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_X86_64"],"syscalls":[
      {"names":["kcmp"],"action":"SCMP_ACT_TRAP","args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]},
      {"names":["kcmp"],"action":"SCMP_ACT_TRAP","args":[{"index":1,"value":18446744073709551615,"op":"SCMP_CMP_EQ"},{"index":4,"value":1,"op":"SCMP_CMP_EQ"}]},
      {"names":["getuid32"],"action":"SCMP_ACT_ALLOW","args":[{"index":5,"value":1,"op":"SCMP_CMP_LE"},{"index":4,"value":18446744073709551615,"op":"SCMP_CMP_NE"}]}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let p = profile(json);
    let kcmp = nr(Arch::X86_64, "kcmp");
    let d = data(kcmp, AUDIT_X86_64, [0xffff_ffff, 8, 0, 0, 0, 0]);
    let ours = run(compile_for(&p, Arch::X86_64).unwrap().instructions(), &d).0;
    let theirs = run(&libseccomp_program(json, dir.path()), &d).0;
    assert_eq!(ours, berth_seccomp::RET_TRAP);
    println!(
        "libseccomp returns {theirs:#x} for kcmp(0xffffffff, 8, ...); the profile says {ours:#x}"
    );
    assert_eq!(theirs, berth_seccomp::RET_ERRNO | 1, "libseccomp fixed?");
}
