#!/usr/bin/python3
"""Engine benchmark (issue 7): moat's daemon next to podman and dockerd.

Every engine runs the same local image, demo:latest: a busybox-static
rootfs tarball made at start and imported into each engine (`moat import`
into the daemon's store before it starts, `podman import`, `docker import`).
The moat daemon and dockerd 20.10 run privately (socket, data root, exec
root, pid file under the temp dir; dockerd with its bridge, iptables and
forwarding off); podman runs with private --root/--runroot/--tmpdir and its
own containers.conf; every engine's runtime state (exec root, runroot) is
on a tmpfs, as /run is where they are deployed. moat is driven by the real docker CLI over
DOCKER_HOST, like dockerd. Every container runs with `--network none`.

  run       `CLI run --rm --network none demo true`, the engines interleaved
            iteration by iteration; wall time of the CLI process
  detached  per round and engine: start C detached `sleep 1000` containers
            with a sequential loop of `CLI run -d`, measure the monitors'
            PSS (moat-monitor, conmon, containerd-shim-runc-v2) and
            the daemons' RSS, `CLI rm -f` them all in one call; then start
            C again with P at a time, and `rm -f` again. Engines interleaved
            within each round.

Each engine must first run a probe container whose output proves it ran in
its own pid namespace. A failing invocation is reported with its command
and stderr; an engine is dropped from a benchmark only after repeated
failures. moat's daemon runs with --debug and its per-request times are
summarised from its log. Nothing here asserts a timing. Everything started
is stopped by pid, mounts under the temp dir are unmounted, the temp dir is
removed. Standard library only; see bench/README.md.
"""

import argparse
import concurrent.futures
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import runtime as rb  # noqa: E402  bench/runtime.py: subreaper, formatting, cgroup-hybrid.sh

MiB = 1024.0            # /proc figures are in KiB
IMAGE = "demo:latest"
PROBE_ARGS = ["sh", "-c", "echo probe:$$"]
PROBE_EXPECT = "probe:1"     # pid 1 in its own pid namespace, output attached
MAX_FAILURES = 5             # an engine is dropped from a benchmark after this many
GOAL_RUN_VS_PODMAN = 6.0
GOAL_START_S = 1.0
GOAL_PSS_MIB = 0.2
# moat's two front ends on the same daemon: the goal lines are printed for both;
# the issue's own figure is the moat CLI's (`moat run --rm demo true`).
MOAT_FRONTS = {"moat-cli": "`moat run`, the issue's figure", "moat": "docker CLI -> moat daemon"}

# ---- processes ------------------------------------------------------------------

SIGDEF = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM)
daemon_exits = {}        # pid -> wait status of daemons reaped by reap()
reap_lock = threading.Lock()


def reap():
    """Reap whatever is ours and exited (we are a subreaper: containerd's
    shims and conmons that double-forked end up here). Only called when no
    CLI invocation is in flight, so it cannot steal their statuses."""
    with reap_lock:
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            daemon_exits[pid] = st


class Result:
    __slots__ = ("argv", "pid", "status", "ms", "cpu_ms", "out", "err")

    def ok(self):
        return self.status is not None and os.WIFEXITED(self.status) and \
            os.WEXITSTATUS(self.status) == 0

    def why(self):
        return rb.describe_status(self.status)


# Where call() captures output: a tmpfs once main() has mounted one. On the
# root file system here (ext4 without a journal, after a run's deletions)
# creating the two files took 0.27 ms per call (p90 0.45 ms), against
# 0.02 ms on a tmpfs: harness time inside every engine's measured window.
capture_dir = None


def call(argv, env, timeout, tag, tmp):
    """Run argv with stdout/stderr in files; wall time fork..wait4."""
    where = capture_dir or tmp
    out_p = os.path.join(where, f"out-{tag}")
    err_p = os.path.join(where, f"err-{tag}")
    acts = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out_p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_OPEN, 2, err_p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
    r = Result()
    r.argv = argv
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=acts, setsigmask=(),
                         setsigdef=SIGDEF)
    r.pid = pid
    pidfd = os.pidfd_open(pid)
    try:
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if not p.poll(timeout * 1000):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.wait4(pid, 0)
            r.status = None
            t1 = time.perf_counter_ns()
            ru = None
        else:
            _, r.status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter_ns()
    finally:
        os.close(pidfd)
    r.ms = (t1 - t0) / 1e6
    r.cpu_ms = (ru.ru_utime + ru.ru_stime) * 1000.0 if ru else 0.0
    with open(out_p, errors="replace") as f:
        r.out = f.read()
    with open(err_p, errors="replace") as f:
        r.err = f.read()
    if capture_dir:
        os.unlink(out_p)
        os.unlink(err_p)
    return r


def spawn_daemon(argv, env, log_path):
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        return os.posix_spawn(argv[0], argv, env,
                              file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                            (os.POSIX_SPAWN_DUP2, fd, 1),
                                            (os.POSIX_SPAWN_DUP2, fd, 2)],
                              setsid=True, setsigmask=(), setsigdef=SIGDEF)
    finally:
        os.close(fd)


