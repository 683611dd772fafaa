"""Shared helpers of the security tests: the static seccomp probe
(tests/security/seccomp-probe.c, built here with `cc -static` once per
session), the hardened config as `moat-runtime spec --hardened` writes it,
and a bind mount that puts the probe at /mnt/probe in a container."""

import json
import os
import shutil
import subprocess
import tempfile

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
_probe_dir = []


def probe_dir():
    """A directory holding the static probe (built on first use)."""
    if _probe_dir:
        return _probe_dir[0]
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise AssertionError("no C compiler to build the seccomp probe")
    d = tempfile.mkdtemp(prefix="moat-probe-", dir="/tmp")
    os.chmod(d, 0o755)
    subprocess.run([cc, "-static", "-O1", "-o", os.path.join(d, "probe"),
                    os.path.join(HERE, "seccomp-probe.c")],
                   check=True, capture_output=True, timeout=120)
    _probe_dir.append(d)
    return d


def remove_probe_dir():
    if _probe_dir:
        shutil.rmtree(_probe_dir.pop(), ignore_errors=True)


def probe_mount():
    return {"destination": "/mnt", "type": "bind", "source": probe_dir(),
            "options": ["rbind", "ro", "nosuid", "nodev"]}


def hardened_config(env, args):
    """`spec --hardened` output pointed at the shared rootfs, running args,
    with the probe mounted at /mnt."""
    d = env.path("spec-hardened")
    os.makedirs(d, exist_ok=True)
    env.rt.ok("spec", "--hardened", "--bundle", d)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"] = {"path": env.rootfs, "readonly": True}
    cfg["process"]["args"] = list(args)
    cfg["mounts"].append(probe_mount())
    return cfg


def run_probe(env, cfg, *calls):
    """Runs the probe in a container of cfg; returns {call: errno}."""
    cfg = json.loads(json.dumps(cfg))
    cfg["process"]["args"] = ["/mnt/probe", *calls]
    c = env.container(config=cfg)
    r = c.run()
    assert r.returncode == 0, f"probe exited {r.returncode}: {r.stderr!r}"
    return harness.parse_json(r.stdout)
