"""Fixtures every test package shares: one simulated gateway per test session (reset before each test),
a private redis-server for tests that stop it or need a password, and the local 3-node Redis Cluster."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.harness import SimulatorProcess
from tests.private_redis import PrivateRedis, free_port


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorProcess) -> SimulatorProcess:
    simulator.reset()
    return simulator


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A password-protected redis-server of the test's own, which the test may stop mid-run."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(free_port(), "s3cret-test-pass")
    server.start()
    yield server
    server.stop()


# devtools/redis_cluster.sh starts it (idempotent: .ci/run has usually started it already).
REDIS_CLUSTER_URL = "redis+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
REDIS_CLUSTER_SCRIPT = Path(__file__).resolve().parent.parent / "devtools" / "redis_cluster.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "redis_cluster: needs the local 3-node Redis Cluster (devtools/redis_cluster.sh)")


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """The URL of the local 3-node Redis Cluster on ports 7101-7103, started if it is not up. Skips only
    when redis-server is not installed; a cluster that cannot be started fails the test."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server and redis-cli are not installed: the Redis Cluster tests need them")
    started = subprocess.run([str(REDIS_CLUSTER_SCRIPT), "up"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, f"devtools/redis_cluster.sh up failed: {started.stderr}"
    return REDIS_CLUSTER_URL


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Replay the golden file: every invocation this run made that the golden file holds (recorded before the
    restructuring, normalised) must have answered the same messages and error, byte for byte."""
    import os

    from devtools import golden

    if os.environ.get(golden.OUT_ENV) or not golden.GOLDEN_FILE.exists():
        return
    recorded = golden.load(golden.GOLDEN_FILE)
    changed = golden.differences(golden.RECORDER.entries, recorded)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    replayed = sum(entry["key"] in recorded for entry in golden.RECORDER.entries)
    if reporter is not None and replayed:
        reporter.write_line(f"golden file: {replayed} recorded invocation(s) replayed, {len(changed)} answered differently")
    if changed:
        if reporter is not None:
            reporter.write_line(f"golden file: {len(changed)} invocation(s) answered differently than recorded:", red=True)
            for key in changed[:20]:
                reporter.write_line(f"  {key}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
