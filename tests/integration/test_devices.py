"""Default devices, /dev links, and linux.devices entries."""

import errno

import pytest

DEFAULT_DEVICES = {
    "/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
    "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0),
}

LINKS = {
    "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
    "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
}


@pytest.mark.parametrize("path", sorted(DEFAULT_DEVICES))
def test_default_device(env, path):
    st = env.run_payload(args=("stat", path))
    assert st["exists"], path
    assert st["type"] == "char"
    assert (st["major"], st["minor"]) == DEFAULT_DEVICES[path]


def test_default_device_is_usable(env):
    c = env.container(["/bin/payload", "cat", "/dev/null"])
    r = c.run()
    assert r.returncode == 0 and r.stdout == ""
    w = env.run_payload(args=("write", "/dev/null", "discard"))
    assert w["ok"], w


@pytest.mark.parametrize("path", sorted(LINKS))
def test_dev_links(env, path):
    st = env.run_payload(args=("stat", path))
    assert st["type"] == "symlink"
    assert st["target"] == LINKS[path]


def test_ptmx(env):
    st = env.run_payload(args=("stat", "/dev/ptmx"))
    assert st["exists"]
    if st["type"] == "symlink":
        assert st["target"] == "pts/ptmx"
    else:
        assert (st["type"], st["major"], st["minor"]) == ("char", 5, 2)


def test_no_host_devices_leak(env):
    ls = env.run_payload(args=("ls", "/dev"))
    names = set(ls["entries"])
    assert not {"sda", "vda", "kmsg", "mem", "kvm"} & names, names


def test_linux_devices_entry(env):
    ov = {"linux": {"devices": [
        {"path": "/dev/moat-null", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o640, "uid": 1000, "gid": 100},
        {"path": "/dev/sub/moat-zero", "type": "c", "major": 1, "minor": 5},
    ], "resources": {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    ]}}}
    st = env.run_payload(ov, args=("stat", "/dev/moat-null"))
    assert st["type"] == "char"
    assert (st["major"], st["minor"]) == (1, 3)
    assert st["mode"] == 0o640
    assert (st["uid"], st["gid"]) == (1000, 100)
    st = env.run_payload(ov, args=("stat", "/dev/sub/moat-zero"))
    assert (st["type"], st["major"], st["minor"]) == ("char", 1, 5)


LOOP = {"path": "/dev/moat-loop", "type": "b", "major": 7, "minor": 0}


def test_devices_cgroup_denies_unlisted_device(env):
    # the node exists, but resources.devices denies everything not allowed
    ov = {"linux": {"devices": [LOOP]}}
    st = env.run_payload(ov, args=("stat", "/dev/moat-loop"))
    assert (st["type"], st["major"], st["minor"]) == ("block", 7, 0)
    r = env.run_payload(ov, args=("open", "/dev/moat-loop"))
    assert r["ok"] is False and r["errno"] == errno.EPERM


def test_devices_cgroup_allows_listed_device(env):
    ov = {"linux": {"devices": [LOOP], "resources": {"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "b", "major": 7, "minor": 0, "access": "r"}]}}}
    r = env.run_payload(ov, args=("open", "/dev/moat-loop"))
    # the loop device may have no backing file (ENXIO) but the cgroup allowed it
    assert r["ok"] or r["errno"] != errno.EPERM, r
