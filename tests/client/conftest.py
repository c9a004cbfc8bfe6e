import pytest

from gateway import GatewayClient
from simulator.harness import SimulatorProcess
from tests.client.helpers import make_client


@pytest.fixture
def client(sim: SimulatorProcess) -> GatewayClient:
    return make_client(sim)
