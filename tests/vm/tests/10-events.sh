# events --stats: one stats line whose memory and pids numbers are those
# of the cgroup files.
b=$WORK/ev id=$(new_id ev)
mkbundle "$b" '"/bin/payload","fork-sleep","2","600"' '"memory": {"limit": 67108864}, "pids": {"limit": 64}' ||
        { fail events "bundle"; exit 0; }
if ! create_start "$id" "$b"; then
        fail events "create: $(rt_err "$b/err")"
        destroy "$id"
        exit 0
fi
wait_for 10 eval "[ \$(cg_nprocs /$id) -ge 3 ]"
# json_num TEXT OBJECT KEY: the number KEY inside the first "OBJECT": {...}
json_num() { echo "$1" | sed -n "s/.*\"$2\": *{[^{}]*\"$3\": *\([0-9]*\).*/\1/p"; }
mem0=$(cg_read "/$id" memory.current)
if out=$(rt events --stats "$id" 2> "$WORK/e.err"); then
        mem1=$(cg_read "/$id" memory.current)
        echo "$out"
        case $out in *'"type":"stats"'*|*'"type": "stats"'*) pass events.type "a stats event" ;; *) fail events.type "$(echo "$out" | cut -c1-200)" ;; esac
        check events.pids "$(cg_read "/$id" pids.current)" "$(json_num "$out" pids current)" "pids.current"
        check events.pids-limit 64 "$(json_num "$out" pids limit)" "pids.limit"
        usage=$(json_num "$out" usage usage)
        lo=$mem0 hi=$mem1
        [ "$lo" -gt "$hi" ] && lo=$mem1 hi=$mem0
        if [ -n "$usage" ] && [ "$usage" -ge "$lo" ] && [ "$usage" -le "$hi" ]; then
                pass events.memory "memory.usage.usage = $usage (memory.current $mem0, $mem1)"
        else
                fail events.memory "memory.usage.usage = '$usage', memory.current read $mem0 before and $mem1 after"
        fi
        check events.memory-limit 67108864 "$(json_num "$out" usage limit)" "memory.usage.limit"
elif not_supported "$WORK/e.err"; then
        skip events "$(rt_err "$WORK/e.err")"
else
        fail events "events --stats: $(rt_err "$WORK/e.err")"
fi
destroy "$id"
