#!/usr/bin/python3
"""Sequential container-lifecycle benchmark: moat-runtime next to crun and runc.

Each runtime runs the same minimal busybox bundle (/bin/true) N times, the
runtimes interleaved iteration by iteration (moat, crun, runc, moat, ...) so
that load changes on the shared VM hit all of them alike, in two modes:

  run    RT --root R run --bundle B ID
  cycle  RT --root R create --bundle B --pid-file P ID; RT --root R start ID;
         wait for the container init to exit (pidfd); RT --root R delete ID

Every runtime invocation goes through a tiny C launcher (compiled at start
into the temp dir) that forks, execs the runtime and reports the wall time
from fork to wait4() and the child's rusage; a container's time is the sum
over its invocations (plus, in cycle mode, the wait for the init to exit).
Peak RSS is the largest ru_maxrss of any runtime invocation, i.e. the runtime
process and the children it reaped itself (in `run` mode that includes the
container).  The harness is a child subreaper, so a container left behind by
`create` is reparented to it and reaped here.  Before measuring, each runtime
must run a probe container that prints its pid and hostname: a runtime that
exits 0 without running anything is reported, not timed.

Nothing here asserts a timing: a missing peer is reported and skipped, a
failing runtime is reported with its stderr and dropped from that mode.
Standard library only; see bench/README.md.
"""

import argparse
import ctypes
import gc
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PR_SET_CHILD_SUBREAPER = 36
MiB = 1024.0  # ru_maxrss is in KiB

# `runc spec` (1.1.5) with terminal false, args ["/bin/true"], read-only root.
# No cgroupsPath: each runtime picks its default.
CONFIG = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/true"],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm",
        ],
        "cwd": "/",
        "capabilities": {
            k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for k in ("bounding", "effective", "permitted", "ambient")
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
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
                       ("pid", "network", "ipc", "uts", "mount")],
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

MODES = {
    "run": "RT --root R run --bundle B ID",
    "cycle": "create --pid-file + start + wait(pidfd) + delete",
}
PHASES = ("create", "start", "wait", "delete")


class RuntimeFailure(Exception):
    def __init__(self, phase, argv, status, stderr):
        super().__init__(phase)
        self.info = {"phase": phase, "argv": argv, "status": status,
                     "stderr": stderr}


class Runtime:
    def __init__(self, name, path, root, errfile):
        self.name = name
        self.path = path
        self.root = root
        self.errfile = errfile
        self.version = None
        self.live = set()      # ids created and not yet deleted
        self.results = {}      # mode -> dict

    def argv(self, *args):
        return [self.path, "--root", self.root, *args]


def die(msg):
    print(f"runtime.py: {msg}", file=sys.stderr)
    sys.exit(2)


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), ctypes.c_ulong(0),
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        e = ctypes.get_errno()
        die(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(e)}")


def reap_strays():
    """Reap whatever got reparented to us (we are a subreaper)."""
    n = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return n
        if pid == 0:
            return n
        n += 1


