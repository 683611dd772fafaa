#!/usr/bin/python3
"""exec latency: `RT exec ID /bin/true` for moat-runtime, crun and runc.

Each runtime gets one long-running container (`RT run --detach`, busybox
`sleep`) made from the bundle of bench/runtime.py (same config: `runc spec`
with terminal off, read-only root, pid/network/ipc/uts/mount namespaces),
then N execs of /bin/true into it, the runtimes interleaved iteration by
iteration (moat, crun, runc, moat, ...) so load changes hit all alike.
Every exec goes through runtime.py's C launcher: wall time from fork to
wait4 of the runtime, which waits for /bin/true, plus its rusage.

Before measuring, each runtime must exec a probe into its container that
prints the container's hostname and the name of its pid 1 (proof that the
process joined the uts, pid and mount namespaces); a runtime that fails
is reported, not timed. crun 1.8 needs bench/cgroup-hybrid.sh up on this
host: it is called the way runtime.py calls it, and `down` always runs.
Nothing here asserts a timing. Standard library only; see bench/README.md.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import runtime as rb  # noqa: E402  bench/runtime.py: launcher, bundle, hybrid helpers

LONG_RUNNING = ["/bin/sleep", "1000000"]
EXEC_ARGS = ["/bin/true"]
PROBE_ARGS = ["/bin/sh", "-c", "read c < /proc/1/comm; echo probe:$(hostname):$c"]
PROBE_EXPECT = "probe:runc:sleep"


def make_bundle(tmp, busybox):
    """runtime.py's bundle, with sleep added and the init sleeping."""
    bundle = rb.make_bundle(tmp, busybox)
    os.symlink("busybox", os.path.join(bundle, "rootfs", "bin", "sleep"))
    cfg = json.loads(json.dumps(rb.CONFIG))
    cfg["process"]["args"] = LONG_RUNNING
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return bundle


def start_container(rt, cid, bundle, timeout):
    rt.live.add(cid)
    rb.invoke(rt, "run", ["run", "--detach", "--bundle", bundle, cid], timeout)


def probe(rt, cid, timeout):
    argv = rt.argv("exec", cid, *PROBE_ARGS)
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return {"phase": "probe", "argv": argv, "status": "timed out",
                "stderr": str(e.stderr or "")}
    out = r.stdout.strip()
    if r.returncode == 0 and out == PROBE_EXPECT:
        return None
    return {"phase": "probe", "argv": argv,
            "status": f"exit {r.returncode}, stdout {out[:200]!r}, expected {PROBE_EXPECT!r}",
            "stderr": r.stderr}


def one_exec(rt, cid, timeout):
    ru, ns = rb.invoke(rt, "exec", ["exec", cid, *EXEC_ARGS], timeout)
    return {"ms": ns / 1e6, "rss": ru.ru_maxrss, "cpu": rb.cpu_ms(ru)}


def summarize(samples):
    ms = [s["ms"] for s in samples]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
        "stdev_ms": statistics.stdev(ms) if len(ms) > 1 else 0.0,
        "execs_per_s": len(ms) / (sum(ms) / 1000.0),
        "cpu_median_ms": statistics.median(s["cpu"] for s in samples),
        "peak_rss_kib": max(s["rss"] for s in samples),
    }


def measure(runtimes, ids, args, failures):
    alive = [rt for rt in runtimes if rt.name not in failures]
    samples = {rt.name: [] for rt in runtimes}
    for i in range(args.warmup + args.count):
        for rt in list(alive):
            try:
                s = one_exec(rt, ids[rt.name], args.timeout)
            except (rb.RuntimeFailure, OSError, subprocess.SubprocessError) as e:
                info = e.info if isinstance(e, rb.RuntimeFailure) else {
                    "phase": "harness", "argv": [], "status": "", "stderr": str(e)}
                info["iteration"] = i - args.warmup
                failures[rt.name] = info
                alive.remove(rt)
                print(f"  {rt.name}: FAILED ({info['status']}); dropped", file=sys.stderr)
                continue
            if i >= args.warmup:
                samples[rt.name].append(s)
        rb.reap_strays()
        if args.progress and i >= args.warmup and (i - args.warmup + 1) % 25 == 0:
            print(f"  exec: {i - args.warmup + 1}/{args.count}", file=sys.stderr)
    return samples


