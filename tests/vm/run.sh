#!/bin/bash
# The cgroup v2 lane: boot Debian's kernel in qemu (TCG) on a pure cgroup v2
# layout (cgroup_no_v1=all) with an initramfs holding busybox, moat-runtime
# (plus the shared libraries it links), the static test payload and the
# in-VM tests (tests/vm/tests/*.sh), run them, and read the results off the
# serial console.
#
# Prints one "vm: RESULT <name> PASS|FAIL|SKIP <detail>" line per test and,
# last, "vm: N passed, N failed, N skipped". Exits non-zero when a test
# failed, when the VM did not finish (timeout, crash) or when the lane could
# not be set up; then the whole console output is shown.
#
# Environment:
#   MOAT_BUILD_DIR      build directory (default: <repo>/build)
#   MOAT_RUNTIME        runtime binary to test (default: the built moat-runtime;
#                       e.g. $(command -v runc) checks the tests themselves)
#   MOAT_VM_CACHE       kernel cache, reused across runs (default /var/cache/moat-vm)
#   MOAT_VM_TIMEOUT     seconds before qemu is killed (default 300)
#   MOAT_VM_TESTS       space-separated test names to run (default: all)
#   MOAT_VM_VERBOSE=1   stream the console while the VM runs
#   MOAT_VM_CGROUP2_OPTS  cgroup2 mount options in the VM (default systemd's:
#                       nsdelegate,memory_recursiveprot; "none" for none)
set -u -o pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
vmdir=$repo/tests/vm
build=${MOAT_BUILD_DIR:-$repo/build}
case $build in /*) ;; *) build=$repo/$build ;; esac
runtime=${MOAT_RUNTIME:-$build/src/runtime-cli/moat-runtime}
payload=$build/tests/moat-test-payload
cache=${MOAT_VM_CACHE:-/var/cache/moat-vm}
vm_timeout=${MOAT_VM_TIMEOUT:-300}
# Modules loaded in the VM, with their dependencies: overlay (what image
# managers stack a container's rootfs on) and brd (a RAM block device, the
# target of the io.max tests).
modules=(overlay brd)

die() {
        echo "vm: $*" >&2
        echo "vm: 0 passed, 1 failed, 0 skipped"
        exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

t_start=$(now)
for tool in qemu-system-x86_64 cpio dpkg-deb apt-get objcopy busybox ldd; do
        command -v "$tool" >/dev/null || die "missing tool: $tool (run tools/install-deps.sh)"
done
[ -x "$runtime" ] || die "no runtime at $runtime (build first: meson compile -C $build)"
[ -x "$payload" ] || die "no payload at $payload (build first: meson compile -C $build)"
busybox=$(command -v busybox)
file_static() { ! ldd "$1" >/dev/null 2>&1; }
file_static "$busybox" || die "$busybox is not static (install busybox-static)"
file_static "$payload" || die "$payload is not static"

# ---- work dir, and no qemu outliving the run -------------------------------
work=$(mktemp -d /tmp/moat-vm.XXXXXX) || die "mktemp failed"
qemu_pid=
cleanup() {
        if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
                kill -KILL "$qemu_pid" 2>/dev/null
                wait "$qemu_pid" 2>/dev/null
        fi
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE

# ---- kernel: Debian's current linux-image, cached, never installed ---------
mkdir -p "$cache" || die "cannot create $cache"
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n1)
if [ -z "$kpkg" ]; then
        # offline or no package lists: fall back to the newest cached kernel
        kpkg=$(ls -1 "$cache" 2>/dev/null | sed -n 's/^\(linux-image-.*-amd64\)\.extracted$/\1/p' | sort -V | tail -n1)
        [ -n "$kpkg" ] || die "cannot find the linux-image-amd64 dependency (apt-cache depends) and nothing is cached in $cache"
fi
kdir=$cache/$kpkg.extracted
if [ ! -e "$kdir/.complete" ]; then
        download() {
                (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >/dev/null)
        }
        if ! download; then
                echo "vm: apt-get download $kpkg failed; running apt-get update" >&2
                apt-get update -q >/dev/null || die "apt-get update failed"
                download || die "apt-get download $kpkg failed"
        fi
        deb=$(ls -1t "$cache/${kpkg}"_*.deb 2>/dev/null | head -n1)
        [ -n "$deb" ] || die "downloaded $kpkg but found no .deb in $cache"
        rm -rf "$kdir" "$kdir.tmp"
        mkdir -p "$kdir.tmp"
        # only the kernel image and the modules: nothing runs, nothing lands on the host
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$kdir.tmp" --wildcards './boot/vmlinuz-*' './lib/modules/*' ||
                die "extracting $deb failed"
        touch "$kdir.tmp/.complete"
        mv "$kdir.tmp" "$kdir"
        rm -f "$deb"
        # older kernels' trees are of no further use
        for old in "$cache"/linux-image-*.extracted; do
                [ "$old" = "$kdir" ] || rm -rf "$old"
        done
fi
vmlinuz=$(ls -1 "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || die "no vmlinuz in $kdir"
kver=${vmlinuz##*/vmlinuz-}
moddir=$kdir/lib/modules/$kver
[ -d "$moddir" ] || die "no modules for $kver in $kdir"

