"""kill --all reaches every process of the container's cgroup, also those
that double-forked away from the init and ignore SIGTERM, and SIGKILL returns
only once the cgroup is empty; delete --force leaves nothing; create/delete
cycles leave no cgroup directory behind."""

import os
import subprocess

from harness import cgroup_dirs_named, parse_json_lines, pid_alive, wait_for

NO_PIDNS = {"linux": {"namespaces": [{"type": t} for t in
                                     ("network", "ipc", "uts", "mount", "cgroup")]}}

# The init starts a double-forked TERM-ignoring daemon (its parent subshell
# exits at once, so it is nobody's child in the container) and a forker whose
# two children sleep, then becomes a TERM-ignoring process itself.
DAEMONS = ["/bin/sh", "-c",
           "(/bin/payload ignore-term &); (/bin/payload fork-sleep 2 3600 &); "
           "exec /bin/payload ignore-term"]


def procs_file(cid):
    for d in cgroup_dirs_named(cid):
        top = os.path.relpath(d, "/sys/fs/cgroup").split("/")[0]
        if "pids" in top.split(","):
            return os.path.join(d, "cgroup.procs")
    for d in cgroup_dirs_named(cid):
        if os.path.exists(os.path.join(d, "cgroup.procs")):
            return os.path.join(d, "cgroup.procs")
    return None


def members(cid):
    p = procs_file(cid)
    if not p:
        return []
    with open(p) as f:
        return [int(x) for x in f.read().split()]


def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    return int(st[st.rfind(")") + 2:].split()[1])


def start_daemons(env):
    c = env.container(DAEMONS, NO_PIDNS)
    c.run_detached()
    # init + daemon + forker + its 2 children
    assert wait_for(lambda: len(members(c.id)) == 5, 10), members(c.id)
    return c


def test_kill_all_sigkill_leaves_empty_cgroup(env):
    c = start_daemons(env)
    pids = members(c.id)
    escaped = [p for p in pids if p != c.init_pid and ppid(p) != c.init_pid]
    assert escaped, "no process escaped the init's tree; the test proves nothing"

    c.kill("TERM", extra=["--all"])
    # TERM-ignoring ones live on; fork-sleep's processes die of it.
    assert wait_for(lambda: len(members(c.id)) == 2, 10), members(c.id)
    assert c.init_pid in members(c.id)

    c.kill("KILL", extra=["--all"])
    # kill --all KILL returns once the cgroup is empty: no waiting here.
    assert members(c.id) == []
    for p in pids:
        assert not pid_alive(p), f"pid {p} survived kill --all KILL"
    assert c.wait_status("stopped")


def test_kill_all_after_init_exit(env):
    """The init exited but a double-forked daemon lives on: the container is
    stopped, and kill --all still reaches what is left in its cgroup."""
    c = env.container(["/bin/sh", "-c", "(/bin/payload ignore-term &); sleep 0.1"], NO_PIDNS)
    c.run_detached()
    assert c.wait_status("stopped")
    assert wait_for(lambda: len(members(c.id)) == 1, 10)
    daemon = members(c.id)[0]
    c.kill("KILL", extra=["--all"])
    assert members(c.id) == []
    assert not pid_alive(daemon)
    c.delete()
    assert not cgroup_dirs_named(c.id)


def test_kill_all_signal_reaches_every_process(env):
    c = env.container(["/bin/sh", "-c",
                       "/bin/payload sigwait & /bin/payload sigwait & exec /bin/payload sigwait"], NO_PIDNS)
    c.run_detached()
    assert wait_for(lambda: sum(1 for l in parse_json_lines(c.output()) if l.get("ready")) == 3, 10)
    c.kill("USR1", extra=["--all"])
    assert wait_for(lambda: sum(1 for l in parse_json_lines(c.output()) if "signal" in l) == 3, 10)
    assert all(l["signal"] == 10 for l in parse_json_lines(c.output()) if "signal" in l)
    assert c.wait_status("stopped")


def test_delete_force_kills_escaped_processes(env):
    c = start_daemons(env)
    pids = members(c.id)
    c.delete(force=True)
    for p in pids:
        assert not pid_alive(p), f"pid {p} survived delete --force"
    assert not cgroup_dirs_named(c.id)
    assert not os.path.exists(c.state_dir)


def test_no_cgroup_left_after_create_delete_cycles(env):
    # One bundle, many ids; each is force-deleted even when a check fails.
    proto = env.container(["/bin/payload", "true"])
    for i in range(100):
        cid = f"{proto.id}-c{i}"
        try:
            r = proto.rt.cmd("create", "--bundle", proto.bundle, cid, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            assert r.returncode == 0, f"create of cycle {i} failed"
            assert cgroup_dirs_named(cid)
        finally:
            proto.rt.cmd("delete", "--force", cid)
        assert not cgroup_dirs_named(cid), f"cgroup of cycle {i} left behind"
    for i in range(3):
        c = env.container(["/bin/payload", "sleep", "60"])
        c.run_detached()
        c.delete(force=True)
        assert not cgroup_dirs_named(c.id), f"started cycle {i}"
        assert not pid_alive(c.init_pid)
