"""dockerd 20.10 (with the containerd it starts itself and
containerd-shim-runc-v2) driving moat-runtime, registered with
`--add-runtime moat=<path>` and chosen per container with `--runtime moat`.

dockerd is only ever started with its bridge, iptables, masquerading,
forwarding and userland proxy off, with data root, exec root, pid file and
socket under the test's temp dir; the host's links, forwarding sysctls and
firewall rules are compared before and after.  The docker CLI (Docker 28 or
Debian's 20.10) talks to it over DOCKER_HOST with API version 1.41.  The shim
keeps moat's state under <exec-root>/runtime-runc/moby/<id>.
"""

import glob
import json
import os
import re
import shlex

import pytest

import harness
import managers
from managers import IMAGE, needs


class Docker:
    def __init__(self, base):
        self.base = base
        self.sock = os.path.join(base, "docker.sock")
        self.exec_root = os.path.join(base, "exec")
        self.cli_config = os.path.join(base, "cli")
        os.makedirs(self.cli_config, exist_ok=True)
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}",
                        DOCKER_API_VERSION="1.41", DOCKER_CONFIG=self.cli_config)
        for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            self.env.pop(k, None)
        # a config file of its own: nothing from /etc/docker/daemon.json, and
        # the 20.10 trust key (default /etc/docker/key.json) kept private
        conf = os.path.join(base, "daemon.json")
        with open(conf, "w") as f:
            json.dump({"deprecated-key-path": os.path.join(base, "key.json")}, f)
        argv = ["dockerd", "--config-file", conf,
                "--data-root", os.path.join(base, "data"),
                "--exec-root", self.exec_root,
                "--pidfile", os.path.join(base, "docker.pid"),
                "-H", f"unix://{self.sock}",
                # never touch the host's network
                "--bridge=none", "--iptables=false", "--ip6tables=false",
                "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false",
                "--storage-driver", "overlay2",
                "--add-runtime", f"moat={managers.runtime()}"]
        self.daemon = managers.Daemon("dockerd", argv, base, self.sock, env=self.env)
        self.cli = managers.need_binary("docker")

    def __call__(self, *args, check=True, timeout=managers.TIMEOUT):
        return managers.run([self.cli, *args], check=check, timeout=timeout, env=self.env,
                            what="docker " + " ".join(args))

    def shell_cmd(self, *args):
        envs = " ".join(f"{k}={shlex.quote(self.env[k])}"
                        for k in ("DOCKER_HOST", "DOCKER_API_VERSION", "DOCKER_CONFIG"))
        return f"{envs} {shlex.quote(self.cli)} " + " ".join(shlex.quote(a) for a in args)

    def state_roots(self):
        return glob.glob(os.path.join(self.exec_root, "runtime-*", "moby"))

    def state_root_of(self, cid):
        roots = [r for r in self.state_roots() if os.path.isdir(os.path.join(r, cid))]
        assert len(roots) == 1, (f"state of {cid} is in {roots} (roots: {self.state_roots()}):"
                                 f" the container did not run under {managers.runtime()}")
        return roots[0]

    def inspect(self, name, fmt):
        return self("inspect", "--format", fmt, name).stdout.strip()


