"""The `moat` client's image verbs (load, images, tag, rmi, inspect, prune)
as clients of a `moat daemon` whose data root is the test's root (one
daemon per root, started on first use: daemon_fixture.MoatDaemon), and
verify, which has no Docker API and runs in-process on --root. Images are
made by podman from the busybox test rootfs (docker-archive and
oci-archive) and small docker-archives written here (tagged or not, to
test docker's untagged-image, ID and removal rules); what the verbs did
is also checked in the store the daemon keeps under the root."""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

import harness
import image_daemons

PODMAN = shutil.which("podman")
REF = "localhost/moat-cli:1"


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


@pytest.fixture(scope="module")
def images(session_tmp, rootfs):
    """(tmp dir, docker-archive path, oci-archive path); skips when podman
    cannot make the image on this host."""
    if not PODMAN:
        pytest.skip("podman is not installed")
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    tmp = tempfile.mkdtemp(prefix="images-cli-", dir=session_tmp)
    podman = [PODMAN, "--root", os.path.join(tmp, "storage"), "--runroot", os.path.join(tmp, "run"),
              "--storage-driver", "vfs"]
    rootfs_tar = os.path.join(tmp, "rootfs.tar")
    with tarfile.open(rootfs_tar, "w") as t:
        t.add(rootfs, arcname=".")
    try:
        p = subprocess.run(podman + ["import", "--change", 'CMD ["/bin/sh"]', "--change", "ENV MOAT=cli",
                                     "--change", "WORKDIR /tmp", rootfs_tar, REF],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            pytest.skip(f"podman import fails on this host: {p.stderr.strip()}")
        docker_tar = os.path.join(tmp, "img.tar")
        oci_tar = os.path.join(tmp, "img-oci.tar")
        for fmt, out in (("docker-archive", docker_tar), ("oci-archive", oci_tar)):
            subprocess.run(podman + ["save", "--format", fmt, "-o", out, REF], check=True,
                           capture_output=True, timeout=120)
        yield tmp, docker_tar, oci_tar
    finally:
        subprocess.run(podman + ["system", "reset", "-f"], capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def moat_argv(root, *args):
    return image_daemons.moat_argv(root, *args)


def moat(root, *args, check=True, stdin=None):
    p = subprocess.run(moat_argv(root, *args), capture_output=True, text=True,
                       stdin=stdin, timeout=120)
    if check:
        assert p.returncode == 0, f"moat {' '.join(args)}: rc={p.returncode} stderr={p.stderr!r}"
    return p


def blobs(root):
    d = os.path.join(root, "images", "blobs", "sha256")
    return sorted(os.listdir(d))


def check_lifecycle(root, archive):
    p = moat(root, "load", "-i", archive)
    assert p.stdout.splitlines() == [f"Loaded image: {REF}"]

    p = moat(root, "images")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert len(lines) == 2 and lines[1].split()[:2] == ["localhost/moat-cli", "1"]

    rows = [json.loads(line) for line in moat(root, "images", "--digests", "--format", "json").stdout.splitlines()]
    assert len(rows) == 1
    assert rows[0]["Repository"] == "localhost/moat-cli" and rows[0]["Tag"] == "1"
    assert rows[0]["Digest"].startswith("sha256:")

    doc = json.loads(moat(root, "inspect", REF).stdout)
    assert len(doc) == 1
    img = doc[0]
    assert img["Id"].startswith("sha256:") and img["Id"][7:19] == rows[0]["ID"]
    assert img["RepoTags"] == [REF]
    assert img["Os"] == "linux"
    assert img["Config"]["Cmd"] == ["/bin/sh"]
    assert "MOAT=cli" in img["Config"]["Env"]
    assert img["Config"]["WorkingDir"] == "/tmp"
    assert img["RootFS"]["Type"] == "layers"
    assert len(img["RootFS"]["Layers"]) == 1 and img["RootFS"]["Layers"][0].startswith("sha256:")
    assert img["Size"] > 0
    assert moat(root, "images", "-q").stdout.split() == [img["Id"][7:19]]

    moat(root, "tag", REF, "moat-extra:2")
    assert sorted(json.loads(moat(root, "inspect", "moat-extra:2").stdout)[0]["RepoTags"]) == \
        sorted([REF, "moat-extra:2"])
    before = blobs(root)
    p = moat(root, "rmi", "moat-extra:2")
    assert p.stdout.splitlines() == ["Untagged: moat-extra:2"]
    assert blobs(root) == before
    moat(root, "inspect", REF)

    p = moat(root, "rmi", REF)
    lines = p.stdout.splitlines()
    assert lines[0] == f"Untagged: {REF}"
    assert lines[1] == f"Deleted: {img['Id']}"
    # then the layer's ChainID (one layer: its DiffID)
    assert lines[2:] == [f"Deleted: {img['RootFS']['Layers'][0]}"]
    assert blobs(root) == []
    assert moat(root, "images", "-q").stdout == ""

    p = moat(root, "image", "inspect", REF, check=False)
    assert p.returncode == 1 and p.stderr == f"Error: No such image: {REF}\n"


def test_oci_archive_lifecycle(images):
    tmp, _, oci_tar = images
    check_lifecycle(os.path.join(tmp, "moat-oci"), oci_tar)


def test_docker_archive_lifecycle(images):
    tmp, docker_tar, _ = images
    check_lifecycle(os.path.join(tmp, "moat-docker"), docker_tar)


def test_load_from_stdin(images):
    tmp, _, oci_tar = images
    root = os.path.join(tmp, "moat-stdin")
    with open(oci_tar, "rb") as f:
        p = moat(root, "load", stdin=f)
    assert p.stdout.splitlines() == [f"Loaded image: {REF}"]


def test_corrupt_layer_fails(images):
    tmp, _, oci_tar = images
    with tarfile.open(oci_tar) as t:
        layer = max((m for m in t.getmembers() if m.isfile()), key=lambda m: m.size)
    data = bytearray(open(oci_tar, "rb").read())
    data[layer.offset_data + layer.size // 2] ^= 0xFF
    bad = os.path.join(tmp, "bad.tar")
    with open(bad, "wb") as f:
        f.write(data)
    root = os.path.join(tmp, "moat-bad")
    p = moat(root, "load", "-i", bad, check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("moat: ") and len(p.stderr.splitlines()) == 1
    assert layer.name in p.stderr and "mismatch" in p.stderr
    assert moat(root, "images", "-q").stdout == ""


def test_usage_errors(images):
    tmp, _, _ = images
    root = os.path.join(tmp, "moat-usage")
    for args in (["bogus"], ["tag", "only-one"], ["rmi"], ["images", "--format", "{{.Bogus}}"],
                 ["load", "-i", os.path.join(tmp, "missing.tar")]):
        p = moat(root, *args, check=False)
        assert p.returncode == 1, args
        assert p.stderr.startswith("moat: "), (args, p.stderr)


# ---- docker-archives made here ---------------------------------------------

def layer_tar(files):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        for name, data in files.items():
            i = tarfile.TarInfo(name)
            i.size = len(data)
            i.mtime = 1600000000
            t.addfile(i, io.BytesIO(data))
    return b.getvalue()


def make_archive(path, tags, content=b"hello\n", created="2024-01-01T00:00:00Z", size=0):
    """A legacy docker-archive of one one-layer image; returns (image ID, DiffID)."""
    layer = layer_tar({"etc/hello": content, "data": b"x" * size})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": created,
                      "config": {"Cmd": ["/bin/sh"], "Env": ["A=<b>&c"]},
                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cfg_hex = hashlib.sha256(cfg).hexdigest()
    manifest = json.dumps([{"Config": cfg_hex + ".json", "RepoTags": tags or None,
                            "Layers": ["l1/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as t:
        for name, data in ((cfg_hex + ".json", cfg), ("l1/layer.tar", layer), ("manifest.json", manifest)):
            i = tarfile.TarInfo(name)
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))
    return "sha256:" + cfg_hex, diff_id


@pytest.fixture
def work(session_tmp):
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    tmp = tempfile.mkdtemp(prefix="images-verbs-", dir=session_tmp)
    try:
        yield tmp, os.path.join(tmp, "root")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def index_entries(root):
    with open(os.path.join(root, "images", "index.json")) as f:
        return json.load(f)["manifests"]


def ref_name(entry):
    return (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")


def table(stdout):
    """Rows of a docker table split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()]


def test_untagged_load_and_dangling(work):
    tmp, root = work
    a = os.path.join(tmp, "untagged.tar")
    ida, _ = make_archive(a, [])
    p = moat(root, "load", "-i", a)
    assert p.stdout.splitlines() == [f"Loaded image ID: {ida}"]
    entries = index_entries(root)
    assert len(entries) == 1 and ref_name(entries[0]) is None and "annotations" not in entries[0]
    rows = table(moat(root, "images").stdout)
    assert rows[0] == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert rows[1][:3] == ["<none>", "<none>", ida[7:19]]
    assert rows[1][3].endswith(" ago") and re.fullmatch(r"[0-9.]+kB", rows[1][4])

    # a tagged image loaded next to it; removing it collects nothing of the untagged one
    b = os.path.join(tmp, "tagged.tar")
    idb, _ = make_archive(b, ["busybox:latest"], content=b"other\n")
    assert moat(root, "load", "-i", b).stdout.splitlines() == ["Loaded image: busybox:latest"]
    before = set(blobs(root))
    moat(root, "rmi", "busybox")
    assert moat(root, "images", "-q", "--no-trunc").stdout.split() == [ida]
    assert set(blobs(root)) < before and ida[7:] in blobs(root)

    # loading the same image with a name: the untagged entry goes
    c = os.path.join(tmp, "named.tar")
    make_archive(c, ["moat/named:1"])
    moat(root, "load", "-i", c)
    entries = index_entries(root)
    assert [ref_name(e) for e in entries] == ["docker.io/moat/named:1"]
    tag_time = entries[0]["annotations"]["io.moat.image.tag-time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", tag_time)

    # a load that re-uses the name for another image leaves the first dangling
    d = os.path.join(tmp, "retag.tar")
    idd, _ = make_archive(d, ["moat/named:1"], content=b"newer\n", created="2024-06-01T00:00:00Z")
    moat(root, "load", "-i", d)
    rows = table(moat(root, "images").stdout)[1:]
    assert rows[0][:3] == ["moat/named", "1", idd[7:19]]
    assert rows[1][:3] == ["<none>", "<none>", ida[7:19]]
    assert moat(root, "images", "--filter", "dangling=true", "-q").stdout.split() == [ida[7:19]]
    assert moat(root, "images", "-f", "dangling=false", "-q").stdout.split() == [idd[7:19]]
    entries = index_entries(root)
    assert sorted(str(ref_name(e)) for e in entries) == ["None", "docker.io/moat/named:1"]

    # re-tag moves a name the same way
    moat(root, "tag", ida[7:19], "moat/named:1")
    assert moat(root, "images", "-f", "dangling=true", "-q", "--no-trunc").stdout.split() == [idd]

    # prune removes the dangling image, reports it and what was reclaimed
    p = moat(root, "prune", "-f")
    lines = p.stdout.splitlines()
    assert lines[0] == "Deleted Images:"
    assert lines[1] == f"deleted: {idd}"
    assert lines[2].startswith("deleted: sha256:") and lines[3] == ""
    assert re.fullmatch(r"Total reclaimed space: [0-9.]+kB", lines[4]) and len(lines) == 5
    assert idd[7:] not in blobs(root) and ida[7:] in blobs(root)
    p = moat(root, "prune", "-f")
    assert p.stdout == "Total reclaimed space: 0B\n"

    # prune -a removes every image
    p = moat(root, "prune", "-a", "--force")
    lines = p.stdout.splitlines()
    assert lines[:3] == ["Deleted Images:", "untagged: moat/named:1", f"deleted: {ida}"]
    assert blobs(root) == [] and index_entries(root) == []


def test_ids_and_rmi_rules(work):
    tmp, root = work
    a = os.path.join(tmp, "a.tar")
    ida, diffa = make_archive(a, ["busybox:latest"])
    moat(root, "load", "-i", a)
    moat(root, "tag", "busybox", "moat/other:2")
    moat(root, "tag", ida, "moat/third:3")

    # every verb takes an ID, its bare hex or a unique prefix
    for name in (ida, ida[7:], ida[7:19], ida[7:11], "sha256:" + ida[7:15]):
        doc = json.loads(moat(root, "inspect", name).stdout)
        assert doc[0]["Id"] == ida, name
        assert sorted(doc[0]["RepoTags"]) == ["busybox:latest", "moat/other:2", "moat/third:3"]

    # by ID with several names: refused without -f
    p = moat(root, "rmi", ida[7:19], check=False)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == (f"Error response from daemon: conflict: unable to delete {ida[7:19]} (must be forced) - "
                        "image is referenced in multiple repositories\n")

    # several arguments in order, each error printed, exit 1 when any failed
    p = moat(root, "rmi", "moat/other:2", "nothere", "moat/third:3", check=False)
    assert p.returncode == 1
    assert p.stdout.splitlines() == ["Untagged: moat/other:2", "Untagged: moat/third:3"]
    assert p.stderr.splitlines() == ["Error response from daemon: No such image: nothere"]
    assert len(blobs(root)) == 3

    p = moat(root, "rmi", "--no-prune", ida[7:])
    assert p.stdout.splitlines() == ["Untagged: busybox:latest", f"Deleted: {ida}", f"Deleted: {diffa}"]
    assert blobs(root) == [] and index_entries(root) == []

    # -f by ID removes every name
    ida, diffa = make_archive(a, ["busybox:latest", "moat/x:1"])
    moat(root, "load", "-i", a)
    p = moat(root, "rmi", "-f", ida[7:19])
    assert p.stdout.splitlines() == ["Untagged: busybox:latest", "Untagged: moat/x:1", f"Deleted: {ida}",
                                     f"Deleted: {diffa}"]

    # an ambiguous prefix names it
    ids = set()
    i = 0
    while True:
        idn, _ = make_archive(a, [f"moat/amb:{i}"], content=f"{i}\n".encode())
        moat(root, "load", "-i", a)
        if any(x[7] == idn[7] for x in ids):
            break
        ids.add(idn)
        i += 1
    p = moat(root, "inspect", idn[7], check=False)
    assert p.returncode == 1
    assert f"multiple IDs found with provided prefix: {idn[7]}" in p.stderr


def test_images_columns_filters_formats(work):
    tmp, root = work
    a = os.path.join(tmp, "a.tar")
    ida, _ = make_archive(a, ["busybox:latest", "busybox:1", "localhost:5000/moat/x:y"], size=2_000_000,
                          created="2020-01-01T00:00:00Z")
    moat(root, "load", "-i", a)
    b = os.path.join(tmp, "b.tar")
    idb, _ = make_archive(b, ["alpine:3"], content=b"b\n", created="2030-01-01T00:00:00Z")
    moat(root, "load", "-i", b)

    out = moat(root, "images").stdout.splitlines()
    # docker's tabwriter: columns padded to the widest cell + 3, at least 10
    years = int((time.time() - 1577836800) // 3600) // 24 // 365
    assert out == [
        "REPOSITORY              TAG       IMAGE ID       CREATED                  SIZE",
        f"alpine                  3         {idb[7:19]}   Less than a second ago   10.2kB",
        f"busybox                 1         {ida[7:19]}   {years} years ago{' ' * (25 - len(f'{years} years ago'))}2.01MB",
        f"busybox                 latest    {ida[7:19]}   {years} years ago{' ' * (25 - len(f'{years} years ago'))}2.01MB",
        f"localhost:5000/moat/x   y         {ida[7:19]}   {years} years ago{' ' * (25 - len(f'{years} years ago'))}2.01MB",
    ]

    assert moat(root, "images", "-q").stdout.split() == [idb[7:19]] + [ida[7:19]] * 3
    assert moat(root, "images", "busybox").stdout.count("\n") == 3
    assert moat(root, "images", "busybox:1", "-q").stdout.split() == [ida[7:19]]
    assert moat(root, "images", "--filter", "reference=*/moat/*", "-q").stdout.split() == [ida[7:19]]
    assert moat(root, "images", "--filter", "reference=busy*:l*", "--format", "{{.Repository}}:{{.Tag}}").stdout \
        == "busybox:latest\n"

    rows = [json.loads(line) for line in moat(root, "images", "--format", "json", "alpine").stdout.splitlines()]
    assert list(rows[0]) == sorted(rows[0]) and set(rows[0]) >= {"Repository", "Tag", "ID", "CreatedSince",
                                                               "CreatedAt", "Size", "Digest", "VirtualSize"}
    assert rows[0]["ID"] == idb[7:19] and rows[0]["Repository"] == "alpine"
    assert re.fullmatch(r"20(29-12-31|30-01-01) \d\d:\d\d:\d\d [+-]\d{4} \S+", rows[0]["CreatedAt"])
    assert rows[0]["Containers"] == "N/A" and rows[0]["Size"] == "10.2kB" and rows[0]["Tag"] == "3"

    p = moat(root, "images", "--no-trunc", "--digests", "alpine")
    head, row = table(p.stdout)
    assert head == ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    assert row[2].startswith("sha256:") and row[3] == idb

    p = moat(root, "images", "--format", "table {{.ID}}\\t{{.Repository}}", "alpine")
    assert p.stdout == f"IMAGE ID       REPOSITORY\n{idb[7:19]}   alpine\n"
    p = moat(root, "images", "--format", "{{ .Tag }}|{{json .Size}}", "alpine")
    assert p.stdout == '3|"10.2kB"\n'

    for args, msg in ((["--format", "{{.Nope}}"], 'unknown placeholder "{{.Nope}}"'),
                      (["--format", "{{range .}}"], "unsupported template action"),
                      (["--filter", "bogus=1"], "invalid filter 'bogus'"),
                      (["--filter", "dangling=maybe"], "invalid filter 'dangling=maybe'"),
                      (["--filter", "nothing"], "bad format of filter"),
                      (["a", "b"], "requires at most 1 argument"),
                      (["--bogus"], 'unknown flag: --bogus'),
                      (["--format"], "needs an argument")):
        p = moat(root, "images", *args, check=False)
        assert p.returncode == 1, args
        assert p.stderr.startswith("moat: ") and msg in p.stderr, (args, p.stderr)


def test_inspect_fields_and_format(work):
    tmp, root = work
    a = os.path.join(tmp, "a.tar")
    ida, diffa = make_archive(a, ["busybox:latest"])
    moat(root, "load", "-i", a)
    p = moat(root, "inspect", "busybox")
    assert "\\u003cb\\u003e\\u0026c" in p.stdout  # Go's JSON escaping
    img = json.loads(p.stdout)[0]
    assert list(img)[:6] == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created"]
    for k in ("Config", "Architecture", "Os", "Size", "RootFS", "Metadata"):
        assert k in img
    assert img["Id"] == ida and img["RepoTags"] == ["busybox:latest"]
    entry = index_entries(root)[0]
    assert img["RepoDigests"] == [f"busybox@{entry['digest']}"]
    assert img["Created"] == "2024-01-01T00:00:00Z" and img["Architecture"] == "amd64"
    assert img["RootFS"] == {"Type": "layers", "Layers": [diffa]}
    assert img["Metadata"]["LastTagTime"] == entry["annotations"]["io.moat.image.tag-time"]
    assert img["Config"]["Env"] == ["A=<b>&c"]

    p = moat(root, "inspect", "--format", "{{.Id}} {{.Os}}/{{.Architecture}} {{.Config.Cmd}} {{json .RootFS.Layers}}",
             ida[7:19])
    assert p.stdout == f'{ida} linux/amd64 [/bin/sh] ["{diffa}"]\n'

    p = moat(root, "inspect", "nothere", check=False)
    assert p.returncode == 1 and p.stdout == "[]\n" and p.stderr == "Error: No such object: nothere\n"
    p = moat(root, "inspect", "busybox", "nothere", check=False)
    assert p.returncode == 1 and json.loads(p.stdout)[0]["Id"] == ida
    p = moat(root, "inspect", "-f", "{{.Nope}}", "busybox", check=False)
    assert p.returncode == 1 and 'no field "Nope"' in p.stderr
    p = moat(root, "tag", "busybox", "Bad/Upper", check=False)
    assert p.returncode == 1 and p.stderr.startswith("moat: ") and "Bad/Upper" in p.stderr


def test_verify(work):
    tmp, root = work
    a = os.path.join(tmp, "a.tar")
    ida, diffa = make_archive(a, ["busybox:latest"], size=100_000)
    moat(root, "load", "-i", a)
    p = moat(root, "verify")
    assert re.fullmatch(r"verified 3 blobs \([0-9.]+kB\) and 0 layer trees: no problems\n", p.stdout)

    # flip a byte of the layer blob on disk
    path = os.path.join(root, "images", "blobs", "sha256", diffa[7:])
    with open(path, "r+b") as f:
        f.seek(600)
        c = f.read(1)
        f.seek(600)
        f.write(bytes([c[0] ^ 0xFF]))
    os.mkdir(os.path.join(root, "images", "layers", "sha256:" + "ab" * 32))
    p = moat(root, "verify", check=False)
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"{diffa}: content hashes to sha256:")
    assert lines[1].startswith("    referenced by: busybox:latest (layer 1 of manifest sha256:")
    assert lines[2] == f"layers/sha256:{'ab' * 32}: stray layer tree: no image in the store has this ChainID"
    assert re.fullmatch(r"verified 3 blobs \([0-9.]+kB\) and 1 layer tree: 2 problems", lines[3])
    assert len(lines) == 4


def test_load_progress_on_a_terminal(work):
    tmp, root = work
    a = os.path.join(tmp, "a.tar")
    make_archive(a, ["busybox:latest"], size=3_000_000)
    cmd = " ".join(moat_argv(root, "load", "-i", a))
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=120,
                       env={**os.environ, "COLUMNS": "80", "TERM": "xterm"})
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    # docker's jsonmessage drawing: clear the line, id, status, sizes, redrawn in place
    assert re.search(r"\x1b\[2K\rl1: Loading layer \[[=> ]+\] +[0-9.]+[kM]B/3\.011MB\r", out), out
    assert "3.011MB/3.011MB" in out
    assert out.replace("\r\n", "\n").rstrip("\n").endswith("Loaded image: busybox:latest")
    # not a terminal: only the result; -q on a terminal: the same
    rm = moat(root, "rmi", "busybox")
    assert rm.returncode == 0
    p = moat(root, "load", "-i", a)
    assert p.stdout == "Loaded image: busybox:latest\n" and "\x1b" not in p.stdout + p.stderr
    p = subprocess.run(["script", "-qec", cmd + " -q", "/dev/null"], capture_output=True, timeout=120)
    assert p.stdout.decode().replace("\r\n", "\n") == "Loaded image: busybox:latest\n"


def test_prune_asks_on_a_terminal(work):
    tmp, root = work
    a = os.path.join(tmp, "a.tar")
    ida, _ = make_archive(a, [])
    moat(root, "load", "-i", a)
    cmd = " ".join(moat_argv(root, "prune"))
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=b"n\n", capture_output=True, timeout=120)
    out = p.stdout.decode().replace("\r\n", "\n")
    assert p.returncode == 0   # docker 28: a "no" ends the verb quietly
    assert "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] " in out
    assert ida[7:] in blobs(root)
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=b"y\n", capture_output=True, timeout=120)
    out = p.stdout.decode().replace("\r\n", "\n")
    assert p.returncode == 0 and f"deleted: {ida}\n" in out and "Total reclaimed space: " in out
    assert blobs(root) == []


def test_missing_store_and_bad_input(work):
    tmp, root = work
    for args, msg in ((["inspect", "busybox"], "Error: No such object: busybox"),
                      (["rmi", "busybox"], "No such image: busybox"),
                      (["tag", "busybox", "x:1"], "No such image: busybox"),
                      (["rmi", "--bogus", "x"], 'unknown flag: --bogus'),
                      (["inspect"], "requires at least 1 argument"),
                      (["prune", "extra"], "accepts no arguments"),
                      (["prune", "-f", "--filter", "frob=1"], "frob"),
                      (["verify", "--bogus"], 'unknown option "--bogus"'),
                      (["load", "-i"], "needs an argument")):
        p = moat(root, *args, check=False)
        assert p.returncode == 1, args
        assert msg in p.stderr and len(p.stderr.splitlines()) == 1, (args, p.stderr)


def make_multiplatform_layout(path, ref):
    """An OCI layout whose index names an image index of two images, for
    linux/amd64 and linux/arm64/v8; returns {platform: image ID}."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(path, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    ids, manifests = {}, []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        layer = layer_tar({"etc/arch": arch.encode()})
        ldesc = blob(layer)
        cfg = {"architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
               "config": {"Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers", "diff_ids": [ldesc["digest"]]},
               "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "COPY arch /etc/arch"}]}
        if variant:
            cfg["variant"] = variant
        cdesc = blob(json.dumps(cfg).encode())
        ids[arch] = cdesc["digest"]
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **ldesc}]}
        mdesc = blob(json.dumps(man).encode())
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
                          "platform": platform})
    idx = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": manifests}).encode())
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                                       **idx, "annotations": {
                                                           "org.opencontainers.image.ref.name": ref}}]}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return ids


