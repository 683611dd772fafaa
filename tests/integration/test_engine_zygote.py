"""The monitor zygote (issue 7; src/monitor/zygote.h): the daemon forks
per-container monitors from one `moat-monitor zygote` process instead of
exec'ing moat-monitor for every start.

Checked against a real daemon: each monitor is the daemon's child (the
zygote clones with CLONE_PARENT), a killed zygote is replaced at the next
start and reaped, and the zygote goes when the daemon stops. The spare (a
monitor cloned one request ahead, which warms up at SCHED_IDLE and makes a
network namespace) serves the next start at SCHED_OTHER, its container in
that namespace, a killed spare is replaced, and the spare goes with the
daemon, reaped. The daemon holds the spare's socket and sends it the
request itself: the zygote keeps neither end. Its protocol is checked by
driving `moat-monitor zygote` directly: each spare is announced with its
socket and pidfd, malformed requests get an errno answer and no process,
end of input ends it.
"""

import os
import signal
import socket
import struct
import subprocess

import pytest

import harness
from daemon_fixture import IMAGE, daemon, demo_image_tar, moat_daemon, new_daemon, wait_for  # noqa: F401

REPLY = struct.Struct("=iii")   # struct moat_zygote_reply


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    return None


def children_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if status_field(int(d), "PPid") == str(ppid):
                    out.append(int(d))
            except OSError:
                pass
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def zygotes_of(daemon_pid):
    """The daemon's children named moat-zygote, once that is settled: a spare
    the zygote has just cloned (after the last start) bears its name until
    it renames itself."""
    found = []

    def settled():
        found[:] = [p for p in children_of(daemon_pid) if comm(p) == "moat-zygote"]
        return len(found) <= 1
    wait_for(settled, timeout=5)
    return list(found)


def spares_of(daemon_pid):
    return [p for p in children_of(daemon_pid) if comm(p) == "moat-spare"]


def monitor_of(d, cid):
    st = d.inspect(cid)["State"]
    pid = st["Pid"]
    return int(status_field(pid, "PPid"))


def test_monitor_is_the_daemons_child_forked_by_the_zygote(daemon):
    d = daemon
    cid = d.run_d(IMAGE, "sleep", "1000")
    mon = monitor_of(d, cid)
    assert status_field(mon, "PPid") == str(d.pid), "the monitor must be the daemon's child"
    zs = zygotes_of(d.pid)
    assert len(zs) == 1, f"one zygote under the daemon, found {zs}"
    # forked, not exec'd: the monitor runs the zygote's image (no second
    # program), names itself, and works in the container's run directory
    assert os.readlink(f"/proc/{zs[0]}/exe").endswith("/moat-monitor")
    assert os.readlink(f"/proc/{mon}/exe") == os.readlink(f"/proc/{zs[0]}/exe")
    assert cmdline(mon)[1:2] == [b"zygote"]
    assert comm(mon) == "moat-monitor"
    assert os.readlink(f"/proc/{mon}/cwd").endswith(f"/containers/{cid}")
    # the create ran on a side stack of the one thread: the monitor has one thread
    assert status_field(mon, "Threads") == "1"


def test_spare_serves_the_next_start_at_normal_priority(daemon):
    d = daemon
    d.run_d(IMAGE, "true")   # the zygote and its first spare exist
    assert wait_for(lambda: len(spares_of(d.pid)) == 1), "no spare under the daemon"
    spare = spares_of(d.pid)[0]
    # it warms up at SCHED_IDLE, but waits at SCHED_OTHER, as what it starts must run
    assert wait_for(lambda: os.sched_getscheduler(spare) == os.SCHED_OTHER), os.sched_getscheduler(spare)
    # the network namespace it made ahead, held for its container
    netns = [os.readlink(f"/proc/{spare}/fd/{fd}") for fd in os.listdir(f"/proc/{spare}/fd")]
    netns = [n for n in netns if n.startswith("net:")]
    assert len(netns) == 1 and netns[0] != os.readlink(f"/proc/{spare}/ns/net"), netns
    assert os.readlink(f"/proc/{spare}/ns/net") == os.readlink("/proc/self/ns/net")
    cid = d.run_d(IMAGE, "sleep", "1000")
    init = d.inspect(cid)["State"]["Pid"]
    mon = int(status_field(init, "PPid"))
    assert mon == spare, "the start was not served by the waiting spare"
    assert comm(mon) == "moat-monitor"
    # what runs the container must not keep the spare's idle policy
    assert os.sched_getscheduler(mon) == os.SCHED_OTHER
    assert os.sched_getscheduler(init) == os.SCHED_OTHER
    # the container is in that namespace; the monitor stayed in ours and kept no fd of it
    assert os.readlink(f"/proc/{init}/ns/net") == netns[0]
    assert os.readlink(f"/proc/{mon}/ns/net") == os.readlink("/proc/self/ns/net")
    assert not [fd for fd in os.listdir(f"/proc/{mon}/fd") if os.readlink(f"/proc/{mon}/fd/{fd}").startswith("net:")]
    assert wait_for(lambda: len(spares_of(d.pid)) == 1 and spares_of(d.pid)[0] != spare), "no new spare"
    assert d.docker("rm", "-f", cid).returncode == 0


