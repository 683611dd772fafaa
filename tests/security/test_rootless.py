"""Rootless moat-runtime: a real unprivileged user runs containers.

A module fixture creates a throwaway user (useradd, a home in the test's
temp dir, delegated ranges in /etc/subuid and /etc/subgid) and removes it,
its subordinate id lines and every process it still has, whatever the
tests did. Each command runs as that user through runuser with a clean
environment whose XDG_RUNTIME_DIR is a 0700 directory it owns. The checks
read what the kernel says: the container's uid and maps (payload info),
the host's /proc/<pid>/status of the container's process, the state
directory's owner and mode, the runtime's error messages."""

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile

import pytest

import harness

pytestmark = pytest.mark.moat_only

SUB_COUNT = 65536


def _subid_start():
    """A subordinate range no other line of /etc/subuid or /etc/subgid uses."""
    end = 165536
    for f in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(f) as fh:
                for line in fh:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        end = max(end, int(parts[1]) + int(parts[2]))
        except FileNotFoundError:
            pass
    return end


def _drop_subid_lines(name):
    for f in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(f) as fh:
                lines = fh.readlines()
        except FileNotFoundError:
            continue
        keep = [l for l in lines if not l.startswith(name + ":")]
        if keep != lines:
            with open(f, "w") as fh:
                fh.writelines(keep)


def _pids_of_uid(uid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            out.append(int(d))
                        break
        except OSError:
            pass
    return out


def _kill_user_processes(uid):
    for _ in range(50):
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        harness.reap_orphans()
        harness.wait_for(lambda: not _pids_of_uid(uid), 0.2)


class User:
    def __init__(self, name, tmp):
        self.name = name
        self.tmp = tmp
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.xdg = os.path.join(tmp, "xdg")
        self.runtime = harness.runtime_path()
        self.sub_start = None
        self.ids = []
        self._n = 0

    def env(self, xdg=True):
        e = ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", f"HOME={self.tmp}/home"]
        if xdg:
            e.append(f"XDG_RUNTIME_DIR={self.xdg}")
        return e

    def cmd(self, *args, xdg=True, timeout=harness.TIMEOUT):
        argv = ["runuser", "-u", self.name, "--", "env", "-i", *self.env(xdg), self.runtime, *args]
        # Files, not pipes: a detached container keeps its stdio open.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True,
                               timeout=timeout, cwd=self.tmp)
            out.seek(0)
            err.seek(0)
            r.stdout, r.stderr = out.read(), err.read()
        return r

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        assert r.returncode == 0, f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip()}"
        return r

    def bundle(self, rootfs, args, edit=None):
        """A bundle made from the runtime's own `spec --rootless` (run as the
        user), with root.path and args swapped in."""
        self._n += 1
        b = os.path.join(self.tmp, f"bundle-{self._n}")
        os.makedirs(b)
        os.chown(b, self.uid, self.gid)
        self.ok("spec", "--rootless", "--bundle", b)
        with open(os.path.join(b, "config.json")) as f:
            cfg = json.load(f)
        cfg["root"]["path"] = rootfs
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        if edit:
            edit(cfg)
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(cfg, f)
        return b, cfg

    def new_id(self):
        cid = harness.unique_id("rl")
        self.ids.append(cid)
        return cid


@pytest.fixture(scope="module")
def user(session_tmp):
    if not shutil.which("useradd") or not shutil.which("runuser"):
        pytest.skip("useradd and runuser are needed")
    tmp = tempfile.mkdtemp(prefix="rootless-", dir=session_tmp)
    os.chmod(tmp, 0o755)
    name = "mrl" + secrets.token_hex(4)
    created = False
    u = None
    try:
        subprocess.run(["useradd", "-M", "-d", os.path.join(tmp, "home"), "-s", "/bin/sh", "-U", name],
                       check=True, capture_output=True, timeout=harness.TIMEOUT)
        created = True
        u = User(name, tmp)
        start = _subid_start()
        for f in ("/etc/subuid", "/etc/subgid"):
            with open(f, "a") as fh:
                fh.write(f"{name}:{start}:{SUB_COUNT}\n")
        u.sub_start = start
        for d in (os.path.join(tmp, "home"), u.xdg):
            os.makedirs(d)
            os.chown(d, u.uid, u.gid)
            os.chmod(d, 0o700)
        # The runtime must be reachable and executable by the user; else
        # a private copy.
        if subprocess.run(["runuser", "-u", name, "--", "test", "-x", u.runtime],
                          capture_output=True, timeout=harness.TIMEOUT).returncode != 0:
            copy = os.path.join(tmp, "moat-runtime")
            shutil.copy2(u.runtime, copy)
            os.chmod(copy, 0o755)
            u.runtime = copy
        yield u
    finally:
        if u:
            for cid in u.ids:
                try:
                    u.cmd("delete", "--force", cid)
                except subprocess.TimeoutExpired:
                    pass
            _kill_user_processes(u.uid)
        harness.reap_orphans()
        _drop_subid_lines(name)
        if created:
            subprocess.run(["userdel", "-f", name], capture_output=True, timeout=harness.TIMEOUT)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def rootfs_for(user, rootfs):
    """The session rootfs, which the user can read (0755 all the way)."""
    r = subprocess.run(["runuser", "-u", user.name, "--", "test", "-x", os.path.join(rootfs, "bin", "payload")],
                       capture_output=True, timeout=harness.TIMEOUT)
    assert r.returncode == 0, "the session rootfs is not readable by the test user"
    return rootfs


