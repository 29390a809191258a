//! Arbitrary bytes -> profile parser -> compiler, for both native
//! architectures. Must never panic; every compiled program must pass the
//! verifier, stay within 4096 instructions, and (checked here independently
//! of the library's verifier) have every jump in range and end in `ret`.
#![no_main]

use berth_seccomp::{Arch, MAX_INSNS, compile_for, parse_profile, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = parse_profile(data) else { return };
    for native in [Arch::X86_64, Arch::Aarch64] {
        let Ok(prog) = compile_for(&profile, native) else { continue };
        let insns = prog.instructions();
        assert!(!insns.is_empty() && insns.len() <= MAX_INSNS);
        verify(insns).expect("compiled program fails verification");
        for (pc, i) in insns.iter().enumerate() {
            match i.code {
                0x05 => assert!(pc + 1 + (i.k as usize) < insns.len(), "ja out of range at {pc}"),
                0x15 | 0x25 | 0x35 => {
                    assert!(pc + 1 + (i.jt as usize).max(i.jf as usize) < insns.len(), "jump out of range at {pc}")
                }
                0x20 => assert!(i.k < 64 && i.k % 4 == 0),
                0x54 | 0x06 => {}
                c => panic!("unexpected opcode {c:#x} at {pc}"),
            }
        }
        assert_eq!(insns.last().unwrap().code, 0x06, "does not end in ret");
    }
});
