# shellcheck shell=sh
# In-VM test library (busybox sh), sourced by /init and by every test in
# /moat/tests. A test reports each check with pass/fail/skip NAME DETAIL;
# those write "MOATVM RESULT NAME STATUS DETAIL" on fd 3 (the console) and
# count it in $RESULTS. Everything else a test prints goes to its log, which
# the runner shows when the test failed.
#
# Conventions (those of the pytest integration tests): a bundle is a
# directory whose config.json is what `moat-runtime spec` writes, edited
# with sed (there is no python or jq in the VM); the rootfs is
# /moat/rootfs (busybox, /bin/payload = the static test payload).

RT_BIN=/usr/bin/moat-runtime
STATE=/run/moatvm/state
RESULTS=/run/moatvm/results
ROOTFS=/moat/rootfs
CG=/sys/fs/cgroup
WORK=/run/moatvm/work

rt() { "$RT_BIN" --root "$STATE" "$@"; }

result() {
        _name=$1 _st=$2
        shift 2
        echo "MOATVM RESULT $_name $_st $*" | tr '\n' ' ' | sed 's/ *$//' >&3
        echo >&3
        echo "$_st $_name" >> "$RESULTS"
        echo "== $_name: $_st $*"
}
pass() { result "$1" PASS "${2:-}"; }
fail() { result "$1" FAIL "${2:-}"; }
skip() { result "$1" SKIP "${2:-}"; }

# check NAME EXPECTED ACTUAL [WHAT]: PASS when equal, else FAIL naming both.
check() {
        if [ "$2" = "$3" ]; then
                pass "$1" "${4:-value} = '$3'"
        else
                fail "$1" "${4:-value}: expected '$2', got '$3'"
        fi
}

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# wait_for SECONDS COMMAND...: poll COMMAND every 0.05s; 0 once it succeeds.
wait_for() {
        _end=$(( $(cut -d. -f1 /proc/uptime) + $1 ))
        shift
        while ! "$@"; do
                [ "$(cut -d. -f1 /proc/uptime)" -ge "$_end" ] && return 1
                usleep 50000
        done
        return 0
}

# The error text of the last runtime call, one line.
rt_err() { tr '\n' ' ' < "$1" | cut -c1-300; }
# Whether a runtime error says the feature is not implemented (the
# runtime's own words; a kernel's EOPNOTSUPP, "Operation not supported",
# is an error like any other).
not_supported() {
        sed 's/Operation not supported//g' "$1" | grep -qi 'not supported\|not implemented'
}

# mkbundle DIR ARGS [RESOURCES] [CGROUPS_PATH]
#   ARGS: the body of the process.args JSON array ('"/bin/payload","info"');
#   RESOURCES: members added to linux.resources ('"pids": {"limit": 10}');
#   CGROUPS_PATH: linux.cgroupsPath.
mkbundle() {
        _b=$1 _args=$2 _res=${3:-} _cgp=${4:-}
        rm -rf "$_b"
        mkdir -p "$_b"
        if ! (cd "$_b" && rt spec); then
                echo "mkbundle: spec failed"
                return 1
        fi
        _c=$_b/config.json
        sed -i -e 's|"terminal": true|"terminal": false|' \
               -e 's|"path": "rootfs"|"path": "/moat/rootfs"|' \
               -e "/\"args\": \[/,/\]/c\\    \"args\": [$(sed_escape "$_args")]," "$_c"
        [ -n "$_res" ] && sed -i "s|\"resources\": {|\"resources\": {$(sed_escape "$_res"),|" "$_c"
        [ -n "$_cgp" ] && sed -i "s|\"linux\": {|\"linux\": {\"cgroupsPath\": \"$(sed_escape "$_cgp")\",|" "$_c"
        if ! grep -q '"terminal": false' "$_c" || ! grep -qF "\"args\": [$_args]," "$_c" ||
           ! grep -q '"path": "/moat/rootfs"' "$_c" ||
           { [ -n "$_res" ] && ! grep -qF "\"resources\": {$_res," "$_c"; } ||
           { [ -n "$_cgp" ] && ! grep -qF "\"cgroupsPath\": \"$_cgp\"" "$_c"; }; then
                echo "mkbundle: editing the spec output failed:"
                cat "$_c"
                return 1
        fi
}

# A string for the replacement of sed's s||| or the text of c\.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

# script NAME: stdin becomes /vm/NAME.sh in the rootfs (run it with
# '"/bin/sh","/vm/NAME.sh"'); the runner clears /vm after each test.
script() {
        mkdir -p "$ROOTFS/vm"
        cat > "$ROOTFS/vm/$1.sh"
}

# set_devices BUNDLE RULES: replace linux.resources.devices with [RULES].
set_devices() {
        sed -i -e "/\"devices\": \[/,/^[[:space:]]*\]/{
                /^[[:space:]]*\]/!d
                s|^\([[:space:]]*\)\]\(,\{0,1\}\)\$|\1\"devices\": [$(sed_escape "$2")]\2|
        }" "$1/config.json"
        grep -qF "\"devices\": [$2]" "$1/config.json"
}

