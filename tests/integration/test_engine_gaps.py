"""Three parts of the engine checked against real clients: container sizes
(`docker ps -s`, `docker inspect -s`, /system/df), attach with logs=1
(docker-py's attach(logs=True) and the raw bytes through curl), and the
streaming `moat stats`.

One daemon per module (daemon_fixture.py); every container a test made is
removed after it and must leave nothing behind.
"""

import json
import os
import re
import shutil
import subprocess
import threading

import pytest

from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, moat_path, wait_for  # noqa: F401

CURL = shutil.which("curl")


def name(prefix="g"):
    return f"{prefix}-{os.urandom(4).hex()}"


def curl(d, *args, data=None, timeout=60, empty_ok=False):
    """curl over the daemon's socket; returns (status, body bytes)."""
    if not CURL:
        pytest.skip("curl is not installed")
    cmd = [CURL, "-sS", "--unix-socket", d.sock, "-o", "-", "-w", "\n%{http_code}", *args]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, input=data)
    # curl calls a 101 with nothing after it an empty reply (52)
    assert p.returncode == 0 or (empty_ok and p.returncode == 52), p.stderr
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body


def api_json(d, path):
    code, body = curl(d, "http://moat/v1.51" + path)
    assert code == 200, body
    return json.loads(body)


# ---- sizes ------------------------------------------------------------------------


def test_size_counts_upper_dir_once_per_inode(daemon):
    base = name()
    daemon.ok("run", "--name", base, IMAGE, "true")
    n = name()
    # a file, a hard link to it (counted once), a symlink (its target's
    # length), a removed image file (a whiteout: nothing) and a directory
    # replaced (opaque: nothing but what is in it)
    daemon.ok("run", "--name", n, IMAGE, "sh", "-c",
              "head -c 100000 /dev/zero > /big && ln /big /big2 && ln -s /big /sym && "
              "rm /bin/payload && rm -rf /usr/sbin && mkdir /usr/sbin && echo 1234 > /usr/sbin/x")
    zero = api_json(daemon, f"/containers/{base}/json?size=1")
    doc = api_json(daemon, f"/containers/{n}/json?size=1")
    assert doc["SizeRw"] - zero["SizeRw"] == 100000 + len("/big") + len("1234\n")
    images = api_json(daemon, "/images/json")
    image_size = next(i["Size"] for i in images if i["Id"] == doc["Image"])
    assert doc["SizeRootFs"] == doc["SizeRw"] + image_size
    plain = api_json(daemon, f"/containers/{n}/json")
    assert "SizeRw" not in plain and "SizeRootFs" not in plain

    listed = {c["Id"]: c for c in api_json(daemon, "/containers/json?all=1&size=1")}
    assert listed[doc["Id"]]["SizeRw"] == doc["SizeRw"]
    assert listed[doc["Id"]]["SizeRootFs"] == doc["SizeRootFs"]
    assert all("SizeRw" not in c for c in api_json(daemon, "/containers/json?all=1"))

    out = daemon.ok("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", n).stdout.split()
    assert out == [str(doc["SizeRw"]), str(doc["SizeRootFs"])]
    df = api_json(daemon, "/system/df")
    row = next(c for c in df["Containers"] if c["Id"] == doc["Id"])
    assert row["SizeRw"] == doc["SizeRw"] and row["SizeRootFs"] == doc["SizeRootFs"]
    verbose = daemon.ok("system", "df", "-v").stdout
    assert re.search(rf"^{doc['Id'][:12]} .*100kB .*{n}$", verbose, re.M), verbose


def test_size_of_missing_container(daemon):
    code, body = curl(daemon, "http://moat/v1.51/containers/nosuch/json?size=1")
    assert code == 404, body


# ---- attach?logs=1 ------------------------------------------------------------------


def frame(stream, data):
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def attach_raw(d, ref, query):
    """POST attach over curl (the daemon hijacks; curl reads to EOF)."""
    code, body = curl(d, "-X", "POST", "-H", "Connection: Upgrade", "-H", "Upgrade: tcp",
                      f"http://moat/v1.51/containers/{ref}/attach?{query}", empty_ok=True)
    assert code == 101, body
    return body


def test_attach_logs_replay_frames(daemon):
    n = name()
    # the pauses keep the log's order (two pipes have none)
    daemon.ok("run", "--name", n, IMAGE, "sh", "-c", "echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2")
    body = attach_raw(daemon, n, "logs=1&stream=0&stdout=1&stderr=1")
    assert body == frame(1, b"out1\n") + frame(2, b"err1\n") + frame(1, b"out2\n")
    assert attach_raw(daemon, n, "logs=1&stream=0&stdout=1") == frame(1, b"out1\n") + frame(1, b"out2\n")
    assert attach_raw(daemon, n, "logs=1&stream=0&stderr=1") == frame(2, b"err1\n")
    # neither logs nor stream: nothing, at once, as docker
    assert attach_raw(daemon, n, "stream=0&stdout=1&stderr=1") == b""


