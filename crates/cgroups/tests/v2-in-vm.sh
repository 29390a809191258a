#!/usr/bin/env bash
# Run berth-cgroups' root integration tests on a pure cgroup v2 kernel.
#
# Builds the test binaries on the host, copies them to a scratch directory,
# and runs them inside the throw-away VM of ../../../../shared/vm (Debian
# 6.1 kernel, cgroup_no_v1=all, all controllers on /sys/fs/cgroup). The
# integration tests adapt to the layout they find, so the same binary that
# exercises v1/hybrid on the host exercises v2 here: eBPF device programs
# installed by create/update, cgroup.freeze, cgroup.kill, subtree_control
# delegation, memory.events OOM watching, io/cpu.max conversions.
#
# usage: crates/cgroups/tests/v2-in-vm.sh [TEST-FILTER...]
# env:   CARGO_TARGET_DIR (default <repo>/target), CG2VM_* (see the VM script)
# Prints the wall time of the whole run (build + boot + tests) at the end.
set -euo pipefail

start=$(date +%s)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
vm=${CG2VM_SCRIPT:-$repo/../shared/vm/run-in-cgroup2-vm.sh}
[ -x "$vm" ] || { echo "v2-in-vm: VM script not found at $vm" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

cd "$repo"
# --message-format=json names the test executables; keep the integration
# test binary (tests/cgroups.rs) and the library's unit tests.
mapfile -t bins < <(cargo test -p berth-cgroups --no-run --message-format=json 2>/dev/null |
  grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//')
[ "${#bins[@]}" -gt 0 ] || { echo "v2-in-vm: no test binaries built" >&2; exit 2; }

scratch="$CARGO_TARGET_DIR/cg2vm-berth-cgroups"
rm -rf "$scratch"
mkdir -p "$scratch"
for b in "${bins[@]}"; do
  case "$(basename "$b")" in
    cgroups-*) cp "$b" "$scratch/integration" ;;
    berth_cgroups-*) cp "$b" "$scratch/unit" ;;
  esac
done
[ -x "$scratch/integration" ] || { echo "v2-in-vm: integration test binary missing" >&2; exit 2; }
built=$(date +%s)

# Inside the VM: check the layout really is v2-only, then run both sets.
# Unit tests are pure but cheap; they also catch host-probing code that
# assumes v1 files exist.
cat > "$scratch/run.sh" <<'EOF'
set -eu
cd "$(dirname "$0")"
echo "v2-in-vm: kernel $(uname -r); cgroup fs: $(grep -c ' - cgroup ' /proc/self/mountinfo || true) v1 mounts, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
if grep -q ' - cgroup ' /proc/self/mountinfo; then echo "v2-in-vm: v1 hierarchies are mounted, not a v2-only guest" >&2; exit 3; fi
rc=0
[ -x ./unit ] && { ./unit --test-threads=2 -q "$@" || rc=$?; }
./integration --test-threads=2 "$@" || rc=$?
# Nothing may be left behind.
left=$(find /sys/fs/cgroup -maxdepth 3 -name 'berth-test-*' | head)
[ -z "$left" ] || { echo "v2-in-vm: left behind: $left" >&2; rc=4; }
exit $rc
EOF

set +e
CG2VM_TIMEOUT=${CG2VM_TIMEOUT:-1500} "$vm" "$scratch" sh "$scratch/run.sh" "$@"
rc=$?
set -e
end=$(date +%s)
echo "v2-in-vm: exit $rc; build $((built - start)) s, VM boot + tests $((end - built)) s, total $((end - start)) s"
exit $rc
