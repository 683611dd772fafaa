"""Regression tests for defects found in review of the runtime core.

Each test fails on the code before its fix: the fd-number check of
LISTEN_FDS/--preserve-fds, the signal state a foreground `run` hands to the
container, the reaping of an init when the caller ignores SIGCHLD, delete's
treatment of a cgroup it did not create, the clean-up of a create that was
killed half-way, deleting a created container, and relative --root paths.
"""

import os
import signal
import subprocess

import pytest

from harness import TIMEOUT, is_moat, parse_json, pid_alive, wait_for


def test_listen_fds_without_open_fds_is_refused(env):
    # Nothing is open at fds 3 and 4: before the fix, the runtime's own
    # directory fds took those numbers and reached the container.
    c = env.container(["/bin/payload", "info"])
    envp = dict(os.environ, LISTEN_FDS="2")
    r = subprocess.run(env.rt.argv("run", "--bundle", c.bundle, c.id), env=envp,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=TIMEOUT, close_fds=True)
    assert r.returncode != 0
    if is_moat():
        assert "is not open" in r.stderr, r.stderr


def test_preserve_fds_without_open_fds_is_refused(env):
    c = env.container(["/bin/payload", "info"])
    r = subprocess.run(env.rt.argv("run", "--preserve-fds", "3", "--bundle", c.bundle, c.id),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=TIMEOUT, close_fds=True)
    assert r.returncode != 0
    assert "/proc/self/fd/3/.." not in r.stdout


def test_foreground_run_unblocks_signals(env):
    info = env.run_payload()
    assert int(info["SigBlk"], 16) == 0, info["SigBlk"]


def test_ignored_signals_are_reset(env):
    c = env.container(["/bin/payload", "info"])
    def ignore():
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    r = subprocess.run(env.rt.argv("run", "--bundle", c.bundle, c.id), preexec_fn=ignore,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert int(parse_json(r.stdout)["SigIgn"], 16) == 0


def test_run_with_sigchld_ignored_returns_status(env):
    # With SIGCHLD ignored by the caller the kernel used to reap the init
    # itself and `run` waited forever.
    c = env.container(["/bin/payload", "exit", "5"])
    r = subprocess.run(env.rt.argv("run", "--bundle", c.bundle, c.id),
                       preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 5, r.stderr


def test_delete_spares_processes_of_a_cgroup_it_did_not_create(env):
    # A cgroupsPath naming an existing cgroup: a host process in it must
    # survive the container's delete.
    name = f"moat-shared-{os.getpid()}-{c_suffix()}"
    made = []
    for hier in ("pids", "memory"):
        d = f"/sys/fs/cgroup/{hier}/{name}"
        os.mkdir(d)
        made.append(d)
    host = subprocess.Popen(["sleep", "60"])
    def undo():
        host.kill()
        host.wait()
        for d in made:
            wait_for(lambda d=d: _rmdir(d), timeout=5)
    env.on_cleanup(undo)
    for d in made:
        with open(f"{d}/cgroup.procs", "w") as f:
            f.write(str(host.pid))
    c = env.container(["/bin/payload", "true"], {"linux": {"cgroupsPath": "/" + name}})
    c.run()
    assert pid_alive(host.pid), "delete killed a process of a cgroup it did not create"
    for d in made:
        assert os.path.isdir(d), "delete removed a cgroup it did not create"


def c_suffix():
    return os.urandom(3).hex()


def _rmdir(d):
    try:
        os.rmdir(d)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def test_delete_force_cleans_a_half_created_container(env):
    c = env.container(["/bin/payload", "true"])
    # What a create killed before writing state.json leaves behind.
    os.makedirs(c.state_dir, mode=0o711)
    with open(os.path.join(c.state_dir, "config.json"), "w") as f:
        f.write("{}")
    c.delete(force=True)
    assert not os.path.exists(c.state_dir)


def test_delete_created_container_without_force(env):
    c = env.container(["/bin/payload", "sleep", "60"])
    c.create()
    pid = c.init_pid
    c.delete()
    assert wait_for(lambda: not pid_alive(pid), timeout=10)
    assert not os.path.exists(c.state_dir)


def test_relative_root_is_relative_to_the_caller(env):
    c = env.container(["/bin/payload", "true"])
    rel = "relroot"
    argv = [env.rt.path, "--root", rel, "run", "--bundle", c.bundle, c.id]
    r = subprocess.run(argv, cwd=env.path(), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert os.path.isdir(env.path(rel)), "state root not made relative to the caller's cwd"
    assert not os.path.exists(os.path.join(c.bundle, rel))
