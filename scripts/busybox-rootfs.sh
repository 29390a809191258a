#!/usr/bin/env bash
# busybox-rootfs.sh DIR — assemble a minimal root filesystem from the host's static busybox
# (Debian package busybox-static): /bin with one symlink per applet, /etc/passwd and group,
# and the empty directories a container mounts over. Used by the demo and the CI scripts.
set -euo pipefail
dir=${1:?usage: busybox-rootfs.sh DIR}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-rootfs: no static busybox (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$dir"/{bin,etc,proc,sys,dev,tmp,run,root}
cp "$busybox" "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
  [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:100:user:/tmp:/bin/sh\n' > "$dir/etc/passwd"
printf 'root:x:0:\nusers:x:100:\n' > "$dir/etc/group"
chmod 1777 "$dir/tmp"
