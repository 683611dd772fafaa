# update changes the limits of a live container (containerd's way:
# --resources FILE with a LinuxResources object, and runc's flags).
b=$WORK/upd id=$(new_id upd)
mkbundle "$b" '"/bin/payload","sleep","600"' '"memory": {"limit": 67108864}, "pids": {"limit": 100}, "cpu": {"quota": 20000, "period": 100000}' ||
        { fail update "bundle"; exit 0; }
if ! create_start "$id" "$b"; then
        if not_supported "$b/err"; then skip update "$(rt_err "$b/err")"; else fail update "create: $(rt_err "$b/err")"; fi
        destroy "$id"
        exit 0
fi
check update.before 67108864 "$(cg_read "/$id" memory.max)" "memory.max at create"

cat > "$WORK/res.json" <<'JSON'
{"memory": {"limit": 134217728}, "pids": {"limit": 200}, "cpu": {"quota": 40000, "period": 100000}}
JSON
if rt update --resources "$WORK/res.json" "$id" 2> "$WORK/u.err"; then
        check update.memory 134217728 "$(cg_read "/$id" memory.max)" memory.max
        check update.pids 200 "$(cg_read "/$id" pids.max)" pids.max
        check update.cpu "40000 100000" "$(cg_read "/$id" cpu.max)" cpu.max
elif not_supported "$WORK/u.err"; then
        skip update.resources "$(rt_err "$WORK/u.err")"
else
        fail update.resources "update --resources: $(rt_err "$WORK/u.err")"
fi

# from stdin, changing one value leaves the others alone
if echo '{"pids": {"limit": 300}}' | rt update --resources - "$id" 2> "$WORK/u.err"; then
        check update.stdin-pids 300 "$(cg_read "/$id" pids.max)" pids.max
        check update.stdin-untouched 134217728 "$(cg_read "/$id" memory.max)" "memory.max (not in the update)"
elif not_supported "$WORK/u.err"; then
        skip update.stdin "$(rt_err "$WORK/u.err")"
else
        fail update.stdin "update --resources -: $(rt_err "$WORK/u.err")"
fi

# runc's flags
if rt update --memory 100663296 --pids-limit 400 "$id" 2> "$WORK/u.err"; then
        check update.flags-memory 100663296 "$(cg_read "/$id" memory.max)" memory.max
        check update.flags-pids 400 "$(cg_read "/$id" pids.max)" pids.max
elif not_supported "$WORK/u.err"; then
        skip update.flags "$(rt_err "$WORK/u.err")"
else
        fail update.flags "update --memory --pids-limit: $(rt_err "$WORK/u.err")"
fi

# an invalid limit is refused and the old limit stays
before=$(cg_read "/$id" memory.max)
if echo '{"memory": {"limit": "x"}}' | rt update --resources - "$id" 2> "$WORK/u.err"; then
        fail update.invalid "accepted memory.limit \"x\""
elif not_supported "$WORK/u.err"; then
        skip update.invalid "$(rt_err "$WORK/u.err")"
else
        check update.invalid "$before" "$(cg_read "/$id" memory.max)" "memory.max after a refused update"
fi
destroy "$id"
