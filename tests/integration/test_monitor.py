"""moat-monitor driven directly, as the daemon will (docs/monitor.md).

Each test starts a monitor with a sync pipe, reads its one JSON line, and
talks to attach.sock / ctl.sock with plain sockets. What is checked is what
a client sees: log lines, demuxed frames, exit.json, the runtime's state,
processes and cgroups (the env fixture's teardown checks nothing is left).
"""

import json
import os
import select
import signal
import socket
import struct
import subprocess
import time

import pytest

from harness import build_dir, pid_alive, processes_in_cgroup_named, cgroup_dirs_named, wait_for

TIMEOUT = 30


def monitor_path():
    return os.path.join(build_dir(), "src", "monitor", "moat-monitor")


@pytest.fixture(autouse=True)
def need_monitor():
    if not os.access(monitor_path(), os.X_OK):
        pytest.fail(f"{monitor_path()} is missing (build first)")


class Monitor:
    def __init__(self, env, c, proc, sync):
        self.env, self.c, self.proc, self.sync = env, c, proc, sync
        self.dir = c.bundle
        self.pid = proc.pid

    def path(self, name):
        return os.path.join(self.dir, name)

    def connect(self, name):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(self.path(name))
        return s

    def ctl(self, req, name="ctl.sock"):
        with self.connect(name) as s:
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(4096)
                assert chunk, "ctl socket closed without a reply"
                buf += chunk
            return json.loads(buf.split(b"\n")[0])

    def attach(self, stdin=False, stdout=True, stderr=True, name="attach.sock"):
        s = self.connect(name)
        s.sendall(json.dumps({"stdin": stdin, "stdout": stdout, "stderr": stderr}).encode() + b"\n")
        # The monitor acknowledges the request once the client is registered;
        # output produced after the acknowledgement reaches it.
        ack = b""
        while not ack.endswith(b"\n"):
            chunk = s.recv(1)
            assert chunk, "attach socket closed before the acknowledgement"
            ack += chunk
        assert ack == b"{}\n", f"unexpected attach acknowledgement {ack!r}"
        return s

    def exit_record(self, name="exit.json", timeout=TIMEOUT):
        p = self.path(name)
        assert wait_for(lambda: os.path.exists(p), timeout), f"{name} did not appear"
        with open(p) as f:
            return json.load(f)

    def wait_exited(self):
        """The monitor exits on its own after the container; reap it."""
        self.proc.wait(timeout=TIMEOUT)
        return self.proc.returncode