def test_killed_spare_is_replaced_and_reaped(daemon):
    d = daemon
    d.run_d(IMAGE, "true")
    assert wait_for(lambda: len(spares_of(d.pid)) == 1)
    spare = spares_of(d.pid)[0]
    os.kill(spare, signal.SIGKILL)
    assert wait_for(lambda: not os.path.exists(f"/proc/{spare}")), "the dead spare was not reaped"
    cid = d.run_d(IMAGE, "sleep", "1000")
    assert d.inspect(cid)["State"]["Running"]
    mon = int(status_field(d.inspect(cid)["State"]["Pid"], "PPid"))
    assert status_field(mon, "PPid") == str(d.pid)
    assert wait_for(lambda: len(spares_of(d.pid)) == 1), "no spare after the dead one"
    assert d.docker("rm", "-f", cid).returncode == 0


def unix_sockets():
    """inode -> peer inode of every unix socket on this host (ss -x)."""
    out = subprocess.run(["ss", "-xaH"], capture_output=True, text=True, check=True).stdout
    peers = {}
    for line in out.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local-Address Port Peer-Address Port
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit():
            peers[int(f[5])] = int(f[7])
    return peers


def socket_inodes(pid):
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def holders_of(inode):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if inode in socket_inodes(int(d)):
                    out.append(int(d))
            except OSError:
                pass
    return out


def test_spare_socket_is_held_by_the_daemon_not_the_zygote(daemon):
    d = daemon
    d.run_d(IMAGE, "true")
    assert wait_for(lambda: len(spares_of(d.pid)) == 1)
    spare = spares_of(d.pid)[0]
    zygote = zygotes_of(d.pid)[0]
    peers = unix_sockets()
    spare_ends = [i for i in socket_inodes(spare) if i in peers]
    assert len(spare_ends) == 1, (spare_ends, peers)
    # the other end: the daemon's, or on its way to the daemon (announced,
    # not yet read); never the zygote's
    holders = holders_of(peers[spare_ends[0]])
    assert set(holders) <= {d.pid}, holders
    # nor its pidfd: what the zygote holds is its stdio, its socket and the
    # pipe that tells it the spare was taken
    zfds = [os.readlink(f"/proc/{zygote}/fd/{fd}") for fd in os.listdir(f"/proc/{zygote}/fd")]
    assert not [f for f in zfds if "pidfd" in f], zfds
    assert len(zfds) == 5, zfds
    cid = d.run_d(IMAGE, "sleep", "1000")
    assert monitor_of(d, cid) == spare
    assert d.docker("rm", "-f", cid).returncode == 0


def test_killed_zygote_is_replaced_and_reaped(daemon):
    d = daemon
    d.run_d(IMAGE, "true")   # make sure one exists
    old = zygotes_of(d.pid)
    assert len(old) == 1
    os.kill(old[0], signal.SIGKILL)
    assert wait_for(lambda: not os.path.exists(f"/proc/{old[0]}")), "the dead zygote was not reaped"
    cid = d.run_d(IMAGE, "sleep", "1000")
    assert d.inspect(cid)["State"]["Running"]
    new = zygotes_of(d.pid)
    assert len(new) == 1 and new[0] != old[0]


def test_zygote_goes_with_the_daemon(session_tmp, demo_image_tar):
    d = new_daemon(session_tmp, demo_image_tar)
    try:
        d.start()
        cid = d.run_d(IMAGE, "sleep", "1000")
        zs = zygotes_of(d.pid)
        assert len(zs) == 1
        assert wait_for(lambda: len(spares_of(d.pid)) == 1)
        spare = spares_of(d.pid)[0]
        assert d.docker("rm", "-f", cid).returncode == 0
        assert d.stop() == 0
        for pid, what in ((zs[0], "zygote"), (spare, "spare")):
            assert wait_for(lambda pid=pid: not os.path.exists(f"/proc/{pid}/exe")), f"the {what} outlived the daemon"
            # reaped by the daemon itself: no zombie is left for the reaper
            # above it (this test is a subreaper and has not reaped yet)
            assert not os.path.exists(f"/proc/{pid}"), f"the daemon left its {what} unreaped"
    finally:
        problems = d.cleanup()
        harness.reap_orphans()
    assert not problems, problems


# ---- the protocol, driven directly -----------------------------------------------------


@pytest.fixture
def zygote():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mon = os.path.join(harness.build_dir(), "src", "monitor", "moat-monitor")
    fd = theirs.fileno()
    p = subprocess.Popen(["/bin/bash", "-c", f'exec "$0" zygote 3<&{fd} {fd}<&-', mon], pass_fds=(fd,),
                         stdin=subprocess.DEVNULL)
    theirs.close()
    ours.settimeout(10)
    yield ours, p
    close_announced()
    ours.close()
    try:
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        # its spare is our child (CLONE_PARENT); the zygote waited for it to exit
        harness.reap_orphans()


