"""The mount points' layer (container-fs.c): docker bind-mounts hostname,
hosts and resolv.conf over /etc; for an image that lacks them, one
read-only tree per image, layers/<top chain id>.init, holds the missing
mount points on top of the image's layers, so a start creates nothing in
the container's writable layer. Which are missing follows overlayfs's
rules over the layers (whiteouts, opaque directories); the tree's /etc
carries the image's owner and mode; the store's gc removes it with its
layer.

Checked on disk (the data root's layers/ and upper/), inside the container
(stat, cat) and through rmi.
"""

import hashlib
import io
import json
import os
import tarfile
import tempfile

import pytest

from daemon_fixture import daemon, demo_image_tar, moat_daemon  # noqa: F401

ETC_FILES = {"hostname", "hosts", "resolv.conf"}


def layer_tar(rootfs=None, entries=()):
    """A layer tarball: the rootfs directory (when given) plus entries, each
    (name, kind, extra): kind "dir" (extra: mode, gid), "file" (extra:
    bytes), "symlink" (extra: target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        if rootfs:
            for name in sorted(os.listdir(rootfs)):
                if name != "etc":
                    t.add(os.path.join(rootfs, name), arcname=name)
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.uid = ti.gid = 0
            data = None
            if kind == "dir":
                ti.type, (ti.mode, ti.gid) = tarfile.DIRTYPE, extra
            elif kind == "file":
                ti.mode, data = 0o644, extra
                ti.size = len(data)
            else:
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def image_archive(path, tag, layers):
    """A docker-archive (docker load's input) of the layer tarballs."""
    diff_ids, names = [], []
    with tarfile.open(path, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        for i, data in enumerate(layers):
            digest = hashlib.sha256(data).hexdigest()
            diff_ids.append("sha256:" + digest)
            names.append(f"{digest}/layer.tar")
            add(names[-1], data)
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cdigest = hashlib.sha256(config).hexdigest()
        add(cdigest + ".json", config)
        add("manifest.json", json.dumps([{"Config": cdigest + ".json", "RepoTags": [tag],
                                          "Layers": names}]).encode())


def load(d, tmpdir, tag, layers):
    path = os.path.join(tmpdir, tag.replace(":", "_").replace("/", "_") + ".tar")
    image_archive(path, tag, layers)
    d.ok("load", "-i", path)


def init_trees(d):
    layers = os.path.join(d.data, "images", "layers")
    if not os.path.isdir(layers):  # made by the first start
        return {}
    return {n: os.path.join(layers, n) for n in os.listdir(layers) if n.endswith(".init")}


def tree_files(tree):
    etc = os.path.join(tree, "etc")
    return set(os.listdir(etc)) if os.path.isdir(etc) else set()


def upper(d, cid):
    return os.path.join(d.data, "containers", cid, "upper")


def start(d, tag):
    cid = d.run_d("--network", "none", tag, "sleep", "1000")
    assert d.ok("exec", cid, "cat", "/etc/hostname").stdout.strip() == cid[:12]
    assert "localhost" in d.ok("exec", cid, "cat", "/etc/hosts").stdout
    return cid


@pytest.fixture
def tmpdir(session_tmp):
    return tempfile.mkdtemp(prefix="init-layer-", dir=session_tmp)


def test_missing_mount_points_come_from_one_tree_per_image(daemon, rootfs, tmpdir):
    d = daemon
    # the image's /etc: mode 0750, group 12, without any of the three
    load(d, tmpdir, "initlayer/missing:1", [layer_tar(rootfs, [("etc", "dir", (0o750, 12)),
                                                               ("etc/passwd", "file", b"root:x:0:0::/:/bin/sh\n")])])
    before = set(init_trees(d))
    a, b = start(d, "initlayer/missing:1"), start(d, "initlayer/missing:1")
    new = {n: p for n, p in init_trees(d).items() if n not in before}
    assert len(new) == 1, new
    tree = next(iter(new.values()))
    assert tree_files(tree) == ETC_FILES
    # nothing was created in either container's writable layer
    for cid in (a, b):
        assert os.listdir(upper(d, cid)) == [], os.listdir(upper(d, cid))
        # /etc in the container is the image's, owner and mode
        assert d.ok("exec", cid, "stat", "-c", "%a %u %g", "/etc").stdout.split() == ["750", "0", "12"]
        assert d.ok("exec", cid, "cat", "/etc/passwd").stdout.startswith("root:x:0:0")
    st = os.stat(os.path.join(tree, "etc"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o750, 0, 12)
    # the image goes, its tree with it
    d.ok("rm", "-f", a, b)
    d.ok("rmi", "initlayer/missing:1")
    assert not os.path.exists(tree), "rmi left the image's mount points' tree"


def test_present_mount_points_leave_the_tree_empty(daemon, rootfs, tmpdir):
    d = daemon
    load(d, tmpdir, "initlayer/present:1", [layer_tar(rootfs, [("etc", "dir", (0o755, 0)),
                                                               ("etc/hosts", "file", b"image\n"),
                                                               ("etc/hostname", "file", b"image\n"),
                                                               ("etc/resolv.conf", "file", b"image\n")])])
    before = set(init_trees(d))
    cid = start(d, "initlayer/present:1")
    new = [p for n, p in init_trees(d).items() if n not in before]
    assert len(new) == 1 and tree_files(new[0]) == set(), new
    d.ok("rm", "-f", cid)
    d.ok("rmi", "initlayer/present:1")


def test_whiteout_and_opaque_follow_overlayfs(daemon, rootfs, tmpdir):
    d = daemon
    base = layer_tar(rootfs, [("etc", "dir", (0o755, 0)), ("etc/hosts", "file", b"base\n"),
                              ("etc/hostname", "file", b"base\n"), ("etc/resolv.conf", "file", b"base\n")])
    # a whiteout in the layer above hides hosts alone
    load(d, tmpdir, "initlayer/whiteout:1", [base, layer_tar(None, [("etc/.wh.hosts", "file", b"")])])
    before = set(init_trees(d))
    cid = start(d, "initlayer/whiteout:1")
    new = [p for n, p in init_trees(d).items() if n not in before]
    assert len(new) == 1 and tree_files(new[0]) == {"hosts"}, [tree_files(p) for p in new]
    assert os.listdir(upper(d, cid)) == []
    # the image's own files are still there under the mounts
    d.ok("rm", "-f", cid)
    # an opaque /etc above hides all three
    load(d, tmpdir, "initlayer/opaque:1", [base, layer_tar(None, [("etc/.wh..wh..opq", "file", b""),
                                                                  ("etc/passwd", "file", b"root:x:0:0::/:/bin/sh\n")])])
    before = set(init_trees(d))
    cid = start(d, "initlayer/opaque:1")
    new = [p for n, p in init_trees(d).items() if n not in before]
    assert len(new) == 1 and tree_files(new[0]) == ETC_FILES, [tree_files(p) for p in new]
    assert os.listdir(upper(d, cid)) == []
    d.ok("rm", "-f", cid)
    d.ok("rmi", "initlayer/whiteout:1", "initlayer/opaque:1")


def test_etc_that_is_not_a_directory_is_not_covered(daemon, rootfs, tmpdir):
    d = daemon
    # /etc is a symlink to /usr/etc: a directory in the tree would hide it
    load(d, tmpdir, "initlayer/symlink:1", [layer_tar(rootfs, [("usr", "dir", (0o755, 0)),
                                                               ("usr/etc", "dir", (0o755, 0)),
                                                               ("usr/etc/marker", "file", b"usr-etc\n"),
                                                               ("etc", "symlink", "usr/etc")])])
    before = set(init_trees(d))
    cid = start(d, "initlayer/symlink:1")
    new = [p for n, p in init_trees(d).items() if n not in before]
    assert len(new) == 1 and tree_files(new[0]) == set(), new
    assert d.ok("exec", cid, "cat", "/etc/marker").stdout == "usr-etc\n"
    d.ok("rm", "-f", cid)
    d.ok("rmi", "initlayer/symlink:1")
