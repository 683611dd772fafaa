"""Images made by the peers (buildah, skopeo, dockerd 20.10, umoci, podman)
for test_images_peers.py, and the checks moat's store must pass on them.

Every image is built offline from one tree: the busybox test rootfs plus
files whose metadata a store can lose (ownership, a 0640 mode, a setuid
bit, a user xattr, relative and absolute symlinks).  Two-layer images then
delete one file (a whiteout) and replace a directory that had contents (an
opaque directory, or per-file whiteouts where the tool writes those).

Each tool keeps its state under a private directory (--root/--runroot,
dockerd's --data-root/--exec-root/-H/--pidfile); Tool.cleanup() removes
what it made and unmounts whatever is still mounted under its directory.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time

import harness

TIMEOUT = 300
UID = 1000
XATTR = ("user.moat", b"peers")
CMD = ["/bin/sh", "-c", "echo $GREETING; id -u; pwd"]


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


def run(argv, check=True, timeout=TIMEOUT, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: rc={p.returncode}\nstdout: {p.stdout[-2000:]}\n"
                             f"stderr: {p.stderr[-4000:]}")
    return p


def moat(root, *args, check=True):
    """verify, mount, unmount in-process; the rest through the root's daemon (image_daemons)."""
    import image_daemons
    return run(image_daemons.moat_argv(root, *args), check=check, timeout=120)


# ---- mounts ----------------------------------------------------------------

def mounts_under(prefix):
    prefix = prefix.rstrip("/")
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


def umount_all_under(prefix):
    """Unmount (lazily, deepest first) what is left under prefix; returns
    what was there."""
    left = mounts_under(prefix)
    for mp in sorted(left, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=60)
    return left


def rm_tree(path):
    umount_all_under(path)
    shutil.rmtree(path, ignore_errors=True)


# ---- the tree every image is made of ---------------------------------------

class Expect:
    """What the image built from the base tree must show."""

    def __init__(self, layered, xattr=True):
        self.layered = layered  # the second layer (deletion, replaced dir) is there
        self.xattr = xattr      # the tool keeps user xattrs


def make_base_tree(rootfs, dest):
    shutil.copytree(rootfs, dest, symlinks=True)
    peers = os.path.join(dest, "etc", "peers")
    os.makedirs(peers)
    owned = os.path.join(peers, "owned")
    with open(owned, "w") as f:
        f.write("owned by 1000\n")
    os.chown(owned, UID, UID)
    os.chmod(owned, 0o640)
    os.setxattr(owned, *XATTR)
    os.symlink("owned", os.path.join(peers, "link"))
    os.symlink("/etc/peers/owned", os.path.join(peers, "abs"))
    with open(os.path.join(peers, "gone"), "w") as f:
        f.write("deleted in the upper layer\n")
    os.makedirs(os.path.join(dest, "usr", "local", "bin"), exist_ok=True)
    suid = os.path.join(dest, "usr", "local", "bin", "suid")
    with open(suid, "w") as f:
        f.write("#!/bin/sh\necho suid\n")
    os.chmod(suid, 0o4755)
    lower = os.path.join(dest, "var", "lower")
    os.makedirs(lower)
    for n in ("a", "b"):
        with open(os.path.join(lower, n), "w") as f:
            f.write(n + "\n")
    home = os.path.join(dest, "home", "tester")
    os.makedirs(home)
    os.chown(home, UID, UID)
    os.chmod(home, 0o700)


def tar_tree(src, out):
    """A layer tarball of src with numeric owners and xattrs (GNU tar)."""
    run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", src, "-cf", out, "."])


def change_upper(root):
    """The second layer's changes, made in a writable view of the first."""
    os.unlink(os.path.join(root, "etc", "peers", "gone"))
    lower = os.path.join(root, "var", "lower")
    shutil.rmtree(lower)
    os.mkdir(lower)
    with open(os.path.join(lower, "new"), "w") as f:
        f.write("new\n")


def layer_members(archive_or_blob):
    """Names in a layer tarball (any compression tarfile reads, or zstd)."""
    try:
        with tarfile.open(archive_or_blob) as t:
            return t.getnames()
    except tarfile.ReadError:
        p = run(["sh", "-c", f"zstd -dc < '{archive_or_blob}' | tar -t"], check=False)
        return p.stdout.split()


def layout_manifest(layout_dir):
    """The manifest of the (single) image of an OCI layout directory."""
    with open(os.path.join(layout_dir, "index.json")) as f:
        desc = json.load(f)["manifests"][0]
    with open(os.path.join(layout_dir, "blobs", "sha256", desc["digest"][7:])) as f:
        return json.load(f)


def layout_layer_members(layout_dir):
    """The members of every layer of the layout's image, joined."""
    names = []
    for layer in layout_manifest(layout_dir)["layers"]:
        names += layer_members(os.path.join(layout_dir, "blobs", "sha256", layer["digest"][7:]))
    return names


