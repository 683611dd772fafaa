"""The image verbs of `moat` are clients of a daemon: tests that work on an
image store by its directory (its --root) get a `moat daemon` whose data
root is that directory, started on first use and stopped at the end of the
test module (the autouse fixture in tests/conftest.py calls stop_all()).
verify, mount and unmount have no Docker API and work on --root directly (the moat-image helper).
"""

import os
import tempfile

import harness
from daemon_fixture import MoatDaemon

IN_PROCESS = ("verify", "mount", "unmount")

_daemons = {}


def moat_path():
    return os.path.abspath(os.path.join(harness.build_dir(), "src", "cli", "moat"))


def daemon_for(root):
    """The daemon serving root (its --data-root), started on first use."""
    root = os.path.abspath(root)
    d = _daemons.get(root)
    if d is None or not d.alive():
        base = tempfile.mkdtemp(prefix="imgd-", dir="/tmp")
        d = MoatDaemon(base)
        d.args[d.args.index("--data-root") + 1] = root
        d.data = root
        d.start()
        _daemons[root] = d
    return d


def moat_argv(root, *args):
    if args and args[0] in IN_PROCESS:
        return [moat_path(), "--root", root, *args]
    return [moat_path(), "-H", "unix://" + daemon_for(root).sock, *args]


def stop_all():
    """Stops every daemon started here; returns what they left behind."""
    problems = []
    for d in _daemons.values():
        problems += d.cleanup()
    _daemons.clear()
    return problems
