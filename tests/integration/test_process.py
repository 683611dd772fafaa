"""process: args, env, cwd, user, umask, rlimits, capabilities, oom, nnp, tty."""

import resource

import pytest

from harness import cap_mask


def test_args(env):
    info = env.run_payload(args=("info", "a b", "", "ünïcode", "--flag"))
    assert info["argv"] == ["/bin/payload", "info", "a b", "", "ünïcode", "--flag"]


def test_args_path_lookup(env):
    c = env.container(["payload", "print", "found"])
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "found\n"


def test_env(env):
    info = env.run_payload({"process": {"env": ["PATH=/bin", "FOO=bar baz", "EMPTY="]}})
    assert "FOO=bar baz" in info["env"]
    assert "EMPTY=" in info["env"]
    assert "PATH=/bin" in info["env"]
    # nothing from the runtime's own environment leaks in
    assert not any(e.startswith(("PYTEST", "MOAT_")) for e in info["env"])


def test_cwd(env):
    info = env.run_payload({"process": {"cwd": "/etc"}})
    assert info["cwd"] == "/etc"


def test_cwd_created_when_missing(env):
    # runc creates a missing cwd (inside the rootfs, before it is made read-only)
    info = env.run_payload({"process": {"cwd": "/tmp/work/dir"},
                            "mounts": env.config()["mounts"] + [
                                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]})
    assert info["cwd"] == "/tmp/work/dir"


def test_user_ids_groups_umask(env):
    info = env.run_payload({"process": {"user": {"uid": 1000, "gid": 1000,
                                                 "additionalGids": [100, 5],
                                                 "umask": 0o27}}})
    assert (info["uid"], info["euid"], info["suid"]) == (1000, 1000, 1000)
    assert (info["gid"], info["egid"], info["sgid"]) == (1000, 1000, 1000)
    assert sorted(info["groups"]) == [5, 100] or sorted(info["groups"]) == [5, 100, 1000]
    assert info["Umask"] == "0027"


def test_default_umask(env):
    info = env.run_payload()
    assert info["Umask"] == "0022"


def test_root_user(env):
    info = env.run_payload()
    assert (info["uid"], info["gid"]) == (0, 0)
    assert info["groups"] in ([], [0])


def test_rlimits(env):
    info = env.run_payload({"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600},
        {"type": "RLIMIT_MSGQUEUE", "soft": 1000, "hard": 2000},
    ]}})
    rl = info["rlimits"]
    assert rl["RLIMIT_NOFILE"] == {"soft": 100, "hard": 200}
    assert rl["RLIMIT_CORE"] == {"soft": 0, "hard": 0}
    assert rl["RLIMIT_NPROC"] == {"soft": 500, "hard": 600}
    assert rl["RLIMIT_MSGQUEUE"] == {"soft": 1000, "hard": 2000}


def test_rlimit_above_hard_limit_fails_cleanly(env):
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if host_hard == resource.RLIM_INFINITY:
        pytest.skip("host has no hard nofile limit")
    c = env.container(["/bin/payload", "true"], {"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": host_hard + 10000}]}})
    r = c.run()
    assert r.returncode != 0
    assert "rlimit" in r.stderr.lower(), r.stderr
    # the env fixture then checks that nothing is left behind


@pytest.mark.moat_only
def test_rlimit_error_names_the_limit(env):
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if host_hard == resource.RLIM_INFINITY:
        pytest.skip("host has no hard nofile limit")
    c = env.container(["/bin/payload", "true"], {"process": {"rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": host_hard + 10000}]}})
    r = c.run()
    assert r.returncode != 0
    assert "RLIMIT_NOFILE" in r.stderr, r.stderr


def test_no_new_privileges(env):
    assert env.run_payload()["NoNewPrivs"] == "1"
    assert env.run_payload({"process": {"noNewPrivileges": False}})["NoNewPrivs"] == "0"


def test_oom_score_adj(env):
    info = env.run_payload({"process": {"oomScoreAdj": 123}})
    assert info["oom_score_adj"] == 123


def test_default_capabilities_root(env):
    info = env.run_payload()
    assert int(info["CapBnd"], 16) == cap_mask(["CAP_AUDIT_WRITE", "CAP_KILL",
                                                "CAP_NET_BIND_SERVICE"])
    assert int(info["CapEff"], 16) == int(info["CapBnd"], 16)
    assert int(info["CapPrm"], 16) == int(info["CapBnd"], 16)


CAPS_BND = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
            "CAP_SYS_CHROOT", "CAP_SETUID"]
CAPS_SET = ["CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"]


def test_capabilities_exact_non_root(env):
    # A non-root process keeps across execve exactly its ambient set in
    # permitted and effective, so every configured set is visible as is.
    info = env.run_payload({"process": {
        "user": {"uid": 1000, "gid": 1000},
        "capabilities": {"bounding": CAPS_BND, "effective": CAPS_SET,
                         "permitted": CAPS_SET, "inheritable": CAPS_SET,
                         "ambient": CAPS_SET}}})
    assert int(info["CapBnd"], 16) == cap_mask(CAPS_BND)
    assert int(info["CapInh"], 16) == cap_mask(CAPS_SET)
    assert int(info["CapAmb"], 16) == cap_mask(CAPS_SET)
    assert int(info["CapPrm"], 16) == cap_mask(CAPS_SET)
    assert int(info["CapEff"], 16) == cap_mask(CAPS_SET)


def test_capabilities_non_root_no_ambient(env):
    info = env.run_payload({"process": {
        "user": {"uid": 1000, "gid": 1000},
        "capabilities": {"bounding": CAPS_BND, "effective": CAPS_SET,
                         "permitted": CAPS_SET, "inheritable": []}}})
    assert int(info["CapBnd"], 16) == cap_mask(CAPS_BND)
    assert int(info["CapPrm"], 16) == 0
    assert int(info["CapEff"], 16) == 0
    assert int(info["CapAmb"], 16) == 0


def test_capabilities_root_bounding_and_inheritable(env):
    info = env.run_payload({"process": {"capabilities": {
        "bounding": CAPS_BND, "effective": CAPS_BND, "permitted": CAPS_BND,
        "inheritable": CAPS_SET}}})
    assert int(info["CapBnd"], 16) == cap_mask(CAPS_BND)
    assert int(info["CapInh"], 16) == cap_mask(CAPS_SET)
    assert int(info["CapEff"], 16) == cap_mask(CAPS_BND)
    assert int(info["CapPrm"], 16) == cap_mask(CAPS_BND)


def test_capabilities_empty(env):
    none = {k: [] for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
    info = env.run_payload({"process": {"capabilities": none}})
    for k in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(info[k], 16) == 0, k


def test_terminal_false_not_a_tty(env):
    info = env.run_payload()
    assert info["tty"]["stdin"] is False
    assert info["tty"]["stdout"] is False
    assert info["tty"]["name"] is None


@pytest.mark.moat_only
def test_personality(env):
    # runc 1.1 ignores linux.personality (runc 1.2)
    info = env.run_payload({"linux": {"personality": {"domain": "LINUX32"}}})
    assert info["personality"] & 0xff == 0x0008


def test_sysctl(env):
    info = env.run_payload({"linux": {"sysctl": {"net.ipv4.ip_default_ttl": "42",
                                                 "kernel.msgmax": "4096"}}},
                           args=("sysctl", "net.ipv4.ip_default_ttl"))
    assert info["value"] == "42"
