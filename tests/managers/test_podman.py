"""podman 4.3 (with conmon) driving moat-runtime as its OCI runtime.

podman runs with private storage/run root/tmp dir, cgroupfs, file events
and a containers.conf of the test's own (runtime "moat" = the runtime under
test, rlimits within the host's hard limits); every container runs with
--network none.  As root, podman passes no --root to the runtime, so moat
keeps its state in its default root (/run/moat-runtime), where the tests look
for each container while it runs and check it is gone after `podman rm`.
"""

import os
import re

import pytest

import harness
import managers
from managers import IMAGE, needs


@pytest.fixture
def podman(podman_store):
    root = managers.default_runtime_root()
    before = managers.container_dirs(root)
    net = managers.host_net()
    tmux = managers.Tmux(podman_store.base)
    podman_store.tmux = tmux
    try:
        yield podman_store
    finally:
        tmux.stop()
        problems = podman_store.cleanup()
        after = managers.container_dirs(root)
        left = after - before
        if left:
            problems.append(f"runtime state left in {root}: {sorted(left)}")
        managers.assert_host_net(net, "during the podman test")
        if problems:
            pytest.fail("left behind:\n  " + "\n  ".join(problems), pytrace=False)


def start_detached(pm, name, *cmd, extra=()):
    cid = pm("run", "-d", "--network", "none", "--name", name, *extra, IMAGE, *cmd).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
    pid = int(pm.inspect(name, "{{.State.Pid}}"))
    assert pid > 0
    managers.assert_under_runtime(managers.default_runtime_root(), cid, pid)
    return cid, pid


LOOP = 'trap "echo got-$SIG; exit $RC" $SIG; echo started; while :; do sleep 0.1; done'


def trap_cmd(sig, rc):
    return ["sh", "-c", LOOP.replace("$SIG", sig).replace("$RC", str(rc))]


def test_podman_uses_the_runtime_under_test(podman):
    info = podman("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}")
    assert info.stdout.split() == ["moat", managers.runtime()]


def test_run_rm_exit_code_and_output(podman):
    cidfile = os.path.join(podman.base, "tmp", "cid-rm")
    r = podman("run", "--rm", "--network", "none", "--cidfile", cidfile, IMAGE, "sh", "-c",
               "echo out pid=$$ host=$(hostname); echo err >&2; ulimit -n; exit 3", check=False)
    assert r.returncode == 3, r
    lines = r.stdout.split()
    assert lines[:2] == ["out", "pid=1"], r.stdout
    assert lines[2].startswith("host=") and lines[2] != "host=" + os.uname().nodename
    import resource
    assert lines[3] == str(resource.getrlimit(resource.RLIMIT_NOFILE)[1]), r.stdout
    assert "err" in r.stderr
    with open(cidfile) as f:
        cid = f.read().strip()
    os.unlink(cidfile)
    assert not os.path.exists(os.path.join(managers.default_runtime_root(), cid))


