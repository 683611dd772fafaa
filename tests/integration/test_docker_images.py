"""The image part of the Docker Engine API (`moat daemon`) driven by the real
docker CLI and python3-docker: load (with and without progress), images,
image inspect, inspect falling through from containers to images, history,
tag, rmi (by name, by ID prefix, refused for a container's image), save
(read back by podman), import with --change, image prune, system df, and
`docker run` of a missing image (pulling is not supported).

Images are made by podman from the busybox test rootfs. Each test starts
its own daemon on a temp socket and data root, removes its containers and
stops the daemon by pid."""

import grp
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from urllib.parse import quote

import pytest

from test_daemon import DOCKER, Daemon, moat_path

PODMAN = shutil.which("podman")
CURL = shutil.which("curl")
REF = "localhost/moat-img:1"
TIMEOUT = 120
PULL_MSG = "pulling images is not supported yet: moat has no registry client yet"


def podman_cmd(tmp):
    return [PODMAN, "--root", os.path.join(tmp, "storage"), "--runroot", os.path.join(tmp, "run"),
            "--storage-driver", "vfs"]


@pytest.fixture(scope="module")
def images(session_tmp, rootfs):
    """(rootfs tarball, docker-archive of REF, its config digest)."""
    if not PODMAN:
        pytest.skip("podman is not installed")
    if not DOCKER:
        pytest.skip("the docker CLI is not installed")
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    tmp = tempfile.mkdtemp(prefix="docker-images-", dir=session_tmp)
    podman = podman_cmd(tmp)
    rootfs_tar = os.path.join(tmp, "rootfs.tar")
    with tarfile.open(rootfs_tar, "w") as t:
        t.add(rootfs, arcname=".")
    try:
        p = subprocess.run(podman + ["import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV MOAT=api",
                                     "--change", "LABEL org.moat.test=yes", rootfs_tar, REF],
                           capture_output=True, text=True, timeout=TIMEOUT)
        if p.returncode != 0:
            pytest.skip(f"podman import fails on this host: {p.stderr.strip()}")
        archive = os.path.join(tmp, "img.tar")
        subprocess.run(podman + ["save", "--format", "docker-archive", "-o", archive, REF], check=True,
                       capture_output=True, timeout=TIMEOUT)
        image_id = subprocess.run(podman + ["image", "inspect", "--format", "{{.Id}}", REF], check=True,
                                  capture_output=True, text=True, timeout=TIMEOUT).stdout.strip()
        yield rootfs_tar, archive, "sha256:" + image_id.removeprefix("sha256:")
    finally:
        subprocess.run(podman + ["system", "reset", "-f"], capture_output=True, timeout=TIMEOUT)
        shutil.rmtree(tmp, ignore_errors=True)


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]


@pytest.fixture
def daemon(session_tmp):
    tmp = tempfile.mkdtemp(prefix="dimg-", dir="/tmp")
    group = "moatt" + os.urandom(3).hex()
    d = Daemon(tmp, group).start()
    try:
        yield d
    finally:
        try:
            ids = docker(d, "ps", "-aq").stdout.split()
            if ids:
                docker(d, "rm", "-f", *ids)
        finally:
            rc = d.stop()
            for m in reversed(mounts_under(tmp)):
                subprocess.run(["umount", "-l", m], capture_output=True)
            try:
                grp.getgrnam(group)
                subprocess.run(["groupdel", group], timeout=TIMEOUT)
            except KeyError:
                pass
            shutil.rmtree(tmp, ignore_errors=True)
        assert rc == 0, d.logtext()


def docker(d, *args, stdin=None):
    env = dict(os.environ, DOCKER_HOST="unix://" + d.sock)
    env.pop("DOCKER_API_VERSION", None)
    env.pop("DOCKER_CONTEXT", None)
    return subprocess.run([DOCKER, *args], capture_output=True, text=stdin is None, env=env, timeout=TIMEOUT,
                          stdin=stdin)


