"""hooks: when each kind runs, what it gets on stdin, failures and timeouts.

Host-side hooks are /bin/sh scripts on the host that save their stdin (the
state JSON) into the test's temp dir and append their name to a log, so the
order is visible.  startContainer runs inside the container, so it uses the
rootfs's busybox sh and writes into a bind-mounted directory.
"""

import json
import os
import time

import pytest

from harness import wait_for

HOST_KINDS = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]


def host_hook(outdir, kind, extra=""):
    return {"path": "/bin/sh",
            "args": ["sh", "-c",
                     f"{extra}cat > {outdir}/{kind}.json; echo {kind} >> {outdir}/order",
                     ],
            "env": ["HOOK_ENV=1", "PATH=/usr/bin:/bin"]}


def hooks_config(env, outdir):
    hooks = {k: [host_hook(outdir, k)] for k in HOST_KINDS}
    hooks["startContainer"] = [{
        "path": "/bin/sh",
        "args": ["sh", "-c", "cat > /hookout/startContainer.json; "
                             "echo startContainer >> /hookout/order"]}]
    return {"hooks": hooks,
            "mounts": env.config()["mounts"] + [
                {"destination": "/hookout", "type": "bind", "source": outdir,
                 "options": ["rbind", "rw"]}]}


def read_order(outdir):
    try:
        with open(os.path.join(outdir, "order")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def read_state(outdir, kind):
    with open(os.path.join(outdir, f"{kind}.json")) as f:
        return json.load(f)


@pytest.mark.moat_only
def test_hook_order_and_stdin(env):
    # runc 1.1 runs poststart hooks at the end of `create`, not after `start`,
    # and passes createContainer hooks pid 1 instead of the host pid
    outdir = env.path("hooks")
    os.mkdir(outdir)
    c = env.container(["/bin/payload", "sleep", "60"], hooks_config(env, outdir))
    c.create()
    order = read_order(outdir)
    assert "startContainer" not in order and "poststart" not in order
    assert set(order) == {"prestart", "createRuntime", "createContainer"}, order
    assert order.index("createRuntime") < order.index("createContainer")
    assert order.index("prestart") < order.index("createContainer")
    for k in order:
        st = read_state(outdir, k)
        assert st["id"] == c.id
        assert os.path.realpath(st["bundle"]) == os.path.realpath(c.bundle)
        assert st["pid"] == c.init_pid
        assert "ociVersion" in st and "status" in st

    c.start()
    assert wait_for(lambda: "poststart" in read_order(outdir))
    order = read_order(outdir)
    assert order[3:] == ["startContainer", "poststart"], order
    assert read_state(outdir, "startContainer")["id"] == c.id
    assert read_state(outdir, "poststart")["pid"] == c.init_pid

    c.kill("KILL")
    assert wait_for(lambda: c.status() == "stopped")
    assert "poststop" not in read_order(outdir)
    c.delete()
    order = read_order(outdir)
    assert order[-1] == "poststop", order
    st = read_state(outdir, "poststop")
    assert st["id"] == c.id


def test_hooks_before_and_after_start(env):
    # what runc 1.1 and the spec agree on
    outdir = env.path("hooks")
    os.mkdir(outdir)
    c = env.container(["/bin/payload", "sleep", "60"], hooks_config(env, outdir))
    c.create()
    order = read_order(outdir)
    assert {"prestart", "createRuntime", "createContainer"} <= set(order)
    assert "startContainer" not in order
    assert order.index("createRuntime") < order.index("createContainer")
    for k in ("prestart", "createRuntime", "createContainer"):
        st = read_state(outdir, k)
        assert st["id"] == c.id
        assert os.path.realpath(st["bundle"]) == os.path.realpath(c.bundle)
    # (runc 1.1 gives createContainer the pid as seen in the container: 1)
    for k in ("prestart", "createRuntime"):
        assert read_state(outdir, k)["pid"] == c.init_pid
    c.start()
    assert wait_for(lambda: "startContainer" in read_order(outdir) and
                    "poststart" in read_order(outdir))
    assert read_state(outdir, "startContainer")["id"] == c.id
    assert "poststop" not in read_order(outdir)
    c.kill("KILL")
    assert wait_for(lambda: c.status() == "stopped")
    c.delete()
    assert read_order(outdir)[-1] == "poststop"
    assert read_state(outdir, "poststop")["id"] == c.id


def test_create_container_hook_runs_in_container_namespaces(env):
    outdir = env.path("hooks")
    os.mkdir(outdir)
    hook = {"path": "/bin/sh", "args": ["sh", "-c",
            f"readlink /proc/self/ns/mnt > {outdir}/mnt; readlink /proc/self/ns/net > {outdir}/net; "
            f"hostname > {outdir}/uts; cat >/dev/null"]}
    c = env.container(["/bin/payload", "sleep", "60"], {"hooks": {"createContainer": [hook]}})
    c.create()
    pid = c.init_pid
    with open(os.path.join(outdir, "mnt")) as f:
        assert f.read().strip() == os.readlink(f"/proc/{pid}/ns/mnt")
    with open(os.path.join(outdir, "net")) as f:
        assert f.read().strip() == os.readlink(f"/proc/{pid}/ns/net")


def test_create_runtime_hook_runs_in_runtime_namespace(env):
    outdir = env.path("hooks")
    os.mkdir(outdir)
    hook = {"path": "/bin/sh", "args": ["sh", "-c",
            f"readlink /proc/self/ns/mnt > {outdir}/mnt; cat >/dev/null"]}
    c = env.container(["/bin/payload", "sleep", "60"], {"hooks": {"createRuntime": [hook]}})
    c.create()
    with open(os.path.join(outdir, "mnt")) as f:
        assert f.read().strip() == os.readlink("/proc/self/ns/mnt")


def test_hook_env_and_args(env):
    outdir = env.path("hooks")
    os.mkdir(outdir)
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f'echo "$0 $1 $HOOK_ENV" > {outdir}/out; cat >/dev/null',
                                        "arg0", "arg1"],
            "env": ["HOOK_ENV=present"]}
    c = env.container(["/bin/payload", "true"], {"hooks": {"createRuntime": [hook]}})
    c.create()
    with open(os.path.join(outdir, "out")) as f:
        assert f.read().strip() == "arg0 arg1 present"


