//! A tiny eBPF interpreter for the instructions [`super::ebpf`] emits, so the
//! generated device programs can be checked without a kernel. Anything
//! else panics: a new opcode in the generator must be taught here first.

use super::ebpf::{
    ALU32_AND_K, ALU32_RSH_K, ALU64_MOV_K, ALU64_MOV_X, DEV_BLOCK, DEV_CHAR, Insn, JMP_EXIT,
    JMP_JEQ_K, JMP_JNE_K, LDX_MEM_W,
};
use super::{Access, DevKind};

/// Run `prog` for one access check; true = allowed.
pub(crate) fn run(prog: &[Insn], kind: DevKind, major: u32, minor: u32, access: Access) -> bool {
    let dev_type = match kind {
        DevKind::Block => DEV_BLOCK as u32,
        DevKind::Char => DEV_CHAR as u32,
        DevKind::All => panic!("a request is always for a block or char device"),
    };
    // struct bpf_cgroup_dev_ctx
    let ctx: [u32; 3] = [(u32::from(access.0) << 16) | dev_type, major, minor];
    let mut r = [0u64; 11];
    // r1 holds a pointer to ctx; we model it as a marker and check loads use it.
    const CTX: u64 = 0xc7c7_0000;
    r[1] = CTX;
    let mut initialized = [false; 11];
    initialized[1] = true;
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let ins = prog
            .get(pc)
            .unwrap_or_else(|| panic!("fell off the program at {pc}"));
        let dst = usize::from(ins.regs & 0x0f);
        let src = usize::from(ins.regs >> 4);
        let imm = i64::from(ins.imm) as u64;
        let at = pc;
        let read = |reg: usize, init: &[bool; 11]| {
            assert!(init[reg], "read of uninitialized r{reg} at {at}");
            r[reg]
        };
        pc += 1;
        match ins.code {
            LDX_MEM_W => {
                assert_eq!(read(src, &initialized), CTX, "load not from ctx at {at}");
                let off = usize::try_from(ins.off).expect("negative ctx offset");
                assert!(off % 4 == 0 && off < 12, "bad ctx offset {off}");
                r[dst] = u64::from(ctx[off / 4]);
            }
            ALU64_MOV_X => r[dst] = read(src, &initialized),
            ALU64_MOV_K => r[dst] = imm,
            ALU32_RSH_K => {
                r[dst] = u64::from((read(dst, &initialized) as u32) >> (ins.imm as u32 & 31))
            }
            ALU32_AND_K => r[dst] = u64::from((read(dst, &initialized) as u32) & ins.imm as u32),
            JMP_JNE_K | JMP_JEQ_K => {
                let eq = read(dst, &initialized) == imm;
                if eq == (ins.code == JMP_JEQ_K) {
                    pc = (pc as i64 + i64::from(ins.off)) as usize;
                }
                continue;
            }
            JMP_EXIT => {
                let v = read(0, &initialized);
                assert!(v <= 1, "cgroup device programs must return 0 or 1, got {v}");
                return v == 1;
            }
            other => panic!("opcode {other:#x} not supported by the test interpreter"),
        }
        initialized[dst] = true;
    }
    panic!("program did not terminate");
}
