"""What `docker create` makes before any start: volumes named, anonymous and
from --mount exist at create as docker's do, and a create whose volume
cannot be made leaves nothing behind."""

import json
import os
import socket
import subprocess
import time

from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, moat_path  # noqa: F401


def name(prefix="c"):
    return f"{prefix}-{os.urandom(4).hex()}"


def volumes(d):
    return set(d.ok("volume", "ls", "-q").stdout.split())


def mounts(d, ref):
    return json.loads(d.ok("inspect", "--type", "container", ref).stdout)[0]["Mounts"]


def container_dirs(d):
    return {e for e in os.listdir(os.path.join(d.data, "containers")) if len(e) == 64}


def test_named_volume_exists_after_create(daemon):
    n, v = name(), name("vol")
    daemon.ok("create", "--name", n, "-v", f"{v}:/data", IMAGE, "true")
    assert v in volumes(daemon)
    m = mounts(daemon, n)
    assert [(x["Type"], x["Name"], x["Destination"]) for x in m] == [("volume", v, "/data")], m
    # a named volume outlives rm -v
    daemon.ok("rm", "-v", n)
    assert v in volumes(daemon)
    daemon.ok("volume", "rm", v)


def test_anonymous_volume_made_at_create_kept_by_start(daemon):
    n = name()
    before = volumes(daemon)
    daemon.ok("create", "--name", n, "-v", "/data", IMAGE, "sh", "-c", "echo hi > /data/f")
    made = volumes(daemon) - before
    assert len(made) == 1, made
    anon = made.pop()
    assert [x["Name"] for x in mounts(daemon, n)] == [anon]
    daemon.ok("start", "-a", n)
    assert volumes(daemon) - before == {anon}
    assert [x["Name"] for x in mounts(daemon, n)] == [anon]
    daemon.ok("rm", "-v", n)
    assert anon not in volumes(daemon)


def test_failed_volume_leaves_nothing(daemon):
    n, v = name(), name("vol")
    before_vols, before_dirs = volumes(daemon), container_dirs(daemon)
    p = daemon.docker("create", "--name", n, "-v", "/anon",
                      "--mount", f"type=volume,source={v},target=/x,volume-opt=bogus=1", IMAGE, "true")
    assert p.returncode != 0
    assert 'invalid option: "bogus"' in p.stderr, p.stderr
    assert daemon.docker("inspect", "--type", "container", n).returncode != 0
    assert volumes(daemon) == before_vols
    assert container_dirs(daemon) == before_dirs


def test_create_defers_other_errors_to_start(daemon):
    """docker creates a container whose user the image lacks; its start fails."""
    n, v = name(), name("vol")
    daemon.ok("create", "--name", n, "-u", "nosuchuser", "-v", f"{v}:/data", IMAGE, "true")
    assert v in volumes(daemon)
    p = daemon.docker("start", n)
    assert p.returncode != 0 and "nosuchuser" in p.stderr, p.stderr
    daemon.ok("rm", n)
    daemon.ok("volume", "rm", v)


def root_mount_options(text):
    """The super options of the mount at / in a mountinfo text."""
    for line in text.splitlines():
        f = line.split()
        if f[4] == "/":
            return f[f.index("-") + 3].split(",")
    raise AssertionError(text)


def test_rm_container_layer_is_volatile(daemon):
    """--rm: the writable layer is thrown away, so overlayfs never syncs it;
    a container that is kept has a synced one."""
    p = daemon.ok("run", "--rm", IMAGE, "cat", "/proc/self/mountinfo")
    # "volatile" (or "fsync=volatile", as kernels since 6.x show it)
    assert any("volatile" in o for o in root_mount_options(p.stdout)), p.stdout
    n = name()
    p = daemon.ok("run", "--name", n, IMAGE, "cat", "/proc/self/mountinfo")
    assert not any("volatile" in o for o in root_mount_options(p.stdout)), p.stdout
    daemon.ok("rm", n)


def test_removal_leftovers_cleared_at_start(daemon):
    """A removed container's directory goes in the background; one a
    stopped daemon left behind is deleted when the daemon starts again."""
    cdir = os.path.join(daemon.data, "containers")
    left = os.path.join(cdir, ".removed-" + "ab" * 32)
    os.makedirs(os.path.join(left, "upper", "etc"))
    daemon.stop()
    daemon.start()
    for _ in range(100):
        if not os.path.exists(left):
            break
        time.sleep(0.1)
    assert not os.path.exists(left)
    n = name()
    cid = daemon.ok("create", "--name", n, IMAGE, "true").stdout.strip()
    daemon.ok("rm", n)
    # gone from the id's place at once; the background delete follows
    assert not os.path.exists(os.path.join(cdir, cid))
    for _ in range(100):
        if not any(e.endswith(cid) for e in os.listdir(cdir)):
            break
        time.sleep(0.1)
    assert not any(e.endswith(cid) for e in os.listdir(cdir))