def test_attach_logs_replay_tty_raw(daemon):
    n = name()
    daemon.ok("run", "-t", "--name", n, IMAGE, "sh", "-c", "echo hello; echo there")
    assert attach_raw(daemon, n, "logs=1&stream=0&stdout=1&stderr=1") == b"hello\r\nthere\r\n"


def test_attach_logs_missing_container(daemon):
    code, body = curl(daemon, "-X", "POST", "http://moat/v1.51/containers/nosuch/attach?logs=1&stdout=1")
    assert code == 404, body


@pytest.fixture
def client(daemon):
    docker_py = pytest.importorskip("docker")
    c = docker_py.DockerClient(base_url="unix://" + daemon.sock, version="auto", timeout=60)
    try:
        yield c
    finally:
        c.close()


GATED = "echo first; echo err >&2; while [ ! -e /go ]; do sleep 0.05; done; echo second"


def test_docker_py_attach_logs_no_stream(client, daemon):
    """attach(logs=True, stream=False) sends logs=1&stream=0: what is logged,
    at once, whether the container runs or not."""
    c = client.containers.run(IMAGE, ["sh", "-c", GATED], detach=True, name=name())
    wait_for(lambda: b"first" in c.logs() and b"err" in c.logs(), 30)
    assert c.attach(stdout=True, stderr=False, logs=True, stream=False) == b"first\n"
    assert c.attach(stdout=False, stderr=True, logs=True, stream=False) == b"err\n"
    c.exec_run(["touch", "/go"])
    assert c.wait(timeout=30)["StatusCode"] == 0
    assert c.attach(stdout=True, stderr=False, logs=True, stream=False) == b"first\nsecond\n"


def test_docker_py_attach_logs_then_live(client, daemon):
    """logs=1&stream=1: the log, then the live output until the exit."""
    c = client.containers.run(IMAGE, ["sh", "-c", GATED], detach=True, name=name())
    wait_for(lambda: b"first" in c.logs(), 30)
    stream = c.attach(stdout=True, stderr=False, logs=True, stream=True)
    got = b""
    for chunk in stream:
        got += chunk
        if got.endswith(b"first\n"):
            break
    c.exec_run(["touch", "/go"])
    for chunk in stream:
        got += chunk
    assert got == b"first\nsecond\n"


def test_docker_py_attach_logs_stream_busy_writer(client, daemon):
    """A container writing while the attach connects: replay and live stream
    join without a gap or a repeat."""
    script = ("i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done; "
              "while [ ! -e /go ]; do sleep 0.05; done; echo done")
    c = client.containers.run(IMAGE, ["sh", "-c", script], detach=True, name=name())
    stream = c.attach(stdout=True, stderr=True, logs=True, stream=True)
    got = b""
    for chunk in stream:
        got += chunk
        if b"\n19999\n" in got:
            break
    c.exec_run(["touch", "/go"])
    for chunk in stream:
        got += chunk
    want = "".join(f"{i}\n" for i in range(20000)) + "done\n"
    assert got.decode() == want


def test_docker_py_attach_logs_before_start(client, daemon):
    """A stopped container: its log at once, then (start waits for the
    attach) the new run's output whole, and the end of the stream at its exit."""
    c = client.containers.create(IMAGE, ["sh", "-c", "echo hello; echo world"], name=name())
    c.start()
    assert c.wait(timeout=30)["StatusCode"] == 0
    stream = client.api.attach(c.id, stdout=True, stderr=True, logs=True, stream=True)
    got = b""
    for chunk in stream:
        got += chunk
        if got == b"hello\nworld\n":
            break
    c.start()
    for chunk in stream:
        got += chunk
    assert got == b"hello\nworld\n" * 2


# ---- moat stats (streaming) -----------------------------------------------------------


class StatsReader:
    """`moat stats ARGS` in the background; tables() splits what it printed
    so far at each header line."""

    def __init__(self, d, *args, stdout=None):
        import queue
        self.proc = subprocess.Popen([moat_path(), "-H", "unix://" + d.sock, "stats", *args],
                                     stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self.seen = []
        if stdout is None:
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode())

    def tables(self):
        import queue
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                break
        out = []
        for line in self.seen:
            if line.startswith("CONTAINER"):
                out.append([])
            elif out:
                out[-1].append(line)
        return out[:-1]      # the last one may still be coming

    def names_in_last(self):
        t = self.tables()
        return {line.split()[1] for line in t[-1]} if t else None

    def stop(self):
        self.proc.kill()
        out = self.proc.communicate(timeout=30)
        return out


