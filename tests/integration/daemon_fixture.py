"""A private `moat daemon` for the tests that drive it with real clients
(the docker CLI, python3-docker) and for the crash tests.

What it gives:
- `demo_image_tar` (session): the busybox test rootfs (tests/conftest.py,
  with /bin/payload) imported by podman into a throw-away store and saved as
  a docker-archive: localhost/moat-demo:latest, CMD ["/bin/sh"].
- `MoatDaemon`: a daemon on a temp socket, data root, exec root, pid file
  and config file under one temp dir; the image is loaded into its store
  through the daemon when it first starts. It can be stopped
  (SIGTERM), killed (SIGKILL) and started again on the same data root.
  `cleanup()` removes every container through the API, stops the daemon by
  pid and then checks what the kernel shows: no process naming the temp dir
  (monitors), no mount under it, no cgroup /moat/<id> of any container it
  ran; whatever it finds is removed and reported.
- `moat_daemon` (module): one such daemon shared by a module's tests, and
  `daemon` (function): the same daemon, with every container a test made
  removed after it and checked for leftovers.

The daemon is started as our child; the session is a child subreaper
(conftest.py), so monitors that outlive a killed daemon re-parent to us and
harness.reap_orphans() collects them.
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time

import pytest

import harness

PODMAN = shutil.which("podman")
DOCKER = shutil.which("docker")
IMAGE = "localhost/moat-demo:latest"
TIMEOUT = 60


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


def wait_for(pred, timeout=20.0, interval=0.05):
    return harness.wait_for(pred, timeout, interval)


# ---- the image ---------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_image_tar(session_tmp, rootfs):
    """A docker-archive of localhost/moat-demo:latest made by podman from the
    busybox rootfs."""
    if not PODMAN:
        pytest.skip("podman is not installed (it makes the test image)")
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    tmp = tempfile.mkdtemp(prefix="demo-image-", dir=session_tmp)
    podman = [PODMAN, "--root", os.path.join(tmp, "storage"), "--runroot", os.path.join(tmp, "run"),
              "--storage-driver", "vfs"]
    rootfs_tar = os.path.join(tmp, "rootfs.tar")
    with tarfile.open(rootfs_tar, "w") as t:
        t.add(rootfs, arcname=".")
    out = os.path.join(session_tmp, "moat-demo.tar")
    if os.path.exists(out):  # made for another module (each imports this fixture)
        shutil.rmtree(tmp, ignore_errors=True)
        return out
    try:
        p = subprocess.run(podman + ["import", "--change", 'CMD ["/bin/sh"]', rootfs_tar, IMAGE],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            pytest.skip(f"podman import fails on this host: {p.stderr.strip()}")
        subprocess.run(podman + ["save", "--format", "docker-archive", "-o", out, IMAGE], check=True,
                       capture_output=True, timeout=120)
    finally:
        subprocess.run(podman + ["system", "reset", "-f"], capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---- what is left on the host ----------------------------------------------------


def procs_mentioning(needle, exclude=()):
    """(pid, cmdline) of live processes whose command line or working
    directory contains needle (a monitor forked by the zygote has the
    zygote's command line and works in its container's run directory)."""
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me or int(d) in exclude:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        try:
            cwd = os.readlink(f"/proc/{d}/cwd")
        except OSError:
            cwd = ""
        if (needle in cmd or needle in cwd) and harness.pid_alive(int(d)):
            out.append((int(d), cmd.strip()))
    return out


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        mp = line.split()[4]
        if mp == prefix or mp.startswith(prefix.rstrip("/") + "/"):
            out.append(mp)
    return out


def container_cgroups(cid):
    """The container's cgroup directories (/moat/<id> in every hierarchy)."""
    return [d for d in glob.glob(f"/sys/fs/cgroup/*/moat/{cid}") if os.path.isdir(d)]


