"""-H fd://: the daemon serves a socket it was given, as systemd's socket
activation gives it (fd 3 with LISTEN_PID and LISTEN_FDS), and checks what
it was given."""

import os
import socket
import subprocess
import sys

import pytest

from daemon_fixture import MoatDaemon, demo_image_tar, new_daemon  # noqa: F401

# Puts the socket at fd 3 and sets LISTEN_* for the process it becomes, as an
# activator does; argv: the socket's fd, the fd count to announce, the command.
LAUNCHER = ("import os, sys\n"
            "fd, n = int(sys.argv[1]), sys.argv[2]\n"
            "if fd != 3:\n"
            "    os.dup2(fd, 3)\n"
            "    os.close(fd)\n"
            "os.environ['LISTEN_PID'] = str(os.getpid())\n"
            "os.environ['LISTEN_FDS'] = n\n"
            "os.execv(sys.argv[3], sys.argv[3:])\n")


def activated(d, sock, host="fd://", count="1"):
    """d's command line with -H host, started through the launcher with sock."""
    args = list(d.args)
    args[args.index("-H") + 1] = host
    d.args = [sys.executable, "-c", LAUNCHER, str(sock.fileno()), count, *args]
    d.pass_fds = (sock.fileno(),)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def ppid_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(next(l.split()[1] for l in f if l.startswith("PPid:")))
    except (OSError, StopIteration):
        return 0


@pytest.fixture
def unix_listener(tmp_path):
    path = str(tmp_path / "activated.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    os.set_inheritable(s.fileno(), True)
    yield path, s
    s.close()


def test_fd_activation_serves_the_socket(session_tmp, demo_image_tar, unix_listener):  # noqa: F811
    path, s = unix_listener
    d = new_daemon(session_tmp, demo_image_tar)
    activated(d, s)
    d.sock = path
    d.start()
    try:
        s.close()   # the daemon holds its own copy
        assert d.ok("version", "--format", "{{.Server.Version}}").stdout.strip()
        assert d.ok("run", "--rm", "localhost/moat-demo:latest", "echo", "activated").stdout == "activated\n"
        # the daemon's children (a container's monitor) do not inherit the variables
        cid = d.run_d("localhost/moat-demo:latest", "sleep", "1000")
        # the monitor is the parent of the container's init; it was forked by
        # the zygote, so check both
        init = d.inspect(cid)["State"]["Pid"]
        monitor = ppid_of(init)
        zygote = [p for p in os.listdir("/proc") if p.isdigit() and ppid_of(p) == d.pid and
                  cmdline(p).split(b"\0")[1:2] == [b"zygote"] and int(p) != monitor]
        assert monitor > 1 and zygote
        for pid in [monitor, *zygote]:
            with open(f"/proc/{pid}/environ", "rb") as f:
                assert b"LISTEN_" not in f.read()
        d.ok("rm", "-f", cid)
    finally:
        problems = d.cleanup()
    # the daemon does not remove a socket it did not make
    assert os.path.exists(path)
    assert not [p for p in problems if "activated.sock" not in p], problems


def test_fd_activation_checks_what_it_got(session_tmp, tmp_path):
    cases = []
    # a TCP socket on loopback: refused (TCP needs mutual TLS)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    t.listen(1)
    os.set_inheritable(t.fileno(), True)
    cases.append((t, "fd://", "1", "is not a unix stream socket"))
    # a unix socket that does not listen
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.bind(str(tmp_path / "quiet.sock"))
    os.set_inheritable(u.fileno(), True)
    cases.append((u, "fd://", "1", "is not listening"))
    # an fd that was not passed
    cases.append((u, "fd://7", "1", "fd 7 was not passed"))
    try:
        for sock, host, count, want in cases:
            d = new_daemon(session_tmp, None)
            activated(d, sock, host, count)
            try:
                p = subprocess.run(d.args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                                   pass_fds=d.pass_fds)
                assert p.returncode != 0 and want in p.stderr, (host, p.stderr)
                assert not os.path.exists(d.pidfile)
            finally:
                d.cleanup()
    finally:
        t.close()
        u.close()
