"""Images made by the peers on this machine (buildah 1.28, skopeo 1.9,
dockerd 20.10, umoci 0.4.7, podman 4.3), loaded into moat and checked
through `moat images`, `moat inspect` and `moat mount` (what the kernel
shows in the read-only root: contents, modes, ownership, symlinks, setuid,
xattrs, whiteouts, opaque directories), and two of them run with
moat-runtime from the mounted root.  All offline, from the busybox test
rootfs (peer_images.make_base_tree), each tool with private storage; the
module ends by checking that nothing under its temp dir is still mounted.
"""

import json
import tarfile
import os
import shutil
import tempfile

import pytest

import harness
import peer_images as pi
from peer_images import Expect, moat

BUILDAH = shutil.which("buildah")
SKOPEO = shutil.which("skopeo")
UMOCI = shutil.which("umoci")
PODMAN = shutil.which("podman")


class Work:
    def __init__(self, d):
        self.dir = d
        self.base_tree = os.path.join(d, "base")
        self.base_tar = os.path.join(d, "base.tar")

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def moat_root(self, name):
        return os.path.join(self.dir, "moat-" + name)


@pytest.fixture(scope="module")
def work(session_tmp, rootfs):
    if not os.access(pi.moat_path(), os.X_OK):
        pytest.fail(f"{pi.moat_path()} is not built")
    d = tempfile.mkdtemp(prefix="peers-", dir=session_tmp)
    os.chmod(d, 0o755)
    w = Work(d)
    try:
        pi.make_base_tree(rootfs, w.base_tree)
        pi.tar_tree(w.base_tree, w.base_tar)
        yield w
    finally:
        # every moat root's mounts are unmounted by the tests themselves
        roots = [w.path(n) for n in os.listdir(d) if n.startswith("moat-")]
        for r in roots:
            mdir = os.path.join(r, "mounts")
            for n in os.listdir(mdir) if os.path.isdir(mdir) else ():
                moat(r, "unmount", os.path.join(mdir, n), check=False)
        left = pi.umount_all_under(d)
        shutil.rmtree(d, ignore_errors=True)
        if left:
            pytest.fail(f"still mounted under {d} at the end of the module: {left}", pytrace=False)


def load(root, archive, refs):
    p = moat(root, "load", "-i", archive)
    assert sorted(p.stdout.splitlines()) == sorted(f"Loaded image: {r}" for r in refs)


def check_image(root, ref, tool, expect, **config):
    row = pi.image_row(root, ref)
    img = pi.inspect(root, ref)
    assert img["Id"][7:19] == row["ID"]
    assert len(img["RootFS"]["Layers"]) == (2 if expect.layered else 1)
    pi.check_config(img, tool, **config)
    pi.check_mount(root, ref, expect)
    return img


# ---- buildah -------------------------------------------------------------------

BUILDAH_REF = "localhost/peers-buildah:1"
BUILDAH_BASE_REF = "localhost/peers-buildah-base:1"


@pytest.fixture(scope="module")
def buildah(work):
    """buildah from scratch: layer 1 is the base tree (`buildah add` of its
    tar), layer 2 deletes a file and replaces a directory (made in `buildah
    mount`). The overlay storage driver writes the replaced directory as
    opaque (.wh..wh..opq); vfs would write one whiteout per old file."""
    if not BUILDAH:
        pytest.skip("buildah is not installed")
    b = pi.Containers(BUILDAH, work.path("buildah"), "overlay")
    try:
        c = b("from", "scratch").stdout.strip()
        b("add", c, work.base_tar, "/")
        b("config", "--cmd", json.dumps(pi.CMD), "--env", "GREETING=hello-buildah", "--workingdir", "/tmp",
          "--user", "1000:1000", "--label", "org.moat.peer=buildah", c)
        b("commit", c, BUILDAH_BASE_REF)
        c2 = b("from", BUILDAH_BASE_REF).stdout.strip()
        mnt = b("mount", c2).stdout.strip()
        pi.change_upper(mnt)
        b("umount", c2)
        b("commit", c2, BUILDAH_REF)
        out = {
            "oci-archive": work.path("buildah-oci.tar"),
            "docker-archive": work.path("buildah-docker.tar"),
            "oci": work.path("buildah-layout"),
            "base": work.path("buildah-base-oci.tar"),
        }
        for transport in ("oci-archive", "docker-archive", "oci"):
            b("push", BUILDAH_REF, f"{transport}:{out[transport]}:{BUILDAH_REF}")
        b("push", BUILDAH_BASE_REF, f"oci-archive:{out['base']}:{BUILDAH_BASE_REF}")
        out["untagged"] = work.path("buildah-untagged.tar")
        b("push", BUILDAH_REF, f"oci-archive:{out['untagged']}")
        # the test of opaque directories is only one if buildah wrote one
        members = pi.layout_layer_members(out["oci"])
        assert "var/lower/.wh..wh..opq" in members, [m for m in members if ".wh." in m or "lower" in m]
        assert "etc/peers/.wh.gone" in members
        yield out
    finally:
        left = b.cleanup()
        assert not left, f"buildah left mounts: {left}"


