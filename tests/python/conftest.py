"""Shared fixtures: per-test watchdog, unique shm names, hypothesis profile."""
import faulthandler
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # workers.py, for children as well

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ringmpsc",
        deadline=None,  # 2 shared cores: wall-clock deadlines would be noise; watchdogs bound time
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    settings.load_profile("ringmpsc")
except ImportError:  # pragma: no cover - run.sh installs hypothesis
    pass

DEFAULT_TEST_TIMEOUT = 60

# pytest captures fd 2 while a test runs, so a watchdog dump written there would be
# lost with the process; run.sh points this at a file it prints after a crash.
_log_path = os.environ.get("RINGMPSC_TEST_WATCHDOG_LOG")
_watchdog_file = open(_log_path, "a") if _log_path else sys.stderr


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test watchdog limit (default %d)" % DEFAULT_TEST_TIMEOUT)


@pytest.fixture(autouse=True)
def _watchdog(request):
    """A hung test dumps every thread's traceback and ends the run (a failure, never a stuck CI)."""
    marker = request.node.get_closest_marker("timeout")
    limit = marker.args[0] if marker else DEFAULT_TEST_TIMEOUT
    if _log_path:
        _watchdog_file.write("watchdog armed (%ss): %s\n" % (limit, request.node.nodeid))
        _watchdog_file.flush()
    faulthandler.dump_traceback_later(limit, exit=True, file=_watchdog_file)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def shm_name():
    """A fresh shm name; its /dev/shm entry is removed after the test."""
    names = []

    def make():
        n = "rmpsc-test-%d-%s" % (os.getpid(), uuid.uuid4().hex[:12])
        names.append(n)
        return n

    yield make
    for n in names:
        try:
            os.unlink("/dev/shm/" + n)
        except FileNotFoundError:
            pass


@pytest.fixture
def procs():
    """Processes started by a test; any still alive at the end are killed."""
    started = []
    yield started
    for p in started:
        if p.is_alive():
            p.kill()
        p.join(5)
