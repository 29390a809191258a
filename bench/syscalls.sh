#!/usr/bin/env bash
# Syscall budget of one `run` of /bin/true: `strace -f -c` of berth-runtime and of runc on the
# same bundle as bench/run.sh (busybox rootfs, `runc spec` config, a real cgroup), side by side.
# Counts cover every process and thread the runtime makes (runc's `runc init` re-exec, the
# container's /bin/true itself). Needs root and strace (apt-get install strace).
#   BERTH=... RUNC=... bench/syscalls.sh        TOP=40 (rows shown, default 30; 0 = all)
#   MODE=csd    count create + start + delete (summed) instead of run
#   KEEP=1      keep the temp dir, with the raw strace summaries
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BERTH=${BERTH:-$repo/target/runtime/berth-runtime}
RUNC=${RUNC:-/usr/sbin/runc}
BUSYBOX=${BUSYBOX:-/bin/busybox}
TOP=${TOP:-30}
MODE=${MODE:-run}
KEEP=${KEEP:-0}
. "$here/lib.sh"
bench_checks
command -v strace >/dev/null || die "no strace (apt-get install strace)"
case $MODE in run|csd) ;; *) die "MODE is run or csd";; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-syscalls.XXXXXX")
CGTOP="berth-bench-$$"
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    cleanup_bench "$WORK" "$CGTOP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bundle=$WORK/bundle
make_bundle "$bundle" "/$CGTOP/ctr"
mkdir -p "$WORK/state-runc" "$WORK/state-berth"

# trace RT BIN: one untraced warm-up run, then the traced one; summary in $WORK/RT.strace
trace() {
    local rt=$1 bin=$2 st=$WORK/state-$1 out=$WORK/$1.strace err=$WORK/$1.stderr
    local -a S=(strace -f -c -U name,calls,errors)
    if ! "$bin" --root "$st" run --bundle "$bundle" warm-$rt </dev/null >/dev/null 2>"$err"; then
        echo "bench: $rt run fails on the bundle: $(tail -c 600 "$err")" >&2
        "$bin" --root "$st" delete --force warm-$rt >/dev/null 2>&1 || true
        return 1
    fi
    if [ "$MODE" = run ]; then
        "${S[@]}" -o "$out" "$bin" --root "$st" run --bundle "$bundle" t-$rt </dev/null >/dev/null 2>"$err" ||
            { echo "bench: traced $rt run failed: $(tail -c 600 "$err")" >&2; return 1; }
    else
        # create + start + delete, each traced into its own summary; the container's process
        # is forked by create, so its syscalls land in create's summary (strace -f follows it)
        "${S[@]}" -o "$out.create" "$bin" --root "$st" create --bundle "$bundle" t-$rt </dev/null >/dev/null 2>"$err" &
        local tracer=$!
        # strace -f waits for the container process too, which waits for start: start it
        # once the state says "created", then wait for the tracer
        local i
        for i in $(seq 200); do
            "$bin" --root "$st" state t-$rt 2>/dev/null | grep -q '"created"' && break
            sleep 0.05
        done
        "${S[@]}" -o "$out.start" "$bin" --root "$st" start t-$rt 2>>"$err" ||
            { echo "bench: traced $rt start failed: $(tail -c 600 "$err")" >&2; return 1; }
        wait "$tracer" || { echo "bench: traced $rt create failed: $(tail -c 600 "$err")" >&2; return 1; }
        "${S[@]}" -o "$out.delete" "$bin" --root "$st" delete t-$rt 2>>"$err" ||
            { echo "bench: traced $rt delete failed: $(tail -c 600 "$err")" >&2; return 1; }
        cat "$out.create" "$out.start" "$out.delete" >"$out"
    fi
}

ok=()
trace berth "$BERTH" && ok+=(berth)
trace runc "$RUNC" && ok+=(runc)
[ ${#ok[@]} -gt 0 ] || die "neither runtime ran"

echo "syscalls of one \`$MODE\` of /bin/true (strace -f -c; all processes; same bundle, cgroupsPath /$CGTOP/ctr)"
echo "  berth = $BERTH ($(ver "$BERTH"))"
echo "  runc  = $RUNC ($(ver "$RUNC"))"
"$PY" - "$WORK" "$TOP" "${ok[@]}" <<'EOF'
import sys
from collections import Counter
work, top, rts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls, errs = {}, {}
for rt in ("berth", "runc"):
    c, e = Counter(), Counter()
    if rt in rts:
        for line in open(f"{work}/{rt}.strace"):
            f = line.split()
            if len(f) < 2 or f[0].startswith(("syscall", "-")) or f[0] == "total" or not f[1].isdigit():
                continue
            c[f[0]] += int(f[1])
            e[f[0]] += int(f[2]) if len(f) > 2 and f[2].isdigit() else 0
    calls[rt], errs[rt] = c, e
names = sorted(set(calls["berth"]) | set(calls["runc"]),
               key=lambda n: (-max(calls["berth"][n], calls["runc"][n]), n))
def cell(rt, n):
    if rt not in rts:
        return f"{'-':>7s} {'':>6s}"
    c, e = calls[rt][n], errs[rt][n]
    return f"{c:7d} {('(' + str(e) + ')') if e else '':>6s}" if c else f"{'':>7s} {'':>6s}"
print(f"  {'syscall':22s} {'berth':>7s} {'(err)':>6s} {'runc':>7s} {'(err)':>6s}")
shown = names if top == 0 else names[:top]
for n in shown:
    print(f"  {n:22s} {cell('berth', n)} {cell('runc', n)}")
if len(shown) < len(names):
    rest = names[len(shown):]
    def sumrest(rt):
        return f"{sum(calls[rt][n] for n in rest):7d} {'':>6s}" if rt in rts else f"{'-':>7s} {'':>6s}"
    print(f"  {'(' + str(len(rest)) + ' more)':22s} {sumrest('berth')} {sumrest('runc')}")
def tot(rt):
    if rt not in rts:
        return f"{'-':>7s} {'':>6s}"
    return f"{sum(calls[rt].values()):7d} {'(' + str(sum(errs[rt].values())) + ')':>6s}"
print(f"  {'TOTAL':22s} {tot('berth')} {tot('runc')}")
def distinct(rt):
    return f"{len(calls[rt]):7d} {'':>6s}" if rt in rts else f"{'-':>7s} {'':>6s}"
print(f"  {'distinct syscalls':22s} {distinct('berth')} {distinct('runc')}")
EOF
