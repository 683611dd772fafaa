# Where the container's processes land on a pure cgroup v2 host: the
# default path, an absolute cgroupsPath (missing parents made, and removed
# again), an existing parent (kept), a relative path (below the caller's
# own cgroup); every cgroup the runtime made is gone after delete.

# placement NAME CGROUPS_PATH EXPECTED_PATH
placement() {
        _n=$1 _id=$(new_id "$1") _want=$3 _cgp=$2
        case $_cgp in *ID*) _cgp=${_cgp%%ID*}$_id${_cgp#*ID} ;; esac
        mkbundle "$WORK/$_n" '"/bin/payload","sleep","600"' "" "$_cgp" || { fail "cgroup.$_n" "bundle"; return; }
        if ! create_start "$_id" "$WORK/$_n"; then
                fail "cgroup.$_n" "create/start: $(rt_err "$WORK/$_n/err")"
                destroy "$_id"
                return
        fi
        _want=${_want%%ID*}$_id${_want#*ID}
        _pid=$(ctr_pid "$_id")
        _got=$(proc_cgroup "$_pid")
        if [ "$_got" = "$_want" ] && grep -qx "$_pid" "$CG$_want/cgroup.procs"; then
                pass "cgroup.$_n" "/proc/$_pid/cgroup = 0::$_got"
        else
                fail "cgroup.$_n" "expected 0::$_want, /proc/$_pid/cgroup says 0::$_got"
        fi
        if ! rt kill "$_id" KILL 2>"$WORK/$_n/kill.err" || ! wait_for 10 is_status "$_id" stopped; then
                fail "cgroup.$_n.delete" "kill: $(rt_err "$WORK/$_n/kill.err") status $(ctr_status "$_id")"
                destroy "$_id"
                return
        fi
        if ! rt delete "$_id" 2>"$WORK/$_n/delete.err"; then
                fail "cgroup.$_n.delete" "delete: $(rt_err "$WORK/$_n/delete.err")"
                destroy "$_id"
                return
        fi
        _gone=${4:-$_want}
        if cg_absent "$_gone" && cg_absent "$_want"; then
                pass "cgroup.$_n.delete" "$_gone removed"
        else
                fail "cgroup.$_n.delete" "$CG$_gone still there after delete"
        fi
}

placement default "" "/ID"
placement absolute "/moatvm-abs/sub/ID" "/moatvm-abs/sub/ID" "/moatvm-abs"

# an existing parent is not the runtime's to remove
mkdir "$CG/moatvm-pre"
placement existing-parent "/moatvm-pre/ID" "/moatvm-pre/ID"
if [ -d "$CG/moatvm-pre" ]; then
        pass cgroup.existing-parent.kept "/moatvm-pre left in place"
        rmdir "$CG/moatvm-pre"
else
        fail cgroup.existing-parent.kept "delete removed /moatvm-pre, which existed before create"
fi

# relative: below the caller's cgroup (this shell moves into /moatvm-caller)
mkdir "$CG/moatvm-caller"
echo $$ > "$CG/moatvm-caller/cgroup.procs"
placement relative "rel/ID" "/moatvm-caller/rel/ID" "/moatvm-caller/rel"
echo $$ > "$CG/cgroup.procs"
if [ -d "$CG/moatvm-caller" ]; then
        rmdir "$CG/moatvm-caller"
else
        fail cgroup.relative.caller "delete removed the caller's own cgroup"
fi