def test_volumes_from(daemon, tmp_path):
    """--volumes-from: another container's volumes and binds, its modes or
    ro/rw; this container's own mounts win; a missing container fails create."""
    src, user, v = name(), name(), name("vol")
    bind = tmp_path / "b"
    bind.mkdir()
    (bind / "f").write_text("from the bind\n")
    daemon.ok("create", "--name", src, "-v", f"{v}:/data", "-v", f"{bind}:/b:ro", "-v", "/anon", IMAGE, "true")
    daemon.ok("run", "--rm", "-v", f"{v}:/data", IMAGE, "sh", "-c", "echo in the volume > /data/x")
    p = daemon.ok("run", "--rm", "--volumes-from", src, IMAGE, "sh", "-c",
                  "cat /data/x /b/f; touch /b/g 2>/dev/null && echo b-writable; ls -d /anon")
    assert p.stdout == "in the volume\nfrom the bind\n/anon\n", p.stdout
    p = daemon.ok("run", "--name", user, "--volumes-from", f"{src}:ro", IMAGE, "sh", "-c",
                  "touch /data/y 2>/dev/null || echo data-ro")
    assert p.stdout == "data-ro\n"
    m = {x["Destination"]: x for x in mounts(daemon, user)}
    assert m["/data"]["Name"] == v and m["/data"]["RW"] is False, m
    assert m["/b"]["Source"] == str(bind) and m["/anon"]["Type"] == "volume", m
    # this container's own mount of /data wins
    p = daemon.ok("run", "--rm", "--volumes-from", src, "--tmpfs", "/data", IMAGE, "ls", "/data")
    assert p.stdout == ""
    p = daemon.docker("create", "--volumes-from", "no-such-container", IMAGE, "true")
    assert p.returncode != 0 and "no-such-container" in p.stderr, p.stderr
    p = daemon.docker("create", "--volumes-from", f"{src}:rx", IMAGE, "true")
    assert p.returncode != 0 and "invalid mode" in p.stderr, p.stderr
    daemon.ok("rm", "-v", user)
    daemon.ok("rm", "-v", src)
    assert v in volumes(daemon)   # a named volume outlives them
    daemon.ok("volume", "rm", v)


def post(d, path, body):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(d.sock)
    data = json.dumps(body).encode()
    s.sendall((f"POST {path} HTTP/1.1\r\nHost: moat\r\nConnection: close\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data)
    buf = b""
    while chunk := s.recv(65536):
        buf += chunk
    s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest) if rest.strip() else None


def test_create_with_start_extension(daemon):
    """moat's `start=1`: the container made is running when the create
    answers, and says so; without it, it is only created."""
    n = name()
    status, reply = post(daemon, f"/v1.51/containers/create?name={n}&start=1",
                         {"Image": IMAGE, "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}})
    assert status == 201, reply
    assert reply["Started"] is True and reply["Id"], reply
    st = daemon.inspect(n)["State"]
    assert st["Running"] and st["Pid"] > 0, st
    with open(f"/proc/{st['Pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    events = daemon.ok("events", "--since", "0", "--until", str(int(time.time()) + 1),
                       "--filter", f"container={n}", "--format", "{{.Action}}").stdout.split()
    assert events[:2] == ["create", "start"], events
    daemon.ok("rm", "-f", n)

    n2 = name()
    status, reply = post(daemon, f"/v1.51/containers/create?name={n2}",
                         {"Image": IMAGE, "Cmd": ["sleep", "1000"], "HostConfig": {"NetworkMode": "none"}})
    assert status == 201 and "Started" not in reply, reply
    assert daemon.inspect(n2)["State"]["Status"] == "created"
    daemon.ok("rm", "-f", n2)


def test_create_with_start_failing_keeps_it_created(daemon):
    """A start that fails answers as the start would, and the container
    stays, created, with the start's exit code (127: no such program)."""
    n = name()
    status, reply = post(daemon, f"/v1.51/containers/create?name={n}&start=1",
                         {"Image": IMAGE, "Cmd": ["/no/such/program"], "HostConfig": {"NetworkMode": "none"}})
    assert status >= 400 and "no/such/program" in reply["message"], (status, reply)
    st = daemon.inspect(n)["State"]
    assert not st["Running"] and st["ExitCode"] == 127, st
    # the moat CLI reports it as docker's does: exit code 127
    p = subprocess.run([moat_path(), "-H", "unix://" + daemon.sock, "run", "-d", "--name", n + "-cli",
                        "--network", "none", IMAGE, "/no/such/program"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 127, (p.returncode, p.stderr)
    assert "no/such/program" in p.stderr and not p.stdout, (p.stdout, p.stderr)
    assert daemon.inspect(n + "-cli")["State"]["ExitCode"] == 127
    daemon.ok("rm", "-f", n, n + "-cli")
