"""Runtime-agnostic helpers for the moat-runtime integration tests.

The runtime under test is any runc-compatible binary: $MOAT_RUNTIME, else the
moat-runtime built in $MOAT_BUILD_DIR or <repo>/build.  Every container gets a
unique id, a private --root state directory and a bundle whose config.json is
built from default_config() (what `runc spec` writes, plus a cgroup
namespace) pointing root.path at the shared, read-only busybox rootfs.

The Env object (one per test, see conftest.py) remembers every container it
made; its cleanup force-deletes them and then checks that nothing is left:
no live process, no state directory, no cgroup directory, no mount.
"""

import copy
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TIMEOUT = 30


def build_dir():
    return os.environ.get("MOAT_BUILD_DIR") or os.path.join(REPO, "build")


def runtime_path():
    p = os.environ.get("MOAT_RUNTIME")
    if not p:
        p = os.path.join(build_dir(), "src", "runtime-cli", "moat-runtime")
    return os.path.abspath(p)


def payload_path():
    p = os.environ.get("MOAT_PAYLOAD")
    if not p:
        p = os.path.join(build_dir(), "tests", "moat-test-payload")
    return os.path.abspath(p)


def spec_dir():
    return os.environ.get("MOAT_SPEC_DIR") or os.path.join(REPO, "tests", "data", "spec")


def is_moat():
    return os.path.basename(runtime_path()) == "moat-runtime"


# ---- process management ---------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


def become_subreaper():
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


# Popen objects the harness is still responsible for: reap_orphans() must not
# steal their exit status.
_live_popens = set()


def _children():
    me = os.getpid()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        if int(fields[1]) == me:
            out.append((int(d), fields[0]))
    return out


def reap_orphans():
    """Reaps zombies re-parented to us (container inits of detached runs)."""
    live = {p.pid for p in _live_popens if p.returncode is None}
    for pid, state in _children():
        if pid in live:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def pid_alive(pid):
    """True if pid exists and is not a zombie (reaping it if it is ours)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    state = st[st.rfind(")") + 2:].split()[0]
    if state in ("Z", "X"):
        reap_orphans()
        return False
    return True


def wait_for(pred, timeout=10.0, interval=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            return v
        time.sleep(interval)


# ---- configuration ---------------------------------------------------------

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

CAP_NUMBERS = {
    name: i for i, name in enumerate([
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
        "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
        "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ])
}


def cap_mask(names):
    m = 0
    for n in names:
        m |= 1 << CAP_NUMBERS[n]
    return m


def default_config(rootfs, args=None):
    """What `runc spec` writes (terminal off), with a cgroup namespace added."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args or ["/bin/payload", "info"]),
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(DEFAULT_CAPS),
                "effective": list(DEFAULT_CAPS),
                "permitted": list(DEFAULT_CAPS),
                "ambient": list(DEFAULT_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "moat-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                         "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in
                           ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


def merge(base, over):
    """Deep-merges dict `over` into `base` (lists and scalars replace; a value
    of None deletes the key)."""
    for k, v in over.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


# ---- rootfs ----------------------------------------------------------------

def build_rootfs(dest, payload):
    """A busybox-static rootfs with the payload at /bin/payload."""
    busybox = shutil.which("busybox", path="/bin:/usr/bin") or "/bin/busybox"
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev",
              "tmp", "root", "run", "var", "mnt", "home"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(dest, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list-full"], check=True, text=True,
                             capture_output=True, timeout=TIMEOUT).stdout.split()
    for a in applets:
        a = a.strip("/")
        if a == "bin/busybox":
            continue
        p = os.path.join(dest, a)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if not os.path.lexists(p):
            os.symlink("/bin/busybox", p)
    shutil.copy2(payload, os.path.join(dest, "bin", "payload"))
    os.chmod(os.path.join(dest, "bin", "payload"), 0o755)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                "tester:x:1000:1000:tester:/home:/bin/sh\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nusers:x:100:\ntester:x:1000:\n"
                "nogroup:x:65534:\n")
    with open(os.path.join(dest, "etc", "hostname"), "w") as f:
        f.write("rootfs\n")


# ---- runtime wrapper -------------------------------------------------------

class RuntimeError_(AssertionError):
    pass