def buildah_expect():
    # buildah add keeps the archive's user xattrs (containers/storage copier)
    return Expect(layered=True, xattr=True)


def test_buildah_oci_archive(work, buildah):
    root = work.moat_root("buildah-oci")
    load(root, buildah["oci-archive"], [BUILDAH_REF])
    check_image(root, BUILDAH_REF, "buildah", buildah_expect())


def test_buildah_docker_archive(work, buildah):
    root = work.moat_root("buildah-docker")
    load(root, buildah["docker-archive"], [BUILDAH_REF])
    check_image(root, BUILDAH_REF, "buildah", buildah_expect())


def test_buildah_oci_layout_as_archive(work, buildah):
    root = work.moat_root("buildah-layout-tar")
    tar = work.path("buildah-layout.tar")
    pi.tar_layout(buildah["oci"], tar)
    load(root, tar, [BUILDAH_REF])
    check_image(root, BUILDAH_REF, "buildah", buildah_expect())


def test_buildah_oci_layout_directory(work, buildah):
    root = work.moat_root("buildah-layout-dir")
    load(root, buildah["oci"], [BUILDAH_REF])
    check_image(root, BUILDAH_REF, "buildah", buildah_expect())


def test_layout_tarred_with_dot(work, buildah):
    root = work.moat_root("buildah-layout-dot")
    tar = work.path("buildah-layout-dot.tar")
    pi.tar_layout(buildah["oci"], tar, dot=True)
    load(root, tar, [BUILDAH_REF])
    pi.check_mount(root, BUILDAH_REF, buildah_expect())


def test_mount_single_layer_on_a_directory(work, buildah):
    """One layer is a read-only bind mount of its tree; explicit DIRs; one
    image mounted at three places; unmount by DIR and by IMAGE."""
    root = work.moat_root("buildah-base")
    load(root, buildah["base"], [BUILDAH_BASE_REF])
    img = pi.inspect(root, BUILDAH_BASE_REF)
    pi.check_config(img, "buildah")
    d1, d2 = work.path("explicit-1"), work.path("explicit-2")
    try:
        for d in (d1, d2):
            os.mkdir(d)
            assert moat(root, "mount", BUILDAH_BASE_REF, d).stdout.strip() == d
            assert pi.mounts_under(d) == [d]
            assert moat(root, "mount", BUILDAH_BASE_REF, d).stdout.strip() == d
            assert pi.mounts_under(d) == [d]
        pi.check_tree(d1, Expect(layered=False, xattr=True))
        # the default place too
        pi.check_mount(root, BUILDAH_BASE_REF, Expect(layered=False, xattr=True))
        assert pi.mounts_under(d1) == [d1] and pi.mounts_under(d2) == [d2]
        moat(root, "unmount", d1)
        assert pi.mounts_under(d1) == []
        assert os.path.isdir(d1), "unmount removed a directory it did not make"
        # by image: the one left, on the user's directory
        moat(root, "unmount", BUILDAH_BASE_REF)
        assert pi.mounts_under(d2) == [] and os.path.isdir(d2)
        p = moat(root, "unmount", BUILDAH_BASE_REF, check=False)
        assert p.returncode == 1 and f"image {BUILDAH_BASE_REF} is not mounted" in p.stderr
    finally:
        for d in (d1, d2):
            pi.umount_all_under(d)
            shutil.rmtree(d, ignore_errors=True)


