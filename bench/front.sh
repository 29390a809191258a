#!/usr/bin/env bash
# front.sh — `berth` against podman on the same image, interleaved (root).
#   run:    berth run --rm --network none IMG true   vs  podman run --rm --network none IMG true
#   ps:     berth ps -a                               vs  podman ps -a   (with K stopped containers)
#   images: berth images                              vs  podman images
#   par:    PAR (16) `run -d --network none IMG sleep 60` at once, until every one has printed
#           its id; R rounds (10), berth and podman alternating, all removed between rounds
#           (untimed); medians of the rounds' wall times and their ratio
#   mem:    the memory of detached containers' monitors (and of conmons), MEMN ("1 4")
#           running at once
# Both import the same busybox rootfs tarball (scripts/busybox-rootfs.sh), each into its own
# temporary storage, so neither sees the host's images or containers.
# Knobs: N (rounds, default 30), WARMUP (3), K (containers for ps, 20), BERTH (binary),
#        PAR (16), R (10; 0 skips the parallel part), IMAGES (1; e.g. 200 images for `images`
#        to list), PODMAN=0 to time berth alone,
#        KEEP=1 to keep the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "front.sh: needs root" >&2; exit 1; }
N=${N:-30} WARMUP=${WARMUP:-3} K=${K:-20} PODMAN=${PODMAN:-1} PAR=${PAR:-16} R=${R:-10}
IMAGES=${IMAGES:-1}
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
# IMAGES-1 more images for `images` to list: each its own config (an ENV), one shared layer
for i in $(seq 2 "$IMAGES"); do
  "${B[@]}" import -c "ENV=BENCH_IMAGE=$i" "$W/rootfs.tar" "bench-image-$i" >/dev/null
  [ "$PODMAN" = 1 ] && "${P[@]}" import -q -c "ENV=BENCH_IMAGE=$i" "$W/rootfs.tar" "bench-image-$i" >/dev/null
done
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

# par_round NAME: starts PAR detached containers at once with NAME's command line; prints the
# wall time in ms once every `run -d` has returned, and fails unless each printed an id.
par_round() {
  local out=$W/par.out start end
  local -a cmd
  if [ "$1" = berth ]; then cmd=("${B[@]}" run -d --network none bench-busybox sleep 60)
  else cmd=("${P[@]}" run -d --network none localhost/bench-busybox sleep 60); fi
  : > "$out"
  start=$(date +%s%N)
  for _ in $(seq "$PAR"); do "${cmd[@]}" >> "$out" 2>/dev/null & done
  wait
  end=$(date +%s%N)
  [ "$(grep -c . "$out")" = "$PAR" ] || { echo "front.sh: $1: not every run -d printed an id" >&2; return 1; }
  echo $(( (end - start) / 1000000 ))
  if [ "$1" = berth ]; then "${B[@]}" rm -af >/dev/null; else "${P[@]}" rm -af -t 0 >/dev/null; fi
}
if [ "$R" -gt 0 ]; then
  "${B[@]}" rm -af >/dev/null
  [ "$PODMAN" = 1 ] && "${P[@]}" rm -af -t 0 >/dev/null
  kinds=(berth); [ "$PODMAN" = 1 ] && kinds+=(podman)
  declare -A par=()
  for r in $(seq 0 "$R"); do
    for k in "${kinds[@]}"; do
      t=$(par_round "$k")
      # round 0 warms up
      [ "$r" = 0 ] || par[$k]+="$t "
    done
  done
  python3 - "${par[berth]}" "${par[podman]:-}" "$PAR" "$R" <<'PY'
import statistics, sys
b = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
n, r = sys.argv[3], sys.argv[4]
print(f"\n{n} x run -d in parallel, {r} rounds (ms): median, min, max")
print(f"berth  {statistics.median(b):9.1f} {min(b):9.1f} {max(b):9.1f}")
if p:
    print(f"podman {statistics.median(p):9.1f} {min(p):9.1f} {max(p):9.1f}")
    print(f"ratio berth / podman: {statistics.median(b) / statistics.median(p):.3f}x")
PY
fi

# The memory of detached containers' monitors (and of podman's conmons for the same
# containers), for each count in MEMN: per monitor, the average of its private dirty and
# private clean pages and of its PSS (smaps_rollup). A lone monitor's clean private pages
# are berth's text; they become shared as soon as a second monitor runs.
mem_of() { # PID -> "private_dirty_kib private_clean_kib pss_kib"
  awk '/^Private_Dirty:/ {d=$2} /^Private_Clean:/ {c=$2} /^Pss:/ {p=$2} END {print d+0, c+0, p+0}' "/proc/$1/smaps_rollup"
}
parent_of() { awk '{print $4}' "/proc/$1/stat"; }
mem_avg() { # ENGINE-ARGV... -- IDS...: the averages over the containers' monitors
  local argv=() id pid
  while [ "$1" != -- ]; do argv+=("$1"); shift; done; shift
  for id in "$@"; do
    pid=$("${argv[@]}" inspect -f '{{.State.Pid}}' "$id")
    mem_of "$(parent_of "$pid")"
  done | awk '{d+=$1; c+=$2; p+=$3; n++} END {printf "private dirty %d, private clean %d, pss %d", d/n, c/n, p/n}'
}
echo
for count in ${MEMN:-1 4}; do
  ids=()
  for _ in $(seq "$count"); do ids+=("$("${B[@]}" run -d --network none bench-busybox sleep 60)"); done
  sleep 1
  printf 'monitor memory, %s running (KiB per monitor): berth %s' "$count" "$(mem_avg "${B[@]}" -- "${ids[@]}")"
  "${B[@]}" rm -f "${ids[@]}" >/dev/null
  if [ "$PODMAN" = 1 ]; then
    ids=()
    for _ in $(seq "$count"); do
      ids+=("$("${P[@]}" run -d --network none localhost/bench-busybox sleep 60)")
    done
    sleep 1
    printf '; conmon %s' "$(mem_avg "${P[@]}" -- "${ids[@]}")"
    "${P[@]}" rm -f -t 0 "${ids[@]}" >/dev/null
  fi
  echo
done
