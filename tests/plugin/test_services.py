"""The process's wiring (`services.Services.create`): one set of gateway clients and stores per process,
shared by every invocation, by the job engine and by the metrics endpoint, and nothing shared between
two wirings (a test's or a dev tool's own)."""

from __future__ import annotations

import services
from gateway import ChatRequest, GatewayClient, GatewayConfig
from gateway.state.keys import workspace_scope
from gateway.wire.transport import MemoryTransport
from tests.gateway.helpers import completion

KEY = "sk-services-test-key-0123456789"


def config(**extra: str) -> GatewayConfig:
    return GatewayConfig.from_credentials({"api_key": KEY, "base_url": "http://gateway.test/v1", "max_retries": "0", **extra})


def test_every_invocation_of_a_process_gets_the_same_client_and_the_jobs_share_it() -> None:
    wiring = services.Services.create()
    client = wiring.gateway.client(config())
    assert wiring.gateway.client(config()) is client  # its warm keep-alive pool is kept between invocations
    assert wiring.jobs.gateway is wiring.gateway
    assert client.state is wiring.gateway.backends.state  # no redis_url: this process's breakers and limits


def test_what_a_tool_counts_is_what_the_metrics_endpoint_of_the_same_process_reads() -> None:
    wiring = services.Services.create()
    shown = wiring.gateway.backends.metrics_for("")  # what endpoints/metrics.py reads (no redis_url)
    assert wiring.gateway.client(config()).stores.metrics.store is shown  # type: ignore[attr-defined]
    # A client on the process's stores (the registry's, over a scripted gateway): its call is in the figures shown.
    client = GatewayClient(config(), transport=MemoryTransport([completion("hello")]), backends=wiring.gateway.backends)
    assert client.chat(ChatRequest.from_prompt("hi", model="deepseek-v3.2")).text == "hello"
    assert sum(v for k, v in shown.figures(workspace_scope(KEY)).items() if k[0] == "requests") == 1


def test_two_wirings_share_nothing() -> None:
    one, two = services.Services.create(), services.Services.create()
    assert one.gateway.client(config()) is not two.gateway.client(config())
    backends = (one.gateway.backends, two.gateway.backends)
    assert backends[0].state is not backends[1].state
    assert backends[0].cache is not backends[1].cache and backends[0].metrics is not backends[1].metrics
    assert backends[0].cache_for("", config().keys) is not backends[1].cache_for("", config().keys)
