"""The docker CLI (28.x) against `moat daemon`: every verb a user types for
containers, checked by what the CLI prints and returns and by what the
kernel shows (/proc of the container's processes, its cgroup files, the
freezer state, mounts).

One daemon per module (daemon_fixture.py), with the busybox test image
loaded; after each test every container it made is removed with
`docker rm -f` and nothing of it may be left: monitor, mount, cgroup.
Tests of what the engine does not do yet are xfail(strict=True) naming
the bug, so they fail as soon as it is fixed.
"""

import json
import os
import re
import socket
import sys
import tempfile
import time

import pytest

import harness
from daemon_fixture import (IMAGE, cgroup_file, container_cgroups, daemon, demo_image_tar,  # noqa: F401
                            moat_daemon, read, wait_for)

sys.path.insert(0, os.path.join(harness.REPO, "tests", "managers"))
from managers import Tmux  # noqa: E402

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
                "CAP_SYS_CHROOT"]


def name(prefix="c"):
    return f"{prefix}-{os.urandom(4).hex()}"


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def wait_state(d, ref, pred, timeout=30):
    """Polls inspect until pred(State) is true; returns the last State."""
    last = {}

    def check():
        nonlocal last
        p = d.docker("inspect", "--type", "container", ref)
        if p.returncode != 0:
            return False
        last = json.loads(p.stdout)[0]["State"]
        return pred(last)
    wait_for(check, timeout, 0.1)
    return last


def running_pid(d, ref):
    st = wait_state(d, ref, lambda s: s["Running"] and s["Pid"] > 0)
    assert st.get("Running") and st["Pid"] > 0, st
    return st["Pid"]


# ---- system ----------------------------------------------------------------------


def test_version(daemon):
    p = daemon.ok("version")
    assert "Server: moat" in p.stdout
    assert "API version:      1.51 (minimum version 1.24)" in p.stdout
    assert daemon.ok("version", "--format", "{{.Server.APIVersion}}").stdout.strip() == "1.51"


def test_info_counts(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "100")
    daemon.ok("create", "--name", n + "-c", IMAGE, "true")
    p = daemon.ok("info")
    assert "ERROR" not in p.stdout + p.stderr
    fmt = "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}"
    total, running, paused, stopped = map(int, daemon.ok("info", "--format", fmt).stdout.split())
    ps_all = daemon.ok("ps", "-aq").stdout.split()
    ps_run = daemon.ok("ps", "-q").stdout.split()
    assert total == len(ps_all) >= 2
    assert running == len(ps_run) >= 1
    assert paused == 0 and stopped == total - running


# ---- ps ----------------------------------------------------------------------------


def test_ps_columns_and_status(daemon):
    base = name()
    daemon.ok("create", "--name", base + "-created", IMAGE, "true")
    daemon.docker("run", "--name", base + "-exited", IMAGE, "sh", "-c", "exit 3")
    daemon.run_d("--name", base + "-up", IMAGE, "sleep", "100")

    p = daemon.ok("ps", "-a", "--filter", f"name={base}")
    lines = p.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                                     "PORTS", "NAMES"], lines[0]
    assert len(lines) == 4, p.stdout
    rows = {}
    for line in daemon.ok("ps", "-a", "--filter", f"name={base}", "--format",
                          "{{.Names}}|{{.State}}|{{.Status}}|{{.Command}}|{{.Image}}|{{.ID}}").stdout.splitlines():
        n, state, status, cmd, image, cid = line.split("|")
        rows[n] = (state, status, cmd, image, cid)
    assert rows[base + "-created"][:2] == ("created", "Created")
    assert rows[base + "-exited"][0] == "exited"
    assert re.fullmatch(r"Exited \(3\) .* ago", rows[base + "-exited"][1]), rows
    assert rows[base + "-up"][0] == "running"
    assert re.fullmatch(r"Up .*", rows[base + "-up"][1]), rows
    assert rows[base + "-up"][2] == '"sleep 100"'
    assert rows[base + "-up"][3] == IMAGE.rsplit(":", 1)[0] or rows[base + "-up"][3] == IMAGE
    assert re.fullmatch(r"[0-9a-f]{12}", rows[base + "-up"][4])
    # without -a: only the running one
    only = daemon.ok("ps", "--filter", f"name={base}", "--format", "{{.Names}}").stdout.split()
    assert only == [base + "-up"]
    q = daemon.ok("ps", "-aq", "--filter", "status=exited", "--filter", f"name={base}").stdout.split()
    assert q == [rows[base + "-exited"][4]]


# ---- run ---------------------------------------------------------------------------


def test_run_rm_output_and_exit_codes(daemon):
    n = name()
    p = daemon.docker("run", "--rm", "--name", n, IMAGE, "sh", "-c", "echo to-out; echo to-err >&2")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "to-out\n"
    assert p.stderr == "to-err\n"
    assert daemon.docker("inspect", n).returncode != 0, "--rm left the container"
    p = daemon.docker("run", "--rm", IMAGE, "sh", "-c", "exit 3")
    assert p.returncode == 3, p.stderr
    p = daemon.docker("run", "--rm", "-i", IMAGE, "cat", input="through stdin\n")
    assert p.returncode == 0 and p.stdout == "through stdin\n", p


def test_run_killed_is_137(daemon):
    n = name()
    run = daemon.docker_popen("run", "--rm", "--name", n, IMAGE, "sleep", "100")
    try:
        running_pid(daemon, n)
        daemon.ok("kill", n)
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        harness._live_popens.discard(run)
    assert run.returncode == 137, err


