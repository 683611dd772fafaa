#!/usr/bin/python3
"""Image unpack benchmark: moat's layer unpacking next to tar, umoci, podman
and skopeo, side by side in one run.

A realistic three-layer image is built locally at start (no network):

  layer 1  a busybox rootfs: static /bin/busybox, its applet symlinks, a
           few directories and /etc files
  layer 2  /usr/lib/python3 of this machine (tens of MB, thousands of files)
  layer 3  /usr/share/man of this machine (tens of thousands of small files)

each a gzip'ed tar (level 6, as docker and containerd compress), written as
an OCI image layout directory (blobs/sha256, index.json, manifest, config
with diff_ids) and as a docker-archive tarball (manifest.json, config,
the same gzip'ed layer blobs) for `podman load`.

Contenders, each from a cold start (new process, empty store or
destination on the same filesystem), interleaved iteration by iteration so
that load changes hit all alike:

  moat          moat-bench-unpack: open a new store, load the layout, tag,
                resolve, unpack every layer into <store>/layers/<ChainID>
                (the whole of it is timed; its unpack phase is shown too)
  tar           tar -xzf of each layer blob in sequence into one directory
  tar-par       tar -xzf of the layer blobs at once, each into its own dir
  tar+sync      tar, then syncfs of the destination's filesystem (moat
                syncs its trees before renaming them into place; tar does not)
  umoci         umoci unpack --image LAYOUT:latest BUNDLE
  podman        podman --root R --runroot RR --storage-driver D load -i ARCHIVE
  skopeo        skopeo copy oci:LAYOUT:latest containers-storage:[D@R+RR]REF

Before each timed run the harness runs sync(1) (untimed), so nobody pays for
the previous contender's dirty pages. After each run the result is checked
(untimed): sentinel files of all three layers must be there with their
sizes, so a contender that exits 0 without unpacking is reported, not
timed. Nothing here asserts a timing. Standard library only; see
bench/README.md.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
REF_NAME = "latest"
REF = "localhost/bench-unpack:latest"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

CONTENDERS = ("moat", "tar", "tar-par", "tar+sync", "umoci", "podman", "skopeo")
BASELINES = ("tar", "podman")


def die(msg):
    print(f"unpack.py: {msg}", file=sys.stderr)
    sys.exit(2)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return "sha256:" + h.hexdigest()
            h.update(b)


# ---- the workload ----

def busybox_layer(tar, busybox):
    def add_dir(name, mode=0o755):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = mode
        ti.mtime = 1700000000
        tar.addfile(ti)

    for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root",
              "home", "var", "var/spool", "var/www"):
        add_dir(d, 0o700 if d == "root" else 0o755)
    add_dir("tmp", 0o1777)
    for d in ("dev", "proc", "sys"):
        add_dir(d)
    with open(busybox, "rb") as f:
        data = f.read()
    ti = tarfile.TarInfo("bin/busybox")
    ti.size = len(data)
    ti.mode = 0o755
    ti.mtime = 1700000000
    tar.addfile(ti, io.BytesIO(data))
    out = subprocess.run([busybox, "--list-full"], capture_output=True,
                         text=True, check=True).stdout.split()
    for applet in sorted(set(out)):
        if applet == "bin/busybox" or applet.count("/") > 2:
            continue
        ti = tarfile.TarInfo(applet)
        ti.type = tarfile.SYMTYPE
        ti.linkname = "/bin/busybox"
        ti.mtime = 1700000000
        tar.addfile(ti)
    for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                        "nobody:x:65534:65534:nobody:/home:/bin/false\n"),
                       ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
                       ("etc/hostname", "bench\n")):
        b = text.encode()
        ti = tarfile.TarInfo(name)
        ti.size = len(b)
        ti.mode = 0o644
        ti.mtime = 1700000000
        tar.addfile(ti, io.BytesIO(b))


def tree_layer(root):
    def add(tar):
        tar.add(root, arcname=root.lstrip("/"), recursive=True)
    return add


def write_layer(work, i, fill):
    """Write layer i: its tar (for the DiffID) and its gzip blob. Returns
    (digest, diff_id, size, entries)."""
    tar_path = os.path.join(work, f"layer{i}.tar")
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        fill(tar)
        entries = len(tar.getmembers())
    diff_id = sha256_file(tar_path)
    gz_path = os.path.join(work, f"layer{i}.tar.gz")
    with open(tar_path, "rb") as src, open(gz_path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6,
                           mtime=0, filename="") as gz:
            shutil.copyfileobj(src, gz, 1 << 20)
    uncompressed = os.path.getsize(tar_path)
    os.unlink(tar_path)
    return {"path": gz_path, "digest": sha256_file(gz_path),
            "diff_id": diff_id, "size": os.path.getsize(gz_path),
            "uncompressed": uncompressed, "entries": entries}


def put_blob(layout, data=None, path=None):
    blobs = os.path.join(layout, "blobs", "sha256")
    if path is not None:
        digest = sha256_file(path)
        dst = os.path.join(blobs, digest.split(":")[1])
        shutil.copyfile(path, dst)
        return digest, os.path.getsize(path)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest.split(":")[1]), "wb") as f:
        f.write(data)
    return digest, len(data)


def build_workload(work, busybox, sources):
    fills = [lambda tar: busybox_layer(tar, busybox)] + \
        [tree_layer(s) for s in sources]
    layers = [write_layer(work, i + 1, f) for i, f in enumerate(fills)]

    layout = os.path.join(work, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    for la in layers:
        put_blob(layout, path=la["path"])
    config = {
        "architecture": "amd64", "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [la["diff_id"] for la in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z",
                     "created_by": f"layer {i + 1}"} for i in range(len(layers))],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest, config_size = put_blob(layout, data=config_bytes)
    manifest = {
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": config_digest,
                   "size": config_size},
        "layers": [{"mediaType": MT_LAYER_GZIP, "digest": la["digest"],
                    "size": la["size"]} for la in layers],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest, manifest_size = put_blob(layout, data=manifest_bytes)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": MT_MANIFEST, "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": REF_NAME}}]}, f)

    # docker-archive (docker save's legacy form), layers kept gzip'ed
    archive = os.path.join(work, "docker-archive.tar")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        def add_bytes(name, b):
            ti = tarfile.TarInfo(name)
            ti.size = len(b)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(b))
        cfg_name = config_digest.split(":")[1] + ".json"
        add_bytes(cfg_name, config_bytes)
        names = []
        for la in layers:
            name = la["digest"].split(":")[1] + "/layer.tar"
            tar.add(la["path"], arcname=name)
            names.append(name)
        add_bytes("manifest.json", json.dumps([{
            "Config": cfg_name, "RepoTags": [REF], "Layers": names}]).encode())
    for la in layers:
        os.unlink(la["path"])
        la["path"] = os.path.join(layout, "blobs", "sha256",
                                  la["digest"].split(":")[1])
    return {"layout": layout, "archive": archive, "layers": layers,
            "config_digest": config_digest}


def sentinels(busybox, sources):
    """(layer index, path in the layer, size) of a few files per layer."""
    out = [(0, "bin/busybox", os.path.getsize(busybox))]
    for i, s in enumerate(sources):
        picked = []
        for dirpath, dirnames, filenames in os.walk(s):
            dirnames.sort()
            for fn in sorted(filenames):
                p = os.path.join(dirpath, fn)
                if os.path.isfile(p) and not os.path.islink(p):
                    picked.append(p)
            if len(picked) >= 40:
                break
        for p in picked[:: max(1, len(picked) // 3)][:3]:
            out.append((i + 1, p.lstrip("/"), os.path.getsize(p)))
    return out


def check_tree(roots, sent):
    """roots[i]: the directory holding layer i (one for all, or one each)."""
    for layer, rel, size in sent:
        p = os.path.join(roots[layer], rel)
        try:
            st = os.lstat(p)
        except OSError as e:
            return f"{rel}: {e.strerror}"
        if st.st_size != size:
            return f"{rel}: {st.st_size} bytes, expected {size}"
    return None


# ---- running things ----

def run(argv, errfile, timeout, env=None):
    """Run argv; returns (exit status, elapsed s, stdout)."""
    t0 = time.perf_counter()
    with open(errfile, "wb") as err:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=err, timeout=timeout, env=env)
    return p.returncode, time.perf_counter() - t0, p.stdout


def read_err(errfile, limit=3000):
    try:
        with open(errfile, errors="replace") as f:
            s = f.read()
    except OSError:
        return ""
    return s if len(s) <= limit else s[:limit] + "\n[...]"


class Failure(Exception):
    def __init__(self, what, argv=None, stderr=""):
        super().__init__(what)
        self.info = {"what": what, "argv": argv or [], "stderr": stderr}


def unmount_below(path):
    """Unmount everything mounted at or below path, deepest first."""
    path = os.path.realpath(path)
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                mounts.append(mp)
    for mp in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)


def wipe(path):
    if os.path.lexists(path):
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)
        if os.path.lexists(path):
            subprocess.run(["rm", "-rf", "--one-file-system", path])


def syncfs(path):
    subprocess.run(["sync", "-f", path], check=True)


class Contender:
    def __init__(self, name, scratch, tools, wl, sent, args):
        self.name = name
        self.dest = os.path.join(scratch, name.replace("+", "-"))
        self.errfile = f"{self.dest}.stderr"
        self.tools = tools
        self.wl = wl
        self.sent = sent
        self.args = args
        self.version = None
        self.phases = {}    # name -> ms, of the last run

    def prepare(self):
        wipe(self.dest)
        os.mkdir(self.dest, 0o700)

    def cleanup(self):
        wipe(self.dest)

    def check(self, argv, status, stdout):
        if status != 0:
            raise Failure(f"exit {status}", argv, read_err(self.errfile))

    def once(self):
        """One timed run; returns ms. Raises Failure."""
        n = self.name
        t = self.args.timeout
        layers = self.wl["layers"]
        if n == "moat":
            store = os.path.join(self.dest, "store")
            argv = [self.tools["moat"], "--store", store, "--layout",
                    self.wl["layout"], "--ref", REF]
            st, s, out = run(argv, self.errfile, t)
            self.check(argv, st, out)
            try:
                doc = json.loads(out)
            except ValueError:
                raise Failure("no JSON on stdout", argv, out.decode()[:500])
            self.phases = doc["ms"]
            roots = [os.path.join(store, "layers", c) for c in doc["chain_ids"]]
            if len(roots) != len(layers):
                raise Failure(f"{len(roots)} chain ids for {len(layers)} layers", argv)
            bad = check_tree(roots, self.sent)
        elif n in ("tar", "tar+sync"):
            s = 0.0
            t0 = time.perf_counter()
            for la in layers:
                argv = ["tar", "-xzf", la["path"], "-C", self.dest]
                st, _, out = run(argv, self.errfile, t)
                self.check(argv, st, out)
            if n == "tar+sync":
                t1 = time.perf_counter()
                syncfs(self.dest)
                self.phases = {"tar": (t1 - t0) * 1e3,
                               "syncfs": (time.perf_counter() - t1) * 1e3}
            s = time.perf_counter() - t0
            bad = check_tree([self.dest] * len(layers), self.sent)
        elif n == "tar-par":
            roots = []
            procs = []
            t0 = time.perf_counter()
            for i, la in enumerate(layers):
                d = os.path.join(self.dest, f"l{i}")
                os.mkdir(d)
                roots.append(d)
                argv = ["tar", "-xzf", la["path"], "-C", d]
                procs.append((argv, subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)))
            errs = [(argv, p.communicate(timeout=t)[1], p.returncode)
                    for argv, p in procs]
            s = time.perf_counter() - t0
            for argv, err, rc in errs:
                if rc:
                    raise Failure(f"exit {rc}", argv, err.decode(errors="replace"))
            bad = check_tree(roots, self.sent)
        elif n == "umoci":
            bundle = os.path.join(self.dest, "bundle")
            argv = [self.tools["umoci"], "unpack", "--image",
                    f"{self.wl['layout']}:{REF_NAME}", bundle]
            st, s, out = run(argv, self.errfile, t)
            self.check(argv, st, out)
            bad = check_tree([os.path.join(bundle, "rootfs")] * len(layers),
                             self.sent)
        elif n in ("podman", "skopeo"):
            root = os.path.join(self.dest, "root")
            runroot = os.path.join(self.dest, "runroot")
            drv = self.args.storage_driver
            if n == "podman":
                argv = [self.tools["podman"], "--root", root, "--runroot", runroot,
                        "--storage-driver", drv, "--cgroup-manager", "cgroupfs",
                        "--events-backend", "none",
                        "load", "-q", "-i", self.wl["archive"]]
            else:
                argv = [self.tools["skopeo"], "copy", "-q",
                        f"oci:{self.wl['layout']}:{REF_NAME}",
                        f"containers-storage:[{drv}@{root}+{runroot}]{REF}"]
            st, s, out = run(argv, self.errfile, t)
            self.check(argv, st, out)
            bad = check_storage(root, drv, self.sent, len(layers))
        else:
            raise AssertionError(n)
        if bad:
            raise Failure(f"result incomplete: {bad}")
        return s * 1e3


def check_storage(root, drv, sent, n_layers):
    """containers-storage: one diff dir per layer holding that layer's files."""
    base = os.path.join(root, drv)
    try:
        diffs = [os.path.join(base, d, "diff") if drv == "overlay"
                 else os.path.join(base, "dir", d)
                 for d in os.listdir(base if drv == "overlay" else os.path.join(base, "dir"))
                 if d != "l"]
    except OSError as e:
        return f"{base}: {e.strerror}"
    diffs = [d for d in diffs if os.path.isdir(d)]
    if drv == "overlay" and len(diffs) != n_layers:
        return f"{len(diffs)} layer dirs in {base}, expected {n_layers}"
    for layer, rel, size in sent:
        ok = any(os.path.isfile(os.path.join(d, rel)) and
                 os.path.getsize(os.path.join(d, rel)) == size for d in diffs)
        if not ok:
            return f"{rel} in no layer dir of {base}"
    return None


