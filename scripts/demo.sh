#!/usr/bin/env bash
# demo.sh — build berth-runtime and run a demo container on a busybox root filesystem that
# this script assembles itself. Shows what the container sees: it is pid 1, has its own
# hostname, only a loopback interface, its own mounts, and its own cgroup with a memory limit.
# Needs root (containers are made of namespaces and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (sudo $0)" >&2; exit 1; }
if ! [ -x /bin/busybox ]; then
  echo "demo: installing busybox-static" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >/dev/null
fi
cargo build --release -q -p berth-runtime
rt=$PWD/target/release/berth-runtime
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
id=berth-demo-$$
trap '"$rt" --root "$work/state" delete --force "$id" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
scripts/busybox-rootfs.sh "$work/bundle/rootfs"
"$rt" spec --bundle "$work/bundle"
# The default config asks for a terminal and runs sh; make it a batch job that reports what
# it sees, with a 64 MiB memory limit and its own tmpfs on /tmp.
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", """
echo "hello from a Berth container"
echo "my pid: $$   hostname: $(hostname)"
echo "processes I can see:"; ps -o pid,comm | sed 's/^/  /'
echo "network interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' ')"
echo "my cgroup memory limit: $(( $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) / 1048576 )) MiB"
echo "mounts:"; awk '{print "  " $2 " (" $3 ")"}' /proc/mounts
"""]
c["linux"]["resources"]["memory"] = {"limit": 64 << 20}
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]})
json.dump(c, open(path, "w"), indent=2)
PY
echo "host: $(hostname), running berth-runtime run $id ..."
"$rt" --root "$work/state" run --bundle "$work/bundle" "$id"
echo "container exited with status $?; nothing is left behind: $(ls "$work/state" | grep -c "$id" || true) state entries"
