//! The exec trampoline: the defence against CVE-2019-5736.
//!
//! Berth forks its container processes instead of re-executing itself, so until the final
//! exec their /proc/<pid>/exe is the host's berth-runtime binary. If the container's program
//! is a script whose interpreter is `/proc/self/exe`, the kernel would resolve that link in
//! the exec'ing process and run the runtime binary inside the container, where the container
//! could then open it through /proc and overwrite it once the runtime exits.
//!
//! So the last exec is two steps: the process execs a tiny static program from a sealed
//! memfd (no file on any filesystem, no write possible: F_SEAL_WRITE), and that program execs
//! the container's program. Whatever `/proc/self/exe` then names is the sealed memfd.
//!
//! The program is generated here, per architecture, as a minimal ELF: load argv[0] as the path
//! and execve(argv[0], &argv[1], envp); on failure exit_group(127). Its entry runs with the
//! initial stack layout of the System V ABI: argc, argv[], NULL, envp[], NULL.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{MemfdFlags, SealFlags};

const BASE: u64 = 0x40_0000;
const EHDR: usize = 64;
const PHDR: usize = 56;

/// x86-64: rdi = argv[0]; rsi = &argv[1]; rdx = &envp[0] = rsp + 16 + argc * 8. With fewer
/// than two arguments (the trampoline itself run as a script's interpreter, with its
/// arguments used up) it exits instead of exec'ing: no loop.
const X86_64_CODE: [u8; 47] = [
    0x48, 0x83, 0x3c, 0x24, 0x02, // cmp qword [rsp], 2
    0x72, 0x1a, // jb exit
    0x48, 0x8b, 0x7c, 0x24, 0x08, // mov rdi, [rsp+8]
    0x48, 0x8d, 0x74, 0x24, 0x10, // lea rsi, [rsp+16]
    0x48, 0x8b, 0x04, 0x24, // mov rax, [rsp]
    0x48, 0x8d, 0x54, 0xc4, 0x10, // lea rdx, [rsp+rax*8+16]
    0xb8, 0x3b, 0x00, 0x00, 0x00, // mov eax, 59 (execve)
    0x0f, 0x05, // syscall
    0xbf, 0x7f, 0x00, 0x00, 0x00, // exit: mov edi, 127
    0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231 (exit_group)
    0x0f, 0x05, // syscall
    0x0f, 0x0b, // ud2 (never reached)
];

/// AArch64, the same program: x0 = argv[0]; x1 = &argv[1]; x2 = sp + argc * 8 + 16.
const AARCH64_CODE: [u32; 12] = [
    0xF940_03E2, // ldr x2, [sp]
    0xF100_085F, // cmp x2, #2
    0x5400_00E3, // b.lo exit (+7 instructions)
    0xF940_07E0, // ldr x0, [sp, #8]
    0x9100_43E1, // add x1, sp, #16
    0x8B22_6FE2, // add x2, sp, x2, uxtx #3
    0x9100_4042, // add x2, x2, #16
    0xD280_1BA8, // mov x8, #221 (execve)
    0xD400_0001, // svc #0
    0xD280_0FE0, // exit: mov x0, #127
    0xD280_0BC8, // mov x8, #94 (exit_group)
    0xD400_0001, // svc #0
];

/// The machine code of this build's architecture and its ELF e_machine.
fn code() -> Option<(Vec<u8>, u16)> {
    if cfg!(target_arch = "x86_64") {
        Some((X86_64_CODE.to_vec(), 62))
    } else if cfg!(target_arch = "aarch64") {
        Some((
            AARCH64_CODE.iter().flat_map(|w| w.to_le_bytes()).collect(),
            183,
        ))
    } else {
        None
    }
}

