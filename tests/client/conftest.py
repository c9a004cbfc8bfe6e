
import pytest

from gateway import GatewayClient, GatewayConfig
from gateway.retry import RetryPolicy
from gateway.state import InProcessState
from simulator.harness import SimulatorProcess


def make_client(sim: SimulatorProcess, **overrides: object) -> GatewayClient:
    """A fresh client (own breaker state) with fast retries, so fault tests stay quick."""
    creds = {"api_key": sim.api_key, "base_url": sim.base_url, "max_retries": "2", **overrides}
    config = GatewayConfig.from_credentials(creds)
    return GatewayClient(config, state=InProcessState(), retry=RetryPolicy(max_retries=config.max_retries, base_delay=0.01, max_delay=0.05))


@pytest.fixture
def client(sim: SimulatorProcess) -> GatewayClient:
    return make_client(sim)
