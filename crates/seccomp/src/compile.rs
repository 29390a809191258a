//! OCI profile -> classic BPF.
//!
//! Two stages: [`lower`] checks the profile and resolves it into per-arch,
//! per-syscall decisions (all semantics live there), then [`codegen`] turns
//! those into instructions (only layout lives there).
//!
//! Semantics (chosen to match runc + libseccomp 2.5, where noted):
//! * The filter covers the native architecture plus every supported entry of
//!   `architectures` (libseccomp always keeps the native one). Architectures
//!   without a table (mips, ppc, s390, riscv, ...) are skipped with a debug
//!   log: a kernel of a supported architecture never reports them, so such a
//!   block could never run. Any other `seccomp_data.arch` gets
//!   SECCOMP_RET_KILL_THREAD, libseccomp's default "bad arch" action.
//! * x86_64: `AUDIT_ARCH_X86_64` with `nr >= __X32_SYSCALL_BIT` is an x32
//!   call. Without x32 in the filter it is a bad arch (KILL_THREAD), except
//!   `nr == -1` (a syscall skipped by a tracer), which gets the default
//!   action, exactly as libseccomp does.
//! * Names are resolved per architecture; a name a given architecture does
//!   not have adds nothing there (`chown32` only exists on i386/arm). A name
//!   no architecture of the filter has is skipped and logged at debug level,
//!   as runc does.
//! * An entry whose action equals the default action is skipped (runc).
//! * `args` of one entry are ANDed. If one arg index appears more than once,
//!   each condition becomes a rule of its own (ORed), which is what runc does
//!   because libseccomp refuses two conditions on one argument.
//! * On 64-bit architectures a condition compares the whole 64-bit argument
//!   (high word, then low word). On i386, x32 and arm only the low 32 bits are
//!   compared and the values are truncated to 32 bits (libseccomp's
//!   `ARCH_SIZE_32` behaviour).
//! * SCMP_CMP_MASKED_EQ is `(arg & value) == (valueTwo & value)`; libseccomp
//!   masks `valueTwo` too.
//! * Several entries for one syscall: an unconditional one beats every
//!   conditional one, and the first unconditional one wins (both as in
//!   libseccomp). Among conditional rules that match at once, the most
//!   restrictive action wins, using the kernel's precedence between filters
//!   (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > NOTIFY > TRACE > LOG >
//!   ALLOW; ties: the earlier entry). libseccomp's answer in that case depends
//!   on the shape of its decision tree, not on the actions, so we do not copy
//!   it; real profiles (docker, podman) never have such overlaps.
//! * Numbers above the highest syscall in our table for an architecture
//!   (syscalls newer than the headers the tables came from) return ENOSYS
//!   instead of the default action, unless the default is ALLOW, LOG or
//!   already ERRNO(ENOSYS). This is runc's "patchbpf" behaviour: libc falls
//!   back from a new syscall to an old one only on ENOSYS (clone3 -> clone,
//!   fchmodat2 -> fchmodat). `nr == -1` keeps the default action.
//! * Multiplexed i386 calls (`socketcall`, `ipc`) are filtered as the single
//!   syscalls they are: a rule for `socket` does not add a `socketcall` rule
//!   (libseccomp 2.5 does). Profiles that allow `socketcall` (docker, podman)
//!   behave the same either way.

use std::collections::{BTreeMap, HashSet};

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::action::{
    RET_ALLOW, RET_ERRNO, RET_KILL_THREAD, RET_LOG, RET_USER_NOTIF, rank, ret_value,
};
use crate::arch::{Arch, X32_SYSCALL_BIT};
use crate::bpf::{self, Asm, Cond, Label, OFF_ARCH, OFF_NR, SockFilter, off_arg};
use crate::error::CompileError;
use crate::{Program, tables};

/// Bump when the generated code changes for the same input; it is part of
/// the cache key so old cache files are not reused.
pub(crate) const COMPILER_REVISION: u32 = 2;

/// `ENOSYS`
const ENOSYS: u32 = 38;

/// `SECCOMP_FILTER_FLAG_TSYNC`
pub const FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`
pub const FLAG_LOG: u32 = 2;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`
pub const FLAG_SPEC_ALLOW: u32 = 4;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`
pub const FLAG_NEW_LISTENER: u32 = 8;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`
pub const FLAG_TSYNC_ESRCH: u32 = 16;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;
/// Every flag a [`Program`] may carry.
pub(crate) const ALL_FLAGS: u32 = FLAG_TSYNC
    | FLAG_LOG
    | FLAG_SPEC_ALLOW
    | FLAG_NEW_LISTENER
    | FLAG_TSYNC_ESRCH
    | FLAG_WAIT_KILLABLE_RECV;

