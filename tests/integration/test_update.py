"""`update`: runc's flags and --resources (file or stdin, as containerd
sends it) change the limits of a live container; refusals leave the
limits as they were."""

import json
import os

import pytest

from harness import wait_for
from test_resources import MiB, ctrl_dir, need, read, resources, is_v2_host

SLEEP = ["/bin/payload", "sleep", "60"]


def running(env, over=None):
    c = env.container(SLEEP, resources(over or {}))
    c.create()
    c.start()
    return c


def mem_limit(c):
    d, v2 = ctrl_dir("memory", c.id)
    return read(d, "memory.max" if v2 else "memory.limit_in_bytes")


def test_update_flags(env):
    need("memory")
    need("pids")
    cpu_v2 = need("cpu")
    c = running(env, {"memory": {"limit": 64 * MiB}, "pids": {"limit": 100}})
    r = env.rt.cmd("update", "--memory", "256m", "--memory-swap", "512m", "--memory-reservation", "128M",
                   "--cpu-shares", "256", "--cpu-quota", "20000", "--cpu-period", "100000",
                   "--pids-limit", "50", "--cpuset-cpus", "0", c.id)
    assert r.returncode == 0, r.stderr
    assert mem_limit(c) == str(256 * MiB)
    d, _ = ctrl_dir("pids", c.id)
    assert read(d, "pids.max") == "50"
    d, _ = ctrl_dir("cpu", c.id)
    if cpu_v2:
        assert read(d, "cpu.max") == "20000 100000"
        assert read(d, "cpu.weight") == "35"
    else:
        assert read(d, "cpu.cfs_quota_us") == "20000"
        assert read(d, "cpu.shares") == "256"
    d, v2 = ctrl_dir("memory", c.id)
    if not v2 and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
        assert read(d, "memory.memsw.limit_in_bytes") == str(512 * MiB)
        assert read(d, "memory.soft_limit_in_bytes") == str(128 * MiB)
    d, _ = ctrl_dir("cpuset", c.id)
    if d:
        assert read(d, "cpuset.cpus") == "0"
    # the container keeps running
    assert c.status() == "running"


def test_update_resources_stdin(env):
    need("memory")
    need("pids")
    c = running(env, {"memory": {"limit": 64 * MiB}})
    res = {"memory": {"limit": 96 * MiB}, "pids": {"limit": 30}, "cpu": {"shares": 2048}}
    r = env.rt.cmd("update", "--resources=-", c.id, input=json.dumps(res))
    assert r.returncode == 0, r.stderr
    assert mem_limit(c) == str(96 * MiB)
    d, _ = ctrl_dir("pids", c.id)
    assert read(d, "pids.max") == "30"


def test_update_resources_file_then_flag_wins(env):
    need("pids")
    c = running(env)
    path = env.path("res.json")
    with open(path, "w") as f:
        json.dump({"pids": {"limit": 11}}, f)
    r = env.rt.cmd("update", "-r", path, "--pids-limit", "12", c.id)
    assert r.returncode == 0, r.stderr
    d, _ = ctrl_dir("pids", c.id)
    assert read(d, "pids.max") == "12"


