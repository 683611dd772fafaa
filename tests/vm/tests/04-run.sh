# `run` with the default configuration, which mounts "cgroup" at
# /sys/fs/cgroup: on v2 that must be a cgroup2 mount of the container's own
# cgroup (cgroup namespace), read-only as the config asks.
b=$WORK/run
id=$(new_id run)
if mkbundle "$b" '"/bin/true"'; then
        rt run --bundle "$b" "$id" < /dev/null > "$b/out" 2> "$b/err"
        rc=$?
        if [ $rc = 0 ] && [ ! -e "$STATE/$id" ] && cg_absent "/$id"; then
                pass run.true "exit 0, state and cgroup removed"
        else
                fail run.true "exit $rc: $(rt_err "$b/err"); state $(ls "$STATE" | tr '\n' ' ')"
        fi
fi
destroy "$id"

id=$(new_id runcg)
script cgmount <<'SH'
grep " /sys/fs/cgroup " /proc/self/mountinfo
echo "cg=$(cat /proc/self/cgroup)"
ls /sys/fs/cgroup | tr '\n' ' '
echo
SH
if mkbundle "$b" '"/bin/sh","/vm/cgmount.sh"'; then
        rt run --bundle "$b" "$id" < /dev/null > "$b/out" 2> "$b/err"
        rc=$?
        line=$(grep ' /sys/fs/cgroup ' "$b/out")
        if [ $rc != 0 ]; then
                fail run.cgroup-mount "exit $rc: $(rt_err "$b/err")"
        elif ! echo "$line" | grep -q ' - cgroup2 '; then
                fail run.cgroup-mount "not a cgroup2 mount: '$line'"
        elif ! echo "$line" | awk '{ print $6 }' | grep -q '^ro\(,\|$\)'; then
                fail run.cgroup-mount "not read-only: '$line'"
        else
                pass run.cgroup-mount "$line"
        fi
        check run.cgroupns "cg=0::/" "$(grep '^cg=' "$b/out")" "/proc/self/cgroup inside"
        if grep -q 'cgroup.procs' "$b/out" && grep -q 'memory.max' "$b/out"; then
                pass run.cgroup-files "the container's cgroup files are visible"
        else
                fail run.cgroup-files "/sys/fs/cgroup inside holds: $(tail -n1 "$b/out")"
        fi
fi
destroy "$id"

id=$(new_id runrc)
if mkbundle "$b" '"/bin/sh","-c","exit 7"'; then
        rt run --bundle "$b" "$id" < /dev/null > "$b/out" 2> "$b/err"
        check run.exit-code 7 $? "exit status of run"
fi
destroy "$id"
