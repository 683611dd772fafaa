"""Regression tests for the published container escapes, one (or a few) per
CVE, named after it; plus the LSM and Landlock options.

Each test attacks the way the advisory describes (or the closest a test can
do without a second malicious container) and checks what the kernel or the
host shows; each would fail if its defence were removed (the comment at each
test says which defence).  docs/security.md lists the defences.

Probes that need system calls the payload has no verb for (keyctl, ptrace,
unshare + mount) come from PROBE_SRC below, compiled static once per module.
"""

import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading

import pytest

import harness
from harness import parse_json, wait_for

pytestmark = pytest.mark.moat_only

PROBE_SRC = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* keyring: the id of this process's session keyring */
static int keyring(void)
{
        long id = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* SESSION */, 0);
        printf("{\"session\":%ld,\"errno\":%d}\n", id, id < 0 ? errno : 0);
        return 0;
}

/* ptrace-userns PID: join PID's user namespace (as a process of the
 * container would be), then try to attach to PID and read its environ. */
static int ptrace_userns(const char *pid)
{
        char p[64];
        snprintf(p, sizeof(p), "/proc/%s/ns/user", pid);
        int ns = open(p, O_RDONLY | O_CLOEXEC);
        int setns_err = 0;
        if (ns < 0 || setns(ns, CLONE_NEWUSER) < 0)
                setns_err = errno;
        long r = ptrace(PTRACE_ATTACH, atoi(pid), 0, 0);
        int attach_err = r < 0 ? errno : 0;
        if (r == 0) {
                waitpid(atoi(pid), NULL, __WALL);
                ptrace(PTRACE_DETACH, atoi(pid), 0, 0);
        }
        snprintf(p, sizeof(p), "/proc/%s/environ", pid);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        int environ_err = fd < 0 ? errno : 0;
        printf("{\"setns\":%d,\"attach\":%d,\"environ\":%d}\n", setns_err, attach_err, environ_err);
        return 0;
}

/* cgroup-escape: the CVE-2022-0492 steps, each step's errno. */
static int cgroup_escape(void)
{
        int direct = mount("cgroup", "/tmp", "cgroup", 0, "memory") < 0 ? errno : 0;
        int un = unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) < 0 ? errno : 0;
        int userns_mount = -1, agent = -1;
        if (!un) {
                mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL);
                userns_mount = mount("cgroup", "/tmp", "cgroup", 0, "rdma") < 0 ? errno : 0;
                if (!userns_mount) {
                        int fd = open("/tmp/release_agent", O_WRONLY | O_CLOEXEC);
                        agent = fd < 0 ? errno : (write(fd, "/x", 2) < 0 ? errno : 0);
                }
        }
        printf("{\"mount\":%d,\"unshare\":%d,\"userns_mount\":%d,\"release_agent\":%d}\n", direct, un,
               userns_mount, agent);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 2 && !strcmp(argv[1], "keyring"))
                return keyring();
        if (argc >= 3 && !strcmp(argv[1], "ptrace-userns"))
                return ptrace_userns(argv[2]);
        if (argc >= 2 && !strcmp(argv[1], "cgroup-escape"))
                return cgroup_escape();
        fprintf(stderr, "usage: probe keyring|ptrace-userns PID|cgroup-escape\n");
        return 2;
}
"""

ALL_CAPS = list(harness.CAP_NUMBERS)


@pytest.fixture(scope="module")
def probe_dir():
    """A directory holding the static probe (bind-mounted at /mnt)."""
    d = tempfile.mkdtemp(prefix="moat-probe-", dir="/tmp")
    os.chmod(d, 0o755)
    src = os.path.join(d, "probe.c")
    with open(src, "w") as f:
        f.write(PROBE_SRC)
    subprocess.run(["cc", "-static", "-O1", "-o", os.path.join(d, "probe"), src],
                   check=True, timeout=120)
    os.unlink(src)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def probe_mount(probe_dir):
    return {"destination": "/mnt", "type": "bind", "source": probe_dir,
            "options": ["bind", "ro"]}


def with_mounts(env, extra, **over):
    ov = {"mounts": env.config()["mounts"] + list(extra)}
    ov.update(over)
    return ov


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def host_caps():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
    return [n for n in ALL_CAPS if mask & (1 << harness.CAP_NUMBERS[n])]


def write_through_fd(fd):
    """Try to open the file behind an O_PATH fd for writing and write to it,
    as the CVE-2019-5736 exploit does; returns the errno (0 = written)."""
    try:
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
    except OSError as e:
        return e.errno
    try:
        os.write(w, b"#!/bin/sh\necho pwned\n")
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(w)


# ---- CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe --

@pytest.fixture
def runtime_copy(env):
    """A private copy of the runtime, so nothing else executes it and the
    exploit's write could succeed if the defence were missing."""
    path = env.path("moat-runtime-copy")
    shutil.copy2(harness.runtime_path(), path)
    return path


