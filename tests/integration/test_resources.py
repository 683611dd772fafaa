"""linux.resources at create: the cgroup files the runtime writes and what
the kernel then does (OOM kill at the memory limit, fork failures at the
pids limit, CFS throttling, device access refused), and bad values
refused with nothing left behind."""

import errno
import os
import time

import pytest

from harness import CGROUP_ROOT, cgroup_dirs_named, parse_json, wait_for

SLEEP = ["/bin/payload", "sleep", "60"]
# three spinners: more demand than half a CPU even on a busy 2-core host
SPIN = ["/bin/sh", "-c", "spin() { while :; do :; done; }; spin & spin & spin"]
MiB = 1024 * 1024


def unified_root():
    """The cgroup2 tree: /sys/fs/cgroup on a v2 host, .../unified on hybrid."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return CGROUP_ROOT
    u = os.path.join(CGROUP_ROOT, "unified")
    if os.path.exists(os.path.join(u, "cgroup.controllers")):
        return u
    return None


def is_v2_host():
    return unified_root() == CGROUP_ROOT


def ctrl_dir(ctrl, cid):
    """The container's directory in the hierarchy holding ctrl, and whether it is v2."""
    v1 = os.path.join(CGROUP_ROOT, ctrl)
    if not is_v2_host() and os.path.isdir(v1):
        return os.path.join(v1, cid), False
    u = unified_root()
    if u:
        with open(os.path.join(u, "cgroup.controllers")) as f:
            if ctrl in f.read().split():
                return os.path.join(u, cid), True
    return None, None


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def stat_fields(d, name):
    out = {}
    for line in read(d, name).splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def need(ctrl):
    d, v2 = ctrl_dir(ctrl, "x")
    if d is None:
        pytest.skip(f"no {ctrl} controller on this host")
    return v2


def resources(over):
    return {"linux": {"resources": dict({"devices": [{"allow": False, "access": "rwm"}]}, **over)}}


# ---- files ------------------------------------------------------------------


