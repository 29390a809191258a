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
#   5. berth-runtime --systemd-cgroup (crates/runtime/tests/systemd_cgroup.rs, a skip fails):
#      the unit while the container runs and gone after delete, limits in `systemctl show` and
#      in the unit's cgroup, update, pause, ps, stats, kill --all, OOM, a killed create,
#      blkio throttles on a loop device (IO*Max= and io.max), the default device list as
#      DevicePolicy=strict + DeviceAllow= with /dev/null still usable next to our program
#   6. a set of tests/cgroups.rs with every runtime command given --systemd-cgroup
#      (BERTH_TEST_SYSTEMD_CGROUP=1)
#   7. podman with cgroup_manager = "systemd" and berth-runtime as its runtime: the container
#      is /machine.slice/libpod-<id>.scope with its limits in the unit, gone after rm
#   7b. containerd (ctr --runc-systemd-cgroup, the runc shim with berth-runtime as its binary)
#      and dockerd (native.cgroupdriver=systemd) on berth-runtime: each container is a scope
#      unit while it runs, gone after it is removed
#   8. berth: systemd is the default cgroup manager here (the container is berth-<id>.scope in
#      machine.slice, its limits in the unit, gone after rm); --cgroup-manager cgroupfs: /berth/<id>
#   9. the cost of create+start+delete of a `true` container with --systemd-cgroup and with
#      cgroupfs, berth-runtime (release build, when target/release/berth-runtime exists: test.sh's
#      clients stage builds it) and runc, interleaved (bench/interleave.py), BENCH-ROUNDS rounds
#  10. nothing left: no berth-test-* / berth-bench-* / libpod-* / berth-<id> unit, no such cgroup
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
   ! cargo build -p berth-systemd --example scope_bench --message-format=json 2>>"$log" >>"$log.json" ||
   ! cargo test -p berth-runtime --no-run --test systemd_cgroup --test cgroups --message-format=json 2>>"$log" >>"$log.json" ||
   ! cargo build -p berth 2>>"$log"; then
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
rt_systemd=$(exe crates/runtime/tests/systemd_cgroup.rs)
rt_cgroups=$(exe crates/runtime/tests/cgroups.rs)
runtime_bin=$CARGO_TARGET_DIR/debug/berth-runtime
[ -x "$runtime_bin" ] || { echo "systemd-vm-tests: $runtime_bin was not built" >&2; exit 2; }
echo "systemd-vm-tests: integration test binary: $int_bin"
# tests/cgroups.rs with the systemd driver: the tests whose containers take the default
# cgroupsPath (a cgroupfs path is no unit) and read the cgroup while a process holds it
# (systemd removes an emptied scope's cgroup at once: tests/systemd_cgroup.rs covers OOM).
cgroup_tests=(
  pids_limit_stops_a_fork_loop
  pause_freezes_and_resume_thaws
  limits_at_create_land_in_the_cgroup_files
  update_with_dockers_body_on_stdin
  update_with_runcs_flags
  rejected_updates_change_nothing
  devices_outside_the_allow_list_are_denied
  an_allow_rule_permits_a_device
  kill_all_kills_every_process_of_the_cgroup
  kill_all_kills_every_process_of_a_paused_container
  events_stats_has_runcs_shape
  events_ends_when_the_container_is_deleted
)
names=$("$rt_cgroups" --list --format terse 2>/dev/null | sed 's/: test$//')
for name in "${cgroup_tests[@]}"; do
  grep -qx -- "$name" <<<"$names" || { echo "systemd-vm-tests: no test $name in $rt_cgroups" >&2; exit 2; }
