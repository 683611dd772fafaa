"""ps: the container's processes (host pids of its cgroup), as a JSON array or
the host's ps output filtered to them."""

import json
import os
import signal
import subprocess

import pytest

from harness import TIMEOUT, is_moat, pid_alive, reap_orphans, wait_for


def running(env, args=("/bin/payload", "sleep", "3600")):
    c = env.container(list(args))
    c.create()
    c.start()
    return c


def exec_sleeper(c):
    """A second process in the container (exec -d), its host pid."""
    pidfile = c.env.path(f"sleeper-{c.id}.pid")
    errfile = c.env.path(f"sleeper-{c.id}.err")
    # the process keeps the runtime's stdio: files, not pipes
    with open(os.devnull, "wb") as null, open(errfile, "wb") as err:
        r = subprocess.run(c.rt.argv("exec", "--detach", "--pid-file", pidfile, c.id,
                                     "/bin/payload", "sleep", "3600"),
                           stdin=subprocess.DEVNULL, stdout=null, stderr=err,
                           timeout=TIMEOUT)
    with open(errfile) as f:
        assert r.returncode == 0, f.read()
    with open(pidfile) as f:
        return int(f.read())


def kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_for(lambda: not pid_alive(pid), 5)
    reap_orphans()


def ps_json(c):
    r = c.rt.cmd("ps", "--format", "json", c.id)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_ps_json_lists_init_and_exec(env):
    c = running(env)
    assert ps_json(c) == [c.init_pid]
    pid = exec_sleeper(c)
    try:
        assert sorted(ps_json(c)) == sorted([c.init_pid, pid])
    finally:
        kill_and_reap(pid)
    assert ps_json(c) == [c.init_pid]


def test_ps_json_lists_forked_children(env):
    c = running(env, ("/bin/payload", "fork-sleep", "3", "3600"))
    assert wait_for(lambda: len(ps_json(c)) == 4)
    pids = ps_json(c)
    assert c.init_pid in pids
    for p in pids:
        with open(f"/proc/{p}/cgroup") as f:
            assert c.id in f.read()


def test_ps_json_short_flag(env):
    c = running(env)
    r = c.rt.cmd("ps", "-f", "json", c.id)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [c.init_pid]


def test_ps_table_default_is_filtered_ps_ef(env):
    c = running(env)
    other = running(env)
    pid = exec_sleeper(c)
    try:
        r = c.rt.cmd("ps", c.id)
        assert r.returncode == 0, r.stderr
    finally:
        kill_and_reap(pid)
    lines = r.stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["UID", "PID", "PPID"]
    pids = sorted(int(l.split()[1]) for l in lines[1:])
    assert pids == sorted([c.init_pid, pid])
    assert other.init_pid not in pids
    assert all("payload sleep 3600" in l for l in lines[1:])


def test_ps_table_with_ps_options(env):
    c = running(env)
    r = c.rt.cmd("ps", c.id, "-o", "pid,comm")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert [l.split() for l in lines[1:]] == [[str(c.init_pid), "payload"]]


@pytest.mark.moat_only
def test_ps_table_options_after_double_dash(env):
    # runc 1.1 hands the "--" itself to ps
    c = running(env)
    r = c.rt.cmd("ps", c.id, "-o", "pid,comm")
    assert r.returncode == 0, r.stderr
    r2 = c.rt.cmd("ps", c.id, "--", "-o", "pid,comm")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == r.stdout


@pytest.mark.moat_only
def test_ps_json_refuses_ps_options(env):
    # runc 1.1 ignores them
    c = running(env)
    r = c.rt.cmd("ps", "--format", "json", c.id, "-o", "pid")
    assert r.returncode != 0


def test_ps_unknown_container_fails(env):
    r = env.rt.cmd("ps", "no-such-container")
    assert r.returncode != 0
    assert "does not exist" in r.stderr or "not exist" in r.stderr


def test_ps_stopped_container_is_empty(env):
    c = env.container(["/bin/payload", "true"])
    c.create()
    c.start()
    assert c.wait_status("stopped")
    # runc 1.1 prints null
    assert ps_json(c) in ([], None) if not is_moat() else ps_json(c) == []