def print_results(res, count, warmup):
    print(f"\n== exec: RT --root R exec ID {' '.join(EXEC_ARGS)}   N={count}, {warmup} warm-up "
          f"each, interleaved, one running container per runtime")
    print(f"   load average start {rb.fmt_load(res['load_start'])}, "
          f"end {rb.fmt_load(res['load_end'])}")
    hdr = (f"   {'runtime':<8} {'median ms (min-max)':<26} {'mean ms':>8} "
           f"{'exec/s':>7} {'CPU ms':>7} {'peak RSS MiB':>13}")
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    for name, r in res["runtimes"].items():
        s = r.get("summary")
        if not s:
            print(f"   {name:<8} {'FAILED' if 'failure' in r else 'no samples'}")
            continue
        rng = f"{s['median_ms']:.2f} ({s['min_ms']:.2f}-{s['max_ms']:.2f})"
        print(f"   {name:<8} {rng:<26} {s['mean_ms']:>8.2f} {s['execs_per_s']:>7.1f} "
              f"{s['cpu_median_ms']:>7.2f} {s['peak_rss_kib'] / rb.MiB:>13.2f}")
    for peer, q in res["ratios"].items():
        t = rb.times_phrase(q["time_peer_over_moat"], "faster", "slower")
        m = rb.times_phrase(q["rss_peer_over_moat"], "less", "more")
        print(f"   moat is {t} than {peer} (median {peer}/moat = "
              f"{q['time_peer_over_moat']:.2f}); peak RSS: moat uses {m} than "
              f"{peer} ({peer}/moat = {q['rss_peer_over_moat']:.2f})")
    for name, r in res["runtimes"].items():
        f = r.get("failure")
        if f:
            where = "before measuring" if f.get("iteration") is None else \
                f"at iteration {f['iteration']}"
            print(f"   {name} FAILED {where}, {f['phase']}: {f['status']}")
            print(f"     command: {' '.join(f['argv'])}")
            for line in (f["stderr"].rstrip() or "(no stderr)").splitlines():
                print(f"     | {line}")