class Runtime:
    def __init__(self, state_root, path=None):
        self.path = path or runtime_path()
        self.root = state_root
        self.name = os.path.basename(self.path)

    def argv(self, *args, global_args=()):
        return [self.path, "--root", self.root, *global_args, *args]

    def cmd(self, *args, global_args=(), timeout=TIMEOUT, input=None,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=None, **kw):
        """Runs one runtime command; returns CompletedProcess (text mode)."""
        argv = self.argv(*args, global_args=global_args)
        return subprocess.run(argv, input=input, stdout=stdout, stderr=stderr,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              text=True, timeout=timeout, env=env, **kw)

    def ok(self, *args, **kw):
        r = self.cmd(*args, **kw)
        if r.returncode != 0:
            raise RuntimeError_(f"{self.name} {' '.join(args)} exited {r.returncode}: "
                                f"{r.stderr.strip()}")
        return r

    def popen(self, *args, global_args=(), **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.argv(*args, global_args=global_args), **kw)
        _live_popens.add(p)
        return p


class Container:
    def __init__(self, env, cid, bundle, config):
        self.env = env
        self.rt = env.rt
        self.id = cid
        self.bundle = bundle
        self.config = config
        self.out_path = os.path.join(bundle, "stdout")
        self.err_path = os.path.join(bundle, "stderr")
        self.init_pid = None

    @property
    def state_dir(self):
        return os.path.join(self.rt.root, self.id)

    def write_config(self, text=None):
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            f.write(text if text is not None else json.dumps(self.config, indent=1))

    def _stdio(self):
        return dict(stdout=open(self.out_path, "ab"), stderr=open(self.err_path, "ab"))

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def errors(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def json_output(self):
        return parse_json(self.output())

    def create(self, *extra, check=True, timeout=TIMEOUT):
        """`create` with the container's stdio going to files in the bundle
        (a pipe would stay open in the init and hang the caller)."""
        io = self._stdio()
        try:
            r = subprocess.run(self.rt.argv("create", "--bundle", self.bundle, *extra, self.id),
                               stdin=subprocess.DEVNULL, timeout=timeout, **io)
        finally:
            io["stdout"].close()
            io["stderr"].close()
        if check and r.returncode != 0:
            raise RuntimeError_(f"create {self.id} exited {r.returncode}: {self.errors()}")
        if r.returncode == 0:
            st = self.state()
            self.init_pid = st.get("pid")
        return r

    def run_detached(self, *extra, check=True):
        io = self._stdio()
        try:
            r = subprocess.run(self.rt.argv("run", "--detach", "--bundle", self.bundle,
                                            *extra, self.id),
                               stdin=subprocess.DEVNULL, timeout=TIMEOUT, **io)
        finally:
            io["stdout"].close()
            io["stderr"].close()
        if check and r.returncode != 0:
            raise RuntimeError_(f"run -d {self.id} exited {r.returncode}: {self.errors()}")
        if r.returncode == 0:
            self.init_pid = self.state().get("pid")
        return r

    def run(self, *extra, timeout=TIMEOUT, global_args=(), **kw):
        """Foreground `run`; returns CompletedProcess with text output."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = self.rt.popen("run", "--bundle", self.bundle, *extra, self.id,
                          global_args=global_args, **kw)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise
        finally:
            _live_popens.discard(p)
        dec = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else b
        return subprocess.CompletedProcess(p.args, p.returncode, dec(out), dec(err))

    def run_popen(self, *extra, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return self.rt.popen("run", "--bundle", self.bundle, *extra, self.id, **kw)

    def start(self, check=True):
        r = self.rt.cmd("start", self.id)
        if check and r.returncode != 0:
            raise RuntimeError_(f"start {self.id} exited {r.returncode}: {r.stderr}")
        return r

    def state(self):
        r = self.rt.ok("state", self.id)
        return json.loads(r.stdout)

    def status(self):
        return self.state()["status"]

    def wait_status(self, status, timeout=10):
        return wait_for(lambda: self.status() == status, timeout)

    def kill(self, sig="TERM", check=True, extra=()):
        r = self.rt.cmd("kill", *extra, self.id, str(sig))
        if check and r.returncode != 0:
            raise RuntimeError_(f"kill {self.id} {sig} exited {r.returncode}: {r.stderr}")
        return r

    def delete(self, force=False, check=True):
        args = ["delete"] + (["--force"] if force else []) + [self.id]
        r = self.rt.cmd(*args)
        if check and r.returncode != 0:
            raise RuntimeError_(f"delete {self.id} exited {r.returncode}: {r.stderr}")
        return r


def parse_json(text):
    """Parses the payload's output: the first line that is a JSON object."""
    text = text.replace("\r", "")
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON object in payload output: {text!r}")


def parse_json_lines(text):
    return [json.loads(l) for l in text.replace("\r", "").splitlines()
            if l.strip().startswith("{")]


# ---- per-test environment --------------------------------------------------

_counter = [0]


def unique_id(prefix="mt"):
    _counter[0] += 1
    return f"{prefix}-{os.getpid()}-{_counter[0]}-{secrets.token_hex(3)}"


CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_dirs_named(needle):
    """Directories under every cgroup hierarchy whose name contains needle."""
    found = []
    try:
        hier = os.listdir(CGROUP_ROOT)
    except OSError:
        return found
    for h in hier:
        top = os.path.join(CGROUP_ROOT, h)
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for dirpath, dirnames, _ in os.walk(top):
            for d in dirnames:
                if needle in d:
                    found.append(os.path.join(dirpath, d))
    return found


def processes_in_cgroup_named(needle):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        if needle in cg and pid_alive(int(d)):
            out.append(int(d))
    return out


def mounts_mentioning(*needles):
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    return [l for l in lines if any(n and n in l for n in needles)]


class Env:
    """One test's world: a temp dir, a runtime with a private state root, and
    the containers made through it."""

    def __init__(self, tmpdir, rootfs, payload):
        self.tmp = tmpdir
        self.rootfs = rootfs
        self.payload = payload
        self.rt = Runtime(os.path.join(tmpdir, "state"))
        os.makedirs(self.rt.root, exist_ok=True)
        self.containers = []
        self._cleanups = []
        self._n = 0

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def config(self, args=None, overrides=None):
        cfg = default_config(self.rootfs, args)
        if overrides:
            merge(cfg, overrides)
        return cfg

    def container(self, args=None, overrides=None, config=None, cid=None, raw=None):
        """Makes a bundle (config.json from the default + overrides, or the
        given config dict, or raw text) and returns its Container."""
        self._n += 1
        bundle = self.path(f"bundle-{self._n}")
        os.makedirs(bundle)
        if config is None:
            config = self.config(args, overrides)
        c = Container(self, cid or unique_id(), bundle, config)
        c.write_config(raw)
        open(c.out_path, "w").close()
        open(c.err_path, "w").close()
        self.containers.append(c)
        return c

    def run_payload(self, overrides=None, args=("info",), extra=(), expect_rc=0):
        """Runs the payload in the foreground and returns its parsed JSON."""
        c = self.container(["/bin/payload", *args], overrides)
        r = c.run(*extra)
        assert r.returncode == expect_rc, (
            f"run exited {r.returncode} (wanted {expect_rc}); stderr: {r.stderr!r} "
            f"stdout: {r.stdout!r}")
        return parse_json(r.stdout)

    def on_cleanup(self, fn):
        self._cleanups.append(fn)

    def cleanup(self):
        """Force-deletes every container, then checks nothing is left."""
        problems = []
        for c in self.containers:
            try:
                c.rt.cmd("delete", "--force", c.id)
            except subprocess.TimeoutExpired:
                problems.append(f"delete --force {c.id} timed out")
        reap_orphans()
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning
                problems.append(f"cleanup callback failed: {e!r}")
        for c in self.containers:
            if c.init_pid and wait_for(lambda: not pid_alive(c.init_pid), 5) is False:
                problems.append(f"init pid {c.init_pid} of {c.id} still alive")
                try:
                    os.kill(c.init_pid, signal.SIGKILL)
                except OSError:
                    pass
            if not wait_for(lambda: not processes_in_cgroup_named(c.id), 5):
                problems.append(f"processes left in cgroups of {c.id}: "
                                f"{processes_in_cgroup_named(c.id)}")
            if os.path.lexists(c.state_dir):
                problems.append(f"state dir {c.state_dir} left behind")
                shutil.rmtree(c.state_dir, ignore_errors=True)
            cgs = cgroup_dirs_named(c.id)
            if cgs:
                problems.append(f"cgroups left for {c.id}: {cgs}")
                for d in sorted(cgs, key=len, reverse=True):
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
            ms = mounts_mentioning(c.bundle, c.id)
            if ms:
                problems.append(f"mounts left for {c.id}: {ms}")
        # the shared rootfs must stay as built: a config without a /dev
        # tmpfs makes runtimes create device nodes in it
        devdir = os.path.join(self.rootfs, "dev")
        if os.listdir(devdir):
            problems.append(f"the shared rootfs was written to: {os.listdir(devdir)} in /dev "
                            "(use the private_rootfs fixture)")
            for n in os.listdir(devdir):
                p = os.path.join(devdir, n)
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        reap_orphans()
        return problems
