"""A container's create reads no /proc/self/mountinfo (whose text the kernel
formats for every mount on the host, so its cost grows with each running
container): the parent finds the cgroup hierarchies with listmount/statmount,
the init gets that list from it (it is the parent's fork), and the rootfs's
parent mount is found with statx. mountinfo stays the fallback for kernels
(or seccomp profiles) without listmount/statmount: then only the parent
reads it, once. The container's /sys/fs/cgroup must come out the same either
way, also for layouts this host does not have (co-mounted controllers, a
hierarchy mounted from a subtree, hidden and doubled mounts), which are
built in a private mount namespace."""

import ctypes
import os
import platform
import re
import shutil
import struct
import subprocess

import pytest

from harness import CGROUP_ROOT, TIMEOUT
from test_mounts import shared_mount  # noqa: F401 (fixture)

pytestmark = pytest.mark.moat_only

MOUNTINFO_RE = re.compile(r'^(\d+) +open(?:at2?)?\(.*"/proc/[^"]*mountinfo"')
SYS_STATMOUNT, SYS_LISTMOUNT = 457, 458

LAYOUT = ['for f in /sys/fs/cgroup/*; do',
          '  if [ -L "$f" ]; then echo "L ${f##*/} $(readlink "$f")";',
          '  else echo "D ${f##*/}"; fi;',
          'done;',
          'echo ---;',
          'cat /proc/self/mountinfo']


def kernel_has_statmount():
    """listmount/statmount with superblock options (Linux 6.11)."""
    if platform.machine() != "x86_64":
        return False
    rel = tuple(int(x) for x in re.findall(r"\d+", platform.release())[:2])
    if rel < (6, 11):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall(ctypes.c_long(SYS_STATMOUNT), None, None, ctypes.c_size_t(0), 0)
    return ctypes.get_errno() != 38  # ENOSYS


def deny_statmount(err):
    """A preexec_fn: a seccomp filter answering statmount and listmount with
    errno err, as an old kernel (ENOSYS) or a container manager's profile
    (EPERM) would; every other call is allowed."""
    def install():
        ld_nr = struct.pack("HBBI", 0x20, 0, 0, 0)          # ld [nr]
        ld_arch = struct.pack("HBBI", 0x20, 0, 0, 4)        # ld [arch]
        prog = b"".join([
            ld_arch,
            struct.pack("HBBI", 0x15, 0, 4, 0xC000003E),    # jeq x86_64 else allow
            ld_nr,
            struct.pack("HBBI", 0x15, 1, 0, SYS_STATMOUNT),  # jeq statmount -> errno
            struct.pack("HBBI", 0x15, 0, 1, SYS_LISTMOUNT),  # jeq listmount -> errno
            struct.pack("HBBI", 0x06, 0, 0, 0x00050000 | err),  # ret ERRNO(err)
            struct.pack("HBBI", 0x06, 0, 0, 0x7FFF0000),     # ret ALLOW
        ])
        buf = ctypes.create_string_buffer(prog, len(prog))

        class Fprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
        libc = ctypes.CDLL(None, use_errno=True)
        # PR_SET_SECCOMP, SECCOMP_MODE_FILTER (root: no no_new_privs needed)
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    return install


def mountinfo_opens(trace_path):
    """[(pid, line)] of every open of a mountinfo file in an strace -f log,
    and the pid of the traced program itself (the first one logged)."""
    first, opens = None, []
    with open(trace_path) as f:
        for line in f:
            m = re.match(r"^(\d+) ", line)
            if m and first is None:
                first = int(m.group(1))
            m = MOUNTINFO_RE.match(line)
            if m:
                opens.append((int(m.group(1)), line.strip()))
    return first, opens


def strace_argv(trace):
    """Every process of the runtime, up to the container program's execve
    (-b execve), which reads mountinfo for the test itself."""
    return ["strace", "-f", "-b", "execve", "-qq", "-o", trace, "-e", "trace=open,openat,openat2"]


