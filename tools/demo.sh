#!/usr/bin/env bash
# moat's main job: build moat, start `moat daemon` on a private socket and
# data root, give it a demo image made from Debian's busybox-static
# (tools/demo-image.sh) and `moat run` a container from it. The container
# gets moat's defaults: a seccomp filter, no_new_privs, docker's reduced
# capability set, its own namespaces, no network. Nothing is pulled; the
# daemon, its containers and its files are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null

moat=$PWD/build/src/cli/moat
work=$(mktemp -d /tmp/moat-demo.XXXXXX)
host=unix://$work/moat.sock
daemon_pid=
cleanup() {
        if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
                ids=$("$moat" -H "$host" ps -aq 2>/dev/null || true)
                [ -z "$ids" ] || "$moat" -H "$host" rm -f $ids >/dev/null 2>&1 || true
                kill -TERM "$daemon_pid" 2>/dev/null || true
                wait "$daemon_pid" 2>/dev/null || true
        fi
        rm -rf "$work"
}
trap cleanup EXIT

# A private daemon: its own socket, data root, exec root and pid file, so
# that nothing on the machine (a /run/moat.sock in use) is touched.
echo '{}' > "$work/daemon.json"
"$moat" daemon -H "$host" --data-root "$work/data" --exec-root "$work/exec" -p "$work/moat.pid" \
        -G root --config-file "$work/daemon.json" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do
        "$moat" -H "$host" version >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 1; }
        sleep 0.1
done

# The demo image, imported through the daemon's API.
MOAT=$moat bash tools/demo-image.sh "$host" demo:latest >/dev/null

cmd='id; cat /proc/self/status | grep -E "CapEff|NoNewPrivs|Seccomp"; echo hello from moat'
echo "+ moat run --rm demo:latest sh -c '$cmd'"
"$moat" -H "$host" run --rm demo:latest sh -c "$cmd"
