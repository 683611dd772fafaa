"""events: --stats prints runc's stats event, whose numbers agree with the
kernel's cgroup files; the stream prints stats every interval, an "oom" event
when the kernel's OOM killer strikes, and ends when the container stops;
state then says "oomKilled": true (moat's addition)."""

import json
import os
import selectors
import subprocess
import time

import pytest

import harness
from harness import cgroup_dirs_named, is_moat, parse_json_lines

SLEEP = ["/bin/payload", "sleep", "3600"]


def cgroup_dir(cid, controller):
    for d in cgroup_dirs_named(cid):
        top = os.path.relpath(d, "/sys/fs/cgroup").split("/")[0]
        if controller in top.split(","):
            return d
    return None


def read(path):
    with open(path) as f:
        return f.read().strip()


def keyed(path):
    out = {}
    for line in read(path).splitlines():
        k, _, v = line.partition(" ")
        if v.isdigit():
            out[k] = int(v)
    return out


def stats(c):
    r = c.rt.cmd("events", "--stats", c.id)
    assert r.returncode == 0, r.stderr
    lines = parse_json_lines(r.stdout)
    assert len(lines) == 1, r.stdout
    ev = lines[0]
    assert ev["type"] == "stats" and ev["id"] == c.id
    return ev["data"]


def test_stats_agree_with_cgroup_files(env):
    c = env.container(SLEEP)
    c.run_detached()
    pids = cgroup_dir(c.id, "pids")
    mem = cgroup_dir(c.id, "memory")
    acct = cgroup_dir(c.id, "cpuacct")

    cpu_before = int(read(os.path.join(acct, "cpuacct.usage"))) if acct else None
    data = stats(c)
    cpu_after = int(read(os.path.join(acct, "cpuacct.usage"))) if acct else None

    if pids:
        # A quiet container: exactly its one process.
        assert data["pids"]["current"] == int(read(os.path.join(pids, "pids.current"))) == 1
        assert "limit" not in data["pids"]  # pids.max is "max"
    if mem:
        usage = int(read(os.path.join(mem, "memory.usage_in_bytes")))
        assert abs(data["memory"]["usage"]["usage"] - usage) <= 512 * 1024, (data["memory"]["usage"], usage)
        assert data["memory"]["usage"]["limit"] == int(read(os.path.join(mem, "memory.limit_in_bytes")))
        assert data["memory"]["usage"]["failcnt"] == int(read(os.path.join(mem, "memory.failcnt")))
        raw = keyed(os.path.join(mem, "memory.stat"))
        assert set(data["memory"]["raw"]) == set(raw)
        assert data["memory"]["raw"]["hierarchical_memory_limit"] == raw["hierarchical_memory_limit"]
    if acct:
        assert cpu_before <= data["cpu"]["usage"]["total"] <= cpu_after
        percpu = [int(x) for x in read(os.path.join(acct, "cpuacct.usage_percpu")).split()]
        assert len(data["cpu"]["usage"]["percpu"]) == len(percpu)
        assert all(a <= b for a, b in zip(data["cpu"]["usage"]["percpu"], percpu))
        assert "kernel" in data["cpu"]["usage"] and "user" in data["cpu"]["usage"]
    assert "blkio" in data

    # hugetlb: wherever the kernel has it (the unified tree on a hybrid host).
    hdir = cgroup_dir(c.id, "hugetlb") or cgroup_dir(c.id, "unified")
    sizes = sorted(n.split(".")[1] for n in os.listdir(hdir)
                   if n.startswith("hugetlb.") and n.count(".") == 2
                   and n.endswith((".current", ".usage_in_bytes"))) if hdir else []
    if sizes:
        assert sorted(data["hugetlb"]) == sizes
        for size in sizes:
            f = "current" if os.path.exists(os.path.join(hdir, f"hugetlb.{size}.current")) else "usage_in_bytes"
            assert data["hugetlb"][size]["usage"] == int(read(os.path.join(hdir, f"hugetlb.{size}.{f}")))
    else:
        assert "hugetlb" not in data


