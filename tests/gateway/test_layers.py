"""Each layer of the call chain (`gateway.call`) alone, handed its collaborators, over the in-memory
transport or a scripted inner layer: what it does with a call, and what it leaves to the layers around it."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from gateway.call.attempt import Attempts
from gateway.call.breaker import BreakerSettings
from gateway.call.breaker_step import BreakerStep
from gateway.call.budget_step import BudgetStep
from gateway.call.cache_step import CacheStep
from gateway.call.fallbacks import Fallbacks
from gateway.call.limits_step import LimitsStep
from gateway.call.observe import Observed
from gateway.call.options import Call, CallOptions
from gateway.call.pacing import AdaptivePacer
from gateway.call.rate_limits import LimitSettings
from gateway.call.retry import RetryPolicy
from gateway.call.retry_loop import RetryLoop
from gateway.call.stores import Stores
from gateway.config import GatewayConfig
from gateway.errors import (
    BadRequestError,
    CircuitOpenError,
    GatewayError,
    NotOpenAICompatibleError,
    RateLimitedError,
    Redactor,
    UpstreamUnavailableError,
)
from gateway.metrics import InProcessMetrics
from gateway.models import ChatRequest, ChatResult, CostBreakdown, StreamCompleted, TextDelta, Usage
from gateway.spend.budget import BudgetExceeded, BudgetPolicy, InProcessBudgetStore
from gateway.spend.cache import LRUReplyCache, ScopedReplyCache, SingleFlight
from gateway.spend.pricing import PriceTable
from gateway.state.backends import Backends
from gateway.state.shared import InProcessState
from gateway.wire import transport as transport_module
from gateway.wire.transport import Attempt, AttemptFailed, Deadline, Endpoint, MemoryTransport, Reply
from tests.gateway.helpers import completion, delta, status

KEY = "sk-layer-test-key-0123456789"


class Layers:
    """The collaborators one client would hand its layers, each made here so a test can look inside."""

    def __init__(self, *replies: Reply, breaker: BreakerSettings | None = None, **credentials: str) -> None:
        self.config = GatewayConfig.from_credentials({"api_key": KEY, "base_url": "http://gateway.test/v1", **credentials})
        self.prices = PriceTable.bundled()
        self.store = InProcessMetrics()
        self.budgets = InProcessBudgetStore()
        cache = ScopedReplyCache(LRUReplyCache(), self.config.keys)
        self.stores = Stores(self.config, self.prices, Backends(), budgets=self.budgets, cache=cache, metrics=self.store)
        self.state = InProcessState(breaker_settings=breaker)
        self.transport = MemoryTransport(replies)
        self.redact = Redactor([KEY])
        self.limits = LimitsStep(self.state, self.config, AdaptivePacer(), self.stores)
        endpoint = Endpoint(self.transport, self.config.base_url, self.redact)
        self.attempts = Attempts(endpoint, self.limits, self.prices, self.state.warnings, self.redact)
        self.retry = RetryLoop(RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002), self.stores)
        self.breaker = BreakerStep(self.state, self.config, self.stores)
        self.budget = BudgetStep(self.stores, self.prices, "namespace")

    def call(self, model: str = "deepseek-v3.2", *, limits: LimitSettings | None = None, seconds: float = 5.0) -> Call:
        return Call(ask(model), Deadline(seconds), self.limits.limiter(limits or LimitSettings()), time.monotonic())

    def figures(self) -> dict[Any, Any]:
        return self.store.figures(self.config.keys.scope)


def ask(model: str = "deepseek-v3.2", temperature: float | None = None) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "hi"}], model=model, temperature=temperature)


def result(text: str = "ok", *, cost_usd: float | None = None) -> ChatResult:
    cost = CostBreakdown("deepseek-v3.2", 0.0, 0.0, 0.0, cost_usd, 0, 0, 0, "") if cost_usd is not None else None
    return ChatResult(text, "stop", "deepseek-v3.2", "deepseek-v3.2", Usage(), 1.0, 1, cost=cost)


def drain(items: Iterator[Any]) -> list[Any]:
    return list(items)


def outcome_of(run: Generator[Any, None, Any]) -> tuple[list[Any], Any]:
    """What a layer yielded (content) and what it returned (the outcome)."""
    content: list[Any] = []
    while True:
        try:
            content.append(next(run))
        except StopIteration as end:
            return content, end.value


# ----------------------------------------------------------------------------- attempt (with limits)


def test_a_plain_attempt_sends_one_request_and_yields_its_result() -> None:
    layers = Layers(completion("hello"))
    call = layers.call()
    [completed] = drain(layers.attempts.plain(call))
    assert completed.result.text == "hello" and call.attempts == 1
    assert [(m, p) for m, p, _ in layers.transport.sent] == [("POST", "/chat/completions")]


def test_an_answer_over_the_size_bound_is_refused_after_reading_just_past_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A gateway that never stops sending must not fill the memory every workspace's calls share.
    body = completion("x" * 4000).body[0]
    assert isinstance(body, bytes)
    monkeypatch.setattr(transport_module, "MAX_JSON_BODY", len(body))
    [at_the_bound] = drain(Layers(completion("x" * 4000)).attempts.plain(Layers().call()))  # exactly the bound: read
    assert at_the_bound.result.text == "x" * 4000
    endless = Reply(200, [body[:-1]] + [b" " * 1024] * 1000, {"content-type": "application/json"})
    layers = Layers(endless)
    with pytest.raises(NotOpenAICompatibleError, match="answered with more than") as caught:
        drain(layers.attempts.plain(layers.call()))
    assert "not retried" in str(caught.value)
    assert len(layers.transport.responses[0]._chunks) >= 998  # stopped just past the bound, not at the end of the stream


def test_a_failed_attempt_leaves_classified_for_the_retry_loop() -> None:
    layers = Layers(status(503))
    with pytest.raises(AttemptFailed) as failed:
        drain(layers.attempts.plain(layers.call()))
    assert failed.value.attempt.retryable and isinstance(failed.value.attempt.error, UpstreamUnavailableError)


def test_a_stream_refused_stream_options_is_marked_to_be_sent_again_without_them() -> None:
    layers = Layers(status(400, "unknown field stream_options"))
    call = layers.call()
    with pytest.raises(AttemptFailed) as failed:
        drain(layers.attempts.stream(call))
    assert failed.value.attempt.resend and call.include_usage is False


def test_a_streamed_attempt_yields_content_then_its_outcome() -> None:
    layers = Layers(Reply.events(delta("he"), delta("llo", finish="stop")))
    items = drain(layers.attempts.stream(layers.call()))
    assert isinstance(items[-1], StreamCompleted) and items[-1].result.text == "hello"
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "hello"


def test_the_limits_refuse_an_attempt_whose_wait_would_pass_the_deadline_and_nothing_is_sent() -> None:
    layers = Layers(completion("first"))
    limits = LimitSettings(rpm=60)  # a burst of 1, then one a second
    drain(layers.attempts.plain(layers.call(limits=limits)))
    with pytest.raises(RateLimitedError) as refused:
        drain(layers.attempts.plain(layers.call(limits=limits, seconds=0.5)))
    assert refused.value.not_sent and not refused.value.retryable and len(layers.transport.sent) == 1


# ----------------------------------------------------------------------------- retry loop


def scripted(*outcomes: Any) -> Any:
    """An attempt function that, per attempt, raises the next AttemptFailed or yields the next items."""
    script = iter(outcomes)

    def attempt(call: Call) -> Iterator[Any]:
        call.attempts += 1
        step = next(script)
        if isinstance(step, Attempt):
            raise AttemptFailed(step)
        yield from step

    return attempt


def test_the_retry_loop_tries_a_retryable_failure_again_and_returns_the_outcome() -> None:
    layers = Layers()
    call = layers.call()
    done = StreamCompleted(result())
    content, outcome = outcome_of(layers.retry.run(call, scripted(Attempt(UpstreamUnavailableError("busy", status=503), True), [done])))
    assert (content, outcome, call.attempts) == ([], done, 2)
    figures = layers.figures()
    assert figures[("attempts", "deepseek-v3.2", "http_503")] == 1 and figures[("retries", "deepseek-v3.2")] == 1


def test_the_retry_loop_never_sends_again_once_content_reached_the_caller() -> None:
    layers = Layers()
    call = layers.call()

    def breaks_after_content(call: Call) -> Iterator[Any]:
        call.attempts += 1
        yield TextDelta("partial")
        raise AttemptFailed(Attempt(UpstreamUnavailableError("broke", status=None), True))

    with pytest.raises(UpstreamUnavailableError) as raised:
        outcome_of(layers.retry.run(call, breaks_after_content))
    assert call.attempts == 1 and call.delivered and raised.value.retryable is False


def test_the_retry_loop_gives_up_on_a_failure_that_is_not_retryable() -> None:
    layers = Layers()
    call = layers.call()
    with pytest.raises(BadRequestError):
        outcome_of(layers.retry.run(call, scripted(Attempt(BadRequestError("bad", status=400), False))))
    assert call.attempts == 1


# ----------------------------------------------------------------------------- breaker


def failing(error: GatewayError) -> Any:
    def inner(call: Call) -> Generator[Any, None, Any]:
        raise error
        yield  # a generator, like the retry loop

    return inner


def succeeding(call: Call) -> Generator[Any, None, Any]:
    return StreamCompleted(result())
    yield


def test_an_open_circuit_refuses_before_the_inner_layer_runs() -> None:
    layers = Layers(breaker=BreakerSettings(failure_threshold=1, cooldown_seconds=60))
    with pytest.raises(UpstreamUnavailableError):
        outcome_of(layers.breaker.run(layers.call(), failing(UpstreamUnavailableError("down", status=503))))
    ran: list[Call] = []
    with pytest.raises(CircuitOpenError) as refused:
        outcome_of(layers.breaker.run(layers.call(), lambda call: ran.append(call) or succeeding(call)))
    assert ran == [] and refused.value.attempts == 0
    assert layers.breaker.breaker_for("deepseek-v3.2").state == "open"


def test_a_bad_request_does_not_count_against_the_breaker() -> None:
    layers = Layers(breaker=BreakerSettings(failure_threshold=1, cooldown_seconds=60))
    with pytest.raises(BadRequestError):
        outcome_of(layers.breaker.run(layers.call(), failing(BadRequestError("bad", status=400))))
    assert layers.breaker.breaker_for("deepseek-v3.2").state == "closed"


def test_a_success_may_be_left_for_after_the_call_only_where_the_breaker_can_defer_it() -> None:
    layers = Layers()
    after: list[Any] = []
    _, outcome = outcome_of(layers.breaker.run(layers.call(), succeeding, after))
    assert outcome.result.text == "ok" and after == []  # the in-process breaker records it at once


# ----------------------------------------------------------------------------- budget


def test_the_budget_refuses_a_worst_case_over_the_per_call_limit() -> None:
    layers = Layers()
    with pytest.raises(BudgetExceeded) as refused:
        layers.budget.reserve(ask(), BudgetPolicy(call=0.0000001, max_tokens=1000), CallOptions())
    assert refused.value.budget == "call" and "per-call budget" in refused.value.message


def test_the_budget_settles_with_the_real_cost_and_tells_what_is_left() -> None:
    layers = Layers()
    policy = BudgetPolicy(limits=(("plugin", "day", 1.0),), max_tokens=100)
    reserved = layers.budget.reserve(ask(), policy, CallOptions())
    assert reserved.holds and reserved.request.model == "deepseek-v3.2"
    served = result(cost_usd=0.25)
    layers.budget.settle_result(served, reserved, policy, "deepseek-v3.2")
    assert served.budget == {"remaining_usd": 0.75}


# ----------------------------------------------------------------------------- cache


def test_the_cache_replays_an_identical_call_without_running_the_inner_layers() -> None:
    layers = Layers(completion("once"), temperature="0")
    cache = CacheStep(layers.config, layers.stores, SingleFlight(), "namespace")
    runs: list[int] = []

    def inner() -> Iterator[Any]:
        runs.append(1)
        yield from layers.attempts.plain(layers.call())

    first = drain(cache.run(ask(temperature=0), "auto", False, Deadline(5), time.monotonic(), ["a note"], inner))
    second = drain(cache.run(ask(temperature=0), "auto", False, Deadline(5), time.monotonic(), [], inner))
    assert runs == [1] and len(layers.transport.sent) == 1
    assert (first[-1].result.cache, first[-1].result.warnings[0]) == ("miss", "a note")
    assert (second[-1].result.cache, second[-1].result.text, second[-1].result.attempts) == ("hit", "once", 0)


def test_a_call_that_misses_while_the_leader_lands_reads_the_reply_instead_of_sending_again() -> None:
    # A Redis cache read lets other calls run: the call in flight may store its reply and land between another
    # call's miss and that call taking the lead. That call must find the reply, not send the request twice.
    layers = Layers(completion("once"), completion("twice"), temperature="0")
    cache = CacheStep(layers.config, layers.stores, SingleFlight(), "namespace")
    leader = cache.run(ask(temperature=0), "auto", False, Deadline(5), time.monotonic(), [], lambda: layers.attempts.plain(layers.call()))
    next(leader)  # in flight: the reply is stored, the flight not landed yet
    real = layers.stores.cache

    class LeaderLandsDuringTheRead:
        def __init__(self) -> None:
            self.reads = 0

        def get(self, key: str) -> Any:
            self.reads += 1
            if self.reads == 1:  # the follower's first read: a miss as it was, the leader finishing meanwhile
                drain(leader)
                return None
            return real.get(key)

        def put(self, key: str, value: Any, ttl: float) -> None:
            real.put(key, value, ttl)

    layers.stores.cache = LeaderLandsDuringTheRead()  # type: ignore[assignment]
    follower = drain(cache.run(ask(temperature=0), "auto", False, Deadline(5), time.monotonic(), [], lambda: layers.attempts.plain(layers.call())))
    assert len(layers.transport.sent) == 1
    assert (follower[-1].result.cache, follower[-1].result.text) == ("hit", "once")


def test_the_cache_stays_out_of_a_call_it_may_not_serve() -> None:
    layers = Layers(completion("one"), completion("two"))
    cache = CacheStep(layers.config, layers.stores, SingleFlight(), "namespace")
    def inner() -> Iterator[Any]:
        return layers.attempts.plain(layers.call())

    texts = [drain(cache.run(ask(), "auto", False, Deadline(5), time.monotonic(), [], inner))[-1].result.text for _ in range(2)]
    assert texts == ["one", "two"]  # no temperature 0: a sampled reply is not repeated


# ----------------------------------------------------------------------------- fallbacks


def test_the_fallbacks_send_to_the_next_model_when_the_primary_is_unavailable() -> None:
    layers = Layers(status(503), status(503), status(503), completion("from mini", "gpt-4.1-mini"), fallback_models="gpt-4.1-mini")
    fallbacks = Fallbacks(layers.config, layers.limits, layers.budget, layers.breaker, layers.retry)
    [completed] = drain(fallbacks.run(ask(), CallOptions(), layers.attempts.plain, Deadline(5), None))
    assert (completed.result.attempts, completed.result.fallback_from) == (4, ["deepseek-v3.2"])


def test_the_fallbacks_stop_at_a_client_side_error() -> None:
    layers = Layers(status(400), completion("never"), fallback_models="gpt-4.1-mini")
    fallbacks = Fallbacks(layers.config, layers.limits, layers.budget, layers.breaker, layers.retry)
    with pytest.raises(BadRequestError):
        drain(fallbacks.run(ask(), CallOptions(), layers.attempts.plain, Deadline(5), None))
    assert len(layers.transport.sent) == 1


# ----------------------------------------------------------------------------- observed


def test_every_call_is_recorded_once_whatever_its_outcome() -> None:
    layers = Layers()
    observed = Observed(layers.stores, layers.redact)
    drain(observed.run(ask(), "chat", "cid-1", lambda after: iter([StreamCompleted(result())])))

    def fails(after: list[Any]) -> Iterator[Any]:
        raise UpstreamUnavailableError("down", status=503)

    with pytest.raises(UpstreamUnavailableError):
        drain(observed.run(ask(), "chat", "cid-2", fails))
    figures = layers.figures()
    assert figures[("requests", "deepseek-v3.2", "chat", "ok")] == 1
    assert figures[("requests", "deepseek-v3.2", "chat", "upstream_unavailable")] == 1
