"""moat's verbs that docker's CLI also has, side by side against the same
`moat daemon`: volume create|ls|inspect|rm|prune, cp, system df|prune and
the image verbs (images, load, save, import, tag, rmi, history, image
inspect, image prune). Each test runs the verb with moat and with the
real docker CLI where that makes sense and compares what a user sees:
tables (columns and rows), --format output, JSON, exit codes, error
words, and the files cp writes.

One daemon per module (daemon_fixture.py's MoatDaemon); the demo image is
loaded into it through the API (docker load) once it runs, so nothing here
uses moat's in-process image store.
"""

import io
import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest

import harness
from daemon_fixture import IMAGE, demo_image_tar, moat_path, new_daemon, wait_for  # noqa: F401

TIMEOUT = 60

pytestmark = pytest.mark.skipif(not shutil.which("docker"), reason="the docker CLI is not installed")


@pytest.fixture(scope="module")
def moat_daemon(session_tmp, demo_image_tar):  # noqa: F811
    d = new_daemon(session_tmp, None, prefix="moatcli-")
    try:
        d.start()
        d.ok("load", "-i", demo_image_tar)
    except BaseException:
        d.cleanup()
        raise
    yield d
    problems = d.cleanup()
    if problems:
        pytest.fail("left behind by the daemon:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def daemon(moat_daemon):
    d = moat_daemon
    if not d.alive():
        pytest.fail("the module's moat daemon is not running:\n" + d.log_tail())
    before = d.ids()
    yield d
    new = d.ids() - before
    if new:
        d.docker("rm", "-f", *sorted(new), timeout=120)
    problems = d.check_host(d.seen_ids - before or {"-none-"})
    harness.reap_orphans()
    if problems:
        pytest.fail("left behind after the test:\n  " + "\n  ".join(problems), pytrace=False)


def moat(d, *args, input=None, text=True, check=None, cwd=None):
    p = subprocess.run([moat_path(), "-H", "unix://" + d.sock, *args], capture_output=True, text=text,
                       timeout=TIMEOUT, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                       cwd=cwd)
    if check is not None:
        assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
    return p


def docker(d, *args, input=None, text=True, check=None, cwd=None):
    p = subprocess.run(["docker", *args], capture_output=True, text=text, timeout=TIMEOUT, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL, env=d.env, cwd=cwd)
    if check is not None:
        assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
    return p


def both(d, *args, input=None, check=None):
    """The same verb through moat and docker: (moat's, docker's)."""
    return moat(d, *args, input=input, check=check), docker(d, *args, input=input, check=check)


def table(text):
    """A docker table as rows of cells (split on runs of 2+ spaces)."""
    return [re.split(r"\s{2,}", line.rstrip()) for line in text.splitlines()]


def errors(text):
    """stderr without the docker CLI's logrus lines."""
    return "".join(line for line in text.splitlines(True) if not line.startswith("time="))


def same_output(m, k):
    assert (m.returncode, m.stdout) == (k.returncode, k.stdout), (m, k)


# ---- volume -----------------------------------------------------------------------------

def test_volume_create_ls_inspect_rm(daemon):
    m = moat(daemon, "volume", "create", "--label", "a=1", "-o", "type=tmpfs", "-o", "device=tmpfs", "mv1", check=0)
    assert m.stdout == "mv1\n"
    docker(daemon, "volume", "create", "--label", "a=1", "dv1", check=0)
    anon = moat(daemon, "volume", "create", check=0).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anon)
    try:
        same_output(*both(daemon, "volume", "ls"))
        assert table(moat(daemon, "volume", "ls").stdout)[0] == ["DRIVER", "VOLUME NAME"]
        same_output(*both(daemon, "volume", "ls", "-q"))
        same_output(*both(daemon, "volume", "ls", "--format", "json"))
        same_output(*both(daemon, "volume", "ls", "--format", "table {{.Name}}\t{{.Labels}}\t{{.Mountpoint}}"))
        same_output(*both(daemon, "volume", "ls", "--filter", "label=a=1", "--format", "{{.Name}} {{.Driver}}"))
        m, k = both(daemon, "volume", "ls", "-q", "--filter", "name=mv")
        same_output(m, k)
        assert m.stdout == "mv1\n"

        m, k = both(daemon, "volume", "inspect", "mv1", "dv1")
        same_output(m, k)
        doc = json.loads(m.stdout)
        assert [v["Name"] for v in doc] == ["mv1", "dv1"] and doc[0]["Options"] == {"type": "tmpfs", "device": "tmpfs"}
        same_output(*both(daemon, "volume", "inspect", "-f", "{{.Name}} {{.Labels}} {{.Driver}}", "mv1"))
        m, k = both(daemon, "volume", "inspect", "mv1", "nope")
        same_output(m, k)
        assert m.returncode == 1 and m.stderr == k.stderr and "nope" in m.stderr

        m, k = moat(daemon, "volume", "create", "-d", "frob", "x"), docker(daemon, "volume", "create", "-d", "frob", "x")
        assert (m.returncode, m.stderr) == (k.returncode, k.stderr) and m.returncode == 1
        m, k = both(daemon, "volume", "rm", "nope1")
        assert (m.returncode, m.stdout, m.stderr) == (k.returncode, k.stdout, k.stderr) and m.returncode == 1
    finally:
        m = moat(daemon, "volume", "rm", "mv1", "dv1", anon, "nope2")
        assert m.returncode == 1 and m.stdout == f"mv1\ndv1\n{anon}\n" and "nope2" in m.stderr
    assert "mv1" not in docker(daemon, "volume", "ls", "-q", check=0).stdout


