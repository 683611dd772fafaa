"""create / start / state / kill / delete / run / list, as a manager sees them."""

import json
import os
import select
import signal
import time

import pytest

from harness import parse_json_lines, pid_alive, wait_for

SLEEP = ["/bin/payload", "sleep", "60"]


def fifo_held_by(pid, path):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            pass
    return False


def test_create_start_state(env):
    c = env.container(["/bin/payload", "print", "hello"])
    c.create()
    st = c.state()
    assert st["status"] == "created"
    pid = st["pid"]
    assert pid > 0 and pid_alive(pid)
    fifo = os.path.join(env.rt.root, c.id, "exec.fifo")
    assert os.path.exists(fifo)
    assert fifo_held_by(pid, fifo), "the created init must hold <root>/<id>/exec.fifo open"
    assert c.output() == "", "the process must not run before start"

    c.start()
    assert not os.path.exists(fifo)
    assert wait_for(lambda: c.status() == "stopped")
    assert c.output() == "hello\n"
    c.delete()
    assert not os.path.exists(c.state_dir)


def test_state_fields(env):
    c = env.container(SLEEP, {"annotations": {"org.example.key": "value"}})
    c.create()
    st = c.state()
    for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations"):
        assert k in st, k
    assert st["id"] == c.id
    assert os.path.realpath(st["bundle"]) == os.path.realpath(c.bundle)
    assert st["annotations"] == {"org.example.key": "value"}
    c.start()
    assert c.status() == "running"


@pytest.mark.parametrize("sig,num", [("TERM", 15), ("SIGTERM", 15), ("KILL", 9),
                                     ("9", 9), ("15", 15), ("SIGUSR1", 10)])
def test_kill_signal_names_and_numbers(env, sig, num):
    c = env.container(["/bin/payload", "sigwait"] if num != 9 else SLEEP)
    c.create()
    c.start()
    if num != 9:
        assert wait_for(lambda: '"ready"' in c.output())
    c.kill(sig)
    assert wait_for(lambda: c.status() == "stopped"), "container did not stop"
    if num != 9:
        lines = parse_json_lines(c.output())
        assert lines[-1]["signal"] == num


def test_kill_stopped_container(env):
    c = env.container(["/bin/payload", "true"])
    c.create()
    c.start()
    assert wait_for(lambda: c.status() == "stopped")
    r = c.kill("KILL", check=False)
    assert r.returncode != 0
    assert "container not running" in r.stderr


def test_delete_running_needs_force(env):
    c = env.container(SLEEP)
    c.create()
    c.start()
    pid = c.init_pid
    r = c.delete(check=False)
    assert r.returncode != 0
    assert pid_alive(pid)
    assert c.status() == "running"
    c.delete(force=True)
    assert wait_for(lambda: not pid_alive(pid))
    assert not os.path.exists(c.state_dir)


def test_delete_force_created(env):
    c = env.container(SLEEP)
    c.create()
    pid = c.init_pid
    c.delete(force=True)
    assert wait_for(lambda: not pid_alive(pid))
    assert not os.path.exists(c.state_dir)


def test_run_exit_code(env):
    c = env.container(["/bin/payload", "exit", "7"])
    r = c.run()
    assert r.returncode == 7, r.stderr


def test_run_killed_by_signal(env):
    c = env.container(SLEEP)
    p = c.run_popen()
    try:
        assert wait_for(lambda: env.rt.cmd("state", c.id).returncode == 0
                        and c.status() == "running")
        c.kill("KILL")
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 128 + 9


def test_run_foreground_forwards_signals(env):
    c = env.container(["/bin/payload", "sigwait"])
    p = c.run_popen()
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        assert ready, "the payload never reported ready"
        line = p.stdout.readline()
        assert b'"ready"' in line, line
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    got = json.loads(out.decode().strip().splitlines()[-1])
    assert got["signal"] == signal.SIGTERM
    assert p.returncode == 0


def test_run_detach(env):
    c = env.container(["/bin/payload", "print", "detached"])
    c.run_detached()
    assert wait_for(lambda: c.status() == "stopped")
    assert c.output() == "detached\n"


def test_pid_file_create(env):
    c = env.container(SLEEP)
    pf = env.path("create.pid")
    c.create("--pid-file", pf)
    with open(pf) as f:
        assert int(f.read().strip()) == c.state()["pid"]


def test_pid_file_run_detach(env):
    c = env.container(SLEEP)
    pf = env.path("run.pid")
    c.run_detached("--pid-file", pf)
    with open(pf) as f:
        pid = int(f.read().strip())
    assert pid == c.state()["pid"] and pid_alive(pid)


def test_list(env):
    a = env.container(SLEEP)
    b = env.container(SLEEP)
    a.create()
    b.create()
    b.start()
    r = env.rt.ok("list")
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "PID", "STATUS"]
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert rows[a.id][2] == "created"
    assert rows[b.id][2] == "running"
    r = env.rt.ok("list", "--format", "json")
    items = {i["id"]: i for i in json.loads(r.stdout)}
    assert set(items) == {a.id, b.id}
    assert items[a.id]["status"] == "created"
    assert items[b.id]["pid"] == b.init_pid
    r = env.rt.ok("list", "-q")
    assert sorted(r.stdout.split()) == sorted([a.id, b.id])


def test_list_empty_root(env):
    r = env.rt.ok("list", "--format", "json")
    assert json.loads(r.stdout or "null") in (None, [])


def test_missing_container_errors(env):
    for args in (["state", "nope-nothing"], ["start", "nope-nothing"],
                 ["kill", "nope-nothing", "KILL"], ["delete", "nope-nothing"]):
        r = env.rt.cmd(*args)
        assert r.returncode != 0, args
        assert "does not exist" in r.stderr, (args, r.stderr)


def test_duplicate_id(env):
    a = env.container(SLEEP)
    a.create()
    b = env.container(SLEEP, cid=a.id)
    r = b.create(check=False)
    assert r.returncode != 0
    assert "already exists" in b.errors()
    assert a.status() == "created"


def test_start_twice_fails(env):
    c = env.container(SLEEP)
    c.create()
    c.start()
    r = c.start(check=False)
    assert r.returncode != 0
    assert c.status() == "running"


def test_stopped_after_exit_and_delete(env):
    c = env.container(["/bin/payload", "exit", "3"])
    c.create()
    pid = c.init_pid
    c.start()
    assert wait_for(lambda: c.status() == "stopped")
    assert not pid_alive(pid)
    c.delete()
    assert env.rt.cmd("state", c.id).returncode != 0


def test_children_killed_on_delete(env):
    c = env.container(["/bin/payload", "fork-sleep", "3", "60"])
    c.create()
    c.start()
    assert wait_for(lambda: '"children"' in c.output())
    kids = json.loads(c.output())["children"]
    assert len(kids) == 3
    c.kill("KILL")
    assert wait_for(lambda: c.status() == "stopped")
    c.delete()
    time.sleep(0.1)
