#!/usr/bin/env bash
# systemd-vm-tests.sh — berth-systemd (the systemd cgroup driver's D-Bus side) against a real
# systemd, in a throw-away guest where systemd 252 is PID 1 with the system D-Bus
# (../shared/vm/run-in-cgroup2-vm.sh with CG2VM_INIT=systemd; cgroup v2 only), in one boot:
#   1. the crate's unit tests (wire format, cgroupsPath, property conversion), and its client
#      against a private dbus-daemon (tests/dbus_daemon.rs, which also runs on the host)
#   2. its integration tests (tests/systemd.rs) with BERTH_REQUIRE_SYSTEMD=1, so a skip fails:
#      scopes with limits (files + systemctl show), SetUnitProperties, StopUnit, nested slice,
#      a leftover unit, errors
#   3. the same binary with DBUS_SYSTEM_BUS_ADDRESS pointing at no socket: the tests must say
#      they skipped, naming that socket
#   4. the cost of create+stop of a scope (examples/scope_bench.rs) next to systemd-run --scope
#   5. nothing left: no berth-test-* / berth-bench-* unit, no such cgroup
#
# The binaries are built on the host and staged into CARGO_TARGET_DIR, which the guest shares
# at the same path.
#
# usage: scripts/systemd-vm-tests.sh [BENCH-ROUNDS]   (default 20)
# env:   CARGO_TARGET_DIR (default <repo>/target), CG2VM_SCRIPT (the VM script), CG2VM_*
set -euo pipefail

start=$(date +%s)
rounds=${1:-20}
repo=$(cd "$(dirname "$0")/.." && pwd -P)
vm=${CG2VM_SCRIPT:-$repo/../shared/vm/run-in-cgroup2-vm.sh}
[ -x "$vm" ] || { echo "systemd-vm-tests: VM script not found at $vm (set CG2VM_SCRIPT)" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR=$(realpath "$CARGO_TARGET_DIR")
case $CARGO_TARGET_DIR in
  /|/usr|/usr/*|/etc|/etc/*) echo "systemd-vm-tests: CARGO_TARGET_DIR=$CARGO_TARGET_DIR cannot be shared with the VM" >&2; exit 2;;
esac
scratch=$CARGO_TARGET_DIR/systemd-vm
rm -rf "$scratch"
mkdir -p "$scratch/bin"

# --- build on the host -------------------------------------------------------------------
cd "$repo"
log=$scratch/build.log
if ! cargo test -p berth-systemd --no-run --message-format=json 2>"$log" >"$log.json" ||
   ! cargo build -p berth-systemd --example scope_bench --message-format=json 2>>"$log" >>"$log.json"; then
  tail -n 40 "$log" >&2
  echo "systemd-vm-tests: build failed" >&2
  exit 2
fi
artifacts=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["src_path"], m["executable"])
' "$log.json")
exe() { # exe SOURCE-PATH (relative to the repo) -> its executable
  local e
  e=$(awk -v src="$repo/$1" '$1 == src { print $2; exit }' <<<"$artifacts")
  [ -n "$e" ] || { echo "systemd-vm-tests: no executable for $1" >&2; exit 2; }
  echo "$e"
}
unit_bin=$(exe crates/systemd/src/lib.rs)
int_bin=$(exe crates/systemd/tests/systemd.rs)
daemon_bin=$(exe crates/systemd/tests/dbus_daemon.rs)
bench_bin=$(exe crates/systemd/examples/scope_bench.rs)
echo "systemd-vm-tests: integration test binary: $int_bin"
# Executing from the 9p share is slow under emulation: the guest copies these to its tmpfs.
for b in "$unit_bin:unit" "$int_bin:integration" "$daemon_bin:dbus-daemon" "$bench_bin:scope-bench"; do
  strip --strip-debug -o "$scratch/bin/${b##*:}" "${b%:*}" 2>/dev/null || cp "${b%:*}" "$scratch/bin/${b##*:}"
done
built=$(date +%s)

# --- inside the VM (runs as the unit cg2vm.service) ---------------------------------------
q1() { printf '%q' "$1"; }
cat >"$scratch/run.sh" <<EOF
set -u
echo "systemd-vm-tests: kernel \$(uname -r), \$(systemctl --version | head -n 1), PID 1: \$(cat /proc/1/comm)"
bin=/tmp/systemd-vm-tests-bin
mkdir -p "\$bin" && cp $(q1 "$scratch/bin")/* "\$bin"/ || { echo "systemd-vm-tests: cannot stage the binaries" >&2; exit 3; }
cd /tmp
rc=0
set_rc() { [ "\$rc" != 0 ] || rc=\$1; }
run_set() { # NAME CMD...
  local name=\$1 t0 code; shift
  echo; echo "== \$name"
  t0=\$(date +%s)
  "\$@"; code=\$?
  echo "== \$name: exit \$code, \$((\$(date +%s) - t0)) s"
  [ "\$code" = 0 ] || set_rc "\$code"
}
export RUST_BACKTRACE=\${RUST_BACKTRACE:-1}
run_set "berth-systemd unit" "\$bin/unit" -q
run_set "berth-systemd client against a private dbus-daemon" env BERTH_REQUIRE_SYSTEMD=1 "\$bin/dbus-daemon" --test-threads=2
run_set "berth-systemd integration (BERTH_REQUIRE_SYSTEMD=1)" env BERTH_REQUIRE_SYSTEMD=1 "\$bin/integration" --test-threads=2
no_bus() {
  local out
  out=\$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/berth-no-bus/socket "\$bin/integration" --test-threads=1 --nocapture 2>&1) || { echo "\$out"; return 1; }
  echo "\$out" | grep 'skipped'
  [ "\$(echo "\$out" | grep -c 'skipped: no systemd bus: .*/run/berth-no-bus/socket')" = 4 ] ||
    { echo "expected 4 tests to skip naming /run/berth-no-bus/socket"; echo "\$out"; return 1; }
}
run_set "without a bus the tests skip, naming the socket" no_bus
run_set "cost of create+stop of a scope" "\$bin/scope-bench" $(q1 "$rounds")
left=\$(systemctl list-units --all --no-legend --plain 'berth-test-*' 'berth-bench-*' 2>/dev/null)
cgs=\$(find /sys/fs/cgroup -name 'berth-test-*' -o -name 'berth-bench-*' 2>/dev/null | head)
if [ -n "\$left\$cgs" ]; then echo "systemd-vm-tests: left behind: \$left \$cgs" >&2; set_rc 4; fi
exit \$rc
EOF

set +e
CG2VM_INIT=systemd CG2VM_TIMEOUT=${CG2VM_TIMEOUT:-900} "$vm" "$CARGO_TARGET_DIR" bash "$scratch/run.sh"
rc=$?
set -e
end=$(date +%s)
echo "systemd-vm-tests: exit $rc; build $((built - start)) s, VM boot + tests $((end - built)) s, total $((end - start)) s"
exit $rc