def main():
    ap = argparse.ArgumentParser(description="exec latency: moat-runtime vs crun, runc")
    ap.add_argument("--count", type=int, default=100, help="measured execs per runtime (100)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up execs per runtime (3)")
    ap.add_argument("--moat", default=os.path.join(REPO, "build/src/runtime-cli/moat-runtime"),
                    help="moat-runtime binary (default: build/ in the repo)")
    ap.add_argument("--crun", default="crun", help="crun binary ('' to skip)")
    ap.add_argument("--runc", default="runc", help="runc binary ('' to skip)")
    ap.add_argument("--busybox", default="/bin/busybox", help="static busybox for the rootfs")
    ap.add_argument("--tmpdir", default=None, help="bundle and state dirs (default $TMPDIR)")
    ap.add_argument("--timeout", type=int, default=30, help="seconds before one invocation is killed")
    ap.add_argument("--json", metavar="FILE", help="also write every sample and summary to FILE")
    ap.add_argument("--no-cgroup-hybrid", action="store_true",
                    help="do not call cgroup-hybrid.sh (crun 1.8 then fails on this host)")
    ap.add_argument("--no-launcher", action="store_true",
                    help="spawn from Python (times fine, RSS meaningless)")
    ap.add_argument("--no-ambient", action="store_true",
                    help="drop process.capabilities.ambient from the config (all runtimes)")
    ap.add_argument("--progress", action="store_true", help="progress on stderr")
    args = ap.parse_args()

    if args.count < 1 or args.warmup < 0:
        rb.die("--count must be >= 1 and --warmup >= 0")
    if os.geteuid() != 0:
        rb.die("must run as root")
    busybox = os.path.realpath(args.busybox)
    if not os.path.isfile(busybox):
        rb.die(f"busybox '{args.busybox}' not found (apt-get install busybox-static)")

    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, rb.on_signal)
    rb.set_subreaper()
    if args.no_ambient:
        del rb.CONFIG["process"]["capabilities"]["ambient"]

    notes = []
    tmp = tempfile.mkdtemp(prefix="moat-bench-exec-", dir=args.tmpdir)
    runtimes, skipped, failures, ids = [], {}, {}, {}
    samples = {}
    load_start = os.getloadavg()
    started = time.time()
    res = None
    try:
        for name, path in (("moat", args.moat), ("crun", args.crun), ("runc", args.runc)):
            if not path:
                skipped[name] = "disabled on the command line"
                continue
            p = rb.resolve(path)
            if not p:
                skipped[name] = f"'{path}' not found or not executable"
                continue
            root = os.path.join(tmp, f"state-{name}")
            os.mkdir(root, 0o700)
            rt = rb.Runtime(name, p, root, os.path.join(tmp, f"{name}.stderr"))
            rt.version = rb.runtime_version(p)
            runtimes.append(rt)
        bundle = make_bundle(tmp, busybox)
        rb.LAUNCHER, why = (None, "--no-launcher") if args.no_launcher else rb.build_launcher(tmp)
        if why:
            notes.append(f"no launcher ({why}): peak RSS is not meaningful")

        print(f"moat exec benchmark: {platform.node()}, kernel {platform.release()}, "
              f"{os.cpu_count()} CPUs")
        print(f"load average at start: {rb.fmt_load(load_start)}")
        for rt in runtimes:
            print(f"  {rt.name:<5} {rt.path}  [{rt.version}]")
        for name, why in skipped.items():
            print(f"  {name:<5} SKIPPED: {why}")
        if not runtimes:
            rb.die("no runtime to measure")
        for n in notes:
            print(f"  note: {n}")

        rb.hybrid("up", args, notes)
        for rt in runtimes:
            cid = f"mbx{os.getpid()}-{rt.name}"
            ids[rt.name] = cid
            try:
                start_container(rt, cid, bundle, args.timeout)
                f = probe(rt, cid, args.timeout)
            except (rb.RuntimeFailure, OSError, subprocess.SubprocessError) as e:
                f = e.info if isinstance(e, rb.RuntimeFailure) else {
                    "phase": "start", "argv": [], "status": "", "stderr": str(e)}
            if f:
                f["iteration"] = None
                failures[rt.name] = f
                print(f"  {rt.name}: FAILED {f['phase']}; not measured", file=sys.stderr)
        rb.reap_strays()
        load0 = os.getloadavg()
        samples = measure(runtimes, ids, args, failures)
        res = {"load_start": load0, "load_end": os.getloadavg(), "runtimes": {}}
        for rt in runtimes:
            r = {"path": rt.path, "version": rt.version}
            if rt.name in failures:
                r["failure"] = failures[rt.name]
            elif samples[rt.name]:
                r["summary"] = summarize(samples[rt.name])
                r["samples"] = samples[rt.name]
            res["runtimes"][rt.name] = r
        res["ratios"] = rb.ratios(res["runtimes"])
        print_results(res, args.count, args.warmup)
    finally:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        for rt in runtimes:
            for cid in rb.cleanup_runtime(rt):
                if cid != ids.get(rt.name):
                    print(f"exec.py: force-deleted leftover {rt.name} container {cid}",
                          file=sys.stderr)
        rb.reap_strays()
        rb.hybrid("down", args, notes)
        shutil.rmtree(tmp, ignore_errors=True)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)

    load_end = os.getloadavg()
    print(f"\nload average at end: {rb.fmt_load(load_end)} (start {rb.fmt_load(load_start)}); "
          f"{time.time() - started:.1f} s total")
    for n in notes:
        if "failed" in n:
            print(f"note: {n}")
    rc = 0
    if "moat" in skipped or (res and "failure" in res["runtimes"].get("moat", {})):
        rc = 1
    if args.json and res:
        with open(args.json, "w") as f:
            json.dump({"host": {"node": platform.node(), "kernel": platform.release(),
                                "cpus": os.cpu_count()},
                       "count": args.count, "warmup": args.warmup, "exec_args": EXEC_ARGS,
                       "skipped": skipped, "notes": notes, "config": rb.CONFIG,
                       "result": res}, f, indent=1)
            f.write("\n")
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("exec.py: interrupted (cleaned up)", file=sys.stderr)
        sys.exit(130)