/// A complete static ELF64 executable around `code`.
fn elf(code: &[u8], machine: u16) -> Vec<u8> {
    let total = (EHDR + PHDR + code.len()) as u64;
    let entry = BASE + (EHDR + PHDR) as u64;
    let mut out = Vec::with_capacity(total as usize);
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR as u16).to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    // One PT_LOAD segment, read + execute, mapping the whole file.
    out.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    out.extend_from_slice(&5u32.to_le_bytes()); // p_flags: R | X
    out.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    out.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    out.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    out.extend_from_slice(&total.to_le_bytes()); // p_filesz
    out.extend_from_slice(&total.to_le_bytes()); // p_memsz
    out.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    out.extend_from_slice(code);
    out
}

/// The trampoline program for this architecture.
pub fn program() -> Option<Vec<u8>> {
    code().map(|(code, machine)| elf(&code, machine))
}

/// A sealed memfd holding the trampoline, ready for execveat. `None` on architectures we
/// have no trampoline for, or when the kernel refuses executable memfds
/// (vm.memfd_noexec=2): then the program is exec'd directly.
pub fn sealed_memfd() -> io::Result<Option<OwnedFd>> {
    let Some(program) = program() else {
        return Ok(None);
    };
    let fd = match rustix::fs::memfd_create(
        "berth-exec",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING | MemfdFlags::EXEC,
    ) {
        Ok(fd) => fd,
        // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable anyway.
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create(
            "berth-exec",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?,
        Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut written = 0;
    while written < program.len() {
        written += rustix::io::write(&fd, &program[written..])?;
    }
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    Ok(Some(fd))
}

/// The argument vector for the trampoline: the program's path, then its own argv.
pub fn arguments(program: &CStr, argv: &[CString]) -> Vec<CString> {
    std::iter::once(program.to_owned())
        .chain(argv.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    #[test]
    fn x86_64_jump_lands_on_the_exit() {
        // jb's displacement is counted from the next instruction (offset 7).
        let exit = 7 + X86_64_CODE[6] as usize;
        assert_eq!(
            &X86_64_CODE[exit..exit + 5],
            &[0xbf, 0x7f, 0x00, 0x00, 0x00]
        );
    }

    /// Run as the interpreter of a script (`#!/proc/self/exe`) the trampoline ends in one
    /// step instead of exec'ing itself forever.
    #[test]
    fn trampoline_as_an_interpreter_terminates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trampoline");
        std::fs::write(&path, program().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, format!("#!{}\n", path.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = Command::new(&path)
            .arg0(&script)
            .arg("script")
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(127));
    }

    #[test]
    fn elf_header_is_consistent() {
        let (code, machine) = code().expect("a supported architecture");
        let image = elf(&code, machine);
        assert_eq!(&image[..4], b"\x7fELF");
        assert_eq!(image.len(), EHDR + PHDR + code.len());
        let entry = u64::from_le_bytes(image[24..32].try_into().unwrap());
        assert_eq!(entry, BASE + (EHDR + PHDR) as u64);
    }

    /// The trampoline really runs: it execs argv[0] with the rest as argv and passes the
    /// environment through.
    #[test]
    fn trampoline_execs_its_first_argument() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trampoline");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&program().unwrap()).unwrap();
        drop(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new(&path)
            .arg0("/bin/sh")
            .args(["sh", "-c", "echo \"$0 $1 $GREETING\"", "zero", "one"])
            .env("GREETING", "hello")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "zero one hello\n");
    }

    #[test]
    fn trampoline_exits_127_when_the_exec_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trampoline");
        std::fs::write(&path, program().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let status = Command::new(&path).arg0("/nonexistent").status().unwrap();
        assert_eq!(status.code(), Some(127));
    }

    #[test]
    fn sealed_memfd_refuses_writes() {
        let fd = sealed_memfd().unwrap().expect("memfds are executable here");
        let err = rustix::io::write(&fd, b"x").unwrap_err();
        assert_eq!(err, rustix::io::Errno::PERM);
    }

    use std::os::unix::process::CommandExt;
}
