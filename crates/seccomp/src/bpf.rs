//! Classic BPF: the instruction encoding, a small assembler with symbolic
//! labels (so the compiler never computes offsets by hand), and a verifier.
//!
//! cBPF jumps are forward only; conditional jumps have 8-bit offsets and `ja`
//! a 32-bit one. The assembler lays the code out, and wherever a conditional
//! target is more than 255 instructions away it adds a `ja` trampoline right
//! after the jump, repeating until the layout is stable.

/// One classic BPF instruction, laid out exactly like the kernel's
/// `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Offset to skip when the condition is true.
    pub jt: u8,
    /// Offset to skip when the condition is false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// The kernel's limit (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// `BPF_LD | BPF_W | BPF_ABS`
pub const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`
pub const ALU_AND_K: u16 = 0x54;
/// `BPF_JMP | BPF_JA`
pub const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`
pub const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`
pub const JMP_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`
pub const JMP_JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`
pub const RET_K: u16 = 0x06;

/// `sizeof(struct seccomp_data)`: loads must stay inside it.
pub const SECCOMP_DATA_LEN: u32 = 64;
/// Offset of `seccomp_data.nr`.
pub const OFF_NR: u32 = 0;
/// Offset of `seccomp_data.arch`.
pub const OFF_ARCH: u32 = 4;

/// Offset of the low (`hi == false`) or high 32-bit half of argument `arg`
/// in `seccomp_data`, for a little-endian architecture (all we support).
pub const fn off_arg(arg: u8, hi: bool) -> u32 {
    16 + 8 * arg as u32 + if hi { 4 } else { 0 }
}

/// A jump condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// A == k
    Eq,
    /// A > k (unsigned)
    Gt,
    /// A >= k (unsigned)
    Ge,
}

impl Cond {
    fn code(self) -> u16 {
        match self {
            Cond::Eq => JMP_JEQ_K,
            Cond::Gt => JMP_JGT_K,
            Cond::Ge => JMP_JGE_K,
        }
    }
}

/// A position in the program, resolved when the program is assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Item {
    Ld(u32),
    And(u32),
    Jmp {
        cond: Cond,
        k: u32,
        t: Label,
        f: Label,
    },
    Ja(Label),
    Ret(u32),
    Mark(Label),
}

/// The assembler failed: a jump pointed backwards or at an unplaced label.
/// This is a bug in the compiler, never the profile's fault.
#[derive(Debug, thiserror::Error)]
#[error("internal assembler error: {0}")]
pub struct AsmError(&'static str);

/// Builds a program from items with symbolic jump targets.
#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    /// A new, unplaced label.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    /// Place `l` at the current position.
    pub fn mark(&mut self, l: Label) {
        self.items.push(Item::Mark(l));
    }
    /// `A = *(u32 *)(data + off)`
    pub fn ld(&mut self, off: u32) {
        self.items.push(Item::Ld(off));
    }
    /// `A &= k`
    pub fn and(&mut self, k: u32) {
        self.items.push(Item::And(k));
    }
    /// `if (A <cond> k) goto t; else goto f;`
    pub fn jmp(&mut self, cond: Cond, k: u32, t: Label, f: Label) {
        self.items.push(Item::Jmp { cond, k, t, f });
    }
    /// `goto l;`
    pub fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }
    /// `return k;`
    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Ret(k));
    }

    /// Lay out and resolve every jump.
    pub fn assemble(self) -> Result<Vec<SockFilter>, AsmError> {
        let n = self.items.len();
        // Per jump item: whether its true / false branch needs a trampoline.
        let mut far = vec![(false, false); n];
        let mut pos = vec![0usize; n];
        let mut addr = vec![usize::MAX; self.labels];
        loop {
            let mut pc = 0;
            for (i, it) in self.items.iter().enumerate() {
                pos[i] = pc;
                pc += match it {
                    Item::Mark(l) => {
                        addr[l.0] = pc;
                        0
                    }
                    Item::Jmp { .. } => 1 + far[i].0 as usize + far[i].1 as usize,
                    _ => 1,
                };
            }
            let mut changed = false;
            for (i, it) in self.items.iter().enumerate() {
                if let Item::Jmp { t, f, .. } = *it {
                    let base = pos[i] + 1;
                    let (at, af) = (addr[t.0], addr[f.0]);
                    if at == usize::MAX || af == usize::MAX {
                        return Err(AsmError("jump to a label that was never placed"));
                    }
                    if at < base || af < base {
                        return Err(AsmError("backward jump"));
                    }
                    if !far[i].0 && at - base > 255 {
                        far[i].0 = true;
                        changed = true;
                    }
                    if !far[i].1 && af - base > 255 {
                        far[i].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut out = Vec::with_capacity(n);
        for (i, it) in self.items.iter().enumerate() {
            let p = pos[i];
            debug_assert_eq!(p, out.len());
            match *it {
                Item::Mark(_) => {}
                Item::Ld(k) => out.push(ins(LD_W_ABS, 0, 0, k)),
                Item::And(k) => out.push(ins(ALU_AND_K, 0, 0, k)),
                Item::Ret(k) => out.push(ins(RET_K, 0, 0, k)),
                Item::Ja(l) => {
                    let a = addr[l.0];
                    if a == usize::MAX || a < p + 1 {
                        return Err(AsmError("bad ja target"));
                    }
                    out.push(ins(JMP_JA, 0, 0, (a - p - 1) as u32));
                }
                Item::Jmp { cond, k, t, f } => {
                    let (ft, ff) = far[i];
                    let (at, af) = (addr[t.0], addr[f.0]);
                    // Trampolines sit right after the jump: [ja t][ja f].
                    let tramp_t = p + 1;
                    let tramp_f = p + 1 + ft as usize;
                    let jt = if ft { tramp_t - p - 1 } else { at - p - 1 };
                    let jf = if ff { tramp_f - p - 1 } else { af - p - 1 };
                    // The 8-bit offsets fit, or the relaxation loop above would have added a trampoline.
                    out.push(ins(cond.code(), jt as u8, jf as u8, k));
                    if ft {
                        out.push(ins(JMP_JA, 0, 0, (at - tramp_t - 1) as u32));
                    }
                    if ff {
                        out.push(ins(JMP_JA, 0, 0, (af - tramp_f - 1) as u32));
                    }
                }
            }
        }
        Ok(out)
    }
}

const fn ins(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Why a program is not one the kernel would accept (or not one we would emit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Empty or longer than [`MAX_INSNS`].
    #[error("program length {0} is outside 1..=4096")]
    Length(usize),
    /// An opcode outside the subset seccomp programs here use.
    #[error("instruction {pc}: unsupported opcode {code:#06x}")]
    Opcode {
        /// Instruction index.
        pc: usize,
        /// The opcode.
        code: u16,
    },
    /// A load outside `struct seccomp_data` or not 4-byte aligned.
    #[error("instruction {pc}: load offset {k} outside seccomp_data")]
    Load {
        /// Instruction index.
        pc: usize,
        /// The offset.
        k: u32,
    },
    /// A jump past the end.
    #[error("instruction {pc}: jump out of range")]
    Jump {
        /// Instruction index.
        pc: usize,
    },
    /// The last instruction is not a return, so execution could fall off the end.
    #[error("program does not end in a return")]
    NoFinalRet,
}

/// Check a program the way the kernel's classic-BPF checker would for the
/// instruction subset we use: bounded length, known opcodes, aligned loads
/// inside `seccomp_data`, every jump in range, a return at the end. Because
/// jumps only go forward and the last instruction returns, every path ends in
/// a return.
pub fn verify(prog: &[SockFilter]) -> Result<(), VerifyError> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(VerifyError::Length(prog.len()));
    }
    let len = prog.len();
    for (pc, i) in prog.iter().enumerate() {
        match i.code {
            LD_W_ABS => {
                if i.k % 4 != 0 || i.k >= SECCOMP_DATA_LEN {
                    return Err(VerifyError::Load { pc, k: i.k });
                }
            }
            ALU_AND_K | RET_K => {}
            JMP_JA => {
                if (i.k as usize) >= len - pc - 1 {
                    return Err(VerifyError::Jump { pc });
                }
            }
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                if pc + 1 + i.jt as usize >= len || pc + 1 + i.jf as usize >= len {
                    return Err(VerifyError::Jump { pc });
                }
            }
            code => return Err(VerifyError::Opcode { pc, code }),
        }
    }
    if prog[len - 1].code != RET_K {
        return Err(VerifyError::NoFinalRet);
    }
    Ok(())
}

/// Serialize instructions as the kernel's `struct sock_filter` array
/// (little-endian fields, 8 bytes each).
pub fn to_bytes(prog: &[SockFilter]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        v.extend_from_slice(&i.code.to_le_bytes());
        v.push(i.jt);
        v.push(i.jf);
        v.extend_from_slice(&i.k.to_le_bytes());
    }
    v
}

/// The inverse of [`to_bytes`]; `None` if the length is not a multiple of 8.
pub fn from_bytes(b: &[u8]) -> Option<Vec<SockFilter>> {
    if !b.len().is_multiple_of(8) {
        return None;
    }
    Some(
        b.chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_jumps_resolve_to_offsets() {
        let mut a = Asm::default();
        let (t, f) = (a.label(), a.label());
        a.ld(OFF_NR);
        a.jmp(Cond::Eq, 39, t, f);
        a.mark(f);
        a.ret(1);
        a.mark(t);
        a.ret(2);
        let p = a.assemble().unwrap();
        assert_eq!(p[1], ins(JMP_JEQ_K, 1, 0, 39));
        verify(&p).unwrap();
    }

    #[test]
    fn far_jumps_get_trampolines() {
        let mut a = Asm::default();
        let (t, f, near) = (a.label(), a.label(), a.label());
        a.jmp(Cond::Ge, 5, t, near);
        a.mark(near);
        a.jmp(Cond::Eq, 6, t, f);
        for _ in 0..300 {
            a.ld(OFF_NR);
        }
        a.mark(t);
        a.ret(7);
        a.mark(f);
        a.ret(8);
        let p = a.assemble().unwrap();
        verify(&p).unwrap();
        // first jump: true branch far -> [jge jt=0 jf=1][ja ..]
        assert_eq!((p[0].jt, p[0].jf), (0, 1));
        assert_eq!(p[1].code, JMP_JA);
        assert_eq!(p[1 + 1 + p[1].k as usize], ins(RET_K, 0, 0, 7));
        // second jump: both branches far -> [jeq jt=0 jf=1][ja t][ja f]
        assert_eq!((p[2].jt, p[2].jf), (0, 1));
        assert_eq!(p[3 + 1 + p[3].k as usize], ins(RET_K, 0, 0, 7));
        assert_eq!(p[4 + 1 + p[4].k as usize], ins(RET_K, 0, 0, 8));
    }

    #[test]
    fn unplaced_label_is_an_error() {
        let mut a = Asm::default();
        let l = a.label();
        a.ja(l);
        a.ret(0);
        assert!(a.assemble().is_err());
    }

    #[test]
    fn verify_rejects_bad_programs() {
        assert_eq!(verify(&[]), Err(VerifyError::Length(0)));
        assert!(matches!(
            verify(&[ins(LD_W_ABS, 0, 0, 0)]),
            Err(VerifyError::NoFinalRet)
        ));
        assert!(matches!(
            verify(&[ins(JMP_JEQ_K, 1, 0, 0), ins(RET_K, 0, 0, 0)]),
            Err(VerifyError::Jump { pc: 0 })
        ));
        assert!(matches!(
            verify(&[ins(LD_W_ABS, 0, 0, 64), ins(RET_K, 0, 0, 0)]),
            Err(VerifyError::Load { .. })
        ));
        assert!(matches!(
            verify(&[ins(0x07, 0, 0, 0)]),
            Err(VerifyError::Opcode { .. })
        ));
    }

    #[test]
    fn bytes_round_trip() {
        let p = vec![
            ins(LD_W_ABS, 0, 0, 4),
            ins(JMP_JEQ_K, 0, 1, 0xC000_003E),
            ins(RET_K, 0, 0, 0x7fff_0000),
        ];
        assert_eq!(from_bytes(&to_bytes(&p)).unwrap(), p);
        assert!(from_bytes(&[0; 7]).is_none());
    }
}
