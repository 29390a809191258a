#!/usr/bin/env bash
# front.sh — `berth` against podman on the same image, interleaved (root).
#   run:    berth run --rm --network none IMG true   vs  podman run --rm --network none IMG true
#   ps:     berth ps -a                               vs  podman ps -a   (with K stopped containers)
#   images: berth images                              vs  podman images
# Both import the same busybox rootfs tarball (scripts/busybox-rootfs.sh), each into its own
# temporary storage, so neither sees the host's images or containers.
# Knobs: N (rounds, default 30), WARMUP (3), K (containers for ps, 20), BERTH (binary),
#        PODMAN=0 to time berth alone, KEEP=1 to keep the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "front.sh: needs root" >&2; exit 1; }
N=${N:-30} WARMUP=${WARMUP:-3} K=${K:-20} PODMAN=${PODMAN:-1}
BERTH=${BERTH:-$PWD/target/release/berth}
[ -x "$BERTH" ] || cargo build --release -q -p berth
W=$(mktemp -d /tmp/berth-front.XXXXXX)
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
  [ "$PODMAN" = 1 ] && { "${P[@]}" rm -af -t 0 >/dev/null 2>&1; "${P[@]}" system reset -f >/dev/null 2>&1; }
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  [ "${KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT

scripts/busybox-rootfs.sh "$W/rootfs"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
"${B[@]}" import "$W/rootfs.tar" bench-busybox >/dev/null
[ "$PODMAN" = 1 ] && "${P[@]}" import -q "$W/rootfs.tar" bench-busybox >/dev/null
for i in $(seq 1 "$K"); do
  "${B[@]}" run --network none --name "ps$i" bench-busybox true >/dev/null
  [ "$PODMAN" = 1 ] && "${P[@]}" run --network none --name "ps$i" localhost/bench-busybox true >/dev/null
done

cmds=("berth run --rm=${B[*]} run --rm --network none bench-busybox true"
  "berth ps -a=${B[*]} ps -a" "berth images=${B[*]} images")
[ "$PODMAN" = 1 ] && cmds+=("podman run --rm=${P[*]} run --rm --network none localhost/bench-busybox true"
  "podman ps -a=${P[*]} ps -a" "podman images=${P[*]} images")
python3 bench/interleave.py --n "$N" --warmup "$WARMUP" \
  --ratio "berth run --rm:podman run --rm" --ratio "berth ps -a:podman ps -a" \
  --ratio "berth images:podman images" "${cmds[@]}"
