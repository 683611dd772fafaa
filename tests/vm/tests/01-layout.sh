# The VM is what the lane claims: cgroup2 alone at /sys/fs/cgroup, the
# controllers enabled for the root's children, moat-runtime runnable.
if grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts && ! grep -q ' cgroup ' /proc/mounts; then
        pass layout.cgroup2 "$(grep ' /sys/fs/cgroup ' /proc/mounts)"
else
        fail layout.cgroup2 "mounts: $(grep cgroup /proc/mounts | tr '\n' ';')"
fi
want="cpuset cpu io memory hugetlb pids"
have=$(cat $CG/cgroup.subtree_control)
missing=
for c in $want; do
        case " $have " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
if [ -z "$missing" ]; then
        pass layout.controllers "$have"
else
        fail layout.controllers "missing:$missing (have: $have)"
fi
if v=$(rt --version 2>&1); then
        pass layout.runtime "$(echo "$v" | head -n1)"
else
        fail layout.runtime "$v"
fi