/// The comparison of one argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument condition, as given in the profile (not yet truncated for
/// 32-bit architectures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ArgCond {
    pub arg: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

/// A conditional rule: all conditions hold -> `ret`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rule {
    pub ret: u32,
    pub conds: Vec<ArgCond>,
}

/// What a syscall does on one architecture.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Decision {
    Always(u32),
    /// Rules in evaluation order (strongest action first); none matches -> default.
    Rules(Vec<Rule>),
}

/// The lowered profile.
pub(crate) struct Lowered {
    pub default: u32,
    /// Native first, then the profile's order, without duplicates.
    pub arches: Vec<Arch>,
    pub syscalls: BTreeMap<Arch, BTreeMap<u32, Decision>>,
    pub flags: u32,
    pub needs_listener: bool,
    /// Return ENOSYS for numbers beyond each table (see the module docs).
    pub enosys_beyond_table: bool,
}

/// One profile entry after checking.
struct Entry {
    ret: u32,
    /// Each inner list is one rule (ANDed); an empty inner list = unconditional.
    groups: Vec<Vec<ArgCond>>,
}

fn errno16(value: Option<u32>, at: impl FnOnce() -> String) -> Result<Option<u16>, CompileError> {
    value
        .map(|v| u16::try_from(v).map_err(|_| CompileError::ErrnoRange { at: at(), value: v }))
        .transpose()
}

fn op(o: LinuxSeccompOperator) -> Op {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// Check the profile and resolve it for a kernel of architecture `native`.
pub(crate) fn lower(p: &LinuxSeccomp, native: Arch) -> Result<Lowered, CompileError> {
    if p.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(CompileError::NotifyDefault);
    }
    let default = ret_value(
        p.default_action(),
        errno16(p.default_errno_ret(), || "defaultErrnoRet".into())?,
    );

    let mut arches = vec![native];
    for a in p.architectures().iter().flatten() {
        match Arch::from_oci(*a, native) {
            Some(a) if !arches.contains(&a) => arches.push(a),
            Some(_) => {}
            None => log::debug!("seccomp: no syscall table for architecture {a}, skipped"),
        }
    }

    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }

    // Check every entry first, so errors do not depend on which names resolve.
    let list = p.syscalls().as_deref().unwrap_or_default();
    let mut entries = Vec::with_capacity(list.len());
    let mut needs_listener = false;
    for (i, sc) in list.iter().enumerate() {
        let ret = ret_value(
            sc.action(),
            errno16(sc.errno_ret(), || format!("syscalls[{i}].errnoRet"))?,
        );
        for (j, n) in sc.names().iter().enumerate() {
            if n.is_empty() {
                return Err(CompileError::EmptyName {
                    at: format!("syscalls[{i}].names[{j}]"),
                });
            }
        }
        let args = sc.args().as_deref().unwrap_or_default();
        let mut conds = Vec::with_capacity(args.len());
        for (j, a) in args.iter().enumerate() {
            if j >= 6 {
                return Err(CompileError::TooManyArgs {
                    at: format!("syscalls[{i}].args[{j}]"),
                });
            }
            if a.index() >= 6 {
                return Err(CompileError::ArgIndex {
                    at: format!("syscalls[{i}].args[{j}]"),
                    index: a.index(),
                });
            }
            conds.push(ArgCond {
                arg: a.index() as u8,
                op: op(a.op()),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        if ret == default {
            continue;
        }
        needs_listener |= ret == RET_USER_NOTIF;
        let mut seen = HashSet::new();
        let groups = if conds.iter().all(|c| seen.insert(c.arg)) {
            vec![conds]
        } else {
            conds.into_iter().map(|c| vec![c]).collect()
        };
        entries.push((i, Entry { ret, groups }));
    }

    if needs_listener {
        flags |= FLAG_NEW_LISTENER;
        // The kernel refuses TSYNC together with NEW_LISTENER unless TSYNC
        // failures are reported as ESRCH (the return value is the fd then).
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    } else if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
        return Err(CompileError::FlagNeedsListener(
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ));
    }

    let mut syscalls = BTreeMap::new();
    for &arch in &arches {
        // nr -> (first unconditional ret, conditional rules in profile order)
        let mut per: BTreeMap<u32, (Option<u32>, Vec<Rule>)> = BTreeMap::new();
        for (i, e) in &entries {
            for name in list[*i].names() {
                let Some(nr) = tables::lookup(arch, name) else {
                    continue;
                };
                let slot = per.entry(nr).or_default();
                for g in &e.groups {
                    if g.is_empty() {
                        slot.0.get_or_insert(e.ret);
                    } else {
                        slot.1.push(Rule {
                            ret: e.ret,
                            conds: g.clone(),
                        });
                    }
                }
            }
        }
        let decided = per
            .into_iter()
            .map(|(nr, (always, mut rules))| {
                let d = match always {
                    Some(ret) => Decision::Always(ret),
                    None => {
                        // Stable: equal precedence keeps profile order.
                        rules.sort_by_key(|r| rank(r.ret));
                        rules.dedup();
                        Decision::Rules(rules)
                    }
                };
                (nr, d)
            })
            .collect();
        syscalls.insert(arch, decided);
    }
    for (i, _) in &entries {
        for name in list[*i].names() {
            if !arches.iter().any(|&a| tables::lookup(a, name).is_some()) {
                if tables::known_anywhere(name) {
                    log::debug!("seccomp: syscall {name:?} does not exist on {arches:?}, skipped");
                } else {
                    log::debug!("seccomp: unknown syscall {name:?} skipped");
                }
            }
        }
    }

    // See the module docs: runc's ENOSYS for syscalls newer than the tables.
    let enosys_beyond_table = ![RET_ALLOW, RET_LOG, RET_ERRNO | ENOSYS].contains(&default);
    Ok(Lowered {
        default,
        arches,
        syscalls,
        flags,
        needs_listener,
        enosys_beyond_table,
    })
}

/// Where a range of syscall numbers goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    Ret(u32),
    Block(Label),
}