ANNOUNCED = []   # the announced spares' sockets, kept open until the test ends


def receive(sock):
    """The next answer, past the spares the zygote announces ({0, 0, pid} with
    the spare's socket and pidfd)."""
    while True:
        msg, got, _flags, _addr = socket.recv_fds(sock, REPLY.size + 16, 2)
        assert len(msg) == REPLY.size, msg
        pid, err, spare = REPLY.unpack(msg)
        if pid == 0 and err == 0 and spare > 0:
            assert len(got) == 2, got
            ANNOUNCED.extend(got)
            continue
        assert spare == 0
        return (pid, err), got


def ask(sock, payload, fds=()):
    socket.send_fds(sock, [payload], list(fds))
    answer, got = receive(sock)
    for fd in got:
        os.close(fd)
    return answer, len(got)


def close_announced():
    while ANNOUNCED:
        os.close(ANNOUNCED.pop())


def test_zygote_refuses_malformed_requests(zygote):
    sock, p = zygote
    r, w = os.pipe()
    try:
        # what it holds after its start: its stdio, its socket and the pipe
        # that tells it the spare was taken (the spare's socket and pidfd
        # are ours)
        assert wait_for(lambda: len(os.listdir(f"/proc/{p.pid}/fd")) == 5), os.listdir(f"/proc/{p.pid}/fd")
        # no sync fd attached
        (pid, err), nfds = ask(sock, b"moat-monitor\0run\0")
        assert (pid, err, nfds) == (0, 74, 0)        # EBADMSG
        # not NUL-terminated
        (pid, err), nfds = ask(sock, b"moat-monitor\0run", [w])
        assert (pid, err, nfds) == (0, 74, 0)
        # a verb it does not fork for
        (pid, err), nfds = ask(sock, b"moat-monitor\0cleanup\0", [w])
        assert (pid, err, nfds) == (0, 22, 0)        # EINVAL
        # too many arguments
        (pid, err), nfds = ask(sock, b"moat-monitor\0run\0" + b"x\0" * 40, [w])
        assert (pid, err, nfds) == (0, 22, 0)
        # more than the one fd
        (pid, err), nfds = ask(sock, b"moat-monitor\0run\0", [w, r])
        assert (pid, err, nfds) == (0, 74, 0)
        # the zygote kept none of the fds it was sent
        assert len(os.listdir(f"/proc/{p.pid}/fd")) == 5, os.listdir(f"/proc/{p.pid}/fd")
    finally:
        os.close(r)
        os.close(w)
    assert p.poll() is None, "the zygote must survive bad requests"
    assert children_of(p.pid) == []


def test_zygote_forks_a_monitor_that_reports_on_its_sync_fd(zygote):
    sock, p = zygote
    r, w = os.pipe()
    try:
        # a run without --bundle: the forked monitor answers its error on fd 3
        (pid, err), nfds = ask(sock, b"moat-monitor\0run\0--id\0zyg-test\0--sync-fd\0003\0", [w])
        os.close(w)
        w = -1
        assert err == 0 and pid > 0 and nfds == 1
        with os.fdopen(r, "rb") as f:
            r = -1
            line = f.readline()
        assert b'"error"' in line and b"--bundle" in line, line
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
        harness.reap_orphans()


def test_zygote_exits_at_end_of_input(zygote):
    sock, p = zygote
    sock.shutdown(socket.SHUT_RDWR)
    assert p.wait(timeout=10) == 0


def test_announced_spare_serves_a_request_and_the_zygote_clones_the_next(zygote):
    sock, p = zygote
    r, w = os.pipe()
    try:
        msg, got, _flags, _addr = socket.recv_fds(sock, REPLY.size + 16, 2)
        pid, err, spare = REPLY.unpack(msg)
        assert (pid, err) == (0, 0) and spare > 0 and len(got) == 2, (pid, err, spare, got)
        ANNOUNCED.extend(got)
        spare_sock = socket.socket(fileno=os.dup(got[0]))
        # the same request the zygote takes, sent to the spare itself
        socket.send_fds(spare_sock, [b"moat-monitor\0run\0--id\0zyg-spare\0--sync-fd\0003\0"], [w])
        spare_sock.close()
        os.close(w)
        w = -1
        with os.fdopen(r, "rb") as f:
            r = -1
            line = f.readline()
        assert b'"error"' in line and b"--bundle" in line, line
        # the spare it announced was the one that answered; taken, it is
        # followed by another
        msg, got, _flags, _addr = socket.recv_fds(sock, REPLY.size + 16, 2)
        pid, err, nxt = REPLY.unpack(msg)
        ANNOUNCED.extend(got)
        assert (pid, err) == (0, 0) and nxt > 0 and nxt != spare and len(got) == 2
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
        harness.reap_orphans()
