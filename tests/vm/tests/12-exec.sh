# exec and ps on v2: a process exec'd into a running container lands in
# the container's cgroup (in its cgroup namespace: "0::/"), counts against
# its pids.max, and ps lists exactly the pids of cgroup.procs.
b=$WORK/exec id=$(new_id exec)
mkbundle "$b" '"/bin/payload","sleep","600"' '"pids": {"limit": 20}' || { fail exec "bundle"; exit 0; }
if ! create_start "$id" "$b"; then
        fail exec "create: $(rt_err "$b/err")"
        destroy "$id"
        exit 0
fi

if out=$(rt exec "$id" /bin/cat /proc/self/cgroup 2> "$WORK/x.err"); then
        check exec.cgroup "0::/" "$out" "/proc/self/cgroup of an exec'd process"
elif not_supported "$WORK/x.err"; then
        skip exec.cgroup "$(rt_err "$WORK/x.err")"
else
        fail exec.cgroup "exec: $(rt_err "$WORK/x.err")"
fi

# detached: the host sees it in /<id>
if rt exec -d --pid-file "$WORK/x.pid" "$id" /bin/payload sleep 600 2> "$WORK/x.err"; then
        xp=$(cat "$WORK/x.pid" 2>/dev/null)
        check exec.detached-cgroup "/$id" "$(proc_cgroup "$xp")" "cgroup of the detached exec (pid $xp)"
        # ps lists the pids of cgroup.procs
        if ps_out=$(rt ps --format json "$id" 2> "$WORK/ps.err"); then
                got=$(echo "$ps_out" | tr -d '[] \n' | tr ',' '\n' | sort -n | tr '\n' ' ')
                want=$(sort -n "$CG/$id/cgroup.procs" | tr '\n' ' ')
                check exec.ps "$want" "$got" "ps --format json"
        elif not_supported "$WORK/ps.err"; then
                skip exec.ps "$(rt_err "$WORK/ps.err")"
        else
                fail exec.ps "ps: $(rt_err "$WORK/ps.err")"
        fi
elif not_supported "$WORK/x.err"; then
        skip exec.detached-cgroup "$(rt_err "$WORK/x.err")"
else
        fail exec.detached-cgroup "exec -d: $(rt_err "$WORK/x.err")"
fi

# pids.max = 20 holds for exec'd processes too: a shell forking 30 sleepers
# hits it (busybox sh gives up at the first refused fork)
script forks <<'SH'
i=0
while [ $i -lt 30 ]; do
        /bin/payload sleep 30 &
        i=$((i + 1))
done
SH
rt exec "$id" /bin/sh /vm/forks.sh > "$WORK/x.out" 2> "$WORK/x.err"
rc=$?
cur=$(cg_read "/$id" pids.current) ev=$(cg_read "/$id" pids.events)
if not_supported "$WORK/x.err"; then
        skip exec.pids-max "$(rt_err "$WORK/x.err")"
elif [ "$cur" -le 20 ] && [ "${ev#max }" -ge 1 ] 2>/dev/null; then
        pass exec.pids-max "forks refused: pids.current $cur, pids.events '$ev', exec exit $rc"
else
        fail exec.pids-max "pids.max 20: pids.current '$cur', pids.events '$ev', exec exit $rc: $(rt_err "$WORK/x.err")"
fi
destroy "$id"