def test_mount_by_id(work, buildah):
    """An image the archive does not name, mounted by its ID and by a prefix."""
    root = work.moat_root("buildah-untagged")
    p = moat(root, "load", "-i", buildah["untagged"])
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Loaded image ID: sha256:"), lines
    image_id = lines[0].split()[-1]
    mp = os.path.join(root, "mounts", image_id[7:])
    assert moat(root, "mount", image_id).stdout.strip() == mp
    try:
        assert pi.mounts_under(mp) == [mp]
        assert moat(root, "mount", image_id[7:19]).stdout.strip() == mp
        assert pi.mounts_under(mp) == [mp]
        pi.check_tree(mp, buildah_expect())
        moat(root, "unmount", image_id[7:19])
        assert pi.mounts_under(mp) == [] and not os.path.exists(mp)
    finally:
        moat(root, "unmount", mp, check=False)


def test_a_mounted_image_is_not_deleted(work, buildah):
    """rmi and prune leave a mounted image: its layer trees would go from
    under the mount, which unmount could then not recognise. rmi by ID is
    refused naming the mount, by name it only untags, prune -a skips it;
    unmounted, it goes."""
    root = work.moat_root("buildah-rmi-mounted")
    load(root, buildah["base"], [BUILDAH_BASE_REF])
    image_id = pi.inspect(root, BUILDAH_BASE_REF)["Id"]
    mp = moat(root, "mount", BUILDAH_BASE_REF).stdout.strip()
    try:
        p = moat(root, "rmi", image_id, check=False)
        assert p.returncode == 1 and f"image is mounted on {mp} (moat unmount it first)" in p.stderr, p.stderr
        assert "Untagged" in moat(root, "rmi", BUILDAH_BASE_REF).stdout
        moat(root, "image", "prune", "-a", "-f")
        assert image_id[7:19] in moat(root, "images", "-a", "-q").stdout
        pi.check_tree(mp, Expect(layered=False, xattr=True))
        moat(root, "unmount", mp)
        assert pi.mounts_under(mp) == []
        assert "Deleted: " + image_id in moat(root, "rmi", image_id).stdout
    finally:
        moat(root, "unmount", mp, check=False)
        pi.umount_all_under(mp)


def test_mount_errors(work, buildah):
    root = work.moat_root("buildah-errors")
    load(root, buildah["oci-archive"], [BUILDAH_REF])
    bad = [
        (["mount", "localhost/absent:1"], "No such image: localhost/absent:1"),
        (["mount"], "mount: requires IMAGE"),
        (["mount", BUILDAH_REF, work.path("nonexistent")], work.path("nonexistent")),
        (["mount", BUILDAH_REF, work.base_tar], "is not a directory"),
        # something else is mounted there
        (["mount", BUILDAH_REF, "/proc"], "/proc is already a mount point (not of this image)"),
        (["unmount", BUILDAH_REF], f"image {BUILDAH_REF} is not mounted"),
        (["unmount", "/proc"], "/proc is not an image mount"),
        (["unmount", work.dir], f"{work.dir} is not a mount point"),
        (["unmount", "localhost/absent:1"], "No such image: localhost/absent:1"),
    ]
    for args, msg in bad:
        p = moat(root, *args, check=False)
        assert p.returncode == 1, args
        assert p.stderr.startswith("moat: ") and msg in p.stderr, (args, p.stderr)
        assert len(p.stderr.splitlines()) == 1
    assert pi.mounts_under(root) == []
    assert not os.path.exists(os.path.join(root, "mounts")) or os.listdir(os.path.join(root, "mounts")) == []


# ---- skopeo ------------------------------------------------------------------

SKOPEO_CASES = {
    # name: (destination transport, extra flags, what the manifest's layers must be)
    "oci-dir-zstd": ("oci", ["--dest-compress-format", "zstd", "--dest-compress"],
                     "application/vnd.oci.image.layer.v1.tar+zstd"),
    "oci-archive-gzip": ("oci-archive", ["--dest-compress-format", "gzip", "--dest-compress"],
                         "application/vnd.oci.image.layer.v1.tar+gzip"),
    "docker-archive-v2s2": ("docker-archive", ["--format", "v2s2"], None),
    "oci-dir-v2s2": ("oci", ["--format", "v2s2"], "application/vnd.docker.image.rootfs.diff.tar.gzip"),
}


