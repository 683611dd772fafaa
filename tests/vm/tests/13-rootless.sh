# Rootless moat-runtime in a delegated cgroup v2 subtree (systemd's model:
# /moatvm-user and its cgroup.procs, cgroup.subtree_control and
# cgroup.threads belong to uid 1000, memory/pids/cpu enabled for its
# children, the user's shell in the leaf /moatvm-user/shell). As uid 1000
# (busybox su, a passwd line this test adds): `spec --rootless` + the
# payload runs as root inside, as uid 1000 on the host, in a cgroup below
# the caller's own; memory and pids limits land in memory.max/pids.max of a
# cgroup under /moatvm-user; create/state/kill/delete leave no cgroup and
# no state. Without delegation (the user's shell in a root-owned cgroup) a
# memory limit fails create with the runtime's message and leaves nothing.

UID_U=1000
USER_CG=/moatvm-user
NODELEG_CG=/moatvm-nodeleg
XDG=$WORK/xdg-$UID_U
U_STATE=$XDG/moat-runtime
added_passwd=0 added_group=0 made_etc=0
u_ids=

# ---- setup ------------------------------------------------------------------
[ -d /etc ] || { mkdir /etc && made_etc=1; }
if ! grep -q "^[^:]*:[^:]*:$UID_U:" /etc/passwd 2>/dev/null; then
        echo "moatvm:x:$UID_U:$UID_U:moatvm:$WORK:/bin/sh" >> /etc/passwd && added_passwd=1
fi
if ! grep -q "^[^:]*:[^:]*:$UID_U:" /etc/group 2>/dev/null; then
        echo "moatvm:x:$UID_U:" >> /etc/group && added_group=1
fi
U_NAME=$(sed -n "s/^\([^:]*\):[^:]*:$UID_U:.*/\1/p" /etc/passwd | head -n1)

