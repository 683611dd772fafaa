"""python3-docker (Debian's 5.0.3) against `moat daemon`: what scripts and
tools built on docker-py call, checked by what the library returns and by
what the kernel shows.

One daemon per module (daemon_fixture.py); every container a test made is
removed after it and must leave nothing behind.
"""

import os
import time

import pytest

import harness
from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, wait_for  # noqa: F401

docker_py = pytest.importorskip("docker")


@pytest.fixture
def client(daemon):
    c = docker_py.DockerClient(base_url="unix://" + daemon.sock, version="auto", timeout=60)
    try:
        yield c
    finally:
        c.close()


def name(prefix="py"):
    return f"{prefix}-{os.urandom(4).hex()}"


def test_run_foreground_returns_output(client):
    out = client.containers.run(IMAGE, ["sh", "-c", "echo hello; echo err >&2"], remove=True)
    assert out == b"hello\n"
    out = client.containers.run(IMAGE, ["sh", "-c", "echo o; echo e >&2"], remove=True, stdout=True, stderr=True)
    assert sorted(out.splitlines()) == [b"e", b"o"]
    with pytest.raises(docker_py.errors.ContainerError) as ei:
        client.containers.run(IMAGE, ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert ei.value.exit_status == 3
    assert b"bad" in ei.value.stderr


def test_run_missing_image_and_command(client):
    with pytest.raises(docker_py.errors.ImageNotFound):
        client.containers.create("localhost/no-such-image:1")
    with pytest.raises(docker_py.errors.APIError) as ei:
        client.containers.run(IMAGE, "nosuchcmd", name=name())
    assert "executable file not found" in str(ei.value)


def test_detached_lifecycle(client, daemon):
    n = name()
    c = client.containers.run(IMAGE, ["sh", "-c", 'echo up; trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done'],
                              detach=True, name=n, labels={"suite": "py"}, environment={"K": "V"})
    assert c.name == n and len(c.id) == 64
    c.reload()
    st = c.attrs["State"]
    assert c.status == "running" and st["Running"] and st["Pid"] > 0
    assert harness.pid_alive(st["Pid"])
    assert c.labels == {"suite": "py"}
    assert "K=V" in c.attrs["Config"]["Env"]
    assert wait_for(lambda: c.logs() == b"up\n")
    assert [x.id for x in client.containers.list(filters={"label": "suite=py", "name": n})] == [c.id]
    assert client.containers.get(n).id == c.id

    # exit codes here; the output of exec_run is test_exec_run_output_not_lost's
    assert c.exec_run(["sh", "-c", "exit 3"]).exit_code == 3
    r = c.exec_run(["sh", "-c", 'test "$(id -u) $(pwd) $X" = "65534 /tmp 1"'], user="nobody", workdir="/tmp",
                   environment={"X": "1"})
    assert r.exit_code == 0

    c.pause()
    c.reload()
    assert c.status == "paused"
    c.unpause()
    c.reload()
    assert c.status == "running"

    c.stop(timeout=5)
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 0
    assert c.wait() == {"StatusCode": 0, "Error": None}
    assert c.logs() == b"up\nbye\n"
    assert c.logs(stdout=False) == b""
    c.remove()
    with pytest.raises(docker_py.errors.NotFound):
        client.containers.get(n)


def test_exec_run_output_not_lost(client):
    c = client.containers.run(IMAGE, ["sleep", "100"], detach=True, name=name())
    results = []
    for i in range(20):
        r = c.exec_run(["echo", f"line-{i}"])
        results.append((r.exit_code, r.output))
        r = c.exec_run(["sh", "-c", f"echo o{i}; echo e{i} >&2"], demux=True)
        results.append((r.exit_code, r.output))
    c.remove(force=True)
    want = []
    for i in range(20):
        want += [(0, f"line-{i}\n".encode()), (0, (f"o{i}\n".encode(), f"e{i}\n".encode()))]
    lost = [(w, g) for w, g in zip(want, results) if w != g]
    assert not lost, f"{len(lost)} of {len(want)} exec_run results wrong: {lost[:4]}"


def test_wait_kill_and_exit_codes(client):
    c = client.containers.run(IMAGE, ["sh", "-c", "sleep 0.5; exit 9"], detach=True, name=name())
    assert c.wait(timeout=30)["StatusCode"] == 9
    c.remove()
    c = client.containers.run(IMAGE, ["sleep", "100"], detach=True, name=name())
    c.kill()
    assert c.wait(timeout=30)["StatusCode"] == 137
    c.remove(force=True)
    c = client.containers.run(IMAGE, ["sh", "-c", 'trap "exit 11" USR1; while :; do sleep 0.1; done'], detach=True,
                              name=name())
    time.sleep(0.3)
    c.kill(signal="SIGUSR1")
    assert c.wait(timeout=30)["StatusCode"] == 11
    c.remove()


def test_remove_force_running(client, daemon):
    c = client.containers.run(IMAGE, ["sleep", "100"], detach=True, name=name())
    c.reload()
    pid = c.attrs["State"]["Pid"]
    with pytest.raises(docker_py.errors.APIError) as ei:
        c.remove()
    assert ei.value.status_code == 409
    c.remove(force=True)
    assert wait_for(lambda: not harness.pid_alive(pid), 10)
    with pytest.raises(docker_py.errors.NotFound):
        c.reload()


def test_logs_stream_follow_ends(client):
    c = client.containers.run(IMAGE, ["sh", "-c", "echo a; sleep 1; echo b"], detach=True, name=name())
    got = b"".join(c.logs(stream=True, follow=True))
    assert got == b"a\nb\n"
    c.remove()


def test_rename_restart(client):
    n, m = name(), name()
    c = client.containers.run(IMAGE, ["sleep", "100"], detach=True, name=n)
    c.rename(m)
    c.reload()
    assert c.name == m
    pid = c.attrs["State"]["Pid"]
    c.restart(timeout=1)
    c.reload()
    assert c.status == "running" and c.attrs["State"]["Pid"] != pid
    c.remove(force=True)


def test_stats_one_shot(client):
    c = client.containers.run(IMAGE, ["sh", "-c", "sleep 100 & while :; do :; done"], detach=True, name=name(),
                              mem_limit="64m")
    s = c.stats(stream=False)
    assert s["memory_stats"]["usage"] > 0
    assert s["memory_stats"]["limit"] == 64 << 20
    assert s["pids_stats"]["current"] >= 2
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["name"] == "/" + c.name and s["id"] == c.id
    c.remove(force=True)


def test_attrs_state(client):
    c = client.containers.create(IMAGE, ["true"], name=name())
    st = c.attrs["State"]
    assert st["Status"] == "created" and not st["Running"] and st["Pid"] == 0
    assert st["StartedAt"] == "0001-01-01T00:00:00Z"
    c.start()
    c.wait()
    c.reload()
    st = c.attrs["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 0
    assert st["FinishedAt"] >= st["StartedAt"] > "0001"
    c.remove()


def test_images_list(client):
    imgs = client.images.list()
    tagged = [i for i in imgs if IMAGE in i.tags]
    assert len(tagged) == 1
    img = tagged[0]
    assert img.id.startswith("sha256:")
    assert client.images.get(IMAGE).id == img.id
    assert img.attrs["Config"]["Cmd"] == ["/bin/sh"]


def test_volumes(client):
    n = name("vol")
    v = client.volumes.create(n, labels={"k": "v"})
    try:
        assert v.name == n
        assert n in [x.name for x in client.volumes.list()]
        out = client.containers.run(IMAGE, ["sh", "-c", "echo kept > /v/f"], volumes={n: {"bind": "/v"}}, remove=True)
        assert out == b""
        out = client.containers.run(IMAGE, ["cat", "/v/f"], volumes={n: {"bind": "/v", "mode": "ro"}}, remove=True)
        assert out == b"kept\n"
    finally:
        v.remove(force=True)
    assert n not in [x.name for x in client.volumes.list()]


def test_events_decoded(client):
    n = name()
    since = int(time.time()) - 1
    client.containers.run(IMAGE, ["true"], name=n, remove=True)
    time.sleep(1.1)
    until = int(time.time()) + 1
    evs = list(client.events(since=since, until=until, decode=True, filters={"container": n}))
    actions = [e["Action"] for e in evs]
    assert [a for a in actions if a in ("create", "start", "die", "destroy")] == ["create", "start", "die",
                                                                                   "destroy"], actions
    for e in evs:
        assert e["Type"] == "container" and e["Actor"]["Attributes"]["name"] == n
        assert isinstance(e["time"], int) and isinstance(e["timeNano"], int)
        assert since <= e["time"] <= until
    die = [e for e in evs if e["Action"] == "die"][0]
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    assert die["Actor"]["Attributes"]["image"] == IMAGE
