#!/usr/bin/env python3
"""Compile an OCI `linux.seccomp` profile with the system libseccomp (via ctypes,
no C compiler or headers needed) the way runc 1.1 does, and write the resulting
classic-BPF program to a file as raw `struct sock_filter` records (8 bytes each).

This is a *comparison oracle* for berth-seccomp, not part of the runtime: the
ignored test `tests/libseccomp_compare.rs` runs both programs in the same cBPF
interpreter and checks they return the same action for many syscalls/args.

runc's algorithm (libcontainer/seccomp/seccomp_linux.go) as reproduced here:
  * default action from defaultAction/defaultErrnoRet (ERRNO/TRACE default to EPERM)
  * every listed architecture is added; the native one stays in the filter
  * a rule whose action equals the default action is skipped
  * names libseccomp cannot resolve are skipped
  * no args -> unconditional rule; args -> one rule with all conditions ANDed,
    unless an arg index repeats, then one rule per condition (ORed)

usage: libseccomp_export.py PROFILE.json OUT.bpf
"""
import ctypes
import json
import os
import sys

lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)

ARCH = {
    "SCMP_ARCH_X86": 0x40000003,
    "SCMP_ARCH_X86_64": 0xC000003E,
    "SCMP_ARCH_X32": 0x4000003E,
    "SCMP_ARCH_ARM": 0x40000028,
    "SCMP_ARCH_AARCH64": 0xC00000B7,
}
OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
EPERM = 1


def action(name, ret):
    data = (EPERM if ret is None else ret) & 0xFFFF
    return {
        "SCMP_ACT_KILL": 0x00000000,
        "SCMP_ACT_KILL_THREAD": 0x00000000,
        "SCMP_ACT_KILL_PROCESS": 0x80000000,
        "SCMP_ACT_TRAP": 0x00030000,
        "SCMP_ACT_ERRNO": 0x00050000 | data,
        "SCMP_ACT_TRACE": 0x7FF00000 | data,
        "SCMP_ACT_LOG": 0x7FFC0000,
        "SCMP_ACT_ALLOW": 0x7FFF0000,
        "SCMP_ACT_NOTIFY": 0x7FC00000,
    }[name]


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_rule_add_array.argtypes = [
    ctypes.c_void_p,
    ctypes.c_uint32,
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.POINTER(ArgCmp),
]
lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]

NR_SCMP_ERROR = -1


def check(rc, what):
    if rc < 0:
        raise SystemExit(f"{what}: {os.strerror(-rc)}")


def main(profile_path, out_path):
    with open(profile_path) as f:
        prof = json.load(f)
    default = action(prof["defaultAction"], prof.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SystemExit("seccomp_init failed")
    for a in prof.get("architectures") or []:
        rc = lib.seccomp_arch_add(ctx, ARCH[a])
        if rc != -17:  # EEXIST: the native arch is already there
            check(rc, f"arch_add {a}")
    # runc turns the binary tree on for long rule sets; it must not change behaviour.
    if len(prof.get("syscalls") or []) > 32:
        check(lib.seccomp_attr_set(ctx, 8, 2), "optimize")
    for si, sc in enumerate(prof.get("syscalls") or []):
        act = action(sc["action"], sc.get("errnoRet"))
        if act == default:
            continue
        for name in sc["names"]:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == NR_SCMP_ERROR:
                continue
            args = sc.get("args") or []
            conds = [
                ArgCmp(a["index"], OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
                for a in args
            ]
            idx = [a["index"] for a in args]
            groups = [conds] if len(set(idx)) == len(idx) else [[c] for c in conds]
            for g in groups:
                arr = (ArgCmp * len(g))(*g)
                rc = lib.seccomp_rule_add_array(ctx, act, nr, len(g), arr)
                check(rc, f"syscalls[{si}] {name}")
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    check(lib.seccomp_export_bpf(ctx, fd), "export")
    os.close(fd)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
