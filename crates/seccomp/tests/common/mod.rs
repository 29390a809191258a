//! Test helpers: a classic-BPF interpreter and a reference evaluator that
//! reads the OCI profile directly (written from the documented semantics,
//! sharing no code with the compiler), so the two can be compared.
#![allow(dead_code)]

use berth_seccomp::{
    Arch, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_TRACE, RET_TRAP,
    RET_USER_NOTIF, SockFilter, X32_SYSCALL_BIT, syscall_number,
};
use oci_spec::runtime::{Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

pub const AUDIT_X86_64: u32 = 0xC000_003E;
pub const AUDIT_I386: u32 = 0x4000_0003;
pub const AUDIT_AARCH64: u32 = 0xC000_00B7;
pub const AUDIT_ARM: u32 = 0x4000_0028;

/// Build a 64-byte `struct seccomp_data`.
pub fn data(nr: u32, arch: u32, args: [u64; 6]) -> [u8; 64] {
    let mut d = [0u8; 64];
    d[0..4].copy_from_slice(&nr.to_le_bytes());
    d[4..8].copy_from_slice(&arch.to_le_bytes());
    d[8..16].copy_from_slice(&0x7f00_dead_beefu64.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    d
}

/// Run a seccomp cBPF program: (return value, instructions executed).
/// Implements every classic opcode a seccomp filter may use, and panics on
/// anything the kernel would reject at run time (out-of-range jump/load).
pub fn run(prog: &[SockFilter], d: &[u8; 64]) -> (u32, usize) {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        let i = prog[pc];
        steps += 1;
        assert!(
            steps <= prog.len(),
            "executed more instructions than the program has"
        );
        pc += 1;
        let k = i.k;
        let src = if i.code & 0x08 != 0 { x } else { k };
        match i.code & 0x07 {
            0x00 => match i.code {
                0x20 => {
                    let o = k as usize;
                    assert!(
                        o.is_multiple_of(4) && o + 4 <= 64,
                        "load out of seccomp_data: {o}"
                    );
                    a = u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
                }
                0x80 => a = 64,              // BPF_LD|BPF_W|BPF_LEN
                0x00 => a = k,               // BPF_LD|BPF_IMM
                0x60 => a = mem[k as usize], // BPF_LD|BPF_MEM
                c => panic!("unsupported ld {c:#x}"),
            },
            0x01 => match i.code {
                0x01 => x = k,
                0x81 => x = 64,
                0x61 => x = mem[k as usize],
                c => panic!("unsupported ldx {c:#x}"),
            },
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x04 => {
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 => a / src,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.wrapping_shl(src),
                    0x70 => a.wrapping_shr(src),
                    0x80 => a.wrapping_neg(),
                    0x90 => a % src,
                    0xa0 => a ^ src,
                    c => panic!("unsupported alu {c:#x}"),
                }
            }
            0x05 => {
                let jump = |c: bool| if c { i.jt as usize } else { i.jf as usize };
                pc += match i.code & 0xf0 {
                    0x00 => k as usize,
                    0x10 => jump(a == src),
                    0x20 => jump(a > src),
                    0x30 => jump(a >= src),
                    0x40 => jump(a & src != 0),
                    c => panic!("unsupported jmp {c:#x}"),
                };
                assert!(pc < prog.len(), "jump out of program");
            }
            0x06 => return (if i.code & 0x18 == 0x10 { a } else { k }, steps),
            0x07 => {
                if i.code == 0x07 {
                    x = a
                } else {
                    a = x
                }
            }
            _ => unreachable!(),
        }
    }
}

pub fn ret_of(action: LinuxSeccompAction, data: Option<u32>) -> u32 {
    let d = data.unwrap_or(1);
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | d,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | d,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
    }
}

fn strength(ret: u32) -> i32 {
    (ret & 0xffff_0000) as i32
}

