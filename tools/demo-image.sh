#!/usr/bin/env bash
# Builds moat's demo image, demo:latest, from Debian's busybox-static and
# imports it into a running moat daemon (`moat import` through its API): a
# root filesystem with busybox and one link per applet, root and nobody in
# /etc/passwd, CMD ["/bin/sh"]. No network is needed.
#
#   tools/demo-image.sh HOST [REFERENCE]
#
# HOST is the daemon's socket (unix:///path/moat.sock); $MOAT names the
# moat binary (default: build/src/cli/moat). Prints the image ID.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
        echo "usage: $0 HOST [REFERENCE]" >&2
        exit 2
fi
host=$1
case $host in
unix://*) ;;
*) echo "$0: HOST must be a daemon socket, unix:///path (got \"$host\")" >&2; exit 2 ;;
esac
ref=${2:-demo:latest}
moat=${MOAT:-$(dirname "$0")/../build/src/cli/moat}
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
        echo "$0: $busybox is not busybox-static (apt-get install busybox-static)" >&2
        exit 1
fi

work=$(mktemp -d /tmp/moat-demo-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root,run,var}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"

tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf "$work/rootfs.tar" .
"$moat" -H "$host" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' "$work/rootfs.tar" "$ref"
