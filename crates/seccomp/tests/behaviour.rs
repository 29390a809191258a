//! The compiled programs, run in a cBPF interpreter against synthetic
//! seccomp_data, compared with the expected action case by case and with a
//! reference evaluator of the profile (proptest).

mod common;

use berth_seccomp::{
    Arch, CompileError, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG,
    RET_TRACE, RET_TRAP, RET_USER_NOTIF, X32_SYSCALL_BIT, compile_for, verify,
};
use common::*;
use proptest::prelude::*;

const X64: Arch = Arch::X86_64;

fn eval(json: &str, native: Arch, audit: u32, nr: u32, args: [u64; 6]) -> u32 {
    let p = profile(json);
    let prog = compile_for(&p, native).unwrap();
    verify(prog.instructions()).unwrap();
    let got = run(prog.instructions(), &data(nr, audit, args)).0;
    // Every hand-written case is also a check of the reference evaluator.
    assert_eq!(
        got,
        reference(&p, native, audit, nr, args),
        "reference disagrees: {json}"
    );
    got
}

fn one_arg(op: &str, value: u64, value_two: Option<u64>) -> String {
    let two = value_two
        .map(|v| format!(r#","valueTwo":{v}"#))
        .unwrap_or_default();
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[{{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":9,
        "args":[{{"index":3,"value":{value}{two},"op":"{op}"}}]}}]}}"#
    )
}

fn a3(v: u64) -> [u64; 6] {
    [0, 0, 0, v, 0, 0]
}

#[test]
fn each_op_on_64bit_halves() {
    let e9 = RET_ERRNO | 9;
    let getpid = nr(X64, "getpid");
    let v = 0x1_0000_0005u64;
    // (op, arg, matches?)
    let cases: &[(&str, u64, bool)] = &[
        ("SCMP_CMP_EQ", v, true),
        ("SCMP_CMP_EQ", 5, false), // same low word, other high word
        ("SCMP_CMP_EQ", 0x2_0000_0005, false),
        ("SCMP_CMP_NE", v, false),
        ("SCMP_CMP_NE", 5, true),
        ("SCMP_CMP_NE", 0x1_0000_0006, true),
        ("SCMP_CMP_GT", 0x1_0000_0006, true),
        ("SCMP_CMP_GT", v, false),
        ("SCMP_CMP_GT", 0x2_0000_0000, true), // high word decides
        ("SCMP_CMP_GT", 0xffff_ffff, false),  // low word bigger, high smaller
        ("SCMP_CMP_GE", v, true),
        ("SCMP_CMP_GE", 0x1_0000_0004, false),
        ("SCMP_CMP_GE", u64::MAX, true),
        ("SCMP_CMP_LT", 0x1_0000_0004, true),
        ("SCMP_CMP_LT", v, false),
        ("SCMP_CMP_LT", 0xffff_ffff, true),
        ("SCMP_CMP_LT", 0x2_0000_0000, false),
        ("SCMP_CMP_LE", v, true),
        ("SCMP_CMP_LE", 0x1_0000_0006, false),
        ("SCMP_CMP_LE", 0, true),
    ];
    for &(op, arg, hit) in cases {
        let got = eval(&one_arg(op, v, None), X64, AUDIT_X86_64, getpid, a3(arg));
        assert_eq!(
            got,
            if hit { e9 } else { RET_ALLOW },
            "{op} {v:#x} vs {arg:#x}"
        );
    }
    // Values with a zero high word take the short path in the compiler.
    for &(op, arg, hit) in &[
        ("SCMP_CMP_GT", 6u64, true),
        ("SCMP_CMP_GT", 5, false),
        ("SCMP_CMP_GT", 0x1_0000_0000, true),
        ("SCMP_CMP_GE", 5, true),
        ("SCMP_CMP_GE", 4, false),
        ("SCMP_CMP_LT", 4, true),
        ("SCMP_CMP_LT", 0x1_0000_0000, false),
        ("SCMP_CMP_LE", 5, true),
        ("SCMP_CMP_LE", 0x1_0000_0001, false),
    ] {
        let got = eval(&one_arg(op, 5, None), X64, AUDIT_X86_64, getpid, a3(arg));
        assert_eq!(got, if hit { e9 } else { RET_ALLOW }, "{op} 5 vs {arg:#x}");
    }
}

