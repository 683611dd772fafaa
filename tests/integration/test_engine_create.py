"""What `docker create` makes before any start: volumes named, anonymous and
from --mount exist at create as docker's do, and a create whose volume
cannot be made leaves nothing behind."""

import json
import os

from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon  # noqa: F401


def name(prefix="c"):
    return f"{prefix}-{os.urandom(4).hex()}"


def volumes(d):
    return set(d.ok("volume", "ls", "-q").stdout.split())


def mounts(d, ref):
    return json.loads(d.ok("inspect", "--type", "container", ref).stdout)[0]["Mounts"]


def container_dirs(d):
    return set(os.listdir(os.path.join(d.data, "containers")))


def test_named_volume_exists_after_create(daemon):
    n, v = name(), name("vol")
    daemon.ok("create", "--name", n, "-v", f"{v}:/data", IMAGE, "true")
    assert v in volumes(daemon)
    m = mounts(daemon, n)
    assert [(x["Type"], x["Name"], x["Destination"]) for x in m] == [("volume", v, "/data")], m
    # a named volume outlives rm -v
    daemon.ok("rm", "-v", n)
    assert v in volumes(daemon)
    daemon.ok("volume", "rm", v)


def test_anonymous_volume_made_at_create_kept_by_start(daemon):
    n = name()
    before = volumes(daemon)
    daemon.ok("create", "--name", n, "-v", "/data", IMAGE, "sh", "-c", "echo hi > /data/f")
    made = volumes(daemon) - before
    assert len(made) == 1, made
    anon = made.pop()
    assert [x["Name"] for x in mounts(daemon, n)] == [anon]
    daemon.ok("start", "-a", n)
    assert volumes(daemon) - before == {anon}
    assert [x["Name"] for x in mounts(daemon, n)] == [anon]
    daemon.ok("rm", "-v", n)
    assert anon not in volumes(daemon)


def test_failed_volume_leaves_nothing(daemon):
    n, v = name(), name("vol")
    before_vols, before_dirs = volumes(daemon), container_dirs(daemon)
    p = daemon.docker("create", "--name", n, "-v", "/anon",
                      "--mount", f"type=volume,source={v},target=/x,volume-opt=bogus=1", IMAGE, "true")
    assert p.returncode != 0
    assert 'invalid option: "bogus"' in p.stderr, p.stderr
    assert daemon.docker("inspect", "--type", "container", n).returncode != 0
    assert volumes(daemon) == before_vols
    assert container_dirs(daemon) == before_dirs


def test_create_defers_other_errors_to_start(daemon):
    """docker creates a container whose user the image lacks; its start fails."""
    n, v = name(), name("vol")
    daemon.ok("create", "--name", n, "-u", "nosuchuser", "-v", f"{v}:/data", IMAGE, "true")
    assert v in volumes(daemon)
    p = daemon.docker("start", n)
    assert p.returncode != 0 and "nosuchuser" in p.stderr, p.stderr
    daemon.ok("rm", n)
    daemon.ok("volume", "rm", v)