# The kernel's ru_maxrss of a child includes the high-water RSS of the memory
# it had before exec: for a child of this Python process that is Python's own
# ~14 MiB, which would swamp a 3 MiB runtime.  So each runtime is started by a
# tiny static C launcher: it forks (a small mm), execs the runtime, times
# fork-to-wait4 with CLOCK_MONOTONIC and writes status and rusage to fd 3.
LAUNCHER_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
    if (child > 0)
        kill(child, SIGKILL);
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
    struct timespec t0, t1;
    struct rusage ru;
    int st;

    if (argc < 3 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
        return 125;
    sigaction(SIGALRM, &sa, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    child = fork();
    if (child == 0) {
        execv(argv[2], argv + 2);
        _exit(127);
    }
    if (child < 0)
        return 126;
    alarm((unsigned)atoi(argv[1]));
    while (wait4(child, &st, 0, &ru) < 0)
        if (errno != EINTR)
            return 126;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);
    dprintf(3, "%d %lld %ld %ld %ld %d\n", st,
            (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
            ru.ru_maxrss,
            (long)ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec,
            (int)timed_out);
    return 0;
}
"""

LAUNCHER = None     # path of the compiled launcher, or None: spawn directly


class Usage:
    __slots__ = ("ru_maxrss", "ru_utime", "ru_stime")

    def __init__(self, maxrss, utime, stime):
        self.ru_maxrss, self.ru_utime, self.ru_stime = maxrss, utime, stime


def build_launcher(tmp):
    src = os.path.join(tmp, "launcher.c")
    exe = os.path.join(tmp, "launcher")
    with open(src, "w") as f:
        f.write(LAUNCHER_C)
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler"
    err = ""
    for extra in (["-static"], []):
        r = subprocess.run([cc, "-O2", *extra, "-o", exe, src],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return exe, None
        err = r.stderr.strip()
    return None, f"cc failed: {err}"


def stdio_actions(errfile):
    return [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
         0o600),
    ]


SIGDEF = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM)


def spawn(argv, errfile, timeout):
    """Run argv, return (wait status or None on timeout, usage, elapsed ns)."""
    if LAUNCHER is None:
        return spawn_direct(argv, errfile, timeout)
    r, w = os.pipe()
    if w <= 3:
        w2 = os.dup(w)
        os.close(w)
        w = w2
    try:
        pid = os.posix_spawn(LAUNCHER, [LAUNCHER, str(timeout), *argv],
                             os.environ,
                             file_actions=stdio_actions(errfile) +
                             [(os.POSIX_SPAWN_DUP2, w, 3)],
                             setsigmask=(), setsigdef=SIGDEF)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        line = f.read().decode()
    _, lst, _ = os.wait4(pid, 0)
    try:
        st, ns, rss, ut, stt, to = (int(x) for x in line.split())
    except ValueError:
        raise OSError(f"launcher failed ({describe_status(lst)})") from None
    return (None if to else st), Usage(rss, ut / 1e6, stt / 1e6), ns


def spawn_direct(argv, errfile, timeout):
    """Fallback without the launcher: ru_maxrss then has Python's RSS as floor."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=stdio_actions(errfile),
                         setsigmask=(), setsigdef=SIGDEF)
    pidfd = os.pidfd_open(pid)
    try:
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if not p.poll(timeout * 1000):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            _, status, ru = os.wait4(pid, 0)
            return None, ru, time.perf_counter_ns() - t0
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
    finally:
        os.close(pidfd)
    return status, ru, t1 - t0


def read_err(errfile, limit=4000):
    try:
        with open(errfile, errors="replace") as f:
            s = f.read()
    except OSError:
        return ""
    return s if len(s) <= limit else s[:limit] + "\n[...]"