def test_volume_in_use_and_prune(daemon):
    moat(daemon, "volume", "create", "--label", "keep=no", "pv1", check=0)
    moat(daemon, "volume", "create", "pv2", check=0)
    cid = daemon.run_d("-v", "pv2:/data", IMAGE, "sleep", "60")
    m, k = both(daemon, "volume", "rm", "pv2")
    assert (m.returncode, m.stderr) == (k.returncode, k.stderr) and m.returncode == 1 and "in use" in m.stderr
    # without -f the question is asked on stdin; no answer is no
    p = moat(daemon, "volume", "prune", "-a", input="n\n", check=0)
    assert p.stdout == ("WARNING! This will remove all local volumes not used by at least one container.\n"
                        "Are you sure you want to continue? [y/N] ")
    assert "pv1" in moat(daemon, "volume", "ls", "-q", check=0).stdout
    p = moat(daemon, "volume", "prune", "-f", "-a", "--filter", "label=keep=no", check=0)
    assert p.stdout == "Deleted Volumes:\npv1\n\nTotal reclaimed space: 0B\n"
    p = moat(daemon, "volume", "prune", "-f", check=0)
    assert p.stdout == "Total reclaimed space: 0B\n"
    daemon.ok("rm", "-f", cid)
    p = moat(daemon, "volume", "prune", "-a", input="y\n", check=0)
    assert "Deleted Volumes:\npv2\n" in p.stdout


# ---- cp ---------------------------------------------------------------------------------

