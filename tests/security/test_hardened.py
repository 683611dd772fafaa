"""`spec --hardened`: moat's default security, seen from inside a container.

The config comes from the runtime's own `spec --hardened` output (root and
args swapped in); the checks read what the kernel reports: /proc/self/status
capability masks, NoNewPrivs and Seccomp, the errno of each blocked syscall
(a static probe built at test time makes raw syscalls), the sysctl, and the
pids cgroup limit. The probes of the container's surroundings (masked and
read-only paths, devices, fds, cwd, pids, network interfaces) use the
payload's subcommands, and a second small static probe (source below,
built next to the seccomp probe) covers the syscalls and the mknod+open
sequence the shared probe does not make."""

import json
import os
import platform
import shutil
import subprocess

import pytest

import harness
import probe

pytestmark = pytest.mark.moat_only

HARDENED_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                 "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
                 "CAP_SETUID", "CAP_SYS_CHROOT"]
EPERM, ENOENT, EACCES, EROFS, ENOSYS = 1, 2, 13, 30, 38


@pytest.fixture(scope="module", autouse=True)
def _probe_cleanup():
    yield
    probe.remove_probe_dir()


def spec_hardened(env):
    d = env.path("spec-doc")
    os.makedirs(d)
    env.rt.ok("spec", "--hardened", "--bundle", d)
    with open(os.path.join(d, "config.json")) as f:
        return json.load(f)