def test_failing_create_runtime_hook_aborts(env):
    outdir = env.path("hooks")
    os.mkdir(outdir)
    hooks = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "cat >/dev/null; exit 3"]}],
             "createContainer": [host_hook(outdir, "createContainer")],
             "poststart": [host_hook(outdir, "poststart")]}
    c = env.container(["/bin/payload", "sleep", "60"], {"hooks": hooks})
    r = c.create(check=False)
    assert r.returncode != 0
    assert read_order(outdir) == []
    assert env.rt.cmd("state", c.id).returncode != 0
    assert not os.path.exists(c.state_dir)


def test_hook_timeout(env):
    hooks = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 60"],
                                "timeout": 1}]}
    c = env.container(["/bin/payload", "sleep", "60"], {"hooks": hooks})
    t0 = time.monotonic()
    r = c.create(check=False)
    assert r.returncode != 0
    assert time.monotonic() - t0 < 20
    assert not os.path.exists(c.state_dir)


def test_failing_poststart_hook(env):
    # the spec: a failing poststart hook is logged, the container keeps running
    # (runc 1.1 instead stops it and fails start; either way start's caller
    # learns about it and nothing is left behind)
    hooks = {"poststart": [{"path": "/bin/false"}]}
    c = env.container(["/bin/payload", "sleep", "60"], {"hooks": hooks})
    if c.create(check=False).returncode == 0:
        c.start(check=False)


def test_poststop_runs_on_delete_of_created(env):
    outdir = env.path("hooks")
    os.mkdir(outdir)
    c = env.container(["/bin/payload", "sleep", "60"],
                      {"hooks": {"poststop": [host_hook(outdir, "poststop")]}})
    c.create()
    c.delete(force=True)
    assert read_order(outdir) == ["poststop"]


def test_poststop_runs_after_run(env):
    outdir = env.path("hooks")
    os.mkdir(outdir)
    c = env.container(["/bin/payload", "exit", "0"],
                      {"hooks": {"poststop": [host_hook(outdir, "poststop")]}})
    r = c.run()
    assert r.returncode == 0
    assert read_order(outdir) == ["poststop"]
