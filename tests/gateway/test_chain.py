"""The call chain (fallbacks -> breaker -> retry -> attempt) over the in-memory transport: no server,
no sockets. Each rule is checked for plain and streamed calls alike."""

from __future__ import annotations

import time

import pytest

from gateway import (
    BadRequestError,
    CallOptions,
    ChatRequest,
    CircuitOpenError,
    Deadline,
    GatewayTimeoutError,
    InBandStreamError,
    RateLimitedError,
    StreamCompleted,
    StreamInterruptedError,
    TextDelta,
    UpstreamUnavailableError,
)
from gateway.call.breaker import BreakerSettings
from gateway.call.rate_limits import LimitSettings
from gateway.client import ClientRegistry
from gateway.config import GatewayConfig
from gateway.wire.transport import Attempt, AttemptFailed, BodyReadError, MemoryTransport, Reply
from tests.gateway.helpers import completion, delta, memory_client, status, usage_event

KEY = "sk-memory-test-key-0123456789"


def ask(prompt: str = "hi", model: str = "deepseek-v3.2") -> ChatRequest:
    return ChatRequest.from_prompt(prompt, model=model)


def streamed(client, request: ChatRequest | None = None) -> tuple[str, StreamCompleted | None]:  # type: ignore[no-untyped-def]
    text, final = "", None
    for item in client.stream_chat(request or ask()):
        if isinstance(item, TextDelta):
            text += item.text
        else:
            final = item
    return text, final


def not_sent(message: str = "cannot connect") -> Reply:
    """A failure before the request reached the gateway (refused, DNS): retryable."""
    return Reply(fail=AttemptFailed(Attempt(UpstreamUnavailableError(message), True)))


# ----------------------------------------------------------------------------- retry


def test_retryable_statuses_are_retried_and_every_request_counted() -> None:
    client, transport = memory_client(status(503), status(429, headers={"retry-after-ms": "1"}), completion("done"))
    result = client.chat(ask())
    assert (result.text, result.attempts) == ("done", 3)
    assert len(transport.sent) == 3 and all(r.closed for r in transport.responses)


def test_retries_stop_at_max_retries_and_the_error_says_how_many() -> None:
    client, transport = memory_client(status(503), status(503), status(503), status(503))
    with pytest.raises(UpstreamUnavailableError, match=r"after 3 attempts") as caught:
        client.chat(ask())
    assert caught.value.attempts == 3 and len(transport.sent) == 3


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(code: int) -> None:
    client, transport = memory_client(status(code), completion("never"))
    with pytest.raises(Exception) as caught:
        client.chat(ask())
    assert caught.value.attempts == 1 and len(transport.sent) == 1  # type: ignore[attr-defined]


def test_a_failure_before_sending_is_retried() -> None:
    client, _ = memory_client(not_sent(), completion("connected"))
    assert client.chat(ask()).attempts == 2


def test_a_body_that_breaks_off_after_the_request_was_sent_is_not_retried() -> None:
    broken = Reply(200, [b'{"choices": [', BodyReadError(timed_out=False)], {"content-type": "application/json"})
    client, transport = memory_client(broken, completion("would be a second bill"))
    with pytest.raises(UpstreamUnavailableError, match="not retried") as caught:
        client.chat(ask())
    assert caught.value.attempts == 1 and len(transport.sent) == 1


def test_the_key_is_redacted_from_what_the_gateway_echoes() -> None:
    client, _ = memory_client(status(401, f"Incorrect API key provided: {KEY[:12]}...{KEY[-6:]}"))
    with pytest.raises(Exception) as caught:
        client.chat(ask())
    assert KEY[:12] not in str(caught.value) and "[REDACTED]" in str(caught.value)


# ----------------------------------------------------------------------------- deadline


def test_a_retry_after_past_the_deadline_gives_up_at_once() -> None:
    client, transport = memory_client(status(429, headers={"retry-after": "30"}), completion("late"))
    started = time.monotonic()
    with pytest.raises(RateLimitedError, match="deadline"):
        client.chat(ask(), CallOptions(deadline=Deadline(2)))
    assert time.monotonic() - started < 1 and len(transport.sent) == 1


def test_nothing_is_sent_once_the_deadline_has_passed() -> None:
    client, transport = memory_client(completion("never"))
    with pytest.raises(GatewayTimeoutError, match="before it could be sent"):
        client.chat(ask(), CallOptions(deadline=Deadline(-1)))
    assert transport.sent == []


def test_a_body_read_past_the_deadline_is_a_timeout() -> None:
    slow = Reply(200, [b'{"choices"', BodyReadError(timed_out=True)], {"content-type": "application/json"})
    client, _ = memory_client(slow)
    with pytest.raises(GatewayTimeoutError, match="deadline passed while the response was arriving"):
        client.chat(ask())


