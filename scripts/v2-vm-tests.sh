#!/usr/bin/env bash
# v2-vm-tests.sh — the runtime's focused cgroup v2 test set, in a throw-away VM booted in
# cgroup-v2-only mode (../shared/vm/run-in-cgroup2-vm.sh: Debian's 6.1 kernel,
# cgroup_no_v1=all, every controller on /sys/fs/cgroup), in one boot:
#   1. berth-cgroups' unit and integration tests (the set of crates/cgroups/tests/v2-in-vm.sh)
#   2. berth-runtime's integration tests of create/limits/stats/freeze/kill/OOM/delete
#      (tests/cgroups.rs, tests/lifecycle.rs) and a few namespace tests (tests/namespaces.rs)
#   3. rootless berth's memory limit in a subtree delegated to a user made in the guest
#      (crates/berth/tests/rootless.rs)
# The tests read the layout they find, so the binaries that check v1/hybrid on the host
# check v2 here. redis (tests/oom_redis.rs) is too slow under emulation; tests/cgroups.rs's
# memory hog covers OOM reporting in the VM.
#
# The test binaries are built on the host. Cargo bakes the runtime's path into them
# (CARGO_BIN_EXE_berth-runtime, absolute), and the VM shares one directory at the same
# path, so the shared directory is CARGO_TARGET_DIR itself: the binaries run in place.
# The guest sees the host's /usr read-only, which gives the tests /bin/busybox.
#
# usage: scripts/v2-vm-tests.sh [EXTRA-TEST-NAME...]   (extra names of tests/cgroups.rs)
# env:   CARGO_TARGET_DIR (default <repo>/target), CG2VM_SCRIPT (the VM script), CG2VM_*
# Prints the wall time of the build, the VM run and each set, and the total.
set -euo pipefail

