"""Detach keys (issue 7): docker's ctrl-p,ctrl-q (or --detach-keys) on
attached tty sessions, against `moat daemon`.

The docker CLI watches its own input for the sequence; the daemon does too
(moby's container/stream/attach.go): it stops relaying, does not pass the
sequence on, and ends the hijacked connection while the container keeps
running. Without a tty the input is relayed as it is. The daemon's side is
checked with a raw hijacked connection, the CLIs' in a terminal (tmux).
"""

import json
import os
import re
import socket
import sys
import tempfile

import harness
from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, moat_path, wait_for  # noqa: F401

sys.path.insert(0, os.path.join(harness.REPO, "tests", "managers"))
from managers import Tmux  # noqa: E402


def name(prefix="dk"):
    return f"{prefix}-{os.urandom(4).hex()}"


def tmux_session(d, cmdline):
    base = tempfile.mkdtemp(prefix="tmux-", dir=d.base)
    t = Tmux(base)
    t.start(f"{d.shell_env()} {cmdline}")
    return t


def keys(t, *names):
    for k in names:
        t._cmd("send-keys", "-t", t.name, k)


def running(d, ref):
    return d.inspect(ref)["State"]["Running"]


def detached_ok(t, says=False):
    """What docker 28's CLI shows on a detach: run, start and exec end
    quietly with status 0; attach and exec say "read escape sequence" and
    exit 1."""
    t.wait_text(r"EXITED=\d+$", unless=None)
    scr = t.screen()
    if says:
        assert re.search(r"read escape sequence\nEXITED=1$", scr, re.M), scr
    else:
        assert re.search(r"EXITED=0$", scr, re.M), scr
        assert "escape sequence" not in scr, scr


# ---- the daemon, by a raw hijacked connection ----------------------------------------


class Hijack:
    def __init__(self, d, path, body=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(d.sock)
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {path} HTTP/1.1\r\nHost: moat\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        self.s.sendall(head + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.s.recv(4096)
            assert chunk, f"no response head: {buf!r}"
            buf += chunk
        head, _, self.out = buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])
        self.head = head.decode(errors="replace")

    def read_until(self, pattern):
        rx = re.compile(pattern)
        while not rx.search(self.out):
            chunk = self.s.recv(65536)
            assert chunk, f"the stream ended before {pattern!r}: {self.out!r}"
            self.out += chunk
        return self.out

    def read_to_end(self):
        while True:
            chunk = self.s.recv(65536)
            if not chunk:
                return self.out
            self.out += chunk

    def close(self):
        self.s.close()


