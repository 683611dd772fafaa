"""daemon.json's defaults for new containers (issue 7: "the keys users
know from Docker where they apply"): log-driver and log-opts, default-shm-size,
default-ipc-mode, init and default-ulimits fill in at create what the
request leaves unset, as dockerd does; what a request sets wins; a bad
value stops the daemon at start with the key and the reason."""

import json
import os
import subprocess

import pytest

from daemon_fixture import IMAGE, TIMEOUT, demo_image_tar, new_daemon  # noqa: F401

DEFAULTS = {
    "log-opts": {"max-size": "1k", "max-file": "2"},
    "default-shm-size": "16M",
    "default-ipc-mode": "shareable",
    "init": True,
    "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 1234, "Soft": 1000}},
}


@pytest.fixture(scope="module")
def dd(session_tmp, demo_image_tar):  # noqa: F811
    d = new_daemon(session_tmp, demo_image_tar, config=DEFAULTS)
    try:
        d.start()
        yield d
    finally:
        problems = d.cleanup()
        assert not problems, problems


def test_defaults_fill_what_the_request_leaves_unset(dd):
    p = dd.ok("run", "--rm", IMAGE, "sh", "-c",
              "ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1; cat /proc/1/comm; true")
    soft, hard, shm, init = p.stdout.splitlines()
    assert (soft, hard) == ("1000", "1234"), p.stdout
    assert shm.split()[1] == "16384", p.stdout
    assert init not in ("sh", "cat"), p.stdout   # an init (tini) as pid 1
    cid = dd.ok("create", IMAGE, "true").stdout.strip()
    try:
        hc = dd.inspect(cid)["HostConfig"]
        assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}}, hc
        assert hc["IpcMode"] == "shareable" and hc["ShmSize"] == 16 << 20 and hc["Init"] is True, hc
        assert hc["Ulimits"] == [{"Name": "nofile", "Hard": 1234, "Soft": 1000}], hc
    finally:
        dd.docker("rm", cid)


def test_the_request_wins(dd):
    p = dd.ok("run", "--rm", "--ulimit", "nofile=500:600", "--shm-size", "8m", "--init=false",
              "--ipc", "private", "--log-opt", "max-size=2k", IMAGE, "sh", "-c",
              "ulimit -n; df -k /dev/shm | tail -1; cat /proc/1/comm; true")
    soft, shm, init = p.stdout.splitlines()
    assert soft == "500" and shm.split()[1] == "8192" and init == "sh", p.stdout
    cid = dd.ok("create", "--log-opt", "max-size=2k", "--ulimit", "nproc=100:200", IMAGE, "true").stdout.strip()
    try:
        hc = dd.inspect(cid)["HostConfig"]
        # the default options the request lacks are added (same driver)
        assert hc["LogConfig"]["Config"] == {"max-size": "2k", "max-file": "2"}, hc
        assert sorted(u["Name"] for u in hc["Ulimits"]) == ["nofile", "nproc"], hc
    finally:
        dd.docker("rm", cid)
    # another driver gets none of the json-file defaults
    cid = dd.ok("create", "--log-driver", "none", IMAGE, "true").stdout.strip()
    try:
        assert dd.inspect(cid)["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
    finally:
        dd.docker("rm", cid)


def test_the_log_options_rotate(dd):
    cid = dd.ok("run", "-d", IMAGE, "sh", "-c", "for i in $(seq 200); do echo line-$i-padding-padding; done; "
                "sleep 1000").stdout.strip()
    try:
        log = dd.inspect(cid)["LogPath"]
        ok = False
        for _ in range(100):
            if os.path.exists(log + ".1") and "line-200-" in open(log).read():
                ok = True
                break
            subprocess.run(["sleep", "0.1"])
        assert ok, os.listdir(os.path.dirname(log))
        assert os.path.getsize(log) <= 1024 + 200
        assert not os.path.exists(log + ".2")   # max-file 2: the file and one rotated
    finally:
        dd.docker("rm", "-f", cid)


@pytest.mark.parametrize("config, want", [
    ({"default-ipc-mode": "bogus"}, '"default-ipc-mode" must be "private" or "shareable"'),
    ({"default-shm-size": "lots"}, '"default-shm-size" must be a size'),
    ({"init": "yes"}, '"init" must be true or false'),
    ({"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 10, "Soft": 20}}},
     "soft limit must be less than or equal to hard limit"),
    ({"default-ulimits": {"nofile": {"Name": "nproc", "Hard": 10, "Soft": 5}}}, '"default-ulimits": "nofile" must be'),
    ({"log-opts": {"max-size": "huge"}}, 'HostConfig.LogConfig.Config.max-size: "huge" is not a size'),
    ({"log-driver": "syslog"}, "no log driver named 'syslog'"),
])
def test_bad_defaults_stop_the_daemon(session_tmp, config, want):
    d = new_daemon(session_tmp, None, config=config)
    try:
        p = subprocess.run(d.args, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        assert p.returncode != 0, p.stderr
        assert want in p.stderr and "daemon.json" in p.stderr, p.stderr
        assert not os.path.exists(d.sock) and not os.path.exists(d.pidfile)
    finally:
        d.cleanup()
