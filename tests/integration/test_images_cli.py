"""The `moat` client's image verbs (load, images, tag, rmi, inspect), run
in-process against a private --root, with images made by podman from the
busybox test rootfs (docker-archive and oci-archive)."""

import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

import harness

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


def moat(root, *args, check=True, stdin=None):
    p = subprocess.run([moat_path(), "--root", root, *args], capture_output=True, text=True,
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

    rows = [json.loads(line) for line in moat(root, "images", "--format", "json").stdout.splitlines()]
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
    assert lines[1].startswith("Deleted: sha256:")
    assert blobs(root) == []
    assert moat(root, "images", "-q").stdout == ""

    p = moat(root, "inspect", REF, check=False)
    assert p.returncode == 1 and p.stderr.startswith("moat: ") and "No such image" in p.stderr
    assert len(p.stderr.splitlines()) == 1


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
    for args in (["bogus"], ["tag", "only-one"], ["rmi"], ["images", "--format", "table"],
                 ["load", "-i", os.path.join(tmp, "missing.tar")]):
        p = moat(root, *args, check=False)
        assert p.returncode == 1, args
        assert p.stderr.startswith("moat: "), (args, p.stderr)