#[test]
fn masked_eq_masks_both_sides() {
    let getpid = nr(X64, "getpid");
    // mask 0xff00_0000_00ff, valueTwo has bits outside the mask (libseccomp masks it too).
    let j = one_arg("SCMP_CMP_MASKED_EQ", 0xff00_0000_00ff, Some(0x12_0000_0034));
    assert_eq!(
        eval(&j, X64, AUDIT_X86_64, getpid, a3(0x12_0000_0034)),
        RET_ERRNO | 9
    );
    assert_eq!(eval(&j, X64, AUDIT_X86_64, getpid, a3(0x34)), RET_ERRNO | 9);
    assert_eq!(
        eval(&j, X64, AUDIT_X86_64, getpid, a3(0xff12_0000_0034)),
        RET_ALLOW
    );
    assert_eq!(eval(&j, X64, AUDIT_X86_64, getpid, a3(0x35)), RET_ALLOW);
    // docker's clone rule: no namespace flag set
    let j = one_arg("SCMP_CMP_MASKED_EQ", 2114060288, None);
    assert_eq!(eval(&j, X64, AUDIT_X86_64, getpid, a3(0x11)), RET_ERRNO | 9);
    assert_eq!(
        eval(&j, X64, AUDIT_X86_64, getpid, a3(0x2000_0000)),
        RET_ALLOW
    );
    // mask 0: always true
    let j = one_arg("SCMP_CMP_MASKED_EQ", 0, Some(7));
    assert_eq!(
        eval(&j, X64, AUDIT_X86_64, getpid, a3(12345)),
        RET_ERRNO | 9
    );
}

#[test]
fn thirty_two_bit_arches_compare_the_low_word() {
    let getpid32 = nr(Arch::X86, "getpid");
    let getpid_x32 = nr(Arch::X32, "getpid");
    let j = one_arg("SCMP_CMP_EQ", 0x1_0000_0005, None);
    // value truncated to 5; high bits of the argument ignored
    assert_eq!(eval(&j, X64, AUDIT_I386, getpid32, a3(5)), RET_ERRNO | 9);
    assert_eq!(
        eval(&j, X64, AUDIT_I386, getpid32, a3(0x7_0000_0005)),
        RET_ERRNO | 9
    );
    assert_eq!(eval(&j, X64, AUDIT_I386, getpid32, a3(6)), RET_ALLOW);
    assert_eq!(
        eval(&j, X64, AUDIT_X86_64, getpid_x32, a3(5)),
        RET_ERRNO | 9
    );
    // but x86_64 compares all 64 bits
    assert_eq!(
        eval(&j, X64, AUDIT_X86_64, nr(X64, "getpid"), a3(5)),
        RET_ALLOW
    );
    let j = one_arg("SCMP_CMP_GT", 5, None);
    assert_eq!(
        eval(&j, X64, AUDIT_I386, getpid32, a3(0x1_0000_0001)),
        RET_ALLOW
    );
    assert_eq!(
        eval(&j, X64, AUDIT_I386, getpid32, a3(0x1_0000_0006)),
        RET_ERRNO | 9
    );
}

