"""--preserve-fds, LISTEN_FDS socket activation, and no fd leaks."""

import os
import shlex
import subprocess

from harness import TIMEOUT, parse_json


def run_with_fds(env, c, fd_files, extra=(), listen_fds=None):
    """Foreground `run` with fd_files opened at fds 3, 4, ... in the runtime
    (a /bin/sh wrapper does the redirections and execs the runtime).

    With listen_fds, LISTEN_FDS is set and LISTEN_PID is the runtime's own pid
    (exec keeps the pid), as systemd socket activation does."""
    redir = " ".join(f"{3 + i}<{shlex.quote(p)}" for i, p in enumerate(fd_files))
    script = 'exec "$@" ' + redir
    envp = dict(os.environ)
    envp.pop("LISTEN_FDS", None)
    envp.pop("LISTEN_PID", None)
    if listen_fds is not None:
        envp["LISTEN_FDS"] = str(listen_fds)
        script = "LISTEN_PID=$$; export LISTEN_PID; " + script
    argv = ["/bin/sh", "-c", script, "sh"] + env.rt.argv("run", "--bundle", c.bundle,
                                                         *extra, c.id)
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT, env=envp)


def make_files(env, n):
    out = []
    for i in range(n):
        p = env.path(f"fdfile{i}")
        with open(p, "w") as f:
            f.write(str(i))
        out.append(p)
    return out


def fds_of(info):
    return {int(k): v for k, v in info["fds"].items()}


def test_preserve_fds(env):
    files = make_files(env, 2)
    c = env.container(["/bin/payload", "info"])
    r = run_with_fds(env, c, files, extra=("--preserve-fds", "2"))
    assert r.returncode == 0, r.stderr
    fds = fds_of(parse_json(r.stdout))
    assert sorted(fds) == [0, 1, 2, 3, 4], fds
    assert fds[3].endswith("fdfile0") and fds[4].endswith("fdfile1")


def test_fds_not_preserved_by_default(env):
    files = make_files(env, 2)
    c = env.container(["/bin/payload", "info"])
    r = run_with_fds(env, c, files)
    assert r.returncode == 0, r.stderr
    assert sorted(fds_of(parse_json(r.stdout))) == [0, 1, 2]


def test_no_fd_leaks(env):
    info = env.run_payload()
    assert sorted(fds_of(info)) == [0, 1, 2], info["fds"]


def test_no_fd_leaks_detached(env):
    c = env.container(["/bin/payload", "fds"])
    c.create()
    c.start()
    c.wait_status("stopped")
    assert sorted(int(k) for k in parse_json(c.output())["fds"]) == [0, 1, 2]


def test_listen_fds(env):
    files = make_files(env, 2)
    c = env.container(["/bin/payload", "info"])
    r = run_with_fds(env, c, files, listen_fds=2)
    assert r.returncode == 0, r.stderr
    info = parse_json(r.stdout)
    fds = fds_of(info)
    assert sorted(fds) == [0, 1, 2, 3, 4], fds
    assert "LISTEN_FDS=2" in info["env"]
    assert "LISTEN_PID=1" in info["env"]


def test_listen_fds_then_preserved(env):
    files = make_files(env, 3)
    c = env.container(["/bin/payload", "info"])
    r = run_with_fds(env, c, files, extra=("--preserve-fds", "1"), listen_fds=2)
    assert r.returncode == 0, r.stderr
    fds = fds_of(parse_json(r.stdout))
    assert sorted(fds) == [0, 1, 2, 3, 4, 5], fds
    assert fds[5].endswith("fdfile2")
