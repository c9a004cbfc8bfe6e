"""The plugin under the real Dify runtime (python -m main, INSTALL_METHOD=local, JSON lines on stdio),
against the project's simulated gateway. What these tests read is what a workflow would receive."""

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="session")
def plugin() -> Iterator[PluginProcess]:
    with PluginProcess() as process:
        yield process


@pytest.fixture
def credentials(sim: SimulatorProcess) -> dict[str, Any]:
    # max_retries 2 as a user would leave it; the simulator's faults carry short Retry-After values.
    return {"api_key": sim.api_key, "base_url": sim.base_url, "default_model": "deepseek-v3.2", "max_retries": "2"}


def attempts_for(sim: SimulatorProcess, prompt: str) -> int:
    return sim.stats()["chat_requests_by_prompt"].get(prompt, 0)


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A webhook receiver on loopback (tests.plugin.test_approval_notifications.Receiver), closed after."""
    from tests.plugin.test_approval_notifications import Receiver

    server = Receiver()
    yield server
    server.close()