def status_ids(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def test_rootless_run_payload_maps_the_callers_ids(user, rootfs_for):
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "info"])
    cid = user.new_id()
    r = user.cmd("--debug", "run", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    info = harness.parse_json(r.stdout)
    assert (info["uid"], info["euid"], info["gid"]) == (0, 0, 0)
    assert info["uid_map"].split() == ["0", str(user.uid), "1"]
    assert info["gid_map"].split() == ["0", str(user.gid), "1"]
    # written by the runtime itself, which needs setgroups denied first
    assert info["setgroups"].strip() == "deny"
    assert info["ns"]["user"] != os.readlink("/proc/self/ns/user")
    # no cgroup could be made (the host's hierarchies belong to root): the
    # container ran without one
    assert "running without a cgroup" in r.stderr
    assert not harness.cgroup_dirs_named(cid)
    # run deleted it again
    assert os.listdir(os.path.join(user.xdg, "moat-runtime")) == []


def test_rootless_process_is_the_user_on_the_host(user, rootfs_for):
    secret = os.path.join(user.tmp, "root-only")
    with open(secret, "w") as f:
        f.write("secret\n")
    os.chmod(secret, 0o600)

    def edit(cfg):
        cfg["mounts"].append({"destination": "/etc/hostname", "type": "bind", "source": secret,
                              "options": ["bind", "ro"]})
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "sleep", "60"], edit)
    cid = user.new_id()
    user.ok("run", "-d", "--bundle", b, cid)
    st = json.loads(user.ok("state", cid).stdout)
    pid = st["pid"]
    assert status_ids(pid, "Uid") == [user.uid] * 4
    assert status_ids(pid, "Gid") == [user.gid] * 4
    # root inside, but only the user outside: the bind-mounted root-only
    # file stays closed
    b2, _ = user.bundle(rootfs_for, ["/bin/payload", "cat", "/etc/hostname"], edit)
    cid2 = user.new_id()
    r = user.cmd("run", "--bundle", b2, cid2)
    assert r.returncode != 0
    assert "Permission denied" in r.stdout + r.stderr
    assert "secret" not in r.stdout
    user.ok("delete", "--force", cid)
    assert harness.wait_for(lambda: not harness.pid_alive(pid), 10)


def test_rootless_lifecycle_as_the_user(user, rootfs_for):
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "sleep", "60"])
    cid = user.new_id()
    user.ok("create", "--bundle", b, cid)
    root = os.path.join(user.xdg, "moat-runtime")
    st_root = os.stat(root)
    assert (st_root.st_uid, st_root.st_mode & 0o777) == (user.uid, 0o700)
    for name in os.listdir(os.path.join(root, cid)):
        assert os.stat(os.path.join(root, cid, name)).st_uid == user.uid, name
    st = json.loads(user.ok("state", cid).stdout)
    assert st["status"] == "created"
    pid = st["pid"]
    assert status_ids(pid, "Uid")[0] == user.uid
    user.ok("start", cid)
    assert json.loads(user.ok("state", cid).stdout)["status"] == "running"
    listed = user.ok("list", "--format", "json").stdout
    entry = [c for c in json.loads(listed) if c["id"] == cid]
    assert entry and entry[0]["owner"] == user.name
    user.ok("kill", cid, "KILL")
    assert harness.wait_for(lambda: json.loads(user.ok("state", cid).stdout)["status"] == "stopped", 10)
    user.ok("delete", cid)
    assert not os.path.lexists(os.path.join(root, cid))
    r = user.cmd("state", cid)
    assert r.returncode != 0 and "does not exist" in r.stderr