def describe_status(status):
    if status is None:
        return "timed out (killed)"
    if os.WIFEXITED(status):
        return f"exit {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"status {status:#x}"


def invoke(rt, phase, args, timeout):
    argv = rt.argv(*args)
    status, ru, ns = spawn(argv, rt.errfile, timeout)
    if status is None or not os.WIFEXITED(status) or os.WEXITSTATUS(status):
        raise RuntimeFailure(phase, argv, describe_status(status),
                             read_err(rt.errfile))
    return ru, ns


def cpu_ms(ru):
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def one_run(rt, cid, bundle, timeout):
    rt.live.add(cid)
    ru, ns = invoke(rt, "run", ["run", "--bundle", bundle, cid], timeout)
    rt.live.discard(cid)
    return {"ms": ns / 1e6, "rss": ru.ru_maxrss, "cpu": cpu_ms(ru)}


def container_pid(rt, cid, pidfile, timeout):
    try:
        with open(pidfile) as f:
            return int(f.read().strip()), "pid-file"
    except (OSError, ValueError):
        pass
    # fall back to `state` (costs one more invocation, counted in "create")
    argv = rt.argv("state", cid)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    try:
        return int(json.loads(r.stdout)["pid"]), "state"
    except (ValueError, KeyError, TypeError):
        raise RuntimeFailure("state", argv,
                             f"exit {r.returncode}, no pid in the pid file nor "
                             f"in stdout {r.stdout.strip()[:200]!r}",
                             r.stderr) from None


def one_cycle(rt, cid, bundle, pidfile, timeout):
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass
    rt.live.add(cid)
    ph = {}
    rss = 0
    cpu = 0.0
    ru, ns = invoke(rt, "create",
                    ["create", "--bundle", bundle, "--pid-file", pidfile, cid],
                    timeout)
    t = time.perf_counter_ns()
    pid, how = container_pid(rt, cid, pidfile, timeout)
    pidfd = os.pidfd_open(pid)
    ns += time.perf_counter_ns() - t
    ph["create"], rss, cpu = ns / 1e6, max(rss, ru.ru_maxrss), cpu + cpu_ms(ru)
    try:
        ru, ns = invoke(rt, "start", ["start", cid], timeout)
        ph["start"], rss, cpu = ns / 1e6, max(rss, ru.ru_maxrss), cpu + cpu_ms(ru)
        t = time.perf_counter_ns()
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if not p.poll(timeout * 1000):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            raise RuntimeFailure("wait", [f"container pid {pid}"],
                                 "did not exit after start", "")
        try:
            os.waitpid(pid, 0)      # reparented to us: reap it
        except ChildProcessError:
            pass                    # someone else's child; it has exited
        ph["wait"] = (time.perf_counter_ns() - t) / 1e6
    finally:
        os.close(pidfd)
    ru, ns = invoke(rt, "delete", ["delete", cid], timeout)
    rt.live.discard(cid)
    ph["delete"], rss, cpu = ns / 1e6, max(rss, ru.ru_maxrss), cpu + cpu_ms(ru)
    return {"ms": sum(ph.values()), "rss": rss, "cpu": cpu, "phases": ph,
            "pid_from": how}


def force_delete(rt, cid, timeout=10):
    try:
        subprocess.run(rt.argv("delete", "--force", cid), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        pass
    rt.live.discard(cid)


def cleanup_runtime(rt):
    ids = set(rt.live)
    try:
        ids.update(e.name for e in os.scandir(rt.root) if e.is_dir()
                   and not e.name.startswith("."))
    except OSError:
        pass
    for cid in sorted(ids):
        force_delete(rt, cid)
    return sorted(ids)


PROBE_ARGS = ["/bin/sh", "-c", "echo probe:$$:$(hostname)"]
PROBE_EXPECT = "probe:1:runc"   # pid 1 in its pid namespace, its own hostname


def probe(rt, tmp, bundle, timeout):
    """Check once that the runtime really runs a container (a stub that exits 0
    would otherwise look very fast).  Returns None or failure info."""
    pb = os.path.join(tmp, "bundle-probe")
    if not os.path.isdir(pb):
        os.mkdir(pb)
        cfg = json.loads(json.dumps(CONFIG))
        cfg["process"]["args"] = PROBE_ARGS
        cfg["root"]["path"] = os.path.join(bundle, "rootfs")
        with open(os.path.join(pb, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    cid = f"mb{os.getpid()}-{rt.name}-probe"
    argv = rt.argv("run", "--bundle", pb, cid)
    rt.live.add(cid)
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        force_delete(rt, cid)
        return {"phase": "probe", "argv": argv, "status": "timed out",
                "stderr": str(e.stderr or "")}
    rt.live.discard(cid)
    out = r.stdout.strip()
    if r.returncode == 0 and out == PROBE_EXPECT:
        return None
    force_delete(rt, cid)
    return {"phase": "probe", "argv": argv,
            "status": f"exit {r.returncode}, stdout {out[:200]!r}, expected "
                      f"{PROBE_EXPECT!r} (container args {PROBE_ARGS})",
            "stderr": r.stderr}


def make_bundle(tmp, busybox):
    bundle = os.path.join(tmp, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy2(busybox, os.path.join(rootfs, "bin", "busybox"))
    for applet in ("true", "sh", "hostname"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    return bundle


def runtime_version(path):
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True,
                           timeout=10)
        line = (r.stdout or r.stderr).strip().splitlines()
        return line[0] if line else f"(--version: exit {r.returncode})"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(--version failed: {e})"


def summarize(samples, phases=False):
    ms = [s["ms"] for s in samples]
    out = {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
        "stdev_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0,
        "containers_per_s": len(ms) / (sum(ms) / 1000.0),
        "cpu_median_ms": statistics.median(s["cpu"] for s in samples),
        "peak_rss_kib": max(s["rss"] for s in samples),
        "median_rss_kib": statistics.median(s["rss"] for s in samples),
    }
    if phases:
        out["phase_median_ms"] = {
            p: statistics.median(s["phases"][p] for s in samples) for p in PHASES}
        out["pid_from"] = sorted({s["pid_from"] for s in samples})
    return out


def run_mode(mode, runtimes, bundle, tmp, args, prefailed):
    failures = dict(prefailed)
    alive = [rt for rt in runtimes if rt.name not in failures]
    samples = {rt.name: [] for rt in runtimes}
    load0 = os.getloadavg()
    tag = f"{os.getpid()}"
    gc.disable()
    try:
        for i in range(args.warmup + args.count):
            for rt in list(alive):
                cid = f"mb{tag}-{rt.name}-{mode}-{i}"
                try:
                    if mode == "run":
                        s = one_run(rt, cid, bundle, args.timeout)
                    else:
                        pidfile = os.path.join(tmp, f"{rt.name}.pid")
                        s = one_cycle(rt, cid, bundle, pidfile, args.timeout)
                except (RuntimeFailure, OSError,
                        subprocess.SubprocessError) as e:
                    info = e.info if isinstance(e, RuntimeFailure) else {
                        "phase": "harness", "argv": [], "status": "",
                        "stderr": str(e)}
                    info["iteration"] = i - args.warmup
                    failures[rt.name] = info
                    alive.remove(rt)
                    force_delete(rt, cid)
                    reap_strays()
                    print(f"  {rt.name}: FAILED in {mode} mode "
                          f"({info['phase']}, {info['status']}); dropped",
                          file=sys.stderr)
                    continue
                if i >= args.warmup:
                    samples[rt.name].append(s)
            reap_strays()
            if args.progress and i >= args.warmup and (i - args.warmup + 1) % 25 == 0:
                print(f"  {mode}: {i - args.warmup + 1}/{args.count}",
                      file=sys.stderr)
    finally:
        gc.enable()
    load1 = os.getloadavg()
    res = {"load_start": load0, "load_end": load1, "runtimes": {}}
    for rt in runtimes:
        r = {"path": rt.path, "version": rt.version}
        if rt.name in failures:
            r["failure"] = failures[rt.name]
        if samples[rt.name] and rt.name not in failures:
            r["summary"] = summarize(samples[rt.name], phases=(mode == "cycle"))
            r["samples"] = samples[rt.name]
        res["runtimes"][rt.name] = r
    res["ratios"] = ratios(res["runtimes"])
    return res


def ratios(rts):
    m = rts.get("moat", {}).get("summary")
    out = {}
    if not m:
        return out
    for name, r in rts.items():
        s = r.get("summary")
        if name == "moat" or not s:
            continue
        out[name] = {
            "time_peer_over_moat": s["median_ms"] / m["median_ms"],
            "cpu_peer_over_moat": (s["cpu_median_ms"] / m["cpu_median_ms"]
                                   if m["cpu_median_ms"] else None),
            "rss_peer_over_moat": s["peak_rss_kib"] / m["peak_rss_kib"],
        }
    return out


def fmt_load(la):
    return " ".join(f"{x:.2f}" for x in la)


def times_phrase(r, what_better, what_worse):
    if r >= 1:
        return f"{r:.2f}x {what_better}"
    return f"{1 / r:.2f}x {what_worse}"


def print_mode(mode, res, count, warmup):
    print(f"\n== {mode}: {MODES[mode]}   N={count}, {warmup} warm-up each, "
          f"interleaved")
    print(f"   load average start {fmt_load(res['load_start'])}, "
          f"end {fmt_load(res['load_end'])}")
    hdr = (f"   {'runtime':<8} {'median ms (min-max)':<26} {'mean ms':>8} "
           f"{'cont/s':>7} {'CPU ms':>7} {'peak RSS MiB':>13}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    for name, r in res["runtimes"].items():
        s = r.get("summary")
        if not s:
            why = "FAILED" if "failure" in r else "no samples"
            print(f"   {name:<8} {why}")
            continue
        rng = f"{s['median_ms']:.2f} ({s['min_ms']:.2f}-{s['max_ms']:.2f})"
        print(f"   {name:<8} {rng:<26} {s['mean_ms']:>8.2f} "
              f"{s['containers_per_s']:>7.1f} {s['cpu_median_ms']:>7.2f} "
              f"{s['peak_rss_kib'] / MiB:>13.2f}")
    if mode == "cycle":
        print("   phase medians, ms: " + "; ".join(
            f"{n} " + " / ".join(f"{p} {r['summary']['phase_median_ms'][p]:.2f}"
                                 for p in PHASES)
            for n, r in res["runtimes"].items() if r.get("summary")))
    for peer, q in res["ratios"].items():
        t = times_phrase(q["time_peer_over_moat"], "faster", "slower")
        m = times_phrase(q["rss_peer_over_moat"], "less", "more")
        print(f"   moat is {t} than {peer} (median {peer}/moat = "
              f"{q['time_peer_over_moat']:.2f}); peak RSS: moat uses {m} than "
              f"{peer} ({peer}/moat = {q['rss_peer_over_moat']:.2f})")
    for name, r in res["runtimes"].items():
        f = r.get("failure")
        if f:
            if f["iteration"] is None:
                where = "before measuring"
            else:
                where = (f"at iteration {f['iteration']} "
                         f"({'warm-up' if f['iteration'] < 0 else 'measured'})")
            print(f"   {name} FAILED {where}, {f['phase']}: {f['status']}")
            print(f"     command: {' '.join(f['argv'])}")
            for line in (f["stderr"].rstrip() or "(no stderr)").splitlines():
                print(f"     | {line}")


def hybrid(action, args, notes):
    if args.no_cgroup_hybrid:
        return
    script = os.path.join(HERE, "cgroup-hybrid.sh")
    # `down` refuses while cgroups remain below the mount; give a runtime that
    # is still tearing one down (ours or anyone's) a few seconds
    for attempt in range(6 if action == "down" else 1):
        if attempt:
            time.sleep(1)
        r = subprocess.run([script, action, str(os.getpid())],
                           capture_output=True, text=True)
        if r.returncode == 0:
            break
    msg = (r.stderr + r.stdout).strip()
    if r.returncode:
        notes.append(f"cgroup-hybrid.sh {action} failed: {msg}")
        print(f"runtime.py: cgroup-hybrid.sh {action} failed: {msg}",
              file=sys.stderr)
    elif msg:
        notes.append(f"cgroup-hybrid.sh {action}: {msg}")


def resolve(path):
    if os.sep not in path:
        found = shutil.which(path)
        return os.path.abspath(found) if found else None
    p = os.path.abspath(path)
    return p if os.path.isfile(p) and os.access(p, os.X_OK) else None


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main():
    ap = argparse.ArgumentParser(
        description="container lifecycle benchmark: moat-runtime vs crun, runc")
    ap.add_argument("--count", type=int, default=100,
                    help="measured containers per runtime and mode (100)")
    ap.add_argument("--warmup", type=int, default=3,
                    help="warm-up containers per runtime and mode (3)")
    ap.add_argument("--moat", default=os.path.join(
        REPO, "build/src/runtime-cli/moat-runtime"),
        help="moat-runtime binary (default: build/src/runtime-cli/moat-runtime "
             "in the repo)")
    ap.add_argument("--crun", default="crun", help="crun binary ('' to skip)")
    ap.add_argument("--runc", default="runc", help="runc binary ('' to skip)")
    ap.add_argument("--modes", default="run,cycle",
                    help="comma list of: run, cycle (default both)")
    ap.add_argument("--busybox", default="/bin/busybox",
                    help="static busybox for the rootfs (Debian busybox-static)")
    ap.add_argument("--tmpdir", default=None,
                    help="where the bundle and state dirs go (default $TMPDIR)")
    ap.add_argument("--timeout", type=int, default=30,
                    help="seconds before one runtime invocation is killed")
    ap.add_argument("--json", metavar="FILE",
                    help="also write machine-readable results to FILE")
    ap.add_argument("--no-cgroup-hybrid", action="store_true",
                    help="do not call cgroup-hybrid.sh up/down (crun 1.8 will "
                         "then refuse to run on this host)")
    ap.add_argument("--no-launcher", action="store_true",
                    help="spawn runtimes directly from Python instead of via "
                         "the compiled C launcher (RSS then meaningless)")
    ap.add_argument("--no-ambient", action="store_true",
                    help="drop process.capabilities.ambient from the config "
                         "(for all runtimes; runc spec puts 3 caps there that "
                         "are not in the inheritable set)")
    ap.add_argument("--progress", action="store_true",
                    help="print progress to stderr")
    args = ap.parse_args()

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            die(f"unknown mode '{m}' (run, cycle)")
    if args.count < 1 or args.warmup < 0:
        die("--count must be >= 1 and --warmup >= 0")
    if os.geteuid() != 0:
        die("must run as root")
    busybox = os.path.realpath(args.busybox)
    if not os.path.isfile(busybox):
        die(f"busybox '{args.busybox}' not found (apt-get install busybox-static)")

    sys.stdout.reconfigure(line_buffering=True)
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    set_subreaper()
    if args.no_ambient:
        del CONFIG["process"]["capabilities"]["ambient"]

    notes = []
    tmp = tempfile.mkdtemp(prefix="moat-bench-", dir=args.tmpdir)
    runtimes = []
    skipped = {}
    results = {}
    rc = 0
    load_start = os.getloadavg()
    started = time.time()
    try:
        for name, path in (("moat", args.moat), ("crun", args.crun),
                           ("runc", args.runc)):
            if not path:
                skipped[name] = "disabled on the command line"
                continue
            p = resolve(path)
            if not p:
                skipped[name] = f"'{path}' not found or not executable"
                continue
            root = os.path.join(tmp, f"state-{name}")
            os.mkdir(root, 0o700)
            rt = Runtime(name, p, root, os.path.join(tmp, f"{name}.stderr"))
            rt.version = runtime_version(p)
            runtimes.append(rt)
        bundle = make_bundle(tmp, busybox)
        global LAUNCHER
        LAUNCHER, why = (None, "--no-launcher") if args.no_launcher \
            else build_launcher(tmp)
        if why:
            notes.append(f"no launcher ({why}): peak RSS includes this "
                         "Python process's own RSS and is not meaningful")

        print(f"moat runtime benchmark: {platform.node()}, kernel "
              f"{platform.release()}, {os.cpu_count()} CPUs")
        print(f"load average at start: {fmt_load(load_start)}")
        for rt in runtimes:
            print(f"  {rt.name:<5} {rt.path}  [{rt.version}]")
        for name, why in skipped.items():
            print(f"  {name:<5} SKIPPED: {why}")
        if not runtimes:
            die("no runtime to measure")
        if args.no_ambient:
            notes.append("--no-ambient: config has no ambient capabilities")
        for n in notes:
            print(f"  note: {n}")

        hybrid("up", args, notes)
        probe_failed = {}
        for rt in runtimes:
            f = probe(rt, tmp, bundle, args.timeout)
            if f:
                f["iteration"] = None
                probe_failed[rt.name] = f
                print(f"  {rt.name}: FAILED the probe container; not measured",
                      file=sys.stderr)
        reap_strays()
        for mode in modes:
            results[mode] = run_mode(mode, runtimes, bundle, tmp, args,
                                     probe_failed)
            print_mode(mode, results[mode], args.count, args.warmup)
    finally:
        # Ctrl-C / SIGTERM during cleanup would leave containers behind
        old = signal.pthread_sigmask(signal.SIG_BLOCK,
                                     {signal.SIGINT, signal.SIGTERM,
                                      signal.SIGHUP})
        leftovers = {}
        for rt in runtimes:
            left = cleanup_runtime(rt)
            if left:
                leftovers[rt.name] = left
                print(f"runtime.py: force-deleted leftover {rt.name} "
                      f"container(s): {' '.join(left)}", file=sys.stderr)
        reap_strays()
        hybrid("down", args, notes)
        shutil.rmtree(tmp, ignore_errors=True)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)

    load_end = os.getloadavg()
    print(f"\nload average at end: {fmt_load(load_end)} "
          f"(start {fmt_load(load_start)}); {time.time() - started:.1f} s total")
    for n in notes:
        if "failed" in n:
            print(f"note: {n}")
    if "moat" in skipped:
        print(f"note: moat-runtime was not measured: {skipped['moat']}")
        rc = 1
    elif any("failure" in r["runtimes"]["moat"] for r in results.values()):
        rc = 1

    if args.json:
        doc = {
            "host": {"node": platform.node(), "kernel": platform.release(),
                     "cpus": os.cpu_count()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z",
                                     time.localtime(started)),
            "count": args.count, "warmup": args.warmup,
            "load_start": load_start, "load_end": load_end,
            "runtimes": {rt.name: {"path": rt.path, "version": rt.version}
                         for rt in runtimes},
            "skipped": skipped, "notes": notes, "leftovers": leftovers,
            "config": CONFIG, "modes": results,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("runtime.py: interrupted (cleaned up)", file=sys.stderr)
        sys.exit(130)
