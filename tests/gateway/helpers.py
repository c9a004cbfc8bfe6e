"""Clients for the client tests: against the simulator, or against an in-memory transport."""

from __future__ import annotations

from typing import Any

from gateway import GatewayClient, GatewayConfig
from gateway.call.breaker import BreakerSettings
from gateway.call.retry import RetryPolicy
from gateway.state.shared import InProcessState
from gateway.wire.transport import MemoryTransport, Reply
from simulator.harness import SimulatorProcess

FAST_RETRIES = {"base_delay": 0.01, "max_delay": 0.05}


def make_client(sim: SimulatorProcess, **overrides: object) -> GatewayClient:
    """A fresh client (own breaker state) with fast retries, so fault tests stay quick."""
    creds = {"api_key": sim.api_key, "base_url": sim.base_url, "max_retries": "2", **overrides}
    config = GatewayConfig.from_credentials(creds)
    return GatewayClient(config, state=InProcessState(), retry=RetryPolicy(max_retries=config.max_retries, **FAST_RETRIES))


def memory_client(
    *replies: Reply, breaker: BreakerSettings | None = None, transport: MemoryTransport | None = None, **credentials: object
) -> tuple[GatewayClient, MemoryTransport]:
    """A client whose requests are answered by `replies` in order (or by `transport`), with its own
    breaker state and near-instant retries."""
    creds: dict[str, Any] = {"api_key": "sk-memory-test-key-0123456789", "base_url": "http://gateway.test/v1", "max_retries": "2", **credentials}
    config = GatewayConfig.from_credentials(creds)
    transport = transport or MemoryTransport(replies)
    client = GatewayClient(
        config,
        state=InProcessState(breaker_settings=breaker),
        retry=RetryPolicy(max_retries=config.max_retries, base_delay=0.001, max_delay=0.002),
        transport=transport,
    )
    return client, transport


def completion(text: str, model: str = "deepseek-v3.2", *, usage: bool = True) -> Reply:
    data: dict[str, Any] = {
        "id": "cmpl-1",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    if usage:
        data["usage"] = {"prompt_tokens": 10, "completion_tokens": 5}
    return Reply.json(data)


def delta(text: str, *, finish: str | None = None, model: str = "deepseek-v3.2") -> dict[str, Any]:
    return {"id": "chunk", "model": model, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def usage_event() -> dict[str, Any]:
    return {"id": "chunk", "model": "deepseek-v3.2", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 2}}


def status(code: int, message: str = "nope", headers: dict[str, str] | None = None) -> Reply:
    return Reply.json({"error": {"message": message}}, status=code, headers=headers)