# as_user CGROUP CMD: `sh -c CMD` as uid 1000, first moved into CGROUP.
as_user() {
        sh -c 'echo $$ > "$0/cgroup.procs" || exit 125; exec su -s /bin/sh "$2" -c "$1"' \
                "$CG$1" "$2" "$U_NAME"
}
# urt CGROUP ARGS...: moat-runtime as the user (no --root: $XDG_RUNTIME_DIR).
urt() {
        _ucg=$1
        shift
        as_user "$_ucg" "XDG_RUNTIME_DIR=$XDG exec $RT_BIN $*"
}
u_state_field() {  # ID FIELD
        urt "$USER_CG/shell" state "$1" 2>/dev/null | tr -d '\n' |
                sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"
}
u_is_status() { [ "$(u_state_field "$1" status)" = "$2" ]; }
host_uid() { sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status" 2>/dev/null; }

# ubundle DIR ARGS [RESOURCES] [CGROUPS_PATH]: `spec --rootless` run by the
# user in DIR (a directory the user owns), edited like mkbundle's.
ubundle() {
        _b=$1 _args=$2 _res=${3:-} _cgp=${4:-}
        rm -rf "$_b"
        mkdir -p "$_b" && chown "$UID_U:$UID_U" "$_b" || return 1
        if ! as_user "$USER_CG/shell" "cd $_b && exec $RT_BIN spec --rootless" > "$_b.spec.log" 2>&1; then
                echo "ubundle: spec --rootless as uid $UID_U failed: $(cat "$_b.spec.log")"
                return 1
        fi
        _c=$_b/config.json
        sed -i -e 's|"terminal": true|"terminal": false|' \
               -e 's|"path": "rootfs"|"path": "/moat/rootfs"|' \
               -e "/\"args\": \[/,/\]/c\\    \"args\": [$(sed_escape "$_args")]," "$_c"
        [ -n "$_res" ] && sed -i "s|\"linux\": {|\"linux\": {\"resources\": {$(sed_escape "$_res")},|" "$_c"
        [ -n "$_cgp" ] && sed -i "s|\"linux\": {|\"linux\": {\"cgroupsPath\": \"$(sed_escape "$_cgp")\",|" "$_c"
        chown "$UID_U:$UID_U" "$_c"
        if ! grep -q '"terminal": false' "$_c" || ! grep -qF "\"args\": [$_args]," "$_c" ||
           ! grep -q '"path": "/moat/rootfs"' "$_c" ||
           [ "$(grep -c "\"hostID\": $UID_U," "$_c")" != 2 ] ||
           { [ -n "$_res" ] && ! grep -qF "\"resources\": {$_res}," "$_c"; } ||
           { [ -n "$_cgp" ] && ! grep -qF "\"cgroupsPath\": \"$_cgp\"" "$_c"; }; then
                echo "ubundle: unexpected spec --rootless output or edit:"
                cat "$_c"
                return 1
        fi
}
# ucreate ID BUNDLE [CGROUP]: create as the user (stdio to BUNDLE/out, err);
# then start unless the 4th argument is "no-start"; 0 once running.
ucreate() {
        u_ids="$u_ids $1"
        as_user "${3:-$USER_CG/shell}" \
                "cd $2 && XDG_RUNTIME_DIR=$XDG exec $RT_BIN create --bundle $2 $1 </dev/null >$2/out 2>$2/err" ||
                return 1
        [ "${4:-}" = no-start ] && return 0
        urt "$USER_CG/shell" start "$1" 2>> "$2/err" || return 1
        wait_for 10 u_is_status "$1" running
}
udestroy() { urt "$USER_CG/shell" delete --force "$1" > /dev/null 2>&1 || true; }

cleanup_all() {
        for _i in $u_ids; do udestroy "$_i"; done
        for _g in "$USER_CG" "$NODELEG_CG"; do
                [ -d "$CG$_g" ] || continue
                for _d in $(find "$CG$_g" -type d 2>/dev/null | sort -r); do
                        echo 1 > "$_d/cgroup.kill" 2>/dev/null
                        wait_for 5 cg_empty "${_d#"$CG"}"
                        rmdir "$_d" 2>/dev/null
                done
        done
        rm -rf "$XDG" "$WORK"/u-*
        [ "$added_passwd" = 1 ] && sed -i "/^moatvm:x:$UID_U:/d" /etc/passwd
        [ "$added_group" = 1 ] && sed -i "/^moatvm:x:$UID_U:/d" /etc/group
        [ -s /etc/passwd ] || rm -f /etc/passwd
        [ -s /etc/group ] || rm -f /etc/group
        [ "$made_etc" = 1 ] && rmdir /etc 2>/dev/null
        return 0
}

setup_ok=1
# the delegated subtree, the way systemd hands user@.service to the user
mkdir "$CG$USER_CG" "$CG$USER_CG/shell" "$CG$NODELEG_CG" || setup_ok=0
for c in memory pids cpu; do
        grep -qw "$c" "$CG/cgroup.subtree_control" || setup_ok=0
        echo "+$c" > "$CG$USER_CG/cgroup.subtree_control" || setup_ok=0
done
chown "$UID_U:$UID_U" "$CG$USER_CG" "$CG$USER_CG/cgroup.procs" \
        "$CG$USER_CG/cgroup.subtree_control" "$CG$USER_CG/cgroup.threads" || setup_ok=0
chown -R "$UID_U:$UID_U" "$CG$USER_CG/shell" || setup_ok=0
mkdir -p "$XDG" && chown "$UID_U:$UID_U" "$XDG" && chmod 0700 "$XDG" || setup_ok=0
if [ "$setup_ok" != 1 ] || [ -z "$U_NAME" ]; then
        fail rootless.setup "delegating $USER_CG to uid $UID_U failed (user '$U_NAME')"
        cleanup_all
        exit 0
fi
# the rootfs and the runtime must be usable by the user
if ! as_user "$USER_CG/shell" "test -r $ROOTFS/bin/payload && test -x $ROOTFS/bin/busybox && test -x $RT_BIN && \
                [ \$(id -u) = $UID_U ]" > "$WORK/u-setup.log" 2>&1; then
        fail rootless.setup "uid $UID_U cannot read $ROOTFS or run $RT_BIN: $(cat "$WORK/u-setup.log")"
        cleanup_all
        exit 0
fi
if [ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" != 1 ] ||
   [ "$(cat /proc/sys/user/max_user_namespaces)" = 0 ]; then
        skip rootless "the kernel refuses user namespaces to unprivileged users"
        cleanup_all
        exit 0
fi

# ---- 1: spec --rootless, default cgroup (below the caller's) ----------------
b=$WORK/u-info id=$(new_id uinfo)
if ! ubundle "$b" '"/bin/sh","-c","/bin/payload info; exec /bin/payload sleep 600"'; then
        fail rootless.run "bundle"
elif ! ucreate "$id" "$b"; then
        fail rootless.run "create/start as uid $UID_U: $(rt_err "$b/err")"
else
        pid=$(u_state_field "$id" pid)
        wait_for 10 grep -q '"uid_map"' "$b/out"
        info=$(tr -d '\n' < "$b/out")
        in_uid=$(echo "$info" | grep -o '"uid": *[0-9]*' | head -n1 | sed 's/.*: *//')
        in_map=$(echo "$info" | sed -n 's/.*"uid_map": *"\([^"]*\)".*/\1/p' | sed 's/\\n//g' | tr -s ' ' | sed 's/^ //;s/ $//')
        check rootless.inside-uid 0 "$in_uid" "uid in the container (payload info)"
        check rootless.uid-map "0 $UID_U 1" "$in_map" "/proc/self/uid_map in the container"
        check rootless.host-uid "$UID_U" "$(host_uid "$pid")" "host uid of the container's process $pid"
        check rootless.cgroup "$USER_CG/shell/$id" "$(proc_cgroup "$pid")" \
                "/proc/$pid/cgroup (no cgroupsPath: below the caller's own cgroup)"
        st="$(stat -c '%u %a' "$U_STATE" 2>/dev/null), $(stat -c %u "$U_STATE/$id" 2>/dev/null)"
        check rootless.state-dir "$UID_U 700, $UID_U" "$st" \
                "owner and mode of the state root $U_STATE, owner of its $id"
        if urt "$USER_CG/shell" delete --force "$id" 2> "$b/del.err" &&
           cg_absent "$USER_CG/shell/$id" && [ ! -e "$U_STATE/$id" ]; then
                pass rootless.delete "cgroup $USER_CG/shell/$id and state removed"
        else
                fail rootless.delete "delete --force: $(rt_err "$b/del.err"); cgroup there: $([ -d "$CG$USER_CG/shell/$id" ] && echo yes || echo no), state: $(ls "$U_STATE" 2>/dev/null | tr '\n' ' ')"
        fi
fi
udestroy "$id"

# ---- 2: limits in a cgroup of the delegated subtree --------------------------
b=$WORK/u-res id=$(new_id ures)
if ! ubundle "$b" '"/bin/payload","sleep","600"' '"memory": {"limit": 67108864}, "pids": {"limit": 20}' \
        "$USER_CG/$id"; then
        fail rootless.resources "bundle"
elif ! ucreate "$id" "$b"; then
        fail rootless.resources "create/start as uid $UID_U: $(rt_err "$b/err")"
else
        pid=$(u_state_field "$id" pid)
        check rootless.res.cgroup "$USER_CG/$id" "$(proc_cgroup "$pid")" "/proc/$pid/cgroup (cgroupsPath $USER_CG/$id)"
        check rootless.res.memory.max 67108864 "$(cg_read "$USER_CG/$id" memory.max)" "memory.max"
        check rootless.res.pids.max 20 "$(cg_read "$USER_CG/$id" pids.max)" "pids.max"
        check rootless.res.owner "$UID_U" "$(stat -c %u "$CG$USER_CG/$id" 2>/dev/null)" "owner of $USER_CG/$id"
fi
udestroy "$id"
check rootless.res.gone "" "$( [ -d "$CG$USER_CG/$id" ] && echo "$USER_CG/$id"; ls "$U_STATE" 2>/dev/null)" \
        "cgroup and state left after delete --force"

# ---- 3: create/state/kill/delete as the user ---------------------------------
b=$WORK/u-cycle id=$(new_id ucycle)
if ! ubundle "$b" '"/bin/payload","sleep","600"' '"pids": {"limit": 10}' "$USER_CG/$id"; then
        fail rootless.cycle "bundle"
elif ! ucreate "$id" "$b" "$USER_CG/shell" no-start; then
        fail rootless.cycle "create as uid $UID_U: $(rt_err "$b/err")"
else
        check rootless.cycle.created created "$(u_state_field "$id" status)" "state after create"
        if urt "$USER_CG/shell" start "$id" 2> "$b/start.err" && wait_for 10 u_is_status "$id" running; then
                pid=$(u_state_field "$id" pid)
                check rootless.cycle.cgroup "$USER_CG/$id" "$(proc_cgroup "$pid")" "/proc/$pid/cgroup"
                if urt "$USER_CG/shell" kill "$id" KILL 2> "$b/kill.err" && wait_for 10 u_is_status "$id" stopped; then
                        if urt "$USER_CG/shell" delete "$id" 2> "$b/del.err"; then
                                left=$( [ -d "$CG$USER_CG/$id" ] && echo "cgroup $USER_CG/$id"
                                        ls "$U_STATE" 2>/dev/null | sed 's/^/state /'
                                        [ -e "/proc/$pid" ] && echo "process $pid")
                                check rootless.cycle.clean "" "$(echo $left)" "left after kill + delete"
                        else
                                fail rootless.cycle.clean "delete: $(rt_err "$b/del.err")"
                        fi
                else
                        fail rootless.cycle.clean "kill: $(rt_err "$b/kill.err"); status $(u_state_field "$id" status)"
                fi
        else
                fail rootless.cycle.cgroup "start: $(rt_err "$b/start.err"); status $(u_state_field "$id" status)"
        fi
fi
udestroy "$id"

# ---- 4: no delegation: a memory limit is refused, nothing left --------------
b=$WORK/u-nodeleg id=$(new_id unodeleg)
if ! ubundle "$b" '"/bin/payload","sleep","600"' '"memory": {"limit": 67108864}'; then
        fail rootless.nodeleg "bundle"
elif ucreate "$id" "$b" "$NODELEG_CG" no-start; then
        fail rootless.nodeleg "create with a memory limit succeeded in the root-owned $NODELEG_CG (status $(u_state_field "$id" status))"
else
        if grep -q 'linux.resources.memory needs a cgroup this user may create' "$b/err"; then
                pass rootless.nodeleg "refused: $(rt_err "$b/err")"
        else
                fail rootless.nodeleg "unexpected error: $(rt_err "$b/err")"
        fi
        left=$( find "$CG$NODELEG_CG" -mindepth 1 -type d 2>/dev/null
                ls "$U_STATE" 2>/dev/null | sed 's/^/state /'
                procs_in_cgroups_named "$id" | sed 's/^/process /'
                cat "$CG$NODELEG_CG/cgroup.procs" | sed 's/^/process in nodeleg /')
        check rootless.nodeleg.clean "" "$(echo $left)" "left after the refused create"
fi
udestroy "$id"

cleanup_all
