"""Where a container's files live (issue 7; engine-internal.h): what only
means something while the host is up (the bundle's config.json, the /etc
files mounted into the container, the monitor's sockets, pid and exit
files) is in the run directory under the exec root; the writable layer and
the log stay under the data root.

Checked on disk and through inspect, for a running container, an exec, a
removal, and a daemon restart that finds a run directory the database does
not know.
"""

import os

from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, new_daemon, wait_for  # noqa: F401

RUN_FILES = {"config.json", "hostname", "hosts", "resolv.conf", "attach.sock", "ctl.sock", "monitor.pid"}


def run_dir(d, cid):
    return os.path.join(d.exec_root, "containers", cid)


def data_dir(d, cid):
    return os.path.join(d.data, "containers", cid)


def test_run_files_are_under_the_exec_root(daemon):
    d = daemon
    cid = d.run_d("--name", "rundir-a", IMAGE, "sleep", "1000")
    run, data = run_dir(d, cid), data_dir(d, cid)
    assert RUN_FILES <= set(os.listdir(run)), os.listdir(run)
    assert not RUN_FILES & set(os.listdir(data)), os.listdir(data)
    assert {"upper", "work", "rootfs", f"{cid}-json.log"} <= set(os.listdir(data))
    ins = d.inspect(cid)
    for key, name in (("HostsPath", "hosts"), ("HostnamePath", "hostname"), ("ResolvConfPath", "resolv.conf")):
        assert ins[key] == os.path.join(run, name)
    assert ins["LogPath"] == os.path.join(data, f"{cid}-json.log")
    # the container's /etc/hostname is the run directory's file, bind-mounted
    out = d.ok("exec", cid, "cat", "/etc/hostname").stdout.strip()
    with open(os.path.join(run, "hostname")) as f:
        assert f.read().strip() == out == cid[:12]
    with open(os.path.join(run, "monitor.pid")) as f:
        mon = int(f.read())
    assert os.path.exists(f"/proc/{mon}")
    # the exec's files are there too
    assert any(n.startswith("exec-") and n.endswith(".exit.json") for n in os.listdir(run))
    # the bundle's root is the data root's mount point
    with open(os.path.join(run, "config.json")) as f:
        import json
        assert json.load(f)["root"]["path"] == os.path.join(data, "rootfs")
    assert d.docker("rm", "-f", cid).returncode == 0
    assert wait_for(lambda: not os.path.exists(run)), "rm left the run directory"


def test_exit_is_recorded_in_the_run_directory(daemon):
    d = daemon
    cid = d.run_d(IMAGE, "sh", "-c", "exit 7")
    assert d.ok("wait", cid).stdout.strip() == "7"
    assert os.path.exists(os.path.join(run_dir(d, cid), "exit.json"))
    assert not os.path.exists(os.path.join(data_dir(d, cid), "exit.json"))
    # a second start writes the run directory afresh
    assert d.docker("start", cid).returncode == 0
    assert d.ok("wait", cid).stdout.strip() == "7"


def test_restart_removes_unknown_run_directories(session_tmp, demo_image_tar):
    d = new_daemon(session_tmp, demo_image_tar)
    try:
        d.start()
        stray = os.path.join(d.exec_root, "containers", "ab" * 32)
        os.makedirs(stray)
        with open(os.path.join(stray, "config.json"), "w") as f:
            f.write("{}")
        other = os.path.join(d.exec_root, "containers", "not-an-id")
        os.makedirs(other)
        assert d.stop() == 0
        d.start()
        # the socket listens before the engine has restored: wait for an answer
        d.ok("ps", "-aq")
        assert not os.path.exists(stray), "a run directory of no container survived the restart"
        assert os.path.isdir(other), "only container ids are the daemon's to remove"
        os.rmdir(other)
    finally:
        problems = d.cleanup()
    assert not problems, problems
