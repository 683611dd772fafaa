"""Named volumes of `moat daemon` (local driver) driven by the real docker
CLI and python3-docker: volume create/ls/inspect/rm/prune, `docker run -v
vol:/data` data that persists across containers, the image's content
copied into a new volume, anonymous volumes (the image's Volumes) and
`docker rm -v`, bind mounts of host directories, `--mount type=tmpfs`, and
volumes with DriverOpts (tmpfs, bind).

One daemon per module on a temp socket, data and exec roots, with a small
busybox image loaded into its store (built here as a docker-archive: a
layer with /data/seed.txt owned by 1000 and an image volume /anon). The
fixture removes every container, stops the daemon by pid, checks that no
mount of its data root is left, and removes the temp directory.
The fixtures are shared with test_docker_cp.py.
"""

import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time

import pytest

import harness

DOCKER = shutil.which("docker")
TIMEOUT = 60
IMAGE = "moat-vol:1"
SEED = b"seeded by the image\n"


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


def build_rootfs(dest):
    """A busybox rootfs (no test payload needed)."""
    busybox = shutil.which("busybox", path="/bin:/usr/bin") or "/bin/busybox"
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list-full"], check=True, text=True, capture_output=True,
                             timeout=TIMEOUT).stdout.split()
    for a in applets:
        a = a.strip("/")
        if a == "bin/busybox":
            continue
        p = os.path.join(dest, a)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if not os.path.lexists(p):
            os.symlink("/bin/busybox", p)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nmoattester:x:1000:1000::/tmp:/bin/sh\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\nmoattester:x:1000:\n")