def ok(p):
    assert p.returncode == 0, f"rc={p.returncode} stdout={p.stdout!r} stderr={p.stderr!r}"
    return p.stdout


def client(d):
    docker_py = pytest.importorskip("docker")
    return docker_py.DockerClient(base_url="unix://" + d.sock, timeout=TIMEOUT)


def curl_json(d, path, method="GET"):
    if not CURL:
        pytest.skip("curl is not installed")
    p = subprocess.run([CURL, "-sS", "-f", "-X", method, "--unix-socket", d.sock, "http://moat" + path],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def load(d, archive):
    assert ok(docker(d, "load", "-q", "-i", archive)).splitlines() == [f"Loaded image: {REF}"]


def blob_names(d):
    return sorted(os.listdir(os.path.join(d.data, "images", "blobs", "sha256")))


# ---- load ------------------------------------------------------------------

def test_load_progress_and_quiet(daemon, images):
    _, archive, image_id = images
    c = client(daemon)
    with open(archive, "rb") as f:
        data = f.read()
    chunks = list(c.api.load_image(data))
    progress = [m for m in chunks if m.get("status") == "Loading layer"]
    assert progress, chunks
    for m in progress:
        assert re.fullmatch(r"[0-9a-f]{12}", m["id"])
        assert m["progressDetail"]["current"] <= m["progressDetail"]["total"]
        assert m["progress"].startswith("[") and "/" in m["progress"]
    last = progress[-1]["progressDetail"]
    assert last["current"] == last["total"]
    assert chunks[-1] == {"stream": f"Loaded image: {REF}\n"}

    # quiet: only the result line (the CLI asks quiet when not on a terminal)
    p = docker(daemon, "load", "-i", archive)
    assert ok(p).splitlines() == [f"Loaded image: {REF}"]
    loaded = c.images.load(data)
    assert [i.id for i in loaded] == [image_id]
    assert loaded[0].tags == [REF]


def test_load_error_is_in_band(daemon, images):
    c = client(daemon)
    docker_py = pytest.importorskip("docker")
    with pytest.raises(docker_py.errors.ImageLoadError):
        c.images.load(b"this is not an image archive" * 64)
    p = docker(daemon, "load", "-i", "/dev/null")
    assert p.returncode == 1
    assert p.stderr.strip() != ""


# ---- list, inspect, history ---------------------------------------------------

def test_images_inspect_history(daemon, images):
    _, archive, image_id = images
    load(daemon, archive)
    lines = ok(docker(daemon, "images")).splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert len(lines) == 2
    cols = re.split(r"\s{2,}", lines[1].strip())
    assert cols[:3] == ["localhost/moat-img", "1", image_id[7:19]]
    assert cols[4].endswith("MB") or cols[4].endswith("kB")
    assert ok(docker(daemon, "images", "-q")).split() == [image_id[7:19]]
    assert ok(docker(daemon, "images", "-q", "--no-trunc")).split() == [image_id]

    doc = json.loads(ok(docker(daemon, "image", "inspect", REF)))
    assert len(doc) == 1
    img = doc[0]
    assert img["Id"] == image_id
    assert img["RepoTags"] == [REF]
    assert img["RepoDigests"][0].startswith("localhost/moat-img@sha256:")
    assert img["Os"] == "linux" and img["Architecture"]
    assert img["Config"]["Cmd"] == ["/bin/sh"]
    assert "MOAT=api" in img["Config"]["Env"]
    assert img["Config"]["Labels"] == {"org.moat.test": "yes"}
    assert img["RootFS"]["Type"] == "layers" and len(img["RootFS"]["Layers"]) == 1
    assert img["Size"] > 0 and img["GraphDriver"]["Name"]
    assert img["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    for key in ("Parent", "Comment", "Created", "DockerVersion", "Author"):
        assert key in img

    # docker inspect tries containers first, then images
    assert json.loads(ok(docker(daemon, "inspect", REF)))[0]["Id"] == image_id
    assert ok(docker(daemon, "inspect", "--format", "{{.Id}}", image_id[7:19])).strip() == image_id
    p = docker(daemon, "image", "inspect", "nosuch:1")
    assert p.returncode == 1 and "No such image: nosuch:1" in p.stderr

    hist = ok(docker(daemon, "history", REF)).splitlines()
    assert re.split(r"\s{2,}", hist[0].strip()) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert hist[1].split()[0] == image_id[7:19]

    c = client(daemon)
    assert [i.id for i in c.images.list()] == [image_id]
    got = c.images.get(REF)
    assert got.id == image_id and got.tags == [REF] and got.labels == {"org.moat.test": "yes"}
    h = got.history()
    assert h[0]["Id"] == image_id and h[0]["Tags"] == [REF] and h[0]["Size"] > 0

    summary = curl_json(daemon, "/images/json?shared-size=1")
    assert summary[0]["Id"] == image_id and summary[0]["SharedSize"] == 0 and summary[0]["Containers"] == -1
    assert summary[0]["Labels"] == {"org.moat.test": "yes"}
    assert curl_json(daemon, "/images/json?filters=" + quote('{"dangling":{"true":true}}')) == []
    assert curl_json(daemon, "/images/json?filters=" + quote('{"reference":{"localhost/moat-*":true}}'))[0]["Id"] \
        == image_id
    assert curl_json(daemon, "/images/json?filters=" + quote('{"label":{"org.moat.test=no":true}}')) == []
    assert ok(docker(daemon, "images", "-q", "--filter", "label=org.moat.test=yes")).split() == [image_id[7:19]]
    assert ok(docker(daemon, "images", "-q", "--filter", "until=1h")) == ""
    assert ok(docker(daemon, "images", "-q", "--filter", "until=4102444800")).split() == [image_id[7:19]]
    p = docker(daemon, "images", "--filter", "frobnicate=1")
    assert p.returncode == 1 and "invalid filter 'frobnicate'" in p.stderr


# ---- tag, rmi -------------------------------------------------------------------

def test_tag_and_rmi(daemon, images):
    _, archive, image_id = images
    load(daemon, archive)
    before = blob_names(daemon)
    ok(docker(daemon, "tag", REF, "moat-extra:2"))
    doc = json.loads(ok(docker(daemon, "image", "inspect", "moat-extra:2")))[0]
    assert sorted(doc["RepoTags"]) == sorted([REF, "moat-extra:2"])
    rows = ok(docker(daemon, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")).splitlines()
    assert sorted(rows) == sorted([f"{REF} {image_id[7:19]}", f"moat-extra:2 {image_id[7:19]}"])

    assert ok(docker(daemon, "rmi", "moat-extra:2")).splitlines() == ["Untagged: moat-extra:2"]
    assert blob_names(daemon) == before

    # python: tag and remove
    c = client(daemon)
    assert c.images.get(REF).tag("pyrepo", "t1")
    assert sorted(c.images.get("pyrepo:t1").tags) == sorted([REF, "pyrepo:t1"])
    c.images.remove("pyrepo:t1")
    assert c.images.get(REF).tags == [REF]

    # by ID prefix: its one name goes, then the image and its layer
    out = ok(docker(daemon, "rmi", image_id[7:17])).splitlines()
    assert out[0] == f"Untagged: {REF}"
    assert out[1] == f"Deleted: {image_id}"
    assert out[2] == f"Deleted: {doc['RootFS']['Layers'][0]}"
    assert blob_names(daemon) == []
    assert ok(docker(daemon, "images", "-q")) == ""
    p = docker(daemon, "rmi", REF)
    assert p.returncode == 1 and f"No such image: {REF}" in p.stderr


def test_rmi_of_a_containers_image(daemon, images):
    _, archive, image_id = images
    load(daemon, archive)
    cid = ok(docker(daemon, "run", "-d", "--network", "none", REF, "sleep", "1000")).strip()
    short = cid[:12]

    p = docker(daemon, "rmi", REF)
    assert p.returncode == 1
    assert (f'conflict: unable to remove repository reference "{REF}" (must force) - container {short} '
            f"is using its referenced image {image_id[7:19]}") in p.stderr
    p = docker(daemon, "rmi", "-f", image_id)
    assert p.returncode == 1
    assert (f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - image is being used by running "
            f"container {short}") in p.stderr
    assert ok(docker(daemon, "images", "-q", "--no-trunc")).split() == [image_id]

    ok(docker(daemon, "kill", cid))
    ok(docker(daemon, "wait", cid))
    p = docker(daemon, "rmi", image_id)
    assert p.returncode == 1
    assert (f"conflict: unable to delete {image_id[7:19]} (must be forced) - image is being used by stopped "
            f"container {short}") in p.stderr
    out = ok(docker(daemon, "rmi", "-f", image_id)).splitlines()
    assert out[:2] == [f"Untagged: {REF}", f"Deleted: {image_id}"]
    assert ok(docker(daemon, "images", "-q")) == ""
    assert ok(docker(daemon, "ps", "-aq", "--no-trunc")).split() == [cid]


# ---- save, import -----------------------------------------------------------------

def test_save_then_podman_load(daemon, images, tmp_path):
    _, archive, image_id = images
    load(daemon, archive)
    out = str(tmp_path / "saved.tar")
    ok(docker(daemon, "save", "-o", out, REF))
    with tarfile.open(out) as t:
        names = t.getnames()
        manifest = json.load(t.extractfile("manifest.json"))
    assert "index.json" in names and manifest[0]["RepoTags"] == [REF]

    pod = tempfile.mkdtemp(prefix="pl-", dir="/tmp")  # podman wants a short runroot
    podman = podman_cmd(pod)
    try:
        p = subprocess.run(podman + ["load", "-i", out], capture_output=True, text=True, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        got = subprocess.run(podman + ["image", "inspect", "--format", "{{.Id}}", REF], capture_output=True,
                             text=True, timeout=TIMEOUT)
        assert got.returncode == 0, got.stderr
        assert "sha256:" + got.stdout.strip().removeprefix("sha256:") == image_id
    finally:
        subprocess.run(podman + ["system", "reset", "-f"], capture_output=True, timeout=TIMEOUT)
        shutil.rmtree(pod, ignore_errors=True)

    # python saves by ID: an archive without a name, loaded back as the same ID
    c = client(daemon)
    data = b"".join(c.images.get(REF).save())
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert not json.load(t.extractfile("manifest.json"))[0].get("RepoTags")
    ok(docker(daemon, "rmi", REF))
    loaded = c.images.load(data)
    assert [i.id for i in loaded] == [image_id]

    p = docker(daemon, "save", "-o", str(tmp_path / "none.tar"), "nosuch:1")
    assert p.returncode == 1 and "No such image" in p.stderr
    assert not (tmp_path / "none.tar").exists() or (tmp_path / "none.tar").stat().st_size == 0


def test_import_with_changes(daemon, images):
    rootfs_tar, _, _ = images
    out = ok(docker(daemon, "import", "--change", "ENV IMPORTED=yes", "--change", 'CMD ["/bin/echo", "hi"]',
                    "-m", "from the test", rootfs_tar, "imported:1")).strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", out)
    img = json.loads(ok(docker(daemon, "image", "inspect", "imported:1")))[0]
    assert img["Id"] == out
    assert "IMPORTED=yes" in img["Config"]["Env"]
    assert img["Config"]["Cmd"] == ["/bin/echo", "hi"]
    assert img["Comment"] == "from the test"
    hist = json.loads(ok(docker(daemon, "history", "--format", "{{json .}}", "--no-trunc", "imported:1"))
                      .splitlines()[0])
    assert hist["Comment"] == "from the test"
    p = docker(daemon, "run", "--rm", "--network", "none", "imported:1")
    assert ok(p).strip() == "hi"

    p = docker(daemon, "import", "--change", "FROBNICATE x", rootfs_tar, "bad:1")
    assert p.returncode == 1 and "FROBNICATE" in p.stderr


# ---- prune, system df, run ----------------------------------------------------------

def test_image_prune(daemon, images):
    rootfs_tar, archive, image_id = images
    load(daemon, archive)
    with open(rootfs_tar, "rb") as f:
        dangling = docker(daemon, "import", "-m", "dangling", "-", stdin=f)
    assert dangling.returncode == 0, dangling.stderr
    dangling_id = dangling.stdout.decode().strip()
    ids = ok(docker(daemon, "images", "-q", "--no-trunc")).split()
    assert sorted(ids) == sorted([image_id, dangling_id])
    assert ok(docker(daemon, "images", "-q", "--no-trunc", "--filter", "dangling=true")).split() == [dangling_id]

    out = ok(docker(daemon, "image", "prune", "-f")).splitlines()
    assert out[0] == "Deleted Images:" and f"deleted: {dangling_id}" in out
    assert out[-1].startswith("Total reclaimed space: ")
    assert ok(docker(daemon, "images", "-q", "--no-trunc")).split() == [image_id]

    # -a keeps what a container uses
    ok(docker(daemon, "create", "--network", "none", REF))
    ok(docker(daemon, "import", rootfs_tar, "unused:1"))
    out = ok(docker(daemon, "image", "prune", "-a", "-f")).splitlines()
    assert "untagged: unused:1" in out
    assert ok(docker(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}")).split() == [REF]

    # no image has the label x: nothing goes
    p = docker(daemon, "image", "prune", "-a", "-f", "--filter", "label=x")
    assert p.returncode == 0 and "Total reclaimed space: 0B" in p.stdout, (p.stdout, p.stderr)
    assert ok(docker(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}")).split() == [REF]


def test_system_df(daemon, images):
    _, archive, image_id = images
    load(daemon, archive)
    ok(docker(daemon, "run", "--name", "writer", "--network", "none", REF, "sh", "-c",
              "dd if=/dev/zero of=/written bs=1024 count=200 2>/dev/null"))
    df = curl_json(daemon, "/system/df")
    assert df["LayersSize"] > 0
    assert [i["Id"] for i in df["Images"]] == [image_id]
    assert df["Images"][0]["Containers"] == 1
    assert df["Images"][0]["SharedSize"] == 0
    ctr = df["Containers"][0]
    assert ctr["Names"] == ["/writer"] and ctr["ImageID"] == image_id
    assert ctr["SizeRw"] >= 200 * 1024
    assert ctr["SizeRootFs"] >= ctr["SizeRw"] + df["Images"][0]["Size"]
    assert df["Volumes"] == [] and df["BuildCache"] == []

    rows = {}
    for line in ok(docker(daemon, "system", "df", "--format", "{{json .}}")).splitlines():
        r = json.loads(line)
        rows[r["Type"]] = r
    assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "1"
    assert rows["Containers"]["TotalCount"] == "1" and rows["Containers"]["Active"] == "0"
    assert rows["Containers"]["Size"] != "0B"
    assert rows["Local Volumes"]["TotalCount"] == "0"


def test_run_missing_image_cannot_pull(daemon, images):
    p = docker(daemon, "run", "--rm", "--network", "none", "nosuch-image:1", "true")
    assert p.returncode == 125
    assert "Unable to find image 'nosuch-image:1' locally" in p.stderr
    assert PULL_MSG in p.stderr
    p = docker(daemon, "pull", "busybox:latest")
    assert p.returncode == 1 and PULL_MSG in p.stderr