def alive(pid):
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_until(pred, timeout, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


def proc_cwd(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def procs_mentioning(needle):
    me = os.getpid()
    return [int(d) for d in os.listdir("/proc")
            if d.isdigit() and int(d) != me and needle in proc_cmdline(d) and alive(int(d))]


def mem_kib(pid):
    """(Pss, Rss) in KiB from smaps_rollup, or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    pss = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    rss = re.search(r"^Rss:\s+(\d+) kB", text, re.M)
    return (int(pss.group(1)), int(rss.group(1))) if pss and rss else None


def children_named(ppid, comm):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        if name == comm and int(st.rsplit(")", 1)[1].split()[1]) == ppid:
            out.append(int(d))
    return out


def mounts_under(prefix):
    with open("/proc/self/mountinfo") as f:
        mps = [l.split()[4] for l in f]
    p = prefix.rstrip("/") + "/"
    return [m for m in mps if m == prefix or m.startswith(p)]


# ---- the image --------------------------------------------------------------------

def make_rootfs_tar(tmp, busybox):
    """The layout of tools/demo-image.sh: static busybox, one link per
    applet, root and nobody."""
    root = os.path.join(tmp, "rootfs")
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var"):
        os.makedirs(os.path.join(root, d))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    tar = os.path.join(tmp, "rootfs.tar")
    subprocess.run(["tar", "--numeric-owner", "--owner=0", "--group=0", "-C", root,
                    "-cf", tar, "."], check=True)
    shutil.rmtree(root)
    return tar


IMPORT_CHANGES = ['CMD ["/bin/sh"]', "ENV PATH=/bin"]


# ---- engines ----------------------------------------------------------------------

class Setup(Exception):
    pass


class Engine:
    """One contender: how to call its CLI, the daemon behind it (if any),
    which processes are its per-container monitors."""

    name = ""
    monitor_comms = ()
    detached = True          # takes part in the detached benchmark

    def __init__(self, base, args):
        self.base = base
        self.args = args
        # runtime state on a tmpfs, as /run is where these engines are deployed
        self.run = os.path.join(args.runfs, os.path.basename(base))
        self.env = dict(os.environ)
        self.daemon_pid = None
        self.version = ""
        self.notes = []

    def cli(self, *a):
        raise NotImplementedError

    def run_args(self, *cmd, rm=True, detach=False):
        return [*(["--rm"] if rm else []), *(["-d"] if detach else []),
                "--network", "none", IMAGE, *cmd]

    def rm_args(self):
        """`rm -f`: docker and moat SIGKILL at once."""
        return ["rm", "-f"]

    def monitors(self):
        """pids of this engine's per-container monitors: named so, and
        mentioning this engine's directories in their command line or
        working directory."""
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit() and proc_comm(d) in self.monitor_comms and alive(int(d)):
                where = proc_cmdline(d) + " " + proc_cwd(d)
                if self.base in where or self.run in where:
                    out.append(int(d))
        return out

    def daemon_pids(self):
        return [self.daemon_pid] if self.daemon_pid and alive(self.daemon_pid) else []

    def start(self, tar, tmp):
        pass

    def stop(self):
        """Stop the daemon by pid; returns problems."""
        problems = []
        pid = self.daemon_pid
        if pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
            if not wait_until(lambda: not alive(pid), 30, 0.1):
                problems.append(f"{self.name} daemon (pid {pid}) ignored SIGTERM for 30 s")
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not alive(pid), 10)
        reap()
        return problems


def docker_cli_env(base, sock):
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}",
               DOCKER_CONFIG=os.path.join(base, "cli"))
    for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"):
        env.pop(k, None)
    os.makedirs(env["DOCKER_CONFIG"], exist_ok=True)
    return env


def wait_ready(eng, tmp, log_path, timeout=60):
    def up():
        if not alive(eng.daemon_pid):
            return True
        return os.path.exists(eng.sock) and \
            call(eng.cli("version", "--format", "{{.Server.Version}}"), eng.env, 10,
                 f"{eng.name}-ready", tmp).ok()
    ok = wait_until(up, timeout, 0.1)
    if not alive(eng.daemon_pid) or not ok:
        with open(log_path, errors="replace") as f:
            log = f.read()[-3000:]
        raise Setup(f"{eng.name} daemon did not come up; its log:\n{log}")
    r = call(eng.cli("version", "--format", "{{.Server.Version}}"), eng.env, 10,
             f"{eng.name}-ver", tmp)
    return r.out.strip()


class Moat(Engine):
    name = "moat"
    monitor_comms = ("moat-monitor",)

    def __init__(self, base, args):
        super().__init__(base, args)
        self.sock = os.path.join(base, "moat.sock")
        self.data = os.path.join(base, "data")
        self.log_path = os.path.join(base, "daemon.log")
        self.env = docker_cli_env(base, self.sock)
        self.docker = args.docker_cli

    def cli(self, *a):
        return [self.docker, *a]

    def start(self, tar, tmp):
        moat = self.args.moat
        conf = os.path.join(self.base, "daemon.json")
        with open(conf, "w") as f:
            f.write("{}\n")
        argv = [moat, "daemon", "-H", f"unix://{self.sock}", "--data-root", self.data,
                "--exec-root", os.path.join(self.run, "exec"),
                "--pidfile", os.path.join(self.base, "moat.pid"), "-G", "root",
                "--config-file", conf]
        if self.args.moat_debug:
            argv.append("--debug")
        self.daemon_pid = spawn_daemon(argv, self.env, self.log_path)
        self.version = "moat " + wait_ready(self, tmp, self.log_path) + \
            f" ({moat}), docker CLI {cli_version(self.docker)}"
        ch = [x for c in IMPORT_CHANGES for x in ("-c", c)]
        r = call([moat, "-H", f"unix://{self.sock}", "import", *ch, tar, IMAGE], self.env, 120,
                 "moat-import", tmp)
        if not r.ok():
            raise Setup(f"moat import failed ({r.why()}): {r.err.strip()}")

    def log_offset(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def request_times(self, start, end):
        """Per-route median ms of the debug log's request lines in [start, end)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                text = f.read(max(0, end - start)).decode(errors="replace")
        except OSError:
            return {}
        by = {}
        for line in text.splitlines():
            m = re.search(r'api request method=(\w+) target=\\"([^"\\]*)\\" status=(\d+) ms=(\d+)', line)
            if not m:
                continue
            path = m.group(2).split("?")[0]
            path = re.sub(r"^/v[0-9.]+", "", path)
            path = re.sub(r"/[0-9a-f]{64}", "/{id}", path)
            by.setdefault(f"{m.group(1)} {path}", []).append(int(m.group(4)))
        return {k: {"n": len(v), "median_ms": statistics.median(v), "max_ms": max(v)}
                for k, v in by.items()}


class MoatCli(Engine):
    """`moat run` (the moat CLI against the same daemon), when it exists."""
    name = "moat-cli"
    monitor_comms = ("moat-monitor",)

    def __init__(self, base, args, daemon):
        super().__init__(base, args)
        self.daemon = daemon
        self.env = dict(daemon.env, MOAT_HOST=f"unix://{daemon.sock}")
        self.global_args = []

    def detect(self, tmp):
        moat = self.args.moat
        r = call([moat, "run", "--help"], self.env, 10, "moat-cli-help", tmp)
        text = r.out + r.err
        if not r.ok() or "unknown command" in text:
            first = text.strip().splitlines()[0] if text.strip() else ""
            return f"`moat run --help`: {r.why()}: {first[:200]}"
        top = call([moat, "--help"], self.env, 10, "moat-help", tmp)
        if re.search(r"(^|\s)(-H|--host)\b", top.out + top.err):
            self.global_args = ["-H", f"unix://{self.daemon.sock}"]
        self.version = f"moat CLI {moat} {' '.join(self.global_args)} (+ DOCKER_HOST, MOAT_HOST)"
        return None

    def cli(self, *a):
        return [self.args.moat, *self.global_args, *a]

    def daemon_pids(self):
        return self.daemon.daemon_pids()


class Podman(Engine):
    name = "podman"
    monitor_comms = ("conmon",)

    def __init__(self, base, args):
        super().__init__(base, args)
        for d in ("storage", "run", "tmp", "cni"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        conf = os.path.join(base, "containers.conf")
        # root lacks CAP_SYS_RESOURCE here: podman's default ulimits
        # (nofile 1048576) cannot be set, so use the hard limits we have
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        with open(conf, "w") as f:
            f.write(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", '
                    f'"nproc={nproc}:{nproc}"]\n\n[engine]\ncgroup_manager = "cgroupfs"\n'
                    f'events_logger = "file"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=conf)
        self.env.pop("CONTAINERS_STORAGE_CONF", None)

    def cli(self, *a):
        b = self.base
        return [self.args.podman, "--root", f"{b}/storage", "--runroot", f"{self.run}/run",
                "--tmpdir", f"{self.run}/tmp", "--network-config-dir", f"{b}/cni",
                "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--runtime", self.args.podman_runtime, *a]

    def rm_args(self):
        # podman's rm -f stops with the 10 s timeout first (SIGTERM, which a
        # pid-1 sleep ignores); -t 0 is docker's rm -f
        return ["rm", "-f", "-t", "0"]

    def start(self, tar, tmp):
        ch = [x for c in IMPORT_CHANGES for x in ("--change", c)]
        r = call(self.cli("import", *ch, tar, IMAGE), self.env, 120, "podman-import", tmp)
        if not r.ok():
            raise Setup(f"podman import failed ({r.why()}): {r.err.strip()}")
        r = call([self.args.podman, "--version"], self.env, 10, "podman-ver", tmp)
        self.version = f"{r.out.strip()}, runtime {self.args.podman_runtime} " \
            f"({rb.runtime_version(shutil.which(self.args.podman_runtime) or self.args.podman_runtime)}), storage overlay"

    def stop(self):
        problems = []
        pids = procs_mentioning(self.base)
        if pids:
            # conmon's exit command (`podman container cleanup`) can outlive `rm`
            if not wait_until(lambda: not procs_mentioning(self.base), 10):
                left = procs_mentioning(self.base)
                problems.append(f"podman left running: {[(p, proc_cmdline(p)) for p in left]}")
                for p in left:
                    os.kill(p, signal.SIGKILL)
        reap()
        return problems


class Docker(Engine):
    name = "docker"
    monitor_comms = ("containerd-shim",)

    def __init__(self, base, args):
        super().__init__(base, args)
        self.sock = os.path.join(base, "d.sock")
        self.log_path = os.path.join(base, "dockerd.log")
        self.env = docker_cli_env(base, self.sock)
        self.storage_driver = None

    def cli(self, *a):
        return [self.args.docker_cli, *a]

    def daemon_pids(self):
        pids = super().daemon_pids()
        if pids:
            pids += children_named(pids[0], "containerd")
        return pids

    def start(self, tar, tmp):
        conf = os.path.join(self.base, "daemon.json")
        with open(conf, "w") as f:
            # nothing from /etc/docker/daemon.json; the trust key (20.10's
            # default /etc/docker/key.json) kept private
            json.dump({"deprecated-key-path": os.path.join(self.base, "key.json")}, f)
        why = []
        for driver in ("overlay2", "vfs"):
            data = os.path.join(self.base, f"data-{driver}")
            argv = [self.args.dockerd, "--config-file", conf, "--data-root", data,
                    "--exec-root", os.path.join(self.run, "exec"),
                    "--pidfile", os.path.join(self.base, "d.pid"),
                    "-H", f"unix://{self.sock}",
                    "--bridge=none", "--iptables=false", "--ip6tables=false",
                    "--ip-masq=false", "--ip-forward=false", "--userland-proxy=false",
                    "--storage-driver", driver]
            self.daemon_pid = spawn_daemon(argv, self.env, self.log_path)
            try:
                ver = wait_ready(self, tmp, self.log_path)
            except Setup as e:
                why.append(f"{driver}: {e}")
                self.stop()
                continue
            self.storage_driver = driver
            break
        if not self.storage_driver:
            raise Setup("dockerd did not start: " + "; ".join(why))
        if why:
            self.notes.append(f"dockerd with overlay2 failed, vfs used: {why[0][:300]}")
        ch = [x for c in IMPORT_CHANGES for x in ("-c", c)]
        r = call(self.cli("import", *ch, tar, IMAGE), self.env, 120, "docker-import", tmp)
        if not r.ok():
            raise Setup(f"docker import failed ({r.why()}): {r.err.strip()}")
        self.version = f"dockerd {ver} ({self.args.dockerd}, storage {self.storage_driver}), " \
            f"docker CLI {cli_version(self.args.docker_cli)}"

    def stop(self):
        problems = super().stop()
        # containerd and the shims stop with dockerd; wait for stragglers
        if not wait_until(lambda: not procs_mentioning(self.base), 10):
            left = procs_mentioning(self.base)
            problems.append(f"left running after dockerd stopped: "
                            f"{[(p, proc_cmdline(p)) for p in left]}")
            for p in left:
                os.kill(p, signal.SIGKILL)
        reap()
        return problems


def cli_version(path):
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        return r.stdout.strip().replace("Docker version ", "")
    except (OSError, subprocess.SubprocessError) as e:
        return f"(--version failed: {e})"


# ---- helpers on engines ------------------------------------------------------------

def all_ids(eng, tmp):
    r = call(eng.cli("ps", "-aq", "--no-trunc"), eng.env, 60, f"{eng.name}-ps", tmp)
    return r.out.split() if r.ok() else None


def running_ids(eng, tmp):
    r = call(eng.cli("ps", "-q", "--no-trunc"), eng.env, 60, f"{eng.name}-psr", tmp)
    return r.out.split() if r.ok() else None


def remove_all(eng, tmp):
    ids = all_ids(eng, tmp) or []
    if ids:
        call(eng.cli(*eng.rm_args(), *ids), eng.env, 300, f"{eng.name}-rmall", tmp)
    return ids


def failure_info(r, where):
    return {"where": where, "argv": r.argv, "status": r.why(),
            "stderr": r.err.strip()[-2000:], "stdout": r.out.strip()[-500:]}


def probe(eng, tmp, timeout):
    r = call(eng.cli("run", *eng.run_args(*PROBE_ARGS)), eng.env, timeout, f"{eng.name}-probe", tmp)
    if r.ok() and r.out.strip() == PROBE_EXPECT:
        return None
    f = failure_info(r, "probe")
    f["status"] += f", stdout {r.out.strip()[:200]!r}, expected {PROBE_EXPECT!r}"
    return f


# ---- benchmark 1: run --rm -----------------------------------------------------------

def bench_run(engines, tmp, args, failed):
    alive_e = [e for e in engines if e.name not in failed]
    samples = {e.name: [] for e in engines}
    fails = {e.name: [] for e in engines}
    floor = {e.name: [] for e in engines}
    dropped = {}
    moat = next((e for e in engines if isinstance(e, Moat)), None)
    off0 = moat.log_offset() if moat else 0
    load0 = os.getloadavg()
    for i in range(args.warmup + args.count):
        for e in list(alive_e):
            r = call(e.cli("run", *e.run_args("true")), e.env, args.timeout, f"{e.name}-run", tmp)
            if not r.ok():
                fails[e.name].append(dict(failure_info(r, "run"), iteration=i - args.warmup))
                print(f"  {e.name}: run failed at iteration {i - args.warmup} ({r.why()}): "
                      f"{r.err.strip()[:300]}", file=sys.stderr)
                if len(fails[e.name]) >= MAX_FAILURES:
                    dropped[e.name] = f"dropped after {len(fails[e.name])} failures"
                    alive_e.remove(e)
                continue
            if i >= args.warmup:
                samples[e.name].append({"ms": r.ms, "cpu": r.cpu_ms})
            # the CLI's floor: one trivial request (ps lists nothing here)
            f = call(e.cli("ps", "-q"), e.env, args.timeout, f"{e.name}-ps", tmp)
            if f.ok() and i >= args.warmup:
                floor[e.name].append(f.ms)
        reap()
        if args.progress and i >= args.warmup and (i - args.warmup + 1) % 10 == 0:
            print(f"  run: {i - args.warmup + 1}/{args.count}", file=sys.stderr)
    load1 = os.getloadavg()
    res = {"load_start": load0, "load_end": load1, "engines": {}}
    for e in engines:
        d = {"version": e.version}
        if e.name in failed:
            d["failure"] = failed[e.name]
        if fails[e.name]:
            d["failures"] = fails[e.name]
        if e.name in dropped:
            d["dropped"] = dropped[e.name]
        s = samples[e.name]
        if s:
            ms = [x["ms"] for x in s]
            d["summary"] = {"n": len(ms), "median_ms": statistics.median(ms), "min_ms": min(ms),
                            "max_ms": max(ms), "mean_ms": statistics.fmean(ms),
                            "cpu_median_ms": statistics.median(x["cpu"] for x in s)}
            if floor[e.name]:
                d["summary"]["ps_median_ms"] = statistics.median(floor[e.name])
            d["samples"] = s
        # --rm must have removed everything
        if e.name not in failed and not isinstance(e, MoatCli):
            left = all_ids(e, tmp)
            if left:
                d["left_behind"] = left
                remove_all(e, tmp)
        res["engines"][e.name] = d
    if moat:
        res["moat_requests"] = moat.request_times(off0, moat.log_offset())
    return res


def ratio_line(peer, pv, mv, what, better, worse):
    q = pv / mv
    t = rb.times_phrase(q, better, worse)
    return f"moat is {t} than {peer} ({what} {peer}/moat = {q:.2f})"


def print_run(res, args):
    print(f"\n== run: `CLI run --rm --network none {IMAGE} true`   N={args.count}, "
          f"{args.warmup} warm-up each, interleaved")
    print(f"   load average start {rb.fmt_load(res['load_start'])}, end {rb.fmt_load(res['load_end'])}")
    hdr = (f"   {'engine':<9} {'median ms (min-max)':<28} {'mean ms':>8} {'CLI CPU ms':>11} "
           f"{'failed':>7} {'ps -q ms':>9}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    E = res["engines"]
    for name, d in E.items():
        s = d.get("summary")
        nf = len(d.get("failures", []))
        if not s:
            print(f"   {name:<9} {'FAILED' if 'failure' in d or nf else 'no samples'}")
            continue
        rng = f"{s['median_ms']:.1f} ({s['min_ms']:.1f}-{s['max_ms']:.1f})"
        ps = f"{s['ps_median_ms']:.1f}" if "ps_median_ms" in s else "-"
        print(f"   {name:<9} {rng:<28} {s['mean_ms']:>8.1f} {s['cpu_median_ms']:>11.1f} {nf:>7} {ps:>9}")
    print("   (CLI CPU ms: user+sys of the CLI process itself; ps -q ms: median of `CLI ps -q`,"
          " timed right after each run: the CLI's floor for one request)")
    m = E.get("moat", {}).get("summary")
    if m:
        for name, d in E.items():
            s = d.get("summary")
            if name in MOAT_FRONTS or not s:
                continue
            print("   " + ratio_line(name, s["median_ms"], m["median_ms"], "median", "faster", "slower"))
    p = E.get("podman", {}).get("summary")
    for front in MOAT_FRONTS:
        f = E.get(front, {}).get("summary")
        if p and f:
            q = p["median_ms"] / f["median_ms"]
            print(f"   goal ({MOAT_FRONTS[front]}): >= {GOAL_RUN_VS_PODMAN:.0f}x faster than podman: "
                  f"{'met' if q >= GOAL_RUN_VS_PODMAN else 'NOT met'} ({q:.2f}x)")
    mc = E.get("moat-cli", {}).get("summary")
    if mc and m:
        print(f"   moat-cli/moat(docker CLI) median = {mc['median_ms'] / m['median_ms']:.2f}")
    req = res.get("moat_requests")
    if req:
        print("   moat daemon, per request (its debug log): " + "; ".join(
            f"{k} {v['median_ms']:g} ms (n={v['n']}, max {v['max_ms']})"
            for k, v in sorted(req.items(), key=lambda kv: -kv[1]["n"])))
    print_failures(E)


def print_failures(E):
    for name, d in E.items():
        items = ([d["failure"]] if "failure" in d else []) + d.get("failures", [])
        if d.get("dropped"):
            print(f"   {name}: {d['dropped']}")
        for f in items[:3]:
            it = f" at iteration {f['iteration']}" if "iteration" in f else ""
            print(f"   {name} FAILED ({f['where']}{it}): {f['status']}")
            print(f"     command: {' '.join(f['argv'])}")
            for line in (f["stderr"] or "(no stderr)").splitlines()[-8:]:
                print(f"     | {line}")
        if len(items) > 3:
            print(f"   {name}: {len(items) - 3} more failure(s), see --json")
        if d.get("left_behind"):
            print(f"   {name}: {len(d['left_behind'])} container(s) left after `run --rm` (removed)")


# ---- benchmark 2: many detached containers ----------------------------------------------

def start_many(eng, n, parallel, tmp, timeout, tag):
    """Start n detached sleepers; returns (wall s, ids, failures)."""
    argv = eng.cli("run", *eng.run_args("sleep", "1000", rm=False, detach=True))
    ids, fails = [], []
    lock = threading.Lock()

    def one(i):
        r = call(argv, eng.env, timeout, f"{eng.name}-{tag}-{i}", tmp)
        with lock:
            if r.ok() and r.out.strip():
                ids.append(r.out.strip().splitlines()[-1])
            else:
                fails.append(failure_info(r, f"{tag} start {i}"))
    t0 = time.perf_counter()
    if parallel <= 1:
        for i in range(n):
            one(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            list(ex.map(one, range(n)))
    return time.perf_counter() - t0, ids, fails


def measure_memory(eng):
    mons = eng.monitors()
    m = [x for x in (mem_kib(p) for p in mons) if x]
    dm = [x for x in (mem_kib(p) for p in eng.daemon_pids()) if x]
    return {"monitors": len(mons),
            "monitor_pss_kib": [x[0] for x in m], "monitor_rss_kib": [x[1] for x in m],
            "daemon_rss_kib": sum(x[1] for x in dm) if dm else None,
            "daemon_pss_kib": sum(x[0] for x in dm) if dm else None,
            "daemon_procs": len(dm)}


def remove_many(eng, ids, tmp, timeout, tag):
    r = call(eng.cli(*eng.rm_args(), *ids), eng.env, timeout, f"{eng.name}-{tag}-rm", tmp)
    t = r.ms / 1000.0
    # monitors exit after the container; count what is left after 10 s
    wait_until(lambda: not eng.monitors(), 10)
    left = all_ids(eng, tmp)
    return t, r, left, len(eng.monitors())


def bench_detached(engines, tmp, args, failed):
    es = [e for e in engines if e.detached and e.name not in failed]
    n, par = args.containers, args.parallel
    rounds = []
    problems = {e.name: [] for e in es}
    base_mem = {e.name: measure_memory(e) for e in es}
    load0 = os.getloadavg()
    for rnd in range(args.rounds):
        row = {e.name: {} for e in es}
        for mode, p in (("seq", 1), ("conc", par)):
            for e in es:
                if len(problems[e.name]) >= MAX_FAILURES:
                    continue
                d = row[e.name]
                t, ids, fails = start_many(e, n, p, tmp, args.timeout, f"r{rnd}{mode}")
                d[f"{mode}_start_s"] = t
                d[f"{mode}_started"] = len(ids)
                problems[e.name] += fails
                for f in fails[:2]:
                    print(f"  {e.name}: start failed ({f['status']}): {f['stderr'][:300]}",
                          file=sys.stderr)
                run_ids = running_ids(e, tmp) or []
                d[f"{mode}_running"] = len(set(ids) & {i[:64] for i in run_ids}) if ids else 0
                if mode == "seq":
                    time.sleep(args.settle)
                    d["mem"] = measure_memory(e)
                if not (ids or run_ids):
                    continue
                tr, rr, left, mons_left = remove_many(e, ids or run_ids, tmp,
                                                      max(args.timeout, 300), f"r{rnd}{mode}")
                d[f"{mode}_rm_s"] = tr
                if not rr.ok():
                    problems[e.name].append(failure_info(rr, f"{mode} rm -f"))
                if left:
                    problems[e.name].append({"where": f"{mode} rm -f", "argv": rr.argv,
                                             "status": f"{len(left)} container(s) still listed",
                                             "stderr": rr.err.strip()[-1000:]})
                    remove_all(e, tmp)
                if mons_left:
                    problems[e.name].append({"where": f"{mode} rm -f", "argv": rr.argv,
                                             "status": f"{mons_left} monitor(s) still running 10 s "
                                                       f"after rm -f", "stderr": ""})
                reap()
                if args.progress:
                    print(f"  detached round {rnd + 1}/{args.rounds} {e.name} {mode}: start "
                          f"{t:.2f} s ({len(ids)}/{n}), rm {tr:.2f} s", file=sys.stderr)
        rounds.append(row)
    load1 = os.getloadavg()
    res = {"load_start": load0, "load_end": load1, "containers": n, "parallel": par,
           "rounds": rounds, "engines": {}}
    for e in es:
        rs = [r[e.name] for r in rounds if r[e.name]]
        d = {"version": e.version, "baseline": base_mem[e.name]}
        if problems[e.name]:
            d["failures"] = problems[e.name]
        s = {}
        for k in ("seq_start_s", "conc_start_s", "seq_rm_s", "conc_rm_s"):
            v = [r[k] for r in rs if k in r]
            if v:
                s[k] = statistics.median(v)
        for k in ("seq_started", "conc_started", "seq_running", "conc_running"):
            v = [r[k] for r in rs if k in r]
            if v:
                s[k] = min(v)
        mems = [r["mem"] for r in rs if "mem" in r]
        if mems:
            pss = [x for m in mems for x in m["monitor_pss_kib"]]
            rss = [x for m in mems for x in m["monitor_rss_kib"]]
            s["monitors"] = min(m["monitors"] for m in mems)
            if pss:
                s["monitor_pss_median_kib"] = statistics.median(pss)
                s["monitor_pss_max_kib"] = max(pss)
                s["monitor_rss_median_kib"] = statistics.median(rss)
                s["monitor_pss_total_kib"] = statistics.median(sum(m["monitor_pss_kib"]) for m in mems)
            dr = [m["daemon_rss_kib"] for m in mems if m["daemon_rss_kib"] is not None]
            if dr:
                s["daemon_rss_kib"] = statistics.median(dr)
        d["summary"] = s
        res["engines"][e.name] = d
    for e in engines:
        if e.name in failed and e.detached:
            res["engines"][e.name] = {"version": e.version, "failure": failed[e.name]}
    return res


def fmt_s(v):
    return f"{v:.2f}" if v is not None else "-"


def print_detached(res, args):
    n, par = res["containers"], res["parallel"]
    print(f"\n== detached: {n} x `CLI run -d --network none {IMAGE} sleep 1000`, "
          f"{args.rounds} round(s), medians over rounds")
    print(f"   load average start {rb.fmt_load(res['load_start'])}, end {rb.fmt_load(res['load_end'])}")
    hdr = (f"   {'engine':<8} {'start seq s':>11} {f'start {par}-par s':>13} {'rm -f s':>13} "
           f"{'monitors':>8} {'monitor PSS MiB':>17} {'RSS MiB':>8} {'daemon RSS MiB':>16}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    E = res["engines"]
    for name, d in E.items():
        s = d.get("summary")
        if not s:
            print(f"   {name:<8} FAILED")
            continue
        rm = f"{fmt_s(s.get('seq_rm_s'))}/{fmt_s(s.get('conc_rm_s'))}"
        pss = (f"{s['monitor_pss_median_kib'] / MiB:.3f} (max {s['monitor_pss_max_kib'] / MiB:.2f})"
               if "monitor_pss_median_kib" in s else "-")
        mrss = f"{s['monitor_rss_median_kib'] / MiB:.2f}" if "monitor_rss_median_kib" in s else "-"
        b = d["baseline"].get("daemon_rss_kib")
        dr = (f"{b / MiB:.1f} -> {s['daemon_rss_kib'] / MiB:.1f}" if "daemon_rss_kib" in s and b
              else "no daemon")
        print(f"   {name:<8} {fmt_s(s.get('seq_start_s')):>11} {fmt_s(s.get('conc_start_s')):>13} "
              f"{rm:>13} {s.get('monitors', 0):>8} {pss:>17} {mrss:>8} {dr:>16}")
        short = [f"{k} {s[k]}/{n}" for k in ("seq_started", "seq_running", "conc_started",
                                             "conc_running") if k in s and s[k] != n]
        if short:
            print(f"   {name}: fewer than {n}: " + ", ".join(short))
    print("   (rm -f: one `CLI rm -f` of all the ids, after the sequential / the parallel start;"
          " monitor PSS: median per process (max); daemon RSS: before the first container ->"
          " with the containers running; docker: dockerd + containerd)")
    m = E.get("moat", {}).get("summary")
    if m:
        for name, d in E.items():
            s = d.get("summary")
            if name in MOAT_FRONTS or not s:
                continue
            parts = []
            for k, what in (("seq_start_s", "sequential start"), ("conc_start_s", f"{par}-parallel start"),
                            ("seq_rm_s", "rm -f")):
                if k in s and k in m and m[k] > 0:
                    parts.append(ratio_line(name, s[k], m[k], what, "faster", "slower"))
            if "monitor_pss_median_kib" in s and m.get("monitor_pss_median_kib"):
                parts.append(ratio_line(name, s["monitor_pss_median_kib"], m["monitor_pss_median_kib"],
                                        "monitor PSS", "smaller", "bigger"))
            for p in parts:
                print("   " + p)
    for front in MOAT_FRONTS:
        f = E.get(front, {}).get("summary")
        if f and "seq_start_s" in f:
            lim = GOAL_START_S * n / 50
            print(f"   goal ({MOAT_FRONTS[front]}): 50 started in under {GOAL_START_S:g} s (here {n}: "
                  f"{lim:.2f} s): sequential {'met' if f['seq_start_s'] < lim else 'NOT met'} "
                  f"({f['seq_start_s']:.2f} s)"
                  + (f", {par}-parallel {'met' if f['conc_start_s'] < lim else 'NOT met'} "
                     f"({f['conc_start_s']:.2f} s)" if "conc_start_s" in f else ""))
    if m:
        if "monitor_pss_median_kib" in m:
            v = m["monitor_pss_median_kib"] / MiB
            print(f"   goal: monitor PSS <= {GOAL_PSS_MIB} MiB: "
                  f"{'met' if v <= GOAL_PSS_MIB else 'NOT met'} ({v:.3f} MiB)")
    print_failures(E)


# ---- profile: where moat's `run --rm` time goes -----------------------------------------

PERF_EVENTS = ["sched:sched_process_exec", "sched:sched_process_fork", "sched:sched_process_exit",
               "syscalls:sys_enter_accept4"] + [
    f"syscalls:sys_{d}_{c}" for c in ("fsync", "fdatasync", "syncfs") for d in ("enter", "exit")]
PERF_LINE = re.compile(r"\s*(.*?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)")
PHASES = [
    ("cli", "CLI start-up, until the daemon accepts its first connection"),
    ("to_monitor", "daemon: create + start until the zygote forks the monitor"),
    ("to_program", "monitor fork until the container's program is exec'd (create, attach, start op)"),
    ("program", "the container's program (/bin/true) runs"),
    ("exit", "program exit until the monitor exits"),
    ("tail", "monitor exit until the CLI exits (remove, wait answer)"),
]


def profile_moat(moat, tmp, args):
    """N `docker run --rm` under `perf record -a` of process and sync
    tracepoints (low overhead, unlike strace); each run is cut into phases
    by the exec/fork/exit events of the daemon's descendants."""
    perf = shutil.which("perf")
    if not perf:
        return {"error": "perf not found (apt-get install linux-perf)"}
    data = os.path.join(tmp, "perf.data")
    argv = [perf, "record", "-q", "-a", "-o", data]
    for ev in PERF_EVENTS:
        argv += ["-e", ev]
    errp = os.path.join(tmp, "perf.err")
    pid = spawn_daemon(argv, dict(os.environ), errp)
    time.sleep(1.0)
    clis, fails = [], []
    try:
        for i in range(args.profile):
            r = call(moat.cli("run", *moat.run_args("true")), moat.env, args.timeout, "prof", tmp)
            if not r.ok():
                fails.append(failure_info(r, "profile run"))
                if len(fails) >= MAX_FAILURES:
                    break
                continue
            clis.append(r.pid)
            time.sleep(0.1)
    finally:
        time.sleep(0.3)
        os.kill(pid, signal.SIGINT)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    r = subprocess.run([perf, "script", "-i", data, "-F", "comm,pid,tid,time,event,trace"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        with open(errp, errors="replace") as f:
            return {"error": f"perf script failed: {r.stderr.strip()[:300]} {f.read()[:300]}"}
    res = analyse_perf(r.stdout, moat.daemon_pid, clis)
    if fails:
        res["failures"] = fails
    return res


def analyse_perf(text, daemon, clis):
    ours = {daemon}           # the daemon's threads and descendants
    evs = []
    for line in text.splitlines():
        m = PERF_LINE.match(line)
        if not m:
            continue
        comm, tgid, tid, t, ev, rest = m.groups()
        tgid, tid, t = int(tgid), int(tid), float(t) * 1000.0
        ev = ev.split(":")[1]
        if ev == "sched_process_fork" and tgid in ours:
            ours.add(int(re.search(r"child_pid=(\d+)", rest).group(1)))
        if tgid in ours or tgid in clis:
            evs.append((t, comm, tgid, tid, ev, rest))
    runs = []
    for cli in clis:
        t0 = next((e[0] for e in evs if e[2] == cli and e[4] == "sched_process_exec"), None)
        t9 = max((e[0] for e in evs if e[2] == cli and e[4] == "sched_process_exit"), default=None)
        if t0 is None or t9 is None:
            continue
        w = [e for e in evs if t0 <= e[0] <= t9 and e[2] != cli]
        run = {"total": t9 - t0}
        acc = next((e[0] for e in w if e[4] == "sys_enter_accept4" and e[2] == daemon), None)
        execs = [e for e in w if e[4] == "sched_process_exec"]
        prog = next((e for e in execs if "filename=/bin/true " in e[5]), None)
        # the zygote forks the monitor (src/monitor/main.c names it moat-zygote)
        mon = next((e for e in w if e[4] == "sched_process_fork" and e[1] == "moat-zygote"), None)

        def exit_of(p):
            return next((e[0] for e in w if e[4] == "sched_process_exit" and e[3] == p), None)
        if acc is not None:
            run["cli"] = acc - t0
        if mon:
            mpid = int(re.search(r"child_pid=(\d+)", mon[5]).group(1))
            tf = mon[0]
            tx = exit_of(mpid)
            if acc is not None:
                run["to_monitor"] = tf - acc
            if prog:
                run["to_program"] = prog[0] - tf
                pe = exit_of(prog[2])
                if pe is not None:
                    run["program"] = pe - prog[0]
                    if tx is not None:
                        run["exit"] = tx - pe
            if tx is not None:
                run["tail"] = t9 - tx
        # every program exec'd by the daemon's descendants: exec -> next exec or exit
        progs = {}
        for e in execs:
            name = re.search(r"filename=(\S+)", e[5]).group(1)
            nxt = [x[0] for x in w if x[3] == e[3] and x[0] > e[0] and
                   x[4] in ("sched_process_exec", "sched_process_exit")]
            progs.setdefault(os.path.basename(name), []).append(min(nxt) - e[0] if nxt else None)
        run["programs"] = progs
        syncs = {}
        open_calls = {}
        for e in w:
            if e[4].startswith("sys_enter_") and "sync" in e[4]:
                open_calls[e[3]] = (e[0], e[4][10:], e[1])
            elif e[4].startswith("sys_exit_") and e[3] in open_calls:
                t, name, comm = open_calls.pop(e[3])
                k = f"{name} ({re.sub(r'[0-9]+$', '', comm)})"
                syncs.setdefault(k, []).append(e[0] - t)
        run["syncs"] = syncs
        runs.append(run)
    if not runs:
        return {"error": "no run found in the perf data"}
    out = {"n": len(runs), "phases": {}, "programs": {}, "syncs": {}}
    for k, _ in PHASES + [("total", "")]:
        v = [r[k] for r in runs if k in r]
        if v:
            out["phases"][k] = statistics.median(v)
    names = {n for r in runs for n in r["programs"]}
    for n in names:
        per = [r["programs"].get(n, []) for r in runs]
        life = [x for p in per for x in p if x is not None]
        out["programs"][n] = {"per_run": statistics.median(len(p) for p in per),
                              "median_ms": statistics.median(life) if life else None}
    keys = {k for r in runs for k in r["syncs"]}
    for k in keys:
        per = [r["syncs"].get(k, []) for r in runs]
        out["syncs"][k] = {"per_run": statistics.median(len(p) for p in per),
                           "ms_per_run": statistics.median(sum(p) for p in per)}
    out["runs"] = runs
    return out


def print_profile(p):
    print(f"\n== profile of moat's `docker run --rm`: perf tracepoints (exec, fork, exit, sync "
          f"calls), medians of {p.get('n', 0)} runs")
    if "error" in p:
        print(f"   profile failed: {p['error']}")
        for f in p.get("failures", [])[:1]:
            print(f"   first failed run: {f['status']}: {f['stderr'][:300]}")
        return
    tot = p["phases"].get("total")
    for k, what in PHASES:
        v = p["phases"].get(k)
        if v is not None:
            share = f"{100 * v / tot:4.0f} %" if tot else ""
            print(f"   {v:7.1f} ms {share}  {what}")
    if tot:
        print(f"   {tot:7.1f} ms         total (CLI exec to CLI exit)")
    print("   programs exec'd by the daemon and its children, per run (exec until the next exec or exit):")
    for n, d in sorted(p["programs"].items(), key=lambda kv: -(kv[1]["median_ms"] or 0)):
        ms = f"{d['median_ms']:.1f} ms" if d["median_ms"] is not None else "-"
        print(f"     {n:<22} x{d['per_run']:g}  {ms}")
    n = sum(d["per_run"] for d in p["syncs"].values())
    ms = sum(d["ms_per_run"] for d in p["syncs"].values())
    print(f"   sync calls per run: {n:g}, {ms:.1f} ms in all: " + "; ".join(
        f"{k} x{d['per_run']:g} {d['ms_per_run']:.1f} ms" for k, d in sorted(p["syncs"].items())))
    if p.get("failures"):
        f = p["failures"][0]
        print(f"   {len(p['failures'])} run(s) failed and are not in the profile; the first: "
              f"{f['status']}: {f['stderr'].splitlines()[0] if f['stderr'] else ''}")


# ---- main -------------------------------------------------------------------------

def die(msg):
    print(f"engine.py: {msg}", file=sys.stderr)
    sys.exit(2)


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def resolve(path):
    return rb.resolve(path) if path else None


def main():
    ap = argparse.ArgumentParser(description="engine benchmark: moat daemon vs podman, dockerd")
    ap.add_argument("--count", type=int, default=30, help="measured `run --rm` per engine (30)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured `run --rm` per engine first (3)")
    ap.add_argument("--containers", type=int, default=50, help="detached containers per round (50)")
    ap.add_argument("--parallel", type=int, default=8, help="CLI calls at a time in the parallel start (8)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the detached benchmark (3)")
    ap.add_argument("--benchmarks", default="run,detached", help="comma list of: run, detached")
    ap.add_argument("--engines", default="moat,moat-cli,podman,docker",
                    help="comma list of: moat, moat-cli, podman, docker")
    ap.add_argument("--moat", default=os.path.join(REPO, "build/src/cli/moat"),
                    help="the moat binary (default build/src/cli/moat in the repo; its daemon "
                         "finds moat-monitor in the same build dir)")
    ap.add_argument("--docker-cli", default="docker", help="docker CLI (for moat and dockerd)")
    ap.add_argument("--dockerd", default="dockerd")
    ap.add_argument("--podman", default="podman")
    ap.add_argument("--podman-runtime", default="runc",
                    help="podman's OCI runtime (runc; crun 1.8 needs --cgroup-hybrid on this host)")
    ap.add_argument("--cgroup-hybrid", action="store_true",
                    help="call bench/cgroup-hybrid.sh up/down around the run (changes the host's "
                         "cgroup layout for everyone; needed for crun)")
    ap.add_argument("--no-moat-debug", dest="moat_debug", action="store_false",
                    help="start moat's daemon without --debug (no per-request times)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after the benchmarks, N moat runs under `perf record` cut into phases (0: off)")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds between the last start and the memory reading (1)")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--timeout", type=int, default=60, help="seconds before one CLI call is killed")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after cleaning up")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()

    benches = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    wanted = [x.strip() for x in args.engines.split(",") if x.strip()]
    for b in benches:
        if b not in ("run", "detached"):
            die(f"unknown benchmark '{b}'")
    for w in wanted:
        if w not in ("moat", "moat-cli", "podman", "docker"):
            die(f"unknown engine '{w}'")
    if args.count < 1 or args.warmup < 0 or args.containers < 1 or args.parallel < 1 or args.rounds < 1:
        die("--count, --containers, --parallel, --rounds must be >= 1, --warmup >= 0")
    if os.geteuid() != 0:
        die("must run as root")
    busybox = os.path.realpath(args.busybox)
    if not os.path.isfile(busybox):
        die(f"busybox '{args.busybox}' not found (apt-get install busybox-static)")

    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    rb.set_subreaper()

    tmp = tempfile.mkdtemp(prefix="moat-bench-engine-", dir=args.tmpdir)
    work = os.path.join(tmp, "io")
    os.mkdir(work)
    # every engine's runtime state (moat's and dockerd's exec roots, podman's
    # runroot and tmpdir) on one tmpfs, like /run where they are deployed
    args.runfs = os.path.join(tmp, "run")
    os.mkdir(args.runfs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=512m", "moat-bench-run", args.runfs],
                   check=True, capture_output=True)
    global capture_dir
    capture_dir = os.path.join(args.runfs, "capture")
    os.mkdir(capture_dir, 0o700)
    run_containerd_existed = os.path.lexists("/run/containerd")
    hy = argparse.Namespace(no_cgroup_hybrid=not args.cgroup_hybrid)
    notes, skipped, failed, engines, results = [], {}, {}, [], {}
    load_start = os.getloadavg()
    started = time.time()
    rc = 0
    try:
        moat = None
        for name in wanted:
            base = os.path.join(tmp, name)
            if name == "moat":
                p = resolve(args.moat)
                if not p or not resolve(args.docker_cli):
                    skipped[name] = f"'{args.moat}' or '{args.docker_cli}' not found"
                    continue
                args.moat = p
                os.mkdir(base)
                moat = Moat(base, args)
                engines.append(moat)
            elif name == "moat-cli":
                continue        # after moat's daemon is up
            elif name == "podman":
                if not resolve(args.podman) or not resolve(args.podman_runtime):
                    skipped[name] = f"'{args.podman}' or '{args.podman_runtime}' not found"
                    continue
                args.podman = resolve(args.podman)
                os.mkdir(base)
                engines.append(Podman(base, args))
            elif name == "docker":
                if not resolve(args.dockerd) or not resolve(args.docker_cli):
                    skipped[name] = f"'{args.dockerd}' or '{args.docker_cli}' not found"
                    continue
                args.docker_cli = resolve(args.docker_cli)
                args.dockerd = resolve(args.dockerd)
                os.mkdir(base)
                engines.append(Docker(base, args))
        if moat:
            moat.docker = args.docker_cli = resolve(args.docker_cli)
        tar = make_rootfs_tar(tmp, busybox)
        rb.hybrid("up", hy, notes)

        for e in list(engines):
            try:
                e.start(tar, work)
            except Setup as ex:
                failed[e.name] = {"where": "setup", "argv": [], "status": "", "stderr": str(ex)}
                print(f"  {e.name}: setup failed: {str(ex)[:500]}", file=sys.stderr)
                continue
            notes += [f"{e.name}: {n}" for n in e.notes]
        if "moat-cli" in wanted:
            if moat and "moat" not in failed:
                mc = MoatCli(os.path.join(tmp, "moat"), args, moat)
                why = mc.detect(work)
                if why:
                    skipped["moat-cli"] = why
                else:
                    engines.append(mc)
            else:
                skipped["moat-cli"] = "moat's daemon is not running"

        print(f"moat engine benchmark: {platform.node()}, kernel {platform.release()}, "
              f"{os.cpu_count()} CPUs")
        print(f"load average at start: {rb.fmt_load(load_start)}")
        for e in engines:
            print(f"  {e.name:<8} {e.version or '(not started)'}")
        for name, why in skipped.items():
            print(f"  {name:<8} SKIPPED: {why}")
        for n in notes:
            print(f"  note: {n}")
        if not engines:
            die("no engine to measure")

        for e in engines:
            if e.name in failed:
                continue
            f = probe(e, work, args.timeout)
            if f:
                failed[e.name] = f
                print(f"  {e.name}: FAILED the probe container; not measured", file=sys.stderr)
        reap()
        if "run" in benches:
            results["run"] = bench_run(engines, work, args, failed)
            print_run(results["run"], args)
        if "detached" in benches:
            results["detached"] = bench_detached(engines, work, args, failed)
            print_detached(results["detached"], args)
        m = next((e for e in engines if isinstance(e, Moat)), None)
        if args.profile and m and "moat" not in failed:
            results["profile"] = profile_moat(m, work, args)
            print_profile(results["profile"])
    finally:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        problems = cleanup(engines, work, tmp, run_containerd_existed, args)
        rb.hybrid("down", hy, notes)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    for p in problems:
        print(f"engine.py: cleanup: {p}", file=sys.stderr)

    load_end = os.getloadavg()
    print(f"\nload average at end: {rb.fmt_load(load_end)} (start {rb.fmt_load(load_start)}); "
          f"{time.time() - started:.1f} s total")
    for n in notes:
        if "failed" in n:
            print(f"note: {n}")
    if "moat" in skipped or "moat" in failed:
        rc = 1
    if args.json:
        doc = {"host": {"node": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count()},
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
               "args": vars(args), "load_start": load_start, "load_end": load_end,
               "engines": {e.name: e.version for e in engines}, "skipped": skipped,
               "notes": notes, "cleanup_problems": problems, "results": results}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return rc


def cleanup(engines, work, tmp, run_containerd_existed, args):
    problems = []
    for e in engines:
        if isinstance(e, MoatCli):
            continue
        try:
            if e.name == "podman" or e.daemon_pids():
                left = remove_all(e, work)
                if left:
                    print(f"engine.py: removed {len(left)} leftover {e.name} container(s)",
                          file=sys.stderr)
        except OSError as ex:
            problems.append(f"{e.name}: removing containers: {ex}")
        try:
            problems += e.stop()
        except OSError as ex:
            problems.append(f"{e.name}: stopping: {ex}")
    left = procs_mentioning(tmp)
    if left:
        problems.append(f"left running: {[(p, proc_cmdline(p)) for p in left]}; killed")
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        wait_until(lambda: not procs_mentioning(tmp), 10)
    reap()
    runfs = getattr(args, "runfs", None)
    ms = [m for m in mounts_under(tmp) if m != runfs]
    for mp in sorted(ms, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
    if runfs:
        subprocess.run(["umount", "-l", runfs], capture_output=True, timeout=30)
    if ms:
        problems.append(f"{len(ms)} mount(s) left under {tmp} (unmounted): {ms[:5]}")
    if not run_containerd_existed:
        # dockerd's containerd makes /run/containerd/s for its shims' sockets
        for d in ("/run/containerd/s", "/run/containerd"):
            try:
                os.rmdir(d)
            except OSError:
                pass
    if args.keep:
        print(f"engine.py: kept {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return problems


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("engine.py: interrupted (cleaned up)", file=sys.stderr)
        sys.exit(130)
