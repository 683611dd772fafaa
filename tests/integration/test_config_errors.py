"""Bad configurations must fail before anything is made, and leave nothing.

The env fixture's teardown checks that no state dir, process, cgroup or
mount is left.  For moat the error must also name the JSON path at fault.
"""

import glob
import json
import os

import pytest

from harness import is_moat, spec_dir

BAD_DIR = os.path.join(spec_dir(), "runtime-spec-v1.3.0", "test", "config", "bad")
BAD_FILES = sorted(glob.glob(os.path.join(BAD_DIR, "*.json")))


def attempt(env, c):
    """create, then (if that wrongly succeeded) start; returns (rc, stderr)."""
    r = c.create(check=False)
    err = c.errors()
    return r.returncode, err


def check_path_named(err, *words):
    if not is_moat():
        return
    low = err.lower()
    assert any(w.lower() in low for w in words), f"error does not name {words}: {err!r}"


@pytest.mark.skipif(not BAD_FILES, reason=f"no spec test configs in {BAD_DIR}")
@pytest.mark.parametrize("path", BAD_FILES, ids=os.path.basename)
def test_spec_bad_config_as_is(env, path):
    with open(path) as f:
        text = f.read()
    c = env.container(raw=text)
    rc, err = attempt(env, c)
    assert rc != 0
    assert err.strip()


def bad_files_merged():
    out = []
    for p in BAD_FILES:
        try:
            with open(p) as f:
                d = json.load(f)
        except ValueError:
            continue
        out.append((os.path.basename(p), d))
    return out


# The field each bad spec example breaks (for moat's error message check).
BAD_FIELD = {"linux-hugepage.json": "hugepageLimits", "linux-netdevice.json": "netDevices",
             "linux-rdma.json": "rdma"}


@pytest.mark.moat_only
@pytest.mark.parametrize("name,bad", bad_files_merged(), ids=lambda v: v if isinstance(v, str) else "")
def test_spec_bad_config_merged(env, name, bad):
    # the bad field grafted onto a config that is otherwise runnable: moat
    # validates against the schema; runc 1.1 ignores netDevices/rdma shapes
    bad = dict(bad)
    bad.pop("root", None)
    bad.pop("ociVersion", None)
    c = env.container(["/bin/payload", "true"], bad)
    rc, err = attempt(env, c)
    assert rc != 0
    check_path_named(err, BAD_FIELD.get(name, ""))


CASES = {
    "invalid-json": (None, '{"ociVersion": "1.0.2", "process": ', ["json"]),
    "not-an-object": (None, '[1, 2, 3]', ["object", "json"]),
    "missing-root": ({"root": None}, None, ["root"]),
    "missing-root-dir": ({"root": {"path": "/nonexistent/moat-rootfs"}}, None, ["root"]),
    "relative-cwd": ({"process": {"cwd": "relative/dir"}}, None, ["cwd"]),
    "unknown-namespace": ({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"},
                                                    {"type": "bogus"}]}},
                          None, ["namespaces", "bogus"]),
    "duplicate-namespace": ({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"},
                                                      {"type": "pid"}]}},
                            None, ["namespaces", "pid"]),
    "bad-id-mapping": ({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"},
                                                 {"type": "user"}],
                                  "uidMappings": [{"containerID": 0, "hostID": "x",
                                                   "size": 1}]}},
                       None, ["uidMappings", "hostID"]),
    "mappings-without-userns": ({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000,
                                                            "size": 1}],
                                           "gidMappings": [{"containerID": 0, "hostID": 1000,
                                                            "size": 1}]}},
                                None, ["uidMappings", "user"]),
    "missing-args": ({"process": {"args": []}}, None, ["args"]),
    "args-not-strings": ({"process": {"args": [1, 2]}}, None, ["args"]),
    "unknown-rlimit": ({"process": {"rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1,
                                                 "hard": 1}]}}, None, ["rlimits", "RLIMIT_BOGUS"]),
    "unknown-capability": ({"process": {"capabilities": {"bounding": ["CAP_BOGUS"]}}},
                           None, ["capabilities", "CAP_BOGUS"]),
    "bad-mount-type": ({"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                                   {"destination": "/mnt", "type": "nosuchfs",
                                    "source": "x"}]}, None, ["mounts", "nosuchfs"]),
    "relative-mount-destination-escape": (
        {"mounts": [{"destination": "../../../../escape", "type": "tmpfs",
                     "source": "tmpfs"}]}, None, ["mounts", "destination"]),
    "host-sysctl": ({"linux": {"sysctl": {"kernel.printk_ratelimit_burst": "11"}}}, None,
                    ["sysctl", "kernel.printk_ratelimit_burst"]),
    "bad-device-type": ({"linux": {"devices": [{"path": "/dev/x", "type": "q", "major": 1,
                                                "minor": 3}]}}, None, ["devices", "type"]),
}

# runc 1.1 accepts some of these (it does not validate against the schema)
RUNC_ACCEPTS = {"not-an-object", "unknown-capability", "relative-mount-destination-escape",
                "relative-cwd", "bad-device-type",
                "mappings-without-userns"}


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.moat_only) if c in RUNC_ACCEPTS else c
    for c in sorted(CASES)])
def test_bad_config(env, case):
    overrides, raw, words = CASES[case]
    c = env.container(["/bin/payload", "true"], overrides, raw=raw)
    rc, err = attempt(env, c)
    assert rc != 0, f"{case}: create succeeded"
    assert err.strip(), "no error message"
    check_path_named(err, *words)


def test_mount_destination_symlink_escape_leaves_host_untouched(env, private_rootfs):
    # rootfs/escape -> / : mounting on /escape/etc must not cover the host's /etc
    os.symlink("/", os.path.join(private_rootfs, "escape"))
    before = os.stat("/etc").st_dev
    c = env.container(["/bin/payload", "stat", "/etc/passwd"], {
        "root": {"path": private_rootfs},
        "mounts": env.config()["mounts"] + [
            {"destination": "/escape/etc", "type": "tmpfs", "source": "tmpfs"}]})
    c.create(check=False)
    assert os.stat("/etc").st_dev == before
    assert os.path.exists("/etc/passwd")


def test_run_bad_config_leaves_nothing(env):
    c = env.container(["/nonexistent/binary"])
    r = c.run()
    assert r.returncode != 0
    assert env.rt.cmd("state", c.id).returncode != 0


def test_missing_config_json(env):
    c = env.container()
    os.unlink(os.path.join(c.bundle, "config.json"))
    rc, err = attempt(env, c)
    assert rc != 0
    assert "config.json" in err