# ----------------------------------------------------------------------------- breaker


def test_the_breaker_opens_on_upstream_failures_and_then_fails_fast_without_sending() -> None:
    settings = BreakerSettings(failure_threshold=2, failure_rate=0.5, cooldown_seconds=60)
    client, transport = memory_client(*[status(503)] * 6, breaker=settings, max_retries="0")
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            client.chat(ask())
    with pytest.raises(CircuitOpenError) as caught:
        client.chat(ask())
    assert caught.value.attempts == 0 and len(transport.sent) == 2


def test_client_errors_do_not_open_the_breaker() -> None:
    settings = BreakerSettings(failure_threshold=1, cooldown_seconds=60)
    client, _ = memory_client(status(400), status(400), completion("fine"), breaker=settings)
    for _ in range(2):
        with pytest.raises(BadRequestError):
            client.chat(ask())
    assert client.chat(ask()).text == "fine"


def test_a_stream_the_caller_stops_reading_counts_as_a_success_for_the_breaker() -> None:
    settings = BreakerSettings(failure_threshold=1, cooldown_seconds=0.01, half_open_probes=1)
    client, _ = memory_client(status(503), Reply.events(delta("a"), delta("b", finish="stop")), breaker=settings, max_retries="0")
    with pytest.raises(UpstreamUnavailableError):
        client.chat(ask())
    time.sleep(0.02)
    stream = client.stream_chat(ask())
    assert isinstance(next(stream), TextDelta)  # the half-open probe ("a", or "ab": a tail that could begin a key echo waits)
    stream.close()
    assert client.breaker_for("deepseek-v3.2").state == "closed"


# ----------------------------------------------------------------------------- fallbacks


def test_an_unavailable_primary_falls_back_and_attempts_count_across_models() -> None:
    client, transport = memory_client(status(503), status(503), status(503), completion("from mini", "gpt-4.1-mini"), fallback_models="gpt-4.1-mini")
    result = client.chat(ask())
    assert (result.model, result.attempts, result.fallback_from) == ("gpt-4.1-mini", 4, ["deepseek-v3.2"])
    assert [payload["model"] for _, _, payload in transport.sent] == ["deepseek-v3.2"] * 3 + ["gpt-4.1-mini"]
    assert any("fallback" in w for w in result.warnings)


@pytest.mark.parametrize(
    "failure",
    [
        status(429, headers={"retry-after-ms": "1"}),  # a per-key limit: another model would not help
        status(400),
        Reply(200, [BodyReadError(timed_out=False)], {"content-type": "application/json"}),  # may have been billed
    ],
)
def test_no_fallback_after_a_4xx_or_a_possibly_billed_failure(failure: Reply) -> None:
    client, transport = memory_client(failure, failure, failure, completion("fallback"), fallback_models="gpt-4.1-mini")
    with pytest.raises((RateLimitedError, BadRequestError, UpstreamUnavailableError)):
        client.chat(ask())
    assert all(payload["model"] == "deepseek-v3.2" for _, _, payload in transport.sent)


def test_an_open_circuit_sends_to_the_fallback() -> None:
    settings = BreakerSettings(failure_threshold=1, cooldown_seconds=60)
    client, _ = memory_client(status(503), completion("from mini", "gpt-4.1-mini"), breaker=settings, max_retries="0")
    with pytest.raises(UpstreamUnavailableError):
        client.chat(ask(), CallOptions(use_fallbacks=False))
    client.config = GatewayConfig.from_credentials({"api_key": KEY, "base_url": "http://gateway.test/v1", "fallback_models": "gpt-4.1-mini"})
    result = client.chat(ask())
    assert result.fallback_from == ["deepseek-v3.2"] and result.attempts == 1


def test_a_rate_limit_that_cannot_be_met_before_the_deadline_is_not_run() -> None:
    client, transport = memory_client(completion("first"), completion("second"))
    options = CallOptions(limits=LimitSettings(rpm=60), deadline=Deadline(0.5))  # a burst of 1, then one a second
    client.chat(ask(), options)
    with pytest.raises(RateLimitedError) as caught:
        client.chat(ask(), CallOptions(limits=LimitSettings(rpm=60), deadline=Deadline(0.5)))
    assert caught.value.not_sent and caught.value.attempts == 0 and len(transport.sent) == 1


# ----------------------------------------------------------------------------- streaming


def test_a_stream_yields_pieces_then_the_result_with_the_reported_usage() -> None:
    client, transport = memory_client(Reply.events(delta("Hel"), delta("lo", finish="stop"), usage_event()))
    text, final = streamed(client)
    assert text == "Hello" and final is not None
    assert (final.result.text, final.result.usage.completion_tokens, final.result.attempts) == ("Hello", 2, 1)
    assert transport.sent[0][2]["stream_options"] == {"include_usage": True}