def build_image(dest_tar, tag, rootfs):
    """A docker-archive of rootfs plus /data/seed.txt (owner 1000) and the
    image volume /anon."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(rootfs, arcname=".")
        for d, mode in (("data", 0o755), ("anon", 0o750)):
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = mode
            ti.uid = ti.gid = 1000
            t.addfile(ti)
        ti = tarfile.TarInfo("data/seed.txt")
        ti.size = len(SEED)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(SEED))
    lb = layer.getvalue()
    diff = hashlib.sha256(lb).hexdigest()
    cfg = {"architecture": "amd64", "os": "linux",
           "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Volumes": {"/anon": {}}},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}, "history": [{"created_by": "moat test"}]}
    cb = json.dumps(cfg).encode()
    ch = hashlib.sha256(cb).hexdigest()
    manifest = [{"Config": ch + ".json", "RepoTags": [tag], "Layers": [diff + "/layer.tar"]}]
    with tarfile.open(dest_tar, "w") as t:
        for name, b in ((ch + ".json", cb), (diff + "/layer.tar", lb),
                        ("manifest.json", json.dumps(manifest).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(b)
            t.addfile(ti, io.BytesIO(b))


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


class Daemon:
    def __init__(self, tmp):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "moat.sock")
        self.data = os.path.join(tmp, "data")
        self.exec_root = os.path.join(tmp, "exec")
        self.pidfile = os.path.join(tmp, "moat.pid")
        self.config = os.path.join(tmp, "daemon.json")
        with open(self.config, "w") as f:
            f.write("{}")
        self.log = open(os.path.join(tmp, "daemon.log"), "w+")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [moat_path(), "daemon", "-H", "unix://" + self.sock, "--data-root", self.data, "--exec-root",
             self.exec_root, "-p", self.pidfile, "-G", "root", "--config-file", self.config],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.logtext()}")
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("daemon did not start: " + self.logtext())

    def logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def docker(self, *args, check=True, input=None):
        env = dict(os.environ, DOCKER_HOST="unix://" + self.sock)
        env.pop("DOCKER_API_VERSION", None)
        env.pop("DOCKER_CONTEXT", None)
        p = subprocess.run([DOCKER, *args], capture_output=True, env=env, timeout=TIMEOUT, input=input,
                           text=input is None or isinstance(input, str))
        if check:
            assert p.returncode == 0, f"docker {' '.join(args)}: rc={p.returncode} {p.stderr!r}"
        return p

    def client(self):
        import docker
        return docker.DockerClient(base_url="unix://" + self.sock, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("the daemon tests need root")
    if not DOCKER:
        pytest.skip("the docker CLI is not installed")
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    harness.become_subreaper()
    tmp = tempfile.mkdtemp(prefix="moat-dvol-", dir="/tmp")
    os.chmod(tmp, 0o755)
    d = Daemon(tmp)
    try:
        rootfs = os.path.join(tmp, "rootfs")
        build_rootfs(rootfs)
        img = os.path.join(tmp, "img.tar")
        build_image(img, IMAGE, rootfs)
        d.start()
        subprocess.run([moat_path(), "-H", "unix://" + d.sock, "load", "-i", img], check=True,
                       capture_output=True, timeout=TIMEOUT)
        yield d
    finally:
        problems = []
        if d.proc and d.proc.poll() is None:
            ids = d.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                d.docker("rm", "-f", *ids, check=False)
        d.stop()
        harness.reap_orphans()
        left = mounts_under(tmp)
        for m in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        if left:
            problems.append(f"mounts left under {tmp}: {left}")
        shutil.rmtree(tmp, ignore_errors=True)
        assert not problems, problems


def run(d, *args, check=True):
    return d.docker("run", *args, check=check)


def volume_names(d, *args):
    return d.docker("volume", "ls", "-q", *args).stdout.split()


# ---- volume verbs ---------------------------------------------------------------


def test_create_inspect_ls_rm(daemon):
    d = daemon
    since = str(int(time.time()) - 1)
    assert d.docker("volume", "create", "--label", "team=a", "named1").stdout.strip() == "named1"
    gen = d.docker("volume", "create").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", gen)
    v = json.loads(d.docker("volume", "inspect", "named1").stdout)[0]
    assert v["Name"] == "named1" and v["Driver"] == "local" and v["Scope"] == "local"
    assert v["Labels"] == {"team": "a"}
    assert v["Mountpoint"] == os.path.join(d.data, "volumes", "named1", "_data")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v["CreatedAt"])
    st = os.stat(v["Mountpoint"])
    assert stat_mode(st) == 0o755 and os.path.isdir(v["Mountpoint"])
    assert stat_mode(os.stat(os.path.join(d.data, "volumes"))) == 0o701
    # creating an existing name answers with it
    assert d.docker("volume", "create", "named1").stdout.strip() == "named1"

    assert {"named1", gen} <= set(volume_names(d))
    assert volume_names(d, "-f", "label=team=a") == ["named1"]
    assert volume_names(d, "-f", "label=team=b") == []
    assert volume_names(d, "-f", "name=^named") == ["named1"]
    assert "named1" in volume_names(d, "-f", "dangling=true")
    assert "named1" not in volume_names(d, "-f", "dangling=false")
    assert "named1" in volume_names(d, "-f", "driver=local")
    p = d.docker("volume", "ls", "-f", "colour=red", check=False)
    assert p.returncode != 0 and "invalid filter 'colour'" in p.stderr

    d.docker("volume", "rm", "named1", gen)
    assert not os.path.exists(os.path.join(d.data, "volumes", "named1"))
    p = d.docker("volume", "rm", "named1", check=False)
    assert p.returncode != 0 and "no such volume" in p.stderr
    d.docker("volume", "rm", "-f", "named1")
    p = d.docker("volume", "inspect", "named1", check=False)
    assert p.returncode != 0 and "no such volume" in p.stderr

    events = d.docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter", "type=volume",
                      "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}").stdout.splitlines()
    assert "create named1 local" in events and "destroy named1 local" in events
    assert events.index("create named1 local") < events.index("destroy named1 local")

    p = d.docker("volume", "create", "x", check=False)
    assert p.returncode != 0 and "includes invalid characters for a local volume name" in p.stderr
    p = d.docker("volume", "create", "-d", "nfsplugin", "vv", check=False)
    assert p.returncode != 0 and "not supported" in p.stderr


def stat_mode(st):
    return st.st_mode & 0o7777


def test_data_persists_and_image_content_is_copied(daemon):
    d = daemon
    run(d, "--rm", "-v", "persist:/data", IMAGE, "sh", "-c", "echo written > /data/out")
    out = run(d, "--rm", "-v", "persist:/data", IMAGE, "cat", "/data/out", "/data/seed.txt").stdout
    assert out == "written\n" + SEED.decode()
    data = json.loads(d.docker("volume", "inspect", "persist").stdout)[0]["Mountpoint"]
    with open(os.path.join(data, "out")) as f:
        assert f.read() == "written\n"
    st = os.stat(data)
    assert (st.st_uid, st.st_gid) == (1000, 1000)  # the image directory's owner
    # nocopy: a new volume stays empty
    out = run(d, "--rm", "-v", "empty:/data:nocopy", IMAGE, "ls", "-A", "/data").stdout
    assert out == ""
    # a named volume at a path the image does not have: created, empty
    out = run(d, "--rm", "-v", "fresh:/new/place", IMAGE, "ls", "-A", "/new/place").stdout
    assert out == ""
    d.docker("volume", "rm", "persist", "empty", "fresh")


def test_in_use_volume_cannot_be_removed(daemon):
    d = daemon
    cid = run(d, "-d", "-v", "busy:/data", IMAGE, "sleep", "1000").stdout.strip()
    try:
        p = d.docker("volume", "rm", "busy", check=False)
        assert p.returncode != 0
        assert f"remove busy: volume is in use - [{cid}]" in p.stderr
        d.docker("stop", "-t", "0", cid)
        # a stopped container still uses it
        p = d.docker("volume", "rm", "busy", check=False)
        assert p.returncode != 0 and "volume is in use" in p.stderr
        assert "busy" in volume_names(d, "-f", "dangling=false")
        # prune -a leaves used volumes alone
        d.docker("volume", "prune", "-af")
        assert "busy" in volume_names(d)
    finally:
        d.docker("rm", "-f", cid, check=False)
    d.docker("volume", "rm", "busy")


def anonymous_of(d, cid):
    mounts = json.loads(d.docker("inspect", cid).stdout)[0]["Mounts"]
    anon = [m for m in mounts if m["Destination"] == "/anon"]
    assert len(anon) == 1 and anon[0]["Type"] == "volume"
    return anon[0]["Name"]


def test_anonymous_volumes(daemon):
    d = daemon
    d.docker("volume", "create", "keepme")
    # docker rm without -v keeps the anonymous volume; prune removes it
    cid = run(d, "-d", IMAGE, "sh", "-c", "echo x > /anon/f").stdout.strip()
    d.docker("wait", cid)
    name = anonymous_of(d, cid)
    assert re.fullmatch(r"[0-9a-f]{64}", name)
    v = json.loads(d.docker("volume", "inspect", name).stdout)[0]
    assert "com.docker.volume.anonymous" in v["Labels"]
    st = os.stat(v["Mountpoint"])
    assert stat_mode(st) == 0o750 and st.st_uid == 1000  # copied from the image's /anon
    # the same anonymous volume on the next start
    d.docker("start", "-a", cid)
    assert anonymous_of(d, cid) == name
    d.docker("rm", cid)
    assert name in volume_names(d)
    out = d.docker("volume", "prune", "-f").stdout
    assert name in out
    assert name not in volume_names(d) and "keepme" in volume_names(d)
    assert not os.path.exists(os.path.dirname(v["Mountpoint"]))

    # docker rm -v removes it, named volumes stay
    cid = run(d, "-d", "-v", "keepme:/data", IMAGE, "true").stdout.strip()
    d.docker("wait", cid)
    name = anonymous_of(d, cid)
    d.docker("rm", "-v", cid)
    assert name not in volume_names(d) and "keepme" in volume_names(d)

    # --rm removes it too
    before = set(volume_names(d))
    run(d, "--rm", IMAGE, "true")
    assert set(volume_names(d)) == before

    # prune -a removes unused named volumes
    out = d.docker("volume", "prune", "-af").stdout
    assert "keepme" in out and "keepme" not in volume_names(d)


def test_bind_mounts_and_tmpfs(daemon, tmp_path):
    d = daemon
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "fromhost").write_text("host data\n")
    out = run(d, "--rm", "-v", f"{host}:/x", IMAGE, "sh", "-c", "cat /x/fromhost; echo back > /x/fromcontainer").stdout
    assert out == "host data\n"
    assert (host / "fromcontainer").read_text() == "back\n"
    out = run(d, "--rm", "--mount", "type=tmpfs,destination=/scratch,tmpfs-size=1m", IMAGE, "sh", "-c",
              "grep ' /scratch ' /proc/mounts").stdout.split()
    assert out[1:3] == ["/scratch", "tmpfs"] and "size=1024k" in out[3]
    # a bind source that does not exist is created by -v (docker does)
    missing = tmp_path / "made" / "by" / "docker"
    run(d, "--rm", "-v", f"{missing}:/m", IMAGE, "true")
    assert missing.is_dir()


def test_driver_options(daemon, tmp_path):
    d = daemon
    d.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=2m,uid=1000",
             "tmpvol")
    v = json.loads(d.docker("volume", "inspect", "tmpvol").stdout)[0]
    assert v["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=2m,uid=1000"}
    out = run(d, "--rm", "-v", "tmpvol:/t", IMAGE, "sh", "-c", "grep ' /t ' /proc/mounts; stat -c %u /t").stdout
    line, uid = out.splitlines()
    assert line.split()[2] == "tmpfs" and "size=2048k" in line and uid == "1000"
    assert v["Mountpoint"] in mounts_under(v["Mountpoint"])
    d.docker("volume", "rm", "tmpvol")
    assert mounts_under(v["Mountpoint"]) == []

    host = tmp_path / "bindsrc"
    host.mkdir()
    (host / "keep").write_text("keep\n")
    d.docker("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={host}", "bindvol")
    out = run(d, "--rm", "-v", "bindvol:/b", IMAGE, "sh", "-c", "cat /b/keep; echo new > /b/new").stdout
    assert out == "keep\n" and (host / "new").read_text() == "new\n"
    d.docker("volume", "rm", "bindvol")
    # removing the volume never removes the bind source's files
    assert sorted(os.listdir(host)) == ["keep", "new"]

    for opts, msg in ((["type=ext4", "device=/dev/null"], "type=ext4 is not supported"),
                      (["colour=red"], 'invalid option: "colour"'),
                      (["type=tmpfs"], 'missing required option: "device"'),
                      (["size=1g"], "no quota support"),
                      (["type=none", "device=/nonexistent-moat", "o=bind"], "/nonexistent-moat")):
        args = []
        for o in opts:
            args += ["--opt", o]
        p = d.docker("volume", "create", *args, "badopts", check=False)
        assert p.returncode != 0 and msg in p.stderr, (opts, p.stderr)
    assert "badopts" not in volume_names(d)


def test_python_docker(daemon):
    c = daemon.client()
    v = c.volumes.create("pyvol", labels={"origin": "py"})
    assert v.name == "pyvol" and v.attrs["Labels"] == {"origin": "py"}
    assert [x.name for x in c.volumes.list(filters={"label": "origin=py"})] == ["pyvol"]
    assert c.volumes.get("pyvol").attrs["Mountpoint"].endswith("/volumes/pyvol/_data")
    out = c.containers.run(IMAGE, ["sh", "-c", "echo py > /v/f; cat /v/f"], volumes={"pyvol": {"bind": "/v"}},
                           remove=True)
    assert out == b"py\n"
    v.remove()
    import docker
    with pytest.raises(docker.errors.NotFound):
        c.volumes.get("pyvol")
    c.volumes.create("pyprune")
    res = c.volumes.prune(filters={"all": True})
    assert "pyprune" in res["VolumesDeleted"]
