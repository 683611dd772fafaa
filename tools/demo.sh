#!/usr/bin/env bash
# moat's main job, until the engine exists: build moat and run a hardened
# container with moat-runtime from a demo bundle made from Debian's
# busybox-static. No network is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

runtime=$PWD/build/src/runtime-cli/moat-runtime
work=$(mktemp -d /tmp/moat-demo.XXXXXX)
state=$work/state
id=moat-demo-$$
cleanup() {
        "$runtime" --root "$state" delete --force "$id" >/dev/null 2>&1 || true
        rm -rf "$work"
}
trap cleanup EXIT

# Root filesystem: busybox and one link per applet.
mkdir -p "$work/bundle/rootfs"/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$work/bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$work/bundle/rootfs/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/false' >> "$work/bundle/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/bundle/rootfs/etc/group"

# The hardened configuration: `spec --hardened` (new pid, net, ipc, uts,
# mount and cgroup namespaces; moat's default seccomp profile; masked and
# read-only /proc and /sys paths; read-only root; no_new_privs; a pids
# limit), here with every capability dropped and the program run as nobody.
"$runtime" spec --hardened --bundle "$work/bundle"
/usr/bin/python3 - "$work/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["user"] = {"uid": 65534, "gid": 65534}
c["process"]["capabilities"] = {k: [] for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
c["process"]["args"] = ["/bin/sh", "-c",
    "echo \"hello from a moat container: $(id)\"; "
    "echo \"hostname: $(hostname)\"; "
    "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp)' /proc/self/status; "
    "echo \"pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\"; "
    "echo \"processes visible: $(ls -d /proc/[0-9]* | wc -l)\"; "
    "unshare -U true 2>/dev/null && echo 'unshare allowed' || echo 'unshare refused by seccomp'; "
    "touch /probe 2>/dev/null && echo 'root is writable' || echo 'root is read-only'; "
    "cat /proc/kcore 2>/dev/null | wc -c | sed 's/^/bytes of \\/proc\\/kcore readable: /'"]
c["linux"]["cgroupsPath"] = "/moat-demo/" + "demo"
json.dump(c, open(path, "w"), indent=2)
PY

echo "+ moat-runtime run --bundle $work/bundle $id"
"$runtime" --root "$state" run --bundle "$work/bundle" "$id"
