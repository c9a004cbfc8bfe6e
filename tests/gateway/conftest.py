from collections.abc import Iterator
from typing import Any

import pytest
import redis.connection

from gateway import GatewayClient
from simulator.harness import SimulatorProcess
from tests.gateway.helpers import make_client


@pytest.fixture
def client(sim: SimulatorProcess) -> GatewayClient:
    return make_client(sim)


class Trips:
    """Redis round trips made while a test runs (every command or pipeline sent on any connection)."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Trips]:
    counter = Trips()
    send = redis.connection.Connection.send_packed_command

    def counted(conn: Any, command: Any, check_health: bool = True) -> None:
        counter.count += 1
        send(conn, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counted)
    yield counter