def version_of(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        line = (r.stdout or r.stderr).strip().splitlines()
        return line[0] if line else f"(exit {r.returncode})"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"


def fmt_load(la):
    return " ".join(f"{x:.2f}" for x in la)


def times_phrase(r):
    return f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower"


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main():
    ap = argparse.ArgumentParser(
        description="image unpack benchmark: moat vs tar, umoci, podman, skopeo")
    ap.add_argument("--count", type=int, default=5,
                    help="measured runs per contender (5; one round of all "
                         "seven takes about a minute here)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="unmeasured runs per contender, first (1)")
    ap.add_argument("--moat", default=os.path.join(REPO, "build/bench/moat-bench-unpack"),
                    help="the moat-bench-unpack driver (default: "
                         "build/bench/moat-bench-unpack in the repo)")
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help=f"comma list of: {', '.join(CONTENDERS)}")
    ap.add_argument("--sources", default="/usr/lib/python3,/usr/share/man",
                    help="directories of this machine that become layers 2, 3, ...")
    ap.add_argument("--busybox", default="/bin/busybox",
                    help="static busybox for layer 1 (Debian busybox-static)")
    ap.add_argument("--storage-driver", default="overlay",
                    help="containers-storage driver of podman and skopeo "
                         "(overlay; vfs if overlay fails)")
    ap.add_argument("--workload", metavar="DIR",
                    help="keep the built image in DIR and reuse it when it is "
                         "there (default: built in the temp dir each run)")
    ap.add_argument("--tmpdir", default=None,
                    help="where the destinations go (default $TMPDIR); the "
                         "workload and all destinations share its filesystem")
    ap.add_argument("--timeout", type=int, default=300,
                    help="seconds before one invocation is killed")
    ap.add_argument("--json", metavar="FILE",
                    help="also write every sample and the summaries to FILE")
    args = ap.parse_args()

    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for c in names:
        if c not in CONTENDERS:
            die(f"unknown contender '{c}' ({', '.join(CONTENDERS)})")
    if args.count < 1 or args.warmup < 0:
        die("--count must be >= 1 and --warmup >= 0")
    if os.geteuid() != 0:
        die("must run as root (ownership, device nodes, podman's storage)")
    busybox = os.path.realpath(args.busybox)
    if not os.path.isfile(busybox):
        die(f"busybox '{args.busybox}' not found (apt-get install busybox-static)")
    sources = [s for s in args.sources.split(",") if s]
    for s in sources:
        if not os.path.isdir(s):
            die(f"source directory {s} not found")

    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    tools, skipped = {}, {}
    for name, path in (("moat", args.moat), ("umoci", "umoci"),
                       ("podman", "podman"), ("skopeo", "skopeo"), ("tar", "tar")):
        p = shutil.which(path) if os.sep not in path else (
            os.path.abspath(path) if os.access(path, os.X_OK) else None)
        if p:
            tools[name] = p
    for c in names:
        need = {"tar-par": "tar", "tar+sync": "tar"}.get(c, c)
        if need not in tools:
            skipped[c] = f"{need} not found" + (
                " (meson compile -C build bench/moat-bench-unpack)" if c == "moat" else "")
    names = [c for c in names if c not in skipped]

    scratch = tempfile.mkdtemp(prefix="moat-bench-unpack-", dir=args.tmpdir)
    started = time.time()
    load_start = os.getloadavg()
    contenders = []
    samples = {}
    failures = {}
    try:
        work = args.workload or os.path.join(scratch, "workload")
        meta = os.path.join(work, "workload.json")
        if args.workload and os.path.isfile(meta):
            with open(meta) as f:
                wl = json.load(f)
            print(f"workload: reusing {work}")
        else:
            print("workload: building the image (gzip'ed layers) ...")
            t0 = time.time()
            wipe(work)
            os.makedirs(work)
            wl = build_workload(work, busybox, sources)
            with open(meta, "w") as f:
                json.dump(wl, f, indent=1)
            print(f"workload: built in {time.time() - t0:.1f} s")
        sent = sentinels(busybox, sources)

        print(f"moat unpack benchmark: {platform.node()}, kernel "
              f"{platform.release()}, {os.cpu_count()} CPUs; "
              f"load average at start {fmt_load(load_start)}")
        tot_c = sum(la["size"] for la in wl["layers"])
        tot_u = sum(la["uncompressed"] for la in wl["layers"])
        tot_e = sum(la["entries"] for la in wl["layers"])
        print(f"image: {len(wl['layers'])} layers, {tot_c / 2**20:.1f} MiB gzip, "
              f"{tot_u / 2**20:.1f} MiB tar, {tot_e} entries")
        for i, la in enumerate(wl["layers"]):
            src = "busybox rootfs" if i == 0 else sources[i - 1]
            print(f"  layer {i + 1}: {src:<22} {la['size'] / 2**20:7.1f} MiB gzip "
                  f"{la['uncompressed'] / 2**20:7.1f} MiB tar {la['entries']:>7} entries")
        versions = {
            "moat": "build of this tree", "tar": version_of(["tar", "--version"]),
            "umoci": version_of(["umoci", "--version"]),
            "podman": version_of(["podman", "--version"]),
            "skopeo": version_of(["skopeo", "--version"]),
        }
        for c in names:
            k = "tar" if c.startswith("tar") else c
            print(f"  {c:<9} {tools.get(k, '')}  [{versions[k]}]")
        for c, why in skipped.items():
            print(f"  {c:<9} SKIPPED: {why}")
        if "podman" in names or "skopeo" in names:
            print(f"  podman/skopeo storage driver: {args.storage_driver}")

        contenders = [Contender(c, scratch, tools, wl, sent, args) for c in names]
        for c in contenders:
            samples[c.name] = []
        gcount = args.warmup + args.count
        for i in range(gcount):
            for c in list(contenders):
                try:
                    c.prepare()
                    subprocess.run(["sync"], check=False)
                    ms = c.once()
                except (Failure, OSError, subprocess.SubprocessError) as e:
                    info = e.info if isinstance(e, Failure) else {
                        "what": str(e), "argv": [], "stderr": ""}
                    info["iteration"] = i - args.warmup
                    failures[c.name] = info
                    contenders.remove(c)
                    c.cleanup()
                    print(f"  {c.name}: FAILED ({info['what']}); dropped",
                          file=sys.stderr)
                    continue
                if i >= args.warmup:
                    samples[c.name].append({"ms": ms, "phases": dict(c.phases)})
                c.cleanup()
            if i >= args.warmup:
                print(f"  run {i - args.warmup + 1}/{args.count} done", file=sys.stderr)
    finally:
        old = signal.pthread_sigmask(signal.SIG_BLOCK,
                                     {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        for c in contenders:
            c.cleanup()
        for name in CONTENDERS:
            wipe(os.path.join(scratch, name.replace("+", "-")))
        if args.workload:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            wipe(scratch)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)

    load_end = os.getloadavg()
    summary = {}
    for name, ss in samples.items():
        if not ss or name in failures:
            continue
        ms = [s["ms"] for s in ss]
        summary[name] = {"n": len(ms), "median_ms": statistics.median(ms),
                         "min_ms": min(ms), "max_ms": max(ms),
                         "mean_ms": statistics.fmean(ms)}
        ph = {}
        for k in (ss[0]["phases"] or {}):
            ph[k] = statistics.median(s["phases"][k] for s in ss)
        if ph:
            summary[name]["phase_median_ms"] = ph

    print(f"\n== cold unpack of the image, N={args.count}, {args.warmup} warm-up each, "
          f"interleaved; load average start {fmt_load(load_start)}, end {fmt_load(load_end)}")
    hdr = f"   {'contender':<10} {'median ms (min-max)':<28} {'mean ms':>9}"
    hdr += "".join(f" {'/' + b:>8}" for b in BASELINES)
    print(hdr)
    print("   " + "-" * (len(hdr) - 3))
    for name in CONTENDERS:
        if name in skipped:
            continue
        s = summary.get(name)
        if not s:
            if name in failures or name in samples:
                print(f"   {name:<10} {'FAILED' if name in failures else 'no samples'}")
            continue
        rng = f"{s['median_ms']:.0f} ({s['min_ms']:.0f}-{s['max_ms']:.0f})"
        line = f"   {name:<10} {rng:<28} {s['mean_ms']:>9.0f}"
        for b in BASELINES:
            q = s["median_ms"] / summary[b]["median_ms"] if b in summary else None
            line += f" {q:>8.2f}" if q else f" {'-':>8}"
        print(line)
    print("   (the /tar and /podman columns: the contender's median over theirs; "
          "below 1 is faster)")
    for name in ("moat", "tar+sync"):
        ph = summary.get(name, {}).get("phase_median_ms")
        if ph:
            print(f"   {name} phase medians, ms: " +
                  ", ".join(f"{k} {v:.0f}" for k, v in ph.items()))
    m = summary.get("moat")
    ratios = {}
    if m:
        mu = m.get("phase_median_ms", {}).get("unpack")
        for peer in [n for n in CONTENDERS if n != "moat" and n in summary]:
            q = summary[peer]["median_ms"] / m["median_ms"]
            ratios[peer] = {"peer_over_moat": q}
            extra = ""
            if mu:
                qu = summary[peer]["median_ms"] / mu
                ratios[peer]["peer_over_moat_unpack_phase"] = qu
                extra = f"; moat's unpack phase alone: {peer}/moat = {qu:.2f}"
            print(f"   moat is {times_phrase(q)} than {peer} "
                  f"(median {peer}/moat = {q:.2f}){extra}")
        if "tar" in summary:
            q = m["median_ms"] / summary["tar"]["median_ms"]
            print(f"   goal moat <= 1.1x tar -xzf: moat/tar = {q:.2f} "
                  f"({'met' if q <= 1.1 else 'missed'})")
        if "podman" in summary:
            q = summary["podman"]["median_ms"] / m["median_ms"]
            print(f"   goal moat >= 2x faster than podman load: podman/moat = {q:.2f} "
                  f"({'met' if q >= 2 else 'missed'})")
    for name, f in failures.items():
        it = f["iteration"]
        where = f"at iteration {it} ({'warm-up' if it < 0 else 'measured'})"
        print(f"   {name} FAILED {where}: {f['what']}")
        if f["argv"]:
            print(f"     command: {' '.join(f['argv'])}")
        for line in (f["stderr"].rstrip() or "(no stderr)").splitlines()[:30]:
            print(f"     | {line}")
    print(f"\n{time.time() - started:.1f} s total")

    if args.json:
        doc = {"host": {"node": platform.node(), "kernel": platform.release(),
                        "cpus": os.cpu_count()},
               "count": args.count, "warmup": args.warmup,
               "load_start": load_start, "load_end": load_end,
               "workload": {"layers": wl["layers"], "sources": sources},
               "storage_driver": args.storage_driver, "skipped": skipped,
               "failures": failures, "summary": summary, "ratios": ratios,
               "samples": samples}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 1 if "moat" in failures or "moat" in skipped else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("unpack.py: interrupted (cleaned up)", file=sys.stderr)
        sys.exit(130)
