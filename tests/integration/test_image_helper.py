"""`moat verify`, `moat mount` and `moat unmount` run in the helper
moat-image (src/cli/image-main.c) that moat execs, so that moat itself does
not link the image library: the verbs still work on --root's store (the
mount seen in the kernel's mountinfo), the helper gets moat's global
options (--root made absolute, --debug) and the verb's argv unchanged, its
output and exit status are the user's, it is found beside an installed moat
in <prefix>/libexec/moat, and without it the verbs fail with an error
naming where it was looked for."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

import harness
import image_daemons

REF = "localhost/helper:1"


def build_path(*parts):
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", *parts))


def run(argv, cwd=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def make_archive(path):
    """A docker-archive of one one-layer image tagged REF holding etc/hello."""
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        for name, data in (("etc/hello", b"hello from the layer\n"),):
            i = tarfile.TarInfo(name)
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))
    layer = b.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                      "config": {"Cmd": ["/bin/sh"]},
                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cfg_hex = hashlib.sha256(cfg).hexdigest()
    manifest = json.dumps([{"Config": cfg_hex + ".json", "RepoTags": [REF], "Layers": ["l1/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as t:
        for name, data in ((cfg_hex + ".json", cfg), ("l1/layer.tar", layer), ("manifest.json", manifest)):
            i = tarfile.TarInfo(name)
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))


def mount_options(path):
    """The options of the topmost mount at path, or None when nothing is mounted there."""
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4].encode().decode("unicode_escape") == path:
                found = fields[5]
    return found


def umount_all_under(path):
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f if ln.split()[4].startswith(path + "/")]
    for p in reversed(points):
        subprocess.run(["umount", "-l", p], capture_output=True)


@pytest.fixture
def work(session_tmp):
    if not os.access(build_path("moat"), os.X_OK) or not os.access(build_path("moat-image"), os.X_OK):
        pytest.fail("moat and moat-image are not built")
    tmp = tempfile.mkdtemp(prefix="image-helper-", dir=session_tmp)
    try:
        yield tmp
    finally:
        umount_all_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def test_verbs_work_through_the_helper(work):
    root = os.path.join(work, "root")
    archive = os.path.join(work, "img.tar")
    make_archive(archive)
    p = run(image_daemons.moat_argv(root, "load", "-i", archive))
    assert p.returncode == 0, p.stderr

    moat = [build_path("moat"), "--root", root]
    p = run(moat + ["verify"])
    assert p.returncode == 0 and p.stdout.endswith(": no problems\n"), (p.stdout, p.stderr)

    p = run(moat + ["mount", REF])
    assert p.returncode == 0, p.stderr
    mp = p.stdout.strip()
    try:
        assert mp.startswith(os.path.join(root, "mounts") + "/")
        opts = mount_options(mp)
        assert opts is not None and opts.split(",")[0] == "ro", opts
        with open(os.path.join(mp, "etc", "hello")) as f:
            assert f.read() == "hello from the layer\n"
        # mounting again finds the mount and prints the same path
        p = run(moat + ["mount", REF])
        assert p.returncode == 0 and p.stdout.strip() == mp, p.stderr
    finally:
        p = run(moat + ["unmount", REF])
    assert p.returncode == 0, p.stderr
    assert mount_options(mp) is None
    assert not os.path.exists(mp)

    # errors are moat's, once, with moat's exit status
    p = run(moat + ["unmount", REF])
    assert (p.returncode, p.stdout, p.stderr) == (1, "", f"moat: unmount: image {REF} is not mounted\n")
    p = run(moat + ["mount", "--bogus", REF])
    assert (p.returncode, p.stderr) == (1, 'moat: mount: unknown option "--bogus"\n')

    # the installed layout: <prefix>/bin/moat, <prefix>/libexec/moat/moat-image
    prefix = os.path.join(work, "prefix")
    os.makedirs(os.path.join(prefix, "bin"))
    os.makedirs(os.path.join(prefix, "libexec", "moat"))
    shutil.copy2(build_path("moat"), os.path.join(prefix, "bin", "moat"))
    shutil.copy2(build_path("moat-image"), os.path.join(prefix, "libexec", "moat", "moat-image"))
    p = run([os.path.join(prefix, "bin", "moat"), "--root", root, "verify"])
    assert p.returncode == 0 and p.stdout.endswith(": no problems\n"), (p.stdout, p.stderr)


def test_helper_gets_the_arguments(work):
    """A stand-in helper beside a copy of moat (the build tree's layout)
    records what it is given; what it prints and its status are the user's."""
    cli = os.path.join(work, "src", "cli")
    os.makedirs(cli)
    shutil.copy2(build_path("moat"), os.path.join(cli, "moat"))
    record = os.path.join(work, "args")
    with open(os.path.join(cli, "moat-image"), "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\necho out; echo err >&2; exit 3\n')
    os.chmod(os.path.join(cli, "moat-image"), 0o755)

    p = run([os.path.join(cli, "moat"), "--root", "rel/root", "--debug", "mount", "--platform", "linux/arm64",
             "some image", "dir"], cwd=work)
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")
    with open(record) as f:
        assert f.read().splitlines() == ["--root", os.path.join(work, "rel/root"), "--debug", "mount",
                                         "--platform", "linux/arm64", "some image", "dir"]
    os.unlink(record)

    p = run([os.path.join(cli, "moat"), "unmount", "x"])
    assert p.returncode == 3
    with open(record) as f:
        assert f.read().splitlines() == ["--root", "/var/lib/moat", "unmount", "x"]
    os.unlink(record)

    # --help is moat's own: the helper does not run
    p = run([os.path.join(cli, "moat"), "verify", "--help"])
    assert p.returncode == 0 and p.stdout.startswith("Usage:  moat verify\n"), p.stdout
    assert not os.path.exists(record)


def configured_libexecdir():
    with open(os.path.join(harness.build_dir(), "moat-config.h")) as f:
        for line in f:
            if line.startswith("#define MOAT_LIBEXECDIR "):
                return json.loads(line.split(" ", 2)[2])
    pytest.fail("MOAT_LIBEXECDIR is not in moat-config.h")


def test_missing_helper_is_named(work):
    libexec = configured_libexecdir()
    if os.path.exists(os.path.join(libexec, "moat-image")):
        pytest.skip(f"moat-image is installed in {libexec}: moat would find it")
    prefix = os.path.join(work, "lone")
    os.makedirs(os.path.join(prefix, "bin"))
    moat = os.path.join(prefix, "bin", "moat")
    shutil.copy2(build_path("moat"), moat)
    for args in (["verify"], ["mount", REF], ["unmount", REF]):
        p = run([moat, "--root", os.path.join(work, "root")] + args)
        assert p.returncode == 1 and p.stdout == "", p
        assert p.stderr == (f"moat: {args[0]} needs the helper moat-image, which is not installed: no executable "
                            f"{prefix}/cli/moat-image, {prefix}/libexec/moat/moat-image or "
                            f"{libexec}/moat-image\n"), p.stderr
