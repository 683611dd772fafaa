"""`docker diff` (GET /containers/{id}/changes) and `moat diff` against
`moat daemon`: additions, modifications, deletions, an opaque directory
(a directory of the image removed and made again), symlinks, a stopped
container, an unknown one; and `docker exec --privileged`."""

import json
import os
import socket
import subprocess

from daemon_fixture import IMAGE, TIMEOUT, daemon, demo_image_tar, moat_daemon, moat_path  # noqa: F401


def name(prefix="diff"):
    return f"{prefix}-{os.urandom(4).hex()}"


def moat(d, *args):
    return subprocess.run([moat_path(), "-H", "unix://" + d.sock, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def diff_lines(d, ref):
    """docker diff's lines, checked to be moat diff's too."""
    p = d.ok("diff", ref)
    m = moat(d, "diff", ref)
    assert m.returncode == 0, m.stderr
    assert m.stdout == p.stdout
    return p.stdout.splitlines()


def api(d, method, path, body=None):
    """(status, decoded JSON body) of one API request."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(d.sock)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} /v1.47{path} HTTP/1.0\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    s.sendall(head.encode() + b"\r\n" + data)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    head, _, payload = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload) if payload.strip() else None


def api_changes(d, ref):
    status, doc = api(d, "GET", f"/containers/{ref}/changes")
    assert status == 200, doc
    return doc


def sh(d, ref, script):
    d.ok("exec", ref, "sh", "-c", script)


def ls(d, ref, path):
    return d.ok("exec", ref, "ls", "-A", path).stdout.split()


def test_fresh_container_has_no_changes(daemon):
    """The mount points the runtime makes (/etc/hosts, /etc/resolv.conf,
    ...) are docker's init layer, not the container's changes."""
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "1000")
    assert diff_lines(daemon, n) == []
    daemon.ok("run", "--name", n + "-b", IMAGE, "true")
    assert diff_lines(daemon, n + "-b") == []
    daemon.ok("rm", "-f", n, n + "-b")


def test_added_modified_deleted_and_symlinks(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "1000")
    assert "group" in ls(daemon, n, "/etc") and "passwd" in ls(daemon, n, "/etc")
    sh(daemon, n, "echo x > /newfile && mkdir -p /newdir/sub && echo y > /newdir/sub/f"
                  " && echo extra >> /etc/passwd && rm /etc/group"
                  " && ln -s /nowhere /tmp/dangling && ln -s /etc/passwd /tmp/to-passwd"
                  " && rm /bin/cat && ln -s busybox /bin/cat2")
    want = [
        "C /bin",
        "A /bin/cat2",
        "D /bin/cat",
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
        "A /newdir",
        "A /newdir/sub",
        "A /newdir/sub/f",
        "A /newfile",
        "C /tmp",
        "A /tmp/dangling",
        "A /tmp/to-passwd",
    ]
    got = diff_lines(daemon, n)
    assert sorted(got, key=lambda line: line[2:]) == got, "sorted by path"
    assert sorted(got) == sorted(want), got
    kinds = {c["Path"]: c["Kind"] for c in api_changes(daemon, n)}
    assert kinds["/newfile"] == 1 and kinds["/etc/passwd"] == 0 and kinds["/etc/group"] == 2, kinds
    daemon.ok("rm", "-f", n)


def test_opaque_directory(daemon):
    """rm -rf of an image directory and mkdir again: the directory is
    modified, every entry of the image's one is deleted, new ones added;
    a directory made again inside it hides the image's entries too."""
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "1000")
    before = ls(daemon, n, "/usr")
    assert "bin" in before, before
    usr_bin = ls(daemon, n, "/usr/bin")
    assert usr_bin
    sh(daemon, n, "rm -rf /usr && mkdir /usr && echo z > /usr/z && mkdir /usr/bin")
    want = ["C /usr", "A /usr/z", "C /usr/bin"]
    want += [f"D /usr/{e}" for e in before if e != "bin"]
    want += [f"D /usr/bin/{e}" for e in usr_bin]
    got = diff_lines(daemon, n)
    assert sorted(got) == sorted(want), got
    daemon.ok("rm", "-f", n)


def test_stopped_container(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sh", "-c", "echo x > /root/made && rm /etc/passwd && sleep 1000")
    daemon.ok("exec", n, "test", "-f", "/root/made")
    running = diff_lines(daemon, n)
    assert "A /root/made" in running and "D /etc/passwd" in running, running
    daemon.ok("stop", "-t", "1", n)
    assert diff_lines(daemon, n) == running
    daemon.ok("rm", n)


def test_unknown_container(daemon):
    p = daemon.docker("diff", "no-such-container-x")
    assert p.returncode == 1
    assert p.stderr.strip() == "Error response from daemon: No such container: no-such-container-x"
    m = moat(daemon, "diff", "no-such-container-x")
    assert m.returncode == 1
    assert m.stderr.strip() == p.stderr.strip()
    assert moat(daemon, "diff").returncode != 0



def test_too_deep_is_a_clear_error(daemon):
    n = name()
    daemon.run_d("--name", n, IMAGE, "sleep", "1000")
    sh(daemon, n, "mkdir -p /deep/" + "/".join(["d"] * 300))
    p = daemon.docker("diff", n)
    assert p.returncode == 1
    assert "more than" in p.stderr and "256 levels" in p.stderr, p.stderr
    m = moat(daemon, "diff", n)
    assert m.returncode == 1 and m.stderr == p.stderr
    daemon.ok("rm", "-f", n)

# ---- docker exec --privileged --------------------------------------------------


def caps(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k.startswith("Cap"):
            out[k] = int(v.strip(), 16)
    return out


def status_caps(pid):
    with open(f"/proc/{pid}/status") as f:
        return caps(f.read())


def exec_caps(d, ref, *flags):
    return caps(d.ok("exec", *flags, ref, "cat", "/proc/self/status").stdout)


def all_caps(d):
    """What privileged grants: the daemon's own bounding and permitted sets."""
    own = status_caps(d.pid)
    return own["CapBnd"] & own["CapPrm"]


def test_privileged_exec_gets_all_capabilities(daemon):
    n = name("priv")
    daemon.run_d("--name", n, IMAGE, "sleep", "1000")
    init = status_caps(daemon.inspect(n)["State"]["Pid"])
    normal = exec_caps(daemon, n)
    assert normal["CapEff"] == init["CapEff"] and normal["CapBnd"] == init["CapBnd"], (normal, init)
    assert normal["CapEff"] != all_caps(daemon)
    priv = exec_caps(daemon, n, "--privileged")
    want = all_caps(daemon)
    assert priv["CapEff"] == want and priv["CapPrm"] == want and priv["CapBnd"] == want, (hex(want), priv)
    # moby sets no inheritable or ambient capabilities for it
    assert priv["CapInh"] == 0 and priv["CapAmb"] == 0, priv
    # the container's own processes are unchanged
    assert status_caps(daemon.inspect(n)["State"]["Pid"]) == init
    daemon.ok("rm", "-f", n)


def test_privileged_exec_into_cap_drop_all(daemon):
    n = name("priv")
    daemon.run_d("--name", n, "--cap-drop", "ALL", IMAGE, "sleep", "1000")
    normal = exec_caps(daemon, n)
    assert normal["CapEff"] == 0 and normal["CapBnd"] == 0, normal
    priv = exec_caps(daemon, n, "--privileged")
    assert priv["CapEff"] == all_caps(daemon) and priv["CapBnd"] == all_caps(daemon), priv
    daemon.ok("rm", "-f", n)


def test_privileged_exec_inspect(daemon):
    """ExecInspect's ProcessConfig.privileged says what was asked."""
    n = name("priv")
    daemon.run_d("--name", n, IMAGE, "sleep", "1000")
    for want in (False, True):
        status, doc = api(daemon, "POST", f"/containers/{n}/exec",
                          {"Cmd": ["true"], "Privileged": want, "AttachStdout": True})
        assert status == 201, doc
        status, info = api(daemon, "GET", f"/exec/{doc['Id']}/json")
        assert status == 200, info
        assert info["ProcessConfig"]["privileged"] is want, info
    daemon.ok("rm", "-f", n)


def test_exec_ids(daemon):
    """inspect's ExecIDs: null without execs, the exec while it runs, null after."""
    import time
    cid = daemon.run_d(IMAGE, "sleep", "1000")
    assert daemon.inspect(cid)["ExecIDs"] is None
    daemon.ok("exec", "-d", cid, "sleep", "2")
    ids = daemon.inspect(cid)["ExecIDs"]
    assert isinstance(ids, list) and len(ids) == 1 and len(ids[0]) == 64, ids
    for _ in range(100):
        if daemon.inspect(cid)["ExecIDs"] is None:
            break
        time.sleep(0.1)
    assert daemon.inspect(cid)["ExecIDs"] is None
    daemon.ok("rm", "-f", cid)
