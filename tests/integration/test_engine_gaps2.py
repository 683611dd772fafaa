"""Engine gaps (issue 7), against `moat daemon`:

- a client that leaves with its detach keys is recorded as moby records it:
  the container's "detach" event (attach), "exec_detach" with the execID
  attribute (exec); `docker events --since/--until --filter event=...`
  finds them. The docker CLI catches the keys itself and never sends them,
  so its detaches are no events, with dockerd as with moat;
- stats of a container that is not running: moby's collector publishes the
  empty sample (name and id, zero structs, no omitempty fields) every
  second while streaming, and without streaming answers it at once;
- attach?logs=1&stream=1 joins the replayed log and the live stream with
  every byte once, also when the attach lands in the middle of a line and
  while the log rotates.
"""

import json
import os
import re
import socket
import sys
import tempfile
import time
import urllib.parse

import harness
from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, moat_path, wait_for  # noqa: F401

sys.path.insert(0, os.path.join(harness.REPO, "tests", "managers"))
from managers import Tmux  # noqa: E402


def name(prefix="g2"):
    return f"{prefix}-{os.urandom(4).hex()}"


class Conn:
    """One HTTP/1.1 request on the daemon's socket; a hijack (attach,
    exec start) or a streamed body is read from self.rest on."""

    def __init__(self, d, method, path, body=None, upgrade=False):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(d.sock)
        data = json.dumps(body).encode() if body is not None else b""
        extra = "Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else "Connection: close\r\n"
        self.s.sendall((f"{method} {path} HTTP/1.1\r\nHost: moat\r\n{extra}"
                        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.s.recv(65536)
            assert chunk, f"no response head: {buf!r}"
            buf += chunk
        head, _, self.rest = buf.partition(b"\r\n\r\n")
        self.head = head.decode(errors="replace")
        self.status = int(self.head.split()[1])
        self.chunked = re.search(r"(?im)^transfer-encoding:\s*chunked", self.head) is not None
        self.raw = b""       # the chunked body, not decoded yet
        self.ended = False
        if self.chunked:
            self.raw, self.rest = self.rest, b""

    def recv(self, timeout):
        """More bytes of the body (b"" at its end); None when nothing came
        within timeout seconds."""
        self.s.settimeout(timeout)
        while True:
            if self.chunked:
                got = self._dechunk()
                if got:
                    return got
                if self.ended:
                    return b""
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            if not self.chunked:
                self.rest += chunk
                return chunk
            if not chunk:
                self.ended = True
            self.raw += chunk

    def _dechunk(self):
        got = b""
        while not self.ended:
            line, sep, after = self.raw.partition(b"\r\n")
            if not sep:
                break
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.ended = True
                break
            if len(after) < size + 2:
                break
            got += after[:size]
            self.raw = after[size + 2:]
        self.rest += got
        return got

    def read_to_end(self):
        while True:
            c = self.recv(30)
            assert c is not None, "the response did not end"
            if not c:
                return self.rest

    def close(self):
        self.s.close()


def api(d, method, path, body=None):
    c = Conn(d, method, path, body)
    try:
        return c.status, c.read_to_end()
    finally:
        c.close()


def running(d, ref):
    return d.inspect(ref)["State"]["Running"]


# ---- detach events ------------------------------------------------------------------


def events(d, since, until, event):
    p = d.ok("events", "--since", f"{since:.6f}", "--until", f"{until:.6f}", "--filter", f"event={event}",
             "--format", "{{json .}}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def api_events(d, since, until, event):
    q = urllib.parse.urlencode({"since": f"{since:.6f}", "until": f"{until:.6f}",
                                "filters": json.dumps({"event": [event]})})
    st, body = api(d, "GET", f"/events?{q}")
    assert st == 200, body
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def test_attach_detach_event(daemon):
    """ctrl-p,ctrl-q on an attach: one "detach" event of the container, with
    its name, image and labels as attributes; found by --since/--until and
    the event filter, not by another event's filter."""
    n = name()
    cid = daemon.run_d("-it", "--label", "team=blue", "--name", n, IMAGE, "sh")
    t0 = time.time()
    h = Conn(daemon, "POST", f"/containers/{n}/attach?stream=1&stdin=1&stdout=1&stderr=1", upgrade=True)
    try:
        assert h.status == 101, h.head
        h.s.sendall(b"echo in-$((5*5))\n")
        while b"in-25" not in h.rest:
            assert h.recv(30), h.rest
        h.s.sendall(b"\x10\x11")
        h.read_to_end()
    finally:
        h.close()
    assert wait_for(lambda: api_events(daemon, t0, time.time(), "detach"), 10)
    t1 = time.time()
    evs = events(daemon, t0, t1, "detach")
    assert len(evs) == 1, evs
    ev = evs[0]
    assert ev["Type"] == "container" and ev["Action"] == "detach" and ev["status"] == "detach", ev
    assert ev["Actor"]["ID"] == cid and ev["id"] == cid, ev
    attrs = ev["Actor"]["Attributes"]
    assert attrs["name"] == n and attrs["image"] == IMAGE and attrs["team"] == "blue", attrs
    assert "execID" not in attrs, attrs
    assert events(daemon, t0, t1, "exec_detach") == []
    # Outside the window: nothing.
    assert events(daemon, t0 - 60, t0 - 30, "detach") == []
    assert running(daemon, n)


def test_attach_closed_is_no_detach(daemon):
    """A client that goes away without the keys has not detached (moby logs
    detach for the escape sequence only)."""
    n = name()
    daemon.run_d("-it", "--name", n, IMAGE, "sh")
    t0 = time.time()
    h = Conn(daemon, "POST", f"/containers/{n}/attach?stream=1&stdin=1&stdout=1&stderr=1", upgrade=True)
    try:
        assert h.status == 101, h.head
        h.s.sendall(b"echo out-$((2*2))\n")
        while b"out-4" not in h.rest:
            assert h.recv(30), h.rest
    finally:
        h.close()
    # An event after the close orders the check after anything the close
    # would have logged.
    daemon.ok("pause", n)
    daemon.ok("unpause", n)
    assert wait_for(lambda: api_events(daemon, t0, time.time(), "unpause"), 10)
    assert api_events(daemon, t0, time.time(), "detach") == []


def test_exec_detach_event(daemon):
    n = name()
    cid = daemon.run_d("--name", n, IMAGE, "sleep", "300")
    st, body = api(daemon, "POST", f"/containers/{n}/exec",
                   {"Cmd": ["sh"], "AttachStdin": True, "AttachStdout": True, "Tty": True})
    assert st == 201, body
    eid = json.loads(body)["Id"]
    t0 = time.time()
    h = Conn(daemon, "POST", f"/exec/{eid}/start", {"Detach": False, "Tty": True}, upgrade=True)
    try:
        assert h.status == 101, h.head
        h.s.sendall(b"echo ex-$((7*7))\n")
        while b"ex-49" not in h.rest:
            assert h.recv(30), h.rest
        h.s.sendall(b"\x10\x11")
        h.read_to_end()
    finally:
        h.close()
    assert wait_for(lambda: api_events(daemon, t0, time.time(), "exec_detach"), 10)
    evs = events(daemon, t0, time.time(), "exec_detach")
    assert len(evs) == 1, evs
    ev = evs[0]
    assert ev["Type"] == "container" and ev["Action"] == "exec_detach", ev
    assert ev["Actor"]["ID"] == cid, ev
    attrs = ev["Actor"]["Attributes"]
    assert attrs["execID"] == eid and attrs["name"] == n and attrs["image"] == IMAGE, attrs
    assert events(daemon, t0, time.time(), "detach") == []
    st, body = api(daemon, "GET", f"/exec/{eid}/json")
    assert st == 200 and json.loads(body)["Running"], body


def tmux_session(d, cmdline):
    t = Tmux(tempfile.mkdtemp(prefix="tmux-", dir=d.base))
    t.start(f"{d.shell_env()} {cmdline}")
    return t


def test_docker_cli_detach_is_no_event(daemon):
    """The docker CLI watches its input for the keys itself and, on the
    sequence, closes the connection without sending it: the daemon sees a
    client that went away, and (as dockerd 20.10 here, with this CLI) logs
    neither "detach" nor "exec_detach". The containers keep running."""
    n = name()
    t0 = time.time()
    t = tmux_session(daemon, f"docker run -it --name {n} {IMAGE} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("echo run-$((8*8))")
        t.wait_text(r"^run-64\s*$")
        t._cmd("send-keys", "-t", t.name, "C-p")
        t._cmd("send-keys", "-t", t.name, "C-q")
        t.wait_text(r"EXITED=0$", unless=None)
    finally:
        t.stop()
    cid = daemon.inspect(n)["Id"]
    t = tmux_session(daemon, f"docker exec -it {n} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("echo exec-$((6*7))")
        t.wait_text(r"^exec-42\s*$")
        t._cmd("send-keys", "-t", t.name, "C-p")
        t._cmd("send-keys", "-t", t.name, "C-q")
        t.wait_text(r"EXITED=\d+$", unless=None)
    finally:
        t.stop()
    daemon.ok("pause", n)
    daemon.ok("unpause", n)
    assert wait_for(lambda: api_events(daemon, t0, time.time(), "unpause"), 10)
    t1 = time.time()
    assert [e["Actor"]["ID"] for e in events(daemon, t0, t1, "exec_start")] == [cid]
    assert events(daemon, t0, t1, "detach") == []
    assert events(daemon, t0, t1, "exec_detach") == []
    assert running(daemon, n)


# ---- stats of a container that is not running ------------------------------------------


ZERO_CPU = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
              "io_time_recursive", "sectors_recursive")


def assert_empty_sample(s, n, cid):
    """moby's StatsResponse{Name, ID} as encoding/json writes it."""
    assert s == {
        "name": "/" + n, "id": cid,
        "read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {}, "blkio_stats": {k: None for k in BLKIO_KEYS}, "num_procs": 0, "storage_stats": {},
        "cpu_stats": ZERO_CPU, "precpu_stats": ZERO_CPU, "memory_stats": {},
    }, s


def samples(conn, want, timeout=30):
    """The next `want` JSON lines of a stats stream."""
    out = []
    while True:
        lines = conn.rest.split(b"\n")
        if len(lines) - 1 >= want:
            out = [json.loads(x) for x in lines[:want]]
            conn.rest = b"\n".join(lines[want:])
            return out
        c = conn.recv(timeout)
        assert c, f"the stream ended or stalled: {conn.rest!r}"


def test_stats_created_container(daemon):
    """Created, never started: stream=0 answers the empty sample; stream=1
    sends it every second (moby's collector publishes name and id for a
    container that is not running), then real samples once it runs."""
    n = name()
    cid = daemon.ok("create", "--name", n, IMAGE, "sleep", "300").stdout.strip()
    daemon.seen_ids.add(cid)
    for q in ("stream=0", "stream=false&one-shot=true"):
        st, body = api(daemon, "GET", f"/containers/{n}/stats?{q}")
        assert st == 200, body
        lines = body.decode().splitlines()
        assert len(lines) == 1, body
        assert_empty_sample(json.loads(lines[0]), n, cid)
    c = Conn(daemon, "GET", f"/containers/{n}/stats?stream=1")
    try:
        assert c.status == 200, c.head
        for s in samples(c, 2):
            assert_empty_sample(s, n, cid)
        daemon.ok("start", n)
        seen = None
        while seen is None:
            s = samples(c, 1)[0]
            if s["read"] != "0001-01-01T00:00:00Z":
                seen = s
        assert seen["id"] == cid and seen["name"] == "/" + n, seen
        assert seen["pids_stats"]["current"] >= 1, seen
        assert seen["cpu_stats"]["system_cpu_usage"] > 0 and seen["cpu_stats"]["online_cpus"] >= 1, seen
    finally:
        c.close()
    # docker's CLI shows the created container's row.
    p = daemon.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", n)
    assert p.stdout.split()[0] == n, p.stdout


def test_stats_exited_container_no_stream(daemon):
    n = name()
    cid = daemon.run_d("--name", n, IMAGE, "true")
    assert wait_for(lambda: not running(daemon, n), 30)
    st, body = api(daemon, "GET", f"/containers/{n}/stats?stream=0")
    assert st == 200, body
    assert_empty_sample(json.loads(body), n, cid)


# ---- attach?logs=1 at the seam -----------------------------------------------------------


# Each line goes out in two writes with a pause between: an attach lands
# inside a line most of the time.
PRINTER = 'i=0; while :; do printf "L%05d-start-" $i; sleep 0.05; printf "end\\n"; i=$((i+1)); done'


def stdout_of(buf, tty):
    """The stdout bytes of an attach stream (frames without a tty)."""
    if tty:
        return buf.replace(b"\r\n", b"\n"), b""
    out = b""
    while len(buf) >= 8:
        size = int.from_bytes(buf[4:8], "big")
        if len(buf) < 8 + size:
            break
        assert buf[0] == 1, buf[:8]
        out += buf[8:8 + size]
        buf = buf[8 + size:]
    return out, buf


def check_sequence(text, first=None):
    """Consecutive whole lines L<k>-start-end, then a prefix of the next one."""
    lines = text.split("\n")
    tail = lines.pop()
    assert lines, text
    m = re.match(r"L(\d{5})-", lines[0])
    assert m, f"the stream does not start with a line: {text[:200]!r}"
    k0 = int(m.group(1))
    if first is not None:
        assert k0 == first, text[:200]
    for i, line in enumerate(lines):
        assert line == f"L{k0 + i:05d}-start-end", f"line {i}: {line!r} in\n{text}"
    assert f"L{k0 + len(lines):05d}-start-end".startswith(tail), f"tail {tail!r} in\n{text}"
    return k0, k0 + len(lines)


def logged_lines(d, n):
    return d.ok("logs", n).stdout.count("\n")


def attach_logs(d, n, tty, first=None):
    """One attach?logs=1&stream=1: read until three lines past what was
    logged before it, check the sequence; returns (first, next) numbers."""
    before = logged_lines(d, n)
    h = Conn(d, "POST", f"/containers/{n}/attach?logs=1&stream=1&stdout=1&stderr=1", upgrade=True)
    try:
        assert h.status == 101, h.head
        while True:
            out, _ = stdout_of(h.rest, tty)
            text = out.decode()
            if text.count("\n") >= before + 3:
                break
            assert h.recv(30), h.rest
    finally:
        h.close()
    return check_sequence(text, first)


def test_attach_logs_seam(daemon):
    """Attaches with logs=1 land in the middle of lines: the replay and the
    live stream give every line once, whole, in order."""
    n = name()
    daemon.run_d("--name", n, IMAGE, "sh", "-c", PRINTER)
    assert wait_for(lambda: logged_lines(daemon, n) >= 3, 30)
    for _ in range(8):
        attach_logs(daemon, n, False, first=0)


def test_attach_logs_seam_tty(daemon):
    n = name()
    daemon.run_d("-t", "--name", n, IMAGE, "sh", "-c", PRINTER)
    assert wait_for(lambda: logged_lines(daemon, n) >= 3, 30)
    for _ in range(5):
        attach_logs(daemon, n, True, first=0)


def test_attach_logs_seam_rotating(daemon):
    """With a small max-size the log rotates every few lines: the replay
    starts with the oldest file kept and still joins the stream exactly."""
    n = name()
    daemon.run_d("--name", n, "--log-opt", "max-size=1k", "--log-opt", "max-file=2", IMAGE, "sh", "-c", PRINTER)
    assert wait_for(lambda: logged_lines(daemon, n) >= 3, 30)
    log = daemon.inspect(n)["LogPath"]
    # Rotated twice at least: the first lines are gone.
    assert wait_for(lambda: os.path.exists(log + ".1") and not daemon.ok("logs", n).stdout.startswith("L00000"), 60)
    firsts = [attach_logs(daemon, n, False)[0] for _ in range(8)]
    assert min(firsts) > 0 and firsts == sorted(firsts), firsts


def test_exec_events_name_the_command_and_exec(daemon):
    """moby's exec_create / exec_start actions carry the command
    ("exec_start: sh -c echo hi") and an execID attribute; the event
    filter "exec_start" still matches them."""
    n = name("ev")
    cid = daemon.run_d("--name", n, IMAGE, "sleep", "300")
    t0 = time.time()
    assert daemon.ok("exec", n, "sh", "-c", "echo hi").stdout == "hi\n"
    assert wait_for(lambda: api_events(daemon, t0, time.time(), "exec_die"), 10)
    t1 = time.time()
    created = api_events(daemon, t0, t1, "exec_create")
    started = api_events(daemon, t0, t1, "exec_start")
    died = api_events(daemon, t0, t1, "exec_die")
    assert [e["Action"] for e in created] == ["exec_create: sh -c echo hi"], created
    assert [e["Action"] for e in started] == ["exec_start: sh -c echo hi"], started
    exec_id = created[0]["Actor"]["Attributes"]["execID"]
    assert len(exec_id) == 64
    assert started[0]["Actor"]["Attributes"]["execID"] == exec_id
    assert died[0]["Actor"]["Attributes"]["execID"] == exec_id
    assert {e["Actor"]["ID"] for e in created + started + died} == {cid}
