"""pytest wiring for every pytest tier (integration, security, managers).

Session: become a child subreaper (detached container inits re-parent to
us), build the busybox rootfs once in a temp dir, register the `moat_only`
marker (skipped unless the runtime's basename is moat-runtime).
Per test: the `env` fixture (harness.Env) whose teardown force-deletes every
container and fails the test if anything was left behind.
"""

import os
import shutil
import tempfile

import pytest

import harness  # tests/harness.py: pytest puts this directory on sys.path (rootdir conftest)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "moat_only: behaviour moat must have that runc 1.1 does not "
        "(skipped unless the runtime under test is moat-runtime)")


def pytest_collection_modifyitems(config, items):
    if harness.is_moat():
        return
    skip = pytest.mark.skip(reason=f"moat_only: runtime under test is "
                                   f"{os.path.basename(harness.runtime_path())}")
    for item in items:
        if "moat_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def session_tmp():
    if os.geteuid() != 0:
        pytest.skip("the runtime integration tests need root")
    rt = harness.runtime_path()
    if not os.access(rt, os.X_OK):
        pytest.fail(f"runtime under test {rt!r} is not executable "
                    "(set MOAT_RUNTIME or build first)")
    payload = harness.payload_path()
    if not os.access(payload, os.X_OK):
        pytest.fail(f"test payload {payload!r} is missing (build first or set MOAT_PAYLOAD)")
    harness.become_subreaper()
    d = tempfile.mkdtemp(prefix="moat-it-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    harness.reap_orphans()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs(session_tmp):
    dest = os.path.join(session_tmp, "rootfs")
    harness.build_rootfs(dest, harness.payload_path())
    return dest


@pytest.fixture
def env(request, session_tmp, rootfs):
    tmp = tempfile.mkdtemp(prefix="t-", dir=session_tmp)
    os.chmod(tmp, 0o755)
    e = harness.Env(tmp, rootfs, harness.payload_path())
    yield e
    problems = e.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
    if problems:
        pytest.fail("left behind after the test:\n  " + "\n  ".join(problems),
                    pytrace=False)


@pytest.fixture
def private_rootfs(env, rootfs):
    """A private copy of the rootfs (for tests that plant files in it)."""
    dest = env.path("rootfs-copy")
    shutil.copytree(rootfs, dest, symlinks=True)
    return dest


@pytest.fixture(autouse=True, scope="module")
def _image_daemons():
    """Stops the daemons tests/integration/image_daemons.py started for this module."""
    yield
    import sys
    mod = sys.modules.get("image_daemons")
    if mod:
        problems = mod.stop_all()
        if problems:
            pytest.fail("left behind by the image daemons:\n  " + "\n  ".join(problems), pytrace=False)