def tar_layout(layout_dir, out, dot=False):
    """An oci-archive of a layout directory: members named as in the layout,
    or, with dot, as `tar -C DIR -cf OUT .` names them ("./index.json")."""
    if dot:
        run(["tar", "-C", layout_dir, "-cf", out, "."])
    else:
        run(["tar", "-C", layout_dir, "-cf", out, "oci-layout", "index.json", "blobs"])


# ---- checks ------------------------------------------------------------------

def image_row(root, ref):
    repo, tag = ref.rsplit(":", 1)
    rows = [json.loads(line) for line in moat(root, "images", "--format", "json").stdout.splitlines()]
    hits = [r for r in rows if r["Repository"] == repo and r["Tag"] == tag]
    assert len(hits) == 1, (ref, rows)
    return hits[0]


def inspect(root, ref):
    doc = json.loads(moat(root, "inspect", ref).stdout)
    assert len(doc) == 1
    return doc[0]


def check_config(img, tool, cmd=CMD, user="1000:1000", labels=True):
    c = img["Config"]
    assert c["Cmd"] == cmd, c
    assert f"GREETING=hello-{tool}" in c["Env"], c
    assert c["WorkingDir"] == "/tmp", c
    assert c["User"] == user, c
    if labels:
        # buildah adds its own io.buildah.version
        assert c["Labels"].get("org.moat.peer") == tool, c
    assert img["Os"] == "linux"