struct Gen {
    a: Asm,
    rets: BTreeMap<u32, Label>,
    /// Conditional blocks to emit after the dispatch trees.
    blocks: Vec<(Label, bool, Vec<Rule>)>,
    /// Identical rule lists share one block.
    block_ids: BTreeMap<(bool, Vec<RuleKey>), Label>,
    default: u32,
    enosys_beyond_table: bool,
}

/// `Rule` without `Hash`-unfriendly parts, for block sharing.
type RuleKey = (u32, Vec<(u8, u8, u64, u64)>);

fn rule_key(r: &Rule) -> RuleKey {
    (
        r.ret,
        r.conds
            .iter()
            .map(|c| (c.arg, c.op as u8, c.value, c.value_two))
            .collect(),
    )
}

impl Gen {
    fn ret(&mut self, v: u32) -> Label {
        if let Some(l) = self.rets.get(&v) {
            return *l;
        }
        let l = self.a.label();
        self.rets.insert(v, l);
        l
    }

    fn target(&mut self, o: Out) -> Label {
        match o {
            Out::Ret(v) => self.ret(v),
            Out::Block(l) => l,
        }
    }

    fn outcome(&mut self, d: &Decision, wide: bool) -> Out {
        match d {
            Decision::Always(v) => Out::Ret(*v),
            Decision::Rules(rules) => {
                let key = (wide, rules.iter().map(rule_key).collect::<Vec<_>>());
                if let Some(l) = self.block_ids.get(&key) {
                    return Out::Block(*l);
                }
                let l = self.a.label();
                self.block_ids.insert(key, l);
                self.blocks.push((l, wide, rules.clone()));
                Out::Block(l)
            }
        }
    }

    /// Emit a dispatch on `nr` (already in A) for numbers in `lo..=hi`:
    /// the numbers are cut into maximal ranges with one outcome each, and a
    /// balanced binary search over the range starts picks the range.
    fn dispatch(&mut self, arch: Arch, map: &BTreeMap<u32, Decision>, lo: u32, hi: u32) {
        let wide = arch.has_64bit_args();
        // Highest number the table knows; every rule number is <= it.
        let max = tables::all(arch).iter().map(|e| e.1).max().unwrap_or(lo);
        let (default, enosys) = (Out::Ret(self.default), Out::Ret(RET_ERRNO | ENOSYS));
        let mut ranges: Vec<(u32, Out)> = Vec::new();
        let mut push = |start: u32, o: Out| {
            if ranges.last().map(|r| r.1) != Some(o) {
                ranges.push((start, o));
            }
        };
        let mut next = Some(lo);
        for (&nr, d) in map.range(lo..=hi) {
            let o = self.outcome(d, wide);
            if let Some(n) = next
                && nr > n
            {
                push(n, default);
            }
            push(nr, o);
            next = nr.checked_add(1).filter(|&n| n <= hi);
        }
        if let Some(n) = next {
            if self.enosys_beyond_table && max < hi {
                if n <= max {
                    push(n, default);
                    push(max + 1, enosys);
                } else {
                    push(n, enosys);
                }
                if hi == u32::MAX {
                    push(u32::MAX, default);
                }
            } else {
                push(n, default);
            }
        }
        self.tree(&ranges);
    }

