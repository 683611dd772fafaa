# Twenty create/delete cycles (half of them started, killed and deleted,
# half deleted while created) leave no cgroup, state or process behind.
b=$WORK/cyc
mkbundle "$b" '"/bin/payload","sleep","600"' || { fail cycles.20 "bundle"; exit 0; }
i=0 bad=
while [ $i -lt 20 ]; do
        id=vmcyc$i-$$
        if ! create "$id" "$b"; then
                bad="create $id: $(rt_err "$b/err")"
                break
        fi
        if [ $((i % 2)) = 0 ]; then
                if ! rt start "$id" || ! rt kill "$id" KILL || ! wait_for 10 is_status "$id" stopped; then
                        bad="start/kill $id: status $(ctr_status "$id")"
                        destroy "$id"
                        break
                fi
                rt delete "$id" 2>"$b/del.err" || { bad="delete $id: $(rt_err "$b/del.err")"; destroy "$id"; break; }
        else
                rt delete --force "$id" 2>"$b/del.err" || { bad="delete --force $id: $(rt_err "$b/del.err")"; destroy "$id"; break; }
        fi
        i=$((i + 1))
done
left=$(leftovers)
if [ -n "$bad" ]; then
        fail cycles.20 "cycle $i: $bad"
elif [ -n "$left" ]; then
        fail cycles.20 "after 20 cycles: $(echo "$left" | head -n 5 | tr '\n' ';')"
else
        pass cycles.20 "20 cycles, nothing left behind"
fi
