#!/usr/bin/env bash
# demo.sh — build berth and walk through the seed's workflow with it, on a busybox root
# filesystem this script assembles from the host's static busybox (no registry; containers are
# on a bridge of the demo's own and get --dns 127.0.0.1, so nothing is asked outside):
#   1. the rootfs as a tarball (what `docker export` writes), imported as an image
#   2. a container that reports what it sees: pid 1, its own hostname, lo and eth0, its own
#      mounts, a 64 MiB memory limit in its own cgroup
#   3. a container in the background: ps, logs, stop, rm
#   4. a memory hog under `-m 16m`, killed by the kernel, and berth saying so
# Everything lives in a temporary --root/--runroot that is removed at the end. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo $0)" >&2; exit 1; }
if ! [ -x /bin/busybox ]; then
  echo "demo: installing busybox-static" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >/dev/null
fi
cargo build --release -q -p berth
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
berth() { "$PWD/target/release/berth" --root "$work/root" --runroot "$work/run" "$@"; }
# The containers go, then the temp root's bridge and nftables table (network prune), then it.
trap 'berth rm -af >/dev/null 2>&1; berth network prune -f >/dev/null 2>&1; rm -rf "$work"' EXIT
show() { printf '\n$ berth %s\n' "$*"; berth "$@"; }

scripts/busybox-rootfs.sh "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
show import "$work/rootfs.tar" busybox
show images
show run --rm --hostname demo --dns 127.0.0.1 -m 64m busybox sh -c '
echo "hello from a Berth container"
echo "my pid: $$   hostname: $(hostname)"
echo "processes I can see:"; ps -o pid,comm | sed "s/^/  /"
echo "network interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\n" " ")"
echo "my memory limit: $(( $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) / 1048576 )) MiB"
echo "mounts:"; awk "{print \"  \" \$2 \" (\" \$3 \")\"}" /proc/mounts'
show run -d --name ticker busybox sh -c 'for i in 1 2 3; do echo tick $i; sleep 0.2; done; sleep 60'
sleep 1
show ps
show logs ticker
show stop -t 1 ticker
show ps -a
show rm ticker
set +e
show run --rm -m 16m busybox sh -c 'echo "filling memory..."; dd if=/dev/zero of=/dev/null bs=64M count=1'
echo "exit status: $?"
