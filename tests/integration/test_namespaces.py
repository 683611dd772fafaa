"""linux.namespaces: new, joined by path, uts names, user and time namespaces."""

import os
import subprocess
import time

import pytest

from harness import pid_alive, wait_for

NS_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts",
            "mount": "mnt", "cgroup": "cgroup", "user": "user", "time": "time"}


def host_ns(kind):
    return os.readlink(f"/proc/self/ns/{NS_FILES[kind]}")


def test_default_namespaces_are_new(env):
    info = env.run_payload()
    for kind in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        assert info["ns"][NS_FILES[kind]] != host_ns(kind), kind
    # not asked for: shared with the host
    assert info["ns"]["user"] == host_ns("user")
    assert info["pid"] == 1


@pytest.mark.parametrize("kind", ["network", "ipc", "uts", "cgroup"])
def test_namespace_not_requested_is_shared(env, kind):
    cfg = env.config()
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]
    ov = {"linux": {"namespaces": nss}}
    if kind == "uts":
        ov["hostname"] = None
    info = env.run_payload(ov)
    assert info["ns"][NS_FILES[kind]] == host_ns(kind)


def test_pid_namespace_shared(env):
    cfg = env.config()
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    info = env.run_payload({"linux": {"namespaces": nss}})
    assert info["ns"]["pid"] == host_ns("pid")
    assert info["pid"] != 1


def lo_flags(env, overrides=None):
    c = env.container(["/bin/payload", "cat", "/sys/class/net/lo/flags"], overrides)
    r = c.run()
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip(), 16)


def test_new_network_namespace_has_loopback_up(env):
    """As with crun and docker's "none" network: the init brings up "lo" in a
    network namespace it made, so the container reaches 127.0.0.1."""
    assert lo_flags(env) & 0x1, "lo is down in the new network namespace"   # IFF_UP


def test_joined_network_namespace_is_left_as_it_is(env, netns_holder):
    """A namespace joined by path is its owner's: its lo stays down."""
    cfg = env.config()
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    nss.append({"type": "network", "path": netns_holder})
    assert not lo_flags(env, {"linux": {"namespaces": nss}}) & 0x1


@pytest.fixture
def netns_holder(env):
    """A process sitting in a fresh network namespace (unshare --net)."""
    p = subprocess.Popen(["unshare", "--net", "sleep", "300"], stdin=subprocess.DEVNULL)

    def stop():
        p.kill()
        p.wait()
    env.on_cleanup(stop)
    path = f"/proc/{p.pid}/ns/net"
    assert wait_for(lambda: os.readlink(path) != host_ns("network"))
    return path


def test_join_network_namespace_by_path(env, netns_holder):
    want = os.readlink(netns_holder)
    cfg = env.config()
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    nss.append({"type": "network", "path": netns_holder})
    info = env.run_payload({"linux": {"namespaces": nss}})
    assert info["ns"]["net"] == want


def test_join_other_containers_namespaces(env):
    a = env.container(["/bin/payload", "sleep", "60"])
    a.create()
    a.start()
    pid = a.init_pid
    want = {k: os.readlink(f"/proc/{pid}/ns/{k}") for k in ("net", "ipc", "uts")}
    cfg = env.config()
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] not in ("network", "ipc", "uts")]
    nss += [{"type": "network", "path": f"/proc/{pid}/ns/net"},
            {"type": "ipc", "path": f"/proc/{pid}/ns/ipc"},
            {"type": "uts", "path": f"/proc/{pid}/ns/uts"}]
    # hostname may not be set when the uts namespace is joined
    info = env.run_payload({"hostname": None, "linux": {"namespaces": nss}})
    for k, v in want.items():
        assert info["ns"][k] == v, k


def test_join_bad_namespace_path_fails(env):
    cfg = env.config()
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    nss.append({"type": "network", "path": "/proc/self/ns/ipc"})
    c = env.container(["/bin/payload", "true"], {"linux": {"namespaces": nss}})
    r = c.run()
    assert r.returncode != 0


def test_hostname(env):
    info = env.run_payload({"hostname": "box.example"})
    assert info["hostname"] == "box.example"
    assert os.uname().nodename != "box.example"


@pytest.mark.moat_only
def test_domainname(env):
    # runc 1.1 ignores `domainname` (runtime-spec 1.1, runc 1.2)
    info = env.run_payload({"hostname": "box", "domainname": "example.org"})
    assert info["domainname"] == "example.org"
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() != "example.org"


def test_hostname_without_uts_namespace_fails(env):
    cfg = env.config()
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
    c = env.container(["/bin/payload", "true"], {"linux": {"namespaces": nss}})
    r = c.run()
    assert r.returncode != 0
    assert os.uname().nodename != "moat-test"


USERNS = {
    "linux": {
        "namespaces": [{"type": t} for t in
                       ("pid", "network", "ipc", "uts", "mount", "cgroup", "user")],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    }
}


def test_user_namespace_mappings(env):
    info = env.run_payload(USERNS)
    assert info["ns"]["user"] != host_ns("user")
    assert info["uid_map"].split() == ["0", "100000", "65536"]
    assert info["gid_map"].split() == ["0", "100000", "65536"]
    assert info["uid"] == 0 and info["gid"] == 0


def test_user_namespace_process_runs_as_mapped_host_uid(env):
    c = env.container(["/bin/payload", "sleep", "60"], USERNS)
    c.create()
    with open(f"/proc/{c.init_pid}/status") as f:
        st = f.read()
    uid_line = [l for l in st.splitlines() if l.startswith("Uid:")][0]
    assert uid_line.split()[1:] == ["100000"] * 4


def test_user_namespace_non_root_user(env):
    ov = {"process": {"user": {"uid": 1000, "gid": 1000}}, **USERNS}
    info = env.run_payload(ov)
    assert info["uid"] == 1000 and info["gid"] == 1000


@pytest.mark.moat_only
def test_time_namespace_offsets(env):
    # runc 1.1 has no time namespace support (added in runc 1.2)
    ov = {"linux": {"namespaces": env.config()["linux"]["namespaces"] + [{"type": "time"}],
                    "timeOffsets": {"boottime": {"secs": 86400, "nanosecs": 0},
                                    "monotonic": {"secs": 3600, "nanosecs": 0}}}}
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    mono_before = time.clock_gettime(time.CLOCK_MONOTONIC)
    info = env.run_payload(ov, args=("clock",))
    after = time.clock_gettime(time.CLOCK_BOOTTIME)
    assert before + 86400 <= info["boottime"] <= after + 86400
    assert info["monotonic"] >= mono_before + 3600
    info = env.run_payload(ov)
    assert info["ns"]["time"] != host_ns("time")