# ---- initramfs -------------------------------------------------------------
ir=$work/initramfs
mkdir -p "$ir"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,newroot,moat/tests,moat/modules}
# the applet links are made in the VM (/init: busybox --install -s), which
# is much faster than a fork per link here
cp "$busybox" "$ir/bin/busybox"
ln -s busybox "$ir/bin/sh"

# moat-runtime and what it links (the dynamic loader included)
cp "$runtime" "$ir/usr/bin/moat-runtime"
while read -r lib; do
        mkdir -p "$ir$(dirname "$lib")"
        cp -L "$lib" "$ir$lib"
done < <(ldd "$runtime" | grep -oE '/[^ ]+' | sort -u)

# the container rootfs: busybox, the payload at /bin/payload, passwd/group
rootfs=$ir/moat/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var,mnt}
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"
cp "$payload" "$rootfs/bin/payload"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$rootfs/etc/group"

# kernel modules, dependencies first, decompressed on the host (busybox's
# insmod takes plain .ko files)
declare -A mod_seen=()
mod_order=()
mod_file() {  # name -> path of its .ko[.xz|.zst] in the tree ('-' and '_' are the same)
        local pat=${1//[-_]/[-_]}
        find "$moddir/kernel" -regextype posix-extended -regex ".*/${pat}\.ko(\.xz|\.zst|\.gz)?" -print -quit
}
mod_plain() {  # file -> a plain .ko in $work/mods
        local f=$1 out=$work/mods/$(basename "${1%.*}")
        mkdir -p "$work/mods"
        case $f in
        *.ko) cp "$f" "$work/mods/" && echo "$work/mods/$(basename "$f")" ;;
        *.ko.xz) xz -dc "$f" > "$out" && echo "$out" ;;
        *.ko.zst) zstd -qdc "$f" > "$out" && echo "$out" ;;
        *.ko.gz) gzip -dc "$f" > "$out" && echo "$out" ;;
        esac
}
mod_add() {
        local name=${1//-/_} f ko deps d
        [ -n "${mod_seen[$name]:-}" ] && return 0
        mod_seen[$name]=1
        if grep -qE "/${1//[-_]/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null; then
                return 0  # built into the kernel
        fi
        f=$(mod_file "$1")
        [ -n "$f" ] || die "module $1 not found under $moddir"
        ko=$(mod_plain "$f") || die "cannot decompress $f"
        deps=$(objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout 2>/dev/null |
               tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' ')
        for d in $deps; do mod_add "$d"; done
        mod_order+=("$(basename "$ko")")
}
for m in "${modules[@]}"; do mod_add "$m"; done
for ko in "${mod_order[@]}"; do
        cp "$work/mods/$ko" "$ir/moat/modules/"
        echo "$ko" >> "$ir/moat/modules/order"
done
touch "$ir/moat/modules/order"

# the init and the tests
cp "$vmdir/init" "$ir/init"
chmod 755 "$ir/init"
cp "$vmdir/lib.sh" "$ir/moat/lib.sh"
if [ -n "${MOAT_VM_TESTS:-}" ]; then
        for t in $MOAT_VM_TESTS; do
                f=$(ls "$vmdir"/tests/*"$t"*.sh 2>/dev/null | head -n1)
                [ -n "$f" ] || die "no test matching $t in $vmdir/tests"
                cp "$f" "$ir/moat/tests/"
        done
else
        cp "$vmdir"/tests/*.sh "$ir/moat/tests/"
fi
(cd "$ir" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 > "$work/initramfs.cpio") ||
        die "cpio failed"
t_built=$(now)

# ---- boot ------------------------------------------------------------------
console=$work/console.log
: > "$console"
cgopts=${MOAT_VM_CGROUP2_OPTS:-nsdelegate,memory_recursiveprot}
case $cgopts in *[!a-z_,]*) die "MOAT_VM_CGROUP2_OPTS: only letters, '_' and ',' please" ;; esac
cmdline="console=ttyS0 quiet loglevel=3 panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 tsc=reliable moatvm.cgopts=$cgopts"
qemu-system-x86_64 \
        -machine pc -accel tcg,thread=multi -cpu max -m 1024 -smp 2 \
        -nodefaults -no-user-config -display none -no-reboot \
        -monitor none -serial "file:$console" -net none \
        -kernel "$vmlinuz" -initrd "$work/initramfs.cpio" -append "$cmdline" \
        </dev/null >"$work/qemu.out" 2>&1 &
qemu_pid=$!
tail_pid=
if [ "${MOAT_VM_VERBOSE:-0}" = 1 ]; then
        tail -n +1 -f "$console" --pid "$qemu_pid" &
        tail_pid=$!
fi
timed_out=0
deadline=$(( $(date +%s) + vm_timeout ))
while kill -0 "$qemu_pid" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
                timed_out=1
                kill -KILL "$qemu_pid" 2>/dev/null
                break
        fi
        sleep 0.2
done
wait "$qemu_pid"
qemu_rc=$?
qemu_pid=
[ -n "$tail_pid" ] && wait "$tail_pid" 2>/dev/null
t_end=$(now)

# ---- results ---------------------------------------------------------------
tr -d '\r' < "$console" > "$work/console.txt"
grep -a '^MOATVM RESULT ' "$work/console.txt" | sed 's/^MOATVM /vm: /'
pass=$(grep -ac '^MOATVM RESULT [^ ]* PASS' "$work/console.txt")
fail=$(grep -ac '^MOATVM RESULT [^ ]* FAIL' "$work/console.txt")
skip=$(grep -ac '^MOATVM RESULT [^ ]* SKIP' "$work/console.txt")
done_line=$(grep -a '^MOATVM DONE ' "$work/console.txt" | tail -n1)
boot=$(sed -n 's/^MOATVM BOOT \([0-9.]*\).*/\1/p' "$work/console.txt" | head -n1)

problem=
if [ "$timed_out" = 1 ]; then
        problem="the VM did not finish within ${vm_timeout}s (killed)"
elif [ -z "$done_line" ]; then
        problem="the VM stopped without reporting MOATVM DONE (qemu exit $qemu_rc)"
else
        read -r _ _ d_pass d_fail d_skip <<< "$done_line"
        if [ "$d_pass $d_fail $d_skip" != "$pass $fail $skip" ]; then
                problem="the VM counted $d_pass/$d_fail/$d_skip (pass/fail/skip) but printed $pass/$fail/$skip results"
        fi
fi
if [ -n "$problem" ] || [ "$fail" -gt 0 ]; then
        echo "vm: ---- console output ----"
        cat "$work/console.txt"
        echo "vm: ---- qemu output ----"
        cat "$work/qemu.out"
        echo "vm: ---- end ----"
        [ -n "$problem" ] && echo "vm: $problem" >&2 && fail=$((fail + 1))
fi
echo "vm: kernel $kver; initramfs built in $(elapsed "$t_start" "$t_built")s;" \
     "VM ran $(elapsed "$t_built" "$t_end")s (first test at ${boot:-?}s after boot);" \
     "lane $(elapsed "$t_start" "$t_end")s"
echo "vm: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
