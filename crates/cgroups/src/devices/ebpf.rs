//! Compile a [`DeviceState`] to a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
//!
//! The kernel runs the program on every device access check with
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! where `access_type = (access << 16) | dev_type`, and takes a return of 1
//! as allow, 0 as deny. Layout of the generated code:
//!
//! ```text
//!   r2 = ctx->access_type; r3 = r2 >> 16 (access); r2 &= 0xffff (type)
//!   r4 = ctx->major; r5 = ctx->minor
//!   for each exception:            // all of the non-default polarity
//!     if r2 != TYPE goto next
//!     if r4 != MAJOR goto next     // omitted for *
//!     if r5 != MINOR goto next     // omitted for *
//!     access test                  // omitted when it cannot fail
//!     r0 = verdict; exit
//!   next: ...
//!   r0 = default; exit
//! ```
//!
//! The access test mirrors v1: on a deny-by-default cgroup an exception
//! must cover every requested bit (`r3 & ~A == 0`); on an allow-by-default
//! one any shared bit denies (`r3 & A != 0`). Exceptions never overlap in
//! polarity, so their order does not matter.

use super::emulator::DeviceState;
use super::{Access, DevKind};

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcode pieces (include/uapi/linux/bpf.h, bpf_common.h).
pub(crate) const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W
pub(crate) const ALU64_MOV_X: u8 = 0x07 | 0xb0 | 0x08; // BPF_ALU64 | BPF_MOV | BPF_X
pub(crate) const ALU64_MOV_K: u8 = 0x07 | 0xb0; // BPF_ALU64 | BPF_MOV | BPF_K
pub(crate) const ALU32_RSH_K: u8 = 0x04 | 0x70; // BPF_ALU | BPF_RSH | BPF_K
pub(crate) const ALU32_AND_K: u8 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
pub(crate) const JMP_JNE_K: u8 = 0x05 | 0x50; // BPF_JMP | BPF_JNE | BPF_K
pub(crate) const JMP_JEQ_K: u8 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
pub(crate) const JMP_EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
pub(crate) const DEV_BLOCK: i32 = 1;
pub(crate) const DEV_CHAR: i32 = 2;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0x0f) | (src << 4),
        off,
        imm,
    }
}

/// Build the program for `state`.
pub fn compile(state: &DeviceState) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_MOV_X, 3, 2, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    let verdict = i32::from(!state.default_allow);
    for (&(kind, major, minor), &access) in &state.exceptions {
        let dev_type = match kind {
            DevKind::Block => DEV_BLOCK,
            DevKind::Char => DEV_CHAR,
            // Never an exception key: an `a` rule resets the state.
            DevKind::All => continue,
        };
        // The access test can only fail when the exception does not cover
        // all three bits (deny-default) — for allow-default a full mask
        // intersects every non-empty request.
        let test_access = access != Access::RWM;
        let mut block = vec![insn(JMP_JNE_K, 2, 0, 0, dev_type)];
        if let Some(m) = major {
            block.push(insn(JMP_JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = minor {
            block.push(insn(JMP_JNE_K, 5, 0, 0, m as i32));
        }
        if test_access {
            block.push(insn(ALU64_MOV_X, 1, 3, 0, 0));
            if state.default_allow {
                block.push(insn(ALU32_AND_K, 1, 0, 0, i32::from(access.0)));
                block.push(insn(JMP_JEQ_K, 1, 0, 0, 0));
            } else {
                block.push(insn(
                    ALU32_AND_K,
                    1,
                    0,
                    0,
                    i32::from(Access::RWM.minus(access).0),
                ));
                block.push(insn(JMP_JNE_K, 1, 0, 0, 0));
            }
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, verdict));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        // Every conditional jump goes to the end of this block.
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JEQ_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(state.default_allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::super::interp::run;
    use super::super::{Rule, container_rules};
    use super::*;

    fn state(rules: &[Rule]) -> DeviceState {
        DeviceState::from_rules(rules).unwrap()
    }

    fn rule(allow: bool, kind: DevKind, major: Option<u32>, minor: Option<u32>, acc: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: Access::parse(acc).unwrap(),
        }
    }

    /// Every combination of kind, a few majors/minors and every access mask
    /// gives the same verdict in the program as in the model.
    fn assert_program_matches_model(s: &DeviceState) {
        let prog = compile(s);
        for kind in [DevKind::Block, DevKind::Char] {
            for major in [0, 1, 5, 8, 10, 136, 4095] {
                for minor in [0, 1, 2, 3, 5, 7, 200, 1 << 19] {
                    for acc in 1..=7u8 {
                        let want = s.allows(kind, major, minor, Access(acc));
                        let got = run(&prog, kind, major, minor, Access(acc));
                        assert_eq!(got, want, "{kind:?} {major}:{minor} access {acc} in {s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn default_container_policy() {
        let s = state(&container_rules(&[]).unwrap());
        assert_program_matches_model(&s);
        let prog = compile(&s);
        assert!(run(&prog, DevKind::Char, 1, 3, Access::RWM));
        assert!(!run(&prog, DevKind::Char, 1, 1, Access::READ));
        assert!(run(&prog, DevKind::Block, 8, 0, Access::MKNOD));
        assert!(!run(&prog, DevKind::Block, 8, 0, Access::READ));
    }

    #[test]
    fn allow_all_and_blacklists() {
        let all = rule(true, DevKind::All, None, None, "rwm");
        let s = state(&[all]);
        assert_eq!(
            compile(&s).len(),
            8,
            "allow-all is just the prologue and `return 1`"
        );
        assert_program_matches_model(&s);
        let s = state(&[
            all,
            rule(false, DevKind::Block, Some(8), None, "w"),
            rule(false, DevKind::Char, Some(1), Some(1), "rwm"),
        ]);
        assert_program_matches_model(&s);
        assert!(!run(
            &compile(&s),
            DevKind::Block,
            8,
            3,
            Access::READ.union(Access::WRITE)
        ));
    }

    #[test]
    fn partial_access_whitelists() {
        let s = state(&[
            rule(true, DevKind::Char, Some(1), Some(3), "r"),
            rule(true, DevKind::Char, Some(5), None, "rw"),
            rule(true, DevKind::Block, None, Some(0), "m"),
            rule(true, DevKind::Char, Some(136), None, "rwm"),
        ]);
        assert_program_matches_model(&s);
    }

    #[test]
    fn jumps_stay_in_bounds_and_program_ends_with_exit() {
        let s = state(&container_rules(&[]).unwrap());
        let p = compile(&s);
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JMP_JNE_K || ins.code == JMP_JEQ_K {
                let target = i as i64 + 1 + i64::from(ins.off);
                assert!(target > i as i64 && (target as usize) < p.len());
            }
        }
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
    }
}