def test_run_missing_command_127(daemon):
    n = name()
    p = daemon.docker("run", "--name", n, IMAGE, "nosuchcmd")
    assert p.returncode == 127, p
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in p.stderr
    st = daemon.inspect(n)["State"]
    assert st["ExitCode"] == 127 and not st["Running"]
    assert "executable file not found" in st["Error"]


def test_run_rm_missing_command_127(daemon):
    n = name()
    p = daemon.docker("run", "--rm", "--name", n, IMAGE, "nosuchcmd", timeout=20)
    assert p.returncode == 127, p
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in p.stderr
    assert daemon.docker("inspect", n).returncode != 0


def test_run_not_executable_126(daemon):
    p = daemon.docker("run", "--name", name(), IMAGE, "/etc/passwd")
    assert p.returncode == 126, p
    assert 'exec: "/etc/passwd": permission denied' in p.stderr


def test_name_clash_409(daemon):
    n = name()
    cid = daemon.ok("create", "--name", n, IMAGE, "true").stdout.strip()
    want = (f'Conflict. The container name "/{n}" is already in use by container "{cid}". '
            "You have to remove (or rename) that container to be able to reuse that name.")
    p = daemon.docker("create", "--name", n, IMAGE, "true")
    assert p.returncode == 1 and want in p.stderr, p
    p = daemon.docker("run", "-d", "--name", n, IMAGE, "true")
    assert p.returncode == 125 and want in p.stderr, p
    assert daemon.ok("ps", "-aq", "--no-trunc", "--filter", f"name={n}").stdout.split() == [cid]


def test_ps_name_filter_regexp(daemon):
    n = name()
    daemon.ok("create", "--name", n, IMAGE, "true")
    daemon.ok("create", "--name", n + "-longer", IMAGE, "true")
    assert daemon.ok("ps", "-a", "--filter", f"name=^/{n}$", "--format", "{{.Names}}").stdout.split() == [n]
    assert daemon.ok("ps", "-a", "--filter", f"name=^{n}-l.*r$", "--format", "{{.Names}}").stdout.split() == \
        [n + "-longer"]


def test_create_inspect_before_start(daemon):
    n = name()
    cid = daemon.ok("create", "--name", n, IMAGE).stdout.strip()
    c = daemon.inspect(n)
    assert c["Path"] == "/bin/sh" and c["Args"] == []
    assert c["Config"]["Cmd"] == ["/bin/sh"]
    assert any(e.startswith("PATH=") for e in c["Config"]["Env"])
    assert c["Config"]["Hostname"] == cid[:12]
    m = name()
    daemon.ok("create", "--name", m, IMAGE, "echo", "x")
    assert daemon.ok("ps", "-a", "--filter", f"name={m}", "--format", "{{.Command}}").stdout.strip() == '"echo x"'
    assert daemon.inspect(m)["Path"] == "echo"


def test_ps_size(daemon):
    n = name()
    daemon.ok("run", "--name", n, IMAGE, "sh", "-c", "head -c 100000 /dev/zero > /big")
    size = daemon.ok("ps", "-a", "-s", "--filter", f"name={n}", "--format", "{{.Size}}").stdout.strip()
    m = re.fullmatch(r"([\d.]+)([kM]B) \(virtual ([\d.]+)([kM]B)\)", size)
    assert m, size
    assert float(m.group(1)) * (1000 if m.group(2) == "kB" else 10**6) >= 100000
    rw, rootfs = daemon.ok("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", n).stdout.split()
    assert int(rw) >= 100000 and int(rootfs) > int(rw)


# ---- logs --------------------------------------------------------------------------


def test_run_detached_and_logs(daemon):
    n = name()
    # the pause keeps out2 after err1 in the log (two pipes have no order)
    daemon.run_d("--name", n, IMAGE, "sh", "-c", "echo out1; echo err1 >&2; sleep 0.3; echo out2")
    assert daemon.ok("wait", n).stdout.strip() == "0"
    p = daemon.ok("logs", n)
    assert p.stdout == "out1\nout2\n"
    assert p.stderr == "err1\n"
    p = daemon.ok("logs", "--tail", "1", n)
    assert p.stdout + p.stderr in ("out2\n",)
    p = daemon.ok("logs", "-t", n)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out1\n.*out2\n", p.stdout, re.S), p.stdout