def test_stats_follow_limits_set_on_the_host(env):
    """Limits written to the cgroup files show up in the stats (the files
    are the truth, whoever wrote them)."""
    c = env.container(SLEEP)
    c.create()
    pids = cgroup_dir(c.id, "pids")
    mem = cgroup_dir(c.id, "memory")
    if not pids or not mem:
        pytest.skip("needs v1 pids and memory hierarchies")
    with open(os.path.join(pids, "pids.max"), "w") as f:
        f.write("77")
    with open(os.path.join(mem, "memory.limit_in_bytes"), "w") as f:
        f.write(str(64 << 20))
    data = stats(c)
    assert data["pids"]["limit"] == 77
    assert data["memory"]["usage"]["limit"] == 64 << 20


def test_stats_refused_for_stopped_or_missing(env):
    c = env.container(["/bin/payload", "true"])
    c.run_detached()
    assert c.wait_status("stopped")
    r = c.rt.cmd("events", "--stats", c.id)
    assert r.returncode == 1 and "not running" in r.stderr
    r = c.rt.cmd("events", "--stats", "no-such-container")
    assert r.returncode == 1 and "does not exist" in r.stderr


@pytest.mark.parametrize("bad", ["0", "-1s", "5", "abc", "1x"])
def test_events_bad_interval(env, bad):
    c = env.container(SLEEP)
    c.create()
    r = c.rt.cmd("events", "--interval", bad, c.id)
    assert r.returncode == 1 and "interval" in r.stderr


class Stream:
    """`events` running in the background; lines read with a bound."""

    def __init__(self, c, *args):
        self.p = c.rt.popen("events", *args, c.id, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.lines = []

    def next_line(self, timeout=15):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        ev = json.loads(line)
        self.lines.append(ev)
        return ev

    def finish(self, timeout=15):
        """Reads to the end; returns the exit status."""
        while self.next_line(timeout) is not None:
            pass
        return self.p.wait(timeout=timeout)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        harness._live_popens.discard(self.p)
        self.p.stdout.close()
        self.p.stderr.close()


def test_event_stream_stats_until_stop(env):
    c = env.container(SLEEP)
    c.run_detached()
    s = Stream(c, "--interval", "100ms")
    try:
        for _ in range(3):
            ev = s.next_line()
            assert ev and ev["type"] == "stats" and ev["id"] == c.id
            assert ev["data"]["pids"]["current"] == 1
        c.kill("KILL")
        assert s.finish() == 0
    finally:
        s.close()


# Waits for /dev/shm/go, then allocates 64 MiB at once (dd's buffer).
OOM = ["/bin/sh", "-c",
       "while [ ! -e /dev/shm/go ]; do sleep 0.02; done; "
       "dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd=$?"]


def test_oom_kill_reported(env):
    c = env.container(OOM)
    c.create()
    mem = cgroup_dir(c.id, "memory")
    if not mem:
        pytest.skip("needs the v1 memory hierarchy")
    # linux.resources.memory is someone else's work: set the limit directly.
    with open(os.path.join(mem, "memory.limit_in_bytes"), "w") as f:
        f.write(str(24 << 20))
    c.start()
    st = c.state()
    assert "oomKilled" not in st

    s = Stream(c, "--interval", "200ms")
    try:
        # The stream has taken its OOM baseline once it printed stats.
        ev = s.next_line()
        assert ev and ev["type"] == "stats"
        open(f"/proc/{c.init_pid}/root/dev/shm/go", "w").close()
        assert s.finish() == 0, s.p.stderr.read()
    finally:
        s.close()
    ooms = [e for e in s.lines if e["type"] == "oom"]
    assert ooms == [{"type": "oom", "id": c.id}], s.lines
    assert "dd=137" in c.output()  # dd died of SIGKILL
    assert keyed(os.path.join(mem, "memory.oom_control"))["oom_kill"] == 1

    st = c.state()
    assert st["status"] == "stopped"
    if is_moat():
        assert st.get("oomKilled") is True