/// What the kernel should get for this syscall, straight from the profile.
pub fn reference(p: &LinuxSeccomp, native: Arch, audit: u32, nr: u32, args: [u64; 6]) -> u32 {
    let default = ret_of(p.default_action(), p.default_errno_ret());
    let mut arches = vec![native];
    for a in p.architectures().iter().flatten() {
        let a = match a {
            OciArch::ScmpArchNative => native,
            OciArch::ScmpArchX86_64 => Arch::X86_64,
            OciArch::ScmpArchX86 => Arch::X86,
            OciArch::ScmpArchX32 => Arch::X32,
            OciArch::ScmpArchAarch64 => Arch::Aarch64,
            OciArch::ScmpArchArm => Arch::Arm,
            _ => continue,
        };
        arches.push(a);
    }
    let arch = if audit == AUDIT_X86_64 {
        if nr >= X32_SYSCALL_BIT {
            if arches.contains(&Arch::X32) {
                Arch::X32
            } else if arches.contains(&Arch::X86_64) && nr == u32::MAX {
                return default;
            } else {
                return RET_KILL_THREAD;
            }
        } else if arches.contains(&Arch::X86_64) {
            Arch::X86_64
        } else {
            return RET_KILL_THREAD;
        }
    } else {
        match arches.iter().find(|a| a.audit_arch() == audit) {
            Some(a) => *a,
            None => return RET_KILL_THREAD,
        }
    };
    let wide = matches!(arch, Arch::X86_64 | Arch::Aarch64);
    // Beyond the table (newer syscalls): ENOSYS unless the default lets calls
    // through or is ENOSYS already; -1 keeps the default.
    let table_max = berth_seccomp::syscall_table(arch)
        .iter()
        .map(|e| e.1)
        .max()
        .unwrap();
    if nr > table_max && nr != u32::MAX && ![RET_ALLOW, RET_LOG, RET_ERRNO | 38].contains(&default)
    {
        return RET_ERRNO | 38;
    }

    let mut unconditional = None;
    let mut best: Option<u32> = None;
    for sc in p.syscalls().iter().flatten() {
        let ret = ret_of(sc.action(), sc.errno_ret());
        if ret == default {
            continue;
        }
        if !sc
            .names()
            .iter()
            .any(|n| syscall_number(arch, n) == Some(nr))
        {
            continue;
        }
        let conds = sc.args().as_deref().unwrap_or_default();
        if conds.is_empty() {
            unconditional.get_or_insert(ret);
            continue;
        }
        let holds = |c: &oci_spec::runtime::LinuxSeccompArg| {
            let (mut a, mut v, mut v2) = (args[c.index()], c.value(), c.value_two().unwrap_or(0));
            if !wide {
                (a, v, v2) = (a as u32 as u64, v as u32 as u64, v2 as u32 as u64);
            }
            match c.op() {
                LinuxSeccompOperator::ScmpCmpNe => a != v,
                LinuxSeccompOperator::ScmpCmpLt => a < v,
                LinuxSeccompOperator::ScmpCmpLe => a <= v,
                LinuxSeccompOperator::ScmpCmpEq => a == v,
                LinuxSeccompOperator::ScmpCmpGe => a >= v,
                LinuxSeccompOperator::ScmpCmpGt => a > v,
                LinuxSeccompOperator::ScmpCmpMaskedEq => a & v == v2 & v,
            }
        };
        let mut idx: Vec<usize> = conds.iter().map(|c| c.index()).collect();
        idx.sort();
        let repeated = idx.windows(2).any(|w| w[0] == w[1]);
        let matched = if repeated {
            conds.iter().any(holds)
        } else {
            conds.iter().all(holds)
        };
        if matched && best.is_none_or(|b| strength(ret) < strength(b)) {
            best = Some(ret);
        }
    }
    unconditional.or(best).unwrap_or(default)
}

pub fn load_profile(name: &str) -> LinuxSeccomp {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    berth_seccomp::parse_profile(&std::fs::read(&path).unwrap()).unwrap()
}

pub fn profile(json: &str) -> LinuxSeccomp {
    berth_seccomp::parse_profile(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

pub fn nr(arch: Arch, name: &str) -> u32 {
    syscall_number(arch, name).unwrap_or_else(|| panic!("{name} on {arch}"))
}
pub mod sys;
