"""linux.seccomp end to end: the compiled-filter cache under
<state root>/.cache/seccomp, unknown syscall names, bad configs (path-named
errors, nothing left behind), flags, a filter installed without
noNewPrivileges, SCMP_ACT_NOTIFY with a listener that receives the fd and
the container process state and answers a syscall, and the features
document."""

import array
import ctypes
import fcntl
import json
import os
import select
import socket
import struct
import threading
import time

import pytest

import harness
import probe

pytestmark = pytest.mark.moat_only

EPERM = 1


@pytest.fixture(scope="module", autouse=True)
def _probe_cleanup():
    yield
    probe.remove_probe_dir()


def small_profile(**extra):
    """Allow everything but getcwd (EPERM) and sethostname (errno 42)."""
    p = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
        ],
    }
    p.update(extra)
    return p


def probe_overrides(seccomp, args=("getcwd", "getpid")):
    return {"process": {"args": ["/mnt/probe", *args]},
            "mounts": harness.default_config("/")["mounts"] + [probe.probe_mount()],
            "linux": {"seccomp": seccomp}}


def cache_files(env):
    d = os.path.join(env.rt.root, ".cache", "seccomp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_filter_applies(env):
    out = env.run_payload(probe_overrides(small_profile(), ("getcwd", "getpid", "sethostname")),
                          args=())  # args come from the overrides
    assert out == {"getcwd": EPERM, "getpid": 0, "sethostname": 42}


def test_cache_reused_and_corrupt_file_replaced(env):
    over = probe_overrides(small_profile())
    c1 = env.container(overrides=over)
    r = c1.run()
    assert r.returncode == 0, r.stderr
    assert harness.parse_json(r.stdout)["getcwd"] == EPERM
    files = cache_files(env)
    assert len(files) == 1 and len(files[0]) == 64, files
    path = os.path.join(env.rt.root, ".cache", "seccomp", files[0])
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600
    assert st.st_size % 8 == 0
    with open(path, "rb") as f:
        good = f.read()

    # A second create with the same profile loads the cached program: the
    # file is not rewritten.
    time.sleep(0.01)  # mtime granularity, not a timing assertion
    c2 = env.container(overrides=over)
    r = c2.run()
    assert r.returncode == 0, r.stderr
    assert harness.parse_json(r.stdout)["getcwd"] == EPERM
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns
    assert cache_files(env) == files

    # A corrupt file is ignored (the filter still applies) and replaced.
    with open(path, "wb") as f:
        f.write(b"\x06" * 24)
    c3 = env.container(overrides=over)
    r = c3.run()
    assert r.returncode == 0, r.stderr
    assert harness.parse_json(r.stdout)["getcwd"] == EPERM
    with open(path, "rb") as f:
        assert f.read() == good


def test_cache_keyed_by_profile(env):
    for errno_ret in (5, 6):
        prof = small_profile()
        prof["syscalls"][0]["errnoRet"] = errno_ret
        out = env.run_payload(probe_overrides(prof), args=())
        assert out["getcwd"] == errno_ret
    assert len(cache_files(env)) == 2


def test_unknown_syscall_name_warns_once(env):
    prof = small_profile()
    prof["syscalls"].append({"names": ["moat_no_such_call", "getppid", "moat_other_unknown"],
                             "action": "SCMP_ACT_ERRNO"})
    prof["syscalls"].append({"names": ["moat_no_such_call"], "action": "SCMP_ACT_KILL"})
    c = env.container(overrides=probe_overrides(prof))
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert harness.parse_json(r.stdout)["getcwd"] == EPERM
    warnings = [l for l in r.stderr.splitlines() if "moat_no_such_call" in l]
    assert len(warnings) == 1, r.stderr
    assert "moat_other_unknown" in warnings[0]


BAD = [
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["close"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["getcwd"], "action": "X"}]},
     ["linux.seccomp.syscalls[3].action", '"X"']),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     ["linux.seccomp.syscalls[0].args[0].index", "out of range"]),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]},
     ["linux.seccomp.syscalls[0].args[0].op", "SCMP_CMP_ALMOST"]),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     ["linux.seccomp.architectures[0]", "SCMP_ARCH_VAX"]),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ALLOW", "errnoRet": 3}]},
     ["linux.seccomp.syscalls[0].errnoRet", "SCMP_ACT_ERRNO"]),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
     ["linux.seccomp.listenerPath", "required"]),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent/moat-agent.sock",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
     ["linux.seccomp.listenerPath", "/nonexistent/moat-agent.sock"]),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"},
     ["linux.seccomp.listenerMetadata"]),
]


