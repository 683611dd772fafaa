"""`moat import`, `moat save` and `moat history`, run in-process against
private --root directories: the busybox test rootfs imported with docker's
--change instructions (checked with `moat inspect` and in the config
blob), saved and loaded back into a fresh root (same IDs and digests),
loaded by podman (which then runs the CMD the --change set) and by a
private dockerd 20.10, and shown by history (docker's columns, <missing>
rows, empty layers, truncation)."""

import gzip
import hashlib
import io
import json
import os
import pty
import resource
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import pytest

import harness
import image_daemons

PODMAN = shutil.which("podman")
DOCKER = shutil.which("docker")
DOCKERD = "/usr/sbin/dockerd"
REF = "localhost/moat-io:1"
CHANGES = [
    'CMD ["/bin/sh", "-c", "echo imported-$MOAT in $(pwd) as $(id -u)"]',
    'ENV MOAT=works OTHER="a b"',
    "WORKDIR /tmp",
    "USER 1000",
    "EXPOSE 8080/tcp",
    "LABEL org.example.origin=moat",
]
PODMAN_OUTPUT = "imported-works in /tmp as 1000"


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


def moat(root, *args, check=True, stdin=None, stdout=subprocess.PIPE):
    p = subprocess.run(image_daemons.moat_argv(root, *args), stdout=stdout, stderr=subprocess.PIPE,
                       stdin=stdin, timeout=300)
    out = p.stdout.decode(errors="replace") if p.stdout is not None else ""
    err = p.stderr.decode(errors="replace")
    if check:
        assert p.returncode == 0, f"moat {' '.join(args)}: rc={p.returncode} stderr={err!r}"
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def blobs(root):
    d = os.path.join(root, "images", "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def config_blob(root, image_id):
    with open(os.path.join(root, "images", "blobs", "sha256", image_id[len("sha256:"):])) as f:
        return json.load(f)


def inspect(root, ref):
    doc = json.loads(moat(root, "inspect", ref).stdout)
    assert len(doc) == 1
    return doc[0]


def no_leftovers(root):
    ingest = os.path.join(root, "images", "ingest")
    return not os.path.isdir(ingest) or os.listdir(ingest) == []


@pytest.fixture(scope="module")
def tmp(session_tmp):
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    d = tempfile.mkdtemp(prefix="images-io-", dir=session_tmp)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def rootfs_tar(tmp, rootfs):
    path = os.path.join(tmp, "rootfs.tar")
    with tarfile.open(path, "w") as t:
        t.add(rootfs, arcname=".")
    return path


@pytest.fixture(scope="module")
def imported(tmp, rootfs_tar):
    """(root, image ID) of the rootfs imported with CHANGES as REF."""
    root = os.path.join(tmp, "moat-main")
    args = ["import"]
    for c in CHANGES:
        args += ["--change", c]
    p = moat(root, *args, rootfs_tar, REF)
    image_id = p.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71, p.stdout
    return root, image_id


@pytest.fixture(scope="module")
def saved(tmp, imported):
    """The docker-format save of REF (-o)."""
    root, _ = imported
    out = os.path.join(tmp, "saved.tar")
    moat(root, "save", "-o", out, REF)
    return out


# ---- import ------------------------------------------------------------------------


def test_import_changes_show_in_inspect(imported, rootfs_tar):
    root, image_id = imported
    img = inspect(root, REF)
    assert img["Id"] == image_id
    assert img["RepoTags"] == [REF]
    assert img["Os"] == "linux"
    assert img["Architecture"] == {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine,
                                                                               os.uname().machine)
    cfg = img["Config"]
    assert cfg["Cmd"] == ["/bin/sh", "-c", "echo imported-$MOAT in $(pwd) as $(id -u)"]
    assert cfg["Env"] == ["MOAT=works", "OTHER=a b"]
    assert cfg["WorkingDir"] == "/tmp"
    assert cfg["User"] == "1000"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert cfg["Labels"] == {"org.example.origin": "moat"}
    # The layer is the tarball as given: its digest is the DiffID.
    assert img["RootFS"]["Layers"] == [sha256_file(rootfs_tar)]
    doc = config_blob(root, image_id)
    assert doc["history"] == [{"created": doc["created"], "comment": "Imported from -"}]
    assert doc["rootfs"] == {"type": "layers", "diff_ids": [sha256_file(rootfs_tar)]}
    assert no_leftovers(root)


def test_import_gzip_from_stdin_untagged(tmp, rootfs_tar):
    root = os.path.join(tmp, "moat-stdin")
    gz = os.path.join(tmp, "rootfs.tar.gz")
    with open(rootfs_tar, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with open(gz, "rb") as f:
        p = moat(root, "import", "-m", "from a pipe", "-", stdin=f)
    image_id = p.stdout.strip()
    assert image_id.startswith("sha256:")
    rows = [json.loads(line) for line in moat(root, "images", "--format", "json").stdout.splitlines()]
    assert [(r["Repository"], r["Tag"], r["ID"]) for r in rows] == [("<none>", "<none>", image_id[7:19])]
    doc = config_blob(root, image_id)
    assert doc["rootfs"]["diff_ids"] == [sha256_file(rootfs_tar)], "the layer is the uncompressed tar"
    assert doc["history"][0]["comment"] == "from a pipe"
    assert inspect(root, image_id)["Id"] == image_id


def test_import_more_changes_and_platform(tmp, rootfs_tar):
    root = os.path.join(tmp, "moat-platform")
    p = moat(root, "import", "--platform", "linux/arm64", "-c", "VOLUME /data /cache", "-c",
             "STOPSIGNAL SIGINT", "-c", "ENTRYPOINT /bin/sh", "-c", "ENV GREETING hello world",
             rootfs_tar, "localhost/moat-io:arm")
    image_id = p.stdout.strip()
    doc = config_blob(root, image_id)
    assert doc["architecture"] == "arm64" and doc["os"] == "linux"
    assert doc["config"]["Volumes"] == {"/data": {}, "/cache": {}}
    assert doc["config"]["StopSignal"] == "SIGINT"
    assert doc["config"]["Entrypoint"] == ["/bin/sh", "-c", "/bin/sh"]
    assert doc["config"]["Env"] == ["GREETING=hello world"]
    assert inspect(root, "localhost/moat-io:arm")["Architecture"] == "arm64"


def test_import_errors(tmp, rootfs_tar):
    root = os.path.join(tmp, "moat-errors")
    moat(root, "import", rootfs_tar, "localhost/keep:1")
    before = blobs(root)
    text = os.path.join(tmp, "not-a-tar.txt")
    with open(text, "w") as f:
        f.write("hello, this is not a tarball at all\n" * 20)
    cases = [
        (["import", "https://example.com/rootfs.tar"], "importing from a URL is not supported"),
        (["import", text, "localhost/bad:1"], "not a tar archive"),
        (["import", "-c", "RUN echo hi", rootfs_tar], "RUN is not a valid change command"),
        (["import", "-c", "ONBUILD RUN true", rootfs_tar], "ONBUILD is not supported"),
        (["import", "-c", "BOGUS x", rootfs_tar], "unknown instruction: BOGUS"),
        (["import", "-c", "EXPOSE http", rootfs_tar], "invalid containerPort: http"),
        (["import", "--platform", "windows/amd64", rootfs_tar], "not supported"),
        (["import", rootfs_tar, "busybox@sha256:" + "a" * 64], "cannot import digest reference"),
        (["import"], "requires at least 1"),
        (["import", os.path.join(tmp, "missing.tar")], "missing.tar"),
    ]
    for args, msg in cases:
        p = moat(root, *args, check=False)
        assert p.returncode == 1, args
        assert p.stderr.startswith("moat: ") and msg in p.stderr, (args, p.stderr)
        assert len(p.stderr.splitlines()) == 1, p.stderr
    assert blobs(root) == before, "a refused import stored nothing"
    assert no_leftovers(root)
    assert [json.loads(line)["Repository"] for line in
            moat(root, "images", "--format", "json").stdout.splitlines()] == ["localhost/keep"]


# ---- save --------------------------------------------------------------------------


def test_save_load_round_trip(tmp, imported, saved):
    root, image_id = imported
    with tarfile.open(saved) as t:
        names = t.getnames()
        manifest = json.load(t.extractfile("manifest.json"))
        index = json.load(t.extractfile("index.json"))
    assert "oci-layout" in names and "index.json" in names
    assert manifest[0]["RepoTags"] == [REF]
    assert manifest[0]["Config"] == "blobs/sha256/" + image_id[7:]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == REF

    fresh = os.path.join(tmp, "moat-fresh")
    p = moat(fresh, "load", "-i", saved)
    assert p.stdout.splitlines() == [f"Loaded image: {REF}"]
    a, b = inspect(root, REF), inspect(fresh, REF)
    for key in ("Id", "RootFS", "Config", "Created", "Architecture", "Os"):
        assert a[key] == b[key], key
    digest = lambda r: [json.loads(line)["Digest"] for line in  # noqa: E731
                        moat(r, "images", "--format", "json").stdout.splitlines()]
    assert digest(root) == digest(fresh)
    assert blobs(fresh) == blobs(root) and len(blobs(fresh)) == 3


def test_save_to_stdout_matches_output_file(tmp, imported, saved):
    root, _ = imported
    out = os.path.join(tmp, "stdout.tar")
    with open(out, "wb") as f:
        moat(root, "save", REF, stdout=f)
    with open(out, "rb") as x, open(saved, "rb") as y:
        assert x.read() == y.read()


def test_save_by_id_and_oci_format(tmp, imported):
    root, image_id = imported
    by_id = os.path.join(tmp, "by-id.tar")
    moat(root, "save", "-o", by_id, image_id[7:19])
    with tarfile.open(by_id) as t:
        manifest = json.load(t.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == []
    fresh = os.path.join(tmp, "moat-by-id")
    assert moat(fresh, "load", "-i", by_id).stdout.splitlines() == [f"Loaded image ID: {image_id}"]

    oci = os.path.join(tmp, "oci.tar")
    moat(root, "save", "--format", "oci", "-o", oci, REF)
    with tarfile.open(oci) as t:
        names = t.getnames()
        index = json.load(t.extractfile("index.json"))
    assert "manifest.json" not in names and "oci-layout" in names
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == REF
    fresh = os.path.join(tmp, "moat-oci")
    assert moat(fresh, "load", "-i", oci).stdout.splitlines() == [f"Loaded image: {REF}"]
    assert inspect(fresh, REF)["Id"] == image_id


def test_save_refuses_a_terminal(imported):
    root, _ = imported
    master, slave = pty.openpty()
    try:
        p = moat(root, "save", REF, stdout=slave, check=False)
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == 1
    assert "cowardly refusing to save to a terminal. Use the -o flag or redirect" in p.stderr


def test_save_failure_leaves_no_file(tmp, imported, rootfs_tar):
    root, _ = imported
    broken = os.path.join(tmp, "moat-broken")
    shutil.copytree(root, broken, symlinks=True)
    os.unlink(os.path.join(broken, "images", "blobs", "sha256", sha256_file(rootfs_tar)[7:]))
    outdir = os.path.join(tmp, "save-out")
    os.makedirs(outdir)
    target = os.path.join(outdir, "image.tar")
    with open(target, "w") as f:
        f.write("old content\n")
    p = moat(broken, "save", "-o", target, REF, check=False)
    assert p.returncode == 1 and p.stderr.startswith("moat: ")
    assert os.listdir(outdir) == ["image.tar"], "no temp file left"
    with open(target) as f:
        assert f.read() == "old content\n", "the old file is untouched"
    p = moat(root, "save", "-o", os.path.join(outdir, "new.tar"), "localhost/absent:1", check=False)
    assert p.returncode == 1 and "No such image" in p.stderr
    assert os.listdir(outdir) == ["image.tar"]


def test_podman_runs_saved_import(tmp, saved):
    if not PODMAN:
        pytest.skip("podman is not installed")
    if not shutil.which("runc"):
        pytest.skip("runc is not installed (crun cannot run on this hybrid cgroup host)")
    base = tempfile.mkdtemp(prefix="moat-pm-", dir="/tmp")  # podman wants a short runroot
    # root lacks CAP_SYS_RESOURCE here: keep rlimits within the hard limits;
    # crun refuses hybrid cgroups, so runc runs the container.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    podman = [PODMAN, "--root", f"{base}/storage", "--runroot", f"{base}/run", "--tmpdir", f"{base}/tmp",
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
              "--runtime", "runc"]
    try:
        p = subprocess.run(podman + ["load", "-i", saved], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert REF in p.stdout
        p = subprocess.run(podman + ["run", "--network", "none", "--rm", "--ulimit", f"nofile={nofile}:{nofile}",
                                     "--ulimit", f"nproc={nproc}:{nproc}", REF],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == PODMAN_OUTPUT
    finally:
        subprocess.run(podman + ["system", "reset", "-f"], capture_output=True, timeout=300)
        shutil.rmtree(base, ignore_errors=True)


def _umount_under(path):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in sorted((m for m in points if m == path or m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)


def _stop_pid(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not harness.wait_for(lambda: not harness.pid_alive(pid), timeout=30):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        harness.wait_for(lambda: not harness.pid_alive(pid), timeout=10)


def test_dockerd_loads_save(tmp, imported, saved):
    if not (os.access(DOCKERD, os.X_OK) and DOCKER):
        pytest.skip("dockerd or the docker CLI is not installed")
    root, image_id = imported
    t = tempfile.mkdtemp(prefix="dockerd-", dir="/tmp")
    sock = f"unix://{t}/d.sock"
    log = open(os.path.join(t, "log"), "w")
    proc = subprocess.Popen([DOCKERD, "--bridge=none", "--iptables=false", "--ip-forward=false",
                             "--data-root", f"{t}/data", "--exec-root", f"{t}/exec", "-H", sock,
                             "--pidfile", f"{t}/d.pid", "--storage-driver", "vfs"],
                            stdout=log, stderr=subprocess.STDOUT)
    docker = [DOCKER, "-H", sock]
    try:
        up = harness.wait_for(lambda: proc.poll() is None and subprocess.run(
            docker + ["version"], capture_output=True, timeout=30).returncode == 0, timeout=60, interval=0.5)
        if not up:
            log.flush()
            with open(os.path.join(t, "log")) as f:
                reason = f.read()[-2000:]
            pytest.skip(f"dockerd cannot start here: {reason}")
        p = subprocess.run(docker + ["load", "-i", saved], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"Loaded image: {REF}"
        p = subprocess.run(docker + ["image", "inspect", REF], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)[0]
        m = inspect(root, REF)
        assert d["Id"] == image_id
        assert d["RootFS"]["Layers"] == m["RootFS"]["Layers"]
        for key in ("Cmd", "Env", "WorkingDir", "User", "ExposedPorts", "Labels"):
            assert d["Config"][key] == m["Config"][key], key
        assert d["Comment"] == "Imported from -"
        p = subprocess.run(docker + ["history", "--format", "{{.Comment}}", REF], capture_output=True, text=True,
                           timeout=60)
        assert p.stdout.strip() == "Imported from -"
    finally:
        pid = proc.pid
        try:
            with open(f"{t}/d.pid") as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pass
        _stop_pid(pid)
        if proc.poll() is None:
            _stop_pid(proc.pid)
        proc.wait(timeout=30)
        log.close()
        harness.reap_orphans()
        _umount_under(t)
        shutil.rmtree(t, ignore_errors=True)


# ---- history -----------------------------------------------------------------------


def test_history_of_import(imported, rootfs_tar):
    root, image_id = imported
    lines = moat(root, "history", REF).stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(lines) == 2
    assert lines[1].startswith(image_id[7:19] + " ")
    assert lines[1].endswith("Imported from -")
    assert "ago" in lines[1]
    size = os.path.getsize(rootfs_tar)  # not unpacked: the layer blob's size
    raw = moat(root, "history", "--no-trunc", "-H=false", "--format", "{{.ID}}|{{.Size}}|{{.CreatedAt}}",
               REF).stdout.splitlines()
    assert len(raw) == 1
    rid, rsize, rat = raw[0].split("|")
    assert rid == image_id and int(rsize) == size
    assert rat[:4].isdigit() and "T" in rat
    assert moat(root, "history", "-q", REF).stdout.split() == [image_id[7:19]]
    assert moat(root, "history", "-q", "--no-trunc", image_id[7:19]).stdout.split() == [image_id]
    row = json.loads(moat(root, "history", "--format", "json", REF).stdout)
    assert sorted(row) == ["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"]
    assert row["ID"] == image_id[7:19] and row["Comment"] == "Imported from -" and row["CreatedBy"] == ""
    p = moat(root, "history", "localhost/absent:1", check=False)
    assert p.returncode == 1 and "No such image" in p.stderr


def _layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _layout_tar(path, layers, history, ref):
    """An OCI layout tarball of one image: uncompressed layers and history."""
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2020-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(x) for x in layers]},
        "history": history,
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(x), "size": len(x)}
                   for x in layers],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}}]}).encode()
    with tarfile.open(path, "w") as t:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)] + \
                [("blobs/sha256/" + _digest(b)[7:], b) for b in [config, manifest] + layers]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return _digest(config)


