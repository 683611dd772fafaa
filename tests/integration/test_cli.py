"""spec, features, --version, logging, and the verbs moat does not support yet."""

import json
import os

import pytest

from harness import Runtime


def test_spec_is_runnable(env):
    d = env.path("specdir")
    os.mkdir(d)
    r = env.rt.cmd("spec", cwd=d)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["ociVersion"]
    assert cfg["root"]["path"] == "rootfs"
    assert cfg["process"]["terminal"] is True
    kinds = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert {"pid", "network", "ipc", "uts", "mount"} <= kinds
    # make it runnable: our rootfs, our payload, no terminal
    cfg["root"]["path"] = env.rootfs
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/payload", "print", "from-spec"]
    c = env.container(config=cfg)
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from-spec\n"


def test_spec_refuses_to_overwrite(env):
    d = env.path("specdir")
    os.mkdir(d)
    env.rt.ok("spec", cwd=d)
    r = env.rt.cmd("spec", cwd=d)
    assert r.returncode != 0


def test_spec_bundle_flag(env):
    d = env.path("specbundle")
    os.mkdir(d)
    env.rt.ok("spec", "--bundle", d)
    assert os.path.exists(os.path.join(d, "config.json"))


def test_spec_rootless(env):
    d = env.path("specdir")
    os.mkdir(d)
    env.rt.ok("spec", "--rootless", cwd=d)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    kinds = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert "user" in kinds and "network" not in kinds
    assert cfg["linux"]["uidMappings"][0]["containerID"] == 0
    assert cfg["linux"]["uidMappings"][0]["size"] == 1
    assert cfg["linux"]["gidMappings"][0]["hostID"] == os.getegid()
    assert "resources" not in cfg["linux"] or not cfg["linux"]["resources"]


def test_features(env):
    r = env.rt.ok("features")
    f = json.loads(r.stdout)
    assert f["ociVersionMin"].startswith("1.0")
    assert f["ociVersionMax"].startswith("1.")
    assert set(f["hooks"]) >= {"prestart", "createRuntime", "createContainer",
                               "startContainer", "poststart", "poststop"}
    assert {"ro", "rw", "nosuid", "bind", "rbind"} <= set(f["mountOptions"])
    ns = set(f["linux"]["namespaces"])
    assert {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"} <= ns
    caps = f["linux"]["capabilities"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_CHOWN" in caps


@pytest.mark.moat_only
def test_features_time_namespace(env):
    f = json.loads(env.rt.ok("features").stdout)
    assert set(f["linux"]["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid",
                                            "user", "uts", "time"}
    assert f["ociVersionMax"] == "1.3.0"


def test_version(env):
    r = env.rt.cmd("--version")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{os.path.basename(env.rt.path)} version ") or \
        lines[0].startswith("runc version ")
    assert any(l.startswith("spec: ") for l in lines), lines


def test_help_and_unknown_command(env):
    r = env.rt.cmd("no-such-command")
    assert r.returncode != 0


def test_log_file_text(env):
    log = env.path("log.txt")
    r = env.rt.cmd("state", "no-such-ctr", global_args=("--log", log))
    assert r.returncode != 0
    # runc writes the error to the log file (and stderr), never silently drops it
    with open(log) as f:
        assert "does not exist" in f.read() + r.stderr


@pytest.mark.moat_only
def test_log_json_lines(env):
    log = env.path("log.json")
    c = env.container(["/bin/payload", "true"], {"process": {"cwd": "relative"}})
    r = c.run(global_args=("--log", log, "--log-format", "json"))
    assert r.returncode != 0
    with open(log) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    assert lines, "nothing logged"
    for l in lines:
        assert {"level", "msg", "time"} <= set(l), l
    errors = [l for l in lines if l["level"] == "error"]
    assert errors, lines
    assert "cwd" in errors[-1]["msg"]


def test_log_json_state_missing(env):
    log = env.path("log.json")
    r = env.rt.cmd("state", "no-such-ctr", global_args=("--log", log, "--log-format", "json"))
    assert r.returncode != 0
    with open(log) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    errors = [l for l in lines if l.get("level") == "error"]
    assert errors and "does not exist" in errors[-1]["msg"]
    assert "time" in errors[-1]


# Verbs that belong to later work answer clearly until they exist.
UNSUPPORTED = [
    ["checkpoint", "ID"],
    ["restore", "ID"],
]


@pytest.mark.moat_only
@pytest.mark.parametrize("argv", UNSUPPORTED, ids=lambda a: a[0])
def test_unsupported_commands(env, argv):
    c = env.container(["/bin/payload", "sleep", "60"])
    c.create()
    r = env.rt.cmd(*[c.id if a == "ID" else a for a in argv])
    assert r.returncode != 0
    assert "not supported" in r.stderr


@pytest.mark.moat_only
def test_systemd_cgroup_refused(env):
    c = env.container(["/bin/payload", "true"])
    r = c.run(global_args=("--systemd-cgroup",))
    assert r.returncode != 0
    assert "systemd" in r.stderr


def test_root_dir_created(env):
    rt = Runtime(env.path("fresh", "nested", "root"))
    r = rt.cmd("list")
    assert r.returncode == 0, r.stderr


@pytest.mark.moat_only
def test_rootless_refused_clearly(env):
    # Rootless containers need a user namespace (tests/security/
    # test_rootless.py runs them as a real unprivileged user); the default
    # config has none, so --rootless true refuses it and makes nothing.
    c = env.container(["/bin/payload", "true"])
    r = c.run(global_args=("--rootless", "true"))
    assert r.returncode != 0
    assert "rootless container" in r.stderr and "user namespace" in r.stderr, r.stderr
    assert not os.path.lexists(c.state_dir)
