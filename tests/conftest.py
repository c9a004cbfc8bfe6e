"""Fixtures every test package shares: one simulated gateway per test session, reset before each test."""

from collections.abc import Iterator

import pytest

from simulator.harness import SimulatorProcess


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorProcess) -> SimulatorProcess:
    simulator.reset()
    return simulator
