#!/bin/sh
# cgroup-hybrid.sh up|down|status [OWNER_PID]
#
# This host runs the cgroup v1 "hybrid" layout with one twist: every
# controller has a v1 hierarchy except hugetlb, which therefore sits on the
# cgroup2 mount at /sys/fs/cgroup/unified.  crun 1.8 refuses that layout
# ("cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2").  `up` mounts a v1 hugetlb hierarchy at /sys/fs/cgroup/hugetlb
# (the layout systemd would have made), which moves the controller off
# cgroup2; `down` undoes exactly what `up` did and nothing more.
#
# Several users (benchmarks, tests) may hold the mount at once: each `up`
# registers OWNER_PID (default: the caller, $PPID), each `down` removes it, and
# the mount is only taken down when no live owner is left.  Owners that died
# without calling `down` are pruned.  The mount is only ever removed if `up`
# made it, and only when no cgroup remains below it: a v1 hierarchy with child
# cgroups outlives its unmount and would keep hugetlb off cgroup2.
set -eu

CG=/sys/fs/cgroup
MP=$CG/hugetlb
UNIFIED=$CG/unified
STATE_DIR=/run/moat-bench
STATE=$STATE_DIR/cgroup-hybrid.state
OWNERS=$STATE_DIR/cgroup-hybrid.owners

die() { echo "cgroup-hybrid: $*" >&2; exit 1; }
say() { echo "cgroup-hybrid: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root"

cmd=${1:-}
owner=${2:-$PPID}
case "$owner" in
    ''|*[!0-9]*) die "owner pid '$owner' is not a number" ;;
esac

# serialise on the script file itself, so no lock file is left behind
exec 9<"$0"
flock 9

# state file: KEY=VALUE lines written by `up` when it changed something
st_mounted=0 st_created_dir=0
load_state() {
    st_mounted=0 st_created_dir=0 st_subtree_off=0
    [ -f "$STATE" ] || return 0
    while IFS='=' read -r k v; do
        case "$k" in
            mounted) st_mounted=$v ;;
            created_dir) st_created_dir=$v ;;
            subtree_off) st_subtree_off=$v ;;
        esac
    done <"$STATE"
}

# the mount point is ours to judge only if a cgroup v1 fs with hugetlb is there
hugetlb_mounted_here() {
    findmnt -n -M "$MP" -t cgroup -o OPTIONS 2>/dev/null | tr ',' '\n' | grep -qx hugetlb
}

# hierarchy id of hugetlb in /proc/cgroups: 0 means it lives on cgroup2
hugetlb_v1_hierarchy() {
    awk '$1 == "hugetlb" { print $2 }' /proc/cgroups
}

cg_is_ro() {
    findmnt -n -M "$CG" -o OPTIONS | tr ',' '\n' | grep -qx ro
}

# run "$@" with /sys/fs/cgroup writable, restoring read-only right after
with_cg_rw() {
    if cg_is_ro; then
        mount -o remount,rw "$CG"
        rc=0
        "$@" || rc=$?
        mount -o remount,ro "$CG"
        return $rc
    fi
    "$@"
}

prune_owners() {
    [ -f "$OWNERS" ] || return 0
    tmp=$OWNERS.new
    : >"$tmp"
    while read -r p; do
        [ -n "$p" ] || continue
        if [ "$p" != "${1:-}" ] && kill -0 "$p" 2>/dev/null; then
            echo "$p" >>"$tmp"
        fi
    done <"$OWNERS"
    mv "$tmp" "$OWNERS"
}

add_owner() {
    mkdir -p "$STATE_DIR"
    prune_owners
    touch "$OWNERS"
    grep -qx "$1" "$OWNERS" || echo "$1" >>"$OWNERS"
}

count_owners() {
    [ -f "$OWNERS" ] || { echo 0; return; }
    grep -c . "$OWNERS" || true
}

do_mount() {
    mount -t cgroup -o rw,nosuid,nodev,noexec,relatime,hugetlb cgroup "$MP"
}

# remove leftover empty cgroups (from runtimes that did not clean up), then
# unmount if none remain; rmdir refuses cgroups that hold processes, as intended
release() {
    find "$MP" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    if [ -n "$(find "$MP" -mindepth 1 -type d -print -quit)" ]; then
        say "cgroups remain below $MP (in use?); leaving it mounted:"
        find "$MP" -mindepth 1 -type d >&2
        return 1
    fi
    umount "$MP"
}