def start_monitor(env, c, *extra, verb="run", check=True):
    r, w = os.pipe()
    if verb == "run":
        argv = [monitor_path(), "run", "--id", c.id, "--bundle", c.bundle,
                "--runtime-root", env.rt.root, "--log-path", os.path.join(c.bundle, "ctr.log"),
                "--sync-fd", str(w), *extra]
    else:
        argv = [monitor_path(), "exec", *extra, "--sync-fd", str(w)]
    proc = subprocess.Popen(argv, pass_fds=[w], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    line = b""
    with os.fdopen(r, "rb") as f:
        line = f.readline()
    m = Monitor(env, c, proc, json.loads(line) if line else None)

    def stop():
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
    env.on_cleanup(stop)
    if check:
        assert m.sync and "pid" in m.sync, f"monitor sync: {line!r}, stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
    return m


def read_frames(sock, timeout=TIMEOUT):
    """Demux docker frames until EOF: returns {1: stdout, 2: stderr}."""
    out = {1: b"", 2: b""}
    buf = b""
    sock.settimeout(timeout)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    while buf:
        assert len(buf) >= 8, f"truncated frame header {buf!r}"
        stream, size = struct.unpack(">BxxxL", buf[:8])
        assert stream in (1, 2), f"stream {stream}"
        assert len(buf) >= 8 + size
        out[stream] += buf[8:8 + size]
        buf = buf[8 + size:]
    return out


def read_raw(sock, timeout=TIMEOUT):
    data = b""
    sock.settimeout(timeout)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def log_entries(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


def sh(env, script, overrides=None):
    return env.container(["/bin/sh", "-c", script], overrides)


def test_logs_and_exit(env):
    c = sh(env, "echo out1; echo err1 >&2; printf 'tail'; exit 3")
    m = start_monitor(env, c)
    assert m.sync["pid"] > 0
    rec = m.exit_record()
    assert m.wait_exited() == 0
    assert rec["exit_code"] == 3 and rec["signal"] == 0 and rec["oom_killed"] is False
    assert rec["started_at"].endswith("Z") and rec["finished_at"] >= rec["started_at"]
    entries = log_entries(os.path.join(c.bundle, "ctr.log"))
    got = [(e["stream"], e["log"]) for e in entries]
    assert ("stdout", "out1\n") in got and ("stderr", "err1\n") in got
    assert ("stdout", "tail") in got, "output without a newline is logged as it is"
    for e in entries:
        assert e["time"].endswith("Z")
    # the runtime container is gone, and so are the sockets
    assert not os.path.exists(c.state_dir)
    assert not os.path.exists(m.path("attach.sock"))
    assert not cgroup_dirs_named(c.id)


def test_signal_exit_code(env):
    c = sh(env, "exec sleep 600")
    m = start_monitor(env, c)
    c.kill("KILL")
    rec = m.exit_record()
    assert rec["exit_code"] == 137 and rec["signal"] == 9


def test_attach_demux_and_stdin_once(env):
    c = sh(env, "read a; echo got:$a; cat; echo done >&2")
    m = start_monitor(env, c, "--stdin", "--stdin-once")
    s = m.attach(stdin=True)
    s.sendall(b"first\nsecond\n")
    s.shutdown(socket.SHUT_WR)  # stdin-once: EOF for the container
    frames = read_frames(s)
    s.close()
    assert frames[1] == b"got:first\nsecond\n"
    assert frames[2] == b"done\n"
    rec = m.exit_record()
    assert rec["exit_code"] == 0


def test_attach_stdout_only_and_status(env):
    c = sh(env, "read x; echo $x; echo e >&2")
    m = start_monitor(env, c, "--stdin")
    st = m.ctl({"op": "status"})
    assert st["pid"] == m.sync["pid"] and st["running"] is True
    out = m.attach(stdout=True, stderr=False)
    r = m.ctl({"op": "resize", "height": 10, "width": 10})
    assert "error" in r  # no terminal
    feeder = m.attach(stdin=True, stdout=False, stderr=False)
    feeder.sendall(b"hello\n")
    frames = read_frames(out)
    assert frames == {1: b"hello\n", 2: b""}
    feeder.close()
    out.close()
    assert m.exit_record()["exit_code"] == 0


def test_close_stdin_ctl(env):
    c = sh(env, "cat; echo eof")
    m = start_monitor(env, c, "--stdin")
    s = m.attach()
    assert m.ctl({"op": "close-stdin"}) == {}
    frames = read_frames(s)
    assert frames[1] == b"eof\n"


def test_tty_resize(env):
    c = env.container(["/bin/sh", "-c", "read x; stty size; exit 0"], {"process": {"terminal": True}})
    m = start_monitor(env, c, "--tty", "--stdin")
    assert m.ctl({"op": "resize", "height": 33, "width": 77}) == {}
    s = m.attach(stdin=True)
    s.sendall(b"go\n")
    data = read_raw(s)
    assert b"33 77" in data, data
    assert data[:1] != b"\x01", "a tty attach is raw, not framed"
    assert m.exit_record()["exit_code"] == 0
    entries = log_entries(os.path.join(c.bundle, "ctr.log"))
    assert any("33 77" in e["log"] and e["stream"] == "stdout" for e in entries)


def test_rotation(env):
    # 20 MB of output in 1000-byte lines, max-size 1m, max-file 3
    c = sh(env, "yes $(head -c 999 /dev/zero | tr '\\0' x) | head -n 20000")
    m = start_monitor(env, c, "--log-max-size", "1048576", "--log-max-file", "3")
    assert m.exit_record(timeout=120)["exit_code"] == 0
    log = os.path.join(c.bundle, "ctr.log")
    names = sorted(n for n in os.listdir(c.bundle) if n.startswith("ctr.log"))
    assert names == ["ctr.log", "ctr.log.1", "ctr.log.2"], names
    for n in names:
        size = os.path.getsize(os.path.join(c.bundle, n))
        assert size < 1048576 + 2000, (n, size)
    for n in ("ctr.log.1", "ctr.log.2"):
        assert os.path.getsize(os.path.join(c.bundle, n)) >= 1048576
    # every line is a whole entry of a whole container line
    for n in names:
        for e in log_entries(os.path.join(c.bundle, n)):
            assert e["log"] == "x" * 999 + "\n"


def test_survives_parent_death(env):
    c = sh(env, "echo up; exec sleep 600")
    # a parent that starts the monitor, prints the sync line and exits
    script = f"""
import os, subprocess, sys
r, w = os.pipe()
p = subprocess.Popen({[monitor_path(), 'run', '--id', c.id, '--bundle', c.bundle,
                       '--runtime-root', env.rt.root, '--log-path', os.path.join(c.bundle, 'ctr.log')]!r}
                     + ['--sync-fd', str(w)], pass_fds=[w], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(w)
sys.stdout.write(os.fdopen(r).readline())
sys.stdout.write(str(p.pid) + "\\n")
"""
    out = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout.splitlines()
    sync, mpid = json.loads(out[0]), int(out[1])

    def stop():
        if pid_alive(mpid):
            os.kill(mpid, signal.SIGKILL)
    env.on_cleanup(stop)
    c.init_pid = sync["pid"]
    assert pid_alive(mpid) and pid_alive(sync["pid"])
    with open(os.path.join(c.bundle, "monitor.pid")) as f:
        assert int(f.read()) == mpid
    assert c.status() == "running"
    # SIGTERM to the monitor is not forwarded and does not end it
    os.kill(mpid, signal.SIGTERM)
    time.sleep(0.2)
    assert pid_alive(mpid) and c.status() == "running"
    c.kill("KILL")
    rec = json.load(open(os.path.join(c.bundle, "exit.json"))) if wait_for(
        lambda: os.path.exists(os.path.join(c.bundle, "exit.json")), TIMEOUT) else None
    assert rec and rec["exit_code"] == 137
    assert wait_for(lambda: not pid_alive(mpid), TIMEOUT)
    assert not os.path.exists(c.state_dir)


def test_exec_exit_code_and_attach(env):
    c = sh(env, "exec sleep 600")
    m = start_monitor(env, c)
    proc = os.path.join(env.tmp, "proc.json")
    with open(proc, "w") as f:
        json.dump({"args": ["/bin/sh", "-c", "read l; echo x$l; echo y >&2; exit 7"], "cwd": "/",
                   "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0}}, f)
    e = start_monitor(env, c, "--id", c.id, "--exec-id", "e1", "--runtime-root", env.rt.root,
                      "--process", proc, "--stdin", "--stdin-once", "--dir", c.bundle, verb="exec")
    assert e.sync["pid"] > 0 and e.sync["pid"] != m.sync["pid"]
    s = e.attach(stdin=True, name="exec-e1.attach.sock")
    s.sendall(b"abc\n")
    s.shutdown(socket.SHUT_WR)
    frames = read_frames(s)
    # the exit code is on disk by the time the stream ends
    assert os.path.exists(e.path("exec-e1.exit.json"))
    assert frames == {1: b"xabc\n", 2: b"y\n"}
    assert e.exit_record("exec-e1.exit.json")["exit_code"] == 7
    assert e.wait_exited() == 0
    # the container is still running, and its log did not get the exec's output
    assert c.status() == "running"
    assert not any("xabc" in l for l in open(os.path.join(c.bundle, "ctr.log")))
    c.kill("KILL")
    assert m.exit_record()["exit_code"] == 137


def test_bad_config_leaves_nothing(env):
    c = env.container(["/bin/true"], {"process": {"cwd": "relative/not/absolute"}})
    m = start_monitor(env, c, check=False)
    assert m.sync and "error" in m.sync, m.sync
    assert m.wait_exited() == 1
    assert not os.path.exists(c.state_dir)
    assert not cgroup_dirs_named(c.id)
    assert not processes_in_cgroup_named(c.id)
    for n in ("attach.sock", "ctl.sock", "monitor.pid", "exit.json"):
        assert not os.path.exists(m.path(n)), n


def test_wait_start(env):
    c = sh(env, "echo started")
    m = start_monitor(env, c, "--wait-start")
    s = m.attach()
    assert c.status() == "created"
    assert m.ctl({"op": "status"})["running"] is False
    assert m.ctl({"op": "start"}) == {}
    frames = read_frames(s)
    assert frames[1] == b"started\n", "output from the first byte reaches a client attached before start"
    assert m.exit_record()["exit_code"] == 0


def test_wait_start_runs_poststart_hooks(env):
    """A container with poststart hooks is started by the runtime's start,
    run in a forked child of the monitor: the hook runs once, after the
    program, and the output from the first byte still reaches the client."""
    marker = env.path("poststart-ran")
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {marker}"]}
    c = sh(env, "echo started; exec sleep 600", {"hooks": {"poststart": [hook]}})
    m = start_monitor(env, c, "--wait-start")
    s = m.attach()
    assert not os.path.exists(marker), "a poststart hook ran before the start"
    assert m.ctl({"op": "start"}) == {}
    assert wait_for(lambda: os.path.exists(marker) and os.path.getsize(marker) > 0)
    with open(marker) as f:
        state = json.load(f)
    assert state["status"] == "running" and state["pid"] == m.sync["pid"]
    assert m.ctl({"op": "status"})["running"] is True
    c.kill("KILL")
    frames = read_frames(s)
    assert frames[1] == b"started\n"
    m.exit_record()
    # the cleanup (also a forked child) deleted the runtime's state
    assert m.wait_exited() == 0
    assert not os.path.exists(os.path.join(env.rt.root, c.id))


def test_idle_pss(env):
    c = sh(env, "echo ready; exec sleep 600")
    m = start_monitor(env, c)
    assert wait_for(lambda: os.path.exists(os.path.join(c.bundle, "ctr.log")) and
                    os.path.getsize(os.path.join(c.bundle, "ctr.log")) > 0)
    time.sleep(0.3)
    with open(f"/proc/{m.pid}/smaps_rollup") as f:
        roll = dict(l.split(":", 1) for l in f.read().splitlines()[1:])
    pss = int(roll["Pss"].split()[0])
    print(f"\nidle moat-monitor PSS: {pss} kB (Rss {roll['Rss'].strip()}, "
          f"Private_Dirty {roll['Private_Dirty'].strip()})")
    by_name = {}
    name = None
    with open(f"/proc/{m.pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
                name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
            elif parts[0] == "Pss:":
                by_name[name] = by_name.get(name, 0) + int(parts[1])
    print("  " + ", ".join(f"{k} {v} kB" for k, v in sorted(by_name.items(), key=lambda kv: -kv[1]) if v))
    c.kill("KILL")
    m.exit_record()
