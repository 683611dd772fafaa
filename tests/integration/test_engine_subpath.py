"""VolumeOptions.Subpath (API 1.45, `--mount type=volume,...,volume-subpath=`)
against `moat daemon` with the docker CLI: only that part of the volume is
mounted; a subpath that is absolute, leaves the volume, is missing, or is
(or passes through) a symbolic link is refused, and a refused run leaves no
container and no volume behind.
"""

import json
import os

from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon  # noqa: F401


def name(prefix="sp"):
    return f"{prefix}-{os.urandom(4).hex()}"


def filled_volume(d):
    v = name("vol")
    d.ok("volume", "create", v)
    d.ok("run", "--rm", "-v", f"{v}:/d", IMAGE, "sh", "-c",
         "mkdir -p /d/sub/deeper && echo in-sub > /d/sub/f && echo top > /d/top && "
         "ln -s / /d/escape && ln -s sub /d/inner && echo deep > /d/sub/deeper/g")
    return v


def mount(v, sub, dst="/m"):
    return f"type=volume,src={v},dst={dst},volume-subpath={sub}"


def test_subpath_mounts_only_that_part(daemon):
    v = filled_volume(daemon)
    try:
        p = daemon.ok("run", "--rm", "--mount", mount(v, "sub"), IMAGE, "sh", "-c", "ls /m; cat /m/f")
        assert p.stdout == "deeper\nf\nin-sub\n", p.stdout
        p = daemon.ok("run", "--rm", "--mount", mount(v, "sub/./deeper"), IMAGE, "cat", "/m/g")
        assert p.stdout == "deep\n"
        # writes land in the volume's subdirectory
        daemon.ok("run", "--rm", "--mount", mount(v, "sub"), IMAGE, "sh", "-c", "echo w > /m/new")
        assert daemon.ok("run", "--rm", "-v", f"{v}:/d", IMAGE, "cat", "/d/sub/new").stdout == "w\n"
        # a container with a subpath mount restarts onto the same part
        n = name()
        daemon.run_d("--name", n, "--mount", mount(v, "sub"), IMAGE, "sleep", "300")
        daemon.ok("restart", "-t", "0", n)
        assert daemon.ok("exec", n, "cat", "/m/f").stdout == "in-sub\n"
        m = [x for x in daemon.inspect(n)["Mounts"] if x["Destination"] == "/m"]
        assert m and m[0]["Name"] == v and m[0]["Type"] == "volume", m
        # what the runtime bind-mounts is the subpath pinned in the container's
        # own directory, not a path through the volume a container can change
        cid = daemon.inspect(n)["Id"]
        cdir = os.path.join(daemon.data, "containers", cid)
        with open(os.path.join(daemon.exec_root, "containers", cid, "config.json")) as f:
            spec = json.load(f)
        src = [x["source"] for x in spec["mounts"] if x["destination"] == "/m"]
        assert src and src[0].startswith(os.path.join(cdir, "subpaths") + "/"), src
        with open("/proc/self/mountinfo") as f:
            assert any(line.split()[4] == src[0] for line in f), src[0]
        daemon.ok("rm", "-f", n)
        assert not os.path.exists(cdir)
    finally:
        daemon.docker("volume", "rm", "-f", v)


def refused(d, v, sub, words):
    n = name()
    before = set(d.ok("volume", "ls", "-q").stdout.split())
    p = d.docker("run", "--rm", "--name", n, "--mount", mount(v, sub), IMAGE, "true")
    assert p.returncode == 125, (sub, p.returncode, p.stderr)
    for w in words:
        assert w in p.stderr, (sub, p.stderr)
    assert d.docker("inspect", "--type", "container", n).returncode != 0, f"{sub!r} left a container"
    assert set(d.ok("volume", "ls", "-q").stdout.split()) == before, f"{sub!r} left a volume"


def test_subpath_refusals(daemon):
    v = filled_volume(daemon)
    try:
        refused(daemon, v, "nope", ["nope", "does not exist"])
        refused(daemon, v, "../x", ["subpath must be a relative path within the volume"])
        refused(daemon, v, "sub/../../x", ["subpath must be a relative path within the volume"])
        refused(daemon, v, "/sub", ["subpath must be a relative path within the volume"])
        refused(daemon, v, "escape", ["escape", "symbolic link"])
        refused(daemon, v, "escape/etc", ["symbolic link"])
        refused(daemon, v, "inner", ["inner", "symbolic link"])
        refused(daemon, v, "top/x", ["top/x"])
        # a volume that does not exist yet is not made for a subpath
        missing = name("vol")
        refused(daemon, missing, "sub", ["does not exist"])
        assert daemon.docker("volume", "inspect", missing).returncode != 0
        # and the volume itself is untouched
        assert daemon.ok("run", "--rm", "-v", f"{v}:/d", IMAGE, "cat", "/d/sub/f").stdout == "in-sub\n"
    finally:
        daemon.docker("volume", "rm", "-f", v)


def test_subpath_anonymous_refused(daemon):
    p = daemon.docker("run", "--rm", "--mount", "type=volume,dst=/m,volume-subpath=sub", IMAGE, "true")
    assert p.returncode != 0
    assert "Subpath" in p.stderr or "subpath" in p.stderr, p.stderr