done
# podman's image: a busybox rootfs
mkdir -p "$scratch/rootfs/bin"
cp /bin/busybox "$scratch/rootfs/bin/"
for a in sh cat sleep true; do ln -s busybox "$scratch/rootfs/bin/$a"; done
tar -C "$scratch/rootfs" -cf "$scratch/rootfs.tar" .
# podman in the guest: podman.sh ROOTFS-TAR RUNTIME
cat >"$scratch/podman.sh" <<'EOF'
set -eu
tarball=$1 runtime=$2 w=/tmp/podman-sd
mkdir -p "$w"
cat >"$w/containers.conf" <<CONF
[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "systemd"
events_logger = "file"
events_logfile_path = "$w/events.log"
tmp_dir = "$w/tmp"
runtime = "berth"
runtime_supports_json = ["berth"]
[engine.runtimes]
berth = ["$runtime"]
CONF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$w" "$w" >"$w/storage.conf"
export CONTAINERS_CONF=$w/containers.conf CONTAINERS_STORAGE_CONF=$w/storage.conf
podman --version
podman import -q "$tarball" localhost/bb >/dev/null
line=$(podman run --rm --cgroupns=host localhost/bb cat /proc/self/cgroup)
echo "podman run --rm --cgroupns=host ... cat /proc/self/cgroup: $line"
echo "$line" | grep -Eqx '0::/machine\.slice/libpod-[0-9a-f]{64}\.scope' || { echo "not a libpod scope in machine.slice"; exit 1; }
id=$(podman run -d --name sd1 --memory 64m --pids-limit 40 --cgroupns=host localhost/bb sleep 1000)
unit=libpod-$id.scope
show=$(systemctl show "$unit" -p ActiveState -p MemoryMax -p TasksMax -p Delegate)
echo "$show" | tr '\n' ' '; echo
for want in ActiveState=active MemoryMax=67108864 TasksMax=40 Delegate=yes; do
  echo "$show" | grep -qx "$want" || { echo "$unit: no $want"; exit 1; }
done
[ "$(cat "/sys/fs/cgroup/machine.slice/$unit/memory.max")" = 67108864 ] || { echo "memory.max of $unit"; exit 1; }
podman exec sd1 cat /proc/self/cgroup | grep -qx "0::/machine.slice/$unit" || { echo "podman exec is not in $unit"; exit 1; }
podman update --memory 128m sd1 >/dev/null
systemctl show "$unit" -p MemoryMax | grep -qx MemoryMax=134217728 || { echo "podman update did not reach $unit"; exit 1; }
[ "$(cat "/sys/fs/cgroup/machine.slice/$unit/memory.max")" = 134217728 ] || { echo "memory.max of $unit after update"; exit 1; }
podman pause sd1 >/dev/null
[ "$(podman inspect -f '{{.State.Status}}' sd1)" = paused ] || { echo "podman pause"; exit 1; }
podman unpause sd1 >/dev/null
podman rm -f -t 0 sd1 >/dev/null
for _ in $(seq 100); do systemctl show "$unit" -p LoadState | grep -qx LoadState=not-found && break; sleep 0.1; done
systemctl show "$unit" -p LoadState | grep -qx LoadState=not-found || { echo "$unit is left after podman rm"; exit 1; }
podman rmi -af >/dev/null 2>&1 || true
echo "podman (cgroup_manager=systemd) on berth-runtime: run, limits, exec, update, pause, rm: ok"
EOF
# containerd and dockerd in the guest: engines.sh ROOTFS-DIR ROOTFS-TAR RUNTIME
cat >"$scratch/engines.sh" <<'EOF'
set -u
rootfs=$1 tarball=$2 runtime=$3 w=/tmp/engines-sd pids=()
mkdir -p "$w"
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait' EXIT
scope_of() { # PID -> the unit of its cgroup (a .scope), checked active
  local cg unit
  cg=$(cat "/proc/$1/cgroup") && unit=${cg##*/}
  case $unit in *.scope) ;; *) echo "not in a scope: $cg" >&2; return 1;; esac
  systemctl show "$unit" -p ActiveState | grep -qx ActiveState=active || { echo "$unit is not active" >&2; return 1; }
  echo "$unit"
}
gone() { # UNIT
  for _ in $(seq 100); do systemctl show "$1" -p LoadState | grep -qx LoadState=not-found && return 0; sleep 0.1; done
  echo "$1 is left" >&2; return 1
}
up() { for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not up: $*" >&2; return 1; }

cat >"$w/containerd.toml" <<CONF
version = 2
root = "$w/ctrd/root"
state = "$w/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$w/ctrd/containerd.sock"
[ttrpc]
  address = "$w/ctrd/containerd.sock.ttrpc"
CONF
containerd --config "$w/containerd.toml" >"$w/containerd.log" 2>&1 & pids+=($!)
C="ctr -a $w/ctrd/containerd.sock -n sd"
up $C version || exit 1
$C run -d --runc-binary "$runtime" --runc-systemd-cgroup --cgroup system.slice:ctr:c1 --runc-root "$w/ctrd/runc" --rootfs "$rootfs" c1 /bin/sleep 1000 >/dev/null || exit 1
pid=$($C task ls | awk '$1 == "c1" { print $2 }')
unit=$(scope_of "$pid") || exit 1
[ "$unit" = ctr-c1.scope ] || { echo "containerd's container is $unit"; exit 1; }
echo "containerd (ctr --runc-systemd-cgroup): c1 in $(cat "/proc/$pid/cgroup")"
$C task kill -s SIGKILL c1
for _ in $(seq 100); do $C task ls | grep -q 'c1.*STOPPED' && break; sleep 0.1; done
$C task delete c1 >/dev/null && $C container delete c1 || exit 1
gone "$unit" || exit 1
echo "containerd (runc shim, SystemdCgroup, berth-runtime): run, unit, delete: ok"

cat >"$w/daemon.json" <<CONF
{ "bridge": "none", "iptables": false, "ip6tables": false, "ip-forward": false, "ip-masq": false,
  "storage-driver": "overlay2", "data-root": "$w/docker/data", "exec-root": "$w/docker/exec",
  "pidfile": "$w/docker/dockerd.pid", "hosts": ["unix://$w/docker/docker.sock"],
  "exec-opts": ["native.cgroupdriver=systemd"],
  "runtimes": { "berth": { "path": "$runtime" } }, "default-runtime": "berth" }
CONF
dockerd --config-file "$w/daemon.json" >"$w/dockerd.log" 2>&1 & pids+=($!)
D="docker -H unix://$w/docker/docker.sock"
up $D version || { tail -20 "$w/dockerd.log"; exit 1; }
$D import "$tarball" bb >/dev/null || exit 1
id=$($D run -d --network none --cgroupns host --security-opt apparmor=unconfined --memory 64m bb sleep 1000) || exit 1
pid=$($D inspect -f '{{.State.Pid}}' "$id")
unit=$(scope_of "$pid") || exit 1
[ "$unit" = "docker-$id.scope" ] || { echo "docker's container is $unit"; exit 1; }
systemctl show "$unit" -p MemoryMax | grep -qx MemoryMax=67108864 || { echo "$unit: no MemoryMax=67108864"; exit 1; }
echo "dockerd (native.cgroupdriver=systemd): $(cat "/proc/$pid/cgroup"), MemoryMax=67108864"
$D rm -f "$id" >/dev/null || exit 1
gone "$unit" || exit 1
echo "dockerd (native.cgroupdriver=systemd, berth-runtime): run, unit, limit, rm: ok"
EOF
# berth in the guest: berth.sh ROOTFS-TAR BERTH
cat >"$scratch/berth.sh" <<'EOF'
set -eu
tarball=$1 berth=$2 w=/tmp/berth-sd
# The guest's 6.1 kernel refuses overlay's lowerdir+ with EOPNOTSUPP, which berth-image does
# not take for "unsupported": mount(2) it is.
export BERTH_ROOT=$w/root BERTH_RUNROOT=$w/run BERTH_DEFAULT_NETWORK=none BERTH_OVERLAY_LEGACY=1
b() { "$berth" "$@"; }
b import -q "$tarball" bb >/dev/null
id=$(b run -d --memory 64m --pids-limit 40 bb sleep 1000)
unit=berth-$id.scope
show=$(systemctl show "$unit" -p ActiveState -p MemoryMax -p TasksMax -p Delegate -p Slice)
echo "$show" | tr '\n' ' '; echo
for want in ActiveState=active MemoryMax=67108864 TasksMax=40 Delegate=yes Slice=machine.slice; do
  echo "$show" | grep -qx "$want" || { echo "$unit: no $want"; exit 1; }
done
pid=$(b inspect -f '{{.State.Pid}}' "$id")
grep -qx "0::/machine.slice/$unit" "/proc/$pid/cgroup" || { echo "the container is not in $unit: $(cat "/proc/$pid/cgroup")"; exit 1; }
b update --memory 128m "$id" >/dev/null
systemctl show "$unit" -p MemoryMax | grep -qx MemoryMax=134217728 || { echo "berth update did not reach $unit"; exit 1; }
b pause "$id" >/dev/null && b unpause "$id" >/dev/null
b stats --no-stream "$id" >/dev/null
b rm -f "$id" >/dev/null
for _ in $(seq 100); do systemctl show "$unit" -p LoadState | grep -qx LoadState=not-found && break; sleep 0.1; done
systemctl show "$unit" -p LoadState | grep -qx LoadState=not-found || { echo "$unit is left after berth rm"; exit 1; }
echo "berth (default manager systemd): run -d, limits in $unit, update, pause, stats, rm: ok"
id=$(b --cgroup-manager cgroupfs run -d bb sleep 1000)
pid=$(b inspect -f '{{.State.Pid}}' "$id")
grep -qx "0::/berth/$id" "/proc/$pid/cgroup" || { echo "--cgroup-manager cgroupfs: $(cat "/proc/$pid/cgroup")"; exit 1; }
b rm -f "$id" >/dev/null
echo "berth --cgroup-manager cgroupfs: /berth/<id>: ok"
b rmi -f bb >/dev/null 2>&1 || true
rmdir /sys/fs/cgroup/berth 2>/dev/null || true
EOF
# The bench's bundles (one per cgroupsPath form) and its cycle: cycle.sh RUNTIME BUNDLE [FLAG]
for kind in systemd cgroupfs; do
  mkdir -p "$scratch/bench-$kind/rootfs/bin"
  cp /bin/busybox "$scratch/bench-$kind/rootfs/bin/" && ln -s busybox "$scratch/bench-$kind/rootfs/bin/true"
  case $kind in systemd) cg='machine.slice:bench:cycle';; cgroupfs) cg='/bench/cycle';; esac
  python3 - "$scratch/bench-$kind/config.json" "$cg" <<'PY'
