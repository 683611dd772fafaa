"""`spec --hardened`: moat's default security, seen from inside a container.

The config comes from the runtime's own `spec --hardened` output (root and
args swapped in); the checks read what the kernel reports: /proc/self/status
capability masks, NoNewPrivs and Seccomp, the errno of each blocked syscall
(a static probe built at test time makes raw syscalls), the sysctl, and the
pids cgroup limit."""

import json
import os
import platform

import pytest

import harness
import probe

pytestmark = pytest.mark.moat_only

HARDENED_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                 "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
                 "CAP_SETUID", "CAP_SYS_CHROOT"]
EPERM, ENOSYS = 1, 38


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
