"""Recycled container directories (issue 7; src/engine/containers.c,
READY_PREFIX): a removed container's directory that the container left as
it was made becomes the next new container's, renamed, so that a create
allocates no directory and a removal deletes none. What a container wrote
must never reach the next one: a directory with anything in upper/, or
whose root (upper/'s attributes) was changed, is deleted instead."""

import os
import stat

from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, wait_for  # noqa: F401


def cdir(d, cid=""):
    return os.path.join(d.data, "containers", cid)


def ready(d):
    return sorted(e for e in os.listdir(cdir(d)) if e.startswith(".ready-"))


def removed_and_settled(d, cid):
    """rm -f, then wait for the background thread to recycle or delete it."""
    d.ok("rm", "-f", cid)
    assert wait_for(lambda: not [e for e in os.listdir(cdir(d)) if e.startswith(".removed-")])


def test_untouched_directory_is_reused(daemon):
    d = daemon
    before = set(ready(d))
    cid = d.run_d(IMAGE, "sleep", "1000")
    ino = os.stat(cdir(d, cid)).st_ino
    removed_and_settled(d, cid)
    got = set(ready(d)) - before
    assert len(got) == 1, ready(d)
    (entry,) = got
    assert os.stat(cdir(d, entry)).st_ino == ino
    # made ready: no log, no overlayfs scratch dir, no overlayfs uuid, nothing mounted
    assert sorted(os.listdir(cdir(d, entry))) == ["rootfs", "upper", "work"]
    assert os.listdir(cdir(d, entry + "/work")) == []
    assert os.listxattr(cdir(d, entry + "/upper")) == []
    # the next container gets it, and works in it
    cid2 = d.run_d(IMAGE, "sh", "-c", "echo from-new > /f; sleep 1000")
    assert os.stat(cdir(d, cid2)).st_ino == ino
    assert entry not in ready(d)
    assert d.ok("exec", cid2, "cat", "/f").stdout == "from-new\n"
    assert stat.S_IMODE(os.stat(cdir(d, cid2 + "/upper")).st_mode) == 0o755
    d.ok("rm", "-f", cid2)


def test_written_files_never_reach_the_next_container(daemon):
    d = daemon
    cid = d.run_d(IMAGE, "sh", "-c", "echo secret > /secret; mkdir /tmp/dir; sleep 1000")
    assert d.ok("exec", cid, "cat", "/secret").stdout == "secret\n"
    before = set(ready(d))
    removed_and_settled(d, cid)
    assert set(ready(d)) - before == set(), "a directory with writes was kept"
    for _ in range(3):
        out = d.ok("run", "--rm", IMAGE, "sh", "-c", "test -e /secret && echo LEAK; test -e /tmp/dir && echo LEAK; true")
        assert "LEAK" not in out.stdout, out.stdout


def test_changed_root_attributes_are_not_kept(daemon):
    d = daemon
    cid = d.run_d(IMAGE, "sh", "-c", "chmod 700 /; sleep 1000")
    assert wait_for(lambda: d.ok("exec", cid, "stat", "-c", "%a", "/").stdout.strip() == "700")
    before = set(ready(d))
    removed_and_settled(d, cid)
    assert set(ready(d)) - before == set(), "a directory whose root was changed was kept"
    assert d.ok("run", "--rm", IMAGE, "stat", "-c", "%a", "/").stdout.strip() == "755"


def test_volatile_then_normal_and_restart(daemon):
    d = daemon
    # a --rm container's overlay is volatile: overlayfs marks work/ so that a
    # later mount refuses it, unless the mark is cleared as the reuse does
    before = set(ready(d))
    assert d.ok("run", "--rm", IMAGE, "true").returncode == 0
    assert wait_for(lambda: set(ready(d)) - before), ready(d)
    cid = d.run_d(IMAGE, "sleep", "1000")
    assert d.inspect(cid)["State"]["Running"]
    removed_and_settled(d, cid)
    # a restarted daemon takes the ready ones it finds
    kept = ready(d)
    assert kept
    d.stop()
    d.start()
    assert ready(d) == kept
    inos = {os.stat(cdir(d, e)).st_ino for e in kept}
    cid = d.run_d(IMAGE, "sleep", "1000")
    assert os.stat(cdir(d, cid)).st_ino in inos
    d.ok("rm", "-f", cid)