@pytest.fixture(scope="module")
def dockerd(session_tmp, image_archive):
    managers.need_binary("dockerd")
    managers.need_binary("containerd")
    base = os.path.join(session_tmp, "docker")
    os.makedirs(base)
    host_dirs = managers.HostDirs("/run/containerd")
    net = managers.host_net()
    d = Docker(base)
    problems = []
    try:
        d.daemon.start(lambda: d("version", check=False).returncode == 0)
        managers.assert_host_net(net, "when dockerd started")
        d("load", "-i", image_archive, timeout=180)
        yield d
    finally:
        try:
            if d.daemon.proc and d.daemon.proc.poll() is None:
                d("rm", "-f", *d("ps", "-aq").stdout.split(), check=False, timeout=120)
        except Exception as e:  # keep stopping
            problems.append(f"removing containers failed: {e!r}")
        problems += d.daemon.stop()
        ms = managers.mounts_under(base)
        if ms:
            problems.append(f"mounts left under dockerd's dirs: {ms}")
            managers.umount_all_under(base)
        host_dirs.cleanup()
        managers.assert_host_net(net, "while dockerd ran")
        if problems:
            pytest.fail("dockerd left behind:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def docker(dockerd):
    net = managers.host_net()
    tmux = managers.Tmux(dockerd.base)
    dockerd.tmux = tmux
    yield dockerd
    tmux.stop()
    problems = []
    ids = dockerd("ps", "-aq").stdout.split()
    if ids:
        dockerd("rm", "-f", *ids, check=False, timeout=120)
    left = dockerd("ps", "-aq").stdout.split()
    if left:
        problems.append(f"containers docker could not remove: {left}")
    for root in dockerd.state_roots():
        if managers.container_dirs(root):
            problems.append(f"runtime state left in {root}: {managers.container_dirs(root)}")
    managers.assert_host_net(net, "during the docker test")
    harness.reap_orphans()
    if problems:
        pytest.fail("left behind:\n  " + "\n  ".join(problems), pytrace=False)


RUN = ("run", "--runtime", "moat", "--network", "none")


def start_detached(docker, name, *cmd):
    cid = docker(*RUN, "-d", "--name", name, IMAGE, *cmd).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
    pid = int(docker.inspect(name, "{{.State.Pid}}"))
    managers.assert_under_runtime(docker.state_root_of(cid), cid, pid)
    return cid, pid


def test_moat_cli_negotiates_down_to_dockerd(docker):
    """moat's CLI sends its first request under its own API version (1.51)
    without a /_ping; dockerd 20.10 refuses that version (it speaks 1.41),
    and the CLI then negotiates as docker's does and sends it again."""
    cid, _ = start_detached(docker, "negotiated", "sleep", "100")
    moat = os.path.join(harness.build_dir(), "src", "cli", "moat")
    env = {k: v for k, v in docker.env.items() if k not in ("MOAT_API_VERSION", "DOCKER_API_VERSION")}
    env.pop("MOAT_HOST", None)
    r = managers.run([moat, "-H", f"unix://{docker.sock}", "inspect", "--format", "{{.Id}} {{.State.Running}}",
                      "negotiated"], env=env, what="moat inspect against dockerd")
    assert r.stdout.split() == [cid, "true"], r.stdout
    r = managers.run([moat, "-H", f"unix://{docker.sock}", "ps", "-q", "--no-trunc"], env=env,
                     what="moat ps against dockerd")
    assert cid in r.stdout.split(), r.stdout


def test_moat_cli_run_detached_against_dockerd(docker):
    """moat's `run -d` asks for the start with the create (`start=1`, a moat
    extension); dockerd ignores it and says nothing of a start, so the CLI
    starts the container itself."""
    moat = os.path.join(harness.build_dir(), "src", "cli", "moat")
    env = {k: v for k, v in docker.env.items() if k not in ("MOAT_API_VERSION", "DOCKER_API_VERSION")}
    env.pop("MOAT_HOST", None)
    r = managers.run([moat, "-H", f"unix://{docker.sock}", "run", "-d", "--network", "none",
                      "--name", "moat-cli-run-d", IMAGE, "sleep", "100"], env=env, what="moat run -d against dockerd")
    cid = r.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), r.stdout
    # (dockerd's default runtime: moat's CLI has no --runtime)
    assert docker.inspect("moat-cli-run-d", "{{.State.Running}}") == "true"


def test_dockerd_knows_the_runtime(docker):
    runtimes = docker("info", "--format", "{{json .Runtimes}}").stdout
    assert "moat" in runtimes and managers.runtime() in runtimes, runtimes


def test_run_rm_exit_code_and_output(docker):
    r = docker(*RUN, "--rm", IMAGE, "sh", "-c", "echo out pid=$$; echo err >&2; exit 3",
               check=False)
    assert r.returncode == 3, r
    assert r.stdout.split() == ["out", "pid=1"]
    assert "err" in r.stderr