def check_tree(mp, expect):
    """What the kernel shows in the mounted image."""
    st = os.lstat(mp)
    assert st.st_mode & 0o7777 == 0o755, oct(st.st_mode)
    with open(os.path.join(mp, "bin", "busybox"), "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert os.readlink(os.path.join(mp, "bin", "sh")) == "/bin/busybox"

    owned = os.path.join(mp, "etc", "peers", "owned")
    st = os.lstat(owned)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (UID, UID, 0o640), \
        (st.st_uid, st.st_gid, oct(st.st_mode))
    with open(owned) as f:
        assert f.read() == "owned by 1000\n"
    if expect.xattr:
        assert os.getxattr(owned, XATTR[0], follow_symlinks=False) == XATTR[1]
    assert os.readlink(os.path.join(mp, "etc", "peers", "link")) == "owned"
    assert os.readlink(os.path.join(mp, "etc", "peers", "abs")) == "/etc/peers/owned"

    st = os.lstat(os.path.join(mp, "usr", "local", "bin", "suid"))
    assert st.st_mode & 0o7777 == 0o4755, oct(st.st_mode)
    st = os.lstat(os.path.join(mp, "tmp"))
    assert st.st_mode & 0o7777 == 0o1777, oct(st.st_mode)
    st = os.lstat(os.path.join(mp, "home", "tester"))
    assert (st.st_uid, st.st_mode & 0o7777) == (UID, 0o700)

    gone = os.path.join(mp, "etc", "peers", "gone")
    if expect.layered:
        assert not os.path.lexists(gone), "the whiteout of etc/peers/gone does not hide it"
        assert sorted(os.listdir(os.path.join(mp, "var", "lower"))) == ["new"]
        with open(os.path.join(mp, "var", "lower", "new")) as f:
            assert f.read() == "new\n"
        # whiteouts are not visible as files
        assert not [n for n in os.listdir(os.path.join(mp, "etc", "peers")) if n.startswith(".wh.")]
    else:
        assert os.path.isfile(gone)
        assert sorted(os.listdir(os.path.join(mp, "var", "lower"))) == ["a", "b"]

    # read-only
    try:
        fd = os.open(os.path.join(mp, "etc", "written"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
        raise AssertionError("the image mount is writable")
    except OSError as e:
        assert e.errno == errno.EROFS, e


def check_mount(root, ref, expect):
    """moat mount: default directory, twice is once, contents; then unmount."""
    img = inspect(root, ref)
    default = os.path.join(root, "mounts", img["Id"][len("sha256:"):])
    p = moat(root, "mount", ref)
    assert p.stdout.splitlines() == [os.path.realpath(default)]
    mp = p.stdout.strip()
    try:
        assert mounts_under(mp) == [mp]
        st = os.stat(os.path.join(root, "mounts"))
        assert st.st_mode & 0o777 == 0o700
        assert moat(root, "mount", ref).stdout.strip() == mp
        assert mounts_under(mp) == [mp], "mounting twice mounted again"
        check_tree(mp, expect)
    finally:
        moat(root, "unmount", ref, check=False)
    assert mounts_under(mp) == []
    assert not os.path.exists(mp)
    return img


# ---- tools -----------------------------------------------------------------

class Tool:
    """A peer tool with its state under base; cleanup() undoes it."""

    def __init__(self, base):
        self.base = base
        os.makedirs(base, exist_ok=True)

    def cleanup(self):
        left = umount_all_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        return left


class Containers(Tool):
    """buildah or podman with private containers-storage."""

    def __init__(self, binary, base, driver):
        super().__init__(base)
        self.binary = binary
        self.argv = [binary, "--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "run"),
                     "--storage-driver", driver]

    def __call__(self, *args, check=True):
        return run(self.argv + list(args), check=check)

    def cleanup(self):
        if os.path.basename(self.binary) == "buildah":
            self("rm", "-a", check=False)
            self("rmi", "-a", "-f", check=False)
        else:
            self("system", "reset", "-f", check=False)
        return super().cleanup()


class Dockerd(Tool):
    """A private dockerd 20.10: no bridge, no firewall, no forwarding, its
    own data and exec roots, socket, pid file and config file (so the trust
    key is not written to /etc/docker)."""

    def __init__(self, base):
        super().__init__(base)
        self.sock = os.path.join(base, "d.sock")
        self.pidfile = os.path.join(base, "d.pid")
        conf = os.path.join(base, "daemon.json")
        with open(conf, "w") as f:
            json.dump({"deprecated-key-path": os.path.join(base, "key.json")}, f)
        self.argv = ["/usr/sbin/dockerd", "--config-file", conf,
                     "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                     "--ip-forward=false", "--userland-proxy=false",
                     "--data-root", os.path.join(base, "data"), "--exec-root", os.path.join(base, "exec"),
                     "-H", f"unix://{self.sock}", "--pidfile", self.pidfile, "--storage-driver", "vfs"]
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_API_VERSION="1.41",
                        DOCKER_CONFIG=os.path.join(base, "cli"))
        for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            self.env.pop(k, None)
        self.proc = None
        self.log_path = os.path.join(base, "dockerd.log")

    def start(self, timeout=60):
        """None when up, else why not."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        harness._live_popens.add(self.proc)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            if os.path.exists(self.sock) and self("version", check=False).returncode == 0:
                return None
            time.sleep(0.2)
        with open(self.log_path, errors="replace") as f:
            log = f.read()[-2000:]
        return f"dockerd did not come up (exit {self.proc.poll()}): {log}"

    def __call__(self, *args, check=True):
        return run(["/usr/bin/docker", *args], check=check, env=self.env)

    def stop(self):
        """SIGTERM, wait, SIGKILL; then whatever it left running that names
        its directory (its containerd) goes the same way, by pid."""
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        harness._live_popens.discard(p)
        left = harness.wait_for(lambda: not procs_mentioning(self.base), 10) or procs_mentioning(self.base)
        if left is not True and left:
            for pid, _ in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        harness.reap_orphans()

    def cleanup(self):
        self.stop()
        return super().cleanup()


def procs_mentioning(needle):
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd and harness.pid_alive(int(d)):
            out.append((int(d), cmd.strip()))
    return out


# ---- running an image with moat-runtime ---------------------------------------

def run_image(root, ref, work, cid):
    """moat mount the image, make a bundle from `moat-runtime spec
    --hardened` with the image's process (Entrypoint+Cmd, Env, WorkingDir,
    User), run it; returns (exit code, stdout, stderr)."""
    img = inspect(root, ref)
    c = img["Config"]
    mp = moat(root, "mount", ref).stdout.strip()
    bundle = os.path.join(work, "bundle-" + cid)
    state = os.path.join(work, "state")
    os.makedirs(bundle)
    rt = harness.runtime_path()
    try:
        run([rt, "spec", "--hardened"], cwd=bundle)
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        cfg["root"] = {"path": mp, "readonly": True}
        proc = cfg["process"]
        proc["args"] = (c["Entrypoint"] or []) + (c["Cmd"] or [])
        env = {e.split("=", 1)[0]: e for e in proc["env"]}
        for e in c["Env"] or []:
            env[e.split("=", 1)[0]] = e
        proc["env"] = list(env.values())
        proc["cwd"] = c["WorkingDir"] or "/"
        proc["user"] = resolve_user(mp, c["User"])
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
        p = run([rt, "--root", state, "run", "-b", bundle, cid], check=False, timeout=120)
        return p.returncode, p.stdout, p.stderr
    finally:
        run([rt, "--root", state, "delete", "-f", cid], check=False)
        moat(root, "unmount", ref, check=False)


def resolve_user(mp, user):
    """uid[:gid] or names, looked up in the image's /etc/passwd and /etc/group
    (the engine's imageconfig.c does this properly)."""
    if not user:
        return {"uid": 0, "gid": 0}
    name, _, group = user.partition(":")

    def lookup(path, key):
        with open(os.path.join(mp, path)) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == key:
                    return fields
        raise AssertionError(f"{key} is not in the image's {path}")

    if name.isdigit():
        uid = int(name)
        gid = uid
    else:
        pw = lookup("etc/passwd", name)
        uid, gid = int(pw[2]), int(pw[3])
    if group:
        gid = int(group) if group.isdigit() else int(lookup("etc/group", group)[2])
    return {"uid": uid, "gid": gid}
