#!/usr/bin/env python3
"""Run a container with runc and a given OCI seccomp profile, and dump the
classic-BPF filter runc actually installed in the container process
(read back with ptrace(PTRACE_SECCOMP_GET_FILTER)), as raw struct sock_filter
records. Used by tests/runc_compare.rs (ignored by default).

Needs: root, runc (Debian package runc), /bin/busybox (busybox-static).
No network. The bundle is a busybox rootfs built in a temp dir.

usage: runc_filter.py PROFILE.json OUT.bpf
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

PTRACE_ATTACH = 16
PTRACE_DETACH = 17
PTRACE_SECCOMP_GET_FILTER = 0x420C

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]


def dump_filter(pid):
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        raise SystemExit(f"ptrace attach: {os.strerror(ctypes.get_errno())}")
    os.waitpid(pid, 0)
    try:
        n = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, ctypes.c_void_p(0), None)
        if n < 0:
            raise SystemExit(f"PTRACE_SECCOMP_GET_FILTER: {os.strerror(ctypes.get_errno())}")
        buf = ctypes.create_string_buffer(n * 8)
        m = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, ctypes.c_void_p(0), buf)
        if m != n:
            raise SystemExit("filter changed size")
        # a second filter would mean something else is stacked
        if libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, ctypes.c_void_p(1), None) >= 0:
            raise SystemExit("more than one filter installed")
        return buf.raw
    finally:
        libc.ptrace(PTRACE_DETACH, pid, None, None)


def main(profile_path, out_path):
    with open(profile_path) as f:
        seccomp = json.load(f)
    tmp = tempfile.mkdtemp(prefix="berth-runc-cmp-")
    cid = f"berth-seccomp-cmp-{os.getpid()}"
    root = os.path.join(tmp, "state")
    try:
        rootfs = os.path.join(tmp, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        for d in ("proc", "dev", "sys", "tmp"):
            os.makedirs(os.path.join(rootfs, d))
        shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
        for applet in ("sh", "sleep"):
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        subprocess.run(["runc", "spec"], cwd=tmp, check=True)
        cfg_path = os.path.join(tmp, "config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["/bin/sleep", "60"]
        cfg["linux"]["seccomp"] = seccomp
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        # Foreground `runc run` in the background: the container lives until we delete it.
        proc = subprocess.Popen(["runc", "--root", root, "run", cid], cwd=tmp,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        pid = 0
        for _ in range(100):
            time.sleep(0.1)
            st = subprocess.run(["runc", "--root", root, "state", cid], capture_output=True, text=True)
            if st.returncode == 0:
                state = json.loads(st.stdout)
                if state["status"] == "running" and state["pid"]:
                    pid = state["pid"]
                    break
            if proc.poll() is not None:
                raise SystemExit(f"runc exited with {proc.returncode}")
        if not pid:
            raise SystemExit("container did not start")
        # let runc's init reach exec(sleep): the filter is installed just before
        time.sleep(0.3)
        data = dump_filter(pid)
        with open(out_path, "wb") as f:
            f.write(data)
    finally:
        subprocess.run(["runc", "--root", root, "kill", cid, "KILL"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)
        subprocess.run(["runc", "--root", root, "delete", "-f", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
