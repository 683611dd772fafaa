"""`moat`'s container verbs as clients of `moat daemon`: docker's verbs,
flags, output and exit codes, checked against what the kernel shows.

One daemon per module on a temp socket, data root, exec root and pid file
(group root, so no group is made); the demo image (tools/demo-image.sh:
busybox-static) is imported through it once it runs. Every
test removes the containers it made (rm -f by name, also on failure); the
module stops the daemon by pid and checks that socket and pid file are
gone and no container mount is left.
"""

import json
import tarfile
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

import harness

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "managers"))
from managers import Tmux  # noqa: E402  (a shared driver for tmux sessions)

TIMEOUT = 60
IMAGE = "demo:latest"


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


class Daemon:
    def __init__(self, tmp):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "moat.sock")
        self.host = "unix://" + self.sock
        self.pidfile = os.path.join(tmp, "moat.pid")
        self.data = os.path.join(tmp, "data")
        config = os.path.join(tmp, "daemon.json")
        with open(config, "w") as f:
            f.write("{}")
        self.log = open(os.path.join(tmp, "daemon.log"), "w+")
        self.args = [moat_path(), "daemon", "-H", self.host, "--data-root", self.data,
                     "--exec-root", os.path.join(tmp, "exec"), "-p", self.pidfile, "-G", "root",
                     "--config-file", config]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.logtext()}")
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("daemon did not start: " + self.logtext())

    def logtext(self):
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