def test_run_rm_payload_sees_container_world(podman):
    """What podman's config.json asks for is what the process gets."""
    import resource
    cidfile = os.path.join(podman.base, "tmp", "cid-payload")
    r = podman("run", "--rm", "--network", "none", "--cidfile", cidfile, IMAGE,
               "/bin/payload", "info")
    with open(cidfile) as f:
        cid = f.read().strip()
    os.unlink(cidfile)
    info = harness.parse_json(r.stdout)
    assert info["pid"] == 1
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert info["ns"][ns] != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert info["hostname"] == cid[:12]
    assert "container=podman" in info["env"]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert info["rlimits"]["RLIMIT_NOFILE"] == {"soft": hard, "hard": hard}
    assert info["rlimits"]["RLIMIT_NPROC"]["hard"] == min(
        resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    # podman 4.3's default capability set, in every set but the ambient one
    want = "%016x" % harness.cap_mask([
        "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
        "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID",
        "CAP_NET_RAW", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"])
    assert (info["CapEff"], info["CapPrm"], info["CapBnd"], info["CapAmb"]) == \
        (want, want, want, "0" * 16), info
    assert f"libpod-{cid}" in info["cgroup"]


def test_failed_create_shows_runtime_error(podman):
    r = podman("run", "--rm", "--network", "none", IMAGE, "/no-such-binary", check=False)
    assert r.returncode == 127, r
    assert 'exec: "/no-such-binary"' in r.stderr, r.stderr
    assert "no such file or directory" in r.stderr.lower(), r.stderr


def test_detached_ps_logs_stop_rm(podman):
    cid, pid = start_detached(podman, "mgr-detached", *trap_cmd("TERM", 7))
    ps = podman("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
    assert re.search(rf"^{cid[:12]} mgr-detached Up", ps, re.M), ps
    assert managers.wait_for(lambda: "started" in podman("logs", "mgr-detached").stdout)
    podman("stop", "-t", "30", "mgr-detached")
    assert podman.inspect("mgr-detached", "{{.State.ExitCode}}") == "7"
    assert "got-TERM" in podman("logs", "mgr-detached").stdout
    assert managers.wait_for(lambda: not harness.pid_alive(pid))
    podman("rm", "mgr-detached")
    assert "mgr-detached" not in podman("ps", "-a", "--format", "{{.Names}}").stdout
    assert not os.path.exists(os.path.join(managers.default_runtime_root(), cid))


def test_kill_delivers_the_signal(podman):
    cid, pid = start_detached(podman, "mgr-kill", *trap_cmd("USR1", 9))
    assert managers.wait_for(lambda: "started" in podman("logs", "mgr-kill").stdout)
    podman("kill", "--signal", "USR1", "mgr-kill")
    assert podman("wait", "mgr-kill").stdout.strip() == "9"
    cid2, pid2 = start_detached(podman, "mgr-kill9", "sleep", "1000")
    podman("kill", "mgr-kill9")          # podman's default: SIGKILL
    assert podman("wait", "mgr-kill9").stdout.strip() == "137"
    assert not harness.pid_alive(pid2)


def test_top(podman):
    start_detached(podman, "mgr-top", "sleep", "1000")
    out = podman("top", "mgr-top", "pid", "args").stdout
    assert re.search(r"^1\s+sleep 1000\s*$", out, re.M), out


@needs("exec")
def test_exec(podman):
    start_detached(podman, "mgr-exec", "sleep", "1000")
    r = podman("exec", "-e", "FOO=bar", "mgr-exec", "sh", "-c",
               'echo "in-exec $FOO $(cat /proc/1/cmdline | tr "\\0" " ")"; exit 5', check=False)
    assert r.returncode == 5, r
    assert r.stdout.strip() == "in-exec bar sleep 1000", r.stdout


def test_run_it_terminal(podman):
    t = podman.tmux
    t.start(podman.shell_cmd("run", "-it", "--rm", "--network", "none", IMAGE, "sh"))
    t.wait_text(r"^/ # ?$")
    t.send("echo hello-$((6*7)); tty; stty size")
    t.wait_text(r"^hello-42$")
    t.wait_text(r"^/dev/pts/0$")
    t.wait_text(rf"^{t.size()}$")
    t.send("exit 4")
    t.wait_text(r"^EXITED=4$", unless=None)


@needs("exec")
def test_exec_it_terminal(podman):
    start_detached(podman, "mgr-execit", "sleep", "1000")
    t = podman.tmux
    t.start(podman.shell_cmd("exec", "-it", "mgr-execit", "sh"))
    t.wait_text(r"^/ # ?$")
    t.send("echo hi-$((6*7)); tty; cat /proc/1/cmdline | tr '\\0' ' '; echo")
    t.wait_text(r"^hi-42$")
    t.wait_text(r"^/dev/pts/\d+$")
    t.wait_text(r"^sleep 1000 ?$")
    t.send("exit 6")
    t.wait_text(r"^EXITED=6$", unless=None)


@needs("pause")
def test_pause_unpause(podman):
    cid, pid = start_detached(podman, "mgr-pause", "sleep", "1000")
    freezer = managers.cgroup_file(pid, "freezer", "freezer.state")
    podman("pause", "mgr-pause")
    assert podman.inspect("mgr-pause", "{{.State.Status}}") == "paused"
    assert managers.read(freezer) == "FROZEN"
    managers.assert_under_runtime(managers.default_runtime_root(), cid, pid, status="paused")
    podman("unpause", "mgr-pause")
    assert podman.inspect("mgr-pause", "{{.State.Status}}") == "running"
    assert managers.read(freezer) == "THAWED"
    managers.assert_under_runtime(managers.default_runtime_root(), cid, pid)


@needs("update")
def test_update(podman):
    cid, pid = start_detached(podman, "mgr-update", "sleep", "1000")
    podman("update", "--cpu-shares", "512", "--memory", "64m", "mgr-update")
    assert managers.read(managers.cgroup_file(pid, "cpu", "cpu.shares")) == "512"
    assert managers.read(managers.cgroup_file(pid, "memory", "memory.limit_in_bytes")) == \
        str(64 << 20)
