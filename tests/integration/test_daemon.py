"""`moat daemon`: the Docker Engine API's system routes driven by curl, the
real docker CLI and python3-docker, and the daemon process itself (socket
mode and group, pid file, config file rules, SIGTERM clean-up).

Every daemon runs on a temp socket with temp data/exec roots, pid file and
config file, with a temp group made for the test (-G) and removed after;
it is stopped by pid and the test checks that socket and pid file are gone.
"""

import grp
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

import harness

DOCKER = shutil.which("docker")
CURL = shutil.which("curl")
TIMEOUT = 30


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


class Daemon:
    def __init__(self, tmp, group, extra=(), config=None):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "moat.sock")
        self.pidfile = os.path.join(tmp, "moat.pid")
        self.data = os.path.join(tmp, "data")
        self.exec_root = os.path.join(tmp, "exec")
        self.config = os.path.join(tmp, "daemon.json")
        with open(self.config, "w") as f:
            json.dump(config or {}, f)
        self.group = group
        self.log = open(os.path.join(tmp, "daemon.log"), "w+")
        self.args = [moat_path(), "daemon", "-H", "unix://" + self.sock, "--data-root", self.data,
                     "--exec-root", self.exec_root, "-p", self.pidfile, "-G", group,
                     "--config-file", self.config, *extra]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.logtext()}")
            if os.path.exists(self.sock):
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.sock)
                    s.close()
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError("daemon did not start: " + self.logtext())

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode if self.proc else None


@pytest.fixture
def group():
    name = "moatt" + os.urandom(3).hex()
    yield name
    # The daemon creates it with groupadd -r; remove it whoever made it.
    try:
        grp.getgrnam(name)
        subprocess.run(["groupdel", name], check=True, timeout=TIMEOUT)
    except KeyError:
        pass


