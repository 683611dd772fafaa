"""docker cp, export, top, update and container prune against `moat
daemon`, with the real docker CLI and python3-docker (the daemon and image
fixtures are test_docker_volumes.py's).

The escape tests (CVE-2018-15664 and its kin): a container holds symlinks
to "/", to "/etc" and a chain of "..", and cp in and out through them must
stay inside the container's root: what is written lands in the container
(read back with cp), never on the host, and what is read is the
container's file, not the host's.
"""

import base64
import io
import json
import os
import re
import subprocess
import tarfile
import uuid

import pytest

from test_docker_volumes import IMAGE, daemon, moat_path, mounts_under  # noqa: F401 (fixture)


def start(d, script, *extra):
    return d.docker("run", "-d", *extra, IMAGE, "sh", "-c", script + "; exec sleep 1000").stdout.strip()


def wait_for(d, cid, path):
    # the container's script runs before sleep; wait until it made path
    for _ in range(200):
        if d.docker("cp", f"{cid}:{path}", "-", check=False).returncode == 0:
            return
    raise AssertionError(f"{path} never appeared in {cid}")


def cp_out(d, cid, path):
    """The members of the tar docker cp writes to stdout: {name: (TarInfo, bytes)}."""
    p = d.docker("cp", f"{cid}:{path}", "-", input=b"")
    out = {}
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
        for m in t.getmembers():
            out[m.name] = (m, t.extractfile(m).read() if m.isfile() else None)
    return out


