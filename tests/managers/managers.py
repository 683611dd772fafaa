"""Helpers for the tests in which real container managers (podman, containerd
through ctr, dockerd) drive moat-runtime in place of runc.

What lives here: the offline image (the shared busybox rootfs imported into a
private podman store, saved as a docker archive that ctr and docker load),
the host-network guard every daemon run is wrapped in, a Daemon that is
started with private state and stopped by pid, a tmux driver for the
interactive cases, and the check that a container really ran under the
runtime under test (its state dir under the manager's runtime root, read back
with `<runtime> --root ROOT state ID`).

Nothing here reaches the network: images are imported from local tarballs,
every container runs without a network, and dockerd is only ever started with
its bridge, iptables, masquerading and forwarding switched off.
"""

import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import tarfile

import pytest

import harness

IMAGE = "localhost/moat-busybox:latest"
TIMEOUT = 90


def runtime():
    return harness.runtime_path()


def runtime_name():
    return os.path.basename(runtime())


def default_runtime_root():
    """Where the runtime keeps its state when the manager passes no --root
    (podman as root does not): moat's built-in default, or /run/<name> for a
    peer runtime (runc, crun) when the suite checks itself against one."""
    if harness.is_moat():
        return "/run/moat-runtime"
    return f"/run/{runtime_name()}"


# ---- known gaps ------------------------------------------------------------

_unsupported_cache = {}


