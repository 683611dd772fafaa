"""Session fixtures of the manager tests: one private podman store holding
the offline busybox image (imported from the shared rootfs, never pulled),
and that image saved as a docker archive for `ctr images import` and
`docker load`."""

import os
import shutil

import pytest

import harness
import managers


@pytest.fixture(scope="session")
def podman_store(session_tmp, rootfs):
    managers.need_binary("podman")
    managers.need_binary("conmon")
    base = os.path.join(session_tmp, "podman")
    os.makedirs(base)
    host_dirs = managers.HostDirs("/var/lib/containers")
    pm = managers.Podman(base)
    try:
        tar = managers.rootfs_tar(rootfs, os.path.join(session_tmp, "rootfs.tar"))
        pm("import", "--change", 'CMD ["/bin/sh"]', tar, managers.IMAGE, timeout=180)
        os.unlink(tar)
        yield pm
    finally:
        problems = pm.teardown()
        shutil.rmtree(base, ignore_errors=True)
        host_dirs.cleanup()
        harness.reap_orphans()
        if problems:
            pytest.fail("podman left behind:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def image_archive(session_tmp, podman_store):
    path = os.path.join(session_tmp, "moat-busybox.docker.tar")
    podman_store("save", "--format", "docker-archive", "-o", path, managers.IMAGE,
                 timeout=180)
    return path


# Parent cgroups the managers ask for (/docker/<id>, libpod_parent/...,
# /<containerd namespace>/<id>): the runtime removes the leaf and any
# parent it made, but a parent made while a sibling existed outlives them.
MANAGER_CGROUP_PARENTS = ("docker", "libpod_parent", "moat")


def _cgroup_parent_dirs():
    out = []
    for hier in os.listdir("/sys/fs/cgroup"):
        for name in MANAGER_CGROUP_PARENTS:
            d = os.path.join("/sys/fs/cgroup", hier, name)
            if os.path.isdir(d):
                out.append(d)
    return out


@pytest.fixture(scope="session", autouse=True)
def manager_cgroup_parents():
    before = set(_cgroup_parent_dirs())
    yield
    left = []
    for d in sorted(set(_cgroup_parent_dirs()) - before, key=len, reverse=True):
        # children first: podman puts conmon in libpod_parent/conmon
        for sub, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):
            try:
                os.rmdir(sub)
            except OSError:
                pass
        if os.path.isdir(d):
            left.append(d)
    if left:
        pytest.fail("cgroups left behind by the managers: " + ", ".join(left), pytrace=False)
