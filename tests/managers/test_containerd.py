"""containerd 1.6 (ctr and containerd-shim-runc-v2) driving moat-runtime.

containerd runs with a config of the test's own (root, state, gRPC and
ttrpc sockets under the test's temp dir, the CRI plugin disabled); ctr picks
the runtime per container with `--runtime io.containerd.runc.v2
--runc-binary <moat-runtime> --runc-root <dir>`, so the shim keeps moat's
state under <dir>/<namespace>/<id>, where the tests look for it.
containerd 1.6 puts its shim sockets under /run/containerd/s whatever its
config says; that directory is removed at the end if the test made it.
"""

import os
import re
import shlex

import pytest

import harness
import managers
from managers import IMAGE, needs

NS = "moat"


class Ctr:
    def __init__(self, base):
        self.base = base
        self.sock = os.path.join(base, "containerd.sock")
        self.runc_root = os.path.join(base, "runc")
        self.fifo_dir = os.path.join(base, "fifo")
        self.logs = os.path.join(base, "logs")
        for d in (self.runc_root, self.fifo_dir, self.logs):
            os.makedirs(d, exist_ok=True)
        self.config = os.path.join(base, "config.toml")
        with open(self.config, "w") as f:
            f.write(f'''version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{self.sock}"

[ttrpc]
  address = "{self.sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
''')
        self.daemon = managers.Daemon("containerd", ["containerd", "--config", self.config],
                                      base, self.sock)

    def __call__(self, *args, check=True, timeout=managers.TIMEOUT):
        return managers.run(["ctr", "--address", self.sock, "-n", NS, *args], check=check,
                            timeout=timeout, what="ctr " + " ".join(args))

    def shell_cmd(self, *args):
        """The command line for a terminal (tmux) session."""
        return " ".join(shlex.quote(a) for a in
                        ["ctr", "--address", self.sock, "-n", NS, *args])

    def run_flags(self):
        return ["--runtime", "io.containerd.runc.v2", "--runc-binary", managers.runtime(),
                "--runc-root", self.runc_root, "--fifo-dir", self.fifo_dir]

    @property
    def state_root(self):
        return os.path.join(self.runc_root, NS)

    def tasks(self):
        """{id: (pid, status)} from `ctr task ls`."""
        out = {}
        for line in self("task", "ls").stdout.splitlines()[1:]:
            f = line.split()
            if len(f) == 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def containers(self):
        return [l.split()[0] for l in self("containers", "ls", "-q").stdout.splitlines()
                if l.strip()]

    def remove_all(self):
        for cid in self.containers():
            self("task", "kill", "-s", "KILL", cid, check=False)
            managers.wait_for(lambda: self.tasks().get(cid, (0, "STOPPED"))[1] == "STOPPED", 10)
            self("task", "delete", "-f", cid, check=False)
            self("containers", "delete", cid, check=False)