@pytest.fixture(scope="module")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("the daemon tests need root")
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    harness.become_subreaper()
    tmp = tempfile.mkdtemp(prefix="moat-cli-", dir="/tmp")
    d = None
    try:
        d = Daemon(tmp).start()
        p = subprocess.run(["bash", os.path.join(harness.REPO, "tools", "demo-image.sh"), d.host, IMAGE],
                           env=dict(os.environ, MOAT=moat_path()), capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", p.stdout), p.stdout
        yield d
    finally:
        if d:
            ids = subprocess.run([moat_path(), "-H", d.host, "ps", "-aq"], capture_output=True,
                                 text=True, timeout=TIMEOUT).stdout.split()
            if ids:
                subprocess.run([moat_path(), "-H", d.host, "rm", "-f", *ids], capture_output=True,
                               timeout=TIMEOUT)
            rc = d.stop()
            assert rc == 0, d.logtext()
            assert not os.path.exists(d.sock) and not os.path.exists(d.pidfile)
            with open("/proc/self/mountinfo") as f:
                left = [line for line in f if tmp in line]
            assert not left, left
        harness.reap_orphans()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def names(daemon):
    """Container names a test uses; removed afterwards whatever happened."""
    used = []

    def make(prefix="c"):
        n = f"{prefix}-{os.urandom(4).hex()}"
        used.append(n)
        return n
    yield make
    if used:
        subprocess.run([moat_path(), "-H", daemon.host, "rm", "-f", *used], capture_output=True,
                       timeout=TIMEOUT)


def moat(d, *args, input=None, check=None, timeout=TIMEOUT, env=None):
    p = subprocess.run([moat_path(), "-H", d.host, *args], input=input, capture_output=True,
                       text=True, timeout=timeout, env=env)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def inspect(d, name):
    return json.loads(moat(d, "inspect", name, check=0).stdout)[0]


# ---- run --------------------------------------------------------------------

def test_run_is_hardened(daemon, names):
    n = names()
    p = moat(daemon, "run", "--rm", "--name", n, IMAGE, "sh", "-c",
             'id; cat /proc/self/status | grep -E "CapEff|NoNewPrivs|Seccomp"; echo hello from moat',
             check=0)
    out = p.stdout
    assert "uid=0(root)" in out and "hello from moat" in out
    assert re.search(r"^NoNewPrivs:\s+1$", out, re.M), out
    assert re.search(r"^Seccomp:\s+2$", out, re.M), out
    capeff = int(re.search(r"^CapEff:\s+([0-9a-f]+)$", out, re.M).group(1), 16)
    assert capeff != 0
    assert capeff & (1 << 21) == 0, "CAP_SYS_ADMIN is not dropped"
    # --rm: gone once run returns (the wait was condition=removed)
    assert moat(daemon, "inspect", n).returncode == 1


def test_run_exit_codes(daemon):
    assert moat(daemon, "run", "--rm", IMAGE, "sh", "-c", "exit 3").returncode == 3
    p = moat(daemon, "run", "--rm", IMAGE, "no-such-command")
    assert p.returncode == 127, p.stderr
    assert p.stderr.startswith("moat: Error response from daemon: ")
    assert moat(daemon, "run", "--rm", IMAGE, "/etc").returncode == 126
    p = moat(daemon, "run", "--no-such-flag", IMAGE)
    assert p.returncode == 125 and "unknown flag: --no-such-flag" in p.stderr
    p = moat(daemon, "run", "--rm", "no-such-image:1", "true")
    assert p.returncode == 125 and "Error response from daemon:" in p.stderr


def test_run_streams_and_stdin_half_close(daemon):
    p = moat(daemon, "run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo to-stderr >&2; echo done",
             input="line1\nline2\n", check=0)
    assert p.stdout == "line1\nline2\ndone\n"
    assert p.stderr == "to-stderr\n"
    # without -i the container's stdin is not ours
    p = moat(daemon, "run", "--rm", IMAGE, "sh", "-c", "cat; echo eof", input="ignored\n", check=0)
    assert p.stdout == "eof\n"


def cgroup_paths(pid):
    """controller -> the process's cgroup path ("" for cgroup v2)."""
    paths = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for ctrl in ctrls.split(","):
                paths[ctrl] = path
    return paths


def test_run_flags_reach_the_container(daemon, names):
    n = names()
    moat(daemon, "run", "-d", "--name", n, "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5",
         "--read-only", "--cap-drop", "ALL", "-u", "65534", "-e", "FOO=bar", "--hostname", "h1",
         "-w", "/tmp", "--tmpfs", "/tmp", "-l", "k=v", IMAGE, "sleep", "60", check=0)
    c = inspect(daemon, n)
    assert c["State"]["Running"] and c["Config"]["Labels"]["k"] == "v"
    pid = c["State"]["Pid"]
    # the limits, from the host's side of the cgroups
    paths = cgroup_paths(pid)
    if "memory" in paths:
        with open(f"/sys/fs/cgroup/memory{paths['memory']}/memory.limit_in_bytes") as f:
            assert int(f.read()) == 64 * 1024 * 1024
        with open(f"/sys/fs/cgroup/pids{paths['pids']}/pids.max") as f:
            assert f.read().strip() == "50"
    else:
        with open(f"/sys/fs/cgroup/unified{paths['']}/memory.max") as f:
            assert int(f.read()) == 64 * 1024 * 1024
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    assert re.search(r"^CapEff:\s+0+$", status, re.M)
    assert re.search(r"^Uid:\s+65534\s", status, re.M)
    p = moat(daemon, "exec", n, "sh", "-c", "hostname; pwd; echo $FOO; touch /x 2>&1 || echo ro", check=0)
    assert p.stdout.split("\n")[:3] == ["h1", "/tmp", "bar"]
    assert "ro" in p.stdout.split("\n")[3:]


def test_run_resource_flags(daemon, names):
    """docker's cpuset, CFS, OOM and domain name flags, as the kernel sees them."""
    n = names()
    moat(daemon, "run", "-d", "--name", n, "--cpuset-cpus", "0", "--cpuset-mems", "0", "--cpu-period", "100000",
         "--cpu-quota", "50000", "--oom-score-adj", "500", "-m", "64m", "--oom-kill-disable",
         "--domainname", "example.org", IMAGE, "sleep", "60", check=0)
    c = inspect(daemon, n)
    hc = c["HostConfig"]
    assert (hc["CpusetCpus"], hc["CpusetMems"], hc["CpuPeriod"], hc["CpuQuota"], hc["OomScoreAdj"],
            hc["OomKillDisable"]) == ("0", "0", 100000, 50000, 500, True), hc
    pid = c["State"]["Pid"]
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read().strip() == "500"
    with open(f"/proc/{pid}/status") as f:
        assert re.search(r"^Cpus_allowed_list:\s+0$", f.read(), re.M)
    paths = cgroup_paths(pid)
    if "cpu" in paths:
        with open(f"/sys/fs/cgroup/cpu{paths['cpu']}/cpu.cfs_quota_us") as f:
            assert f.read().strip() == "50000"
        with open(f"/sys/fs/cgroup/memory{paths['memory']}/memory.oom_control") as f:
            assert "oom_kill_disable 1" in f.read()
    else:
        with open(f"/sys/fs/cgroup/unified{paths['']}/cpu.max") as f:
            assert f.read().split() == ["50000", "100000"]
    p = moat(daemon, "exec", n, "cat", "/proc/sys/kernel/domainname", check=0)
    assert p.stdout == "example.org\n"
    p = moat(daemon, "run", "--rm", "--cpu-quota", "x", IMAGE, "true")
    assert p.returncode == 125 and "--cpu-quota" in p.stderr, p.stderr


def test_run_namespace_and_name_flags(daemon, names):
    """--pid, --ipc and --uts with another container (podman's uts
    container:<id>), --add-host, --dns*, --memory-reservation and --cgroupns
    host, as the kernel and the container's files show them."""
    donor, n = names(), names()
    moat(daemon, "run", "-d", "--name", donor, "--hostname", "donor-host", "--ipc", "shareable", IMAGE, "sh", "-c",
         "echo shared > /dev/shm/x; sleep 100", check=0)
    dpid = inspect(daemon, donor)["State"]["Pid"]
    moat(daemon, "run", "-d", "--name", n, "--pid", f"container:{donor}", "--ipc", f"container:{donor}",
         "--uts", f"container:{donor}", "--add-host", "db:10.1.2.3", "--dns", "9.9.9.9", "--dns-search", "example.org",
         "--dns-option", "ndots:3", "--memory-reservation", "32m", "--cgroupns", "host", IMAGE, "sleep", "100",
         check=0)
    c = inspect(daemon, n)
    pid = c["State"]["Pid"]
    for ns in ("pid", "ipc", "uts"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/{dpid}/ns/{ns}"), ns
    assert os.readlink(f"/proc/{pid}/ns/cgroup") == os.readlink("/proc/self/ns/cgroup")
    p = moat(daemon, "exec", n, "sh", "-c", "hostname; cat /dev/shm/x; grep db /etc/hosts; cat /etc/resolv.conf",
             check=0)
    lines = p.stdout.splitlines()
    assert lines[0] == "donor-host" and lines[1] == "shared" and lines[2].split() == ["10.1.2.3", "db"], p.stdout
    assert "nameserver 9.9.9.9" in lines and "search example.org" in lines and "options ndots:3" in lines, p.stdout
    assert c["HostConfig"]["MemoryReservation"] == 32 << 20
    paths = cgroup_paths(pid)
    if "memory" in paths:
        with open(f"/sys/fs/cgroup/memory{paths['memory']}/memory.soft_limit_in_bytes") as f:
            assert int(f.read()) == 32 << 20
    # the donor's name is not taken as the container's own: a restart asks again
    assert c["Config"]["Hostname"] == ""
    moat(daemon, "restart", "-t", "0", n, check=0)
    assert moat(daemon, "exec", n, "hostname", check=0).stdout == "donor-host\n"
    p = moat(daemon, "run", "--rm", "--uts", f"container:{donor}", "--hostname", "x", IMAGE, "true")
    assert p.returncode == 125 and "hostname and the UTS mode" in p.stderr, p.stderr
    p = moat(daemon, "run", "--rm", "--add-host", "db:not-an-ip", IMAGE, "true")
    assert p.returncode == 125 and "HostConfig.ExtraHosts[0]" in p.stderr, p.stderr
    p = moat(daemon, "run", "--rm", "--memory-swappiness", "101", IMAGE, "true")
    assert p.returncode == 125 and "--memory-swappiness" in p.stderr, p.stderr


def test_signal_proxy(daemon, names):
    n = names()
    proc = subprocess.Popen([moat_path(), "-H", daemon.host, "run", "--rm", "--name", n, IMAGE, "sh", "-c",
                             'trap "echo got-term; exit 9" TERM; echo ready; sleep 60 & wait'],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 9
        assert proc.stdout.read() == "got-term\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_tty_through_tmux(daemon, tmp_path):
    t = Tmux(str(tmp_path))
    try:
        t.start(f"{moat_path()} -H {daemon.host} run -it --rm {IMAGE} sh")
        t.wait_text(r"^/ # ")
        t.send("stty size; tty; echo $((6*7))")
        t.wait_text(r"^42$")
        assert re.search(r"^30 120$", t.screen(), re.M), t.screen()
        assert re.search(r"^/dev/pts/\d+$", t.screen(), re.M)
        t._cmd("resize-window", "-t", t.name, "-x", "100", "-y", "25")
        t.send("clear; stty size")
        t.wait_text(r"^25 100$")
        t.send("exit 5")
        t.wait_text(r"^EXITED=5$", unless=None)
    finally:
        t.stop()


# ---- lifecycle verbs ----------------------------------------------------------

def test_create_start_attach_wait(daemon, names):
    n = names()
    cid = moat(daemon, "create", "--name", n, IMAGE, "sh", "-c", "echo started; exit 7", check=0).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert inspect(daemon, n)["State"]["Status"] == "created"
    p = moat(daemon, "start", "-a", n)
    assert p.returncode == 7 and p.stdout == "started\n"
    p = moat(daemon, "wait", n, check=0)
    assert p.stdout == "7\n"
    assert moat(daemon, "start", n, check=0).stdout == n + "\n"


def test_ps_stop_restart_kill_rm(daemon, names):
    n = names()
    cid = moat(daemon, "run", "-d", "--name", n, IMAGE, "sleep", "60", check=0).stdout.strip()
    p = moat(daemon, "ps", check=0)
    lines = p.stdout.splitlines()
    assert re.match(r"CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$", lines[0])
    row = [line for line in lines if line.endswith(" " + n)]
    assert row and row[0].startswith(cid[:12] + "   ")
    assert '"sleep 60"' in row[0] and re.search(r"\bUp ", row[0])
    assert cid[:12] in moat(daemon, "ps", "-q", check=0).stdout.split()
    assert moat(daemon, "ps", "--no-trunc", "-q", "--filter", f"name={n}", check=0).stdout == cid + "\n"
    assert moat(daemon, "ps", "--format", "{{.Names}}:{{.State}}", "--filter", f"name={n}",
                check=0).stdout == f"{n}:running\n"
    j = json.loads(moat(daemon, "ps", "--format", "json", "--filter", f"name={n}", check=0).stdout)
    assert j["ID"] == cid[:12] and j["Command"] == '"sleep 60"' and j["Names"] == n
    assert moat(daemon, "ps", "-l", "-q", check=0).stdout.strip() != ""

    assert moat(daemon, "stop", "-t", "1", n, check=0).stdout == n + "\n"
    c = inspect(daemon, n)
    assert not c["State"]["Running"] and c["State"]["ExitCode"] in (137, 143)
    assert cid[:12] not in moat(daemon, "ps", "-q", check=0).stdout.split()
    assert "Exited (" in moat(daemon, "ps", "-a", "--filter", f"name={n}", check=0).stdout

    assert moat(daemon, "restart", "-t", "1", n, check=0).stdout == n + "\n"
    pid = inspect(daemon, n)["State"]["Pid"]
    assert pid > 0 and harness.pid_alive(pid)
    assert moat(daemon, "kill", "-s", "KILL", n, check=0).stdout == n + "\n"
    assert harness.wait_for(lambda: not inspect(daemon, n)["State"]["Running"], 20)
    assert inspect(daemon, n)["State"]["ExitCode"] == 137

    assert moat(daemon, "rm", n, check=0).stdout == n + "\n"
    p = moat(daemon, "inspect", n)
    assert p.returncode == 1 and p.stdout == "[]\n" and p.stderr == f"Error: No such object: {n}\n"


def test_rm_running_needs_force(daemon, names):
    n = names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sleep", "60", check=0)
    p = moat(daemon, "rm", n)
    assert p.returncode == 1 and p.stderr.startswith("Error response from daemon: ")
    assert moat(daemon, "rm", "-f", n, check=0).stdout == n + "\n"


def test_pause_unpause_rename(daemon, names):
    n, n2 = names(), names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sleep", "60", check=0)
    pid = inspect(daemon, n)["State"]["Pid"]
    moat(daemon, "pause", n, check=0)
    with open(f"/proc/{pid}/status") as f:
        assert re.search(r"^State:\s+[DST]", f.read(), re.M)  # frozen
    assert "(Paused)" in moat(daemon, "ps", "--filter", f"name={n}", check=0).stdout
    moat(daemon, "unpause", n, check=0)
    assert inspect(daemon, n)["State"]["Paused"] is False
    moat(daemon, "rename", n, n2, check=0)
    assert inspect(daemon, n2)["Name"] == "/" + n2


def test_several_names_report_each_error(daemon, names):
    n = names()
    moat(daemon, "create", "--name", n, IMAGE, "true", check=0)
    p = moat(daemon, "rm", "no-such-container", n)
    assert p.returncode == 1
    assert p.stdout == n + "\n"
    assert p.stderr == "Error response from daemon: No such container: no-such-container\n"


# ---- exec, logs ----------------------------------------------------------------

def test_exec(daemon, names):
    n = names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sleep", "60", check=0)
    p = moat(daemon, "exec", n, "sh", "-c", "echo out; echo err >&2; exit 4")
    assert (p.returncode, p.stdout, p.stderr) == (4, "out\n", "err\n")
    p = moat(daemon, "exec", "-i", "-e", "A=1", "-u", "65534", "-w", "/tmp", n, "sh", "-c",
             'cat; echo "$A $(id -u) $(pwd)"', input="piped\n", check=0)
    assert p.stdout == "piped\n1 65534 /tmp\n"
    assert moat(daemon, "exec", n, "no-such-command").returncode == 127
    moat(daemon, "exec", "-d", n, "sh", "-c", "echo detached > /tmp/mark", check=0)
    assert harness.wait_for(lambda: moat(daemon, "exec", n, "cat", "/tmp/mark").stdout == "detached\n", 20)
    p = moat(daemon, "exec", "no-such-container", "true")
    assert p.returncode == 1 and "No such container: no-such-container" in p.stderr


def test_logs(daemon, names):
    n = names()
    moat(daemon, "run", "--name", n, IMAGE, "sh", "-c",
         "for i in 1 2 3; do echo out$i; echo err$i >&2; done", check=0)
    p = moat(daemon, "logs", n, check=0)
    assert p.stdout == "out1\nout2\nout3\n" and p.stderr == "err1\nerr2\nerr3\n"
    p = moat(daemon, "logs", "--tail", "2", n, check=0)
    assert len((p.stdout + p.stderr).splitlines()) == 2
    p = moat(daemon, "logs", "-t", n, check=0)
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out\d$", line) for line in p.stdout.splitlines())
    p = moat(daemon, "logs", "--since", "2000-01-01T00:00:00Z", "--until", "4102444800", n, check=0)
    assert p.stdout == "out1\nout2\nout3\n"
    p = moat(daemon, "logs", "--since", "4102444800", n, check=0)
    assert p.stdout == "" and p.stderr == ""


def test_logs_follow(daemon, names):
    n = names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sh", "-c",
         "echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second", check=0)
    proc = subprocess.Popen([moat_path(), "-H", daemon.host, "logs", "-f", n], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "first\n"
        moat(daemon, "exec", n, "touch", "/tmp/go", check=0)
        assert proc.stdout.readline() == "second\n"
        assert proc.wait(timeout=TIMEOUT) == 0  # the container exited: the stream ended
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- inspect, stats, top, update, system ------------------------------------------

def test_inspect_format_and_fallthrough(daemon, names):
    n = names()
    cid = moat(daemon, "create", "--name", n, IMAGE, "true", check=0).stdout.strip()
    p = moat(daemon, "inspect", "-f", "{{.Id}} {{.State.Status}} {{json .Config.Cmd}}", n, check=0)
    assert p.stdout == f"{cid} created [\"true\"]\n"
    p = moat(daemon, "inspect", IMAGE)
    if p.returncode == 1 and "No such object" in p.stderr:
        pytest.skip("the daemon has no image routes yet")
    doc = json.loads(p.stdout)[0]
    assert doc["Id"].startswith("sha256:") and IMAGE in doc["RepoTags"]


def test_stats_no_stream(daemon, names):
    n = names()
    cid = moat(daemon, "run", "-d", "--name", n, "--memory", "64m", IMAGE, "sleep", "60", check=0).stdout.strip()
    p = moat(daemon, "stats", "--no-stream", n, check=0)
    lines = p.stdout.splitlines()
    assert re.match(r"CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS$", lines[0])
    cells = re.split(r"\s{2,}", lines[1])
    assert cells[0] == cid[:12] and cells[1] == n
    assert re.fullmatch(r"\d+\.\d\d%", cells[2])
    assert re.fullmatch(r"[\d.]+[KMG]?i?B / 64MiB", cells[3]), cells
    assert cells[-1] == "1"
    p = moat(daemon, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", n, check=0)
    assert p.stdout == f"{n} 1\n"


def test_top(daemon, names):
    n = names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sleep", "61", check=0)
    p = moat(daemon, "top", n)
    assert p.returncode == 0, p.stderr
    assert re.match(r"UID\s+PID\s+", p.stdout) and "sleep 61" in p.stdout


def test_export(daemon, names, tmp_path):
    n = names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sh", "-c", "echo exported > /tmp/marker; sleep 60", check=0)
    out = tmp_path / "fs.tar"
    deadline = time.time() + 10
    while True:
        p = moat(daemon, "export", "-o", str(out), n)
        assert p.returncode == 0, p.stderr
        with tarfile.open(out) as t:
            names_in = t.getnames()
            if "tmp/marker" in names_in:
                assert t.extractfile("tmp/marker").read() == b"exported\n"
                break
        assert time.time() < deadline, "the marker never appeared in the export"
        time.sleep(0.2)
    assert "bin/busybox" in names_in
    assert [f for f in os.listdir(tmp_path) if "moat-tmp" in f] == []
    p = moat(daemon, "export", "-o", str(tmp_path / "none.tar"), "no-such-container")
    assert p.returncode == 1 and "No such container: no-such-container" in p.stderr
    assert not (tmp_path / "none.tar").exists() and os.listdir(tmp_path) == ["fs.tar"]


def test_update(daemon, names):
    n = names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sleep", "60", check=0)
    p = moat(daemon, "update", "--pids-limit", "40", n)
    assert p.returncode == 0 and p.stdout == n + "\n", p.stderr
    assert inspect(daemon, n)["HostConfig"]["PidsLimit"] == 40


def test_version_info(daemon):
    p = moat(daemon, "version", check=0)
    assert p.stdout.startswith("Client:\n Version:")
    assert "\nServer: moat\n Engine:\n" in p.stdout
    assert re.search(r"API version:\s+1\.51 \(minimum version 1\.24\)", p.stdout)
    assert moat(daemon, "version", "--format", "{{.Server.ApiVersion}}", check=0).stdout == "1.51\n"
    p = moat(daemon, "info", check=0)
    assert re.search(r"^ Server Version: \S+$", p.stdout, re.M)
    assert re.search(r"^ Docker Root Dir: " + re.escape(daemon.data) + "$", p.stdout, re.M)
    assert re.search(r"^  seccomp$", p.stdout, re.M)
    assert moat(daemon, "system", "info", "--format", "{{.DockerRootDir}}", check=0).stdout == daemon.data + "\n"


def test_events(daemon, names):
    n = names()
    since = str(int(time.time()) - 1)
    cid = moat(daemon, "create", "--name", n, IMAGE, "true", check=0).stdout.strip()
    moat(daemon, "rm", n, check=0)
    p = moat(daemon, "events", "--since", since, "--until", "0s", "--filter", f"container={cid}", check=0)
    assert re.search(r"^\S+ container create " + cid + r" \(.*name=" + n, p.stdout, re.M), p.stdout
    assert re.search(r"^\S+ container destroy " + cid, p.stdout, re.M)
    p = moat(daemon, "system", "events", "--since", since, "--until", "0s", "--filter", f"container={cid}",
             "--format", "{{.Action}}", check=0)
    assert p.stdout.split() == ["create", "destroy"]


def test_cannot_connect(tmp_path):
    host = f"unix://{tmp_path}/none.sock"
    p = subprocess.run([moat_path(), "-H", host, "ps"], capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 1
    assert p.stderr == f"Cannot connect to the moat daemon at {host}. Is the moat daemon running?\n"
    p = subprocess.run([moat_path(), "run", "busybox"], capture_output=True, text=True, timeout=TIMEOUT,
                       env=dict(os.environ, MOAT_HOST=host))
    assert p.returncode == 125 and "Cannot connect to the moat daemon" in p.stderr


# ---- --help -------------------------------------------------------------------------

HELP_VERBS = ["run", "create", "start", "stop", "restart", "kill", "rm", "ps", "logs", "exec", "attach",
              "inspect", "top", "stats", "pause", "unpause", "update", "rename", "wait", "cp", "export",
              "images", "load", "save", "import", "tag", "rmi", "history", "version", "info", "events",
              "system df", "system prune", "system info", "system events", "volume create", "volume ls",
              "volume inspect", "volume rm", "volume prune", "image ls", "image inspect", "image prune",
              "container ls"]


def long_flags(text):
    return set(re.findall(r"^\s+(?:-\w, )?--([a-z][a-z-]*)", text, re.M))


# moat's own options, beyond docker's: save --format oci writes the OCI layout
# alone (docker 25+ writes it with docker's manifest.json, moat's default).
MOAT_EXTENSIONS = {"save": {"format"}, "image save": {"format"}}


@pytest.mark.parametrize("verb", HELP_VERBS)
def test_help(verb, tmp_path):
    """--help and -h print the usage, the summary and the verb's options on stdout
    and exit 0, without a daemon; every option listed is one docker's verb has."""
    host = f"unix://{tmp_path}/none.sock"
    for flag in ("--help", "-h"):
        if flag == "-h" and verb in ("run", "create"):
            continue   # -h is --hostname there, as in docker
        p = subprocess.run([moat_path(), "-H", host, *verb.split(), flag], capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert p.returncode == 0, (flag, p.stderr)
        assert p.stderr == ""
        shown = {"image ls": "images", "container ls": "ps"}.get(verb, verb)
        assert p.stdout.startswith(f"Usage:  moat {shown}"), p.stdout
        flags = long_flags(p.stdout)
        if shutil.which("docker"):
            d = subprocess.run(["docker", *verb.split(), "--help"], capture_output=True, text=True,
                               timeout=TIMEOUT)
            extensions = MOAT_EXTENSIONS.get(verb, set())
            assert flags - extensions <= long_flags(d.stdout), flags - extensions - long_flags(d.stdout)


def test_help_is_not_taken_from_arguments(daemon, names):
    """Options stop at the container for exec (and the image for run): a --help
    after it is the command's; -h is run's --hostname."""
    n = names()
    moat(daemon, "run", "-d", "--name", n, IMAGE, "sleep", "60", check=0)
    p = moat(daemon, "exec", n, "echo", "--help", check=0)
    assert p.stdout == "--help\n"
    p = moat(daemon, "run", "--rm", "-h", "hx", IMAGE, "hostname", check=0)
    assert p.stdout == "hx\n"
    p = moat(daemon, "ps", "--filter", "--help")   # a value, not the flag
    assert not p.stdout.startswith("Usage:")
    p = moat(daemon, "volume", check=0)
    assert "Commands:\n  create" in p.stdout
    p = moat(daemon, "volume", "frob", check=1)
    assert "unknown command: moat volume frob" in p.stderr