def test_a_stream_failing_before_any_content_is_retried() -> None:
    cut_early = Reply.events(done=False, then=BodyReadError(timed_out=False))
    client, _ = memory_client(status(503), cut_early, Reply.events(delta("ok", finish="stop")))
    text, final = streamed(client)
    assert text == "ok" and final is not None and final.result.attempts == 3


def test_a_stream_cut_after_content_is_never_retried_and_keeps_the_partial_text() -> None:
    cut = Reply.events(delta("partial "), done=False, then=BodyReadError(timed_out=False))
    client, transport = memory_client(cut, Reply.events(delta("again", finish="stop")), fallback_models="gpt-4.1-mini")
    received = ""
    with pytest.raises(StreamInterruptedError, match="reset or closed") as caught:
        for item in client.stream_chat(ask()):
            if isinstance(item, TextDelta):
                received += item.text
    assert received == "partial " == caught.value.partial_text
    assert caught.value.partial_result.interrupted and caught.value.partial_result.text == "partial "
    assert not caught.value.retryable and caught.value.attempts == 1 and len(transport.sent) == 1


def test_a_stream_ending_without_done_is_interrupted_not_success() -> None:
    client, transport = memory_client(Reply.events(delta("half"), done=False))
    with pytest.raises(StreamInterruptedError, match="without \\[DONE\\]"):
        streamed(client)
    assert len(transport.sent) == 1


def test_an_in_band_refusal_of_stream_options_is_asked_again_without_it() -> None:
    refusal = Reply.events({"error": {"message": "stream_options is not supported"}}, done=False)
    client, transport = memory_client(refusal, Reply.events(delta("plain", finish="stop")))
    text, final = streamed(client)
    assert text == "plain" and final is not None
    assert "stream_options" not in transport.sent[1][2]
    assert final.result.usage.estimated and any("refused stream_options" in w for w in final.result.warnings)


def test_an_in_band_error_after_content_is_raised_with_the_partial_text() -> None:
    broken = Reply.events(delta("so far"), {"error": {"message": "model overloaded"}}, done=False)
    client, transport = memory_client(broken, Reply.events(delta("x", finish="stop")))
    with pytest.raises(InBandStreamError, match="model overloaded") as caught:
        streamed(client)
    assert caught.value.partial_text == "so far" and len(transport.sent) == 1


def test_an_unavailable_primary_stream_falls_back_before_any_content() -> None:
    client, _ = memory_client(
        status(503), status(503), status(503), Reply.events(delta("mini", finish="stop", model="gpt-4.1-mini")), fallback_models="gpt-4.1-mini"
    )
    text, final = streamed(client)
    assert text == "mini" and final is not None
    assert (final.result.attempts, final.result.fallback_from) == (4, ["deepseek-v3.2"])


# ----------------------------------------------------------------------------- list_models, lifecycle


def test_list_models_goes_through_the_retry_policy() -> None:
    client, transport = memory_client(not_sent(), Reply.json({"data": [{"id": "a"}, {"id": "b"}]}))
    assert client.list_models() == ["a", "b"]
    assert [(method, path) for method, path, _ in transport.sent] == [("GET", "/models")] * 2


def test_a_client_is_a_context_manager_that_closes_its_transport() -> None:
    client, transport = memory_client(completion("x"))
    with client:
        client.chat(ask())
    assert transport.closed


def test_the_batch_pool_grows_with_the_concurrency_in_use() -> None:
    client, transport = memory_client()
    with client.pooled(40), client.pooled(30):
        assert transport.pool_size >= 70


def test_the_shared_registry_is_bounded_and_closes_what_it_drops() -> None:
    registry = ClientRegistry(limit=2)
    configs = [GatewayConfig(api_key=f"k-{n}", base_url="http://gateway.test/v1") for n in range(3)]
    first = registry.get(configs[0])
    assert registry.get(configs[0]) is first
    closed: list[int] = []
    first.close = lambda: closed.append(0)  # type: ignore[method-assign]
    registry.get(configs[1])
    registry.get(configs[2])
    assert len(registry) == 2 and closed == [0]
    assert registry.get(configs[0]) is not first
    registry.clear()
    assert len(registry) == 0


def test_unit_clients_need_no_server() -> None:
    transport = MemoryTransport(handler=lambda method, path, payload: completion(f"echo {payload['messages'][-1]['content']}"))
    client, _ = memory_client(transport=transport)
    assert [client.chat(ask(f"n{n}")).text for n in range(3)] == ["echo n0", "echo n1", "echo n2"]