@pytest.fixture
def tmp():
    if os.geteuid() != 0:
        pytest.skip("the daemon tests need root")
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    d = tempfile.mkdtemp(prefix="moat-daemon-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon(tmp, group):
    d = Daemon(tmp, group).start()
    try:
        yield d
    finally:
        rc = d.stop()
        assert rc == 0, d.logtext()
        assert not os.path.exists(d.sock), "socket left behind"
        assert not os.path.exists(d.pidfile), "pid file left behind"


def curl(d, *args):
    p = subprocess.run([CURL, "-sS", "--unix-socket", d.sock, *args], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stdout


def http(d, method, path, body=None, headers=()):
    """(status, headers dict lower-cased, body) over a raw socket."""
    if not CURL:
        pytest.skip("curl is not installed")
    args = ["-i", "-X", method, f"http://moat{path}"]
    if method == "HEAD":
        args = ["-I", f"http://moat{path}"]
    for h in headers:
        args += ["-H", h]
    if body is not None:
        args += ["--data-binary", "@-"]
    p = subprocess.run([CURL, "-sS", "--unix-socket", d.sock, *args], input=body, capture_output=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    raw = p.stdout
    head, _, rest = raw.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, rest = rest.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, rest


def docker(d, *args):
    if not DOCKER:
        pytest.skip("the docker CLI is not installed")
    env = dict(os.environ, DOCKER_HOST="unix://" + d.sock)
    env.pop("DOCKER_API_VERSION", None)
    env.pop("DOCKER_CONTEXT", None)
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, env=env, timeout=TIMEOUT)


# ---- HTTP ----------------------------------------------------------------

def test_ping_head_and_get(daemon):
    for method in ("HEAD", "GET"):
        status, h, body = http(daemon, method, "/_ping")
        assert status == 200
        assert h["api-version"] == "1.51"
        assert h["ostype"] == "linux"
        assert h["docker-experimental"] == "false"
        assert h["server"].startswith("Moat/") and h["server"].endswith("(linux)")
        assert h["cache-control"] == "no-cache, no-store, must-revalidate"
        assert h["pragma"] == "no-cache"
        assert h["content-type"] == "text/plain; charset=utf-8"
        assert h["swarm"] == "inactive"
        assert body == (b"OK" if method == "GET" else b"")


def test_version_prefixes(daemon):
    status, h, body = http(daemon, "GET", "/v1.24/_ping")
    assert status == 200 and body == b"OK"
    status, h, body = http(daemon, "GET", "/v1.51/version")
    assert status == 200 and h["content-type"] == "application/json"
    v = json.loads(body)
    assert v["ApiVersion"] == "1.51" and v["MinAPIVersion"] == "1.24"
    assert v["Os"] == "linux" and v["Arch"] == "amd64"
    assert v["KernelVersion"] == os.uname().release
    assert v["Components"][0]["Name"] == "Engine"
    status, h, body = http(daemon, "GET", "/v1.99/version")
    assert status == 400
    assert json.loads(body) == {
        "message": "client version 1.99 is too new. Maximum supported API version is 1.51"}
    assert h["api-version"] == "1.51"
    status, _, body = http(daemon, "GET", "/v1.12/version")
    assert status == 400 and "too old" in json.loads(body)["message"]


def test_errors(daemon):
    status, h, body = http(daemon, "GET", "/no/such/thing")
    assert status == 404
    assert h["content-type"] == "application/json"
    assert json.loads(body) == {"message": "page not found"}
    status, _, body = http(daemon, "POST", "/v1.51/_ping", body=b"{")
    assert status == 405 and "not allowed" in json.loads(body)["message"]


def test_header_bound(daemon):
    """Request line + headers are bounded (docs/api.md: 32 KiB per
    connection): 16 KiB of headers pass, 40 KiB get 431 and nothing else
    changes."""
    big = "X-Registry-Auth: " + "a" * (16 * 1024)
    assert http(daemon, "GET", "/_ping", headers=[big])[0] == 200
    huge = "X-Registry-Auth: " + "a" * (40 * 1024)
    assert http(daemon, "GET", "/_ping", headers=[huge])[0] == 431
    assert http(daemon, "GET", "/_ping")[0] == 200


def test_info_is_this_host(daemon):
    status, _, body = http(daemon, "GET", "/info")
    assert status == 200
    info = json.loads(body)
    assert info["KernelVersion"] == os.uname().release
    assert info["Architecture"] == os.uname().machine
    assert info["NCPU"] == os.cpu_count()
    assert info["Name"] == socket.gethostname()
    assert info["DockerRootDir"] == daemon.data
    with open(os.path.join(daemon.data, "engine-id")) as f:
        assert info["ID"] == f.read().strip()
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    assert info["CgroupVersion"] == ("2" if v2 else "1")
    if not v2:
        assert info["MemoryLimit"] == os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert info["SwapLimit"] == os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    with open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
    assert info["MemTotal"] == kb * 1024
    assert info["IPv4Forwarding"] is False
    assert info["LiveRestoreEnabled"] is True
    assert info["Swarm"]["LocalNodeState"] == "inactive"


# ---- the docker CLI and docker-py ----------------------------------------

def test_docker_version(daemon):
    p = docker(daemon, "version")
    assert p.returncode == 0, p.stderr
    assert "Server: moat" in p.stdout
    assert "API version:      1.51 (minimum version 1.24)" in p.stdout
    server = p.stdout.split("Server:", 1)[1]
    assert "Version:          0." in server
    p = docker(daemon, "version", "--format", "{{.Server.APIVersion}}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1.51"


def test_docker_info(daemon):
    p = docker(daemon, "info")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ERROR" not in p.stdout + p.stderr
    assert "<nil>" not in p.stdout
    for line in p.stderr.splitlines():
        assert "parse" not in line, line
    assert "Cgroup Version:" in p.stdout
    assert "  seccomp\n   Profile: default" in p.stdout
    assert f" Docker Root Dir: {daemon.data}\n" in p.stdout
    assert " Live Restore Enabled: true" in p.stdout


def test_docker_py(daemon):
    docker_py = pytest.importorskip("docker")
    c = docker_py.DockerClient(base_url="unix://" + daemon.sock, version="auto")
    try:
        assert c.version()["ApiVersion"] == "1.51"
        assert c.api.api_version == "1.51"
        info = c.info()
        assert info["OSType"] == "linux"
        assert c.ping() is True
    finally:
        c.close()


# ---- the daemon process --------------------------------------------------

def test_socket_and_pidfile(daemon):
    st = os.stat(daemon.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == 0
    assert st.st_gid == grp.getgrnam(daemon.group).gr_gid
    with open(daemon.pidfile) as f:
        assert int(f.read().strip()) == daemon.proc.pid
    for d in (daemon.data, daemon.exec_root):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    with open(f"/proc/{daemon.proc.pid}/status") as f:
        assert "\nSigBlk:" in f.read()


def test_second_daemon_refused(daemon):
    second = Daemon(daemon.tmp, daemon.group)
    second.sock = os.path.join(daemon.tmp, "other.sock")
    second.args[second.args.index("-H") + 1] = "unix://" + second.sock
    p = subprocess.run(second.args, capture_output=True, text=True, timeout=TIMEOUT)
    second.log.close()
    assert p.returncode != 0
    assert f"moat daemon is already running as pid {daemon.proc.pid}" in p.stderr
    assert not os.path.exists(second.sock)
    with open(daemon.pidfile) as f:
        assert int(f.read().strip()) == daemon.proc.pid


def test_live_socket_not_replaced(daemon, tmp):
    other = os.path.join(tmp, "other")
    os.mkdir(other)
    d2 = Daemon(other, daemon.group)
    d2.args[d2.args.index("-H") + 1] = "unix://" + daemon.sock
    p = subprocess.run(d2.args, capture_output=True, text=True, timeout=TIMEOUT)
    d2.log.close()
    assert p.returncode != 0
    assert f"another daemon is listening on {daemon.sock}" in p.stderr
    assert not os.path.exists(d2.pidfile), "a refused daemon leaves no pid file"
    status, _, _ = http(daemon, "GET", "/_ping")
    assert status == 200


def test_sigterm_cleans_up(tmp, group):
    d = Daemon(tmp, group).start()
    pid = d.proc.pid
    rc = d.stop()
    assert rc == 0, d.logtext()
    assert not os.path.exists(d.sock)
    assert not os.path.exists(d.pidfile)
    assert not os.path.exists(f"/proc/{pid}")
    lines = [json.loads(x) for x in d.logtext().splitlines()]
    assert all({"time", "level", "msg"} <= set(x) for x in lines)
    assert any("SIGTERM" in x["msg"] for x in lines)


def test_stale_socket_replaced(tmp, group):
    d = Daemon(tmp, group)
    s = socket.socket(socket.AF_UNIX)
    s.bind(d.sock)
    s.close()  # a socket file nobody listens on
    d.start()
    try:
        assert http(d, "GET", "/_ping")[0] == 200
    finally:
        assert d.stop() == 0


def run_refused(tmp, group, extra=(), config=None):
    d = Daemon(tmp, group, extra=extra, config=config)
    p = subprocess.run(d.args, capture_output=True, text=True, timeout=TIMEOUT)
    d.log.close()
    assert p.returncode != 0
    assert not os.path.exists(d.sock)
    assert not os.path.exists(d.pidfile)
    return p.stderr


def test_config_unknown_key_refused(tmp, group):
    err = run_refused(tmp, group, config={"debug": True, "bogus-key": 1, "other": "x"})
    assert "the following directives don't match any configuration option: bogus-key, other" in err


def test_config_and_flag_conflict_refused(tmp, group):
    err = run_refused(tmp, group, config={"data-root": "/tmp/elsewhere"})
    assert "specified both as a flag and in the configuration file" in err
    assert "data-root" in err


def test_live_restore_false_refused(tmp, group):
    err = run_refused(tmp, group, config={"live-restore": False})
    assert "live-restore" in err


def test_tcp_and_fd_refused(tmp, group):
    """TCP needs mutual TLS; fd:// without a socket passed has nothing to listen on."""
    for host, want in (("tcp://127.0.0.1:2375",
                        "listening on TCP is not supported: it needs mutual TLS, which is not implemented yet"),
                       ("fd://", "no socket was passed (LISTEN_PID and LISTEN_FDS")):
        d = Daemon(tmp, group)
        d.args[d.args.index("-H") + 1] = host
        p = subprocess.run(d.args, capture_output=True, text=True, timeout=TIMEOUT)
        d.log.close()
        assert p.returncode != 0
        assert want in p.stderr
        assert not os.path.exists(d.pidfile)


def test_config_file_keys_apply(tmp, group):
    d = Daemon(tmp, group, config={"debug": True, "log-level": "debug", "live-restore": True,
                                   "log-driver": "json-file", "log-opts": {"max-size": "10m"}})
    d.start()
    try:
        status, _, body = http(d, "GET", "/info")
        assert json.loads(body)["Debug"] is True
        # Requests are logged at debug level with the peer's uid and pid.
        log = d.logtext()
        assert 'target=\\"/info\\" status=200' in log and "uid=0 pid=" in log
    finally:
        assert d.stop() == 0


def test_sighup_reloads_debug(tmp, group):
    d = Daemon(tmp, group).start()
    try:
        assert json.loads(http(d, "GET", "/info")[2])["Debug"] is False
        with open(d.config, "w") as f:
            json.dump({"debug": True}, f)
        os.kill(d.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while "configuration reloaded" not in d.logtext() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(http(d, "GET", "/info")[2])["Debug"] is True
    finally:
        assert d.stop() == 0