start=$(date +%s)
repo=$(cd "$(dirname "$0")/.." && pwd -P)
vm=${CG2VM_SCRIPT:-$repo/../shared/vm/run-in-cgroup2-vm.sh}
[ -x "$vm" ] || { echo "v2-vm-tests: VM script not found at $vm (set CG2VM_SCRIPT)" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR=$(realpath "$CARGO_TARGET_DIR")
case $CARGO_TARGET_DIR in
  /|/usr|/usr/*|/etc|/etc/*) echo "v2-vm-tests: CARGO_TARGET_DIR=$CARGO_TARGET_DIR cannot be shared with the VM" >&2; exit 2;;
esac
scratch=$CARGO_TARGET_DIR/v2vm
rm -rf "$scratch"
mkdir -p "$scratch"

# The focused set. Every name must exist (checked below: --exact would silently run nothing
# for a renamed test). The CPU quota test runs alone: its measurement needs the vCPUs to itself.
cpu_tests=(
  cpu_quota_limits_a_busy_loop_to_a_fifth_of_a_cpu
)
cgroup_tests=(
  pids_limit_stops_a_fork_loop
  pause_freezes_and_resume_thaws
  limits_at_create_land_in_the_cgroup_files
  update_with_dockers_body_on_stdin
  update_with_podmans_resources_file
  update_with_runcs_flags
  rejected_updates_change_nothing
  cgroups_path_of_podman
  cgroups_path_relative
  a_parent_pids_limit_bounds_the_container
  devices_outside_the_allow_list_are_denied
  an_allow_rule_permits_a_device
  kill_all_kills_every_process_of_the_cgroup
  events_stats_has_runcs_shape
  oom_kill_of_a_memory_hog_is_reported
  run_says_when_the_kernels_oom_killer_killed_the_process
  state_and_delete_tell_of_oom_kills
  kernel_tcp_memory_is_limited_on_v1_and_refused_on_v2
  hugepage_limits_land_in_the_hugetlb_controller
  bad_resources_fail_create_naming_the_field
  events_ends_when_the_container_is_deleted
  "$@"
)
lifecycle_tests=(
  create_start_kill_delete
  run_exits_with_the_container_status
  run_returns_128_plus_signal_when_the_container_is_killed
  kill_all_signals_every_process_of_the_container
  kill_all_reaches_processes_left_after_the_init_exited
  delete_kills_what_is_left_of_a_container_without_pid_namespace
  delete_force_removes_created_and_running_containers
)
rootless_tests=(
  a_users_memory_limit_needs_a_delegated_cgroup_v2_subtree
)
namespace_tests=(
  new_namespaces_are_new_and_others_are_shared
  pid_namespace_shows_only_the_container
  cgroup_namespace_root_is_the_container_cgroup
)

# --- build on the host; the JSON messages name each test executable ----------------------
cd "$repo"
build() { # build LOG CARGO-ARGS...  -> "source-path executable" lines
  local log=$1; shift
  if ! cargo test "$@" --no-run --message-format=json 2>"$log" > "$log.json"; then
    tail -n 40 "$log" >&2
    echo "v2-vm-tests: build failed (cargo test $* --no-run)" >&2
    exit 2
  fi
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["src_path"], m["executable"])
' "$log.json"
}
artifacts=$(build "$scratch/build-cgroups.log" -p berth-cgroups; build "$scratch/build-runtime.log" -p berth-runtime
  build "$scratch/build-berth.log" -p berth --test rootless)
exe() { # exe SOURCE-PATH (relative to the repo) -> its test executable
  local e
  e=$(awk -v src="$repo/$1" '$1 == src { print $2; exit }' <<<"$artifacts")
  [ -n "$e" ] || { echo "v2-vm-tests: no test executable for $1" >&2; exit 2; }
  echo "$e"
}
cg_unit=$(exe crates/cgroups/src/lib.rs)
cg_int=$(exe crates/cgroups/tests/cgroups.rs)
rt_cgroups=$(exe crates/runtime/tests/cgroups.rs)
rt_lifecycle=$(exe crates/runtime/tests/lifecycle.rs)
rt_namespaces=$(exe crates/runtime/tests/namespaces.rs)
berth_rootless=$(exe crates/berth/tests/rootless.rs)
runtime_bin=$CARGO_TARGET_DIR/debug/berth-runtime
[ -x "$runtime_bin" ] || { echo "v2-vm-tests: $runtime_bin was not built" >&2; exit 2; }
# Every selected name must exist: --exact would silently run nothing for a renamed test.
check_names() { # check_names EXE NAMES...
  local bin=$1 name list; shift
  list=$("$bin" --list --format terse 2>/dev/null | sed 's/: test$//')
  for name in "$@"; do
    grep -qx -- "$name" <<<"$list" || { echo "v2-vm-tests: no test $name in $bin" >&2; exit 2; }
  done
}
check_names "$rt_cgroups" "${cpu_tests[@]}" "${cgroup_tests[@]}"
check_names "$rt_lifecycle" "${lifecycle_tests[@]}"
check_names "$rt_namespaces" "${namespace_tests[@]}"
check_names "$berth_rootless" "${rootless_tests[@]}"
# Executing from the 9p share costs a second or two per exec under emulation (the runtime
# runs a few times per test): stage copies without debug info, which the guest puts on its
# tmpfs and bind-mounts over the runtime's path (only in the guest's mount namespace), and
# runs the test binaries from there.
mkdir -p "$scratch/bin"
stage() { # stage SRC NAME
  strip --strip-debug -o "$scratch/bin/$2" "$1" 2>/dev/null || cp "$1" "$scratch/bin/$2"
}
stage "$runtime_bin" berth-runtime
stage "$cg_unit" cgroups-unit
stage "$cg_int" cgroups-integration
stage "$rt_cgroups" runtime-cgroups
stage "$rt_lifecycle" runtime-lifecycle
stage "$rt_namespaces" runtime-namespaces
stage "$berth_rootless" berth-rootless
built=$(date +%s)

# --- inside the VM -------------------------------------------------------------------------
q() { printf '%q ' "$@"; }   # words, for argument lists
q1() { printf '%q' "$1"; }   # one word, to be joined with more text
cat > "$scratch/run.sh" <<EOF
set -u
cd $(q1 "$scratch")
echo "v2-vm-tests: kernel \$(uname -r); controllers: \$(cat /sys/fs/cgroup/cgroup.controllers)"
if grep -q ' - cgroup ' /proc/self/mountinfo; then
  echo "v2-vm-tests: v1 hierarchies are mounted, not a v2-only guest" >&2; exit 3
fi
[ -x /bin/busybox ] || { echo "v2-vm-tests: /bin/busybox missing in the guest" >&2; exit 3; }
bin=/tmp/v2-vm-tests-bin
mkdir -p "\$bin" && cp $(q1 "$scratch/bin")/* "\$bin"/ && mount --bind "\$bin/berth-runtime" $(q1 "$runtime_bin") ||
  { echo "v2-vm-tests: cannot stage the binaries on the guest's tmpfs" >&2; exit 3; }
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
run_set "berth-cgroups unit" "\$bin/cgroups-unit" --test-threads=2 -q
run_set "berth-cgroups integration" "\$bin/cgroups-integration" --test-threads=2
run_set "berth-runtime cgroups: CPU quota (alone)" "\$bin/runtime-cgroups" --test-threads=1 --exact $(q "${cpu_tests[@]}")
run_set "berth-runtime cgroups" "\$bin/runtime-cgroups" --test-threads=2 --exact $(q "${cgroup_tests[@]}")
run_set "berth-runtime lifecycle" "\$bin/runtime-lifecycle" --test-threads=2 --exact $(q "${lifecycle_tests[@]}")
run_set "berth-runtime namespaces" "\$bin/runtime-namespaces" --test-threads=2 --exact $(q "${namespace_tests[@]}")
run_set "berth rootless (a user's delegated subtree)" "\$bin/berth-rootless" --test-threads=1 --exact $(q "${rootless_tests[@]}")
# Nothing may be left behind.
left=\$(find /sys/fs/cgroup -name 'berth-test-*' -o -name 'berth-rl-*' 2>/dev/null | head)
if [ -n "\$left" ]; then echo "v2-vm-tests: cgroups left behind: \$left" >&2; set_rc 4; fi
exit \$rc
EOF

set +e
CG2VM_TIMEOUT=${CG2VM_TIMEOUT:-900} "$vm" "$CARGO_TARGET_DIR" bash "$scratch/run.sh"
rc=$?
set -e
end=$(date +%s)
echo "v2-vm-tests: exit $rc; build $((built - start)) s, VM boot + tests $((end - built)) s, total $((end - start)) s"
exit $rc
