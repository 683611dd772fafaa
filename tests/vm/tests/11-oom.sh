# The OOM killer in a container's cgroup: a memory hog (busybox dd with a
# 64 MiB buffer, the container's init) under a 32 MiB limit without swap is
# killed, the container stops, oom_kill in memory.events grows, and
# `events` reports an "oom" event.
b=$WORK/oom id=$(new_id oom)
mkbundle "$b" '"/bin/dd","if=/dev/zero","of=/dev/null","bs=64M","count=1"' '"memory": {"limit": 33554432, "swap": 33554432}' ||
        { fail oom "bundle"; exit 0; }
if ! create "$id" "$b"; then
        if not_supported "$b/err"; then skip oom "$(rt_err "$b/err")"; else fail oom "create: $(rt_err "$b/err")"; fi
        destroy "$id"
        exit 0
fi
check oom.limit 33554432 "$(cg_read "/$id" memory.max)" memory.max
before=$(sed -n 's/^oom_kill //p' "$CG/$id/memory.events")
rt events --interval 1s "$id" > "$WORK/events.out" 2> "$WORK/events.err" &
ev=$!
usleep 300000
rt start "$id" 2>> "$b/err" || fail oom.start "start: $(rt_err "$b/err")"
if wait_for 60 is_status "$id" stopped; then
        pass oom.killed "the hog stopped"
else
        fail oom.killed "the hog is still $(ctr_status "$id") after 60s"
fi
after=$(sed -n 's/^oom_kill //p' "$CG/$id/memory.events")
if [ "${after:-0}" -gt "${before:-0}" ]; then
        pass oom.memory-events "oom_kill $before -> $after"
else
        fail oom.memory-events "oom_kill $before -> $after"
fi
wait_for 10 grep -q '"oom"' "$WORK/events.out"
if grep -q '"type": *"oom"' "$WORK/events.out"; then
        pass oom.event "$(grep '"oom"' "$WORK/events.out" | head -n1 | cut -c1-150)"
elif not_supported "$WORK/events.err"; then
        skip oom.event "$(rt_err "$WORK/events.err")"
else
        fail oom.event "no oom event: $(cut -c1-200 "$WORK/events.out" | tr '\n' ' ') $(rt_err "$WORK/events.err")"
fi
destroy "$id"
wait_for 10 eval "! kill -0 $ev 2>/dev/null" || { fail oom.events-exit "events did not exit after the container was deleted"; kill "$ev"; }
wait "$ev" 2>/dev/null || true