def test_run_payload(docker):
    r = docker(*RUN, "--rm", "--hostname", "moat-in-docker", IMAGE, "/bin/payload", "info")
    info = harness.parse_json(r.stdout)
    assert info["pid"] == 1
    assert info["hostname"] == "moat-in-docker"
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert info["ns"][ns] != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert "/docker/" in info["cgroup"]


def test_failed_create_shows_runtime_error(docker):
    r = docker(*RUN, "--rm", IMAGE, "/no-such-binary", check=False)
    assert 'exec: "/no-such-binary"' in r.stderr, r.stderr
    assert r.returncode == 127, r


def test_detached_logs_stop_rm(docker):
    loop = 'trap "echo got-TERM; exit 7" TERM; echo started; while :; do sleep 0.1; done'
    cid, pid = start_detached(docker, "dk-detached", "sh", "-c", loop)
    root = docker.state_root_of(cid)
    assert managers.wait_for(lambda: "started" in docker("logs", "dk-detached").stdout)
    docker("stop", "-t", "30", "dk-detached")
    assert docker.inspect("dk-detached", "{{.State.ExitCode}}") == "7"
    assert "got-TERM" in docker("logs", "dk-detached").stdout
    assert not harness.pid_alive(pid)
    docker("rm", "dk-detached")
    assert not os.path.exists(os.path.join(root, cid))


def test_kill(docker):
    cid, pid = start_detached(docker, "dk-kill", "sleep", "1000")
    docker("kill", "dk-kill")
    assert docker("wait", "dk-kill").stdout.strip() == "137"
    assert not harness.pid_alive(pid)


@needs("exec")
def test_exec(docker):
    start_detached(docker, "dk-exec", "sleep", "1000")
    r = docker("exec", "-e", "FOO=bar", "dk-exec", "sh", "-c",
               'echo "in-exec $FOO $(cat /proc/1/cmdline | tr "\\0" " ")"; exit 5', check=False)
    assert r.returncode == 5, r
    assert r.stdout.strip() == "in-exec bar sleep 1000", r.stdout


@needs("ps")
def test_top(docker):
    cid, pid = start_detached(docker, "dk-top", "sleep", "1000")
    out = docker("top", "dk-top").stdout
    assert re.search(rf"\s{pid}\s.*sleep 1000", out), out


@needs("pause")
def test_pause_unpause(docker):
    cid, pid = start_detached(docker, "dk-pause", "sleep", "1000")
    freezer = managers.cgroup_file(pid, "freezer", "freezer.state")
    docker("pause", "dk-pause")
    assert docker.inspect("dk-pause", "{{.State.Status}}") == "paused"
    assert managers.read(freezer) == "FROZEN"
    docker("unpause", "dk-pause")
    assert docker.inspect("dk-pause", "{{.State.Status}}") == "running"
    assert managers.read(freezer) == "THAWED"


@needs("update")
def test_update(docker):
    cid, pid = start_detached(docker, "dk-update", "sleep", "1000")
    docker("update", "--cpu-shares", "512", "--pids-limit", "99", "dk-update")
    assert managers.read(managers.cgroup_file(pid, "cpu", "cpu.shares")) == "512"
    assert managers.read(managers.cgroup_file(pid, "pids", "pids.max")) == "99"


def test_run_it_terminal(docker):
    t = docker.tmux
    t.start(docker.shell_cmd(*RUN, "-it", "--rm", IMAGE, "sh"))
    t.wait_text(r"^/ # ?$")
    t.send("echo hello-$((6*7)); tty; stty size")
    t.wait_text(r"^hello-42$")
    t.wait_text(r"^/dev/pts/0$")
    t.wait_text(rf"^{t.size()}$")
    t.send("exit 4")
    t.wait_text(r"^EXITED=4$", unless=None)


@needs("exec")
def test_exec_it_terminal(docker):
    start_detached(docker, "dk-execit", "sleep", "1000")
    t = docker.tmux
    t.start(docker.shell_cmd("exec", "-it", "dk-execit", "sh"))
    t.wait_text(r"^/ # ?$")
    t.send("echo hi-$((6*7)); tty")
    t.wait_text(r"^hi-42$")
    t.wait_text(r"^/dev/pts/\d+$")
    t.send("exit 6")
    t.wait_text(r"^EXITED=6$", unless=None)