def test_cp_files_directories_symlinks(daemon, tmp_path):
    d = daemon
    cid = start(d, "mkdir -p /dir/sub && echo f > /dir/sub/f && ln -s ../dir/sub/f /dir/rel && "
                   "ln /dir/sub/f /dir/hard && chown 1000:1000 /dir/sub/f")
    try:
        wait_for(d, cid, "/dir/hard")
        # a file
        d.docker("cp", f"{cid}:/etc/passwd", str(tmp_path / "passwd"))
        assert "moattester" in (tmp_path / "passwd").read_text()
        # the engine's files bind-mounted over the image's
        assert cp_out(d, cid, "/etc/hostname")["hostname"][1] == (cid[:12] + "\n").encode()
        assert b"localhost" in cp_out(d, cid, "/etc/hosts")["hosts"][1]
        # a directory: entries under its base name, symlinks as symlinks, hard links kept
        m = cp_out(d, cid, "/dir")
        assert set(m) == {"dir", "dir/sub", "dir/sub/f", "dir/rel", "dir/hard"}
        assert m["dir/rel"][0].issym() and m["dir/rel"][0].linkname == "../dir/sub/f"
        assert m["dir/sub/f"][0].uid == 1000
        files = [n for n in ("dir/sub/f", "dir/hard") if m[n][0].isfile()]
        links = [n for n in ("dir/sub/f", "dir/hard") if m[n][0].islnk()]
        assert len(files) == 1 and len(links) == 1 and m[files[0]][1] == b"f\n"
        d.docker("cp", f"{cid}:/dir", str(tmp_path / "copied"))
        assert (tmp_path / "copied" / "sub" / "f").read_text() == "f\n"
        assert os.readlink(tmp_path / "copied" / "rel") == "../dir/sub/f"
        # "/." copies the content
        d.docker("cp", f"{cid}:/dir/sub/.", str(tmp_path / "content"))
        assert os.listdir(tmp_path / "content") == ["f"]

        # in: a file, renamed, a directory
        (tmp_path / "in.txt").write_text("in\n")
        d.docker("cp", str(tmp_path / "in.txt"), f"{cid}:/tmp/")
        d.docker("cp", str(tmp_path / "in.txt"), f"{cid}:/tmp/renamed")
        d.docker("cp", str(tmp_path / "copied"), f"{cid}:/newdir")
        assert cp_out(d, cid, "/tmp/in.txt")["in.txt"][1] == b"in\n"
        assert cp_out(d, cid, "/tmp/renamed")["renamed"][1] == b"in\n"
        m = cp_out(d, cid, "/newdir")
        assert b"f\n" in (m["newdir/sub/f"][1], m["newdir/hard"][1]) and m["newdir/rel"][0].issym()
        # a missing source, a file over a directory
        p = d.docker("cp", f"{cid}:/no/such", str(tmp_path / "x"), check=False)
        assert p.returncode != 0 and "Could not find the file /no/such in container" in p.stderr
        p = d.docker("cp", str(tmp_path / "in.txt"), f"{cid}:/dir/sub/f/", check=False)
        assert p.returncode != 0
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_cp_stays_inside_the_container(daemon, tmp_path):
    d = daemon
    tag = uuid.uuid4().hex[:12]
    marker = f"moat-marker-{tag}"
    cid = start(d, f"ln -s / /rootlink && ln -s /etc /etclink && ln -s ../../../../../../.. /etc/dotdot && "
                   f"echo inside > /etc/{marker}")
    written = [f"/escape-{tag}", f"/etc/escape-{tag}", f"/tar-escape-{tag}"]
    try:
        wait_for(d, cid, f"/etc/{marker}")
        assert not os.path.exists(f"/etc/{marker}")

        # out: the links resolve in the container's root
        assert cp_out(d, cid, f"/rootlink/etc/{marker}")[marker][1] == b"inside\n"
        passwd = cp_out(d, cid, "/etclink/passwd")["passwd"][1]
        assert b"moattester" in passwd
        with open("/etc/passwd", "rb") as f:
            assert f.read() != passwd
        assert cp_out(d, cid, f"/etc/dotdot/etc/{marker}")[marker][1] == b"inside\n"
        # the link itself is archived as a link when it is the last component
        m = cp_out(d, cid, "/rootlink")
        assert m["rootlink"][0].issym() and m["rootlink"][0].linkname == "/"

        # in: through the links into the container's root and /etc
        src = tmp_path / f"escape-{tag}"
        src.write_text("data\n")
        d.docker("cp", str(src), f"{cid}:/rootlink/")
        d.docker("cp", str(src), f"{cid}:/etclink/")
        d.docker("cp", str(src), f"{cid}:/etc/dotdot/tmp/")
        assert cp_out(d, cid, f"/escape-{tag}")[f"escape-{tag}"][1] == b"data\n"
        assert cp_out(d, cid, f"/etc/escape-{tag}")[f"escape-{tag}"][1] == b"data\n"
        assert cp_out(d, cid, f"/tmp/escape-{tag}")[f"escape-{tag}"][1] == b"data\n"

        # a tar whose own symlink points at "/" and then writes through it
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("esc")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/"
            t.addfile(ti)
            data = b"tar\n"
            ti = tarfile.TarInfo(f"esc/tar-escape-{tag}")
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        d.docker("cp", "-", f"{cid}:/tmp", input=buf.getvalue())
        got = [p for p in (f"/tmp/tar-escape-{tag}", f"/tar-escape-{tag}")
               if d.docker("cp", f"{cid}:{p}", "-", check=False).returncode == 0]
        assert got, "the archive's file is nowhere in the container"

        # the stat of docker cp: the links' targets inside the container
        c = d.client()
        _, st = c.api.get_archive(cid, "/etclink")
        assert st["linkTarget"] == "/etc" and st["name"] == "etclink"
        assert st["mode"] & (1 << 27)  # Go's os.ModeSymlink
        _, st = c.api.get_archive(cid, "/etc/dotdot")
        assert st["linkTarget"] == "/"
    finally:
        d.docker("rm", "-f", cid, check=False)
        for p in written:
            assert not os.path.exists(p), f"{p} was written on the host"