def tree(root):
    """What a user sees of a host tree: paths, kinds, modes, contents, link targets."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", oct(st.st_mode & 0o7777))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", oct(st.st_mode & 0o7777), f.read())
    return out


@pytest.fixture
def cp_container(daemon):
    name = "cp-" + os.urandom(4).hex()
    daemon.run_d("--name", name, IMAGE, "sleep", "300")
    script = ("mkdir -p /d/sub /e && echo hi > /d/f && chmod 640 /d/f && echo s > /d/sub/x && "
              "ln -s /etc/passwd /d/abs && ln -s f /d/rel && ln -s ../../../../../tmp /e/up && echo e > /e/g")
    daemon.ok("exec", name, "sh", "-c", script)
    return name


FROM_CASES = [
    ("{c}:/d/f", "new"), ("{c}:/d/f", "exdir"), ("{c}:/d/f", "exfile"), ("{c}:/d", "new"),
    ("{c}:/d", "exdir"), ("{c}:/d/.", "new"), ("{c}:/d/.", "exdir"), ("{c}:/d/", "newslash/"),
    ("{c}:/d/abs", "new"), ("{c}:/d/rel", "exdir"), ("-L {c}:/d/abs", "new"), ("-L {c}:/d/rel", "exdir"),
    ("{c}:/d", "exfile"), ("{c}:/d/f", "nodir/"), ("{c}:/d/f", "nodir/x"), ("{c}:/nope", "new"),
    ("{c}:/e", "new"), ("nosuchcontainer:/d", "new"),
]


@pytest.mark.parametrize("src,dst", FROM_CASES)
def test_cp_from_container_like_docker(daemon, cp_container, tmp_path, src, dst):
    results = {}
    for tool, run in (("moat", moat), ("docker", docker)):
        base = tmp_path / tool
        base.mkdir()
        (base / "exdir").mkdir()
        (base / "exdir" / "old").write_text("old\n")
        (base / "exfile").write_text("existing\n")
        *flags, s = src.format(c=cp_container).split()
        p = run(daemon, "cp", *flags, s, dst, cwd=str(base))
        results[tool] = (p.returncode, errors(p.stderr).replace(str(base), "BASE"), tree(base))
    m, k = results["moat"], results["docker"]
    assert m[0] == k[0], (m, k)
    assert m[2] == k[2]
    if m[0] != 0:
        assert m[1] == k[1]


def test_cp_to_stdout_is_the_daemons_tar(daemon, cp_container):
    m = moat(daemon, "cp", f"{cp_container}:/d", "-", text=False, check=0)
    k = docker(daemon, "cp", f"{cp_container}:/d", "-", text=False, check=0)
    names = tarfile.open(fileobj=io.BytesIO(m.stdout)).getnames()
    assert "d/sub/x" in names and "d/f" in names
    assert sorted(names) == sorted(tarfile.open(fileobj=io.BytesIO(k.stdout)).getnames())


def test_cp_never_writes_through_host_symlinks(daemon, cp_container, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dst = tmp_path / "dst"
    dst.mkdir()
    os.symlink(str(outside), dst / "sub")          # the destination has sub -> outside
    p = moat(daemon, "cp", f"{cp_container}:/d/.", str(dst))
    assert p.returncode == 1 and "sub" in p.stderr
    assert os.listdir(outside) == []
    if os.path.lexists(dst / "f"):
        os.unlink(dst / "f")
    os.symlink(str(outside / "f"), dst / "f")       # an existing symlink is replaced, not written through
    os.unlink(dst / "sub")
    moat(daemon, "cp", f"{cp_container}:/d/f", str(dst), check=0)
    assert not os.path.islink(dst / "f") and (dst / "f").read_text() == "hi\n"
    assert os.listdir(outside) == []
    # a symlink that climbs out of the destination is refused, as docker refuses it
    p = moat(daemon, "cp", f"{cp_container}:/e", str(tmp_path / "e"))
    k = docker(daemon, "cp", f"{cp_container}:/e", str(tmp_path / "e2"))
    assert p.returncode == k.returncode == 1, (p.stderr, k.stderr)


def container_tree(d, name, path):
    p = docker(d, "exec", name, "sh", "-c", f"cd {path} && find . | sort | while read f; do "
               "if [ -L \"$f\" ]; then echo \"$f L $(readlink \"$f\")\"; elif [ -d \"$f\" ]; then "
               "echo \"$f D $(stat -c %a \"$f\")\"; else echo \"$f F $(stat -c '%a %u' \"$f\") $(cat \"$f\")\"; fi; done",
               check=0)
    return p.stdout


TO_CASES = [("f", "/T/"), ("f", "/T/new"), ("f", "/T/exfile"), ("dir", "/T/"), ("dir", "/T/newdir"),
            ("dir/.", "/T/"), ("dir/.", "/T/newdir2"), ("dir", "/T/exfile"), ("f", "/T/nodir/"),
            ("missing", "/T/"), ("link", "/T/"), ("-L link", "/T/")]


@pytest.mark.parametrize("src,dst", TO_CASES)
def test_cp_into_container_like_docker(daemon, cp_container, tmp_path, src, dst):
    src_dir = tmp_path / "src"
    (src_dir / "dir" / "sub").mkdir(parents=True)
    (src_dir / "f").write_text("file\n")
    (src_dir / "dir" / "a").write_text("a\n")
    os.chmod(src_dir / "dir" / "a", 0o600)
    (src_dir / "dir" / "sub" / "b").write_text("b\n")
    os.symlink("f", src_dir / "link")
    out = {}
    for tool, run in (("moat", moat), ("docker", docker)):
        root = f"/{tool}"
        daemon.ok("exec", cp_container, "sh", "-c", f"mkdir -p {root} && echo ex > {root}/exfile")
        *flags, s = src.split()
        p = run(daemon, "cp", *flags, s, f"{cp_container}:{dst.replace('/T', root)}", cwd=str(src_dir))
        out[tool] = (p.returncode, errors(p.stderr).replace(root, "/T").replace(str(src_dir), "SRC"),
                     container_tree(daemon, cp_container, root))
    m, k = out["moat"], out["docker"]
    assert m[0] == k[0], (m, k)
    assert m[2] == k[2]
    if m[0] != 0:
        assert m[1] == k[1]


def test_cp_stdin_tar_and_archive_mode(daemon, cp_container, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"from stdin\n"
        info = tarfile.TarInfo("in/s.txt")
        info.size, info.uid, info.gid = len(data), 1234, 4321
        t.addfile(info, io.BytesIO(data))
    moat(daemon, "cp", "-", f"{cp_container}:/d/", input=buf.getvalue(), text=False, check=0)
    assert docker(daemon, "exec", cp_container, "cat", "/d/in/s.txt", check=0).stdout == "from stdin\n"
    p = moat(daemon, "cp", "-", f"{cp_container}:/d/f", input=buf.getvalue(), text=False)
    k = docker(daemon, "cp", "-", f"{cp_container}:/d/f", input=buf.getvalue(), text=False)
    assert p.returncode == k.returncode == 1 and p.stderr == k.stderr
    f = tmp_path / "owned"
    f.write_text("x\n")
    os.chown(f, 1234, 4321)
    moat(daemon, "cp", "-a", str(f), f"{cp_container}:/d/a1", check=0)
    moat(daemon, "cp", str(f), f"{cp_container}:/d/a2", check=0)
    docker(daemon, "cp", "-a", str(f), f"{cp_container}:/d/k1", check=0)
    docker(daemon, "cp", str(f), f"{cp_container}:/d/k2", check=0)
    ids = docker(daemon, "exec", cp_container, "stat", "-c", "%u:%g", "/d/a1", "/d/a2", "/d/k1", "/d/k2",
                 check=0).stdout.split()
    assert ids[:2] == ids[2:] and ids[0] != ids[1], ids   # -a reaches the daemon as docker's does
    p = moat(daemon, "cp", "a:/x", "b:/y")
    assert p.returncode == 1 and p.stderr == "copying between containers is not supported\n"
    p = moat(daemon, "cp", "x", "y")
    assert p.returncode == 1 and p.stderr == "must specify at least one container source\n"


# ---- system df, system prune --------------------------------------------------------------

def no_times(text):
    return re.sub(r"(Up )?(About an? \w+|Less than a second|\d+ (second|minute|hour|day|week|month|year)s?)( ago)?",
                  "T", text)


def test_system_df_like_docker(daemon):
    moat(daemon, "volume", "create", "dfvol", check=0)
    try:
        n = "df-" + os.urandom(3).hex()
        daemon.run_d("--name", n, "-v", "dfvol:/v", IMAGE, "sh", "-c",
                     "echo 12345 > /v/x; echo rw > /rw; sleep 300")
        # both front ends must see the container's writes done
        assert wait_for(lambda: daemon.docker("exec", n, "test", "-s", "/rw").returncode == 0, 20)
        same_output(*both(daemon, "system", "df"))
        same_output(*both(daemon, "system", "df", "--format", "json"))
        same_output(*both(daemon, "system", "df", "--format", "{{.Type}}: {{.Active}}/{{.TotalCount}} {{.Size}}"))
        m, k = both(daemon, "system", "df", "-v")
        assert m.returncode == k.returncode == 0
        # cells compared (a time's words change the column widths)
        assert [[no_times(c) for c in row] for row in table(m.stdout)] == \
            [[no_times(c) for c in row] for row in table(k.stdout)]
        m, k = both(daemon, "system", "df", "-v", "--format", "json")
        assert json.loads(no_times(m.stdout)) == json.loads(no_times(k.stdout))
    finally:
        daemon.docker("rm", "-f", *daemon.docker("ps", "-aq", "--filter", "volume=dfvol").stdout.split())
        moat(daemon, "volume", "rm", "dfvol")


def test_system_prune(daemon):
    stopped = "pr-" + os.urandom(3).hex()
    cid = daemon.ok("create", "--name", stopped, IMAGE, "true").stdout.strip()
    running = daemon.run_d(IMAGE, "sleep", "300")
    p = moat(daemon, "system", "prune", input="n\n", check=0)
    assert p.stdout == ("WARNING! This will remove:\n  - all stopped containers\n  - all dangling images\n\n"
                        "Are you sure you want to continue? [y/N] ")
    assert cid in daemon.ok("ps", "-aq", "--no-trunc").stdout
    moat(daemon, "volume", "create", "--label", "pr=1", "prvol", check=0)
    p = moat(daemon, "system", "prune", "-f", "--volumes", check=0)
    assert p.stdout.startswith(f"Deleted Containers:\n{cid}\n\n"), p.stdout
    assert p.stdout.endswith("Total reclaimed space: 0B\n")
    ids = daemon.ok("ps", "-aq", "--no-trunc").stdout.split()
    assert cid not in ids and running in ids
    # named volumes are not anonymous: --volumes leaves them, as docker's does
    assert "prvol" in moat(daemon, "volume", "ls", "-q", check=0).stdout
    moat(daemon, "volume", "rm", "prvol", check=0)
    p = moat(daemon, "system", "prune", "-f", "--filter", "until=1h", check=0)
    assert p.stdout == "Total reclaimed space: 0B\n"
    # the daemon's own refusal of a filter is reported as docker reports it
    m = moat(daemon, "system", "prune", "-f", "--filter", "frob=1")
    assert m.returncode == 1 and m.stderr.startswith("Error response from daemon: ") and "frob" in m.stderr