def test_logs_follow_ends_when_container_exits(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sh", "-c", "echo first; sleep 2; echo second")
    logs = daemon.docker_popen("logs", "-f", n)
    try:
        out, err = logs.communicate(timeout=30)
    finally:
        if logs.poll() is None:
            logs.kill()
            logs.communicate()
        harness._live_popens.discard(logs)
    assert logs.returncode == 0, err
    assert out == "first\nsecond\n"


# ---- terminals (tmux) -----------------------------------------------------------------


def tmux_session(daemon, cmdline):
    base = tempfile.mkdtemp(prefix="tmux-", dir=daemon.base)
    t = Tmux(base)
    t.start(f"{daemon.shell_env()} {cmdline}")
    return t


def test_run_it_tmux(daemon):
    n = name()
    t = tmux_session(daemon, f"docker run -it --rm --name {n} {IMAGE} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("stty size")
        t.wait_text(r"^30 120\s*$")
        t.send("echo typed-$((6*7))")
        t.wait_text(r"^typed-42\s*$")
        t.send("tty")
        t.wait_text(r"^/dev/pts/\d+\s*$")
        t.send("exit 5")
        t.wait_text(r"^EXITED=5$", unless=None)
    finally:
        t.stop()
    assert daemon.docker("inspect", n).returncode != 0, "--rm left the container"


def test_exec_it_tmux(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "100")
    t = tmux_session(daemon, f"docker exec -it {n} sh")
    try:
        t.wait_text(r"^/ # ")
        t.send("stty size")
        t.wait_text(r"^30 120\s*$")
        t.send("echo ex-$((5*5)) $$")
        t.wait_text(r"^ex-25 \d+\s*$")
        t.send("exit 4")
        t.wait_text(r"^EXITED=4$", unless=None)
    finally:
        t.stop()
    assert daemon.inspect(n)["State"]["Running"]


# ---- exec --------------------------------------------------------------------------


def test_exec(daemon):
    n = name()
    daemon.run_d("--name", n, "--hostname", "hx", IMAGE, "sleep", "100")
    p = daemon.ok("exec", n, "hostname")
    assert p.stdout == "hx\n"
    p = daemon.docker("exec", n, "sh", "-c", "echo o; echo e >&2; exit 7")
    assert p.returncode == 7 and p.stdout == "o\n" and p.stderr == "e\n", p
    p = daemon.ok("exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", n, "sh", "-c", 'echo $FOO $(pwd) $(id -u)')
    assert p.stdout == "bar /tmp 65534\n"
    p = daemon.ok("exec", "-i", n, "cat", input="in-exec\n")
    assert p.stdout == "in-exec\n"
    # the exec'd process is in the container: same pid namespace and cgroup
    pid = daemon.inspect(n)["State"]["Pid"]
    p = daemon.ok("exec", n, "cat", "/proc/1/cmdline")
    assert p.stdout.split("\0")[:2] == ["sleep", "100"]
    p = daemon.ok("exec", n, "readlink", "/proc/self/ns/pid")
    assert p.stdout.strip() == os.readlink(f"/proc/{pid}/ns/pid")
    p = daemon.docker("exec", n, "nosuchcmd")
    assert p.returncode == 127, p
    stopped = name()
    daemon.ok("create", "--name", stopped, IMAGE, "true")
    p = daemon.docker("exec", stopped, "true")
    assert p.returncode != 0 and "is not running" in p.stderr


# ---- stop, kill, restart, rm ------------------------------------------------------------


def test_stop_timeout_then_sigkill(daemon):
    n = name()
    # sleep as pid 1 has no TERM handler: the kernel drops TERM for it
    daemon.run_d("--name", n, IMAGE, "sleep", "1000")
    running_pid(daemon, n)
    t0 = time.monotonic()
    daemon.ok("stop", "-t", "1", n)
    took = time.monotonic() - t0
    st = daemon.inspect(n)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 137, st
    assert took < 9, f"stop -t 1 took {took:.1f}s (the default timeout is 10s)"


def test_stop_sigterm_handled(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sh", "-c",
                 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done')
    wait_for(lambda: "ready" in daemon.docker("logs", n).stdout)
    daemon.ok("stop", n)
    st = daemon.inspect(n)["State"]
    assert st["ExitCode"] == 0 and st["Status"] == "exited", st
    assert "got-term" in daemon.ok("logs", n).stdout


def test_stop_signal(daemon):
    n = name()
    daemon.run_d("--name", n, "--stop-signal", "USR1", IMAGE, "sh", "-c",
                 'trap "echo got-usr1; exit 0" USR1; echo ready; while :; do sleep 0.1; done')
    wait_for(lambda: "ready" in daemon.docker("logs", n).stdout)
    assert daemon.inspect(n)["Config"]["StopSignal"] == "USR1"
    daemon.ok("stop", n)
    assert daemon.inspect(n)["State"]["ExitCode"] == 0
    assert "got-usr1" in daemon.ok("logs", n).stdout
    # docker stop --signal overrides it
    m = name()
    daemon.run_d("--name", m, IMAGE, "sh", "-c",
                 'trap "echo got-usr2; exit 0" USR2; echo ready; while :; do sleep 0.1; done')
    wait_for(lambda: "ready" in daemon.docker("logs", m).stdout)
    daemon.ok("stop", "-s", "USR2", m)
    assert "got-usr2" in daemon.ok("logs", m).stdout


def test_kill_signal(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sh", "-c",
                 'trap "exit 42" USR1; echo ready; while :; do sleep 0.1; done')
    wait_for(lambda: "ready" in daemon.docker("logs", n).stdout)
    daemon.ok("kill", "-s", "USR1", n)
    assert daemon.ok("wait", n).stdout.strip() == "42"
    p = daemon.docker("kill", n)
    assert p.returncode != 0 and "is not running" in p.stderr
    m = name()
    daemon.run_d("--name", m, IMAGE, "sleep", "100")
    daemon.ok("kill", m)
    assert daemon.ok("wait", m).stdout.strip() == "137"


def test_restart(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sh", "-c", 'echo started; trap "exit 0" TERM; while :; do sleep 0.1; done')
    pid1 = running_pid(daemon, n)
    started1 = daemon.inspect(n)["State"]["StartedAt"]
    daemon.ok("restart", "-t", "2", n)
    st = daemon.inspect(n)
    assert st["State"]["Running"] and st["State"]["Pid"] != pid1
    assert st["State"]["StartedAt"] != started1
    assert st["RestartCount"] == 0
    assert not harness.pid_alive(pid1)
    assert wait_for(lambda: daemon.ok("logs", n).stdout.count("started") == 2)
    # restart of a stopped container starts it
    daemon.ok("stop", "-t", "1", n)
    daemon.ok("restart", n)
    assert daemon.inspect(n)["State"]["Running"]


def test_rm_force_running(daemon):
    n = name()
    cid = daemon.run_d("--name", n, IMAGE, "sleep", "100")
    pid = running_pid(daemon, n)
    p = daemon.docker("rm", n)
    assert p.returncode != 0
    assert "cannot remove container" in p.stderr.lower() and "stop the container before" in p.stderr, p.stderr
    daemon.ok("rm", "-f", n)
    assert wait_for(lambda: not harness.pid_alive(pid), 10)
    assert daemon.docker("inspect", n).returncode != 0
    assert not os.path.exists(os.path.join(daemon.data, "containers", cid))
    assert not container_cgroups(cid)


# ---- pause --------------------------------------------------------------------------------


def test_pause_unpause(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "100")
    pid = running_pid(daemon, n)
    freezer = cgroup_file(pid, "freezer", "freezer.state")
    assert read(freezer) == "THAWED"
    daemon.ok("pause", n)
    st = daemon.inspect(n)["State"]
    assert st["Status"] == "paused" and st["Paused"] and st["Running"]
    assert read(freezer) == "FROZEN"
    ps = daemon.ok("ps", "--filter", f"name={n}", "--format", "{{.State}}|{{.Status}}").stdout.strip()
    assert re.fullmatch(r"paused\|Up .* \(Paused\)", ps), ps
    p = daemon.docker("exec", n, "true")
    assert p.returncode != 0 and "is paused" in p.stderr
    daemon.ok("unpause", n)
    st = daemon.inspect(n)["State"]
    assert st["Status"] == "running" and not st["Paused"]
    assert read(freezer) == "THAWED"
    # a paused container can be stopped
    daemon.ok("pause", n)
    daemon.ok("stop", "-t", "1", n)
    st = daemon.inspect(n)["State"]
    assert st["Status"] == "exited" and not st["Paused"], st


# ---- rename, wait, inspect -------------------------------------------------------------


def test_rename(daemon):
    a, b = name(), name()
    cid = daemon.run_d("--name", a, IMAGE, "sleep", "100")
    daemon.ok("rename", a, b)
    assert daemon.inspect(b)["Name"] == "/" + b
    assert daemon.inspect(cid)["Name"] == "/" + b
    p = daemon.docker("inspect", "--type", "container", a)
    assert p.returncode != 0 and "No such container" in p.stderr
    # the old name is free again
    daemon.ok("create", "--name", a, IMAGE, "true")
    p = daemon.docker("rename", a, b)
    assert p.returncode != 0 and "already in use" in p.stderr


def test_wait(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sh", "-c", "sleep 1; exit 5")
    assert daemon.ok("wait", n).stdout.strip() == "5"
    assert daemon.ok("wait", n).stdout.strip() == "5"


def test_inspect_fields(daemon):
    n = name()
    cid = daemon.run_d("--name", n, "--hostname", "insp", "-e", "K=V", "--label", "l1=v1", "-w", "/tmp",
                       "--memory", "64m", "--restart", "on-failure:3", "-v", "/tmp:/hosttmp:ro",
                       IMAGE, "sleep", "100")
    c = daemon.inspect(n)
    assert c["Id"] == cid and c["Name"] == "/" + n
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", c["Created"])
    assert c["Path"] == "sleep" and c["Args"] == ["100"]
    st = c["State"]
    assert st["Status"] == "running" and st["Running"] and not st["Paused"] and not st["Restarting"]
    assert st["ExitCode"] == 0 and st["Pid"] > 0 and harness.pid_alive(st["Pid"])
    assert st["StartedAt"] >= c["Created"][:19]
    assert c["Image"].startswith("sha256:")
    cfg = c["Config"]
    assert cfg["Image"] == IMAGE
    assert cfg["Cmd"] == ["sleep", "100"]
    assert "K=V" in cfg["Env"] and any(e.startswith("PATH=") for e in cfg["Env"])
    assert cfg["Labels"] == {"l1": "v1"}
    assert cfg["WorkingDir"] == "/tmp" and cfg["Hostname"] == "insp"
    hc = c["HostConfig"]
    assert hc["Memory"] == 64 * 1024 * 1024
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert hc["Binds"] == ["/tmp:/hosttmp:ro"]
    mounts = c["Mounts"]
    assert len(mounts) == 1
    m = mounts[0]
    assert m["Type"] == "bind" and m["Source"] == "/tmp" and m["Destination"] == "/hosttmp" and m["RW"] is False
    assert isinstance(c["NetworkSettings"]["Networks"], dict)
    # the pid is the container's: in its cgroup, and sees the bind mount ro
    with open(f"/proc/{st['Pid']}/cgroup") as f:
        assert f"/moat/{cid}" in f.read()
    p = daemon.ok("exec", n, "sh", "-c", "touch /hosttmp/x 2>&1; hostname")
    assert "Read-only file system" in p.stdout and p.stdout.endswith("insp\n")
    for fmt, want in (("{{.State.Status}}", "running"), ("{{.Config.Hostname}}", "insp"),
                      ("{{.HostConfig.Memory}}", str(64 << 20)), ("{{json .Config.Labels}}", '{"l1":"v1"}')):
        assert daemon.ok("inspect", "-f", fmt, n).stdout.strip() == want


# ---- stats and events ----------------------------------------------------------------------


def parse_size(s):
    m = re.fullmatch(r"([\d.]+)\s*([KMGT]?i?B)", s.strip())
    assert m, s
    mult = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
            "kB": 1000, "KB": 1000, "MB": 10**6, "GB": 10**9}[m.group(2)]
    return float(m.group(1)) * mult


def test_stats_no_stream(daemon):
    n = name()
    daemon.run_d("--name", n, "--memory", "64m", IMAGE, "sh", "-c",
                 "sleep 1000 & sleep 1000 & while :; do :; done")
    running_pid(daemon, n)
    p = daemon.ok("stats", "--no-stream", "--format", "{{json .}}", n)
    s = json.loads(p.stdout)
    used, _, limit = s["MemUsage"].partition(" / ")
    assert parse_size(used) > 0, s
    assert parse_size(limit) == 64 << 20, s
    assert int(s["PIDs"]) >= 3, s
    assert float(s["CPUPerc"].rstrip("%")) > 0, s
    assert s["Name"] == n


def test_events_since_until(daemon):
    n = name()
    since = int(time.time()) - 1
    daemon.ok("run", "--rm", "--name", n, IMAGE, "true")
    time.sleep(1.1)
    until = int(time.time()) + 1
    p = daemon.ok("events", "--since", str(since), "--until", str(until), "--filter", f"container={n}",
                  "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}", timeout=30)
    actions = [line.split()[1] for line in p.stdout.splitlines()]
    assert all(line.split()[0] == "container" and line.split()[2] == n for line in p.stdout.splitlines())
    for a in ("create", "start", "die", "destroy"):
        assert a in actions, p.stdout
    assert actions.index("create") < actions.index("start") < actions.index("die") < actions.index("destroy")
    p = daemon.ok("events", "--since", str(since), "--until", str(until), "--filter", f"container={n}",
                  "--filter", "event=die", "--format", "{{json .}}", timeout=30)
    evs = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(evs) == 1 and evs[0]["Action"] == "die" and evs[0]["Actor"]["Attributes"]["exitCode"] == "0"


def test_events_since_epoch(daemon):
    n = name()
    daemon.ok("create", "--name", n, IMAGE, "true")
    until = str(int(time.time()) + 1)
    p = daemon.ok("events", "--since", "0", "--until", until, "--filter", f"container={n}",
                  "--format", "{{.Action}}", timeout=30)
    assert p.stdout.split() == ["create"]


# ---- restart policies -------------------------------------------------------------------------


def test_restart_on_failure_2(daemon):
    n = name()
    daemon.run_d("--name", n, "--restart", "on-failure:2", IMAGE, "sh", "-c", "echo run; exit 1")
    st = {}

    def done():
        nonlocal st
        c = daemon.inspect(n)
        st = c
        return c["RestartCount"] == 2 and c["State"]["Status"] == "exited"
    assert wait_for(done, 60, 0.2), st
    assert st["State"]["ExitCode"] == 1
    time.sleep(2)  # no third start
    c = daemon.inspect(n)
    assert c["RestartCount"] == 2 and c["State"]["Status"] == "exited"
    assert daemon.ok("logs", n).stdout == "run\nrun\nrun\n"


def test_restart_always_then_stop(daemon):
    n = name()
    daemon.run_d("--name", n, "--restart", "always", IMAGE, "sh", "-c", "sleep 0.3; exit 2")
    assert wait_for(lambda: daemon.inspect(n)["RestartCount"] >= 1, 60, 0.2), daemon.inspect(n)
    daemon.ok("stop", "-t", "1", n)
    c = daemon.inspect(n)
    assert c["State"]["Status"] == "exited"
    count = c["RestartCount"]
    time.sleep(2)  # the policy must not bring it back
    c = daemon.inspect(n)
    assert c["State"]["Status"] == "exited" and c["RestartCount"] == count, c["State"]
    # a stopped always-container runs again on docker start, and the policy is back
    daemon.ok("start", n)
    first = daemon.inspect(n)["State"]["StartedAt"]
    assert wait_for(lambda: daemon.inspect(n)["State"]["StartedAt"] != first, 60, 0.2)


def test_restart_backoff_stop_and_kill(daemon):
    """A stop or kill while the policy waits out its back-off ends the loop."""
    for verb in ("stop", "kill"):
        n = name()
        daemon.run_d("--name", n, "--restart", "always", IMAGE, "sh", "-c", "exit 3")
        # after 6 restarts the back-off is 6.4 s: long enough to catch even on a
        # loaded machine (a kill that reaches a running container is restarted,
        # as docker does)
        assert wait_for(lambda: daemon.inspect(n)["RestartCount"] >= 6 and
                        daemon.inspect(n)["State"]["Status"] == "restarting", 60, 0.05), daemon.inspect(n)["State"]
        st = daemon.inspect(n)["State"]
        assert st["Restarting"] is True and st["Running"] is True and st["Pid"] == 0, st
        p = daemon.docker("exec", n, "true")
        assert p.returncode != 0 and "is restarting" in p.stderr, p.stderr
        daemon.ok(verb, n)
        c = daemon.inspect(n)
        assert c["State"]["Status"] == "exited" and c["State"]["Restarting"] is False, c["State"]
        count = c["RestartCount"]
        time.sleep(3)
        c = daemon.inspect(n)
        assert c["State"]["Status"] == "exited" and c["RestartCount"] == count, c["State"]
        daemon.ok("rm", n)


# ---- --init ---------------------------------------------------------------------------------------


def test_init(daemon):
    p = daemon.ok("run", "--rm", "--init", IMAGE, "ps", "-o", "pid,ppid,comm")
    rows = [line.split() for line in p.stdout.splitlines()[1:]]
    by_pid = {r[0]: r for r in rows}
    assert by_pid["1"][2] in ("docker-init", "tini", "tini-static", "catatonit"), p.stdout
    ps = [r for r in rows if r[2] == "ps"]
    assert ps and ps[0][1] == "1", p.stdout
    c = name()
    daemon.run_d("--name", c, "--init", IMAGE, "sh", "-c", "(sleep 0.2 &); exec sleep 100")
    assert daemon.inspect(c)["HostConfig"]["Init"] is True

    def zombies(ref):
        out = daemon.ok("exec", ref, "ps", "-o", "stat,comm").stdout
        return [line for line in out.splitlines()[1:] if line.split()[0].startswith("Z")]
    time.sleep(0.6)
    assert wait_for(lambda: not zombies(c), 5), "the init left a zombie"
    # without --init the orphan stays a zombie of the program (pid 1)
    z = name()
    daemon.run_d("--name", z, IMAGE, "sh", "-c", "(sleep 0.2 &); exec sleep 100")
    assert wait_for(lambda: zombies(z), 10), "no zombie without --init: the test shows nothing"


# ---- security from inside -----------------------------------------------------------------------


def inside_status(daemon, *args):
    p = daemon.ok("run", "--rm", *args, IMAGE, "cat", "/proc/self/status")
    return status_fields(p.stdout)


def test_hardened_defaults(daemon):
    st = inside_status(daemon)
    assert int(st["CapEff"], 16) == harness.cap_mask(DEFAULT_CAPS)
    assert int(st["CapBnd"], 16) == harness.cap_mask(DEFAULT_CAPS)
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    p = daemon.ok("run", "--rm", IMAGE, "cat", "/proc/mounts")
    mounts = {line.split()[1]: line.split()[3].split(",") for line in p.stdout.splitlines()}
    for ro in ("/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"):
        if not os.path.exists(ro):  # /proc/sysrq-trigger needs CONFIG_MAGIC_SYSRQ
            continue
        assert ro in mounts and "ro" in mounts[ro], (ro, p.stdout)
    for masked in ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                   "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"):
        if os.path.exists(masked):
            assert masked in mounts, (masked, p.stdout)
    p = daemon.ok("run", "--rm", IMAGE, "sh", "-c", "cat /proc/keys /proc/timer_list; ls /sys/firmware")
    assert p.stdout == ""
    p = daemon.docker("run", "--rm", IMAGE, "sh", "-c", "echo 1 > /proc/sys/vm/drop_caches")
    assert p.returncode != 0 and "Read-only file system" in p.stderr
    # seccomp refuses what the profile does not allow (unshare of a user ns without CAP_SYS_ADMIN)
    p = daemon.docker("run", "--rm", IMAGE, "unshare", "-U", "true")
    assert p.returncode != 0


def host_bounding_set():
    with open("/proc/self/status") as f:
        return int(status_fields(f.read())["CapBnd"], 16)


def test_privileged(daemon):
    st = inside_status(daemon, "--privileged")
    assert int(st["CapEff"], 16) == host_bounding_set()
    assert st["NoNewPrivs"] == "0"
    assert st["Seccomp"] == "0"
    p = daemon.ok("run", "--rm", "--privileged", IMAGE, "cat", "/proc/mounts")
    mounts = {line.split()[1]: line.split()[3].split(",") for line in p.stdout.splitlines()}
    assert "/proc/keys" not in mounts and "/sys/firmware" not in mounts
    assert "/proc/sys" not in mounts or "rw" in mounts["/proc/sys"]


def test_cap_add_drop(daemon):
    st = inside_status(daemon, "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN")
    want = (harness.cap_mask(DEFAULT_CAPS) | harness.cap_mask(["CAP_NET_ADMIN"])) & ~harness.cap_mask(["CAP_CHOWN"])
    assert int(st["CapEff"], 16) == want
    p = daemon.docker("run", "--rm", "--cap-drop", "CHOWN", IMAGE, "chown", "1000", "/tmp")
    assert p.returncode != 0 and "Operation not permitted" in p.stderr
    p = daemon.docker("run", "--rm", "--cap-add", "NET_ADMIN", "--network", "none", IMAGE,
                      "ip", "link", "set", "lo", "down")
    assert p.returncode == 0, p.stderr
    st = inside_status(daemon, "--cap-drop", "ALL")
    assert int(st["CapEff"], 16) == 0


def test_seccomp_unconfined(daemon):
    st = inside_status(daemon, "--security-opt", "seccomp=unconfined")
    assert st["Seccomp"] == "0"
    assert st["NoNewPrivs"] == "1"
    assert int(st["CapEff"], 16) == harness.cap_mask(DEFAULT_CAPS)


def test_read_only(daemon):
    p = daemon.docker("run", "--rm", "--read-only", IMAGE, "touch", "/x")
    assert p.returncode != 0 and "Read-only file system" in p.stderr
    p = daemon.ok("run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /dev/shm/ok && echo dev-writable")
    assert p.stdout == "dev-writable\n"
    p = daemon.ok("run", "--rm", IMAGE, "sh", "-c", "touch /x && echo rw")
    assert p.stdout == "rw\n"


# ---- resources on the host --------------------------------------------------------------------


def test_resources_in_cgroup(daemon):
    n = name()
    cid = daemon.run_d("--name", n, "--memory", "64m", "--pids-limit", "50", "--cpus", "1.5",
                       IMAGE, "sleep", "100")
    pid = running_pid(daemon, n)
    mem = cgroup_file(pid, "memory", "memory.limit_in_bytes")
    assert f"/moat/{cid}/" in mem
    assert int(read(mem)) == 64 << 20
    assert int(read(cgroup_file(pid, "pids", "pids.max"))) == 50
    quota = int(read(cgroup_file(pid, "cpu", "cpu.cfs_quota_us")))
    period = int(read(cgroup_file(pid, "cpu", "cpu.cfs_period_us")))
    assert quota == period * 3 // 2
    hc = daemon.inspect(n)["HostConfig"]
    assert hc["Memory"] == 64 << 20 and hc["PidsLimit"] == 50 and hc["NanoCpus"] == 1_500_000_000
    # the pids limit holds inside
    p = daemon.docker("exec", n, "sh", "-c", "for i in $(seq 60); do sleep 5 & done; wait")
    assert "can't fork" in p.stderr or "Resource temporarily unavailable" in p.stderr, p


# ---- namespaces ---------------------------------------------------------------------------------


def net_devs(text):
    return sorted(line.split(":")[0].strip() for line in text.splitlines()[2:] if ":" in line)


def test_network_none_and_host(daemon):
    p = daemon.ok("run", "--rm", "--network", "none", IMAGE, "cat", "/proc/net/dev")
    assert net_devs(p.stdout) == ["lo"]
    with open("/proc/net/dev") as f:
        host = net_devs(f.read())
    p = daemon.ok("run", "--rm", "--network", "host", IMAGE, "cat", "/proc/net/dev")
    assert net_devs(p.stdout) == host
    n = name()
    daemon.run_d("--name", n, "--network", "host", IMAGE, "sleep", "100")
    pid = running_pid(daemon, n)
    assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    assert daemon.inspect(n)["HostConfig"]["NetworkMode"] == "host"


def test_pid_host(daemon):
    me = os.getpid()
    p = daemon.ok("run", "--rm", "--pid", "host", IMAGE, "sh", "-c", f"test -d /proc/{me} && echo sees-host")
    assert p.stdout == "sees-host\n"
    p = daemon.docker("run", "--rm", IMAGE, "sh", "-c", f"test -d /proc/{me} && echo sees-host")
    assert p.stdout == ""


def shm_mounts(data_root):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if f" {data_root}/containers/" in line and "/shm " in line]


def test_ipc_and_pid_of_another_container(daemon):
    """docker's --ipc container:<donor> and --pid container:<donor>: the same
    namespaces, and the donor's /dev/shm when it is shareable (a tmpfs the
    daemon mounts on the host while it runs, of its --shm-size); a private
    donor is refused with docker's hint."""
    private, donor = name(), name()
    daemon.run_d("--name", private, IMAGE, "sleep", "100")
    p = daemon.docker("run", "--rm", "--ipc", f"container:{private}", IMAGE, "true")
    assert p.returncode == 125 and "non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in p.stderr, \
        p.stderr
    daemon.run_d("--name", donor, "--ipc", "shareable", "--shm-size", "16m", IMAGE, "sh", "-c",
                 "echo from-donor > /dev/shm/x; sleep 100")
    assert daemon.inspect(donor)["HostConfig"]["IpcMode"] == "shareable"
    assert wait_for(lambda: daemon.docker("exec", donor, "cat", "/dev/shm/x").stdout == "from-donor\n")
    assert len(shm_mounts(daemon.data)) == 1, shm_mounts(daemon.data)
    pid = running_pid(daemon, donor)
    p = daemon.ok("run", "--rm", "--ipc", f"container:{donor}", "--pid", f"container:{donor}", IMAGE, "sh", "-c",
                  "cat /dev/shm/x; df -k /dev/shm | tail -1; readlink /proc/self/ns/ipc; readlink /proc/1/exe")
    lines = p.stdout.splitlines()
    assert lines[0] == "from-donor", p.stdout
    assert lines[1].split()[1] == "16384", p.stdout
    assert lines[2] == os.readlink(f"/proc/{pid}/ns/ipc"), p.stdout
    assert lines[3].endswith("sleep") or "busybox" in lines[3], p.stdout
    # stopped, the donor's tmpfs is unmounted; started again, mounted again
    daemon.ok("stop", "-t", "0", donor)
    assert wait_for(lambda: shm_mounts(daemon.data) == []), shm_mounts(daemon.data)
    daemon.ok("start", donor)
    assert len(shm_mounts(daemon.data)) == 1
    daemon.ok("rm", "-f", donor, private)
    assert wait_for(lambda: shm_mounts(daemon.data) == []), shm_mounts(daemon.data)


def test_uts_and_network_host_take_the_hosts_name(daemon):
    """--uts host and --network host: the host's name, found again at each
    start (a restart works; inspect keeps no name of the container's own
    for --uts host)."""
    me = socket.gethostname()
    assert daemon.ok("run", "--rm", "--uts", "host", IMAGE, "hostname").stdout == me + "\n"
    assert daemon.ok("run", "--rm", "--network", "host", IMAGE, "hostname").stdout == me + "\n"
    n = name()
    daemon.run_d("--name", n, "--uts", "host", IMAGE, "sleep", "100")
    assert os.readlink(f"/proc/{running_pid(daemon, n)}/ns/uts") == os.readlink("/proc/self/ns/uts")
    daemon.ok("restart", "-t", "0", n)
    assert daemon.ok("exec", n, "hostname").stdout == me + "\n"
    assert daemon.inspect(n)["Config"]["Hostname"] == ""
    p = daemon.docker("run", "--rm", "--uts", "host", "--hostname", "x", IMAGE, "true")
    assert p.returncode == 125 and "conflicting options: hostname and the UTS mode" in p.stderr, p.stderr


def test_add_host_and_dns(daemon):
    """--add-host lines in /etc/hosts and --dns, --dns-search, --dns-option in
    /etc/resolv.conf, replacing the host's lines of each kind."""
    p = daemon.ok("run", "--rm", "--add-host", "db:10.1.2.3", "--add-host", "v6=fe80::1", "--dns", "9.9.9.9",
                  "--dns-search", "example.org", "--dns-option", "ndots:3", IMAGE, "sh", "-c",
                  "cat /etc/hosts; echo --; cat /etc/resolv.conf")
    hosts, resolv = p.stdout.split("--\n")
    assert "10.1.2.3\tdb\n" in hosts and "fe80::1\tv6\n" in hosts, hosts
    lines = resolv.splitlines()
    assert [x for x in lines if x.startswith("nameserver")] == ["nameserver 9.9.9.9"], resolv
    assert "search example.org" in lines and "options ndots:3" in lines, resolv
    p = daemon.docker("run", "--rm", "--add-host", "gw:host-gateway", IMAGE, "true")
    assert p.returncode == 125 and "host-gateway" in p.stderr, p.stderr


# ---- process settings -----------------------------------------------------------------------------


def test_network_none_has_loopback(daemon):
    """docker's --network none: no interface but lo, and lo up, so a program
    reaches itself on 127.0.0.1."""
    p = daemon.ok("run", "--rm", "--network", "none", IMAGE, "sh", "-c",
                  "ls /sys/class/net; cat /sys/class/net/lo/flags; "
                  "nc -l -p 5555 -e echo reached & sleep 0.3; nc 127.0.0.1 5555 </dev/null")
    lines = p.stdout.split()
    assert lines[0] == "lo" and int(lines[1], 16) & 0x1 and "reached" in lines, p.stdout


def test_config_env_is_the_merge_not_the_process_env(daemon):
    """docker's inspect shows Config.Env as the image's merged with -e;
    HOSTNAME, HOME and TERM are added to the process only."""
    cid = daemon.ok("run", "-d", "-t", "-e", "K=V", IMAGE, "sleep", "100").stdout.strip()
    try:
        env = daemon.inspect(cid)["Config"]["Env"]
        assert "K=V" in env and any(e.startswith("PATH=") for e in env), env
        assert not [e for e in env if e.split("=", 1)[0] in ("HOSTNAME", "HOME", "TERM")], env
        proc = daemon.ok("exec", cid, "env").stdout.split()
        assert f"HOSTNAME={cid[:12]}" in proc and "HOME=/root" in proc and "TERM=xterm" in proc, proc
        # a restart does not fold them in either
        daemon.ok("restart", "-t", "0", cid)
        env2 = daemon.inspect(cid)["Config"]["Env"]
        assert env2 == env, (env, env2)
    finally:
        daemon.docker("rm", "-f", cid)


def test_env_workdir_user_entrypoint(daemon, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROM_FILE=yes\nSPACED=a b\n")
    p = daemon.ok("run", "--rm", "-e", "A=1", "--env-file", str(envfile), IMAGE, "env")
    env = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    assert env["A"] == "1" and env["FROM_FILE"] == "yes" and env["SPACED"] == "a b"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOSTNAME"]
    assert daemon.ok("run", "--rm", "-w", "/tmp", IMAGE, "pwd").stdout == "/tmp\n"
    assert daemon.ok("run", "--rm", "-w", "/made/here", IMAGE, "pwd").stdout == "/made/here\n"
    p = daemon.ok("run", "--rm", "-u", "nobody", IMAGE, "id")
    assert p.stdout.startswith("uid=65534(nobody) gid=65534(nogroup)")
    p = daemon.ok("run", "--rm", "-u", "1000:100", IMAGE, "id", "-u")
    assert p.stdout == "1000\n"
    st = inside_status(daemon, "-u", "nobody")
    assert int(st["CapEff"], 16) == 0
    p = daemon.ok("run", "--rm", "--entrypoint", "/bin/echo", IMAGE, "hello", "there")
    assert p.stdout == "hello there\n"
    p = daemon.ok("run", "--rm", "--entrypoint", "sh", IMAGE, "-c", "echo $0")
    assert p.stdout == "sh\n"


def test_labels_and_ps_filters(daemon):
    base = name()
    daemon.ok("create", "--name", base + "-1", "--label", "tier=web", "--label", "dtest=" + base, IMAGE, "true")
    daemon.ok("create", "--name", base + "-2", "--label", "tier=db", "--label", "dtest=" + base, IMAGE, "true")
    def names(*filters):
        args = []
        for f in filters:
            args += ["--filter", f]
        return sorted(daemon.ok("ps", "-a", *args, "--format", "{{.Names}}").stdout.split())
    assert names("label=dtest=" + base) == [base + "-1", base + "-2"]
    assert names("label=dtest=" + base, "label=tier=web") == [base + "-1"]
    assert names("label=dtest=" + base, "label=tier") == [base + "-1", base + "-2"]
    assert names("label=tier=none") == []
    assert daemon.ok("inspect", "-f", "{{.Config.Labels.tier}}", base + "-2").stdout.strip() == "db"
    fmt = daemon.ok("ps", "-a", "--filter", "name=" + base + "-1", "--format", '{{.Label "tier"}}').stdout.strip()
    assert fmt == "web"