def test_platform_selection(work):
    """An image index: linux/amd64 by default, --platform picks another
    image of it; a platform the image does not have is an error."""
    tmp, root = work
    layout = os.path.join(tmp, "multi")
    ids = make_multiplatform_layout(layout, "localhost/multi:1")
    moat(root, "load", "-i", layout)   # a layout directory: the CLI packs it for the API
    default = moat(root, "history", "-q", "--no-trunc", "localhost/multi:1").stdout.split()
    assert default[0] == ids["amd64"]
    arm = moat(root, "history", "-q", "--no-trunc", "--platform", "linux/arm64", "localhost/multi:1").stdout.split()
    assert arm[0] == ids["arm64"]
    mnt = moat(root, "mount", "--platform", "linux/arm64/v8", "localhost/multi:1").stdout.strip()
    try:
        with open(os.path.join(mnt, "etc", "arch")) as f:
            assert f.read() == "arm64"
    finally:
        moat(root, "unmount", mnt)
    # save --platform writes that platform's image alone
    arm_tar = os.path.join(tmp, "multi-arm64.tar")
    moat(root, "save", "--platform", "linux/arm64", "-o", arm_tar, "localhost/multi:1")
    other = os.path.join(tmp, "root-arm64")
    moat(other, "load", "-i", arm_tar)
    assert moat(other, "images", "-q", "--no-trunc").stdout.split() == [ids["arm64"]]
    p = moat(root, "save", "--platform", "linux/s390x", "-o", os.path.join(tmp, "none.tar"), "localhost/multi:1",
             check=False)
    assert p.returncode == 1 and "no image for linux/s390x" in p.stderr, p.stderr
    # load --platform keeps that platform's image of the index, and its blobs only
    picked = os.path.join(tmp, "root-picked")
    moat(picked, "load", "--platform", "linux/arm64", "-i", layout)
    assert moat(picked, "images", "-q", "--no-trunc").stdout.split() == [ids["arm64"]]
    assert moat(picked, "history", "-q", "--no-trunc", "localhost/multi:1").stdout.split()[0] == ids["arm64"]
    assert ids["amd64"][7:] not in blobs(picked)
    p = moat(picked, "load", "--platform", "linux/s390x", "-i", layout, check=False)
    assert p.returncode == 1 and "s390x" in p.stderr, p.stderr
    assert moat(picked, "images", "-q", "--no-trunc").stdout.split() == [ids["arm64"]]
    # The index has no image for it.
    p = moat(root, "history", "--platform", "linux/s390x", "localhost/multi:1", check=False)
    assert p.returncode == 1 and "No such image: localhost/multi:1" in p.stderr
    p = moat(root, "history", "--platform", "plan9/amd64", "localhost/multi:1", check=False)
    assert p.returncode == 1 and "plan9" in p.stderr
