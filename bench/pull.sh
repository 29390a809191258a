#!/usr/bin/env bash
# pull.sh — `berth pull` vs `podman pull` vs `skopeo copy` (to a dir) of one multi-layer image
# from a docker-registry on 127.0.0.1, interleaved rounds, cold store each time, medians (root).
# The image is built here, offline: each layer is a gzip'd tar of a host directory (LAYERS),
# written as an OCI layout by hand and pushed with skopeo.
# Knobs: N (rounds, default 5), LAYERS (host dirs, one layer each), PORT (registry, 5055),
#        STORE_DIR (where the stores live; default a dir under /var/lib, i.e. the ext4 disk;
#        a tmpfs path compares filesystems), BERTH (binary), PODMAN=0 / SKOPEO=0 to skip one,
#        KEEP=1 to keep the temp dirs.
# Everything it starts (the registry) it stops by PID; every run's store is its own new dir,
# all removed at the end (N x 3 stores of the image's size on disk meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "pull.sh: needs root" >&2; exit 1; }
N=${N:-5} PORT=${PORT:-5055} PODMAN=${PODMAN:-1} SKOPEO=${SKOPEO:-1}
LAYERS=${LAYERS:-"/usr/include /usr/lib/gcc /usr/lib/python3.11 /usr/lib/python3 /etc"}
BERTH=${BERTH:-$PWD/target/release/berth}
[ -x "$BERTH" ] || cargo build --release -q -p berth
REG=127.0.0.1:$PORT
W=$(mktemp -d /tmp/berth-pull.XXXXXX)
S=$(mktemp -d "${STORE_DIR:-/var/lib}/berth-pull-stores.XXXXXX")
REG_PID=
cleanup() {
  set +e
  [ -n "$REG_PID" ] && { kill -TERM "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; }
  for d in "$W" "$S"; do
    grep " $d" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$W" "$S"
}
trap cleanup EXIT

# ---- the image: an OCI layout written by hand, one gzip'd layer per host dir ----
python3 - "$W/oci" $LAYERS <<'PY'
import hashlib, json, os, subprocess, sys
out, dirs = sys.argv[1], sys.argv[2:]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return d
layers, diffs = [], []
for src in dirs:
    tar = subprocess.run(["tar", "-C", "/", "--numeric-owner", "-cf", "-", src.lstrip("/")],
                         check=True, stdout=subprocess.PIPE).stdout
    gz = subprocess.run(["gzip", "-6", "-n"], input=tar, check=True, stdout=subprocess.PIPE).stdout
    diffs.append("sha256:" + hashlib.sha256(tar).hexdigest())
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": "sha256:" + put(gz), "size": len(gz)})
    print(f"layer {src}: {len(tar) >> 20} MiB tar, {len(gz) >> 20} MiB gzip", file=sys.stderr)
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {"Cmd": ["/bin/sh"]},
                     "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + put(config), "size": len(config)},
                       "layers": layers}).encode()
m = put(manifest)
json.dump({"schemaVersion": 2, "manifests": [{
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + m,
    "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
    open(os.path.join(out, "index.json"), "w"))
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

# ---- the registry ----
cat > "$W/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $W/registry}, delete: {enabled: true}}
http: {addr: $REG}
log: {level: error, accesslog: {disabled: true}}
EOF
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.05; done
skopeo copy -q --dest-tls-verify=false "oci:$W/oci:bench" "docker://$REG/bench/pull:latest"

# ---- podman's config: this host's limits, the registry as insecure ----
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_REGISTRIES_CONF=$W/registries.conf
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
# no CAP_SYS_RESOURCE on this host: podman's default nofile=1048576 cannot be set
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
EOF
cat > "$CONTAINERS_REGISTRIES_CONF" <<EOF
[[registry]]
location = "$REG"
insecure = true
EOF

python3 - "$N" "$PODMAN" "$SKOPEO" "$BERTH" "$REG" "$S" <<'PY'
import os, random, shutil, statistics, subprocess, sys, time
n, podman, skopeo, berth, reg, stores = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1", *sys.argv[4:]
ref = f"{reg}/bench/pull:latest"
def cmd(tool, d):
    if tool == "berth":
        return [berth, "--root", f"{d}/root", "--runroot", f"{d}/run", "pull", "-q", ref]
    if tool == "podman":
        return ["podman", "--root", f"{d}/root", "--runroot", f"{d}/run", "--storage-driver", "overlay",
                "--cgroup-manager", "cgroupfs", "--events-backend", "none", "pull", "-q", ref]
    return ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{d}/dir"]
def reset(tool, d):
    if tool == "podman" and os.path.isdir(f"{d}/root"):
        subprocess.run(["podman", "--root", f"{d}/root", "--runroot", f"{d}/run", "--storage-driver",
                        "overlay", "system", "reset", "-f"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    shutil.rmtree(d, ignore_errors=True)
tools = ["berth"] + (["podman"] if podman else []) + (["skopeo"] if skopeo else [])
samples = {t: [] for t in tools}
# Every run gets a new, empty store; all are removed only after the last run. Removing one
# between runs would time ext4's inode allocator instead of the tools: without a journal (this
# disk) it skips inodes freed in the last 60-300 s one by one on every create, which made the
# same pull take 2 s or 17 s depending on what was deleted just before.
done = []
for r in range(n):
    order = tools[:]
    random.shuffle(order)
    for tool in order:
        d = os.path.join(stores, f"{tool}-{r}")
        os.makedirs(d)
        # What the last run left dirty is flushed first, so no run pays for another's writeback.
        os.sync()
        t = time.perf_counter()
        subprocess.run(cmd(tool, d), check=True, stdout=subprocess.DEVNULL)
        samples[tool].append(time.perf_counter() - t)
        done.append((tool, d))
for tool, d in done:
    reset(tool, d)
for tool in tools:
    s = samples[tool]
    print(f"{tool:7} median {statistics.median(s):7.3f} s  min {min(s):7.3f}  max {max(s):7.3f}  (n={len(s)})")
if podman:
    print(f"ratio berth/podman {statistics.median(samples['berth']) / statistics.median(samples['podman']):.3f}x")
if skopeo:
    print(f"ratio berth/skopeo-dir {statistics.median(samples['berth']) / statistics.median(samples['skopeo']):.3f}x")
PY
