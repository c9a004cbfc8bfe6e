"""Fixtures of the workflow tier: one simulated gateway and one plugin process for the session (the
plugin runs from the main virtualenv, as the daemon runs it from its own environment)."""

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess
from tests_workflow.harness import PLUGIN_PYTHON


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess() as sim:
        yield sim


@pytest.fixture
def sim(simulator: SimulatorProcess) -> SimulatorProcess:
    simulator.reset()
    return simulator


@pytest.fixture(scope="session")
def plugin() -> Iterator[PluginProcess]:
    if not PLUGIN_PYTHON.exists():
        pytest.fail(f"{PLUGIN_PYTHON} is missing: the plugin runs from the main virtualenv (run ./dev test-workflows, which creates it)")
    with PluginProcess(python=str(PLUGIN_PYTHON)) as process:
        yield process


@pytest.fixture
def credentials(sim: SimulatorProcess) -> dict[str, Any]:
    # The provider credentials a user would save (max_retries as a user would leave it).
    return {"api_key": sim.api_key, "base_url": sim.base_url, "default_model": "deepseek-v3.2", "max_retries": "2"}