def test_rootless_exec_as_the_user(user, rootfs_for):
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "sleep", "60"])
    cid = user.new_id()
    user.ok("run", "-d", "--bundle", b, cid)
    r = user.cmd("exec", cid, "/bin/payload", "info")
    try:
        assert r.returncode == 0, r.stderr
        info = harness.parse_json(r.stdout)
        assert info["uid"] == 0 and info["uid_map"].split() == ["0", str(user.uid), "1"]
        assert info["pid"] != 1
        assert user.cmd("exec", cid, "/bin/payload", "exit", "7").returncode == 7
    finally:
        user.ok("delete", "--force", cid)


def test_rootless_multi_id_mapping_through_newuidmap(user, rootfs_for):
    if not shutil.which("newuidmap") or not shutil.which("newgidmap"):
        pytest.skip("newuidmap/newgidmap (package uidmap) are not installed")

    def edit(cfg):
        cfg["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": user.uid, "size": 1},
            {"containerID": 1, "hostID": user.sub_start, "size": SUB_COUNT}]
        cfg["linux"]["gidMappings"] = [
            {"containerID": 0, "hostID": user.gid, "size": 1},
            {"containerID": 1, "hostID": user.sub_start, "size": SUB_COUNT}]
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "info"], edit)
    r = user.cmd("run", "--bundle", b, user.new_id())
    assert r.returncode == 0, r.stderr
    info = harness.parse_json(r.stdout)
    assert info["uid"] == 0
    uid_lines = [l.split() for l in info["uid_map"].strip().splitlines()]
    gid_lines = [l.split() for l in info["gid_map"].strip().splitlines()]
    assert sorted(uid_lines) == sorted([["0", str(user.uid), "1"], ["1", str(user.sub_start), str(SUB_COUNT)]])
    assert sorted(gid_lines) == sorted([["0", str(user.gid), "1"], ["1", str(user.sub_start), str(SUB_COUNT)]])

    # a container user from the delegated range really is that host id
    def as_user_1000(cfg):
        edit(cfg)
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
        cfg["process"]["args"] = ["/bin/payload", "sleep", "60"]
    b2, _ = user.bundle(rootfs_for, ["/bin/payload", "sleep", "60"], as_user_1000)
    cid = user.new_id()
    user.ok("run", "-d", "--bundle", b2, cid)
    pid = json.loads(user.ok("state", cid).stdout)["pid"]
    assert status_ids(pid, "Uid")[0] == user.sub_start + 999
    user.ok("delete", "--force", cid)


def test_rootless_mapping_outside_the_delegated_range_refused(user, rootfs_for):
    if not shutil.which("newuidmap"):
        pytest.skip("newuidmap (package uidmap) is not installed")

    def edit(cfg):
        cfg["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": user.uid, "size": 1},
            {"containerID": 1, "hostID": 1, "size": 1}]  # host uid 1 (daemon) is not the user's
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "true"], edit)
    cid = user.new_id()
    r = user.cmd("run", "--bundle", b, cid)
    assert r.returncode != 0
    assert "linux.uidMappings" in r.stderr and "newuidmap" in r.stderr, r.stderr
    assert not os.path.lexists(os.path.join(user.xdg, "moat-runtime", cid))


def test_rootless_memory_limit_needs_a_delegated_cgroup(user, rootfs_for):
    def edit(cfg):
        cfg["linux"]["resources"] = {"memory": {"limit": 64 * 1024 * 1024}}
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "true"], edit)
    cid = user.new_id()
    r = user.cmd("run", "--bundle", b, cid)
    assert r.returncode != 0
    assert "linux.resources.memory" in r.stderr and "cgroup" in r.stderr, r.stderr
    assert not os.path.lexists(os.path.join(user.xdg, "moat-runtime", cid))
    assert not harness.cgroup_dirs_named(cid)


def test_rootless_without_user_namespace_refused(user, rootfs_for):
    def edit(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "user"]
    b, _ = user.bundle(rootfs_for, ["/bin/payload", "true"], edit)
    cid = user.new_id()
    r = user.cmd("run", "--bundle", b, cid)
    assert r.returncode != 0
    assert "user namespace" in r.stderr and "rootless" in r.stderr, r.stderr
    assert not os.path.lexists(os.path.join(user.xdg, "moat-runtime", cid))


def test_rootless_state_root_needs_xdg_runtime_dir(user):
    r = user.cmd("list", xdg=False)
    assert r.returncode != 0
    assert "XDG_RUNTIME_DIR" in r.stderr and "--root" in r.stderr
    # with --root the variable is not needed
    own = os.path.join(user.tmp, "home", "state")
    r = user.cmd("--root", own, "list", xdg=False)
    assert r.returncode == 0, r.stderr