def test_cp_symlink_swap_race_stays_inside(daemon, tmp_path):
    """CVE-2018-15664: the container swaps a directory and a symlink to "/"
    while files are copied in through that path."""
    d = daemon
    tag = uuid.uuid4().hex[:12]
    cid = d.docker("run", "-d", IMAGE, "sh", "-c",
                   "while :; do rm -rf /race; mkdir /race; rm -rf /race; ln -s / /race; done").stdout.strip()
    src = tmp_path / f"race-{tag}"
    src.write_text("race\n")
    try:
        for _ in range(40):
            d.docker("cp", str(src), f"{cid}:/race/", check=False)
    finally:
        d.docker("rm", "-f", cid, check=False)
        assert not os.path.exists(f"/race-{tag}")
        assert not os.path.exists(f"/race/race-{tag}")


def test_cp_stopped_container(daemon, tmp_path):
    d = daemon
    cid = d.docker("run", "-d", IMAGE, "sh", "-c", "echo before > /made").stdout.strip()
    try:
        d.docker("wait", cid)
        rootfs = os.path.join(d.data, "containers", cid, "rootfs")
        assert mounts_under(rootfs) == []
        assert cp_out(d, cid, "/made")["made"][1] == b"before\n"
        (tmp_path / "later").write_text("later\n")
        d.docker("cp", str(tmp_path / "later"), f"{cid}:/")
        # mounted for the copy only
        assert mounts_under(rootfs) == []
        out = d.docker("start", "-a", cid, check=False)
        assert out.returncode == 0
        assert cp_out(d, cid, "/later")["later"][1] == b"later\n"
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_cp_into_a_volume(daemon, tmp_path):
    d = daemon
    cid = start(d, "true", "-v", "cpvol:/vol")
    try:
        (tmp_path / "v.txt").write_text("vol\n")
        d.docker("cp", str(tmp_path / "v.txt"), f"{cid}:/vol/")
        mp = json.loads(d.docker("volume", "inspect", "cpvol").stdout)[0]["Mountpoint"]
        with open(os.path.join(mp, "v.txt")) as f:
            assert f.read() == "vol\n"
        assert cp_out(d, cid, "/vol/v.txt")["v.txt"][1] == b"vol\n"
    finally:
        d.docker("rm", "-f", cid, check=False)
        d.docker("volume", "rm", "cpvol", check=False)


def test_python_archive(daemon):
    c = daemon.client()
    ct = c.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"py\n"
            ti = tarfile.TarInfo("pyfile")
            ti.size = len(data)
            ti.uid = 1234
            ti.mode = 0o640
            t.addfile(ti, io.BytesIO(data))
        assert ct.put_archive("/tmp", buf.getvalue()) is True
        bits, st = ct.get_archive("/tmp/pyfile")
        assert st["name"] == "pyfile" and st["size"] == 3 and st["mode"] == 0o640 and st["linkTarget"] == ""
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", st["mtime"])
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
            m = t.getmember("pyfile")
            assert m.uid == 1234 and t.extractfile(m).read() == b"py\n"
        # HEAD: the same stat, base64 JSON in the header
        resp = c.api.head(c.api._url("/containers/{0}/archive", ct.id), params={"path": "/tmp/pyfile"})
        assert resp.status_code == 200
        assert json.loads(base64.b64decode(resp.headers["X-Docker-Container-Path-Stat"])) == st
        # copyUIDGID: owned by the container's user (root here)
        resp = c.api._put(c.api._url("/containers/{0}/archive", ct.id),
                          params={"path": "/tmp", "copyUIDGID": "1"}, data=buf.getvalue())
        assert resp.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(b"".join(ct.get_archive("/tmp/pyfile")[0]))) as t:
            assert t.getmember("pyfile").uid == 0
        # noOverwriteDirNonDir: a file may not replace a directory
        buf2 = io.BytesIO()
        with tarfile.open(fileobj=buf2, mode="w") as t:
            ti = tarfile.TarInfo("etc")
            ti.size = 0
            t.addfile(ti, io.BytesIO(b""))
        resp = c.api._put(c.api._url("/containers/{0}/archive", ct.id),
                          params={"path": "/", "noOverwriteDirNonDir": "1"}, data=buf2.getvalue())
        assert resp.status_code == 400 and "cannot overwrite directory" in resp.json()["message"]
        resp = c.api._put(c.api._url("/containers/{0}/archive", ct.id), params={"path": "/etc/passwd"},
                          data=buf.getvalue())
        assert resp.status_code == 400 and "extraction point is not a directory" in resp.json()["message"]
    finally:
        ct.remove(force=True)