    fn tree(&mut self, r: &[(u32, Out)]) {
        if r.len() == 1 {
            let t = self.target(r[0].1);
            self.a.ja(t);
            return;
        }
        let m = r.len() / 2;
        let (left, right) = r.split_at(m);
        let side = |g: &mut Gen, part: &[(u32, Out)]| {
            if part.len() == 1 {
                g.target(part[0].1)
            } else {
                g.a.label()
            }
        };
        let lt = side(self, left);
        let rt = side(self, right);
        self.a.jmp(Cond::Ge, right[0].0, rt, lt);
        if left.len() > 1 {
            self.a.mark(lt);
            self.tree(left);
        }
        if right.len() > 1 {
            self.a.mark(rt);
            self.tree(right);
        }
    }

    /// One argument condition: jump to `pass` if it holds, else to `fail`.
    fn cond(&mut self, c: &ArgCond, wide: bool, pass: Label, fail: Label) {
        let a = &mut self.a;
        let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
        let (wh, wl) = ((c.value_two >> 32) as u32, c.value_two as u32);
        let (hi, lo) = (off_arg(c.arg, true), off_arg(c.arg, false));
        if !wide {
            // 32-bit argument: the low word only, values truncated (libseccomp).
            a.ld(lo);
            match c.op {
                Op::Eq => a.jmp(Cond::Eq, vl, pass, fail),
                Op::Ne => a.jmp(Cond::Eq, vl, fail, pass),
                Op::Gt => a.jmp(Cond::Gt, vl, pass, fail),
                Op::Ge => a.jmp(Cond::Ge, vl, pass, fail),
                Op::Lt => a.jmp(Cond::Ge, vl, fail, pass),
                Op::Le => a.jmp(Cond::Gt, vl, fail, pass),
                Op::MaskedEq => {
                    a.and(vl);
                    a.jmp(Cond::Eq, wl & vl, pass, fail);
                }
            }
            return;
        }
        // 64-bit argument as two 32-bit halves: decide on the high word when
        // it differs from the value's, compare the low word only when equal.
        let low = a.label();
        match c.op {
            Op::Eq => {
                a.ld(hi);
                a.jmp(Cond::Eq, vh, low, fail);
                a.mark(low);
                a.ld(lo);
                a.jmp(Cond::Eq, vl, pass, fail);
            }
            Op::Ne => {
                a.ld(hi);
                a.jmp(Cond::Eq, vh, low, pass);
                a.mark(low);
                a.ld(lo);
                a.jmp(Cond::Eq, vl, fail, pass);
            }
            Op::Gt | Op::Ge => {
                a.ld(hi);
                if vh == 0 {
                    // hi > 0 passes, hi == 0 decides on the low word.
                    a.jmp(Cond::Eq, 0, low, pass);
                } else {
                    let eq = a.label();
                    a.jmp(Cond::Gt, vh, pass, eq);
                    a.mark(eq);
                    a.jmp(Cond::Eq, vh, low, fail);
                }
                a.mark(low);
                a.ld(lo);
                let cond = if c.op == Op::Gt { Cond::Gt } else { Cond::Ge };
                a.jmp(cond, vl, pass, fail);
            }
            Op::Lt | Op::Le => {
                a.ld(hi);
                if vh == 0 {
                    a.jmp(Cond::Eq, 0, low, fail);
                } else {
                    let eq = a.label();
                    a.jmp(Cond::Gt, vh, fail, eq);
                    a.mark(eq);
                    a.jmp(Cond::Eq, vh, low, pass);
                }
                a.mark(low);
                a.ld(lo);
                // lt: lo >= v fails; le: lo > v fails
                let cond = if c.op == Op::Lt { Cond::Ge } else { Cond::Gt };
                a.jmp(cond, vl, fail, pass);
            }
            Op::MaskedEq => {
                if vh != 0 {
                    a.ld(hi);
                    a.and(vh);
                    a.jmp(Cond::Eq, wh & vh, low, fail);
                }
                a.mark(low);
                if vl != 0 {
                    a.ld(lo);
                    a.and(vl);
                    a.jmp(Cond::Eq, wl & vl, pass, fail);
                } else {
                    a.ja(pass);
                }
            }
        }
    }

