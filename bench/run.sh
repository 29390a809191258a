#!/usr/bin/env bash
# Container start benchmark: berth-runtime vs runc vs the C floor, interleaved.
# See bench/README.md. Needs root. Usage:
#   bench/run.sh                       # N=200 samples per target after 10 warmup rounds
#   N=100 OUT=/tmp/bench.json bench/run.sh
# Environment:
#   BERTH=path      berth-runtime binary  (default: <repo>/target/runtime/berth-runtime)
#   RUNC=path       runc binary           (default: /usr/sbin/runc)
#   N=200           measured rounds; WARMUP=10 rounds before them (not counted)
#   OUT=file        also write raw samples (ns) and stats as JSON
#   SEED=1          seed of the per-round shuffle of the run order
#   FLOOR_SRC=file  floor.c (default: <repo>/../shared/bench/floor.c); FLOOR=0 skips the floor
#   HYPERFINE=1     afterwards, a hyperfine cross-check of the `run` targets (NOT interleaved)
#   KEEP=1          keep the temp dir (bundle, stderr logs) and print its path
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BERTH=${BERTH:-$repo/target/runtime/berth-runtime}
RUNC=${RUNC:-/usr/sbin/runc}
N=${N:-200}
WARMUP=${WARMUP:-10}
SEED=${SEED:-1}
OUT=${OUT:-}
FLOOR=${FLOOR:-1}
FLOOR_SRC=${FLOOR_SRC:-$repo/../shared/bench/floor.c}
HYPERFINE=${HYPERFINE:-0}
KEEP=${KEEP:-0}
BUSYBOX=${BUSYBOX:-/bin/busybox}
. "$here/lib.sh"
bench_checks
case $N$WARMUP in *[!0-9]*) die "N and WARMUP must be numbers";; esac
[ -n "$OUT" ] && OUT=$(realpath -m "$OUT")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
CGTOP="berth-bench-$$"           # the only cgroup name this script creates (in every hierarchy)
CGREL="$CGTOP/ctr"               # cgroupsPath of the bundle: /berth-bench-<pid>/ctr
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
mapfile -t HIERS < <(cgroup_hierarchies)

# ---- floor --------------------------------------------------------------------------
floor_bin=
if [ "$FLOOR" = 1 ]; then
    if [ -f "$FLOOR_SRC" ] && command -v gcc >/dev/null; then
        gcc -O2 -o "$WORK/floor" "$FLOOR_SRC" && floor_bin=$WORK/floor
    else
        echo "bench: no floor ($FLOOR_SRC or gcc missing)" >&2
    fi
fi

# ---- bundle: busybox rootfs + `runc spec` -------------------------------------------
bundle=$WORK/bundle
rootfs=$bundle/rootfs
make_bundle "$bundle" "/$CGREL"
mkdir -p "$WORK/state-runc" "$WORK/state-berth"

# ---- the interleaved loop -----------------------------------------------------------
berth_ver="$(ver "$BERTH")"
if git -C "$repo" rev-parse --short HEAD >/dev/null 2>&1 && [ "$BERTH" = "$repo/target/runtime/berth-runtime" ]; then
    berth_ver="$berth_ver, tree at $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- crates Cargo.toml Cargo.lock || echo '+dirty'), built $(date -r "$BERTH" +%H:%M:%S)"
fi
export B_WORK=$WORK B_BUNDLE=$bundle B_ROOTFS=$rootfs B_FLOOR=$floor_bin B_CGREL=$CGREL \
    B_N=$N B_WARMUP=$WARMUP B_SEED=$SEED B_OUT=$OUT B_RUNC=$RUNC B_BERTH=$BERTH \
    B_RUNC_VER="$(ver "$RUNC")" B_BERTH_VER="$berth_ver" B_HIERS="${HIERS[*]}"
"$PY" - "$WORK/setup.json" <<'EOF'
import json, os, sys
e = os.environ
setup = {
    "work": e["B_WORK"], "bundle": e["B_BUNDLE"], "rootfs": e["B_ROOTFS"],
    "floor": e["B_FLOOR"] or None, "cgroup_rel": e["B_CGREL"], "hierarchies": e["B_HIERS"].split(),
    "n": int(e["B_N"]), "warmup": int(e["B_WARMUP"]), "seed": int(e["B_SEED"]), "out": e["B_OUT"] or None,
    "progress": True, "reference": "runc",
    "runtimes": [
        {"name": "runc", "bin": e["B_RUNC"], "state": e["B_WORK"] + "/state-runc", "version": e["B_RUNC_VER"]},
        {"name": "berth", "bin": e["B_BERTH"], "state": e["B_WORK"] + "/state-berth", "version": e["B_BERTH_VER"]},
    ],
    "host": {"cores": os.cpu_count(), "kernel": os.uname().release},
}
json.dump(setup, open(sys.argv[1], "w"), indent=1)
EOF
echo "bench: bundle $bundle, cgroupsPath /$CGREL, $N rounds (+$WARMUP warmup), order shuffled per round" >&2
# in the background so that Ctrl-C / SIGTERM reach this script's trap at once; the harness
# (SIGINT ignored, as for any background job) gets SIGTERM, ends the current sample, reports
# the complete rounds, and the EXIT trap cleans up
"$PY" "$here/harness.py" "$WORK/setup.json" &
PYPID=$!
trap 'kill -TERM "$PYPID" 2>/dev/null; interrupted=1' INT TERM
interrupted=0
while :; do
    rc=0; wait "$PYPID" || rc=$?
    kill -0 "$PYPID" 2>/dev/null || break
done
trap 'exit 130' INT
trap 'exit 143' TERM
[ "$interrupted" = 0 ] || exit 130
[ "$rc" = 0 ] || exit "$rc"

# ---- optional: hyperfine cross-check (sequential, not interleaved) --------------------
if [ "$HYPERFINE" = 1 ]; then
    command -v hyperfine >/dev/null || die "HYPERFINE=1 needs hyperfine (apt-get install hyperfine)"
    cmds=()
    [ -n "$floor_bin" ] && cmds+=(-n floor "$floor_bin -f -c $rootfs /bin/true")
    cmds+=(-n "runc run" "$RUNC --root $WORK/state-runc run --bundle $bundle hf-runc")
    if "$BERTH" --root "$WORK/state-berth" run --bundle "$bundle" hf-check </dev/null >/dev/null 2>&1; then
        cmds+=(-n "berth run" "$BERTH --root $WORK/state-berth run --bundle $bundle hf-berth")
    else
        echo "bench: hyperfine: berth run fails on the bundle, left out" >&2
        "$BERTH" --root "$WORK/state-berth" delete --force hf-check >/dev/null 2>&1 || true
    fi
    echo >&2
    echo "hyperfine cross-check (each command's runs back to back, NOT interleaved):" >&2
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$N" --output null "${cmds[@]}"
fi