SHARED_PIDNS = {"linux": {"namespaces": [{"type": t} for t in
                                         ("network", "ipc", "uts", "mount", "cgroup")]}}


def test_cve_2019_5736_runtime_exe_not_writable_after_run(env, runtime_copy):
    # Defence: moat_protect_self_exe re-executes run/create/exec from a
    # read-only clone of the binary's mount (or a sealed memfd).
    # A container sharing the host's pid namespace sees the runtime's
    # processes; that is when the binary must be protected (with a private
    # pid namespace nothing in the container runs next to the runtime).
    before = sha256(runtime_copy)
    c = env.container(["/bin/payload", "sleep", "30"], SHARED_PIDNS)
    p = subprocess.Popen([runtime_copy, "--root", env.rt.root, "run", "--bundle", c.bundle, c.id],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    harness._live_popens.add(p)
    fd = -1
    try:
        assert wait_for(lambda: c.rt.cmd("state", c.id).returncode == 0
                        and json.loads(c.rt.cmd("state", c.id).stdout)["status"] == "running")
        # What the exploit does from a container that sees the runtime:
        # keep a handle on its exe while it runs ...
        fd = os.open(f"/proc/{p.pid}/exe", os.O_PATH)
        target = os.readlink(f"/proc/self/fd/{fd}")
        c.kill("KILL")
        p.communicate(timeout=30)
    finally:
        if p.returncode is None:
            p.kill()
            p.communicate()
        harness._live_popens.discard(p)
    try:
        # ... and write through it once the runtime has exited.
        err = write_through_fd(fd)
    finally:
        os.close(fd)
    assert err in (errno.EROFS, errno.EPERM, errno.ETXTBSY), (
        f"the runtime binary ({target}) was writable through /proc/<pid>/exe (errno {err})")
    assert sha256(runtime_copy) == before


def test_cve_2019_5736_init_exe_not_writable(env, runtime_copy):
    # The created init is a clone of the runtime process until it execs the
    # container's program: its exe is the runtime binary too.
    before = sha256(runtime_copy)
    c = env.container(["/bin/payload", "true"], SHARED_PIDNS)
    # stdio to files: a pipe would stay open in the waiting init
    with open(c.out_path, "ab") as out, open(c.err_path, "ab") as err_f:
        r = subprocess.run([runtime_copy, "--root", env.rt.root, "create", "--bundle", c.bundle, c.id],
                           stdin=subprocess.DEVNULL, stdout=out, stderr=err_f, timeout=30)
    assert r.returncode == 0, c.errors()
    c.init_pid = c.state()["pid"]
    fd = os.open(f"/proc/{c.init_pid}/exe", os.O_PATH)
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
        c.start()
        assert wait_for(lambda: c.status() == "stopped")
        c.delete()
        err = write_through_fd(fd)
    finally:
        os.close(fd)
    assert err in (errno.EROFS, errno.EPERM, errno.ETXTBSY), (
        f"the init's exe ({target}) was writable (errno {err})")
    assert sha256(runtime_copy) == before


# ---- CVE-2016-9962: ptrace of the init while it holds host resources ------

def test_cve_2016_9962_init_not_ptraceable_from_its_user_namespace(env, probe_dir):
    # Defence: the init sets PR_SET_DUMPABLE 0 first thing. The container
    # here keeps every capability and an identity uid map, so no credential
    # change makes the kernel clear the flag by itself: a process of the
    # container's user namespace (uid 0, all capabilities there) could
    # attach to the init if it were dumpable.
    ov = {
        "process": {"capabilities": {k: host_caps() for k in
                                     ("bounding", "effective", "permitted")},
                    "noNewPrivileges": False},
        "linux": {"namespaces": [{"type": t} for t in
                                 ("pid", "network", "ipc", "uts", "mount", "user")],
                  "uidMappings": [{"containerID": 0, "hostID": 0, "size": 65536}],
                  "gidMappings": [{"containerID": 0, "hostID": 0, "size": 65536}]},
        "mounts": [m for m in env.config()["mounts"] if m["type"] != "cgroup"],
    }
    c = env.container(["/bin/payload", "true"], ov)
    c.create()
    r = subprocess.run([os.path.join(probe_dir, "probe"), "ptrace-userns", str(c.init_pid)],
                       capture_output=True, text=True, timeout=30)
    res = parse_json(r.stdout)
    assert res["setns"] == 0, res
    assert res["attach"] == errno.EPERM, f"the waiting init could be ptraced: {res}"
    assert res["environ"] == errno.EACCES, res


# ---- CVE-2024-21626: leaked host fds, cwd outside the root ---------------

def test_cve_2024_21626_no_host_fd_reaches_the_container(env):
    # Defence: every fd the runtime opens is O_CLOEXEC and the init runs
    # close_range(CLOEXEC) past stdio and the preserved fds; here the
    # caller leaks a host directory fd (as runc leaked /sys/fs/cgroup).
    leak = os.open("/sys/fs/cgroup", os.O_PATH | os.O_DIRECTORY)
    os.set_inheritable(leak, True)
    try:
        c = env.container(["/bin/payload", "fds"])
        r = c.run(pass_fds=(leak,))
    finally:
        os.close(leak)
    assert r.returncode == 0, r.stderr
    fds = parse_json(r.stdout)["fds"]
    assert sorted(fds, key=int) == ["0", "1", "2"], fds


@pytest.mark.parametrize("n", range(3, 11))
def test_cve_2024_21626_cwd_through_proc_self_fd(env, n):
    # Defence: the init resolves process.cwd inside the root without magic
    # links and checks getcwd() after chdir; a cwd of /proc/self/fd/N would
    # otherwise land on whatever host directory the init had open as N.
    c = env.container(["/bin/payload", "info"], {"process": {"cwd": f"/proc/self/fd/{n}"}})
    r = c.run()
    if r.returncode != 0:
        assert "cwd" in r.stderr, r.stderr
        return
    cwd = parse_json(r.stdout)["cwd"]
    assert cwd and cwd.startswith("/") and "unreachable" not in cwd, cwd


@pytest.mark.parametrize("n", range(3, 11))
def test_cve_2024_21626_cwd_mkdir_through_proc_self_fd(env, n):
    # Defence: missing cwd directories are created inside the root
    # (RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), never through an fd the init
    # holds on the bundle or the state directory.
    name = f"moat-escape-{secrets.token_hex(3)}"
    c = env.container(["/bin/payload", "info"], {"process": {"cwd": f"/proc/self/fd/{n}/{name}"}})
    r = c.run()
    for d in (env.tmp, env.rt.root, c.bundle, c.state_dir):
        if os.path.isdir(d):
            assert name not in os.listdir(d), f"created {name} in host directory {d}"
    if r.returncode == 0:
        cwd = parse_json(r.stdout)["cwd"]
        assert cwd and cwd.startswith("/") and "unreachable" not in cwd, cwd


# ---- CVE-2021-30465, CVE-2024-45310: symlink races on mount targets -------

RENAME_EXCHANGE = 2
SYS_renameat2 = 316
AT_FDCWD = -100


def exchange(a, b):
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(SYS_renameat2, AT_FDCWD, a.encode(), AT_FDCWD, b.encode(),
                        RENAME_EXCHANGE)


def test_cve_2021_30465_cve_2024_45310_mount_target_race(env, private_rootfs):
    # Defence: mount targets are resolved (and missing ones created) with
    # openat2(RESOLVE_IN_ROOT) from an fd of the rootfs, mounted by fd and
    # checked after the mount. A host thread swaps a path component of the
    # destination between a directory and a symlink to a host directory
    # while containers are created: the host directory must stay empty
    # (a string-based runtime would mkdir and mount in it).
    canary = tempfile.mkdtemp(prefix="moat-canary-", dir="/tmp")
    env.on_cleanup(lambda: shutil.rmtree(canary, ignore_errors=True))
    src = env.path("volume-src")
    os.makedirs(src)
    with open(os.path.join(src, "marker"), "w") as f:
        f.write("volume\n")
    shared = os.path.join(private_rootfs, "shared")
    os.makedirs(os.path.join(shared, "target"))
    os.symlink(canary, os.path.join(shared, "swap"))
    a, b = os.path.join(shared, "target"), os.path.join(shared, "swap")

    stop = threading.Event()
    swaps = [0]

    def flipper():
        while not stop.is_set():
            if exchange(a, b) == 0:
                swaps[0] += 1

    ov = with_mounts(env, [{"destination": "/shared/target/new/dir", "type": "bind",
                            "source": src, "options": ["bind", "ro"]}],
                     root={"path": private_rootfs, "readonly": False})
    t = threading.Thread(target=flipper, daemon=True)
    t.start()
    results = []
    try:
        for i in range(50):
            c = env.container(["/bin/payload", "cat", "/shared/target/new/dir/marker"], ov)
            r = c.run()
            results.append(r.returncode)
            assert os.listdir(canary) == [], f"container {i} wrote to the host: {os.listdir(canary)}"
    finally:
        stop.set()
        t.join()
    assert swaps[0] > 0
    assert os.listdir(canary) == []
    assert 0 in results or all(rc != 0 for rc in results)


# ---- CVE-2023-27561, CVE-2023-28642, CVE-2019-16884, CVE-2019-19921 -------

@pytest.mark.parametrize("name", ["proc", "sys"])
def test_cve_2023_27561_cve_2023_28642_proc_sys_symlink_refused(env, private_rootfs, name):
    # Defence: a proc/sysfs destination that is a symlink in the image is
    # refused (RESOLVE_IN_ROOT alone would follow it inside the root).
    fake = os.path.join(private_rootfs, "fake-" + name)
    os.makedirs(fake)
    os.rmdir(os.path.join(private_rootfs, name))
    os.symlink("/fake-" + name, os.path.join(private_rootfs, name))
    c = env.container(["/bin/payload", "true"], {"root": {"path": private_rootfs}})
    r = c.run()
    assert r.returncode != 0
    assert "is a symlink" in r.stderr and f'"/{name}"' in r.stderr, r.stderr
    assert os.listdir(fake) == []


@pytest.mark.parametrize("kind", ["bind", "tmpfs"])
def test_cve_2019_16884_cve_2019_19921_fake_proc_refused(env, kind):
    # Defence: nothing but a proc mount (or a few lxcfs-style file binds)
    # may be mounted at or under /proc, so a volume over /proc cannot feed
    # the runtime fake procfs files (attr/exec, oom_score_adj,
    # sys/kernel/cap_last_cap); every procfs write goes through a procfs the
    # runtime verified (fstatfs), see test-protect.
    fake = env.path("fake-proc")
    os.makedirs(os.path.join(fake, "self", "attr"))
    os.makedirs(os.path.join(fake, "sys", "kernel"))
    for rel, text in (("self/attr/exec", ""), ("self/oom_score_adj", "0"),
                      ("sys/kernel/cap_last_cap", "0")):
        with open(os.path.join(fake, rel), "w") as f:
            f.write(text)
    m = ({"destination": "/proc", "type": "bind", "source": fake, "options": ["bind"]}
         if kind == "bind" else {"destination": "/proc", "type": "tmpfs", "source": "tmpfs"})
    c = env.container(["/bin/payload", "info"],
                      with_mounts(env, [m], process={"oomScoreAdj": 500}))
    r = c.run()
    assert r.returncode != 0
    assert "inside /proc" in r.stderr or "/proc" in r.stderr, r.stderr
    with open(os.path.join(fake, "self", "oom_score_adj")) as f:
        assert f.read() == "0"


def test_cve_2019_16884_mount_under_proc_refused(env):
    src = env.path("fake-sys")
    os.makedirs(src)
    c = env.container(["/bin/payload", "true"], with_mounts(env, [
        {"destination": "/proc/sys", "type": "bind", "source": src, "options": ["bind"]}]))
    r = c.run()
    assert r.returncode != 0
    assert '"/proc/sys" cannot be mounted because it is inside /proc' in r.stderr, r.stderr


def test_cve_2019_16884_oom_score_adj_lands_in_the_real_procfs(env):
    # The write itself: through a verified procfs, it reaches the kernel.
    c = env.container(["/bin/payload", "cat", "/proc/self/oom_score_adj"],
                      {"process": {"oomScoreAdj": 345}})
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "345"


# ---- CVE-2025-31133, CVE-2025-52565, CVE-2025-52881: /dev/null and masks ---

def test_cve_2025_31133_dev_null_replaced_by_a_file_refused(env):
    # Defence: the /dev/null used to mask files must be char 1:3 on the
    # opened fd; here a bind puts a host file there, which the mask would
    # otherwise bind read-write over /proc/kcore and friends.
    host_file = env.path("not-null")
    with open(host_file, "w") as f:
        f.write("host data\n")
    c = env.container(["/bin/payload", "true"], with_mounts(env, [
        {"destination": "/dev/null", "type": "bind", "source": host_file, "options": ["bind"]}]))
    r = c.run()
    assert r.returncode != 0
    # refused when the default device is made (the bind is in the way) or,
    # had something slipped through, by the mask's char 1:3 check
    assert "/dev/null" in r.stderr, r.stderr
    with open(host_file) as f:
        assert f.read() == "host data\n"


def test_cve_2025_31133_dev_null_symlink_in_image(env, private_rootfs):
    # An image whose /dev/null is a symlink to a procfs file, with no /dev
    # tmpfs: the runtime replaces the link by the real node (never follows
    # it), and masks with that node.
    os.symlink("/proc/sys/kernel/core_pattern", os.path.join(private_rootfs, "dev", "null"))
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    mounts = [m for m in env.config()["mounts"] if m["destination"] != "/dev"
              and not m["destination"].startswith("/dev/")]
    c = env.container(["/bin/payload", "stat", "/dev/null"],
                      {"root": {"path": private_rootfs, "readonly": False}, "mounts": mounts})
    r = c.run()
    assert r.returncode == 0, r.stderr
    st = parse_json(r.stdout)
    assert (st["type"], st["major"], st["minor"]) == ("char", 1, 3), st
    masked = next(p for p in env.config()["linux"]["maskedPaths"] if os.path.isfile(p))
    c2 = env.container(["/bin/payload", "cat", masked],
                       {"root": {"path": private_rootfs, "readonly": False}, "mounts": mounts})
    r2 = c2.run()
    assert r2.returncode == 0 and r2.stdout == "", (r2.stdout[:100], r2.stderr)
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_pattern


def test_cve_2025_31133_masked_path_symlink_to_host_path(env, private_rootfs):
    # Defence: masked paths are resolved inside the root: a masked path
    # that is a symlink to a host path masks the rootfs's copy of it, not
    # the host's (which the container would then not see masked).
    host_dir = tempfile.mkdtemp(prefix="moat-host-", dir="/tmp")
    env.on_cleanup(lambda: shutil.rmtree(host_dir, ignore_errors=True))
    host_file = os.path.join(host_dir, "secret")
    with open(host_file, "w") as f:
        f.write("host\n")
    inside = os.path.join(private_rootfs, host_file.lstrip("/"))
    os.makedirs(os.path.dirname(inside))
    with open(inside, "w") as f:
        f.write("image copy\n")
    os.symlink(host_file, os.path.join(private_rootfs, "etc", "secret"))
    c = env.container(["/bin/payload", "cat", "/etc/secret"],
                      {"root": {"path": private_rootfs},
                       "linux": {"maskedPaths": ["/etc/secret"]}})
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "", f"the masked path was not masked inside the root: {r.stdout!r}"
    with open(host_file) as f:
        assert f.read() == "host\n"


@pytest.mark.parametrize("dev_tmpfs", [True, False])
def test_cve_2026_41579_cve_2026_47766_dev_symlink_refused(env, private_rootfs, dev_tmpfs):
    # Defence: a /dev that is a symlink in the image is refused, with or
    # without a /dev tmpfs in mounts[]; nothing is created anywhere.
    host_dir = tempfile.mkdtemp(prefix="moat-hostdev-", dir="/tmp")
    env.on_cleanup(lambda: shutil.rmtree(host_dir, ignore_errors=True))
    os.rmdir(os.path.join(private_rootfs, "dev"))
    os.symlink(host_dir, os.path.join(private_rootfs, "dev"))
    mounts = env.config()["mounts"]
    if not dev_tmpfs:
        mounts = [m for m in mounts if not m["destination"].startswith("/dev")]
    c = env.container(["/bin/payload", "true"],
                      {"root": {"path": private_rootfs, "readonly": False}, "mounts": mounts})
    r = c.run()
    assert r.returncode != 0
    assert "symlink" in r.stderr and "/dev" in r.stderr, r.stderr
    assert os.listdir(host_dir) == []
    assert not os.path.exists(os.path.join(private_rootfs, host_dir.lstrip("/")))


# ---- CVE-2022-0492: cgroup release_agent ------------------------------------

def test_cve_2022_0492_release_agent_not_writable(env, probe_dir):
    # Defence: the cgroup mounts are read-only in the default spec and the
    # container lacks CAP_SYS_ADMIN, so it can neither write release_agent
    # nor mount a hierarchy of its own; in a user namespace of its own the
    # kernel (5.17+) refuses release_agent.
    c = env.container(["/bin/payload", "info"])
    r = c.run()
    assert r.returncode == 0, r.stderr
    cg = [l.split() for l in parse_json(r.stdout)["mountinfo"].splitlines()
          if " /sys/fs/cgroup" in l]
    assert cg, "no cgroup mount"
    for f in cg:
        if f[4].startswith("/sys/fs/cgroup/") or f[4] == "/sys/fs/cgroup":
            if f[4] != "/sys/fs/cgroup":
                assert "ro" in f[5].split(","), f"{f[4]} is not read-only: {f}"

    for h in os.listdir("/sys/fs/cgroup"):
        if os.path.exists(f"/sys/fs/cgroup/{h}/release_agent"):
            w = env.run_payload(args=("write", f"/sys/fs/cgroup/{h}/release_agent", "/x"))
            assert not w["ok"], f"release_agent of {h} written"
            break

    res = parse_json(env.container(["/mnt/probe", "cgroup-escape"],
                                   with_mounts(env, [probe_mount(probe_dir)])).run().stdout)
    assert res["mount"] == errno.EPERM, res
    assert res["release_agent"] != 0, res


def test_cve_2022_0492_default_spec_cgroup_mount_is_readonly(env):
    r = env.rt.ok("spec", cwd=env.tmp)
    with open(os.path.join(env.tmp, "config.json")) as f:
        spec = json.load(f)
    cg = [m for m in spec["mounts"] if m["destination"] == "/sys/fs/cgroup"]
    assert cg and "ro" in cg[0].get("options", []), cg
    assert "CAP_SYS_ADMIN" not in spec["process"]["capabilities"]["bounding"]
    assert r.returncode == 0


# ---- keyrings ---------------------------------------------------------------

def own_session_keyring():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(250, 0, ctypes.c_long(-3), 0)  # keyctl(GET_KEYRING_ID, SESSION)


def test_keyring_private_session_keyring(env, probe_dir):
    # Defence: the init joins a new anonymous session keyring
    # (KEYCTL_JOIN_SESSION_KEYRING) unless --no-new-keyring.
    host = own_session_keyring()
    ov = with_mounts(env, [probe_mount(probe_dir)])
    c = env.container(["/mnt/probe", "keyring"], ov)
    r = c.run()
    assert r.returncode == 0, r.stderr
    inside = parse_json(r.stdout)
    assert inside["session"] > 0 and inside["session"] != host, (inside, host)

    # The same probe sees the caller's keyring with --no-new-keyring, so
    # the check above can tell the two apart.
    c2 = env.container(["/mnt/probe", "keyring"], ov)
    r2 = c2.run("--no-new-keyring")
    assert r2.returncode == 0, r2.stderr
    assert parse_json(r2.stdout)["session"] == host


# ---- LSM labels ---------------------------------------------------------------

def lsm_active(name):
    libc = ctypes.CDLL(None, use_errno=True)
    ids = (ctypes.c_uint64 * 64)()
    size = ctypes.c_uint32(ctypes.sizeof(ids))
    n = libc.syscall(461, ids, ctypes.byref(size), 0)
    want = {"apparmor": 104, "selinux": 101}[name]
    return n > 0 and want in list(ids)[:n]


@pytest.mark.parametrize("field,value,lsm,text", [
    ("apparmorProfile", "moat-test", "apparmor",
     'process.apparmorProfile "moat-test": AppArmor is not enabled on this host'),
    ("selinuxLabel", "system_u:system_r:container_t:s0", "selinux",
     'process.selinuxLabel "system_u:system_r:container_t:s0": SELinux is not enabled on this host'),
])
def test_lsm_label_refused_when_inactive(env, field, value, lsm, text):
    if lsm_active(lsm):
        pytest.skip(f"{lsm} is active on this host")
    c = env.container(["/bin/payload", "true"], {"process": {field: value}})
    r = c.run()
    assert r.returncode != 0
    assert text in r.stderr, r.stderr

    c2 = env.container(["/bin/payload", "true"], {"process": {field: value},
                                                  "annotations": {"org.moat.lsm.ignore-inactive": "true"}})
    r2 = c2.run()
    assert r2.returncode == 0, r2.stderr


def test_lsm_mount_label_refused_when_selinux_inactive(env):
    if lsm_active("selinux"):
        pytest.skip("SELinux is active on this host")
    label = "system_u:object_r:container_file_t:s0:c1,c2"
    c = env.container(["/bin/payload", "true"], {"linux": {"mountLabel": label}})
    r = c.run()
    assert r.returncode != 0
    assert f'linux.mountLabel "{label}": SELinux is not enabled on this host' in r.stderr, r.stderr
    c2 = env.container(["/bin/payload", "true"], {"linux": {"mountLabel": label},
                                                  "annotations": {"org.moat.lsm.ignore-inactive": "true"}})
    assert c2.run().returncode == 0


# ---- Landlock -----------------------------------------------------------------

def landlock_config(env, rules):
    return with_mounts(env, [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                              "options": ["nosuid", "nodev"]}],
                       annotations={"org.moat.landlock": rules})