def test_memory_files(env):
    v2 = need("memory")
    c = env.container(SLEEP, resources({"memory": {
        "limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB, "swappiness": 10}}))
    c.create()
    d, _ = ctrl_dir("memory", c.id)
    if v2:
        assert read(d, "memory.max") == str(64 * MiB)
        assert read(d, "memory.low") == str(32 * MiB)
        if os.path.exists(os.path.join(d, "memory.swap.max")):
            assert read(d, "memory.swap.max") == str(32 * MiB)  # swap - limit
        assert read(d, "memory.oom.group") == "1"
    else:
        assert read(d, "memory.limit_in_bytes") == str(64 * MiB)
        assert read(d, "memory.soft_limit_in_bytes") == str(32 * MiB)
        if os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
            assert read(d, "memory.memsw.limit_in_bytes") == str(96 * MiB)
        assert read(d, "memory.swappiness") == "10"


def test_cpu_files(env):
    v2 = need("cpu")
    c = env.container(SLEEP, resources({"cpu": {
        "shares": 512, "quota": 30000, "period": 60000, "cpus": "0", "mems": "0"}}))
    c.create()
    d, _ = ctrl_dir("cpu", c.id)
    if v2:
        assert read(d, "cpu.weight") == "59"
        assert read(d, "cpu.max") == "30000 60000"
    else:
        assert read(d, "cpu.shares") == "512"
        assert read(d, "cpu.cfs_quota_us") == "30000"
        assert read(d, "cpu.cfs_period_us") == "60000"
    d, _ = ctrl_dir("cpuset", c.id)
    if d:
        assert read(d, "cpuset.cpus") == "0"
        assert read(d, "cpuset.mems") == "0"
    # the init is confined to CPU 0
    with open(f"/proc/{c.init_pid}/status") as f:
        allowed = [l for l in f if l.startswith("Cpus_allowed_list:")][0].split()[1]
    assert allowed == "0"


def test_pids_unlimited(env):
    need("pids")
    c = env.container(SLEEP, resources({"pids": {"limit": -1}}))
    c.create()
    d, _ = ctrl_dir("pids", c.id)
    assert read(d, "pids.max") == "max"


def test_hugetlb_limit(env):
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2MB huge pages")
    v2 = need("hugetlb")
    c = env.container(SLEEP, resources({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MiB}]}))
    c.create()
    d, _ = ctrl_dir("hugetlb", c.id)
    assert read(d, "hugetlb.2MB.max" if v2 else "hugetlb.2MB.limit_in_bytes") == str(8 * MiB)


def test_unified_key(env):
    u = unified_root()
    if not u or not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no cgroup2 tree or no 2MB huge pages")
    with open(os.path.join(u, "cgroup.controllers")) as f:
        if "hugetlb" not in f.read().split():
            pytest.skip("hugetlb is not in the cgroup2 tree")
    c = env.container(SLEEP, resources({"unified": {"hugetlb.2MB.max": str(6 * MiB),
                                                    "cgroup.max.descendants": "5"}}))
    c.create()
    d = os.path.join(u, c.id)
    assert read(d, "hugetlb.2MB.max") == str(6 * MiB)
    assert read(d, "cgroup.max.descendants") == "5"


# ---- what the kernel does with the limits --------------------------------------


def test_memory_hog_is_oom_killed(env):
    v2 = need("memory")
    lim = 32 * MiB
    own_before = own_oom_kills()
    # the shell holds 100 MiB in a variable: far above the limit
    c = env.container(["/bin/sh", "-c", "x=$(head -c 104857600 /dev/zero | tr '\\0' x); echo survived"],
                      resources({"memory": {"limit": lim, "swap": lim}}))
    c.create()
    c.start()
    assert c.wait_status("stopped", timeout=30), "the memory hog still runs"
    d, _ = ctrl_dir("memory", c.id)
    if v2:
        events = stat_fields(d, "memory.events")
        assert int(events["oom_kill"]) >= 1, events
        assert int(read(d, "memory.peak")) <= lim
    else:
        ctl = stat_fields(d, "memory.oom_control")
        assert int(ctl.get("oom_kill", "0")) >= 1, ctl
        assert int(read(d, "memory.max_usage_in_bytes")) <= lim
    assert "survived" not in c.output()
    # the OOM stayed inside the container's cgroup
    assert own_oom_kills() == own_before


def own_oom_kills():
    """OOM kills in the test process's own memory cgroup (None if unknown)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctrls.split(","):
                p = os.path.join(CGROUP_ROOT, "memory", path.lstrip("/"), "memory.oom_control")
                try:
                    return stat_fields(os.path.dirname(p), "memory.oom_control").get("oom_kill")
                except OSError:
                    return None
    return None


def test_fork_bomb_stops_at_pids_limit(env):
    need("pids")
    limit = 8
    out = env.run_payload(resources({"pids": {"limit": limit}}), args=("fork-sleep", "20", "0.5"))
    children = out["children"]
    made = [p for p in children if p > 0]
    failed = [p for p in children if p <= 0]
    # the payload itself counts: limit - 1 children, then fork fails
    assert len(made) == limit - 1, children
    assert failed, children


def test_cpu_quota_throttles_a_spinner(env):
    v2 = need("cpu")
    # the top weight, so that on a busy host the group still asks for more
    # than its half CPU (the quota is what caps it)
    c = env.container(SPIN, resources({"cpu": {"quota": 50000, "period": 100000, "shares": 262144}}))
    c.create()
    c.start()
    d, _ = ctrl_dir("cpu", c.id)

    # the throttled time is added when a throttled period ends
    def throttled():
        st = stat_fields(d, "cpu.stat")
        return (int(st.get("nr_throttled", "0")) > 0 and
                int(st.get("throttled_usec" if v2 else "throttled_time", "0")) > 0)

    assert wait_for(throttled, timeout=15, interval=0.1), stat_fields(d, "cpu.stat")
    c.kill("KILL")
    c.wait_status("stopped")


def test_mknod_block_device_then_open_is_refused(env):
    caps = ["CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    script = ("mknod /dev/blk b 7 0 && mknod /dev/mem2 c 1 1 && "
              "/bin/payload open /dev/blk && /bin/payload open /dev/mem2 && "
              "/bin/payload open /dev/null w")
    c = env.container(["/bin/sh", "-c", script], {"process": {"capabilities": {
        "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps}}})
    r = c.run()
    assert r.returncode == 0, r.stderr
    lines = [parse_json(l) for l in r.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 3, r.stdout
    blk, mem, null = lines
    assert blk["ok"] is False and blk["errno"] == errno.EPERM, blk
    assert mem["ok"] is False and mem["errno"] == errno.EPERM, mem
    assert null["ok"] is True, null


# ---- refusals ---------------------------------------------------------------------

BAD = [
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit"),
    ({"memory": {"limit": 64 * MiB, "swap": MiB}}, "linux.resources.memory.swap"),
    ({"cpu": {"cpus": "0-"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"cpus": "999"}}, "not online"),
    ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares"),
    ({"cpu": {"quota": 10}}, "linux.resources.cpu.quota"),
    ({"pids": {"limit": "many"}}, "linux.resources.pids.limit"),
    ({"blockIO": {"weight": 2000}}, "linux.resources.blockIO.weight"),
    ({"unified": {"no_dot": "1"}}, "linux.resources.unified"),
    ({"unified": {"cgroup.procs": "1"}}, "linux.resources.unified.cgroup.procs"),
    ({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize"),
    ({"devices": [{"allow": True, "type": "z"}]}, "linux.resources.devices[0].type"),
]


@pytest.mark.parametrize("res,needle", BAD, ids=[b[1] for b in BAD])
def test_bad_value_refused_before_anything_exists(env, res, needle):
    c = env.container(SLEEP, {"linux": {"resources": res}})
    r = c.create(check=False)
    assert r.returncode != 0
    assert needle in c.errors(), c.errors()
    assert not os.path.exists(c.state_dir)
    assert not cgroup_dirs_named(c.id)


def apply_time_failures():
    """Values that parse but the host cannot apply (so the cgroup exists
    when they fail)."""
    out = []
    if not os.path.isdir(os.path.join(CGROUP_ROOT, "net_cls")):
        out.append(({"network": {"classID": 42}}, "linux.resources.network.classID: not supported"))
    if not is_v2_host():
        out.append(({"unified": {"memory.high": "100000000"}}, "linux.resources.unified.memory.high"))
    else:
        out.append(({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 100000}}, "not supported on cgroup v2"))
    out.append(({"unified": {"pids.nonexistent": "1"}} if is_v2_host() else
                {"unified": {"cgroup.nonexistent": "1"}}, "no such file"))
    return out


@pytest.mark.parametrize("res,needle", apply_time_failures(), ids=lambda v: v if isinstance(v, str) else None)
def test_apply_failure_leaves_nothing(env, res, needle):
    c = env.container(SLEEP, {"linux": {"resources": res}})
    r = c.create(check=False)
    assert r.returncode != 0
    assert needle in c.errors(), c.errors()
    assert not os.path.exists(c.state_dir)
    assert not cgroup_dirs_named(c.id)


def test_cpu_realtime_and_idle(env):
    v2 = need("cpu")
    rt = {"realtimePeriod": 1000000, "realtimeRuntime": 10000}
    if v2:
        c = env.container(SLEEP, resources({"cpu": rt}))
        r = c.create(check=False)
        assert r.returncode != 0
        assert "linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not supported on cgroup v2" \
            in c.errors()
        assert not cgroup_dirs_named(c.id)
    else:
        if not os.path.exists(os.path.join(CGROUP_ROOT, "cpu", "cpu.rt_runtime_us")):
            pytest.skip("kernel without RT group scheduling")
        c = env.container(SLEEP, resources({"cpu": rt}))
        c.create()
        d, _ = ctrl_dir("cpu", c.id)
        assert read(d, "cpu.rt_period_us") == "1000000"
        assert read(d, "cpu.rt_runtime_us") == "10000"
    c = env.container(SLEEP, resources({"cpu": {"idle": 1}}))
    d, _ = ctrl_dir("cpu", c.id)
    if not os.path.exists(os.path.join(os.path.dirname(d), "cpu.idle")) and not v2:
        pytest.skip("kernel without cpu.idle")
    c.create()
    assert read(d, "cpu.idle") == "1"
