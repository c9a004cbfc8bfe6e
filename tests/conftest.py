"""Fixtures every test package shares: one simulated gateway per test session (reset before each test),
and a private redis-server for tests that stop it or need a password."""

import shutil
from collections.abc import Iterator

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
