#!/usr/bin/env bash
# network.sh — what a bridge network costs a container start (root).
#   berth run --rm IMG true                 (the default bridge: veth, lease, hosts, resolv.conf)
#   berth run --rm --network none IMG true  (loopback only)
#   berth run --rm -p 127.0.0.1::80 IMG true (the bridge plus one published port)
#   podman run --rm IMG true                 (its default network: netavark)
#   podman run --rm --network none IMG true
# Interleaved rounds, medians. Both tools import the same busybox rootfs tarball into their own
# temporary storage; berth's temp root gets its own nftables table and bridge, which this script
# takes down at the end (`network prune`), as podman's reset does its own.
# Containers get --dns 127.0.0.1: nothing is ever sent to the host's resolver.
# Knobs: N (rounds, default 30), WARMUP (3), BERTH (binary), PODMAN=0 for berth alone.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "network.sh: needs root" >&2; exit 1; }
N=${N:-30} WARMUP=${WARMUP:-3} PODMAN=${PODMAN:-1}
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

python3 - "$N" "$WARMUP" "$PODMAN" "${#B[@]}" "${B[@]}" "${P[@]}" <<'PY'
import os, random, statistics, subprocess, sys, time
n, warmup, podman, nb = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
berth, pod = sys.argv[5:5 + nb], sys.argv[5 + nb:]
dns = ["--dns", "127.0.0.1"]
cmds = {
    "berth bridge": berth + ["run", "--rm"] + dns + ["bench-busybox", "true"],
    "berth none": berth + ["run", "--rm", "--network", "none", "bench-busybox", "true"],
    "berth bridge -p": berth + ["run", "--rm"] + dns + ["-p", "127.0.0.1::80", "bench-busybox", "true"],
}
if podman:
    img = "localhost/bench-busybox"
    cmds["podman bridge"] = pod + ["run", "--rm"] + dns + [img, "true"]
    cmds["podman none"] = pod + ["run", "--rm", "--network", "none", img, "true"]
samples = {k: [] for k in cmds}
devnull = open(os.devnull, "wb")
for r in range(warmup + n):
    order = list(cmds)
    random.shuffle(order)
    for k in order:
        t = time.monotonic()
        rc = subprocess.call(cmds[k], stdout=devnull, stderr=devnull)
        dt = time.monotonic() - t
        if rc != 0:
            sys.exit(f"network.sh: {' '.join(cmds[k])} exited {rc}")
        if r >= warmup:
            samples[k].append(dt * 1000)
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]
med = {k: statistics.median(xs) for k, xs in samples.items()}
print(f"{'':20} {'median':>9} {'p10':>9} {'p90':>9}   (ms, N={n})")
for k, xs in samples.items():
    print(f"{k:20} {med[k]:9.1f} {q(xs, .1):9.1f} {q(xs, .9):9.1f}")
print(f"berth: the bridge adds {med['berth bridge'] - med['berth none']:.1f} ms "
      f"(+ a port: {med['berth bridge -p'] - med['berth none']:.1f} ms)")
if podman:
    print(f"podman: its network adds {med['podman bridge'] - med['podman none']:.1f} ms")
    print(f"ratio berth/podman, default network: {med['berth bridge'] / med['podman bridge']:.3f}x")
PY
