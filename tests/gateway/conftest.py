import pytest

from gateway import GatewayClient
from simulator.harness import SimulatorProcess
from tests.gateway.helpers import make_client


@pytest.fixture
def client(sim: SimulatorProcess) -> GatewayClient:
    return make_client(sim)
