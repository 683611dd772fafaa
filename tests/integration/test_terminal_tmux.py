"""A real terminal (tmux) attached to `run` and `exec` in the foreground.

Without --console-socket, moat-runtime relays the caller's terminal: raw
mode while the container runs, the window size copied (and followed on
resize), the caller's terminal mode restored on exit.
"""

import os
import shlex
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "managers"))
from managers import Tmux  # noqa: E402  (a shared driver for tmux sessions)

from harness import is_moat, wait_for  # noqa: E402


@pytest.fixture
def tmux(env):
    t = Tmux(env.path())
    env.on_cleanup(t.stop)
    return t


def shell_config():
    return {"process": {"terminal": True, "args": ["/bin/sh"], "env": [
        "PATH=/bin", "TERM=xterm", "PS1=moat# "]}}


@pytest.mark.moat_only
def test_run_attaches_callers_terminal(env, tmux):
    c = env.container(["/bin/sh"], shell_config())
    modefile = env.path("stty-after")
    cmd = (" ".join(shlex.quote(a) for a in env.rt.argv("run", "--bundle", c.bundle, c.id))
           + f"; s=$?; stty -a > {shlex.quote(modefile)}; (exit $s)")
    tmux.start(cmd)
    tmux.wait_text(r"^moat# ")
    tmux.send("stty size; echo answer-$((6*7))")
    tmux.wait_text(r"^answer-42$")
    assert "30 120" in tmux.screen(), tmux.screen()
    tmux.send("tty")
    tmux.wait_text(r"^/dev/pts/\d+$")
    # a resize of the caller's terminal reaches the container
    tmux._cmd("resize-window", "-t", tmux.name, "-x", "100", "-y", "25")
    wait_for(lambda: tmux.size() == "25 100", 10)
    tmux.send("stty size")
    tmux.wait_text(r"^25 100$")
    tmux.send("exit 3")
    tmux.wait_text(r"^EXITED=3$", unless=None)
    # the caller's terminal is back in cooked mode with echo
    assert wait_for(lambda: os.path.exists(modefile) and os.path.getsize(modefile) > 0, 10)
    with open(modefile) as f:
        mode = f.read()
    assert " icanon" in mode and " echo" in mode, mode
    assert not os.path.exists(c.state_dir)


@pytest.mark.moat_only
def test_exec_tty_attaches_callers_terminal(env, tmux):
    c = env.container(["/bin/payload", "sleep", "60"])
    c.run_detached()
    cmd = " ".join(shlex.quote(a) for a in env.rt.argv(
        "exec", "-t", "--env", "PS1=inside# ", c.id, "/bin/sh"))
    tmux.start(cmd)
    tmux.wait_text(r"^inside# ")
    tmux.send("stty size; echo pid1-$(cat /proc/1/comm)")
    tmux.wait_text(r"^pid1-payload$")
    assert "30 120" in tmux.screen()
    tmux.send("exit 4")
    tmux.wait_text(r"^EXITED=4$", unless=None)
