"""cgroupsPath placement (every v1 hierarchy and the unified one), resources,
and removal on delete."""

import os

import pytest

from harness import cgroup_dirs_named, CGROUP_ROOT

SLEEP = ["/bin/payload", "sleep", "60"]


def proc_cgroups(pid):
    """{hierarchy key: path} from /proc/<pid>/cgroup; key '' is the unified one."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[ctrls] = path
    return out


def v1_hierarchies():
    keys = proc_cgroups(os.getpid())
    return [k for k in keys if k]


def has_unified():
    return "" in proc_cgroups(os.getpid()) and os.path.isdir(os.path.join(CGROUP_ROOT, "unified")) \
        or os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def hierarchy_dir(key):
    if key == "":
        u = os.path.join(CGROUP_ROOT, "unified")
        return u if os.path.isdir(u) else CGROUP_ROOT
    name = key.split(",")[0].replace("name=", "")
    return os.path.join(CGROUP_ROOT, name)


def remove_tree_later(env, top_name):
    def rm():
        for d in sorted(cgroup_dirs_named(top_name), key=len, reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass
    env.on_cleanup(rm)


def check_placement(pid, want, exact):
    cg = proc_cgroups(pid)
    hier = [k for k in proc_cgroups(os.getpid())]
    for k in hier:
        if k == "" and not has_unified():
            continue
        got = cg.get(k)
        if exact:
            assert got == want, f"{k}: {got} != {want}"
        else:
            assert got is not None and got.endswith(want), f"{k}: {got} does not end in {want}"


def test_absolute_cgroups_path(env):
    c = env.container(SLEEP)
    top = f"moat-cg-{c.id}"
    path = f"/{top}/ctr"
    c.config["linux"]["cgroupsPath"] = path
    c.write_config()
    remove_tree_later(env, top)
    c.create()
    check_placement(c.init_pid, path, exact=True)
    for k in v1_hierarchies():
        assert os.path.isdir(hierarchy_dir(k) + path), k
    c.delete(force=True)
    for k in v1_hierarchies():
        assert not os.path.exists(hierarchy_dir(k) + path), k


def test_relative_cgroups_path(env):
    c = env.container(SLEEP)
    top = f"moat-rel-{c.id}"
    rel = f"{top}/ctr"
    c.config["linux"]["cgroupsPath"] = rel
    c.write_config()
    remove_tree_later(env, top)
    c.create()
    check_placement(c.init_pid, "/" + rel, exact=False)


def test_default_cgroups_path(env):
    c = env.container(SLEEP)
    c.create()
    cg = proc_cgroups(c.init_pid)
    for k in v1_hierarchies():
        assert c.id in cg[k], f"{k}: {cg[k]} does not name the container"
    c.delete(force=True)
    assert cgroup_dirs_named(c.id) == []


def test_cgroup_removed_after_exit_and_delete(env):
    c = env.container(["/bin/payload", "true"])
    c.config["linux"]["cgroupsPath"] = f"/moat-gone-{c.id}"
    c.write_config()
    c.create()
    assert cgroup_dirs_named(c.id)
    c.start()
    c.wait_status("stopped")
    c.delete()
    assert cgroup_dirs_named(c.id) == []


def test_pids_limit(env):
    c = env.container(SLEEP, {"linux": {"resources": {"pids": {"limit": 42}}}})
    c.config["linux"]["cgroupsPath"] = f"/moat-pids-{c.id}"
    c.write_config()
    c.create()
    with open(os.path.join(CGROUP_ROOT, "pids", f"moat-pids-{c.id}", "pids.max")) as f:
        assert f.read().strip() == "42"


def test_memory_limit(env):
    if not os.path.isdir(os.path.join(CGROUP_ROOT, "memory")):
        pytest.skip("no v1 memory controller")
    lim = 64 * 1024 * 1024
    c = env.container(SLEEP, {"linux": {"resources": {"memory": {"limit": lim}}}})
    c.config["linux"]["cgroupsPath"] = f"/moat-mem-{c.id}"
    c.write_config()
    c.create()
    with open(os.path.join(CGROUP_ROOT, "memory", f"moat-mem-{c.id}",
                           "memory.limit_in_bytes")) as f:
        assert int(f.read()) == lim


def test_cgroup_namespace_root(env):
    info = env.run_payload()
    for line in info["cgroup"].splitlines():
        assert line.split(":", 2)[2] == "/", line