def test_history_layers_and_empty_layers(tmp):
    root = os.path.join(tmp, "moat-history")
    l1 = _layer({"bin/a": b"a" * 3000, "etc/b": b"b" * 100})
    l2 = _layer({"usr/c": b"c" * 5000})
    long_cmd = "RUN /bin/sh -c apk add --no-cache a-package-with-a-very-long-name # buildkit"
    history = [
        {"created": "2020-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:1234 in / "},
        {"created": "2020-01-01T00:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
        {"created": "2020-01-02T00:00:00Z", "created_by": long_cmd, "comment": "buildkit.dockerfile.v0"},
        {"created": "2020-01-02T00:00:01Z", "created_by": "ENV X=1", "empty_layer": True},
    ]
    ref = "localhost/moat-history:1"
    image_id = _layout_tar(os.path.join(tmp, "history.tar"), [l1, l2], history, ref)
    moat(root, "load", "-i", os.path.join(tmp, "history.tar"))

    rows = [json.loads(line) for line in
            moat(root, "history", "--format", "json", "-H=false", ref).stdout.splitlines()]
    assert [r["ID"] for r in rows] == [image_id[7:19], "<missing>", "<missing>", "<missing>"]
    assert [r["Size"] for r in rows] == ["0", str(len(l2)), "0", str(len(l1))]
    assert rows[0]["CreatedBy"] == "ENV X=1"
    assert rows[1]["CreatedBy"] == long_cmd[:44] + "\u2026", "truncated to 45 columns like docker"
    assert rows[1]["Comment"] == "buildkit.dockerfile.v0"
    assert rows[3]["CreatedBy"] == "/bin/sh -c #(nop) ADD file:1234 in / "
    full = [json.loads(line) for line in
            moat(root, "history", "--format", "json", "--no-trunc", ref).stdout.splitlines()]
    assert full[1]["CreatedBy"] == long_cmd and full[0]["ID"] == image_id
    assert full[3]["Size"] == f"{len(l1) / 1000:.3g}kB"

    table = moat(root, "history", ref).stdout.splitlines()
    assert len(table) == 5 and table[0].startswith("IMAGE ")
    assert [line.split()[0] for line in table[1:]] == [image_id[7:19], "<missing>", "<missing>", "<missing>"]
    col = table[0].index("CREATED BY")
    assert all(line[col - 1] == " " for line in table[1:]), "columns aligned"

    # More layer-making entries than layers: refused, as docker refuses it.
    bad = os.path.join(tmp, "history-bad.tar")
    _layout_tar(bad, [l1], history[:1] + history[2:3], "localhost/moat-history:bad")
    moat(root, "load", "-i", bad)
    p = moat(root, "history", "localhost/moat-history:bad", check=False)
    assert p.returncode == 1 and "too many non-empty layers in History section" in p.stderr


def _tree_size(top):
    """docker's directory.Size: non-directories' sizes, each inode once."""
    seen, total = set(), 0
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            st = os.lstat(os.path.join(d, name))
            if name in dirs and not os.path.islink(os.path.join(d, name)):
                continue
            if st.st_size == 0 or st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            total += st.st_size
    return total


def test_history_size_of_unpacked_layer(tmp, rootfs, rootfs_tar):
    root = os.path.join(tmp, "moat-unpacked")
    image_id = moat(root, "import", rootfs_tar, "localhost/moat-unpacked:1").stdout.strip()
    size = lambda: int(moat(root, "history", "-H=false", "--format", "{{.Size}}",  # noqa: E731
                            image_id).stdout)
    assert size() == os.path.getsize(rootfs_tar), "not unpacked: the layer blob's size"
    mp = moat(root, "mount", "localhost/moat-unpacked:1").stdout.strip()
    try:
        assert size() == _tree_size(rootfs), "unpacked: the tree's size, as docker counts it"
    finally:
        moat(root, "unmount", mp, check=False)
        _umount_under(root)