# create ID BUNDLE: `create`, the container's stdio to BUNDLE/out and
# BUNDLE/err (the runtime's own errors land in BUNDLE/err too).
create() {
        rt create --bundle "$2" "$1" < /dev/null > "$2/out" 2> "$2/err"
}
# create_start ID BUNDLE: create and start; 0 once running.
create_start() {
        create "$1" "$2" || return 1
        rt start "$1" 2>> "$2/err" || return 1
        wait_for 10 is_status "$1" running
}
state_field() {  # ID FIELD: a string or number member of `state`
        rt state "$1" 2>/dev/null | tr -d '\n' |
                sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"
}
ctr_pid() { state_field "$1" pid; }
ctr_status() { state_field "$1" status; }
is_status() { [ "$(ctr_status "$1")" = "$2" ]; }
# destroy ID: delete --force, quietly (cleanup).
destroy() { rt delete --force "$1" > /dev/null 2>&1 || true; }

# The cgroup v2 path of a process ("/a/b"), from /proc/PID/cgroup.
proc_cgroup() { sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null; }
cg_read() { cat "$CG$1/$2" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'; }
cg_nprocs() { wc -l < "$CG$1/cgroup.procs" 2>/dev/null || echo 0; }
cg_empty() { grep -q '^populated 0' "$CG$1/cgroup.events" 2>/dev/null; }
cg_absent() { [ ! -d "$CG$1" ]; }
# Pids of every process whose cgroup path contains NEEDLE.
procs_in_cgroups_named() {
        grep -l "^0::.*$1" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3
}
new_id() { echo "vm$1$$"; }

# ---- runner ----------------------------------------------------------------

# Everything a test may leave behind: state dirs, cgroups, processes
# outside the root cgroup. Prints one line per leftover.
leftovers() {
        ls "$STATE" 2>/dev/null | sed 's/^/state: /'
        find "$CG" -mindepth 1 -type d 2>/dev/null | sed 's/^/cgroup: /'
        for _p in $(grep -L '^0::/$' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3); do
                [ -e "/proc/$_p" ] &&
                        echo "process: $_p in $(proc_cgroup "$_p"): $(tr '\0' ' ' < "/proc/$_p/cmdline" 2>/dev/null)"
        done
}
clean_leftovers() {
        for _id in $(ls "$STATE" 2>/dev/null); do destroy "$_id"; done
        rm -rf "${STATE:?}"/*
        for _d in $(find "$CG" -mindepth 1 -type d 2>/dev/null | sort -r); do
                echo 1 > "$_d/cgroup.kill" 2>/dev/null
                wait_for 5 cg_empty "${_d#"$CG"}"
                rmdir "$_d" 2>/dev/null
        done
}

run_all() {
        mkdir -p "$STATE" "$WORK"
        : > "$RESULTS"
        for _t in /moat/tests/*.sh; do
                _name=$(basename "$_t" .sh)
                _log=/run/moatvm/$_name.log
                _n0=$(wc -l < "$RESULTS")
                _f0=$(grep -c '^FAIL' "$RESULTS")
                _t0=$(uptime_s)
                echo "MOATVM START $_name at $_t0"
                # each test in its own shell, killed when it hangs
                timeout -s KILL 150 sh -c ". /moat/lib.sh; cd $WORK; . $_t" 3>&1 > "$_log" 2>&1 < /dev/null
                _rc=$?
                if [ "$_rc" -ne 0 ]; then
                        result "$_name" FAIL "test script exited $_rc$([ $_rc = 137 ] && echo ' (killed after 150s)')"
                elif [ "$(wc -l < "$RESULTS")" -eq "$_n0" ]; then
                        result "$_name" FAIL "test script reported nothing"
                fi
                _left=$(leftovers)
                if [ -n "$_left" ]; then
                        result "$_name.cleanup" FAIL "left behind: $(echo "$_left" | head -n 5 | tr '\n' ';')"
                        clean_leftovers
                fi
                echo "MOATVM TIME $_name $(awk -v a="$_t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')s"
                if [ "$(grep -c '^FAIL' "$RESULTS")" -ne "$_f0" ]; then
                        { echo "---- the kernel's messages during the test:"
                          dmesg | awk -v t="$_t0" '{ x = $0; sub(/^\[ */, "", x); if (x + 0 >= t) print }' | tail -n 60
                        } >> "$_log"
                        echo "MOATVM LOG $_name ----"
                        sed "s/^/MOATVM LOG $_name: /" "$_log"
                        echo "MOATVM LOG $_name ----"
                fi
                rm -rf "${WORK:?}"/* "$ROOTFS/vm"
        done
        echo "MOATVM DONE $(grep -c '^PASS' "$RESULTS") $(grep -c '^FAIL' "$RESULTS") $(grep -c '^SKIP' "$RESULTS")"
}