    fn block(&mut self, wide: bool, rules: &[Rule]) {
        let default = self.ret(self.default);
        for (i, r) in rules.iter().enumerate() {
            let fail = if i + 1 == rules.len() {
                default
            } else {
                self.a.label()
            };
            let pass = self.ret(r.ret);
            for (j, c) in r.conds.iter().enumerate() {
                let next = if j + 1 == r.conds.len() {
                    pass
                } else {
                    self.a.label()
                };
                self.cond(c, wide, next, fail);
                if next != pass {
                    self.a.mark(next);
                }
            }
            if fail != default {
                self.a.mark(fail);
            }
        }
    }
}

/// Lay out the lowered filter as a cBPF program.
pub(crate) fn codegen(l: &Lowered) -> Result<Vec<SockFilter>, CompileError> {
    let mut g = Gen {
        a: Asm::default(),
        rets: BTreeMap::new(),
        blocks: Vec::new(),
        block_ids: BTreeMap::new(),
        default: l.default,
        enosys_beyond_table: l.enosys_beyond_table,
    };
    let bad_arch = g.ret(RET_KILL_THREAD);
    let empty = BTreeMap::new();
    let table = |a: Arch| l.syscalls.get(&a).unwrap_or(&empty);

    // Group by the audit value the kernel reports (x86_64 and x32 share one),
    // keeping the native architecture's check first: it is the common case.
    let mut groups: Vec<(u32, Vec<Arch>)> = Vec::new();
    for &a in &l.arches {
        match groups.iter_mut().find(|g| g.0 == a.audit_arch()) {
            Some(g) => g.1.push(a),
            None => groups.push((a.audit_arch(), vec![a])),
        }
    }
    let labels: Vec<Label> = groups.iter().map(|_| g.a.label()).collect();
    g.a.ld(OFF_ARCH);
    for (i, (audit, _)) in groups.iter().enumerate() {
        let next = if i + 1 == groups.len() {
            bad_arch
        } else {
            g.a.label()
        };
        g.a.jmp(Cond::Eq, *audit, labels[i], next);
        if next != bad_arch {
            g.a.mark(next);
        }
    }
    for (i, (_, members)) in groups.iter().enumerate() {
        g.a.mark(labels[i]);
        g.a.ld(OFF_NR);
        let has = |a: Arch| members.contains(&a);
        if has(Arch::X86_64) || has(Arch::X32) {
            let (x64, x32) = (g.a.label(), g.a.label());
            g.a.jmp(Cond::Ge, X32_SYSCALL_BIT, x32, x64);
            g.a.mark(x64);
            if has(Arch::X86_64) {
                g.dispatch(Arch::X86_64, table(Arch::X86_64), 0, X32_SYSCALL_BIT - 1);
            } else {
                g.a.ja(bad_arch);
            }
            g.a.mark(x32);
            if has(Arch::X32) {
                g.dispatch(Arch::X32, table(Arch::X32), X32_SYSCALL_BIT, u32::MAX);
            } else {
                let default = g.ret(l.default);
                g.a.jmp(Cond::Eq, u32::MAX, default, bad_arch);
            }
        } else {
            let a = members[0];
            g.dispatch(a, table(a), 0, u32::MAX);
        }
    }
    let blocks = std::mem::take(&mut g.blocks);
    for (label, wide, rules) in &blocks {
        g.a.mark(*label);
        g.block(*wide, rules);
    }
    let rets: Vec<(u32, Label)> = g.rets.iter().map(|(v, l)| (*v, *l)).collect();
    for (v, l) in rets {
        g.a.mark(l);
        g.a.ret(v);
    }
    let prog = g.a.assemble()?;
    if prog.len() > bpf::MAX_INSNS {
        return Err(CompileError::TooLong(prog.len()));
    }
    bpf::verify(&prog)?;
    Ok(prog)
}

/// Compile `profile` for a kernel of architecture `native`.
pub fn compile_for(profile: &LinuxSeccomp, native: Arch) -> Result<Program, CompileError> {
    let l = lower(profile, native)?;
    let insns = codegen(&l)?;
    Ok(Program::from_parts(insns, l.flags, l.needs_listener))
}