def test_spec_hardened_document(env):
    cfg = spec_hardened(env)
    p = cfg["process"]
    assert p["terminal"] is False
    assert p["noNewPrivileges"] is True
    caps = p["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        assert sorted(caps[k]) == sorted(HARDENED_CAPS), k
    assert "inheritable" not in caps and "ambient" not in caps
    lx = cfg["linux"]
    assert lx["sysctl"] == {"net.ipv4.ping_group_range": "0 2147483647"}
    assert lx["resources"]["pids"] == {"limit": 2048}
    types = [n["type"] for n in lx["namespaces"]]
    assert "cgroup" in types and "network" in types
    assert not any("path" in n for n in lx["namespaces"])
    for m in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware", "/proc/acpi"):
        assert m in lx["maskedPaths"]
    for r in ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus"):
        assert r in lx["readonlyPaths"]
    sc = lx["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO" and sc["defaultErrnoRet"] == 1
    named = {n for e in sc["syscalls"] for n in e["names"]}
    assert "read" in named and "mount" not in named and "keyctl" not in named
    if platform.machine() == "x86_64":
        with open(os.path.join(harness.REPO, "data", "seccomp", "default.json")) as f:
            assert json.load(f) == sc, "data/seccomp/default.json differs from spec --hardened"


def test_spec_plain_unchanged_and_rootless_conflict(env):
    d = env.path("plain")
    os.makedirs(d)
    env.rt.ok("spec", "--bundle", d)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert "seccomp" not in cfg["linux"]
    assert cfg["process"]["terminal"] is True
    d2 = env.path("both")
    os.makedirs(d2)
    r = env.rt.cmd("spec", "--hardened", "--rootless", "--bundle", d2)
    assert r.returncode != 0
    assert "--hardened" in r.stderr and "--rootless" in r.stderr
    assert not os.path.exists(os.path.join(d2, "config.json"))


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def test_hardened_credentials_and_filter(env):
    cfg = probe.hardened_config(env, ["/bin/cat", "/proc/self/status"])
    c = env.container(config=cfg)
    r = c.run()
    assert r.returncode == 0, r.stderr
    st = status_fields(r.stdout)
    mask = harness.cap_mask(HARDENED_CAPS)
    assert mask == 0x800405FB
    for k in ("CapEff", "CapBnd", "CapPrm"):
        assert int(st[k], 16) == mask, (k, st[k])
    assert int(st["CapInh"], 16) == 0
    assert int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"


BLOCKED = {
    "mount": EPERM, "umount": EPERM, "unshare-user": EPERM, "clone-newns": EPERM,
    "keyctl": EPERM, "add-key": EPERM, "bpf": EPERM, "perf": EPERM, "io-uring": EPERM,
    "userfaultfd": EPERM, "kexec": EPERM, "init-module": EPERM, "open-by-handle": EPERM,
    "reboot": EPERM, "swapon": EPERM, "acct": EPERM, "settimeofday": EPERM,
    "clock-settime": EPERM, "ptrace": EPERM, "setns": EPERM, "sethostname": EPERM,
    "pivot-root": EPERM, "socket-alg": EPERM, "socket-vsock": EPERM,
    "socket-alg-highbits": EPERM, "personality-0x40000": EPERM,
    "clone3": ENOSYS,
}
ALLOWED = ["getpid", "getcwd", "clone-plain", "unshare-fs", "socket-inet", "socket-unix",
           "personality-0", "personality-query", "chroot"]


def test_hardened_blocked_syscalls(env):
    cfg = probe.hardened_config(env, ["/mnt/probe"])
    calls = list(BLOCKED) + ALLOWED
    if platform.machine() == "x86_64":
        calls.append("iopl")
    got = probe.run_probe(env, cfg, *calls)
    for call, want in BLOCKED.items():
        assert got[call] == want, f"{call}: errno {got[call]}, want {want}"
    if "iopl" in got:
        assert got["iopl"] == EPERM
    for call in ALLOWED:
        assert got[call] == 0, f"{call} failed with errno {got[call]} under the default profile"


def test_hardened_ordinary_programs_work(env):
    script = ("set -e; cd /tmp 2>/dev/null || cd /; ls / >/dev/null; echo a | sed s/a/b/; "
              "sh -c 'exit 3' || echo sub=$?; cat /proc/self/stat >/dev/null; "
              "date >/dev/null; id -u; sleep 0")
    cfg = probe.hardened_config(env, ["/bin/sh", "-c", script])
    c = env.container(config=cfg)
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["b", "sub=3", "0"]


def test_hardened_sysctl_ping_group_range(env):
    cfg = probe.hardened_config(env, ["/bin/cat", "/proc/sys/net/ipv4/ping_group_range"])
    c = env.container(config=cfg)
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "2147483647"]


def test_hardened_pids_limit(env):
    cfg = probe.hardened_config(env, ["/bin/sleep", "30"])
    c = env.container(config=cfg)
    c.create()
    pid = c.state()["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    path = None
    for line in lines:
        _, ctrls, p = line.split(":", 2)
        if "pids" in ctrls.split(","):
            path = os.path.join(harness.CGROUP_ROOT, "pids", p.lstrip("/"), "pids.max")
        elif ctrls == "" and path is None and os.path.exists(
                os.path.join(harness.CGROUP_ROOT, "cgroup.controllers")):
            path = os.path.join(harness.CGROUP_ROOT, p.lstrip("/"), "pids.max")
    assert path, f"no pids cgroup for the init: {lines}"
    with open(path) as f:
        assert f.read().strip() == "2048"
    c.delete(force=True)


def test_hardened_exec_gets_the_filter(env):
    cfg = probe.hardened_config(env, ["/bin/sleep", "30"])
    c = env.container(config=cfg)
    c.create()
    c.start()
    r = env.rt.cmd("exec", c.id, "/mnt/probe", "mount", "keyctl", "clone3", "getpid")
    assert r.returncode == 0, r.stderr
    assert harness.parse_json(r.stdout) == {"mount": EPERM, "keyctl": EPERM, "clone3": ENOSYS,
                                            "getpid": 0}
    r = env.rt.cmd("exec", c.id, "/bin/cat", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    st = status_fields(r.stdout)
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    assert int(st["CapEff"], 16) == harness.cap_mask(HARDENED_CAPS)
    c.delete(force=True)


# ---- the container's surroundings, seen from inside ----------------------

# A second static probe for what tests/security/seccomp-probe.c does not
# make: request_key, delete_module, ioperm, and mknod of a device followed
# by open (the errno of each step). Prints {"name": errno} as one line.
EXTRA_PROBE_SRC = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int out;

static void put(const char *k, int e)
{
        printf("%s\"%s\": %d", out++ ? ", " : "", k, e);
}

static int err(long r)
{
        return r < 0 ? errno : 0;
}

int main(int argc, char **argv)
{
        printf("{");
        for (int i = 1; i < argc; i++) {
                const char *w = argv[i];
                errno = 0;
                if (!strcmp(w, "request-key"))
                        put(w, err(syscall(SYS_request_key, "user", "moat", NULL, 0)));
                else if (!strcmp(w, "delete-module"))
                        put(w, err(syscall(SYS_delete_module, "moat_no_such_module", O_NONBLOCK)));
#ifdef SYS_ioperm
                else if (!strcmp(w, "ioperm"))
                        put(w, err(syscall(SYS_ioperm, 0x80, 1, 1)));
#endif
                else if (!strcmp(w, "mknod-open-block")) {
                        /* 8:0 is the first SCSI disk: not in any allow list. */
                        const char *p = "/dev/moat-sda";
                        int r = mknod(p, S_IFBLK | 0600, makedev(8, 0));
                        put("mknod", r < 0 ? errno : 0);
                        if (r == 0) {
                                int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                                put("open", fd < 0 ? errno : 0);
                                if (fd >= 0)
                                        close(fd);
                                unlink(p);
                        }
                } else
                        put(w, -1);
        }
        printf("}\n");
        fflush(stdout);
        return 0;
}
"""


def extra_probe():
    """Builds the extra probe into the shared probe dir (mounted at /mnt)."""
    d = probe.probe_dir()
    dest = os.path.join(d, "hprobe")
    if not os.path.exists(dest):
        src = os.path.join(d, "hprobe.c")
        with open(src, "w") as f:
            f.write(EXTRA_PROBE_SRC)
        cc = shutil.which("cc") or shutil.which("gcc")
        subprocess.run([cc, "-static", "-O1", "-o", dest, src], check=True,
                       capture_output=True, timeout=120)
    return "/mnt/hprobe"


def hardened(env):
    """A fresh copy of the hardened config (spec --hardened runs once per
    test: it refuses to overwrite its config.json)."""
    cached = getattr(env, "_hardened_cfg", None)
    if cached is None:
        cached = env._hardened_cfg = probe.hardened_config(env, ["/bin/true"])
    return json.loads(json.dumps(cached))


def run_hardened(env, args, cfg=None):
    """Runs args in a hardened container; returns the result (rc checked)."""
    cfg = json.loads(json.dumps(cfg)) if cfg else hardened(env)
    cfg["process"]["args"] = list(args)
    r = env.container(config=cfg).run()
    assert r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr!r}"
    return r


def payload(env, *args, cfg=None):
    return harness.parse_json(run_hardened(env, ["/bin/payload", *args], cfg).stdout)


MASKED_FILES = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]


@pytest.mark.parametrize("path", MASKED_FILES)
def test_hardened_masked_file_reads_empty(env, path):
    if not os.path.exists(path):
        # This kernel has no such file (e.g. /proc/kcore without
        # CONFIG_PROC_KCORE): there is nothing to hide, and the
        # container's procfs must not have it either.
        st = payload(env, "stat", path)
        assert st["exists"] is False, st
        return
    # The null device is bound over the file: reads are empty, and what
    # is written (the null device takes it) never reaches the kernel file.
    r = run_hardened(env, ["/bin/payload", "cat", path])
    assert r.stdout == "", f"{path} is not masked: {r.stdout[:200]!r}"
    st = payload(env, "stat", path)
    assert (st["type"], st["major"], st["minor"]) == ("char", 1, 3), st
    r = run_hardened(env, ["/bin/sh", "-c", f"echo x 2>/dev/null > {path}; cat {path}"])
    assert r.stdout == "", f"{path} returned data after a write: {r.stdout!r}"


def test_hardened_masked_dir_lists_empty_and_refuses_writes(env):
    ls = payload(env, "ls", "/sys/firmware")
    assert ls["ok"] is True and ls["entries"] == {}, ls
    for f in ("/sys/firmware/moat-new", "/sys/firmware/moat-dir/x"):
        w = payload(env, "touch", f)
        assert w["ok"] is False and w["errno"] in (EROFS, ENOENT, EACCES), (f, w)
    w = payload(env, "touch", "/sys/firmware/moat-new")
    assert w["errno"] == EROFS, w
    m = payload(env, "mkdir", "/sys/firmware/moat-dir")
    assert m["ok"] is False and m["errno"] == EROFS, m


@pytest.mark.parametrize("path", ["/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches"])
def test_hardened_proc_sys_is_readonly(env, path):
    value = "moat-x" if path.endswith("hostname") else "1"
    w = payload(env, "write", path, value)
    assert w["ok"] is False and w["errno"] == EROFS, (path, w)


def test_hardened_sys_is_readonly(env):
    for p in ("/sys/moat-new", "/sys/kernel/moat-new"):
        w = payload(env, "touch", p)
        assert w["ok"] is False and w["errno"] in (EROFS, EACCES), (p, w)
    w = payload(env, "touch", "/sys/moat-new")
    assert w["errno"] == EROFS, w
    w = payload(env, "write", "/sys/kernel/mm/transparent_hugepage/enabled", "never")
    assert w["ok"] is False and w["errno"] in (EROFS, ENOENT), w


def test_hardened_mknod_refused_without_cap_mknod(env):
    assert "CAP_MKNOD" not in HARDENED_CAPS
    for args in (("mknod-test", "/dev/moat-null", "1", "3"),
                 ("mknod-test", "/dev/moat-mem", "1", "1"),
                 ("mknod-test", "/tmp/moat-null")):
        r = payload(env, *args)
        assert r["ok"] is False and r["errno"] in (EPERM, EROFS), (args, r)
    # /dev is a writable tmpfs: only the missing capability refuses it.
    r = payload(env, "mknod-test", "/dev/moat-null", "1", "3")
    assert r["errno"] == EPERM, r


def test_hardened_device_cgroup_refuses_block_device(env):
    """With CAP_MKNOD added, a block device outside the allow list may be
    created (the device cgroup allows mknod of any node, as runc's does)
    but opening it fails with EPERM: the device cgroup, not a missing
    capability or file mode, refuses it."""
    cfg = hardened(env)
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k].append("CAP_MKNOD")
    hp = extra_probe()
    got = harness.parse_json(run_hardened(env, [hp, "mknod-open-block"], cfg).stdout)
    assert got == {"mknod": 0, "open": EPERM}, got
    # The allowed null device opens in the same container configuration.
    r = payload(env, "open", "/dev/null", "w", cfg=cfg)
    assert r["ok"] is True, r


def test_hardened_only_stdio_fds(env):
    info = payload(env, "info")
    assert sorted(info["fds"], key=int) == ["0", "1", "2"], info["fds"]


def test_hardened_cwd_inside_root(env):
    info = payload(env, "info")
    assert info["cwd"] == "/"
    link = payload(env, "readlink", "/proc/self/cwd")
    assert link["target"] == "/", link
    link = payload(env, "readlink", "/proc/1/root")
    assert link["target"] == "/", link


def test_hardened_no_host_pid_visible(env):
    ls = payload(env, "ls", "/proc")
    pids = sorted(int(n) for n in ls["entries"] if n.isdigit())
    assert pids == [1], f"/proc of a one-process container lists {pids}"
    info = payload(env, "info")
    assert info["pid"] == 1 and info["ppid"] == 0
    r = run_hardened(env, ["/bin/payload", "cat", "/proc/1/cmdline"])
    assert r.stdout.split("\0")[:2] == ["/bin/payload", "cat"]


def test_hardened_no_host_interface_visible(env):
    ls = payload(env, "ls", "/sys/class/net")
    assert ls["ok"] is True and sorted(ls["entries"]) == ["lo"], ls
    r = run_hardened(env, ["/bin/payload", "cat", "/proc/net/dev"])
    names = [line.split(":", 1)[0].strip() for line in r.stdout.splitlines()[2:]]
    assert names == ["lo"], r.stdout
    # The host has at least one interface besides lo, or the check above
    # could not tell a new network namespace from the host's.
    assert set(os.listdir("/sys/class/net")) - {"lo"}


EXTRA_BLOCKED = {"request-key": EPERM, "delete-module": EPERM}


def test_hardened_blocked_syscalls_extra(env):
    cfg = hardened(env)
    calls = list(EXTRA_BLOCKED)
    if platform.machine() == "x86_64":
        calls.append("ioperm")
    got = harness.parse_json(run_hardened(env, [extra_probe(), *calls], cfg).stdout)
    for call, want in EXTRA_BLOCKED.items():
        assert got[call] == want, f"{call}: errno {got[call]}, want {want}"
    if platform.machine() == "x86_64":
        assert got["ioperm"] == EPERM, got
    # Outside seccomp (as root, all capabilities) the same calls fail
    # otherwise (ENOKEY, ENOENT or ENOSYS), so EPERM above is the
    # filter's answer.
    host = subprocess.run([os.path.join(probe.probe_dir(), "hprobe"), "request-key",
                           "delete-module"], capture_output=True, text=True, timeout=30)
    h = harness.parse_json(host.stdout)
    assert h["delete-module"] not in (0, EPERM) and h["request-key"] not in (0, EPERM), h


# ---- securebits (annotation org.moat.securebits) ----------------------------

SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1 << 0, 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2


@pytest.mark.moat_only
def test_securebits_annotation_applied(env):
    out = env.run_payload({"annotations": {"org.moat.securebits": "noroot,noroot_locked,no_setuid_fixup"}},
                          args=("securebits",))
    want = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP
    assert out["securebits"] & want == want, out


@pytest.mark.moat_only
def test_securebits_unknown_name_refused(env):
    c = env.container(["/bin/payload", "true"], {"annotations": {"org.moat.securebits": "noroot,bogus"}})
    r = c.run()
    assert r.returncode != 0
    assert "org.moat.securebits" in r.stderr and "bogus" in r.stderr, r.stderr
