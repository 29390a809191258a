#!/usr/bin/env bash
# test.sh — every test of the project, as CI runs them (root):
#   1. cargo test --workspace: unit tests, and integration tests that create real containers;
#      then the ignored-by-default comparisons (our seccomp compiler against libseccomp, and
#      the same profiles enforced by runc), which need root, runc, python3 and libseccomp
#   2. the real clients: podman, dockerd and containerd/ctr drive berth-runtime
#      (../shared/realclients/smoke.sh)
#   3. the focused cgroup v2 set, in a throw-away VM (scripts/v2-vm-tests.sh)
#   4. the systemd cgroup driver's D-Bus side against systemd as PID 1, in a guest
#      (scripts/systemd-vm-tests.sh)
# BERTH_TESTS selects stages (default "unit clients v2 systemd"); BERTH_SHARED points at the shared
# folder (default: ../shared next to the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the tests create containers; run as root" >&2; exit 1; }
stages=${BERTH_TESTS:-unit clients v2 systemd}
shared=${BERTH_SHARED:-$(cd .. && pwd)/shared}
step() { printf '\n== %s\n' "$*"; }
has() { case " $stages " in *" $1 "*) return 0;; *) return 1;; esac; }
# tally CMD...: runs a cargo test command (output as usual) and adds the counts of its
# "test result: ... N passed; M failed" lines to the tests that really ran; the totals are
# the last line printed, also when a step fails.
passed=0 failed=0
tally() {
  local log rc=0 p f
  log=$(mktemp)
  "$@" 2>&1 | tee "$log" || rc=$?
  read -r p f < <(awk '/^test result:/ { for (i = 1; i < NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
    END { print p + 0, f + 0 }' "$log")
  rm -f "$log"
  passed=$((passed + p)) failed=$((failed + f))
  return "$rc"
}
trap 'echo "tests: $passed passed, $failed failed"' EXIT

if has unit; then
  step "unit and integration tests"
  tally cargo test --workspace
  step "seccomp compared with libseccomp and runc"
  tally cargo test --workspace -- --ignored
fi
if has clients; then
  step "real clients: podman, dockerd, containerd"
  [ -x "$shared/realclients/smoke.sh" ] || { echo "test.sh: $shared/realclients/smoke.sh not found (set BERTH_SHARED)" >&2; exit 1; }
  cargo build-runtime
  RT=$PWD/target/runtime/berth-runtime INSTALL=${INSTALL:-0} "$shared/realclients/smoke.sh"
fi
if has v2; then
  step "cgroup v2 (VM)"
  CG2VM_SCRIPT=${CG2VM_SCRIPT:-$shared/vm/run-in-cgroup2-vm.sh} scripts/v2-vm-tests.sh
fi
if has systemd; then
  step "systemd cgroup driver (VM with systemd)"
  CG2VM_SCRIPT=${CG2VM_SCRIPT:-$shared/vm/run-in-cgroup2-vm.sh} scripts/systemd-vm-tests.sh 5
fi
step "all tests passed"