#[test]
fn arch_check_and_x32_bit() {
    let only64 = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let g = nr(X64, "getpid");
    assert_eq!(eval(only64, X64, AUDIT_X86_64, g, [0; 6]), RET_ERRNO | 1);
    assert_eq!(eval(only64, X64, AUDIT_X86_64, 1, [0; 6]), RET_ALLOW);
    // an architecture not in the filter: KILL_THREAD, libseccomp's bad-arch default
    assert_eq!(eval(only64, X64, AUDIT_I386, 20, [0; 6]), RET_KILL_THREAD);
    assert_eq!(
        eval(only64, X64, AUDIT_AARCH64, 172, [0; 6]),
        RET_KILL_THREAD
    );
    assert_eq!(eval(only64, X64, 0x1234, 0, [0; 6]), RET_KILL_THREAD);
    // x32 call without x32 in the filter: bad arch; nr -1 (tracer skip): default
    assert_eq!(
        eval(only64, X64, AUDIT_X86_64, g | X32_SYSCALL_BIT, [0; 6]),
        RET_KILL_THREAD
    );
    assert_eq!(
        eval(only64, X64, AUDIT_X86_64, X32_SYSCALL_BIT, [0; 6]),
        RET_KILL_THREAD
    );
    assert_eq!(eval(only64, X64, AUDIT_X86_64, u32::MAX, [0; 6]), RET_ALLOW);

    let all = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[{"names":["getpid","chown32"],"action":"SCMP_ACT_ALLOW"}]}"#;
    assert_eq!(eval(all, X64, AUDIT_X86_64, g, [0; 6]), RET_ALLOW);
    assert_eq!(
        eval(all, X64, AUDIT_X86_64, g | X32_SYSCALL_BIT, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        eval(all, X64, AUDIT_X86_64, X32_SYSCALL_BIT, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(
        eval(all, X64, AUDIT_X86_64, u32::MAX, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(eval(all, X64, AUDIT_I386, 20, [0; 6]), RET_ALLOW); // getpid on i386
    assert_eq!(
        eval(all, X64, AUDIT_I386, nr(Arch::X86, "chown32"), [0; 6]),
        RET_ALLOW
    );
    // chown32's i386 number means something else on x86_64: not allowed there
    assert_eq!(
        eval(all, X64, AUDIT_X86_64, nr(Arch::X86, "chown32"), [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(eval(all, X64, AUDIT_ARM, 20, [0; 6]), RET_KILL_THREAD);

    // aarch64 native with arm compat
    let arm = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_ARM"],
        "syscalls":[{"names":["getpid","cacheflush"],"action":"SCMP_ACT_ALLOW"}]}"#;
    assert_eq!(
        eval(arm, Arch::Aarch64, AUDIT_AARCH64, 172, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        eval(arm, Arch::Aarch64, AUDIT_AARCH64, 20, [0; 6]),
        RET_ERRNO | 1
    );
    assert_eq!(eval(arm, Arch::Aarch64, AUDIT_ARM, 20, [0; 6]), RET_ALLOW);
    assert_eq!(
        eval(arm, Arch::Aarch64, AUDIT_ARM, 0xf0002, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        eval(arm, Arch::Aarch64, AUDIT_X86_64, 39, [0; 6]),
        RET_KILL_THREAD
    );
    // the native arch is always in the filter, even if not listed
    let x86only = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],
        "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_TRAP"}]}"#;
    assert_eq!(eval(x86only, X64, AUDIT_X86_64, g, [0; 6]), RET_TRAP);
    assert_eq!(eval(x86only, X64, AUDIT_I386, 20, [0; 6]), RET_TRAP);
    // x32 only (plus native): x86_64 calls are still x86_64 calls
    let x32 = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X32","SCMP_ARCH_MIPS"],
        "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_LOG"}]}"#;
    assert_eq!(eval(x32, X64, AUDIT_X86_64, g, [0; 6]), RET_LOG);
    assert_eq!(
        eval(x32, X64, AUDIT_X86_64, g | X32_SYSCALL_BIT, [0; 6]),
        RET_LOG
    );
}

#[test]
fn every_action_and_errno_value() {
    let g = nr(X64, "getpid");
    for (act, errno, want) in [
        ("SCMP_ACT_KILL", "", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", "", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", "", RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", "", RET_TRAP),
        ("SCMP_ACT_ERRNO", "", RET_ERRNO | 1),
        ("SCMP_ACT_ERRNO", r#","errnoRet":38"#, RET_ERRNO | 38),
        ("SCMP_ACT_ERRNO", r#","errnoRet":0"#, RET_ERRNO),
        ("SCMP_ACT_ERRNO", r#","errnoRet":65535"#, RET_ERRNO | 0xffff),
        ("SCMP_ACT_TRACE", "", RET_TRACE | 1),
        ("SCMP_ACT_TRACE", r#","errnoRet":1234"#, RET_TRACE | 1234),
        ("SCMP_ACT_LOG", "", RET_LOG),
        ("SCMP_ACT_NOTIFY", "", RET_USER_NOTIF),
    ] {
        let j = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["getpid"],"action":"{act}"{errno}}}]}}"#
        );
        assert_eq!(eval(&j, X64, AUDIT_X86_64, g, [0; 6]), want, "{act}{errno}");
        assert_eq!(eval(&j, X64, AUDIT_X86_64, g + 1, [0; 6]), RET_ALLOW);
    }
    for (def, errno, want) in [
        ("SCMP_ACT_ERRNO", "", RET_ERRNO | 1),
        ("SCMP_ACT_ERRNO", r#","defaultErrnoRet":38"#, RET_ERRNO | 38),
        ("SCMP_ACT_KILL_PROCESS", "", RET_KILL_PROCESS),
        ("SCMP_ACT_LOG", "", RET_LOG),
        ("SCMP_ACT_TRACE", r#","defaultErrnoRet":7"#, RET_TRACE | 7),
    ] {
        let j = format!(
            r#"{{"defaultAction":"{def}"{errno},"syscalls":[{{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}}]}}"#
        );
        assert_eq!(eval(&j, X64, AUDIT_X86_64, g, [0; 6]), RET_ALLOW);
        assert_eq!(eval(&j, X64, AUDIT_X86_64, 0, [0; 6]), want, "{def}{errno}");
    }
}

#[test]
fn precedence_between_entries() {
    let g = nr(X64, "getpid");
    let two =
        |a: &str, b: &str| format!(r#"{{"defaultAction":"SCMP_ACT_KILL","syscalls":[{a},{b}]}}"#);
    let allow = r#"{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}"#;
    let errno = r#"{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}"#;
    let errno_a0 = r#"{"names":["getpid"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}"#;
    let allow_a2 = r#"{"names":["getpid"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":5,"op":"SCMP_CMP_EQ"}]}"#;
    let trap_a2 = r#"{"names":["getpid"],"action":"SCMP_ACT_TRAP","args":[{"index":2,"value":5,"op":"SCMP_CMP_EQ"}]}"#;
    // unconditional: the first one wins (libseccomp)
    assert_eq!(
        eval(&two(allow, errno), X64, AUDIT_X86_64, g, [0; 6]),
        RET_ALLOW
    );
    assert_eq!(
        eval(&two(errno, allow), X64, AUDIT_X86_64, g, [0; 6]),
        RET_ERRNO | 1
    );
    // unconditional beats conditional, in either order (libseccomp)
    assert_eq!(
        eval(
            &two(allow, errno_a0),
            X64,
            AUDIT_X86_64,
            g,
            [1, 0, 0, 0, 0, 0]
        ),
        RET_ALLOW
    );
    assert_eq!(
        eval(
            &two(errno_a0, allow),
            X64,
            AUDIT_X86_64,
            g,
            [1, 0, 0, 0, 0, 0]
        ),
        RET_ALLOW
    );
    // overlapping conditional: the stronger action, in either order
    for j in [two(errno_a0, allow_a2), two(allow_a2, errno_a0)] {
        assert_eq!(
            eval(&j, X64, AUDIT_X86_64, g, [1, 0, 5, 0, 0, 0]),
            RET_ERRNO | 1
        );
        assert_eq!(
            eval(&j, X64, AUDIT_X86_64, g, [0, 0, 5, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            eval(&j, X64, AUDIT_X86_64, g, [1, 0, 0, 0, 0, 0]),
            RET_ERRNO | 1
        );
        assert_eq!(eval(&j, X64, AUDIT_X86_64, g, [0; 6]), RET_KILL_THREAD);
    }
    for j in [two(errno_a0, trap_a2), two(trap_a2, errno_a0)] {
        assert_eq!(eval(&j, X64, AUDIT_X86_64, g, [1, 0, 5, 0, 0, 0]), RET_TRAP);
    }
    // an entry equal to the default action is skipped (runc), so it does not
    // shadow a later conditional rule
    let j = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["getpid"],"action":"SCMP_ACT_ERRNO"},
        {"names":["getpid"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]}]}"#;
    assert_eq!(eval(j, X64, AUDIT_X86_64, g, [3, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        eval(j, X64, AUDIT_X86_64, g, [4, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
}

#[test]
fn args_and_within_entry_or_on_repeated_index() {
    let g = nr(X64, "getpid");
    let and = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO",
        "args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"},{"index":2,"value":9,"op":"SCMP_CMP_EQ"}]}]}"#;
    assert_eq!(
        eval(and, X64, AUDIT_X86_64, g, [16, 0, 9, 0, 0, 0]),
        RET_ERRNO | 1
    );
    assert_eq!(
        eval(and, X64, AUDIT_X86_64, g, [16, 0, 8, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        eval(and, X64, AUDIT_X86_64, g, [15, 0, 9, 0, 0, 0]),
        RET_ALLOW
    );
    // same index twice: runc turns it into separate rules (OR)
    let or = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO",
        "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}"#;
    assert_eq!(
        eval(or, X64, AUDIT_X86_64, g, [1, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
    assert_eq!(
        eval(or, X64, AUDIT_X86_64, g, [2, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
    assert_eq!(
        eval(or, X64, AUDIT_X86_64, g, [3, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    // six args all checked
    let six = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO",
        "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"},{"index":2,"value":3,"op":"SCMP_CMP_EQ"},
        {"index":3,"value":4,"op":"SCMP_CMP_EQ"},{"index":4,"value":5,"op":"SCMP_CMP_EQ"},{"index":5,"value":6,"op":"SCMP_CMP_EQ"}]}]}"#;
    assert_eq!(
        eval(six, X64, AUDIT_X86_64, g, [1, 2, 3, 4, 5, 6]),
        RET_ERRNO | 1
    );
    for i in 0..6 {
        let mut a = [1, 2, 3, 4, 5, 6];
        a[i] += 1 << 32;
        assert_eq!(eval(six, X64, AUDIT_X86_64, g, a), RET_ALLOW, "arg {i}");
    }
}

#[test]
fn unknown_and_foreign_names_are_skipped() {
    let j = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["no_such_call","chown32","getpid"],"action":"SCMP_ACT_ALLOW"}]}"#;
    assert_eq!(
        eval(j, X64, AUDIT_X86_64, nr(X64, "getpid"), [0; 6]),
        RET_ALLOW
    );
    let only_unknown = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["no_such_call"],"action":"SCMP_ACT_ALLOW"}]}"#;
    let p = compile_for(&profile(only_unknown), X64).unwrap();
    // nothing but the arch check, the x32 split, the ENOSYS range and the rets
    assert!(p.instructions().len() <= 11, "{}", p.instructions().len());
}

#[test]
fn numbers_beyond_the_table_get_enosys_like_runc() {
    let max = |a: Arch| {
        berth_seccomp::syscall_table(a)
            .iter()
            .map(|e| e.1)
            .max()
            .unwrap()
    };
    let deny = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#;
    let m64 = max(X64);
    assert_eq!(eval(deny, X64, AUDIT_X86_64, m64, [0; 6]), RET_ERRNO | 1);
    assert_eq!(
        eval(deny, X64, AUDIT_X86_64, m64 + 1, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(
        eval(deny, X64, AUDIT_X86_64, X32_SYSCALL_BIT - 1, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(
        eval(deny, X64, AUDIT_X86_64, max(Arch::X32) + 1, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(
        eval(deny, X64, AUDIT_X86_64, u32::MAX, [0; 6]),
        RET_ERRNO | 1
    );
    assert_eq!(
        eval(deny, X64, AUDIT_I386, max(Arch::X86) + 1, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(eval(deny, X64, AUDIT_I386, u32::MAX, [0; 6]), RET_ERRNO | 1);
    let kill = r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS"}"#;
    assert_eq!(
        eval(kill, X64, AUDIT_X86_64, m64 + 1, [0; 6]),
        RET_ERRNO | 38
    );
    assert_eq!(eval(kill, X64, AUDIT_X86_64, m64, [0; 6]), RET_KILL_PROCESS);
    // defaults that let calls through need no ENOSYS
    for def in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"] {
        let j = format!(r#"{{"defaultAction":"{def}"}}"#);
        assert_ne!(eval(&j, X64, AUDIT_X86_64, m64 + 1, [0; 6]), RET_ERRNO | 38);
    }
}

#[test]
fn compile_errors_name_the_entry() {
    let err = |j: &str| compile_for(&profile(j), X64).unwrap_err().to_string();
    let seven: String = (0..7)
        .map(|i| format!(r#"{{"index":{},"value":1,"op":"SCMP_CMP_EQ"}}"#, i % 6))
        .collect::<Vec<_>>()
        .join(",");
    let j = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["a"],"action":"SCMP_ACT_LOG"}},{{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{seven}]}}]}}"#
    );
    assert_eq!(err(&j), "syscalls[1].args[6]: more than 6 args");
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#
        ),
        "syscalls[0].args[0]: index 6 is out of range (a syscall has args 0-5)"
    );
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":65536}]}"#
        ),
        "syscalls[0].errnoRet: errnoRet 65536 does not fit in 16 bits"
    );
    assert_eq!(
        err(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#),
        "defaultErrnoRet: errnoRet 70000 does not fit in 16 bits"
    );
    assert_eq!(
        err(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read",""],"action":"SCMP_ACT_ERRNO"}]}"#
        ),
        "syscalls[0].names[1]: empty syscall name"
    );
    assert!(matches!(
        compile_for(&profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#), X64),
        Err(CompileError::NotifyDefault)
    ));
    assert!(
        err(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#)
            .contains("needs a SCMP_ACT_NOTIFY rule")
    );
}

#[test]
fn flags_and_listener() {
    use berth_seccomp::*;
    let p = compile_for(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#), X64).unwrap();
    assert_eq!(p.flags(), FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC);
    assert!(!p.needs_listener());
    let p = compile_for(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_NOTIFY"}]}"#), X64).unwrap();
    assert!(p.needs_listener());
    assert_eq!(
        p.flags(),
        FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV
    );
}

/// Per-syscall cost in instructions over every syscall of the x86_64 table
/// (with arguments 0) plus the program length.
fn stats(name: &str) -> (usize, usize, f64, usize) {
    let p = load_profile(name);
    let prog = compile_for(&p, X64).unwrap();
    let mut costs = Vec::new();
    for &(_, n) in berth_seccomp::syscall_table(X64) {
        let (ret, steps) = run(prog.instructions(), &data(n, AUDIT_X86_64, [0; 6]));
        assert_eq!(ret, reference(&p, X64, AUDIT_X86_64, n, [0; 6]));
        costs.push(steps);
    }
    let max = *costs.iter().max().unwrap();
    let min = *costs.iter().min().unwrap();
    let avg = costs.iter().sum::<usize>() as f64 / costs.len() as f64;
    (prog.instructions().len(), min, avg, max)
}

#[test]
fn real_profiles_are_small_and_fast() {
    for name in ["docker-default-seccomp.json", "podman-default-seccomp.json"] {
        let (len, min, avg, max) = stats(name);
        println!(
            "{name}: {len} instructions; x86_64 per-syscall cost min {min} avg {avg:.1} max {max}"
        );
        // libseccomp 2.5.4 (as runc drives it) emits 960 (docker) / 1144 (podman) and
        // walks a linear chain of up to ~360 compares.
        assert!(len < 500, "{name}: {len}");
        assert!(max <= 24, "{name}: {max}");
    }
}

#[test]
fn real_profiles_agree_with_reference_on_all_arches() {
    for name in ["docker-default-seccomp.json", "podman-default-seccomp.json"] {
        let p = load_profile(name);
        let prog = compile_for(&p, X64).unwrap();
        let argsets: [[u64; 6]; 6] = [
            [0; 6],
            [16, 0, 9, 0, 0, 0],
            [16, 0, 5, 0, 0, 0],
            [0xffff_ffff, 0, 0, 0, 0, 0],
            [0x7E02_0000, 0, 0, 0, 0, 0],
            [8, 0, 9, 0, 0, 0],
        ];
        for (arch, audit) in [
            (X64, AUDIT_X86_64),
            (Arch::X86, AUDIT_I386),
            (Arch::X32, AUDIT_X86_64),
        ] {
            for &(sys, n) in berth_seccomp::syscall_table(arch) {
                for args in argsets {
                    let got = run(prog.instructions(), &data(n, audit, args)).0;
                    assert_eq!(
                        got,
                        reference(&p, X64, audit, n, args),
                        "{name} {arch} {sys} {args:?}"
                    );
                }
            }
        }
    }
}

// ---- property test: compiled program == reference evaluator ----

const NAMES: &[&str] = &[
    "read",
    "write",
    "getpid",
    "getppid",
    "socket",
    "chown32",
    "cacheflush",
    "open",
    "clone",
    "personality",
    "no_such_call",
    "mmap",
    "_llseek",
    "renameat",
];
const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
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
const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_NATIVE",
];
const VALUES: &[u64] = &[
    0,
    1,
    2,
    5,
    9,
    16,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0005,
    0xffff_ffff_0000_0000,
    u64::MAX,
    0x7E02_0000,
];

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![3 => prop::sample::select(VALUES), 1 => any::<u64>()]
}

fn arg() -> impl Strategy<Value = String> {
    (
        0usize..6,
        value(),
        prop::option::of(value()),
        prop::sample::select(OPS),
    )
        .prop_map(|(i, v, v2, op)| {
            let two = v2
                .map(|v| format!(r#","valueTwo":{v}"#))
                .unwrap_or_default();
            format!(r#"{{"index":{i},"value":{v}{two},"op":"{op}"}}"#)
        })
}

fn entry() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(NAMES), 1..4),
        prop::sample::select(ACTIONS),
        prop::option::of(prop_oneof![Just(1u32), Just(38), 0u32..4096]),
        prop::collection::vec(arg(), 0..4),
    )
        .prop_map(|(names, act, errno, args)| {
            let names = names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(",");
            let errno = errno
                .map(|e| format!(r#","errnoRet":{e}"#))
                .unwrap_or_default();
            format!(
                r#"{{"names":[{names}],"action":"{act}"{errno},"args":[{}]}}"#,
                args.join(",")
            )
        })
}

fn profile_json() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&ACTIONS[..8]), // not NOTIFY
        prop::option::of(prop_oneof![Just(1u32), Just(38)]),
        prop::collection::vec(prop::sample::select(ARCHES), 0..4),
        prop::collection::vec(entry(), 0..8),
    )
        .prop_map(|(def, derr, arches, entries)| {
            let derr = derr
                .map(|e| format!(r#","defaultErrnoRet":{e}"#))
                .unwrap_or_default();
            let arches = arches
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                r#"{{"defaultAction":"{def}"{derr},"architectures":[{arches}],"syscalls":[{}]}}"#,
                entries.join(",")
            )
        })
}

/// (audit arch, the Arch whose table names the call, or None for a raw number)
const TARGETS: &[(u32, Option<Arch>)] = &[
    (AUDIT_X86_64, Some(Arch::X86_64)),
    (AUDIT_X86_64, Some(Arch::X32)),
    (AUDIT_I386, Some(Arch::X86)),
    (AUDIT_AARCH64, Some(Arch::Aarch64)),
    (AUDIT_ARM, Some(Arch::Arm)),
    (AUDIT_X86_64, None),
    (0x1234_5678, None),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compiled_program_matches_reference(
        json in profile_json(),
        native in prop::sample::select(&[Arch::X86_64, Arch::Aarch64][..]),
        calls in prop::collection::vec(
            (prop::sample::select(TARGETS), prop::sample::select(NAMES), any::<u32>(), prop::array::uniform6(value())),
            1..40),
    ) {
        let p = profile(&json);
        let prog = compile_for(&p, native).unwrap();
        prop_assert!(verify(prog.instructions()).is_ok());
        for ((audit, arch), name, raw, args) in calls {
            let nr = match arch {
                Some(a) => berth_seccomp::syscall_number(a, name).unwrap_or(raw),
                None => [raw, u32::MAX, raw | X32_SYSCALL_BIT][raw as usize % 3],
            };
            let got = run(prog.instructions(), &data(nr, audit, args)).0;
            let want = reference(&p, native, audit, nr, args);
            prop_assert_eq!(got, want, "audit {:#x} nr {:#x} ({}) args {:x?}\n{}", audit, nr, name, args, json);
        }
    }
}
