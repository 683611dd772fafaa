"""mounts, root.readonly, maskedPaths, readonlyPaths, propagation, and mount
targets that try to escape the rootfs through symlinks."""

import errno
import os
import secrets
import shutil
import subprocess

import pytest

from harness import parse_json


def parse_mountinfo(text):
    """{mountpoint: dict} for the last mount on each mountpoint."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        pre, post = line.split(" - ", 1)
        f = pre.split()
        fstype, source, superopts = (post.split() + ["", "", ""])[:3]
        out[f[4]] = {
            "root": f[3], "opts": set(f[5].split(",")), "optional": f[6:],
            "fstype": fstype, "source": source, "super": set(superopts.split(",")),
        }
    return out


def mounts(env, overrides=None):
    return parse_mountinfo(env.run_payload(overrides)["mountinfo"])


def with_mounts(env, extra):
    return {"mounts": env.config()["mounts"] + extra}


def test_default_mounts(env):
    m = mounts(env)
    assert m["/proc"]["fstype"] == "proc"
    dev = m["/dev"]
    assert dev["fstype"] == "tmpfs" and "nosuid" in dev["opts"]
    assert "mode=755" in dev["super"] and "size=65536k" in dev["super"]
    pts = m["/dev/pts"]
    assert pts["fstype"] == "devpts"
    assert {"nosuid", "noexec"} <= pts["opts"]
    assert {"gid=5", "mode=620", "ptmxmode=666"} <= pts["super"]
    shm = m["/dev/shm"]
    assert shm["fstype"] == "tmpfs" and {"nosuid", "nodev", "noexec"} <= shm["opts"]
    assert m["/dev/mqueue"]["fstype"] == "mqueue"
    assert {"nosuid", "nodev", "noexec"} <= m["/dev/mqueue"]["opts"]
    sysfs = m["/sys"]
    assert sysfs["fstype"] == "sysfs" and "ro" in sysfs["opts"]
    assert "/sys/fs/cgroup" in m
    assert "ro" in m["/sys/fs/cgroup"]["opts"] or all(
        "ro" in v["opts"] for k, v in m.items() if k.startswith("/sys/fs/cgroup/"))
    cg = [v for k, v in m.items() if k.startswith("/sys/fs/cgroup")
          and v["fstype"] in ("cgroup", "cgroup2")]
    assert cg, "no cgroup filesystem under /sys/fs/cgroup"


def test_tmpfs_options(env):
    m = mounts(env, with_mounts(env, [{
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=1700", "size=1m"]}]))
    t = m["/tmp"]
    assert t["fstype"] == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= t["opts"]
    assert "mode=1700" in t["super"] and "size=1024k" in t["super"]


def test_tmpfs_ro(env):
    ov = with_mounts(env, [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                            "options": ["ro"]}])
    m = mounts(env, ov)
    assert "ro" in m["/tmp"]["opts"]
    r = env.run_payload(ov, args=("write", "/tmp/x", "data"))
    assert r["ok"] is False and r["errno"] == errno.EROFS


def test_bind_rw(env):
    src = env.path("shared-dir")
    os.mkdir(src)
    ov = with_mounts(env, [{"destination": "/data", "type": "bind", "source": src,
                            "options": ["rbind", "rw"]}])
    r = env.run_payload(ov, args=("write", "/data/hello", "from-container"))
    assert r["ok"], r
    with open(os.path.join(src, "hello")) as f:
        assert f.read() == "from-container"


def test_bind_ro(env):
    src = env.path("ro-dir")
    os.mkdir(src)
    with open(os.path.join(src, "file"), "w") as f:
        f.write("host")
    ov = with_mounts(env, [{"destination": "/data", "type": "bind", "source": src,
                            "options": ["bind", "ro", "nosuid", "nodev"]}])
    m = mounts(env, ov)
    assert {"ro", "nosuid", "nodev"} <= m["/data"]["opts"]
    r = env.run_payload(ov, args=("write", "/data/new", "x"))
    assert r["ok"] is False and r["errno"] == errno.EROFS
    c = env.container(["/bin/payload", "cat", "/data/file"], ov)
    assert c.run().stdout == "host"


def test_bind_file(env):
    src = env.path("file.txt")
    with open(src, "w") as f:
        f.write("bound file")
    ov = with_mounts(env, [{"destination": "/etc/bound.txt", "type": "none",
                            "source": src, "options": ["bind", "ro"]}])
    c = env.container(["/bin/payload", "cat", "/etc/bound.txt"], ov)
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bound file"


@pytest.fixture
def dir_with_submount(env):
    src = env.path("with-sub")
    sub = os.path.join(src, "sub")
    os.makedirs(sub)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "moat-test-sub", sub],
                   check=True, timeout=30)
    env.on_cleanup(lambda: subprocess.run(["umount", "-l", sub], timeout=30))
    with open(os.path.join(sub, "marker"), "w") as f:
        f.write("sub")
    return src


def test_rbind_includes_submounts(env, dir_with_submount):
    ov = with_mounts(env, [{"destination": "/data", "type": "bind",
                            "source": dir_with_submount, "options": ["rbind"]}])
    m = mounts(env, ov)
    assert "/data/sub" in m and m["/data/sub"]["fstype"] == "tmpfs"


def test_bind_excludes_submounts(env, dir_with_submount):
    ov = with_mounts(env, [{"destination": "/data", "type": "bind",
                            "source": dir_with_submount, "options": ["bind"]}])
    m = mounts(env, ov)
    assert "/data" in m and "/data/sub" not in m


@pytest.fixture
def shared_mount(env):
    """A tmpfs on the host marked shared, so propagation is visible."""
    d = env.path("shared-mnt")
    os.mkdir(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "moat-test-shared", d],
                   check=True, timeout=30)
    env.on_cleanup(lambda: subprocess.run(["umount", "-l", d], timeout=30))
    subprocess.run(["mount", "--make-shared", d], check=True, timeout=30)
    return d


@pytest.mark.parametrize("prop,field", [("rshared", "shared:"), ("rslave", "master:"),
                                        ("rprivate", None)])
def test_mount_propagation_option(env, shared_mount, prop, field):
    ov = with_mounts(env, [{"destination": "/data", "type": "bind", "source": shared_mount,
                            "options": ["rbind", prop]}])
    m = mounts(env, ov)
    opt = " ".join(m["/data"]["optional"])
    if field:
        assert field in opt, opt
    else:
        assert "shared:" not in opt and "master:" not in opt, opt


def test_slave_mount_receives_host_mounts(env, shared_mount):
    c = env.container(["/bin/payload", "sleep", "60"], with_mounts(env, [
        {"destination": "/data", "type": "bind", "source": shared_mount,
         "options": ["rbind", "rslave"]}]))
    c.create()
    sub = os.path.join(shared_mount, "late")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "moat-test-late", sub], check=True, timeout=30)
    env.on_cleanup(lambda: subprocess.run(["umount", "-l", sub], timeout=30))
    with open(f"/proc/{c.init_pid}/mountinfo") as f:
        m = parse_mountinfo(f.read())
    assert "/data/late" in m


@pytest.mark.parametrize("prop,field", [
    ("private", None), ("rslave", "master:"),
    # runc 1.1 leaves / private for these two
    pytest.param("slave", "master:", marks=pytest.mark.moat_only),
    pytest.param("shared", "shared:", marks=pytest.mark.moat_only)])
def test_rootfs_propagation(env, shared_mount, prop, field):
    rootfs = os.path.join(shared_mount, "rootfs")
    shutil.copytree(env.rootfs, rootfs, symlinks=True)
    m = mounts(env, {"root": {"path": rootfs}, "linux": {"rootfsPropagation": prop}})
    opt = " ".join(m["/"]["optional"])
    if field:
        assert field in opt, opt
    else:
        assert "shared:" not in opt and "master:" not in opt, opt


def test_root_readonly(env):
    r = env.run_payload(args=("write", "/etc/newfile", "x"))
    assert r["ok"] is False and r["errno"] == errno.EROFS
    m = mounts(env)
    assert "ro" in m["/"]["opts"]


def test_root_writable(env, private_rootfs):
    r = env.run_payload({"root": {"path": private_rootfs, "readonly": False}},
                        args=("write", "/etc/newfile", "x"))
    assert r["ok"], r
    with open(os.path.join(private_rootfs, "etc", "newfile")) as f:
        assert f.read() == "x"


def test_relative_root_path(env, private_rootfs):
    c = env.container(["/bin/payload", "print", "ok"])
    os.rename(private_rootfs, os.path.join(c.bundle, "rootfs"))
    c.config["root"] = {"path": "rootfs", "readonly": True}
    c.write_config()
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"


def test_masked_paths_default(env):
    c = env.container(["/bin/payload", "cat", "/proc/keys"])
    r = c.run()
    assert r.returncode == 0 and r.stdout == ""
    ls = env.run_payload(args=("ls", "/proc/acpi"))
    assert ls["ok"] and ls["entries"] == {}
    ls = env.run_payload(args=("ls", "/sys/firmware"))
    assert ls["ok"] and ls["entries"] == {}


def test_masked_paths_custom(env, private_rootfs):
    os.makedirs(os.path.join(private_rootfs, "secret", "dir"))
    for p in ("secret/file", "secret/dir/inner"):
        with open(os.path.join(private_rootfs, p), "w") as f:
            f.write("top secret")
    ov = {"root": {"path": private_rootfs},
          "linux": {"maskedPaths": ["/secret/file", "/secret/dir", "/does/not/exist"]}}
    c = env.container(["/bin/payload", "cat", "/secret/file"], ov)
    r = c.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    ls = env.run_payload(ov, args=("ls", "/secret/dir"))
    assert ls["ok"] and ls["entries"] == {}
    w = env.run_payload(ov, args=("write", "/secret/dir/x", "y"))
    assert w["ok"] is False
    m = mounts(env, ov)
    assert "ro" in m["/secret/dir"]["opts"]


def test_readonly_paths(env):
    ov = with_mounts(env, [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}])
    ov["linux"] = {"readonlyPaths": ["/proc/sys", "/tmp", "/does/not/exist"]}
    m = mounts(env, ov)
    assert "ro" in m["/tmp"]["opts"]
    assert "ro" in m["/proc/sys"]["opts"]
    r = env.run_payload(ov, args=("write", "/tmp/x", "y"))
    assert r["ok"] is False and r["errno"] == errno.EROFS
    r = env.run_payload(ov, args=("write", "/proc/sys/kernel/hostname", "evil"))
    assert r["ok"] is False


def test_mount_creates_missing_destination(env):
    m = mounts(env, with_mounts(env, [{"destination": "/new/deep/dir", "type": "tmpfs",
                                        "source": "tmpfs"}]))
    assert m["/new/deep/dir"]["fstype"] == "tmpfs"


@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_mount_target_symlink_stays_in_rootfs(env, private_rootfs, style):
    host_target = f"/tmp/moat-escape-{secrets.token_hex(4)}"
    assert not os.path.exists(host_target)
    link = host_target if style == "absolute" else "../../../../.." + host_target
    os.symlink(link, os.path.join(private_rootfs, "evil"))
    env.on_cleanup(lambda: subprocess.run(["rm", "-rf", host_target], timeout=30))
    ov = {"root": {"path": private_rootfs},
          "mounts": env.config()["mounts"] + [
              {"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}]}
    c = env.container(["/bin/payload", "info"], ov)
    r = c.run()
    assert not os.path.exists(host_target), "the runtime created a directory outside the rootfs"
    if r.returncode == 0:
        m = parse_mountinfo(parse_json(r.stdout)["mountinfo"])
        assert m.get(host_target, {}).get("fstype") == "tmpfs" or \
            m.get("/evil", {}).get("fstype") == "tmpfs", sorted(m)
        # it landed inside the rootfs copy
        assert os.path.isdir(os.path.join(private_rootfs, host_target.lstrip("/")))


def test_bind_source_missing_fails(env):
    c = env.container(["/bin/payload", "true"], with_mounts(env, [
        {"destination": "/data", "type": "bind", "source": env.path("missing"),
         "options": ["bind"]}]))
    r = c.run()
    assert r.returncode != 0
