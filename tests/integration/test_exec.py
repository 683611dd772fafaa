"""exec: a new process in a running container, checked from inside (the
payload's `info`) and from the host (/proc of the exec'd process)."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from harness import (DEFAULT_CAPS, TIMEOUT, cap_mask, is_moat, parse_json,
                     parse_json_lines, pid_alive, reap_orphans, wait_for)

NAMESPACES = ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user")


def ns_of(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def running(env, overrides=None, args=("/bin/payload", "sleep", "3600")):
    """A started container whose init sleeps."""
    c = env.container(list(args), overrides)
    c.create()
    c.start()
    assert c.status() == "running"
    return c


def exec_(c, *args, **kw):
    return c.rt.cmd("exec", *args, **kw)


def exec_detached(c, *args):
    """exec -d: the process keeps the runtime's stdio, so that goes to files
    (a pipe would stay open in it and hang the caller)."""
    out, err = c.env.path("detached.out"), c.env.path("detached.err")
    with open(out, "ab") as o, open(err, "ab") as e:
        r = subprocess.run(c.rt.argv("exec", "--detach", *args), stdin=subprocess.DEVNULL,
                           stdout=o, stderr=e, timeout=TIMEOUT)
    with open(err, errors="replace") as f:
        r.stderr = f.read()
    return r


def exec_info(c, *flags, args=("info",)):
    r = exec_(c, *flags, c.id, "/bin/payload", *args)
    assert r.returncode == 0, f"exec exited {r.returncode}: {r.stderr!r} {r.stdout!r}"
    return parse_json(r.stdout)


def read_pid_file(path):
    with open(path) as f:
        return int(f.read().strip())


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split()[1:]
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def same_file(a, b):
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_for(lambda: not pid_alive(pid), 5)
    reap_orphans()


# ---- what the process sees ----------------------------------------------------

def test_exec_joins_every_namespace(env):
    c = running(env)
    info = exec_info(c)
    for kind in NAMESPACES:
        assert info["ns"][kind] == ns_of(c.init_pid, kind), kind
    assert info["hostname"] == "moat-test"
    # a fresh pid in the container's pid namespace, not the init's
    assert info["pid"] > 1


def test_exec_sees_the_containers_processes(env):
    c = running(env)
    r = exec_(c, c.id, "/bin/ps", "-o", "pid,args")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # pid 1 is the init (payload sleep); the host's processes are invisible
    assert any(l.split()[0] == "1" and "payload sleep" in l for l in lines[1:]), r.stdout
    assert len(lines) <= 4, r.stdout


def test_exec_inherits_the_process_spec(env):
    c = running(env, {"process": {"env": ["PATH=/bin:/usr/bin", "FOO=from-config"],
                                  "cwd": "/tmp", "user": {"uid": 1000, "gid": 1000,
                                                          "additionalGids": [100]}}})
    info = exec_info(c)
    assert (info["uid"], info["euid"], info["gid"]) == (1000, 1000, 1000)
    assert 100 in info["groups"]
    assert "FOO=from-config" in info["env"]
    assert "PATH=/bin:/usr/bin" in info["env"]
    assert info["cwd"] == "/tmp"
    assert int(info["CapEff"], 16) == 0  # a non-root user without ambient caps
    assert int(info["CapBnd"], 16) == cap_mask(DEFAULT_CAPS)
    assert info["NoNewPrivs"] == "1"
    assert info["rlimits"]["RLIMIT_NOFILE"] == {"soft": 1024, "hard": 1024}
    # nothing of the runtime's own environment
    assert not any(e.startswith(("PYTEST", "MOAT_")) for e in info["env"])


def test_exec_capabilities_as_root(env):
    c = running(env)
    info = exec_info(c)
    assert info["uid"] == 0
    assert int(info["CapEff"], 16) == cap_mask(DEFAULT_CAPS)
    assert int(info["CapPrm"], 16) == cap_mask(DEFAULT_CAPS)
    assert int(info["CapBnd"], 16) == cap_mask(DEFAULT_CAPS)


def test_exec_joins_the_cgroup(env):
    c = running(env)
    pidfile = env.path("exec.pid")
    r = exec_detached(c, "--pid-file", pidfile, c.id, "/bin/payload", "sleep", "3600")
    assert r.returncode == 0, r.stderr
    pid = read_pid_file(pidfile)
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            mine = f.read()
        with open(f"/proc/{c.init_pid}/cgroup") as f:
            init = f.read()
        assert mine == init
        assert c.id in mine
    finally:
        kill_and_reap(pid)


def test_exec_cgroup_seen_from_inside(env):
    c = running(env)
    info = exec_info(c)
    # inside its cgroup namespace, the container's cgroup is the root
    for line in info["cgroup"].splitlines():
        assert line.endswith(":/"), info["cgroup"]


def test_exec_exit_status_propagates(env):
    c = running(env)
    r = exec_(c, c.id, "/bin/payload", "exit", "7")
    assert r.returncode == 7, r.stderr
    r = exec_(c, c.id, "/bin/payload", "true")
    assert r.returncode == 0, r.stderr
    # killed by a signal: 128 + signal, as a shell reports it
    r = exec_(c, c.id, "/bin/sh", "-c", "kill -KILL $$")
    assert r.returncode == 128 + signal.SIGKILL, r.stderr


def test_exec_stdio_passes_through(env):
    c = running(env)
    r = exec_(c, c.id, "/bin/sh", "-c", "read x; echo got:$x; echo err >&2", input="hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "got:hello\n"
    assert "err" in r.stderr


def test_exec_forwards_signals(env):
    c = running(env)
    p = c.rt.popen("exec", c.id, "/bin/payload", "sigwait", stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
    try:
        ready = p.stdout.readline()
        assert json.loads(ready) == {"ready": True}
        os.kill(p.pid, signal.SIGUSR1)
        out, err = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert parse_json_lines(out.decode())[0]["signal"] == signal.SIGUSR1


def test_exec_does_not_stop_the_container(env):
    c = running(env)
    assert exec_(c, c.id, "/bin/payload", "true").returncode == 0
    assert c.status() == "running"
    assert pid_alive(c.init_pid)


# ---- overrides ---------------------------------------------------------------

def test_exec_user_override(env):
    c = running(env)
    info = exec_info(c, "--user", "1000:1000")
    assert (info["uid"], info["gid"]) == (1000, 1000)
    info = exec_info(c, "-u", "65534")
    assert info["uid"] == 65534
    assert info["gid"] == 0  # the container's gid stays
    # (runc refuses the short and long spelling of one flag together)
    info = exec_info(c, "-u", "1000:1000", "-g", "100", "-g", "5")
    assert sorted(info["groups"]) in ([5, 100], [5, 100, 1000])


def test_exec_env_override(env):
    c = running(env)
    info = exec_info(c, "--env", "FOO=bar", "--env", "TERM=dumb", "--env", "EMPTY=")
    assert "FOO=bar" in info["env"]
    assert "EMPTY=" in info["env"]
    assert "TERM=dumb" in info["env"]
    assert "TERM=xterm" not in info["env"]  # replaced, not duplicated
    assert any(e.startswith("PATH=") for e in info["env"])


def test_exec_cwd_override(env):
    c = running(env)
    info = exec_info(c, "--cwd", "/etc")
    assert info["cwd"] == "/etc"


def test_exec_missing_cwd_fails(env):
    c = running(env)
    r = exec_(c, "--cwd", "/no/such/dir", c.id, "/bin/payload", "true")
    assert r.returncode != 0
    if is_moat():
        assert "/no/such/dir" in r.stderr


def test_exec_cap_added_to_every_set(env):
    c = running(env)
    info = exec_info(c, "-c", "CAP_CHOWN", "-c", "CAP_SYS_CHROOT")
    added = cap_mask(["CAP_CHOWN", "CAP_SYS_CHROOT"])
    # runc 1.1 leaves the inheritable (and so the ambient) set alone
    sets = ("CapEff", "CapPrm", "CapBnd") + (("CapInh", "CapAmb") if is_moat() else ())
    for k in sets:
        assert int(info[k], 16) & added == added, (k, info[k])
    # the container's own set stays
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert int(info[k], 16) == cap_mask(DEFAULT_CAPS) | added, (k, info[k])


def test_exec_no_new_privs_flag(env):
    c = running(env, {"process": {"noNewPrivileges": False}})
    assert exec_info(c)["NoNewPrivs"] == "0"
    assert exec_info(c, "--no-new-privs")["NoNewPrivs"] == "1"


def test_exec_bad_user_fails(env):
    c = running(env)
    r = exec_(c, "--user", "nobody-by-name", c.id, "/bin/payload", "true")
    assert r.returncode != 0


# ---- --process -----------------------------------------------------------------

def test_exec_process_file(env):
    c = running(env)
    proc = {
        "terminal": False,
        "user": {"uid": 1000, "gid": 100},
        "args": ["/bin/payload", "info", "from-file"],
        "env": ["PATH=/bin", "ONLY=file"],
        "cwd": "/etc",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                         "permitted": ["CAP_KILL"]},
        "noNewPrivileges": True,
    }
    path = env.path("process.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    r = exec_(c, "--process", path, c.id)
    assert r.returncode == 0, r.stderr
    info = parse_json(r.stdout)
    assert info["argv"] == ["/bin/payload", "info", "from-file"]
    # the file's env replaces the container's (runc adds HOME when absent)
    assert [e for e in info["env"] if not e.startswith("HOME=")] == ["PATH=/bin", "ONLY=file"]
    assert (info["uid"], info["gid"]) == (1000, 100)
    assert info["cwd"] == "/etc"
    assert int(info["CapBnd"], 16) == cap_mask(["CAP_KILL"])
    for kind in NAMESPACES:
        assert info["ns"][kind] == ns_of(c.init_pid, kind)


def test_exec_process_file_invalid(env):
    c = running(env)
    path = env.path("process.json")
    with open(path, "w") as f:
        json.dump({"args": ["/bin/payload", "true"], "cwd": "relative/dir",
                   "user": {"uid": 0, "gid": 0}}, f)
    r = exec_(c, "--process", path, c.id)
    assert r.returncode != 0
    if is_moat():
        assert "cwd" in r.stderr and path in r.stderr, r.stderr
    with open(path, "w") as f:
        f.write("{not json")
    r = exec_(c, "--process", path, c.id)
    assert r.returncode != 0


# ---- detach, pid file ------------------------------------------------------------

def test_exec_detach_pid_file(env):
    c = running(env)
    pidfile = env.path("exec.pid")
    r = exec_detached(c, "--pid-file", pidfile, c.id, "/bin/payload", "sleep", "3600")
    assert r.returncode == 0, r.stderr
    pid = read_pid_file(pidfile)
    try:
        assert pid != c.init_pid
        assert pid_alive(pid)
        for kind in NAMESPACES:
            assert ns_of(pid, kind) == ns_of(c.init_pid, kind)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:3] == [b"/bin/payload", b"sleep", b"3600"]
        assert same_file(f"/proc/{pid}/root", f"/proc/{c.init_pid}/root")
        assert same_file(f"/proc/{pid}/cwd", f"/proc/{c.init_pid}/root")
        assert c.status() == "running"
    finally:
        kill_and_reap(pid)


def test_exec_foreground_pid_file(env):
    c = running(env)
    pidfile = env.path("fg.pid")
    r = exec_(c, "--pid-file", pidfile, c.id, "/bin/payload", "info")
    assert r.returncode == 0, r.stderr
    # the pid file names the host pid of the exec'd process; the payload
    # saw its own pid in the container's namespace
    host_pid = read_pid_file(pidfile)
    assert host_pid > 0 and host_pid != parse_json(r.stdout)["pid"]


# ---- terminals -------------------------------------------------------------------

@pytest.fixture
def console_socket(env):
    path = env.path("console.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    env.on_cleanup(s.close)
    return s, path


def receive_master(sock):
    sock.settimeout(TIMEOUT)
    conn, _ = sock.accept()
    with conn:
        msg, fds, flags, addr = socket.recv_fds(conn, 4096, 4)
    assert len(fds) == 1, f"expected one fd, got {fds}"
    return fds[0]


def read_all(fd, timeout=TIMEOUT):
    import select
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO once the slave side is gone
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


@pytest.mark.moat_only
def test_exec_tty_console_socket(env, console_socket):
    # runc 1.1 ignores --console-socket without --detach and relays through
    # the caller's /dev/tty instead
    sock, path = console_socket
    c = running(env)
    p = c.rt.popen("exec", "--tty", "--console-socket", path, c.id, "/bin/payload", "info",
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        master = receive_master(sock)
        try:
            assert os.isatty(master)
            text = read_all(master)
        finally:
            os.close(master)
        out, err = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    info = parse_json(text)
    assert info["tty"]["stdin"] and info["tty"]["stdout"] and info["tty"]["stderr"]
    assert info["tty"]["name"].startswith("/dev/pts/")
    assert info["ns"]["mnt"] == ns_of(c.init_pid, "mnt")


def test_exec_tty_detached_console_socket(env, console_socket):
    sock, path = console_socket
    c = running(env)
    pidfile = env.path("tty.pid")
    r = exec_detached(c, "-t", "--console-socket", path, "--pid-file", pidfile, c.id,
                      "/bin/sh", "-c", "read l; echo got:$l")
    assert r.returncode == 0, r.stderr
    pid = read_pid_file(pidfile)
    try:
        master = receive_master(sock)
        try:
            os.write(master, b"typed\n")
            text = read_all(master)
        finally:
            os.close(master)
    finally:
        # a detached process is reparented to our subreaper: reap it, or the
        # container's init cannot finish dying
        kill_and_reap(pid)
    assert "got:typed" in text


@pytest.mark.moat_only
def test_exec_tty_relayed_without_console_socket(env):
    # runc 1.1 needs a controlling terminal (/dev/tty) for this
    c = running(env)
    r = exec_(c, "--tty", c.id, "/bin/payload", "info")
    assert r.returncode == 0, r.stderr
    info = parse_json(r.stdout)
    assert info["tty"]["stdin"] and info["tty"]["stdout"]
    assert info["tty"]["name"].startswith("/dev/pts/")


def test_exec_tty_detached_without_console_socket_fails(env):
    c = running(env)
    r = exec_(c, "-t", "-d", c.id, "/bin/payload", "true")
    assert r.returncode != 0


def test_exec_console_socket_without_tty_fails(env, console_socket):
    sock, path = console_socket
    c = running(env)
    r = exec_(c, "--console-socket", path, c.id, "/bin/payload", "true")
    assert r.returncode != 0


# ---- descriptors ------------------------------------------------------------------

def test_exec_no_host_fds(env):
    c = running(env)
    leak_r, leak_w = os.pipe()
    try:
        # an fd the runtime inherits without close-on-exec must not reach
        # the container
        r = subprocess.run(c.rt.argv("exec", c.id, "/bin/payload", "fds"), pass_fds=(leak_w,),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=TIMEOUT)
    finally:
        os.close(leak_r)
        os.close(leak_w)
    assert r.returncode == 0, r.stderr
    fds = parse_json(r.stdout)["fds"]
    assert sorted(int(k) for k in fds) == [0, 1, 2], fds


def test_exec_preserve_fds(env):
    c = running(env)
    path = env.path("preserved")
    with open(path, "w") as f:
        f.write("x")
    # fd 3 of the runtime is the file (opened by a shell: fd 3 of this
    # process belongs to pytest)
    argv = c.rt.argv("exec", "--preserve-fds", "1", c.id, "/bin/payload", "fds")
    r = subprocess.run(["/bin/sh", "-c", 'exec "$@" 3<"$PRESERVED"', "sh", *argv],
                       env={**os.environ, "PRESERVED": path}, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    fds = parse_json(r.stdout)["fds"]
    assert sorted(int(k) for k in fds) == [0, 1, 2, 3], fds
    assert fds["3"].endswith("preserved")


# ---- container states and errors ----------------------------------------------------

def test_exec_into_stopped_container_fails(env):
    c = env.container(["/bin/payload", "true"])
    c.create()
    c.start()
    assert c.wait_status("stopped")
    r = exec_(c, c.id, "/bin/payload", "true")
    assert r.returncode != 0
    assert "not running" in r.stderr or "stopped" in r.stderr, r.stderr


def test_exec_into_created_container(env):
    c = env.container(["/bin/payload", "sleep", "3600"])
    c.create()
    assert c.status() == "created"
    info = exec_info(c)
    for kind in NAMESPACES:
        assert info["ns"][kind] == ns_of(c.init_pid, kind)
    assert c.status() == "created"


def test_exec_unknown_container_fails(env):
    r = env.rt.cmd("exec", "no-such-container", "/bin/true")
    assert r.returncode != 0
    assert "does not exist" in r.stderr or "not exist" in r.stderr


def test_exec_missing_program_fails(env):
    c = running(env)
    r = exec_(c, c.id, "/bin/no-such-program")
    assert r.returncode != 0
    if is_moat():
        assert "/bin/no-such-program" in r.stderr
    assert c.status() == "running"


def test_exec_requires_a_command(env):
    c = running(env)
    r = exec_(c, c.id)
    assert r.returncode != 0


def test_exec_command_flags_are_not_runtime_flags(env):
    c = running(env)
    r = exec_(c, c.id, "/bin/payload", "print", "-d", "--tty", "-e")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "-d --tty -e\n"


def test_exec_paused_container(env):
    c = running(env)
    r = c.rt.cmd("pause", c.id)
    if r.returncode != 0:
        pytest.skip(f"pause not available: {r.stderr.strip()}")
    try:
        assert c.status() == "paused"
        r = exec_(c, c.id, "/bin/payload", "true")
        assert r.returncode != 0
        assert "paused" in r.stderr
        # with --ignore-paused it joins the frozen cgroup and runs once resumed
        p = c.rt.popen("exec", "--ignore-paused", c.id, "/bin/payload", "exit", "3",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            c.rt.ok("resume", c.id)
            p.communicate(timeout=TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        assert p.returncode == 3
    finally:
        c.rt.cmd("resume", c.id)


# ---- other namespace set-ups ---------------------------------------------------------

USERNS = {
    "linux": {
        "namespaces": [{"type": t} for t in
                       ("pid", "network", "ipc", "uts", "mount", "cgroup", "user")],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    }
}


def test_exec_joins_user_namespace(env):
    c = running(env, USERNS)
    info = exec_info(c)
    assert info["ns"]["user"] == ns_of(c.init_pid, "user")
    assert info["ns"]["user"] != ns_of(os.getpid(), "user")
    assert info["uid_map"].split() == ["0", "100000", "65536"]
    assert info["uid"] == 0
    assert int(info["CapEff"], 16) == cap_mask(DEFAULT_CAPS)
    # from the host, an exec'd process runs as the mapped uid
    pidfile = env.path("u.pid")
    r = exec_detached(c, "--pid-file", pidfile, "-u", "1000:1000", c.id, "/bin/payload",
              "sleep", "3600")
    assert r.returncode == 0, r.stderr
    pid = read_pid_file(pidfile)
    try:
        assert status_field(pid, "Uid") == ["101000"] * 4
        assert status_field(pid, "Gid") == ["101000"] * 4
    finally:
        kill_and_reap(pid)


def test_exec_into_no_pivot_container(env):
    c = env.container(["/bin/payload", "sleep", "3600"])
    c.create("--no-pivot")
    c.start()
    pidfile = env.path("np.pid")
    r = exec_detached(c, "--pid-file", pidfile, "--cwd", "/etc", c.id, "/bin/payload", "sleep", "3600")
    assert r.returncode == 0, r.stderr
    pid = read_pid_file(pidfile)
    try:
        assert same_file(f"/proc/{pid}/root", f"/proc/{c.init_pid}/root")
        assert same_file(f"/proc/{pid}/cwd", os.path.join(env.rootfs, "etc"))
    finally:
        kill_and_reap(pid)
    info = exec_info(c)
    assert info["ns"]["mnt"] == ns_of(c.init_pid, "mnt")
    assert info["cwd"] == "/"


def test_exec_without_pid_namespace(env):
    ov = {"linux": {"namespaces": [{"type": t} for t in
                                   ("network", "ipc", "uts", "mount", "cgroup")]}}
    c = running(env, ov)
    info = exec_info(c)
    assert info["ns"]["pid"] == ns_of(os.getpid(), "pid")
    assert info["ns"]["mnt"] == ns_of(c.init_pid, "mnt")


@pytest.mark.moat_only
def test_exec_joins_time_namespace(env):
    ov = {"linux": {"namespaces": env.config()["linux"]["namespaces"] + [{"type": "time"}],
                    "timeOffsets": {"monotonic": {"secs": 3600, "nanosecs": 0}}}}
    c = running(env, ov)
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    info = exec_info(c, args=("clock",))
    assert info["monotonic"] >= before + 3600
    info = exec_info(c)
    assert info["ns"]["time"] == ns_of(c.init_pid, "time")


def test_exec_gets_the_containers_seccomp_filter(env):
    ov = {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [{"names": ["mknodat", "mknod"],
                                              "action": "SCMP_ACT_ERRNO"}]}}}
    init_info = env.run_payload(ov)
    if init_info["Seccomp"] != "2":
        pytest.skip("the runtime under test does not install seccomp filters yet")
    c = running(env, ov)
    info = exec_info(c)
    assert info["Seccomp"] == "2"


@pytest.mark.parametrize("n", range(3, 9))
def test_exec_cwd_through_proc_self_fd(env, n):
    # CVE-2024-21626 through exec: a cwd of /proc/self/fd/N must not land on
    # a host directory the runtime still had open while joining
    c = running(env)
    r = exec_(c, "--cwd", f"/proc/self/fd/{n}", c.id, "/bin/payload", "info")
    if r.returncode != 0:
        assert "cwd" in r.stderr, r.stderr
        return
    cwd = parse_json(r.stdout)["cwd"]
    assert cwd and cwd.startswith("/") and "unreachable" not in cwd, cwd