def cgroup_file(pid, controller, name):
    """Path of a v1 controller file of the cgroup pid is in."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return os.path.join("/sys/fs/cgroup", controller, path.lstrip("/"), name)
    raise AssertionError(f"pid {pid} is in no {controller} cgroup")


def read(path):
    with open(path) as f:
        return f.read().strip()


# ---- the daemon --------------------------------------------------------------------


class MoatDaemon:
    def __init__(self, base, image_tar=None, config=None, extra=()):
        self.base = base
        os.chmod(base, 0o755)
        self.sock = os.path.join(base, "moat.sock")
        self.pidfile = os.path.join(base, "moat.pid")
        self.data = os.path.join(base, "data")
        self.exec_root = os.path.join(base, "exec")
        self.config = os.path.join(base, "daemon.json")
        self.log_path = os.path.join(base, "daemon.log")
        self.docker_config = os.path.join(base, "docker-config")
        os.makedirs(self.docker_config, exist_ok=True)
        with open(self.config, "w") as f:
            json.dump(config or {}, f)
        self.args = [moat_path(), "daemon", "-H", "unix://" + self.sock, "--data-root", self.data,
                     "--exec-root", self.exec_root, "--pidfile", self.pidfile, "-G", "root",
                     "--config-file", self.config, "--debug", *extra]
        self.proc = None
        self.seen_ids = set()
        self.image_tar = image_tar   # loaded through the daemon at its first start
        self.image_loaded = False
        self.pass_fds = ()   # fds the daemon inherits (socket activation)

    # -- the process --

    def moat(self, *args, check=True, timeout=TIMEOUT):
        """`moat --root <data-root> ARGS`: the in-process verbs (verify)."""
        p = subprocess.run([moat_path(), "--root", self.data, *args], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, f"moat {' '.join(args)}: rc={p.returncode} stderr={p.stderr!r}"
        return p

    def load_image(self, tar):
        p = subprocess.run([moat_path(), "-H", "unix://" + self.sock, "load", "-i", tar], capture_output=True,
                           text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and f"Loaded image: {IMAGE}" in p.stdout, (p.stdout, p.stderr)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=TIMEOUT):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         pass_fds=self.pass_fds)
        finally:
            log.close()
        harness._live_popens.add(self.proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"moat daemon exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(self.sock)
                except OSError:
                    s.close()
                    raise
                s.close()
                if self.image_tar and not self.image_loaded:
                    self.load_image(self.image_tar)
                    self.image_loaded = True
                return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("moat daemon did not start listening:\n" + self.log_tail())

    def stop(self, timeout=TIMEOUT):
        """SIGTERM by pid; returns the exit code (None if it was not running)."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                harness._live_popens.discard(p)
                raise AssertionError(f"moat daemon ignored SIGTERM for {timeout}s:\n{self.log_tail()}")
        harness._live_popens.discard(p)
        return p.returncode

    def kill9(self):
        p = self.proc
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=TIMEOUT)
        harness._live_popens.discard(p)
        harness.reap_orphans()

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_mark(self):
        return len(self.log_text())

    def log_since(self, mark):
        return self.log_text()[mark:]

    # -- clients --

    @property
    def env(self):
        env = dict(os.environ, DOCKER_HOST="unix://" + self.sock, DOCKER_CONFIG=self.docker_config,
                   DOCKER_CLI_HINTS="false")
        for k in ("DOCKER_API_VERSION", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(k, None)
        return env

    def docker(self, *args, timeout=TIMEOUT, input=None, check=False):
        if not DOCKER:
            pytest.skip("the docker CLI is not installed")
        p = subprocess.run([DOCKER, *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {p.returncode}\nstdout: {p.stdout}\n"
                                 f"stderr: {p.stderr}\ndaemon log:\n{self.log_tail()}")
        return p

    def ok(self, *args, **kw):
        return self.docker(*args, check=True, **kw)

    def docker_popen(self, *args, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen([DOCKER, *args], env=self.env, text=True, **kw)
        harness._live_popens.add(p)
        return p

    def shell_env(self):
        """The environment for a command line run in a terminal (tmux)."""
        return f"DOCKER_HOST=unix://{self.sock} DOCKER_CONFIG={self.docker_config} DOCKER_CLI_HINTS=false"

    def inspect(self, ref):
        p = self.ok("inspect", "--type", "container", ref)
        return json.loads(p.stdout)[0]

    def run_d(self, *args):
        """`docker run -d ARGS`; returns the full id."""
        cid = self.ok("run", "-d", *args).stdout.strip()
        self.seen_ids.add(cid)
        return cid

    def ids(self):
        """Every container the daemon knows (and remembers them)."""
        ids = set()
        if self.alive():
            p = self.docker("ps", "-aq", "--no-trunc", timeout=30)
            if p.returncode == 0:
                ids |= set(p.stdout.split())
        cdir = os.path.join(self.data, "containers")
        if os.path.isdir(cdir):
            ids |= {e for e in os.listdir(cdir) if len(e) == 64}
        self.seen_ids |= ids
        return ids

    # -- clean-up --

    def remove_all(self):
        """docker rm -f of every container; returns problems."""
        problems = []
        ids = self.ids()
        if not self.alive() or not ids:
            return problems
        p = self.docker("rm", "-f", *sorted(ids), timeout=120)
        if p.returncode != 0:
            problems.append(f"docker rm -f failed: {p.stderr.strip()}")
        left = self.docker("ps", "-aq", "--no-trunc", timeout=30).stdout.split()
        if left:
            problems.append(f"containers left after docker rm -f: {left}")
        return problems

    def check_host(self, ids=None):
        """Monitors, mounts, cgroups of the given containers (all it ever saw
        when None) left on the host; removes them and returns problems."""
        problems = []
        ids = self.seen_ids if ids is None else ids
        exclude = {self.pid} if self.alive() else set()
        ok = wait_for(lambda: not [x for x in procs_mentioning(self.base, exclude)
                                   if not ids or any(i in x[1] for i in ids) or not self.alive()], 10)
        if not ok:
            left = [x for x in procs_mentioning(self.base, exclude)
                    if not ids or any(i in x[1] for i in ids) or not self.alive()]
            problems.append(f"processes left: {left}")
            for pid, _ in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        harness.reap_orphans()
        for cid in ids:
            ms = [m for m in mounts_under(self.base) if cid in m]
            if ms:
                problems.append(f"mounts left for {cid[:12]}: {ms}")
                for mp in sorted(ms, key=len, reverse=True):
                    subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
            cgs = container_cgroups(cid)
            if cgs and not wait_for(lambda: not container_cgroups(cid), 5):
                problems.append(f"cgroups left for {cid[:12]}: {cgs}")
                for d in cgs:
                    for sub in sorted(glob.glob(d + "/**/"), key=len, reverse=True):
                        try:
                            os.rmdir(sub)
                        except OSError:
                            pass
        return problems

    def cleanup(self):
        """Removes every container, stops the daemon, checks the host, removes
        the temp dir; returns problems."""
        problems = []
        try:
            problems += self.remove_all()
        except Exception as e:  # keep cleaning
            problems.append(f"removing containers: {e!r}")
        try:
            rc = self.stop()
            if rc not in (None, 0, -signal.SIGKILL):
                problems.append(f"moat daemon exited {rc} on SIGTERM")
        except AssertionError as e:
            problems.append(str(e))
        self.ids()
        problems += self.check_host()
        left = mounts_under(self.base)
        if left:
            problems.append(f"mounts left under {self.base}: {left}")
            for mp in sorted(left, key=len, reverse=True):
                subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
        for p in (self.sock, self.pidfile):
            if os.path.exists(p) and rc_clean(self):
                problems.append(f"{p} left after SIGTERM")
        harness.reap_orphans()
        shutil.rmtree(self.base, ignore_errors=True)
        return problems


def rc_clean(d):
    return d.proc is not None and d.proc.returncode == 0


def new_daemon(session_tmp, image_tar, prefix="moatd-", **kw):
    if os.geteuid() != 0:
        pytest.skip("the daemon tests need root")
    if not os.access(moat_path(), os.X_OK):
        pytest.fail(f"{moat_path()} is not built")
    base = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    return MoatDaemon(base, image_tar, **kw)


@pytest.fixture(scope="module")
def moat_daemon(session_tmp, demo_image_tar):
    d = new_daemon(session_tmp, demo_image_tar)
    try:
        d.start()
    except BaseException:
        d.cleanup()
        raise
    yield d
    problems = d.cleanup()
    if problems:
        pytest.fail("left behind by the daemon:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def daemon(moat_daemon):
    """The module's daemon; the containers a test made are removed after it
    and must leave nothing behind."""
    d = moat_daemon
    if not d.alive():
        pytest.fail("the module's moat daemon is not running:\n" + d.log_tail())
    before = d.ids()
    yield d
    problems = []
    if d.alive():
        new = d.ids() - before
        if new:
            p = d.docker("rm", "-f", *sorted(new), timeout=120)
            if p.returncode != 0 and "No such container" not in p.stderr:
                problems.append(f"docker rm -f failed: {p.stderr.strip()}")
        problems += d.check_host(d.seen_ids - before or {"-none-"})
    harness.reap_orphans()
    if problems:
        pytest.fail("left behind after the test:\n  " + "\n  ".join(problems), pytrace=False)