@pytest.mark.parametrize("seccomp,needles", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_seccomp_config_fails_cleanly(env, seccomp, needles):
    c = env.container(overrides={"linux": {"seccomp": seccomp}})
    r = c.create(check=False)
    err = c.errors()
    assert r.returncode != 0
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    assert not os.path.lexists(c.state_dir)
    assert not harness.cgroup_dirs_named(c.id)
    assert cache_files(env) == []


def test_flags(env):
    prof = small_profile(flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    out = env.run_payload(probe_overrides(prof), args=())
    assert out["getcwd"] == EPERM and out["getpid"] == 0


def test_filter_without_no_new_privileges(env):
    """Installed before the credentials drop (with CAP_SYS_ADMIN), so the
    default profile must let the init become uid 1000 and drop caps."""
    cfg = probe.hardened_config(env, ["/bin/cat", "/proc/self/status"])
    cfg["process"]["noNewPrivileges"] = False
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    c = env.container(config=cfg)
    r = c.run()
    assert r.returncode == 0, r.stderr
    st = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in r.stdout.splitlines() if ":" in l}
    assert st["Seccomp"] == "2"
    assert st["NoNewPrivs"] == "0"
    assert st["Uid"].split()[0] == "1000"


def test_features_seccomp(env):
    f = json.loads(env.rt.ok("features").stdout)["linux"]["seccomp"]
    assert f["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in f["actions"] and len(f["actions"]) == 9
    assert "SCMP_CMP_MASKED_EQ" in f["operators"] and len(f["operators"]) == 7
    assert "SCMP_ARCH_X86_64" in f["archs"]
    assert set(f["supportedFlags"]) <= set(f["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_TSYNC" in f["supportedFlags"]


# ---- SCMP_ACT_NOTIFY --------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)
ENOMSG = 42


class Agent(threading.Thread):
    """A seccomp agent: accepts one connection, keeps the fd and the JSON,
    then answers the first notification with -ENOMSG."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # bind through the directory: the path may exceed sun_path
        cwd = os.getcwd()
        os.chdir(os.path.dirname(path))
        try:
            self.sock.bind(os.path.basename(path))
        finally:
            os.chdir(cwd)
        self.sock.listen(1)
        self.state = None
        self.fds = []
        self.answered = None
        self.error = None
        self.fd_link = None

    def run(self):
        try:
            self.sock.settimeout(harness.TIMEOUT)
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(harness.TIMEOUT)
                data = b""
                while True:
                    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
                    for level, typ, cdata in anc:
                        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                            fds = array.array("i")
                            fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
                            self.fds.extend(fds)
                    if not msg:
                        break
                    data += msg
            self.state = json.loads(data)
            fd = self.fds[0]
            self.fd_link = os.readlink(f"/proc/self/fd/{fd}")
            r, _, _ = select.select([fd], [], [], harness.TIMEOUT)
            if not r:
                self.error = "no notification"
                return
            notif = bytearray(80)
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, notif, True)
            nid, pid, _flags, nr = struct.unpack_from("=QIIi", notif)
            resp = struct.pack("=QqiI", nid, 0, -ENOMSG, 0)
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(resp), True)
            self.answered = nr
        except Exception as e:  # reported by the test
            self.error = repr(e)

    def close(self):
        self.sock.close()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.mark.parametrize("long_path", [False, True], ids=["short", "long-path"])
def test_notify_listener_gets_fd_and_state(env, long_path):
    sock_path = env.path("agent.sock")
    if long_path:
        d = env.path("d" * 120)
        os.makedirs(d)
        sock_path = os.path.join(d, "agent.sock")
        assert len(sock_path) > 108
    agent = Agent(sock_path)
    env.on_cleanup(agent.close)
    agent.start()
    prof = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "listenerMetadata": "moat-test-metadata",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    c = env.container(["/bin/payload", "mkdir", "/tmp/moat-notified"],
                      overrides={"linux": {"seccomp": prof},
                                 "annotations": {"org.moat.test": "notify"}})
    c.create()
    pid = c.state()["pid"]
    c.start()
    agent.join(harness.TIMEOUT)
    assert not agent.is_alive()
    assert agent.error is None, agent.error

    st = agent.state
    assert st["ociVersion"]
    assert st["fds"] == ["seccompFd"]
    assert len(agent.fds) == 1
    assert agent.fd_link == "anon_inode:seccomp notify"
    assert st["pid"] == pid
    assert st["metadata"] == "moat-test-metadata"
    assert st["state"]["id"] == c.id
    assert st["state"]["pid"] == pid
    assert st["state"]["status"] == "creating"
    assert st["state"]["bundle"] == c.bundle
    assert st["state"]["annotations"] == {"org.moat.test": "notify"}

    # The container's mkdir got the agent's answer.
    assert c.wait_status("stopped")
    out = harness.parse_json(c.output())
    assert out.get("errno") == ENOMSG, out
    assert agent.answered in (83, 258)  # mkdir / mkdirat on x86_64
    c.delete()
