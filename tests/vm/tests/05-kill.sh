# kill --all and delete --force against a container whose processes ignore
# SIGTERM and keep forking: on v2 the runtime must get every one of them
# (cgroup.kill), including those forked while it was killing.

script forker <<'SH'
trap '' TERM
while :; do /bin/payload sleep 30 & done
SH
script ignorer <<'SH'
trap '' TERM
exec /bin/payload fork-sleep 4 600
SH

# start_busy NAME SCRIPT MIN_PROCS: a running container with at least
# MIN_PROCS processes; prints its id
start_busy() {
        _b=$WORK/$1 _id=$(new_id "$1")
        mkbundle "$_b" "\"/bin/sh\",\"/vm/$2.sh\"" > "$WORK/$1.log" 2>&1 || return 1
        create_start "$_id" "$_b" || { cat "$_b/err" >> "$WORK/$1.log"; destroy "$_id"; return 1; }
        if ! wait_for 20 eval "[ \$(cg_nprocs /$_id) -ge $3 ]"; then
                echo "only $(cg_nprocs "/$_id") processes in /$_id" >> "$WORK/$1.log"
                destroy "$_id"
                return 1
        fi
        echo "$_id"
}

# SIGTERM ignored by all: kill --all TERM kills nobody, kill --all KILL all
if id=$(start_busy ign ignorer 5); then
        n=$(cg_nprocs "/$id")
        if ! rt kill --all "$id" TERM 2> "$WORK/k.err"; then
                fail kill.all-term "kill --all TERM: $(rt_err "$WORK/k.err")"
        elif [ "$(cg_nprocs "/$id")" -ne "$n" ] || ! is_status "$id" running; then
                fail kill.all-term "processes died of an ignored SIGTERM: $n before, $(cg_nprocs "/$id") after"
        else
                pass kill.all-term "$n processes ignored SIGTERM and are still there"
        fi
        if ! rt kill --all "$id" KILL 2> "$WORK/k.err"; then
                fail kill.all-kill "kill --all KILL: $(rt_err "$WORK/k.err")"
        elif ! wait_for 10 cg_empty "/$id"; then
                fail kill.all-kill "$(cg_nprocs "/$id") processes left in /$id: $(cat "$CG/$id/cgroup.procs" | tr '\n' ' ')"
        elif ! wait_for 10 is_status "$id" stopped; then
                fail kill.all-kill "cgroup empty but status $(ctr_status "$id")"
        else
                pass kill.all-kill "all $n processes killed, status stopped"
        fi
        rt delete "$id" 2> "$WORK/d.err" || fail kill.all-kill.delete "delete: $(rt_err "$WORK/d.err")"
        cg_absent "/$id" || fail kill.all-kill.delete "/$id left after delete"
        destroy "$id"
else
        fail kill.all-term "setup: $(cat "$WORK/ign.log" | tr '\n' ' ' | cut -c1-300)"
fi

# a container that keeps forking: kill --all KILL empties it
if id=$(start_busy fork forker 20); then
        n=$(cg_nprocs "/$id")
        if ! rt kill --all "$id" KILL 2> "$WORK/k.err"; then
                fail kill.all-forking "kill --all KILL: $(rt_err "$WORK/k.err")"
        elif ! wait_for 10 cg_empty "/$id"; then
                fail kill.all-forking "$(cg_nprocs "/$id") processes left in /$id"
        else
                pass kill.all-forking "a forking container ($n+ processes) emptied"
        fi
        destroy "$id"
else
        fail kill.all-forking "setup: $(cat "$WORK/fork.log" | tr '\n' ' ' | cut -c1-300)"
fi

# delete --force of the same kind of container
if id=$(start_busy delf forker 20); then
        n=$(cg_nprocs "/$id")
        if ! rt delete --force "$id" 2> "$WORK/d.err"; then
                fail delete.force-forking "delete --force: $(rt_err "$WORK/d.err")"
        elif ! cg_absent "/$id"; then
                fail delete.force-forking "/$id still there with $(cg_nprocs "/$id") processes"
        elif [ -n "$(procs_in_cgroups_named "$id")" ] || [ -e "$STATE/$id" ]; then
                fail delete.force-forking "left: processes $(procs_in_cgroups_named "$id" | tr '\n' ' ') state $(ls "$STATE")"
        else
                pass delete.force-forking "$n+ forking processes killed, cgroup and state removed"
        fi
        destroy "$id"
else
        fail delete.force-forking "setup: $(cat "$WORK/delf.log" | tr '\n' ' ' | cut -c1-300)"
fi
