#!/usr/bin/env bash
# network.sh — what a bridge network costs a container start (root).
#   berth run --rm IMG true                 (the default bridge: veth, lease, hosts, resolv.conf)
#   berth run --rm --network none IMG true  (loopback only)
#   berth run --rm -p 127.0.0.1::80 IMG true (the bridge plus one published port)
#   berth run --rm -p 80 IMG true            (a port on every address: also a [::1] relay)
#   podman run --rm IMG true                 (its default network: netavark)
#   podman run --rm --network none IMG true
# Rounds in shuffled order, each command 4 times in a row (bench/interleave.py --block),
# medians. Both tools import the same busybox rootfs tarball into their own
# temporary storage; berth's temp root gets its own nftables table and bridge, which this script
# takes down at the end (`network prune`), as podman's reset does its own.
# Containers get --dns 127.0.0.1: nothing is ever sent to the host's resolver.
# Knobs: N (rounds, default 10), WARMUP (1), BERTH (binary), PODMAN=0 for berth alone.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "network.sh: needs root" >&2; exit 1; }
N=${N:-10} WARMUP=${WARMUP:-1} PODMAN=${PODMAN:-1}
BERTH=${BERTH:-$PWD/target/release/berth}
[ -x "$BERTH" ] || cargo build --release -q -p berth
W=$(mktemp -d /tmp/berth-netbench.XXXXXX)
B=("$BERTH" --root "$W/berth/root" --runroot "$W/berth/run")
P=(podman --root "$W/podman/root" --runroot "$W/podman/run" --storage-driver overlay
  --cgroup-manager cgroupfs --events-backend none)
export CONTAINERS_CONF=$W/containers.conf
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
# no CAP_SYS_RESOURCE on this host: podman's default nofile=1048576 cannot be set
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
EOF
cleanup() {
  set +e
  "${B[@]}" rm -af >/dev/null 2>&1
  "${B[@]}" network prune -f >/dev/null 2>&1
  [ "$PODMAN" = 1 ] && { "${P[@]}" rm -af -t 0 >/dev/null 2>&1; "${P[@]}" system reset -f >/dev/null 2>&1; }
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

scripts/busybox-rootfs.sh "$W/rootfs"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
"${B[@]}" import "$W/rootfs.tar" bench-busybox >/dev/null
[ "$PODMAN" = 1 ] && "${P[@]}" import -q "$W/rootfs.tar" bench-busybox >/dev/null

img=bench-busybox dns="--dns 127.0.0.1"
cmds=("berth bridge=${B[*]} run --rm $dns $img true"
  "berth none=${B[*]} run --rm --network none $img true"
  "berth bridge -p=${B[*]} run --rm $dns -p 127.0.0.1::80 $img true"
  "berth bridge -p all=${B[*]} run --rm $dns -p 80 $img true")
[ "$PODMAN" = 1 ] && cmds+=("podman bridge=${P[*]} run --rm $dns localhost/$img true"
  "podman none=${P[*]} run --rm --network none localhost/$img true")
# In blocks: a container's network namespace is torn down by the kernel after it exits, and
# that deferred cost must land on the next run of the same kind, not on the next command.
python3 bench/interleave.py --n "$N" --warmup "$WARMUP" --block 4 \
  --diff "berth bridge:berth none" --diff "berth bridge -p:berth none" --diff "berth bridge -p all:berth bridge -p" \
  --diff "podman bridge:podman none" --ratio "berth bridge:podman bridge" "${cmds[@]}"