def test_export(daemon):
    d = daemon
    cid = start(d, "echo exported > /exported-file")
    try:
        wait_for(d, cid, "/exported-file")
        p = subprocess.run(f"DOCKER_HOST=unix://{d.sock} docker export {cid} | tar -t", shell=True,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        names = set(p.stdout.split())
        assert {"bin/busybox", "etc/passwd", "exported-file", "data/seed.txt"} <= names
        d.docker("stop", "-t", "0", cid)
        out = d.docker("export", cid, input=b"").stdout
        with tarfile.open(fileobj=io.BytesIO(out)) as t:
            assert t.extractfile("exported-file").read() == b"exported\n"
        assert mounts_under(os.path.join(d.data, "containers", cid, "rootfs")) == []
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_top(daemon):
    d = daemon
    cid = d.docker("run", "-d", IMAGE, "sleep", "1234").stdout.strip()
    try:
        pid = json.loads(d.docker("inspect", cid).stdout)[0]["State"]["Pid"]
        lines = d.docker("top", cid).stdout.splitlines()
        assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
        rows = [line.split() for line in lines[1:]]
        assert [r[1] for r in rows] == [str(pid)] and rows[0][-2:] == ["sleep", "1234"]
        top = d.client().api.top(cid, ps_args="-o pid,args")
        assert top["Titles"] == ["PID", "COMMAND"]
        assert top["Processes"] == [[str(pid), "sleep 1234"]]
        d.docker("stop", "-t", "0", cid)
        p = d.docker("top", cid, check=False)
        assert p.returncode != 0 and "is not running" in p.stderr
    finally:
        d.docker("rm", "-f", cid, check=False)


def cgroup_file(pid, controller, name):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                for base in (f"/sys/fs/cgroup/{controller}", f"/sys/fs/cgroup/{ctrls}"):
                    p = f"{base}{path}/{name}"
                    if os.path.exists(p):
                        with open(p) as g:
                            return g.read().strip()
    pytest.skip(f"no cgroup v1 {controller} controller for {pid}")


def test_update(daemon):
    d = daemon
    cid = d.docker("run", "-d", IMAGE, "sleep", "1000").stdout.strip()
    try:
        pid = json.loads(d.docker("inspect", cid).stdout)[0]["State"]["Pid"]
        d.docker("update", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "77", "--restart", "on-failure:3", cid)
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
        assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
        assert cgroup_file(pid, "pids", "pids.max") == "77"
        hc = json.loads(d.docker("inspect", cid).stdout)[0]["HostConfig"]
        assert hc["Memory"] == 64 << 20 and hc["NanoCpus"] == 500000000 and hc["PidsLimit"] == 77
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        p = d.docker("update", "--memory", "1m", cid, check=False)
        assert p.returncode != 0 and "Minimum memory limit allowed is 6MB" in p.stderr
        p = d.docker("update", "--cpu-quota", "20000", cid, check=False)
        assert p.returncode != 0 and "Conflicting options" in p.stderr

        # a stopped container: stored, applied at its next start
        d.docker("stop", "-t", "0", cid)
        d.docker("update", "--memory", "48m", cid)
        assert json.loads(d.docker("inspect", cid).stdout)[0]["HostConfig"]["Memory"] == 48 << 20
        d.docker("start", cid)
        pid = json.loads(d.docker("inspect", cid).stdout)[0]["State"]["Pid"]
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(48 << 20)
        assert d.client().api.update_container(cid, mem_limit="40m") == {"Warnings": []}
        assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(40 << 20)
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_container_prune(daemon):
    d = daemon
    gone = d.docker("create", IMAGE, "true").stdout.strip()
    exited = d.docker("run", "-d", IMAGE, "true").stdout.strip()
    kept = d.docker("create", "--label", "keep=yes", IMAGE, "true").stdout.strip()
    live = d.docker("run", "-d", IMAGE, "sleep", "1000").stdout.strip()
    try:
        d.docker("wait", exited)
        out = d.docker("container", "prune", "-f", "--filter", "until=1h").stdout
        assert "Total reclaimed space: 0B" in out
        assert len(d.docker("ps", "-aq").stdout.split()) >= 4
        out = d.docker("container", "prune", "-f", "--filter", "label!=keep=yes").stdout
        assert gone in out and exited in out and kept not in out and live not in out
        left = set(d.docker("ps", "-aq", "--no-trunc").stdout.split())
        assert kept in left and live in left and gone not in left and exited not in left
        assert not os.path.exists(os.path.join(d.data, "containers", gone))
        res = d.client().containers.prune(filters={"label": "keep=yes"})
        assert res["ContainersDeleted"] == [kept]
        assert live in d.docker("ps", "-q", "--no-trunc").stdout.split()
    finally:
        d.docker("rm", "-f", gone, exited, kept, live, check=False)


def test_cp_non_ascii_names(daemon, tmp_path):
    """Names that are not ASCII (UTF-8, as tar's pax headers carry them)
    go in and out with the docker CLI and with moat's own cp."""
    d = daemon
    cid = start(d, "true")
    try:
        src = tmp_path / "dïr"
        src.mkdir()
        (src / "fïlé.txt").write_text("ü\n")
        d.docker("cp", str(src), f"{cid}:/tmp/")
        m = cp_out(d, cid, "/tmp/dïr")
        assert m["dïr/fïlé.txt"][1] == "ü\n".encode(), sorted(m)
        d.docker("cp", f"{cid}:/tmp/dïr", str(tmp_path / "back"))
        assert (tmp_path / "back" / "fïlé.txt").read_text() == "ü\n"
        # moat's client: in under a new name, out again
        run = [moat_path(), "-H", "unix://" + d.sock, "cp"]
        p = subprocess.run(run + [str(src), f"{cid}:/tmp/ñew"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert cp_out(d, cid, "/tmp/ñew/fïlé.txt")["fïlé.txt"][1] == "ü\n".encode()
        p = subprocess.run(run + [f"{cid}:/tmp/ñew", str(tmp_path / "ñback")], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / "ñback" / "fïlé.txt").read_text() == "ü\n"
    finally:
        d.docker("rm", "-f", cid, check=False)


def test_cp_through_dotdot_while_the_system_renames(daemon, tmp_path):
    """openat2 with RESOLVE_IN_ROOT fails with EAGAIN when a rename
    anywhere on the system raced with a lookup that went through "..": the
    daemon tries again (about 30% of these failed here without it)."""
    import threading

    d = daemon
    cid = start(d, "mkdir -p /a/b && echo in > /a/b/f && ln -s ../../.. /a/b/up")
    stop = threading.Event()
    spot = tmp_path / "x"
    spot.write_text("")

    def spin():
        other = tmp_path / "y"
        while not stop.is_set():
            os.rename(spot, other)
            os.rename(other, spot)

    threads = [threading.Thread(target=spin) for _ in range(2)]
    try:
        wait_for(d, cid, "/a/b/f")
        client = d.client()
        container = client.containers.get(cid)
        for t in threads:
            t.start()
        for _ in range(100):
            bits, _ = container.get_archive("/a/b/up/a/b/f")
            data = b"".join(bits)
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                assert t.extractfile("f").read() == b"in\n"
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join()
        d.docker("rm", "-f", cid, check=False)