def traced(env, argv, trace_name, preexec_fn=None, wrap=()):
    """Run argv under strace -f (behind the wrap command, if any); returns
    (CompletedProcess, first pid, mountinfo opens)."""
    trace = env.path(trace_name)
    # LeakSanitizer cannot run under ptrace (for ASan builds of the runtime)
    run_env = dict(os.environ)
    run_env["ASAN_OPTIONS"] = ":".join(filter(None, [run_env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    r = subprocess.run([*wrap, *strace_argv(trace), *argv], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=TIMEOUT * 2,
                       preexec_fn=preexec_fn, env=run_env)
    first, opens = mountinfo_opens(trace)
    return r, first, opens


def run_argv(c):
    return c.rt.argv("run", "--bundle", c.bundle, c.id)


@pytest.fixture
def strace():
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    if not kernel_has_statmount():
        pytest.skip("the kernel has no listmount/statmount with mount options (Linux 6.11)")


def without_cgroupns(cfg):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "cgroup"]


@pytest.mark.parametrize("variant", ["default", "no-cgroupns", "rslave", "private", "shared"])
def test_create_reads_no_mountinfo(request, env, strace, variant):
    c = env.container(["/bin/sh", "-c", " ".join(LAYOUT)])
    if variant == "no-cgroupns":
        without_cgroupns(c.config)
    elif variant != "default":
        c.config["linux"]["rootfsPropagation"] = variant
    if variant == "shared":
        # pivot_root needs the parent mount of the rootfs made private:
        # the case that looked it up in mountinfo.
        rootfs = os.path.join(request.getfixturevalue("shared_mount"), "rootfs")
        shutil.copytree(env.rootfs, rootfs, symlinks=True)
        c.config["root"]["path"] = rootfs
    c.write_config()
    r, _, opens = traced(env, run_argv(c), "trace")
    assert r.returncode == 0, r.stderr
    assert opens == [], "\n".join(l for _, l in opens)
    out = r.stdout
    assert "D " in out.split("---")[0], out
    if variant == "shared":
        root = [l for l in out.split("---")[1].splitlines() if l.split()[4:5] == ["/"]]
        assert root and "shared:" in root[-1], root


@pytest.mark.parametrize("err", [38, 1], ids=["ENOSYS", "EPERM"])
def test_fallback_reads_mountinfo_once_in_the_parent(env, strace, err):
    """Without listmount/statmount the parent reads mountinfo, the init uses
    its list, and the container sees the same /sys/fs/cgroup."""
    fast = env.container(["/bin/sh", "-c", " ".join(LAYOUT)])
    r, _, opens = traced(env, run_argv(fast), "trace-fast")
    assert r.returncode == 0 and opens == [], (r.stderr, opens)
    want = cgroup_layout(r.stdout, fast.id)

    slow = env.container(["/bin/sh", "-c", " ".join(LAYOUT)])
    r, first, opens = traced(env, run_argv(slow), "trace-fallback", deny_statmount(err))
    assert r.returncode == 0, r.stderr
    assert [pid for pid, _ in opens] == [first], "\n".join(l for _, l in opens)
    assert cgroup_layout(r.stdout, slow.id) == want


def cgroup_layout(out, cid):
    """The container's /sys/fs/cgroup: its entries (links with targets) and
    each cgroup mount's fstype, root, super options and mount options, with
    the container id made neutral."""
    entries, mountinfo = out.split("---", 1)
    mounts = set()
    for line in mountinfo.splitlines():
        if " - " not in line:
            continue
        pre, post = line.split(" - ", 1)
        f, p = pre.split(), post.split()
        if f[4].startswith("/sys/fs/cgroup"):
            mounts.add((f[4], f[3].replace(cid, "ID"), f[5], p[0], p[2]))
    return sorted(entries.split("\n")), sorted(mounts)


# ---- layouts this host does not have, in a private mount namespace --------

SETUP = r"""
set -e
# the subtree of the memory hierarchy, held before the host's mounts go
mount --bind "$HOST_MEMORY_SUBTREE" "$STAGE"
umount -R /sys/fs/cgroup
mount -t tmpfs -o mode=755 moat-test-cgroups /sys/fs/cgroup
cd /sys/fs/cgroup
mkdir cpu,cpuacct memory pids devices freezer freezer2 systemd unified
# co-mounted names: the links cpu and cpuacct must appear in the container
mount -t cgroup -o cpu cgroup cpu,cpuacct
# a subtree of a hierarchy: mountinfo's root field is not "/"
mount --move "$STAGE" memory
# a hidden mount: the blkio hierarchy under the pids one
mount -t cgroup -o blkio cgroup pids
mount -t cgroup -o pids cgroup pids
mount -t cgroup -o devices cgroup devices
# one hierarchy at two places
mount -t cgroup -o freezer cgroup freezer
mount -t cgroup -o freezer cgroup freezer2
mount -t cgroup -o none,name=systemd cgroup systemd
mount -t cgroup2 cgroup2 unified
cd /
exec "$@"
"""


def hybrid_host():
    return all(os.path.isdir(os.path.join(CGROUP_ROOT, h)) for h in
               ("cpu", "memory", "pids", "devices", "freezer", "blkio", "systemd", "unified")) \
        and not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")) \
        and not os.path.lexists(os.path.join(CGROUP_ROOT, "cpu,cpuacct"))


SETUP_UNIFIED = r"""
set -e
umount -R /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
exec "$@"
"""


def layouts_in_private_ns(env, setup, cgroupns, extra_env=(), same_entries=True):
    """The container's /sys/fs/cgroup with setup's layout in a private mount
    namespace: found with listmount/statmount, then with mountinfo (statmount
    and listmount answering ENOSYS). Checks who read mountinfo."""
    script = env.path("layout.sh")
    with open(script, "w") as f:
        f.write(setup)
    layouts = []
    for name, preexec in (("fast", None), ("fallback", deny_statmount(38))):
        c = env.container(["/bin/sh", "-c", " ".join(LAYOUT)])
        if not cgroupns:
            without_cgroupns(c.config)
        c.write_config()
        wrap = ["unshare", "--mount", "--propagation", "private", "env", *extra_env, "sh", script]
        r, first, opens = traced(env, run_argv(c), f"trace-{name}", preexec, wrap)
        assert r.returncode == 0, r.stderr
        if name == "fast":
            assert opens == [], "\n".join(l for _, l in opens)
        else:
            assert [pid for pid, _ in opens] == [first], "\n".join(l for _, l in opens)
        layouts.append(cgroup_layout(r.stdout, c.id))
    assert layouts[0][1] == layouts[1][1]
    if same_entries:
        assert layouts[0][0] == layouts[1][0]
    return layouts[0]


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "no-cgroupns"])
def test_unified_layout(env, strace, cgroupns):
    """Pure cgroup v2 (the host's cgroup2 tree alone at /sys/fs/cgroup)."""
    if not os.path.isdir(os.path.join(CGROUP_ROOT, "unified")) and \
            not os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        pytest.skip("no cgroup2 hierarchy on this host")
    # without a cgroup namespace the whole tree is seen: other cgroups come and go
    entries, mounts = layouts_in_private_ns(env, SETUP_UNIFIED, cgroupns, same_entries=cgroupns)
    cg = [m for m in mounts if m[0].startswith("/sys/fs/cgroup")]
    assert [(m[0], m[3]) for m in cg] == [("/sys/fs/cgroup", "cgroup2")], mounts


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "no-cgroupns"])
def test_layout_from_listmount_and_mountinfo(env, strace, cgroupns):
    if not hybrid_host():
        pytest.skip("needs this host's hybrid layout with separate cpu and cpuacct hierarchies")
    subtree = os.path.join(CGROUP_ROOT, "memory", "moat-test-" + os.urandom(4).hex())
    os.mkdir(subtree)
    env.on_cleanup(lambda: os.rmdir(subtree) if os.path.isdir(subtree) else None)
    stage = env.path("stage")
    os.mkdir(stage)

    entries, mounts = layouts_in_private_ns(env, SETUP, cgroupns,
                                            (f"HOST_MEMORY_SUBTREE={subtree}", f"STAGE={stage}"))
    assert "L cpu cpu,cpuacct" in entries and "L cpuacct cpu,cpuacct" in entries, entries
    for d in ("cpu,cpuacct", "memory", "pids", "devices", "freezer", "freezer2", "systemd", "unified"):
        assert f"D {d}" in entries, (d, entries)
    by_mp = {m[0]: m for m in mounts}
    # one mount per mountpoint: the hidden blkio one is not copied in
    assert len(by_mp) == len(mounts), mounts
    assert by_mp["/sys/fs/cgroup/cpu,cpuacct"][4].split(",")[1:] == ["cpu"], by_mp
    assert "pids" in by_mp["/sys/fs/cgroup/pids"][4].split(","), by_mp
    assert "blkio" not in by_mp["/sys/fs/cgroup/pids"][4].split(","), by_mp
    assert "name=systemd" in by_mp["/sys/fs/cgroup/systemd"][4].split(","), by_mp
    assert by_mp["/sys/fs/cgroup/unified"][3] == "cgroup2", by_mp
    if not cgroupns:
        # a bind of the container's own cgroup: below the subtree for memory
        sub = "/" + os.path.basename(subtree)
        assert by_mp["/sys/fs/cgroup/memory"][1] == f"{sub}/ID", by_mp
        assert by_mp["/sys/fs/cgroup/pids"][1] == "/ID", by_mp