def api(d, method, path, body=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(d.sock)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall((f"{method} {path} HTTP/1.1\r\nHost: moat\r\nConnection: close\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data)
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_daemon_detach_keeps_input_not_yet_read(daemon):
    """Input the process has not read yet when the detach keys come (some
    held by the monitor, the rest still in its socket from the daemon)
    reaches the process all the same once it reads."""
    n = name()
    total = 100000
    daemon.run_d("-it", "--name", n, IMAGE, "sh", "-c",
                 f"stty raw -echo; echo ready; sleep 2; head -c {total} | wc -c > /count; sleep 1000")
    h = Hijack(daemon, f"/containers/{n}/attach?logs=1&stream=1&stdin=1&stdout=1&stderr=1")
    try:
        assert h.status == 101, h.head
        h.read_until(rb"ready")
        h.s.sendall(b"a" * total)
        h.s.sendall(b"\x10\x11")
        h.read_to_end()
    finally:
        h.close()
    assert running(daemon, n)

    def count():
        p = daemon.docker("exec", n, "cat", "/count")
        return p.stdout.strip() if p.returncode == 0 else None
    assert wait_for(lambda: count() == str(total), timeout=30), count()
    daemon.ok("rm", "-f", n)


def test_daemon_detach_tty(daemon):
    """Default keys on a tty: a partial sequence followed by another byte is
    passed on; the whole sequence ends the stream and is not passed on; the
    container keeps running and a new attach gets its input."""
    n = name()
    daemon.run_d("-it", "--name", n, IMAGE, "sh")
    h = Hijack(daemon, f"/containers/{n}/attach?stream=1&stdin=1&stdout=1&stderr=1")
    try:
        assert h.status == 101, h.head
        h.s.sendall(b"echo one-$((3*4))\n")
        h.read_until(rb"one-12")
        # ctrl-p then 'x': not the sequence, both go to the shell's line.
        h.s.sendall(b"\x10")
        h.s.sendall(b"x; echo two-$((5*5))\n")
        h.read_until(rb"two-25")
        h.s.sendall(b"echo three-$((6*6))")
        h.s.sendall(b"\x10\x11")
        out = h.read_to_end()
    finally:
        h.close()
    assert b"three-36" not in out.split(b"echo three")[-1], out
    assert running(daemon, n)
    h = Hijack(daemon, f"/containers/{n}/attach?stream=1&stdin=1&stdout=1&stderr=1")
    try:
        assert h.status == 101, h.head
        # The line typed before the detach is still in the shell's buffer.
        h.s.sendall(b"; echo four\n")
        out = h.read_until(rb"three-36\s+four")
        assert b"\x10" not in out and b"\x11" not in out, out
    finally:
        h.close()
    assert running(daemon, n)


def test_daemon_detach_custom_keys(daemon):
    n = name()
    daemon.run_d("-it", "--name", n, IMAGE, "sh")
    h = Hijack(daemon, f"/containers/{n}/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,x")
    try:
        assert h.status == 101, h.head
        # The default sequence is only bytes now.
        h.s.sendall(b"\x10\x11echo five-$((2*3))\n")
        h.read_until(rb"five-6")
        h.s.sendall(b"\x01x")
        h.read_to_end()
    finally:
        h.close()
    assert running(daemon, n)


def test_daemon_invalid_keys(daemon):
    n = name()
    daemon.run_d("-it", "--name", n, IMAGE, "sh")
    for spec in ("ctrl-1", "ab", "ctrl-", ",", "a," * 200 + "a"):
        q = spec.replace(",", "%2C")
        st, body = api(daemon, "POST", f"/containers/{n}/attach?stream=1&stdin=1&stdout=1&detachKeys={q}")
        assert st == 400, (spec, st, body)
        assert "Invalid detach keys" in json.loads(body)["message"], body
    st, body = api(daemon, "POST", f"/containers/{n}/exec",
                   {"Cmd": ["true"], "AttachStdin": True, "Tty": True, "DetachKeys": "ctrl-9"})
    assert st == 400, (st, body)
    assert "Invalid detach keys (ctrl-9)" in json.loads(body)["message"], body
    p = daemon.docker("exec", "--detach-keys", "ctrl-1", n, "true")
    assert p.returncode != 0
    assert "Invalid detach keys (ctrl-1) provided" in p.stderr, p.stderr
    assert running(daemon, n)


def test_daemon_no_tty_not_detached(daemon):
    """moby applies detach keys to tty sessions only: without a tty the
    sequence is data like any other."""
    n = name()
    daemon.run_d("-i", "--name", n, IMAGE, "cat")
    h = Hijack(daemon, f"/containers/{n}/attach?stream=1&stdin=1&stdout=1")
    try:
        assert h.status == 101, h.head
        h.s.sendall(b"a\x10\x11b\n")
        out = h.read_until(rb"b\n")
        # one stdout frame (or more) carrying the bytes as sent
        payload = b""
        while out:
            size = int.from_bytes(out[4:8], "big")
            payload += out[8:8 + size]
            out = out[8 + size:]
        assert payload == b"a\x10\x11b\n", payload
    finally:
        h.close()
    assert running(daemon, n)


def test_daemon_exec_detach(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "300")
    st, body = api(daemon, "POST", f"/containers/{n}/exec",
                   {"Cmd": ["sh"], "AttachStdin": True, "AttachStdout": True, "Tty": True})
    assert st == 201, body
    eid = json.loads(body)["Id"]
    h = Hijack(daemon, f"/exec/{eid}/start", {"Detach": False, "Tty": True})
    try:
        assert h.status == 101, h.head
        h.s.sendall(b"echo ex-$((7*7))\n")
        h.read_until(rb"ex-49")
        h.s.sendall(b"\x10\x11")
        h.read_to_end()
    finally:
        h.close()
    st, body = api(daemon, "GET", f"/exec/{eid}/json")
    assert st == 200 and json.loads(body)["Running"], body
    assert running(daemon, n)


def test_daemon_exec_custom_keys(daemon):
    """The exec's DetachKeys (from its create body) replace the default."""
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "300")
    st, body = api(daemon, "POST", f"/containers/{n}/exec",
                   {"Cmd": ["sh"], "AttachStdin": True, "AttachStdout": True, "Tty": True,
                    "DetachKeys": "ctrl-x"})
    assert st == 201, body
    eid = json.loads(body)["Id"]
    st, body = api(daemon, "GET", f"/exec/{eid}/json")
    assert st == 200 and json.loads(body)["DetachKeys"] == "ctrl-x", body
    h = Hijack(daemon, f"/exec/{eid}/start", {"Detach": False, "Tty": True})
    try:
        assert h.status == 101, h.head
        h.s.sendall(b"\x10\x11echo ok-$((9*3))\n")
        h.read_until(rb"ok-27")
        h.s.sendall(b"\x18")
        h.read_to_end()
    finally:
        h.close()
    st, body = api(daemon, "GET", f"/exec/{eid}/json")
    assert st == 200 and json.loads(body)["Running"], body
    assert running(daemon, n)


# ---- the docker CLI in a terminal -------------------------------------------------------


def test_docker_run_it_detach_and_attach(daemon):
    n = name()
    t = tmux_session(daemon, f"docker run -it --name {n} {IMAGE} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("echo run-$((8*8))")
        t.wait_text(r"^run-64\s*$")
        keys(t, "C-p", "C-q")
        detached_ok(t)
    finally:
        t.stop()
    assert running(daemon, n)
    t = tmux_session(daemon, f"docker attach {n}")
    try:
        t.send("echo again-$((9*9))")
        t.wait_text(r"^again-81\s*$")
        keys(t, "C-p", "C-q")
        detached_ok(t, says=True)
    finally:
        t.stop()
    assert running(daemon, n)


def test_docker_custom_detach_keys(daemon):
    n = name()
    t = tmux_session(daemon, f"docker run -it --detach-keys ctrl-a,x --name {n} {IMAGE} sh")
    try:
        t.wait_text(r"^/ # ")
        keys(t, "C-p", "C-q")
        t.send("echo still-$((4*4))")
        t.wait_text(r"^still-16\s*$")
        keys(t, "C-a", "x")
        detached_ok(t)
    finally:
        t.stop()
    assert running(daemon, n)
    t = tmux_session(daemon, f"docker start -ai --detach-keys ctrl-b {n}")
    try:
        t.send("echo started-$((3*3))")
        t.wait_text(r"^started-9\s*$")
        keys(t, "C-b")
        detached_ok(t)
    finally:
        t.stop()
    assert running(daemon, n)


def test_docker_exec_it_detach(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "300")
    t = tmux_session(daemon, f"docker exec -it {n} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("echo exec-$((6*7))")
        t.wait_text(r"^exec-42\s*$")
        keys(t, "C-p", "C-q")
        detached_ok(t, says=True)
    finally:
        t.stop()
    assert running(daemon, n)


# ---- the moat CLI ---------------------------------------------------------------------


def moat_session(d, cmdline):
    base = tempfile.mkdtemp(prefix="tmux-", dir=d.base)
    t = Tmux(base)
    t.start(f"{moat_path()} -H unix://{d.sock} {cmdline}")
    return t


def test_moat_run_it_detach(daemon):
    n = name()
    t = moat_session(daemon, f"run -it --name {n} {IMAGE} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("echo moat-$((8*8))")
        t.wait_text(r"^moat-64\s*$")
        keys(t, "C-p", "C-q")
        detached_ok(t)
    finally:
        t.stop()
    assert running(daemon, n)
    t = moat_session(daemon, f"attach --detach-keys ctrl-x {n}")
    try:
        # not the keys now: ctrl-p (ash's history) and ctrl-q reach the shell
        keys(t, "C-p", "C-q")
        t.send("; echo back-$((2*2))")
        t.wait_text(r"^moat-64\s+back-4\s*$")
        keys(t, "C-x")
        detached_ok(t, says=True)
    finally:
        t.stop()
    assert running(daemon, n)


def test_moat_exec_it_detach(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "300")
    t = moat_session(daemon, f"exec -it --detach-keys ctrl-x,y {n} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("echo mx-$((6*6))")
        t.wait_text(r"^mx-36\s*$")
        keys(t, "C-x", "y")
        detached_ok(t, says=True)
    finally:
        t.stop()
    assert running(daemon, n)