def test_stats_stream_follows_containers(daemon):
    a, b, c = name("sa"), name("sb"), name("sc")
    daemon.run_d("--name", a, IMAGE, "sleep", "300")
    daemon.run_d("--name", b, IMAGE, "sleep", "300")
    s = StatsReader(daemon)
    try:
        assert wait_for(lambda: (s.names_in_last() or set()) >= {a, b}, 30), s.seen
        # a new container joins, a stopped one leaves (no -a)
        daemon.run_d("--name", c, IMAGE, "sleep", "300")
        assert wait_for(lambda: (s.names_in_last() or set()) >= {a, b, c}, 30), s.seen
        daemon.ok("kill", b)
        assert wait_for(lambda: (n := s.names_in_last()) is not None and b not in n and {a, c} <= n, 30), s.seen
        # every table has the full row shape; a pipe gets no terminal codes
        for t in s.tables():
            for line in t:
                assert re.fullmatch(r"[0-9a-f]{12}\s+\S+\s+[\d.]+%\s+\S+ / \S+\s+[\d.]+%\s+\S+ / \S+\s+"
                                    r"\S+ / \S+\s+\d+\n", line), line
        assert not any("\033" in line for line in s.seen)
    finally:
        s.stop()


def test_stats_stream_named_and_missing(daemon):
    a = name("sa")
    daemon.run_d("--name", a, IMAGE, "sleep", "300")
    s = StatsReader(daemon, a, "--format", "table {{.Container}}\t{{.Name}}\t{{.PIDs}}")
    try:
        assert wait_for(lambda: any(t and t[0].split()[:3] == [a, a, "1"] for t in s.tables()), 30), s.seen
        # a named container that stops stays, with zeros
        daemon.ok("kill", a)
        assert wait_for(lambda: s.tables() and s.tables()[-1] and s.tables()[-1][0].split() == [a, a, "0"], 30), \
            s.seen
    finally:
        s.stop()
    p = subprocess.run([moat_path(), "-H", "unix://" + daemon.sock, "stats", "nosuch-" + a], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 1
    assert "No such container" in p.stderr, p.stderr


def test_stats_stream_redraws_on_a_terminal(daemon):
    import pty
    a = name("sa")
    daemon.run_d("--name", a, IMAGE, "sleep", "300")
    master, slave = pty.openpty()
    s = StatsReader(daemon, a, stdout=slave)
    os.close(slave)
    got = b""
    try:
        def two_tables():
            nonlocal got
            import select
            while select.select([master], [], [], 0)[0]:
                got += os.read(master, 65536)
            return got.count(b"\033[2J\033[H") >= 2
        assert wait_for(two_tables, 30), got
        assert re.search(rb"\033\[2J\033\[HCONTAINER ID +NAME +CPU %.*\r\n[0-9a-f]{12} +" + a.encode(), got), got
    finally:
        s.stop()
        os.close(master)


def test_stats_stream_outlives_the_stop_and_ends_at_removal(daemon):
    """GET /containers/{id}/stats?stream=1 goes on after its container
    stopped with dockerd's empty samples (name and id, the zero time), as
    dockerd 20.10 does, and ends when the container is removed (docker-py's
    iterator returns)."""
    import docker
    client = docker.DockerClient(base_url="unix://" + daemon.sock, version="1.41", timeout=60)
    try:
        cid = daemon.run_d(IMAGE, "sh", "-c", "sleep 2")
        samples = []
        done = threading.Event()

        def read():
            for s in client.api.stats(cid, stream=True, decode=True):
                samples.append(s)
            done.set()
        t = threading.Thread(target=read, daemon=True)
        t.start()
        assert wait_for(lambda: daemon.inspect(cid)["State"]["Status"] == "exited", 30)
        n = len(samples)
        assert wait_for(lambda: len(samples) >= n + 2, 10), "no samples after the stop"
        assert not done.is_set(), "the stream ended at the stop"
        assert samples[0]["read"] != "0001-01-01T00:00:00Z"
        last = samples[-1]
        assert last["read"] == "0001-01-01T00:00:00Z" and last["id"] == cid, last
        daemon.ok("rm", cid)
        assert done.wait(30), "the stream did not end at the removal"
    finally:
        client.close()
