# linux.resources on cgroup v2: each group of limits in its own container
# (so that one the runtime refuses as "not supported" skips only its own
# checks), and every file compared with the value runc/crun write.

# with_resources NAME RESOURCES [CGROUPS_PATH]: a running container with
# RESOURCES; sets $id and $cg (its cgroup), or reports NAME as SKIP
# ("not supported") or FAIL and returns 1.
with_resources() {
        _b=$WORK/$1
        id=$(new_id "$1")
        cg=${3:-/$id}
        if ! mkbundle "$_b" '"/bin/payload","sleep","600"' "$2" "${3:-}"; then
                fail "res.$1" "bundle"
                return 1
        fi
        if create_start "$id" "$_b"; then
                return 0
        fi
        if not_supported "$_b/err"; then
                skip "res.$1" "$(rt_err "$_b/err")"
        else
                fail "res.$1" "create/start: $(rt_err "$_b/err")"
        fi
        destroy "$id"
        return 1
}
# file NAME FILE EXPECTED: the container's cgroup file holds EXPECTED
file() { check "res.$1" "$3" "$(cg_read "$cg" "$2")" "$2"; }
done_ctr() { destroy "$id"; }

if with_resources memory '"memory": {"limit": 67108864, "swap": 100663296, "reservation": 33554432}'; then
        file memory.limit memory.max 67108864
        file memory.swap memory.swap.max 33554432
        file memory.reservation memory.low 33554432
        done_ctr
fi

# crun's (and runc 1.3's) conversion: shares 512 -> weight 59 (1024 -> 100)
if with_resources cpu '"cpu": {"shares": 512, "quota": 50000, "period": 100000}'; then
        file cpu.shares cpu.weight 59
        file cpu.quota cpu.max "50000 100000"
        done_ctr
fi
if with_resources cpu-default '"cpu": {"shares": 1024, "period": 250000}'; then
        file cpu.shares-1024 cpu.weight 100
        file cpu.period-only cpu.max "max 250000"
        done_ctr
fi

if [ "$(nproc)" -ge 2 ]; then
        if with_resources cpuset '"cpu": {"cpus": "1", "mems": "0"}'; then
                file cpuset.cpus cpuset.cpus 1
                file cpuset.mems cpuset.mems 0
                file cpuset.effective cpuset.cpus.effective 1
                done_ctr
        fi
else
        skip res.cpuset "the VM has one CPU"
fi

if with_resources pids '"pids": {"limit": 123}'; then
        file pids.limit pids.max 123
        done_ctr
fi

if [ -e /sys/block/ram0/dev ]; then
        dev=$(cat /sys/block/ram0/dev)
        maj=${dev%:*} min=${dev#*:}
        if with_resources io "\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": $maj, \"minor\": $min, \"rate\": 1048576}], \"throttleWriteIOPSDevice\": [{\"major\": $maj, \"minor\": $min, \"rate\": 100}]}"; then
                line=$(grep "^$dev " "$CG$cg/io.max")
                check res.io.throttle "$dev rbps=1048576 wbps=max riops=max wiops=100" "$line" io.max
                done_ctr
        fi
else
        skip res.io "no /dev/ram0 (brd) in the VM"
fi

if [ -d /sys/kernel/mm/hugepages/hugepages-2048kB ]; then
        if with_resources hugetlb '"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]'; then
                file hugetlb.2MB hugetlb.2MB.max 4194304
                done_ctr
        fi
else
        skip res.hugetlb "no 2MB huge pages"
fi

if with_resources unified '"unified": {"memory.high": "62914560", "memory.oom.group": "1", "pids.max": "77"}'; then
        file unified.memory.high memory.high 62914560
        file unified.memory.oom.group memory.oom.group 1
        file unified.pids.max pids.max 77
        done_ctr
fi

# a nested path whose parents the runtime creates: the controllers must be
# enabled down the tree for the limits to exist at all
if with_resources nested '"memory": {"limit": 50331648}, "pids": {"limit": 50}' "/moatvm-nest/a/vmnested$$"; then
        file nested.memory memory.max 50331648
        file nested.pids pids.max 50
        done_ctr
fi
cg_absent /moatvm-nest || fail res.nested.delete "/moatvm-nest left after delete"

# a limit the kernel refuses is an error of create, not a silent no-op
b=$WORK/bad id=$(new_id bad)
if mkbundle "$b" '"/bin/payload","sleep","600"' '"unified": {"memory.max": "lots"}'; then
        if create "$id" "$b"; then
                fail res.refused "create accepted memory.max = \"lots\" (memory.max is now '$(cg_read "/$id" memory.max)')"
        elif not_supported "$b/err"; then
                skip res.refused "$(rt_err "$b/err")"
        elif cg_absent "/$id" && [ ! -e "$STATE/$id" ]; then
                pass res.refused "$(rt_err "$b/err")"
        else
                fail res.refused "refused, but left $(ls "$STATE") $(cg_absent "/$id" || echo "/$id")"
        fi
fi
destroy "$id"
