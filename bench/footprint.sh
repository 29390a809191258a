#!/usr/bin/env bash
# Footprint of a runtime command: peak resident memory and wall time of `--version`,
# `spec`, `run /bin/true` and create/start/delete, berth-runtime and runc side by side.
# See bench/README.md. Needs root. Usage:
#   bench/footprint.sh                 # N=50 samples per command
# Environment: BERTH, RUNC, N, BUSYBOX as for run.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BERTH=${BERTH:-$repo/target/runtime/berth-runtime}
RUNC=${RUNC:-/usr/sbin/runc}
N=${N:-50}
BUSYBOX=${BUSYBOX:-/bin/busybox}
. "$here/lib.sh"
bench_checks
case $N in *[!0-9]*|'') die "N must be a number";; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-footprint.XXXXXX")
CGTOP="berth-footprint-$$"
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    cleanup_bench "$WORK" "$CGTOP"
    exit $rc
}
trap cleanup EXIT INT TERM
make_bundle "$WORK/bundle" "/$CGTOP/ctr" >/dev/null
# The spawner: a process started from Python (vfork, or fork of a 10 MiB interpreter)
# carries the interpreter's peak RSS into the child's rusage, because the kernel keeps the
# highest RSS of every image a process ran. A small C program that forks and execs keeps
# that out: it prints the wall ns and ru_maxrss (KiB) of one command it ran.
command -v gcc >/dev/null || die "no gcc"
cat >"$WORK/spawn.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec a, b;
    struct rusage ru;
    int status;
    if (argc < 2) return 2;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null < 0 || dup2(null, 1) < 0) _exit(127);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) return 2;
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%lld %ld %d\n", (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
           ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
C
gcc -O2 -o "$WORK/spawn" "$WORK/spawn.c"

"$PY" - "$WORK" "$N" "$BERTH" "$RUNC" <<'EOF'
import os, sys, time
work, n, berth, runc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
spawner = work + "/spawn"
bundle = work + "/bundle"
devnull = os.open("/dev/null", os.O_RDWR)
# we reap the inits that `create` leaves (as a shim would)
PR_SET_CHILD_SUBREAPER = 36
import ctypes
ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

def call(argv):
    """wall ns and peak RSS (KiB) of one command, as the spawner saw them: wait4's rusage
    holds the largest of the process and of the children it reaped (for `run`, the
    container's init before and after its exec)."""
    r, w = os.pipe()
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, w, 1),
          (os.POSIX_SPAWN_DUP2, devnull, 2)]
    pid = os.posix_spawn(spawner, [spawner] + argv, os.environ, file_actions=fa)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    ns, rss, code = map(int, out.split())
    if code != 0:
        raise SystemExit(f"footprint: {' '.join(argv)} failed ({code})")
    return ns, rss

def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass

def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]

rows = []
floor = [call(["/bin/true"]) for _ in range(n)]
rows.append(("host", "/bin/true", q([a for a, _ in floor], 0.1), q([a for a, _ in floor], 0.5),
             max(b for _, b in floor), q([b for _, b in floor], 0.5)))
for name, bin in (("berth", berth), ("runc", runc)):
    state = f"{work}/state-{name}"
    cmds = {
        "--version": lambda i: [[bin, "--version"]],
        "spec": lambda i: [[bin, "spec", "--bundle", f"{work}/spec-{name}"]],
        "run /bin/true": lambda i: [[bin, "--root", state, "run", "--bundle", bundle, f"r{i}"]],
        "create": lambda i: [[bin, "--root", state, "create", "--bundle", bundle, f"c{i}"]],
        "start": lambda i: [[bin, "--root", state, "start", f"c{i}"]],
        "delete": lambda i: [[bin, "--root", state, "delete", f"c{i}"]],
    }
    os.makedirs(f"{work}/spec-{name}", exist_ok=True)
    samples = {k: [] for k in cmds}
    for i in range(n + 3):
        for k, make in cmds.items():
            if k == "spec":
                try:
                    os.unlink(f"{work}/spec-{name}/config.json")
                except FileNotFoundError:
                    pass
            if k == "delete":
                # the process of c{i} (/bin/true) has to be gone before a plain delete
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    reap()
                    st = os.popen(f"{bin} --root {state} state c{i} 2>/dev/null").read()
                    if '"stopped"' in st:
                        break
                    time.sleep(0.002)
            for argv in make(i):
                ns, rss = call(argv)
                if i >= 3:  # warm-up
                    samples[k].append((ns, rss))
        reap()
    for k, s in samples.items():
        ns = [a for a, _ in s]
        rss = [b for _, b in s]
        rows.append((name, k, q(ns, 0.1), q(ns, 0.5), max(rss), q(rss, 0.5)))

print(f"footprint: N={n}, {os.cpu_count()} cores, kernel {os.uname().release}")
print(f"  {'':7}{'command':16}{'p10':>10}{'median':>10}{'peak RSS':>12}{'median RSS':>12}")
for name, k, p10, med, peak, mrss in rows:
    print(f"  {name:7}{k:16}{p10/1e6:8.2f}ms{med/1e6:8.2f}ms{peak/1024:9.2f}MiB{mrss/1024:9.2f}MiB")
EOF