# the hierarchy is torn down asynchronously: wait up to 3 s for hugetlb to
# leave v1 and show up in cgroup2's controllers again
hugetlb_back() {
    i=0
    while [ "$(hugetlb_v1_hierarchy)" != 0 ] ||
        ! grep -qw hugetlb "$UNIFIED/cgroup.controllers"; do
        i=$((i + 1))
        [ $i -le 30 ] || return 1
        sleep 0.1
    done
}

do_up() {
    load_state
    if hugetlb_mounted_here; then
        add_owner "$owner"
        say "hugetlb v1 hierarchy already mounted at $MP (mounted by up: $st_mounted)"
        return 0
    fi
    h=$(hugetlb_v1_hierarchy)
    if [ -n "$h" ] && [ "$h" != 0 ]; then
        # someone else has it as v1 elsewhere: cgroup2 is already free of it
        say "hugetlb is already a v1 hierarchy (id $h) elsewhere; nothing to do"
        return 0
    fi
    if ! grep -qw hugetlb "$UNIFIED/cgroup.controllers" 2>/dev/null; then
        say "hugetlb is not on cgroup2 at $UNIFIED; nothing to do"
        return 0
    fi
    # A controller enabled in cgroup2's subtree_control (runtimes do that
    # to set hugetlb limits) cannot move to v1: switch it off if no child
    # uses it, and note it so `down` switches it back on.
    subtree_off=0
    if grep -qw hugetlb "$UNIFIED/cgroup.subtree_control" 2>/dev/null; then
        echo -hugetlb > "$UNIFIED/cgroup.subtree_control" ||
            die "hugetlb is enabled in $UNIFIED/cgroup.subtree_control and in use below it"
        subtree_off=1
    fi
    created=0
    if [ ! -d "$MP" ]; then
        with_cg_rw mkdir "$MP"
        created=1
    fi
    if ! do_mount; then
        [ "$subtree_off" = 1 ] && echo +hugetlb > "$UNIFIED/cgroup.subtree_control"
        [ "$created" = 1 ] && with_cg_rw rmdir "$MP"
        die "mounting the hugetlb v1 hierarchy at $MP failed"
    fi
    mkdir -p "$STATE_DIR"
    printf 'mounted=1\ncreated_dir=%s\nsubtree_off=%s\n' "$created" "$subtree_off" >"$STATE"
    add_owner "$owner"
    say "mounted hugetlb v1 hierarchy at $MP"
}

do_down() {
    load_state
    prune_owners "$owner"
    n=$(count_owners)
    if [ "$st_mounted" != 1 ]; then
        say "up did not mount $MP; leaving it alone"
        [ "$n" -gt 0 ] || { rm -f "$OWNERS"; rmdir "$STATE_DIR" 2>/dev/null || true; }
        return 0
    fi
    if [ "$n" -gt 0 ]; then
        say "$n other owner(s) still use $MP; leaving it mounted"
        return 0
    fi
    if hugetlb_mounted_here; then
        release || exit 1
    fi
    tries=0
    while ! hugetlb_back; do
        # A cgroup was created between the check and the unmount (another
        # runtime at work), so the hierarchy outlived the unmount, invisible.
        # Mounting it again reattaches it; unmounting it once it is empty
        # lets the kernel tear it down.
        tries=$((tries + 1))
        [ $tries -le 3 ] || die "hugetlb did not return to $UNIFIED/cgroup.controllers"
        say "hugetlb did not return to cgroup2; remounting to release it again"
        do_mount || die "remounting the hugetlb v1 hierarchy failed"
        release || exit 1
    done
    if [ "$st_created_dir" = 1 ] && [ -d "$MP" ]; then
        with_cg_rw rmdir "$MP"
    fi
    if [ "$st_subtree_off" = 1 ]; then
        echo +hugetlb > "$UNIFIED/cgroup.subtree_control" || say "could not enable hugetlb in $UNIFIED/cgroup.subtree_control again"
    fi
    rm -f "$STATE" "$OWNERS"
    rmdir "$STATE_DIR" 2>/dev/null || true
    say "unmounted $MP; hugetlb is back on cgroup2"
}

do_status() {
    load_state
    prune_owners
    echo "mounted_here=$(hugetlb_mounted_here && echo 1 || echo 0)" \
        "mounted_by_up=$st_mounted created_dir=$st_created_dir" \
        "owners=$(count_owners) hugetlb_v1_hierarchy=$(hugetlb_v1_hierarchy)" \
        "unified_controllers='$(cat "$UNIFIED/cgroup.controllers" 2>/dev/null)'"
}

case "$cmd" in
    up) do_up ;;
    down) do_down ;;
    status) do_status ;;
    *) echo "usage: $0 up|down|status [OWNER_PID]" >&2; exit 2 ;;
esac