@pytest.fixture(scope="module")
def containerd_daemon(session_tmp, image_archive):
    managers.need_binary("containerd")
    managers.need_binary("ctr")
    managers.need_binary("containerd-shim-runc-v2")
    base = os.path.join(session_tmp, "containerd")
    os.makedirs(base)
    host_dirs = managers.HostDirs("/run/containerd")
    net = managers.host_net()
    ctr = Ctr(base)
    problems = []
    try:
        ctr.daemon.start(lambda: ctr("version", check=False).returncode == 0)
        ctr("images", "import", image_archive, timeout=180)
        yield ctr
    finally:
        try:
            ctr.remove_all()
        except Exception as e:  # keep stopping
            problems.append(f"removing containers failed: {e!r}")
        problems += ctr.daemon.stop()
        ms = managers.mounts_under(base)
        if ms:
            problems.append(f"mounts left under containerd's dirs: {ms}")
            managers.umount_all_under(base)
        host_dirs.cleanup()
        managers.assert_host_net(net, "while containerd ran")
        if problems:
            pytest.fail("containerd left behind:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def ctr(containerd_daemon):
    net = managers.host_net()
    tmux = managers.Tmux(containerd_daemon.base)
    containerd_daemon.tmux = tmux
    yield containerd_daemon
    tmux.stop()
    problems = []
    # what a failed test could not remove; then the runtime must hold nothing
    containerd_daemon.remove_all()
    left = containerd_daemon.containers()
    if left:
        problems.append(f"containers ctr could not remove: {left}")
    st = managers.container_dirs(containerd_daemon.state_root)
    if st:
        problems.append(f"runtime state left in {containerd_daemon.state_root}: {st}")
    managers.assert_host_net(net, "during the containerd test")
    harness.reap_orphans()
    if problems:
        pytest.fail("left behind:\n  " + "\n  ".join(problems), pytrace=False)


def run_detached(ctr, cid, *cmd):
    log = os.path.join(ctr.logs, cid)
    ctr("run", "-d", *ctr.run_flags(), "--log-uri", f"file://{log}", IMAGE, cid, *cmd)
    pid, status = ctr.tasks()[cid]
    assert status == "RUNNING"
    managers.assert_under_runtime(ctr.state_root, cid, pid)
    return pid, log


def log_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def remove(ctr, cid):
    ctr("task", "delete", cid)
    ctr("containers", "delete", cid)
    assert not os.path.exists(os.path.join(ctr.state_root, cid))


def test_run_rm_exit_status_and_output(ctr):
    r = ctr("run", "--rm", *ctr.run_flags(), IMAGE, "ctd-rm", "sh", "-c",
            "echo out pid=$$; echo err >&2; exit 3", check=False)
    assert r.returncode == 3, r
    assert r.stdout.split() == ["out", "pid=1"]
    assert "err" in r.stderr
    assert "ctd-rm" not in ctr.containers()
    assert not os.path.exists(os.path.join(ctr.state_root, "ctd-rm"))


def test_run_payload(ctr):
    r = ctr("run", "--rm", *ctr.run_flags(), IMAGE, "ctd-payload", "/bin/payload", "info")
    info = harness.parse_json(r.stdout)
    assert info["pid"] == 1
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert info["ns"][ns] != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert info["argv"] == ["/bin/payload", "info"]
    assert info["cwd"] == "/"
    assert "/ctd-payload" in info["cgroup"]


def test_detached_task_ls_kill_delete(ctr):
    loop = 'trap "echo got-TERM; exit 7" TERM; echo started; while :; do sleep 0.1; done'
    pid, log = run_detached(ctr, "ctd-detached", "sh", "-c", loop)
    assert managers.wait_for(lambda: "started" in log_text(log))
    ctr("task", "kill", "ctd-detached")          # SIGTERM
    assert managers.wait_for(lambda: ctr.tasks()["ctd-detached"][1] == "STOPPED"), ctr.tasks()
    assert managers.wait_for(lambda: "got-TERM" in log_text(log)), log_text(log)
    assert not harness.pid_alive(pid)
    # the runtime still holds the stopped container until the shim deletes it
    managers.assert_under_runtime(ctr.state_root, "ctd-detached", status="stopped")
    r = ctr("task", "delete", "ctd-detached")
    assert r.returncode == 0 and "exit code 7" in r.stderr, r
    ctr("containers", "delete", "ctd-detached")
    assert not os.path.exists(os.path.join(ctr.state_root, "ctd-detached"))


def test_failed_create_shows_runtime_error(ctr):
    r = ctr("run", "--rm", *ctr.run_flags(), IMAGE, "ctd-fail", "/no-such-binary",
            check=False)
    assert r.returncode != 0
    # the shim reads the error from the runtime's --log file (log.json)
    assert "OCI runtime create failed" in r.stderr, r.stderr
    assert 'exec: "/no-such-binary"' in r.stderr, r.stderr
    assert "ctd-fail" not in ctr.containers()
    assert not os.path.exists(os.path.join(ctr.state_root, "ctd-fail"))


@needs("exec")
def test_exec(ctr):
    run_detached(ctr, "ctd-exec", "sleep", "1000")
    r = ctr("task", "exec", "--fifo-dir", ctr.fifo_dir, "--exec-id", "e1", "ctd-exec",
            "sh", "-c", 'echo "in-exec $(cat /proc/1/cmdline | tr "\\0" " ")"; exit 5',
            check=False)
    assert r.returncode == 5, r
    assert r.stdout.strip() == "in-exec sleep 1000", r.stdout
    ctr("task", "kill", "-s", "KILL", "ctd-exec")
    managers.wait_for(lambda: ctr.tasks()["ctd-exec"][1] == "STOPPED")
    ctr("task", "delete", "ctd-exec", check=False)
    ctr("containers", "delete", "ctd-exec")


@needs("ps")
def test_task_ps(ctr):
    pid, _ = run_detached(ctr, "ctd-ps", "sleep", "1000")
    out = ctr("task", "ps", "ctd-ps").stdout
    assert re.search(rf"^{pid}\s", out, re.M), out


@needs("pause")
def test_pause_resume(ctr):
    pid, _ = run_detached(ctr, "ctd-pause", "sleep", "1000")
    freezer = managers.cgroup_file(pid, "freezer", "freezer.state")
    ctr("task", "pause", "ctd-pause")
    assert ctr.tasks()["ctd-pause"][1] == "PAUSED"
    assert managers.read(freezer) == "FROZEN"
    ctr("task", "resume", "ctd-pause")
    assert ctr.tasks()["ctd-pause"][1] == "RUNNING"
    assert managers.read(freezer) == "THAWED"


def test_run_tty(ctr):
    """-t: the shim hands the runtime a console socket and relays the pty."""
    t = ctr.tmux
    t.start(ctr.shell_cmd("run", "-t", "--rm", *ctr.run_flags(), IMAGE, "ctd-tty", "sh"))
    t.wait_text(r"^/ # ?$")
    t.send("echo hello-$((6*7)); tty; stty size")
    t.wait_text(r"^hello-42$")
    t.wait_text(r"^/dev/pts/0$")
    t.wait_text(rf"^{t.size()}$")
    t.send("exit 4")
    t.wait_text(r"^EXITED=4$", unless=None)
    assert "ctd-tty" not in ctr.containers()


@needs("exec")
def test_exec_tty(ctr):
    run_detached(ctr, "ctd-exectty", "sleep", "1000")
    t = ctr.tmux
    t.start(ctr.shell_cmd("task", "exec", "-t", "--fifo-dir", ctr.fifo_dir, "--exec-id", "e2",
                          "ctd-exectty", "sh"))
    t.wait_text(r"^/ # ?$")
    t.send("echo hi-$((6*7)); tty; cat /proc/1/cmdline | tr '\\0' ' '; echo")
    t.wait_text(r"^hi-42$")
    t.wait_text(r"^/dev/pts/\d+$")
    t.wait_text(r"^sleep 1000 ?$")
    t.send("exit 6")
    t.wait_text(r"^EXITED=6$", unless=None)
    ctr("task", "kill", "-s", "KILL", "ctd-exectty")
    managers.wait_for(lambda: ctr.tasks()["ctd-exectty"][1] == "STOPPED")
    ctr("task", "delete", "ctd-exectty", check=False)
    ctr("containers", "delete", "ctd-exectty")
