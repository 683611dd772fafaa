"""system df's volumes, docker system prune and image prune filters, per-device
block I/O limits, as the
real docker CLI sees them against moat's daemon."""

import json
import os

from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon  # noqa: F401


def name(prefix="c"):
    return f"{prefix}-{os.urandom(4).hex()}"


def test_system_df_counts_volumes(daemon):
    v, n = name("vol"), name()
    daemon.ok("run", "--name", n, "-v", f"{v}:/data", IMAGE, "sh", "-c", "head -c 200000 /dev/zero > /data/z")
    doc = json.loads(daemon.ok("system", "df", "-v", "--format", "json").stdout)
    vols = {x["Name"]: x for x in doc["Volumes"]}
    assert v in vols, doc["Volumes"]
    assert int(vols[v]["Links"]) == 1
    size = vols[v]["Size"]
    assert size.endswith("kB") and float(size[:-2]) >= 200, size
    table = daemon.ok("system", "df").stdout
    row = [line.split() for line in table.splitlines() if line.startswith("Local Volumes")]
    assert row and int(row[0][2]) >= 1, table
    daemon.ok("rm", n)
    daemon.ok("volume", "rm", v)


def test_docker_system_prune(daemon):
    keep, gone = name(), name()
    daemon.run_d("--name", keep, IMAGE, "sleep", "1000")
    daemon.ok("create", "--name", gone, IMAGE, "true")
    p = daemon.ok("system", "prune", "-f")
    assert "Deleted Containers:" in p.stdout and "Total reclaimed space:" in p.stdout, p.stdout
    names = daemon.ok("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert keep in names and gone not in names
    daemon.ok("rm", "-f", keep)


def test_network_and_build_prune_delete_nothing(daemon):
    assert daemon.ok("network", "prune", "-f").stdout.strip() == ""
    p = daemon.docker("network", "prune", "-f", "--filter", "until=bogus-but-unused")
    assert p.returncode == 0, p.stderr


def test_image_prune_label_filters(daemon, tmp_path):
    base = daemon.ok("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
    # a container keeps the module's image out of the prunes' reach
    holder = daemon.ok("create", IMAGE, "true").stdout.strip()
    tar = tmp_path / "img.tar"
    daemon.ok("save", "-o", str(tar), IMAGE)
    refs = {}
    for label in ("keep", "drop"):
        cid = daemon.ok("create", IMAGE, "true").stdout.strip()
        exported = tmp_path / f"{label}.tar"
        daemon.ok("export", "-o", str(exported), cid)
        daemon.ok("rm", cid)
        refs[label] = daemon.ok("import", "-c", f"LABEL stage={label}", str(exported)).stdout.strip()
    p = daemon.ok("image", "prune", "-a", "-f", "--filter", "label=stage=drop")
    ids = daemon.ok("images", "-aq", "--no-trunc").stdout.split()
    assert refs["drop"] not in ids and refs["keep"] in ids and base in ids, (p.stdout, ids)
    p = daemon.ok("image", "prune", "-a", "-f", "--filter", "label!=stage")
    ids = daemon.ok("images", "-aq", "--no-trunc").stdout.split()
    assert refs["keep"] in ids and base in ids, (p.stdout, ids)
    p = daemon.ok("image", "prune", "-a", "-f", "--filter", "label!=stage=drop")
    ids = daemon.ok("images", "-aq", "--no-trunc").stdout.split()
    assert refs["keep"] not in ids and base in ids, (p.stdout, ids)
    daemon.ok("rm", holder)


# ---- per-device block I/O limits ---------------------------------------------------------


def block_device():
    """A block device of this machine (the one under /), or None."""
    for cand in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda"):
        try:
            s = os.stat(cand)
        except OSError:
            continue
        import stat as st_mod
        if st_mod.S_ISBLK(s.st_mode):
            return cand, os.major(s.st_rdev), os.minor(s.st_rdev)
    return None


def test_blkio_device_limits(daemon):
    """--device-read-bps and friends reach the blkio cgroup (v1) by the
    device's numbers; a path that is not a block device is refused."""
    import pytest
    dev = block_device()
    if not dev or not os.path.isdir("/sys/fs/cgroup/blkio"):
        pytest.skip("no block device or no blkio cgroup v1 controller here")
    path, maj, mi = dev
    n = name()
    cid = daemon.run_d("--name", n, "--device-read-bps", f"{path}:1mb", "--device-write-iops", f"{path}:77",
                       IMAGE, "sleep", "1000")
    hc = daemon.inspect(n)["HostConfig"]
    assert hc["BlkioDeviceReadBps"] == [{"Path": path, "Rate": 1048576}], hc
    with open(f"/proc/{daemon.inspect(n)['State']['Pid']}/cgroup") as f:
        cg = [line.rstrip("\n").split(":", 2)[2] for line in f if ":blkio:" in line][0]
    base = "/sys/fs/cgroup/blkio" + cg
    with open(base + "/blkio.throttle.read_bps_device") as f:
        assert f.read().split() == [f"{maj}:{mi}", "1048576"]
    with open(base + "/blkio.throttle.write_iops_device") as f:
        assert f.read().split() == [f"{maj}:{mi}", "77"]
    daemon.ok("rm", "-f", cid)
    p = daemon.docker("run", "--rm", "--device-read-bps", "/dev/null:1mb", IMAGE, "true")
    assert p.returncode != 0 and "/dev/null is not a block device" in p.stderr, p.stderr