def test_update_devices_keeps_default_list(env):
    c = running(env)
    res = {"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 1, "access": "r"}]}
    r = env.rt.cmd("update", "--resources=-", c.id, input=json.dumps(res))
    assert r.returncode == 0, r.stderr
    d, v2 = ctrl_dir("devices", c.id)
    if d and not v2:
        lines = read(d, "devices.list").splitlines()
        assert "c 1:1 r" in lines and "c 1:3 rwm" in lines, lines


def test_memory_below_usage_fails(env):
    v2 = need("memory")
    c = env.container(["/bin/sh", "-c", "x=$(head -c 33554432 /dev/zero | tr '\\0' x); sleep 60"],
                      resources({"memory": {"limit": 256 * MiB}}))
    c.create()
    c.start()
    d, _ = ctrl_dir("memory", c.id)
    usage_file = "memory.current" if v2 else "memory.usage_in_bytes"
    assert wait_for(lambda: int(read(d, usage_file)) > 24 * MiB, timeout=20), read(d, usage_file)

    # our own check, before anything is written
    res = {"memory": {"limit": 4 * MiB, "checkBeforeUpdate": True}}
    r = env.rt.cmd("update", "--resources=-", c.id, input=json.dumps(res))
    assert r.returncode != 0
    assert "resources.memory.limit" in r.stderr and "checkBeforeUpdate" in r.stderr, r.stderr
    assert mem_limit(c) == str(256 * MiB)

    if not v2:
        # the kernel's own answer (v1 refuses a limit it cannot reclaim to)
        r = env.rt.cmd("update", "--memory", "4m", c.id)
        assert r.returncode != 0
        assert "memory.limit" in r.stderr and "busy" in r.stderr.lower(), r.stderr
        assert mem_limit(c) == str(256 * MiB)
    assert c.status() == "running"


def test_update_stopped_container(env):
    c = env.container(["/bin/payload", "true"])
    c.create()
    c.start()
    assert c.wait_status("stopped")
    r = env.rt.cmd("update", "--pids-limit", "10", c.id)
    assert r.returncode != 0
    assert "container not running" in r.stderr


def test_update_missing_container(env):
    r = env.rt.cmd("update", "--pids-limit", "10", "no-such-container")
    assert r.returncode != 0
    assert "does not exist" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (("--memory", "lots"), "--memory"),
    (("--cpu-quota", "x"), "--cpu-quota"),
    (("--cpuset-cpus", "999"), "resources.cpu.cpus"),
    (("--cpu-shares", "1"), "resources.cpu.shares"),
    (("--blkio-weight", "5"), "resources.blockIO.weight"),
    (("--l3-cache-schema", "L3:0=f"), "not supported"),
    (("--mem-bw-schema", "MB:0=50"), "not supported"),
])
def test_update_bad_values_change_nothing(env, args, needle):
    need("pids")
    c = running(env, {"pids": {"limit": 40}})
    r = env.rt.cmd("update", *args, "--pids-limit", "20", c.id)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    d, _ = ctrl_dir("pids", c.id)
    assert read(d, "pids.max") == "40"


def test_update_bad_json(env):
    c = running(env)
    r = env.rt.cmd("update", "--resources=-", c.id, input="{not json")
    assert r.returncode != 0 and "invalid JSON" in r.stderr, r.stderr
    r = env.rt.cmd("update", "--resources=-", c.id, input="[]")
    assert r.returncode != 0 and "must be a JSON object" in r.stderr, r.stderr
    r = env.rt.cmd("update", "--resources=-", c.id, input=" " * (2 << 20))
    assert r.returncode != 0 and "larger than" in r.stderr, r.stderr


def test_update_kernel_memory_is_ignored_with_a_warning(env):
    need("pids")
    c = running(env)
    r = env.rt.cmd("update", "--kernel-memory", "10m", "--kernel-memory-tcp", "1m", "--pids-limit", "9", c.id)
    assert r.returncode == 0, r.stderr
    assert "kernel-memory" in r.stderr and "ignored" in r.stderr
    d, _ = ctrl_dir("pids", c.id)
    assert read(d, "pids.max") == "9"


def test_update_cpu_period_alone_keeps_quota(env):
    v2 = need("cpu")
    c = running(env, {"cpu": {"quota": 30000, "period": 100000}})
    r = env.rt.cmd("update", "--cpu-period", "50000", c.id)
    assert r.returncode == 0, r.stderr
    d, _ = ctrl_dir("cpu", c.id)
    if v2:
        assert read(d, "cpu.max") == "30000 50000"
    else:
        assert read(d, "cpu.cfs_quota_us") == "30000"
        assert read(d, "cpu.cfs_period_us") == "50000"


@pytest.mark.skipif(is_v2_host(), reason="v1 ordering of memory and memory+swap")
def test_update_lowers_and_raises_memory_and_swap(env):
    need("memory")
    c = running(env, {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}})
    d, _ = ctrl_dir("memory", c.id)
    if not os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
        pytest.skip("no swap accounting")
    for lim, swap in ((512 * MiB, 1024 * MiB), (32 * MiB, 48 * MiB)):
        r = env.rt.cmd("update", "--memory", str(lim), "--memory-swap", str(swap), c.id)
        assert r.returncode == 0, r.stderr
        assert read(d, "memory.limit_in_bytes") == str(lim)
        assert read(d, "memory.memsw.limit_in_bytes") == str(swap)
    r = env.rt.cmd("update", "--memory", "-1", c.id)
    assert r.returncode == 0, r.stderr
    assert int(read(d, "memory.limit_in_bytes")) > 1 << 40
    assert int(read(d, "memory.memsw.limit_in_bytes")) > 1 << 40