@pytest.mark.parametrize("case", sorted(SKOPEO_CASES))
def test_skopeo_copy(work, buildah, case):
    if not SKOPEO:
        pytest.skip("skopeo is not installed")
    transport, flags, layer_type = SKOPEO_CASES[case]
    ref = f"localhost/peers-skopeo-{case}:1"
    dest = work.path("skopeo-" + case + ("" if transport == "oci" else ".tar"))
    pi.run([SKOPEO, "copy", *flags, f"oci-archive:{buildah['oci-archive']}", f"{transport}:{dest}:{ref}"])
    archive = dest
    if transport == "oci":
        manifest = pi.layout_manifest(dest)
        assert {l["mediaType"] for l in manifest["layers"]} == {layer_type}, manifest
        archive = dest + ".tar"
        pi.tar_layout(dest, archive)
    root = work.moat_root("skopeo-" + case)
    load(root, archive, [ref])
    img = check_image(root, ref, "buildah", buildah_expect())
    assert img["Id"] == pi.inspect(root, ref)["Id"]


# ---- dockerd 20.10 -------------------------------------------------------------

DOCKER_IMPORT_REF = "localhost/peers-docker-import:1"


@pytest.fixture(scope="module")
def dockerd_saved(work, buildah):
    """A private dockerd: `docker load` of buildah's docker-archive, `docker
    import` of the base tar; `docker save` of both (20.10's legacy form:
    manifest.json, repositories, <id>/layer.tar)."""
    if not os.access("/usr/sbin/dockerd", os.X_OK) or not os.access("/usr/bin/docker", os.X_OK):
        pytest.skip("Debian's dockerd/docker are not installed")
    d = pi.Dockerd(work.path("dockerd"))
    try:
        why = d.start()
        if why:
            pytest.skip(why)
        d("load", "-i", buildah["docker-archive"])
        d("import", "-c", f"CMD {json.dumps(pi.CMD)}", "-c", "ENV GREETING=hello-dockerd", "-c", "WORKDIR /tmp",
          "-c", "USER 1000:1000", "-c", "LABEL org.moat.peer=dockerd", work.base_tar, DOCKER_IMPORT_REF)
        out = work.path("dockerd-save.tar")
        d("save", "-o", out, BUILDAH_REF, DOCKER_IMPORT_REF)

        with tarfile.open(out) as t:
            names = t.getnames()
        assert "manifest.json" in names and "repositories" in names
        assert any(n.endswith("/layer.tar") for n in names), names
        yield out
    finally:
        d.cleanup()
        left = pi.mounts_under(d.base)
        assert not left, f"dockerd left mounts: {left}"


def test_dockerd_save(work, dockerd_saved):
    root = work.moat_root("dockerd")
    load(root, dockerd_saved, [BUILDAH_REF, DOCKER_IMPORT_REF])
    # dockerd's layer store gives back the very tars it was given (tar-split)
    check_image(root, BUILDAH_REF, "buildah", buildah_expect())
    check_image(root, DOCKER_IMPORT_REF, "dockerd", Expect(layered=False, xattr=True))


# ---- umoci ---------------------------------------------------------------------

UMOCI_REF = "localhost/peers-umoci:1"


@pytest.fixture(scope="module")
def umoci(work):
    """umoci: init, new, unpack, copy the base tree in, repack (layer 1);
    unpack again, change, repack (layer 2); config; the tag is the full
    reference (umoci takes any tag text)."""
    if not UMOCI:
        pytest.skip("umoci is not installed")
    t = pi.Tool(work.path("umoci"))
    layout = t.base + "/layout"
    try:
        pi.run([UMOCI, "init", "--layout", layout])
        pi.run([UMOCI, "new", "--image", f"{layout}:{UMOCI_REF}"])
        for i, change in enumerate((None, pi.change_upper)):
            bundle = os.path.join(t.base, f"bundle{i}")
            pi.run([UMOCI, "unpack", "--image", f"{layout}:{UMOCI_REF}", bundle])
            rootfs = os.path.join(bundle, "rootfs")
            if change is None:
                pi.run(["cp", "-a", work.base_tree + "/.", rootfs])
            else:
                change(rootfs)
            pi.run([UMOCI, "repack", "--image", f"{layout}:{UMOCI_REF}", bundle])
        pi.run([UMOCI, "config", "--image", f"{layout}:{UMOCI_REF}",
                *[a for c in pi.CMD for a in ("--config.cmd", c)],
                "--config.env", "GREETING=hello-umoci", "--config.workingdir", "/tmp",
                "--config.user", "1000:1000", "--config.label", "org.moat.peer=umoci"])
        pi.run([UMOCI, "gc", "--layout", layout])
        tar = work.path("umoci-oci.tar")
        pi.tar_layout(layout, tar)
        yield {"oci": layout, "oci-archive": tar}
    finally:
        left = t.cleanup()
        assert not left, f"umoci left mounts: {left}"


