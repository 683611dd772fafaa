# pause/resume on v2: cgroup.freeze, "frozen 1" in cgroup.events, the
# state's "paused"; delete --force of a paused container.
script forker2 <<'SH'
/bin/payload fork-sleep 3 600
SH
b=$WORK/pause id=$(new_id pause)
mkbundle "$b" '"/bin/sh","/vm/forker2.sh"' || { fail pause "bundle"; exit 0; }
if ! create_start "$id" "$b"; then
        fail pause "create: $(rt_err "$b/err")"
        destroy "$id"
        exit 0
fi
if ! rt pause "$id" 2> "$WORK/p.err"; then
        if not_supported "$WORK/p.err"; then
                skip pause "$(rt_err "$WORK/p.err")"
        else
                fail pause "pause: $(rt_err "$WORK/p.err")"
        fi
        destroy "$id"
        exit 0
fi
check pause.freeze 1 "$(cg_read "/$id" cgroup.freeze)" cgroup.freeze
check pause.frozen "frozen 1" "$(grep '^frozen' "$CG/$id/cgroup.events")" "cgroup.events"
check pause.state paused "$(ctr_status "$id")" "state status"
pid=$(ctr_pid "$id")
st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status")
case $st in S|D|T) pass pause.process "init in state $st" ;; *) fail pause.process "init in state '$st'" ;; esac

if rt resume "$id" 2> "$WORK/r.err"; then
        check resume.freeze 0 "$(cg_read "/$id" cgroup.freeze)" cgroup.freeze
        check resume.frozen "frozen 0" "$(grep '^frozen' "$CG/$id/cgroup.events")" "cgroup.events"
        check resume.state running "$(ctr_status "$id")" "state status"
else
        fail resume "resume: $(rt_err "$WORK/r.err")"
fi

# paused again, then delete --force: thawed, killed, removed
if rt pause "$id" 2> "$WORK/p.err"; then
        if rt delete --force "$id" 2> "$WORK/d.err" && cg_absent "/$id" && [ -z "$(procs_in_cgroups_named "$id")" ]; then
                pass pause.delete-force "a paused container is removed by delete --force"
        else
                fail pause.delete-force "delete --force: $(rt_err "$WORK/d.err"); cgroup $(cg_absent "/$id" && echo gone || echo left)"
        fi
else
        fail pause.delete-force "second pause: $(rt_err "$WORK/p.err")"
fi
destroy "$id"