def unsupported(verb):
    """True while the runtime answers `VERB` with moat's "not supported"."""
    if verb not in _unsupported_cache:
        try:
            r = subprocess.run([runtime(), verb, "--help"], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            _unsupported_cache[verb] = "not supported" in (r.stdout + r.stderr)
        except OSError:
            _unsupported_cache[verb] = False
    return _unsupported_cache[verb]


GAP_REASONS = {
    "exec": "moat-runtime exec is being written",
    "ps": "moat-runtime ps is not written yet (answers \"not supported\")",
    "pause": "moat-runtime pause/resume is being written",
    "update": "moat-runtime update is being written",
}


def needs(*verbs):
    """xfail(strict) while one of the runtime verbs answers "not supported";
    once they exist the test runs normally (and an unexpected pass fails)."""
    missing = [v for v in verbs if unsupported(v)]
    return pytest.mark.xfail(bool(missing), strict=True,
                             reason="; ".join(GAP_REASONS[v] for v in missing) or "n/a")


# ---- commands --------------------------------------------------------------

def run(argv, check=True, timeout=TIMEOUT, env=None, input=None, what=None):
    """Runs a manager command; returns CompletedProcess (text)."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                       input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"{what or ' '.join(argv[:1] + argv[-4:])} exited {r.returncode}\n"
                             f"stdout: {r.stdout.strip()}\nstderr: {r.stderr.strip()}")
    return r


def wait_for(pred, timeout=20.0, interval=0.05):
    return harness.wait_for(pred, timeout, interval)


def need_binary(name):
    p = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if not p:
        pytest.skip(f"{name} is not installed (tools/install-deps.sh installs it)")
    return p


# ---- the image ---------------------------------------------------------------

def rootfs_tar(rootfs, dest):
    """A tarball of the shared busybox rootfs (with /bin/payload)."""
    with tarfile.open(dest, "w") as t:
        for name in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, name), arcname=name)
    return dest


# ---- processes -----------------------------------------------------------------

def procs_mentioning(needle):
    """(pid, cmdline) of live processes whose command line contains needle."""
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


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wait_for(lambda: not any(harness.pid_alive(p) for p in pids), 10)
    harness.reap_orphans()


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    out = []
    for l in lines:
        mp = l.split()[4]
        if mp == prefix or mp.startswith(prefix.rstrip("/") + "/"):
            out.append(mp)
    return out


def umount_all_under(prefix):
    for mp in sorted(mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)


class Daemon:
    """A manager daemon in its own session, logging to a file; stop() ends
    it by pid (TERM, then KILL) and then ends, by pid, whatever it left
    running that names its private directory (shims, its containerd)."""

    def __init__(self, name, argv, base, sock, env=None):
        self.name = name
        self.argv = argv
        self.base = base
        self.sock = sock
        self.log_path = os.path.join(base, f"{name}.log")
        self.env = env
        self.proc = None

    def start(self, ready, timeout=60):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        finally:
            log.close()
        harness._live_popens.add(self.proc)
        ok = wait_for(lambda: self.proc.poll() is not None or (os.path.exists(self.sock)
                                                               and ready()), timeout, 0.1)
        if self.proc.poll() is not None or not ok:
            self.stop()
            raise AssertionError(f"{self.name} did not come up; log:\n{self.log()[-4000:]}")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, grace=30):
        """Returns a list of problems (leftover processes)."""
        problems = []
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                problems.append(f"{self.name} (pid {p.pid}) ignored SIGTERM for {grace}s")
                p.kill()
                p.wait(10)
        harness._live_popens.discard(p)
        left = wait_for(lambda: not procs_mentioning(self.base), 10) or procs_mentioning(self.base)
        if left is not True and left:
            problems.append(f"left running after {self.name} stopped: {left}")
            kill_pids([pid for pid, _ in left])
        harness.reap_orphans()
        return problems


# ---- the host network must not change ----------------------------------------

def _count_lines(argv):
    if not shutil.which(argv[0]):
        return None
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None
    return sum(1 for l in r.stdout.splitlines()
               if l.strip() and not l.startswith("#") and not l.startswith(":")
               and not l.startswith("*") and l.strip() != "COMMIT")


def host_net():
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           timeout=30, check=True).stdout.splitlines()
    names = sorted(l.split(":")[1].strip().split("@")[0] for l in links)
    snap = {"links": names}
    for key in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"):
        try:
            with open(f"/proc/sys/{key}") as f:
                snap[key] = f.read().strip()
        except OSError:
            pass
    snap["iptables rules"] = _count_lines(["iptables-save"])
    snap["ip6tables rules"] = _count_lines(["ip6tables-save"])
    r = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True,
                       timeout=30) if shutil.which("nft") else None
    snap["nft ruleset lines"] = (len(r.stdout.splitlines()) if r and r.returncode == 0
                                 else None)
    return snap


def assert_host_net(before, when):
    after = host_net()
    bad = [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
           if before.get(k) != after.get(k)]
    if "docker0" in after["links"]:
        bad.append("docker0 exists")
    if bad:
        pytest.fail(f"the host's network namespace changed {when}:\n  " + "\n  ".join(bad),
                    pytrace=False)


class HostDirs:
    """Directories a manager creates at fixed host paths (containerd's shim
    sockets in /run/containerd/s, podman's blob cache): removed at the end if
    they did not exist before and hold nothing of anyone else's."""

    def __init__(self, *paths):
        self.paths = [p for p in paths if not os.path.lexists(p)]

    def cleanup(self):
        for p in self.paths:
            if not os.path.isdir(p):
                continue
            for dirpath, dirnames, filenames in os.walk(p, topdown=False):
                for f in filenames:
                    fp = os.path.join(dirpath, f)
                    # only caches and dead sockets: a live one would mean a
                    # shim is still running, which Daemon.stop() reports
                    try:
                        os.unlink(fp)
                    except OSError:
                        pass
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


# ---- the container really ran under the runtime under test -----------------------

def container_dirs(root):
    """Per-container state dirs in a runtime root (moat keeps caches such as
    .cache/seccomp next to them)."""
    try:
        return {e for e in os.listdir(root) if not e.startswith(".")}
    except FileNotFoundError:
        return set()


def runtime_state(root, cid):
    r = subprocess.run([runtime(), "--root", root, "state", cid], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def assert_under_runtime(root, cid, pid=None, status="running"):
    """The runtime under test holds state for cid under root, in the given
    status, with the init pid the manager reports."""
    sd = os.path.join(root, cid)
    assert os.path.isdir(sd), (f"no state dir {sd}: the container did not run under "
                               f"{runtime()} (runtime root has {sorted(os.listdir(root)) if os.path.isdir(root) else 'nothing'})")
    st = runtime_state(root, cid)
    assert st is not None, f"{runtime_name()} --root {root} state {cid} failed"
    assert st["id"] == cid
    assert st["status"] == status, st
    if pid is not None:
        assert st["pid"] == int(pid), (st, pid)
        assert harness.pid_alive(int(pid))
    return st


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


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    return st[st.rfind(")") + 2:].split()[0]


# ---- tmux: a real terminal for -it -------------------------------------------------

class Tmux:
    def __init__(self, base, name="t"):
        self.sock = os.path.join(base, "tmux.sock")
        self.name = name
        self.server_pid = None

    def _cmd(self, *args, check=True):
        return run(["tmux", "-S", self.sock, *args], check=check, timeout=30)

    def start(self, shell_cmd, env=None):
        """Runs shell_cmd in a detached 120x30 session; after it ends the pane
        prints EXITED=<status> and stays open."""
        argv = ["tmux", "-S", self.sock, "new-session", "-d", "-s", self.name,
                "-x", "120", "-y", "30",
                f"{shell_cmd}; echo EXITED=$?; sleep 600"]
        run(argv, env=env, timeout=30)
        self.server_pid = int(self._cmd("display-message", "-p", "-t", self.name,
                                        "#{pid}").stdout.strip())

    def size(self):
        """"ROWS COLS" of the pane, as `stty size` inside it prints them."""
        return self._cmd("display-message", "-p", "-t", self.name,
                         "#{pane_height} #{pane_width}").stdout.strip()

    def send(self, text, enter=True):
        self._cmd("send-keys", "-t", self.name, "-l", text)
        if enter:
            self._cmd("send-keys", "-t", self.name, "Enter")

    def screen(self):
        return self._cmd("capture-pane", "-p", "-J", "-t", self.name).stdout

    def wait_text(self, pattern, timeout=30, unless=r"^EXITED=\d+$"):
        """Waits for pattern on the screen; gives up at once if `unless`
        shows first (the command ended)."""
        rx = re.compile(pattern, re.M)
        stop = re.compile(unless, re.M) if unless else None

        def seen():
            scr = self.screen()
            return rx.search(scr) or (stop is not None and stop.search(scr) and "ended")
        ok = wait_for(seen, timeout, 0.1)
        assert ok and ok != "ended", \
            f"{pattern!r} never appeared on the terminal:\n{self.screen()}"
        return ok

    def stop(self):
        if self.server_pid is None:
            return
        pid = self.server_pid
        self.server_pid = None
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return
        if not wait_for(lambda: not harness.pid_alive(pid), 10):
            kill_pids([pid])
        harness.reap_orphans()


# ---- podman ------------------------------------------------------------------------

class Podman:
    """podman with private storage, run root, tmp dir and network config,
    cgroupfs, file events, and a containers.conf of its own that names
    moat-runtime as the OCI runtime and keeps rlimits within this host's
    hard limits (root lacks CAP_SYS_RESOURCE here)."""

    def __init__(self, base):
        self.base = base
        for d in ("storage", "run", "tmp", "cni"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        self.conf = os.path.join(base, "containers.conf")
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        conmon = shutil.which("conmon") or "/usr/bin/conmon"
        with open(self.conf, "w") as f:
            f.write(f"""[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
runtime = "moat"
runtime_supports_json = ["moat"]
conmon_path = ["{conmon}"]
cgroup_manager = "cgroupfs"
events_logger = "file"

[engine.runtimes]
moat = ["{runtime()}"]
""")
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf)
        self.env.pop("CONTAINERS_STORAGE_CONF", None)

    def argv(self, *args):
        p = self.base
        return ["podman", "--root", f"{p}/storage", "--runroot", f"{p}/run",
                "--tmpdir", f"{p}/tmp", "--network-config-dir", f"{p}/cni",
                "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", *args]

    def __call__(self, *args, check=True, timeout=TIMEOUT, input=None):
        return run(self.argv(*args), check=check, timeout=timeout, env=self.env,
                   input=input, what="podman " + " ".join(args))

    def shell_cmd(self, *args):
        """The command line for a terminal (tmux) session."""
        return (f"CONTAINERS_CONF={shlex.quote(self.conf)} "
                + " ".join(shlex.quote(a) for a in self.argv(*args)))

    def inspect(self, name, fmt):
        return self("inspect", "--format", fmt, name).stdout.strip()

    def cleanup(self):
        """Removes every container; returns problems (leftover conmons,
        mounts under the private dirs)."""
        problems = []
        r = self("rm", "-a", "-f", "-t", "0", check=False, timeout=120)
        if r.returncode != 0:
            problems.append(f"podman rm -af failed: {r.stderr.strip()}")
        # conmon and its exit command (podman container cleanup) finish
        # after `rm` has returned
        needle = os.path.join(self.base, "storage")
        left = wait_for(lambda: not procs_mentioning(needle), 30) or procs_mentioning(needle)
        if left is not True and left:
            problems.append(f"processes left by podman: {left}")
            kill_pids([pid for pid, _ in left])
        harness.reap_orphans()
        return problems

    def teardown(self):
        problems = self.cleanup()
        self("rmi", "-a", "-f", check=False, timeout=120)
        ms = mounts_under(self.base)
        if ms:
            problems.append(f"mounts left under podman's dirs: {ms}")
            umount_all_under(self.base)
        return problems