def test_umoci_oci_archive(work, umoci):
    root = work.moat_root("umoci")
    load(root, umoci["oci-archive"], [UMOCI_REF])
    # umoci's mtree diff writes per-file whiteouts for the replaced dir
    check_image(root, UMOCI_REF, "umoci", Expect(layered=True, xattr=True))


def test_umoci_oci_layout_directory(work, umoci):
    root = work.moat_root("umoci-dir")
    load(root, umoci["oci"], [UMOCI_REF])
    check_image(root, UMOCI_REF, "umoci", Expect(layered=True, xattr=True))


# ---- podman (beyond test_images_cli.py: two layers, several images, oci-dir) ----------

PODMAN_REF = "localhost/peers-podman:1"
PODMAN_BASE_REF = "localhost/peers-podman-base:1"


@pytest.fixture(scope="module")
def podman(work):
    if not PODMAN:
        pytest.skip("podman is not installed")
    p = pi.Containers(PODMAN, work.path("podman"), "overlay")
    try:
        p("import", "--change", f"CMD {json.dumps(pi.CMD)}", "--change", "ENV GREETING=hello-podman",
          "--change", "WORKDIR /tmp", "--change", "USER 1000:1000", "--change", "LABEL org.moat.peer=podman",
          work.base_tar, PODMAN_BASE_REF)
        c = p("create", "--network", "none", PODMAN_BASE_REF).stdout.strip()
        mnt = p("mount", c).stdout.strip()
        pi.change_upper(mnt)
        p("umount", c)
        p("commit", c, PODMAN_REF)
        p("rm", c)
        out = {"multi": work.path("podman-multi.tar"), "oci-dir": work.path("podman-oci-dir")}
        p("save", "-m", "--format", "docker-archive", "-o", out["multi"], PODMAN_BASE_REF, PODMAN_REF)
        p("save", "--format", "oci-dir", "-o", out["oci-dir"], PODMAN_REF)
        yield out
    finally:
        left = p.cleanup()
        assert not left, f"podman left mounts: {left}"


def test_podman_multi_image_docker_archive(work, podman):
    root = work.moat_root("podman-multi")
    load(root, podman["multi"], [PODMAN_BASE_REF, PODMAN_REF])
    base = check_image(root, PODMAN_BASE_REF, "podman", Expect(layered=False, xattr=True))
    top = check_image(root, PODMAN_REF, "podman", Expect(layered=True, xattr=True))
    assert top["RootFS"]["Layers"][0] == base["RootFS"]["Layers"][0]


def test_podman_oci_dir(work, podman):
    root = work.moat_root("podman-oci-dir")
    tar = work.path("podman-oci-dir.tar")
    pi.tar_layout(podman["oci-dir"], tar)
    # podman's oci-dir keeps the full reference as the ref name
    load(root, tar, [PODMAN_REF])
    check_image(root, PODMAN_REF, "podman", Expect(layered=True, xattr=True))


# ---- end to end: run the mounted image with moat-runtime -----------------------------

def check_run(root, ref, work, cid, greeting):
    rc, out, err = pi.run_image(root, ref, work.dir, cid)
    assert rc == 0, (rc, out, err)
    assert out.splitlines() == [greeting, "1000", "/tmp"], (out, err)
    assert pi.mounts_under(root) == []


def test_run_buildah_image(work, buildah):
    root = work.moat_root("run-buildah")
    load(root, buildah["oci-archive"], [BUILDAH_REF])
    check_run(root, BUILDAH_REF, work, harness.unique_id("peers-b"), "hello-buildah")


def test_run_dockerd_image(work, dockerd_saved):
    root = work.moat_root("run-dockerd")
    load(root, dockerd_saved, [BUILDAH_REF, DOCKER_IMPORT_REF])
    check_run(root, DOCKER_IMPORT_REF, work, harness.unique_id("peers-d"), "hello-dockerd")