import json, subprocess, sys, tempfile, os
d = tempfile.mkdtemp()
subprocess.run(["runc", "spec", "--bundle", d], check=True)
c = json.load(open(os.path.join(d, "config.json")))
c["process"].update(terminal=False, args=["/bin/true"])
c["root"]["readonly"] = True
c["linux"]["cgroupsPath"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"))
PY
done
cat >"$scratch/cycle.sh" <<'EOF'
#!/bin/sh
# create + start + delete of container "cycle" (its process is true): RUNTIME BUNDLE [FLAG]
rt=$1 bundle=$2; shift 2
root=/tmp/bench-root-${rt##*/}
"$rt" --root "$root" "$@" create --bundle "$bundle" cycle && "$rt" --root "$root" "$@" start cycle &&
  "$rt" --root "$root" "$@" delete --force cycle
EOF
chmod +x "$scratch/cycle.sh"
cp "$repo/bench/interleave.py" "$scratch/bin/"
release_bin=$CARGO_TARGET_DIR/release/berth-runtime
# Executing from the 9p share is slow under emulation: the guest copies these to its tmpfs
# (and bind-mounts the runtime over its path, which the test binaries have baked in).
[ -x "$release_bin" ] && strip -o "$scratch/bin/berth-runtime-release" "$release_bin"
for b in "$unit_bin:unit" "$int_bin:integration" "$daemon_bin:dbus-daemon" "$bench_bin:scope-bench" \
         "$rt_systemd:runtime-systemd" "$rt_cgroups:runtime-cgroups" "$runtime_bin:berth-runtime" \
         "$CARGO_TARGET_DIR/debug/berth:berth"; do
  strip --strip-debug -o "$scratch/bin/${b##*:}" "${b%:*}" 2>/dev/null || cp "${b%:*}" "$scratch/bin/${b##*:}"
done
built=$(date +%s)

# --- inside the VM (runs as the unit cg2vm.service) ---------------------------------------
q() { printf '%q ' "$@"; }
q1() { printf '%q' "$1"; }
cat >"$scratch/run.sh" <<EOF
set -u
echo "systemd-vm-tests: kernel \$(uname -r), \$(systemctl --version | head -n 1), PID 1: \$(cat /proc/1/comm)"
bin=/tmp/systemd-vm-tests-bin
mkdir -p "\$bin" && cp $(q1 "$scratch/bin")/* "\$bin"/ && mount --bind "\$bin/berth-runtime" $(q1 "$runtime_bin") ||
  { echo "systemd-vm-tests: cannot stage the binaries" >&2; exit 3; }
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
run_set "berth-runtime --systemd-cgroup" env BERTH_REQUIRE_SYSTEMD=1 BERTH_REQUIRE_ROOT=1 "\$bin/runtime-systemd" --test-threads=2
run_set "berth-runtime cgroups with the systemd driver" env BERTH_TEST_SYSTEMD_CGROUP=1 BERTH_REQUIRE_ROOT=1 \
  "\$bin/runtime-cgroups" --test-threads=2 --exact $(q "${cgroup_tests[@]}")
run_set "podman (cgroup_manager=systemd) on berth-runtime" bash $(q1 "$scratch/podman.sh") $(q1 "$scratch/rootfs.tar") \$bin/berth-runtime
run_set "containerd and dockerd (systemd cgroups) on berth-runtime" bash $(q1 "$scratch/engines.sh") $(q1 "$scratch/rootfs") $(q1 "$scratch/rootfs.tar") \$bin/berth-runtime
run_set "berth --cgroup-manager" bash $(q1 "$scratch/berth.sh") $(q1 "$scratch/rootfs.tar") \$bin/berth
bench_cycle() {
  local c=\$bin/cycle.sh b=/tmp/bench rt=\$bin/berth-runtime-release
  [ -x "\$rt" ] || { echo "no release build of berth-runtime (cargo build --release -p berth-runtime): skipped"; return 0; }
  cp -r $(q1 "$scratch/bench-systemd") $(q1 "$scratch/bench-cgroupfs") /tmp/ && cp $(q1 "$scratch/cycle.sh") "\$bin/" || return 3
  python3 "\$bin/interleave.py" --n $(q1 "$rounds") --warmup 2 \\
    "berth-systemd=\$c \$rt \${b}-systemd --systemd-cgroup" "berth-cgroupfs=\$c \$rt \${b}-cgroupfs" \\
    "runc-systemd=\$c /usr/sbin/runc \${b}-systemd --systemd-cgroup" "runc-cgroupfs=\$c /usr/sbin/runc \${b}-cgroupfs" \\
    --diff berth-systemd:berth-cgroupfs --diff runc-systemd:runc-cgroupfs --ratio berth-systemd:runc-systemd
  rmdir /sys/fs/cgroup/bench 2>/dev/null
  return 0
}
run_set "create+start+delete: --systemd-cgroup vs cgroupfs, berth-runtime and runc" bench_cycle
left=\$(systemctl list-units --all --no-legend --plain '*berth-test-*' 'berth-*.scope' 'libpod-*' 'bench-*' 'docker-*.scope' 'ctr-*.scope' 2>/dev/null)
cgs=\$(find /sys/fs/cgroup -name '*berth-test-*' -o -name 'berth-bench-*' -o -name 'libpod-*' 2>/dev/null | head)
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
