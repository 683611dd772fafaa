"""process.terminal with --console-socket: the pty master arrives by SCM_RIGHTS."""

import os
import select
import socket
import time

import pytest

from harness import parse_json, wait_for


@pytest.fixture
def console_socket(env):
    path = env.path("console.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    env.on_cleanup(s.close)
    return s, path


def receive_master(sock):
    sock.settimeout(30)
    conn, _ = sock.accept()
    with conn:
        msg, fds, flags, addr = socket.recv_fds(conn, 4096, 4)
    assert len(fds) == 1, f"expected one fd, got {fds}"
    return fds[0]


def read_all(fd, timeout=30):
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


def test_console_socket_receives_pty_master(env, console_socket):
    sock, path = console_socket
    c = env.container(["/bin/payload", "info"], {
        "process": {"terminal": True, "consoleSize": {"height": 31, "width": 101}}})
    c.create("--console-socket", path)
    master = receive_master(sock)
    try:
        assert os.isatty(master)
        c.start()
        text = read_all(master)
    finally:
        os.close(master)
    info = parse_json(text)
    assert info["tty"]["stdin"] and info["tty"]["stdout"] and info["tty"]["stderr"]
    assert info["tty"]["name"].startswith("/dev/pts/")
    assert (info["tty"]["rows"], info["tty"]["cols"]) == (31, 101)
    assert wait_for(lambda: c.status() == "stopped")


def test_console_input_reaches_process(env, console_socket):
    sock, path = console_socket
    c = env.container(["/bin/sh", "-c", "read line; echo got:$line"],
                      {"process": {"terminal": True}})
    c.create("--console-socket", path)
    master = receive_master(sock)
    try:
        c.start()
        os.write(master, b"hello-tty\n")
        text = read_all(master)
    finally:
        os.close(master)
    assert "got:hello-tty" in text


def test_terminal_without_console_socket_fails_for_create(env):
    c = env.container(["/bin/payload", "true"], {"process": {"terminal": True}})
    r = c.create(check=False)
    assert r.returncode != 0


def test_console_socket_without_terminal_fails(env, console_socket):
    sock, path = console_socket
    c = env.container(["/bin/payload", "true"])
    r = c.create("--console-socket", path, check=False)
    assert r.returncode != 0


def test_console_socket_in_private_dir_with_user_namespace(env):
    # Managers keep the socket in a 0700 directory; the runtime must connect
    # from outside the container's user namespace (review finding).
    d = env.path("private")
    os.mkdir(d, 0o700)
    path = os.path.join(d, "console.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    env.on_cleanup(s.close)
    userns = {
        "process": {"terminal": True},
        "linux": {
            "namespaces": [{"type": t} for t in
                           ("pid", "network", "ipc", "uts", "mount", "cgroup", "user")],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        },
    }
    c = env.container(["/bin/payload", "info"], userns)
    c.create("--console-socket", path)
    master = receive_master(s)
    try:
        assert os.isatty(master)
        c.start()
        text = read_all(master)
    finally:
        os.close(master)
    info = parse_json(text)
    assert info["tty"]["stdin"] and info["tty"]["name"].startswith("/dev/pts/")
    assert info["uid_map"].split() == ["0", "100000", "65536"]