def test_landlock_readonly_root_blocks_writes(env):
    w = env.run_payload(landlock_config(env, "ro:/;rx:/bin"), args=("write", "/tmp/x", "data"))
    assert not w["ok"] and w["errno"] == errno.EACCES, w


def test_landlock_write_allowed_where_listed(env):
    w = env.run_payload(landlock_config(env, '{"read":["/"],"write":["/tmp"],"execute":["/bin"]}'),
                        args=("write", "/tmp/x", "data"))
    assert w["ok"], w
    w = env.run_payload(landlock_config(env, '{"read":["/"],"write":["/tmp"],"execute":["/bin"]}'),
                        args=("write", "/root/x", "data"))
    assert not w["ok"] and w["errno"] in (errno.EACCES, errno.EROFS), w


def test_landlock_reads_outside_allowed_dirs_fail(env):
    cfg = landlock_config(env, "ro:/etc;rx:/bin")
    ok = env.run_payload(cfg, args=("open", "/etc/passwd"))
    assert ok["ok"], ok
    denied = env.run_payload(cfg, args=("open", "/usr"))
    assert not denied["ok"] and denied["errno"] == errno.EACCES, denied
    # Landlock implies no_new_privs even when the config does not ask.
    info = env.run_payload(landlock_config(env, "ro:/proc;rx:/bin") |
                           {"process": {"noNewPrivileges": False}}, args=("info",))
    assert str(info["NoNewPrivs"]) == "1", info["NoNewPrivs"]


def test_landlock_bad_annotation_fails_create(env):
    c = env.container(["/bin/payload", "true"], {"annotations": {"org.moat.landlock": "rw:tmp"}})
    r = c.create(check=False)
    assert r.returncode != 0
    assert 'org.moat.landlock: "rw": "tmp" is not an absolute path' in c.errors(), c.errors()
