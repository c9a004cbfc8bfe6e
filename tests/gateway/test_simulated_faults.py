"""Simulated gateway faults through the client: latency past the deadline, Retry-After forms, refused
json_schema, key echoes, resets mid-body, pacing under the gateway's RPM, random faults."""

import time

import pytest

from gateway import AuthenticationError, BadRequestError, CallOptions, ChatRequest, GatewayTimeoutError, RateLimitedError, UpstreamUnavailableError
from gateway.call.rate_limits import LimitSettings
from simulator.harness import SimulatorProcess
from tests.gateway.helpers import make_client


def ask(prompt: str, **kwargs: object) -> ChatRequest:
    return ChatRequest.from_prompt(prompt, model="deepseek-v3.2", **kwargs)  # type: ignore[arg-type]


def test_latency_past_the_deadline_is_a_timeout_that_is_not_retried(sim: SimulatorProcess) -> None:
    client = make_client(sim, timeout_seconds="1")
    prompt = "slow [[sim: latency=2500]]"
    started = time.monotonic()
    with pytest.raises(GatewayTimeoutError, match="not retried"):
        client.chat(ask(prompt))
    assert time.monotonic() - started < 2.0
    assert sim.stats()["chat_requests_by_prompt"][prompt] == 1


@pytest.mark.parametrize("header", ["retry_after=1", "retry_after_date=2"])
def test_retry_after_in_seconds_and_as_a_date_is_waited_for(sim: SimulatorProcess, header: str) -> None:
    client = make_client(sim)
    prompt = f"wait [[sim: 429x1, {header}]]"
    started = time.monotonic()
    result = client.chat(ask(prompt))
    assert result.attempts == 2
    assert time.monotonic() - started >= 0.9  # the gateway's wait, not our 10 ms test backoff


def test_retry_after_longer_than_the_deadline_gives_up_at_once(sim: SimulatorProcess) -> None:
    client = make_client(sim, timeout_seconds="2")
    started = time.monotonic()
    with pytest.raises(RateLimitedError, match="deadline"):
        client.chat(ask("long wait [[sim: 429x1, retry_after=30]]"))
    assert time.monotonic() - started < 1.5


def test_json_schema_refused_is_a_bad_request_with_the_gateways_reason(sim: SimulatorProcess) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with pytest.raises(BadRequestError, match="json_schema is not supported"):
        make_client(sim).chat(ask("structured [[sim: reject_json_schema]]", response_format=schema))


def test_a_gateway_echoing_the_key_in_its_error_never_shows_it(sim: SimulatorProcess) -> None:
    with pytest.raises(AuthenticationError) as caught:
        make_client(sim).chat(ask("echo [[sim: echo_key]]"))
    assert sim.api_key not in str(caught.value) and sim.api_key not in repr(caught.value.args)
    assert "[REDACTED]" in str(caught.value)


def test_reset_mid_body_of_a_plain_completion_is_not_retried(sim: SimulatorProcess) -> None:
    prompt = "half a body [[sim: reset_mid]]"
    with pytest.raises(UpstreamUnavailableError, match="not retried"):
        make_client(sim).chat(ask(prompt))
    assert sim.stats()["chat_requests_by_prompt"][prompt] == 1


def test_our_rpm_limit_keeps_under_the_gateways(sim: SimulatorProcess) -> None:
    sim.configure(rpm_limit=600)
    client = make_client(sim)
    options = CallOptions(limits=LimitSettings(rpm=600))
    for n in range(25):
        client.chat(ask(f"paced {n}"), options)
    assert sim.stats()["rate_limited"] == 0


def test_random_faults_are_retried_to_success_or_reported(sim: SimulatorProcess) -> None:
    sim.configure(fault_rate=0.3, fault_mix=["429", "500", "503"], seed=5)
    client = make_client(sim, max_retries="4")
    texts = [client.chat(ask(f"random {n}")).text for n in range(30)]
    assert texts == [f"[deepseek-v3.2] You said: random {n}" for n in range(30)]
    assert sum(sim.stats()["chat_requests_by_prompt"].values()) > 30
