# Shared by bench/run.sh and bench/syscalls.sh (sourced, not run).

die() { echo "bench: $*" >&2; exit 2; }

# first line of `BIN --version`, without SIGPIPE trouble under pipefail
ver() { local v; v=$("$1" --version 2>/dev/null) || v=unknown; echo "${v%%$'\n'*}"; }

# mount points of the cgroup hierarchies (v1 controllers, name=systemd, unified/cgroup2)
cgroup_hierarchies() {
    awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $5 }' /proc/self/mountinfo
}

# make_bundle DIR CGROUPS_PATH: DIR/rootfs (busybox + applet symlinks) and DIR/config.json
# from `$RUNC spec`, with terminal=false, args ["/bin/true"] and the given cgroupsPath.
make_bundle() {
    local bundle=$1 cg=$2 rootfs=$1/rootfs a
    mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,tmp,root}
    cp "$BUSYBOX" "$rootfs/bin/busybox"
    for a in $("$BUSYBOX" --list); do
        [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
    "$RUNC" spec --bundle "$bundle"
    "$PY" - "$bundle/config.json" "$cg" <<'EOF'
import json, sys
path, cg = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = cg
json.dump(c, open(path, "w"), indent=2)
EOF
}

# common checks; sets PY
bench_checks() {
    PY=$(command -v /usr/bin/python3 || command -v python3 || true)
    [ "$(id -u)" = 0 ] || die "needs root (containers with cgroups)"
    local b
    for b in "$BERTH" "$RUNC"; do [ -x "$b" ] || die "not executable: $b"; done
    [ -x "$BUSYBOX" ] || die "no $BUSYBOX (apt-get install busybox-static)"
    if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is dynamically linked (want busybox-static)"; fi
    [ -n "$PY" ] || die "no python3"
    # `cargo build` makes a dynamically linked berth-runtime; the shipped one is `cargo build-runtime`'s
    if readelf -lW "$BERTH" 2>/dev/null | grep -q INTERP; then
        echo "bench: note: $BERTH is dynamically linked (not the shipped build: cargo build-runtime)" >&2
    fi
}

# cleanup_bench WORK CGTOP: force-delete what is left in WORK/state-{runc,berth}, kill what is
# left in our cgroups, unmount anything under WORK, remove our cgroup dirs, remove WORK
# (unless KEEP=1). Touches only cgroups named CGTOP, which this script created.
cleanup_bench() {
    local work=$1 cgtop=$2 rt bin st id h
    for rt in runc berth; do
        bin=$RUNC; [ $rt = berth ] && bin=$BERTH
        st=$work/state-$rt
        [ -d "$st" ] || continue
        for id in $(ls -A "$st" 2>/dev/null); do
            case $id in *:*) continue;; esac   # a runtime's own (seccomp:cache, spare:)
            echo "bench: cleanup: $rt container $id was left, delete --force" >&2
            "$bin" --root "$st" delete --force "$id" >/dev/null 2>&1
        done
    done
    local hiers
    mapfile -t hiers < <(cgroup_hierarchies)
    for h in "${hiers[@]}"; do
        [ -d "$h/$cgtop" ] || continue
        find "$h/$cgtop" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
    done
    awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do echo "bench: cleanup: unmount $m" >&2; umount -l "$m"; done
    for h in "${hiers[@]}"; do
        [ -d "$h/$cgtop" ] || continue
        for _ in 1 2 3 4 5; do
            find "$h/$cgtop" -depth -type d -exec rmdir {} + 2>/dev/null
            [ -d "$h/$cgtop" ] || break
            sleep 0.1
        done
        [ -d "$h/$cgtop" ] && echo "bench: could not remove $h/$cgtop" >&2
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
