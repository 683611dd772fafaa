"""pause and resume: the kernel's freezer stops every process of the
container (a counter the container writes stops advancing, freezer.state /
cgroup.events say so), state and list say "paused", resume thaws; signals to a
paused container; refusals with runc's wording."""

import os

import pytest

from harness import cgroup_dirs_named, parse_json_lines, wait_for

# Writes an ever-growing counter to /dev/shm/c (the container's tmpfs, which
# the host reads through /proc/<pid>/root).
COUNTER = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /dev/shm/c; done"]


def cgroup_dir(cid, controller):
    """The container's directory in the hierarchy holding controller
    ("unified" for the cgroup2 mount)."""
    for d in cgroup_dirs_named(cid):
        rel = os.path.relpath(d, "/sys/fs/cgroup")
        top = rel.split("/")[0]
        if controller in top.split(",") or (controller == "unified" and top == "unified"):
            return d
    return None


def read(path):
    with open(path) as f:
        return f.read().strip()


def freezer_says_frozen(cid):
    d = cgroup_dir(cid, "freezer")
    if d:
        return read(os.path.join(d, "freezer.state")) == "FROZEN"
    d = cgroup_dir(cid, "unified")
    return "frozen 1" in read(os.path.join(d, "cgroup.events"))


def counter(c):
    try:
        return int(read(f"/proc/{c.init_pid}/root/dev/shm/c") or 0)
    except (OSError, ValueError):
        return None


def advances(c):
    """True once the counter moves (bounded wait)."""
    first = counter(c)
    return wait_for(lambda: counter(c) is not None and counter(c) != first, 10)


def test_pause_freezes_and_resume_thaws(env):
    c = env.container(COUNTER)
    c.run_detached()
    assert advances(c), "the container's counter never moved"

    r = c.rt.cmd("pause", c.id)
    assert r.returncode == 0, r.stderr
    assert c.status() == "paused"
    assert freezer_says_frozen(c.id)
    # Every process stopped: the counter holds still. Reads spaced out by
    # waiting for a state change that must not happen.
    before = counter(c)
    assert not wait_for(lambda: counter(c) != before, 1.0), "counter moved while paused"
    listed = [l for l in c.rt.ok("list").stdout.splitlines() if l.startswith(c.id + " ")]
    assert listed and " paused " in listed[0]

    r = c.rt.cmd("resume", c.id)
    assert r.returncode == 0, r.stderr
    assert c.status() == "running"
    assert not freezer_says_frozen(c.id)
    assert advances(c), "counter did not move after resume"


def test_pause_refusals(env):
    c = env.container(["/bin/payload", "sleep", "60"])
    c.create()
    r = c.rt.cmd("pause", c.id)
    assert r.returncode == 1
    assert "container not running" in r.stderr
    r = c.rt.cmd("resume", c.id)
    assert r.returncode == 1
    assert "container not paused" in r.stderr
    c.start()
    r = c.rt.cmd("resume", c.id)
    assert r.returncode == 1 and "container not paused" in r.stderr
    c.rt.ok("pause", c.id)
    r = c.rt.cmd("pause", c.id)
    assert r.returncode == 1 and "container not running" in r.stderr
    assert c.status() == "paused"
    c.rt.ok("resume", c.id)

    r = c.rt.cmd("pause", "no-such-container")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = c.rt.cmd("pause")
    assert r.returncode == 1


def test_pause_stopped_refused(env):
    c = env.container(["/bin/payload", "true"])
    c.run_detached()
    assert c.wait_status("stopped")
    r = c.rt.cmd("pause", c.id)
    assert r.returncode == 1 and "container not running" in r.stderr


def test_signal_to_paused_container_waits_for_resume(env):
    c = env.container(["/bin/payload", "sigwait"])
    c.run_detached()
    assert wait_for(lambda: '"ready"' in c.output(), 10)
    c.rt.ok("pause", c.id)
    c.kill("USR1")
    # Still paused, the signal pending: nothing printed.
    assert c.status() == "paused"
    assert not any("signal" in l for l in parse_json_lines(c.output()))
    c.rt.ok("resume", c.id)
    assert wait_for(lambda: any("signal" in l for l in parse_json_lines(c.output())), 10)
    got = [l for l in parse_json_lines(c.output()) if "signal" in l]
    assert got[0]["signal"] == 10
    assert c.wait_status("stopped")


def resume_if_paused(c):
    """Leaves the container deletable whatever happened (the env's cleanup
    cannot delete a container frozen by the v1 freezer without that fix)."""
    if os.path.exists(c.state_dir) and c.rt.cmd("state", c.id).stdout.find('"paused"') >= 0:
        c.rt.cmd("resume", c.id)


def test_kill_paused_container(env):
    """SIGKILL kills a paused container (runc thaws it after sending)."""
    c = env.container(["/bin/payload", "sleep", "60"])
    c.run_detached()
    c.rt.ok("pause", c.id)
    try:
        c.kill("KILL")
        assert c.wait_status("stopped", timeout=5)
        c.delete()
        assert not cgroup_dirs_named(c.id)
    finally:
        resume_if_paused(c)


def test_delete_force_paused_container(env):
    c = env.container(["/bin/sh", "-c", "/bin/payload sleep 60 & exec /bin/payload sleep 60"])
    c.run_detached()
    assert wait_for(lambda: len(read(os.path.join(cgroup_dir(c.id, "pids") or cgroup_dir(c.id, "memory"),
                                                  "cgroup.procs")).split()) == 2, 10)
    c.rt.ok("pause", c.id)
    try:
        c.delete(force=True)
        assert not os.path.exists(c.state_dir)
        assert not cgroup_dirs_named(c.id)
        assert wait_for(lambda: not os.path.exists(f"/proc/{c.init_pid}/root"), 5)
    finally:
        resume_if_paused(c)


def test_stats_of_paused_container(env):
    c = env.container(["/bin/payload", "sleep", "60"])
    c.run_detached()
    c.rt.ok("pause", c.id)
    r = c.rt.ok("events", "--stats", c.id)
    ev = parse_json_lines(r.stdout)[0]
    assert ev["type"] == "stats" and ev["id"] == c.id
    assert c.status() == "paused"
    c.rt.ok("resume", c.id)
