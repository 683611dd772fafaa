"""system df's volumes, docker system prune and image prune filters, as the
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
    assert refs["keep"] in ids, (p.stdout, ids)
    daemon.ok("rmi", refs["keep"])
