"""The client's Redis round trips with redis_url set and no limits configured: the breaker's permit and
the 429 pause in one script call before sending, the breaker's success with the call's metrics after
(two round trips per call), with the same shared semantics as separate calls."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import redis.connection

from gateway import CallOptions, ChatRequest, Deadline, GatewayClient, GatewayConfig
from gateway.call.breaker import BreakerSettings
from gateway.call.pacing import AdaptivePacer
from gateway.call.rate_limits import LimitSettings
from gateway.call.retry import RetryPolicy
from gateway.errors import CircuitOpenError, RateLimitedError, UpstreamUnavailableError
from gateway.metrics import CallRecord, InProcessMetrics, RedisMetrics, WorkspaceMetrics, WriteBehindMetrics
from gateway.state.redis_state import DeferredScript, RedisState
from gateway.state.shared import InProcessState
from gateway.wire.transport import MemoryTransport
from tests.gateway.conftest import Trips
from tests.gateway.helpers import completion, status

REDIS_URL = "redis://127.0.0.1:6379/15"
pytestmark = pytest.mark.redis


def make(
    url: str = REDIS_URL,
    *,
    replies: Any = None,
    sleeps: list[float] | None = None,
    redis_metrics: bool = True,
    client: Any = None,
    write_behind: bool = False,
    gate_max_age: float = 0.0,
) -> tuple[GatewayClient, MemoryTransport, RedisState]:
    base = f"http://gateway-{uuid.uuid4().hex[:8]}.test/v1"  # a fresh key space per test
    connection = client if client is not None else redis.Redis.from_url(url)
    state = RedisState(
        url,
        client=connection,
        fallback=InProcessState(),
        breaker_settings=BreakerSettings(failure_threshold=2, cooldown_seconds=30),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        gate_max_age=gate_max_age,
    )
    transport = MemoryTransport(replies if replies is not None else (), handler=None if replies is not None else (lambda m, p, b: completion("ok")))
    sink = WriteBehindMetrics if write_behind else RedisMetrics
    metrics = sink(connection, InProcessMetrics()) if redis_metrics else InProcessMetrics()
    # A fresh workspace per test (its figures are the key's scope's).
    config = GatewayConfig.from_credentials({"api_key": f"sk-rt-test-key-{uuid.uuid4().hex}", "base_url": base, "max_retries": "1"})
    gateway = GatewayClient(
        config,
        state=state,
        transport=transport,
        metrics=metrics,
        retry=RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.002),
        pacer=AdaptivePacer(),
    )
    return gateway, transport, state


def ask() -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "hi"}], model="deepseek-v3.2")


def successes(state: RedisState, gateway: GatewayClient) -> int:
    breaker = state.breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys)
    return int(state.client.zcard(breaker.keys[2]))


def test_a_call_without_limits_makes_two_round_trips_and_records_everything(trips: Trips) -> None:
    gateway, _transport, state = make()
    gateway.chat(ask())  # warm: scripts loaded
    before = trips.count
    for _ in range(5):
        assert gateway.chat(ask()).text == "ok"
    assert (trips.count - before) / 5 == 2
    assert successes(state, gateway) == 6  # the breaker's successes went out with the metrics
    figures = gateway.metrics.figures()
    assert figures[("requests", "deepseek-v3.2", "other", "ok")] == 6
    assert figures[("attempts", "deepseek-v3.2", "ok")] == 6


def test_a_pause_set_by_another_process_holds_a_call_without_limits() -> None:
    sleeps: list[float] = []
    gateway, _transport, _state = make(sleeps=sleeps)
    other = RedisState(REDIS_URL, client=redis.Redis.from_url(REDIS_URL), fallback=InProcessState())
    other.rate_limiter(gateway.config.base_url, gateway.config.key_digest, LimitSettings(), keys=gateway.config.keys).pause(2.0)
    assert gateway.chat(ask()).text == "ok"
    assert sleeps and 1.5 < sleeps[0] <= 2.0  # waited for the other process's 429 before sending


def test_a_pause_past_the_deadline_is_not_sent() -> None:
    gateway, transport, _state = make()
    other = RedisState(REDIS_URL, client=redis.Redis.from_url(REDIS_URL), fallback=InProcessState())
    other.rate_limiter(gateway.config.base_url, gateway.config.key_digest, LimitSettings(), keys=gateway.config.keys).pause(30.0)
    with pytest.raises(RateLimitedError) as raised:
        gateway.chat(ask(), CallOptions(deadline=Deadline(1.0)))
    assert raised.value.not_sent and transport.sent == []


def test_a_breaker_opened_elsewhere_fails_fast_and_failures_still_open_it() -> None:
    gateway, transport, state = make(replies=[status(503), status(503), status(503), status(503)])
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            gateway.chat(ask())
    assert state.breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys).state == "open"
    sent = len(transport.sent)
    with pytest.raises(CircuitOpenError):
        gateway.chat(ask())
    assert len(transport.sent) == sent


def test_success_is_recorded_at_once_when_metrics_are_not_in_that_redis(trips: Trips) -> None:
    gateway, _transport, state = make(redis_metrics=False)
    gateway.chat(ask())
    assert successes(state, gateway) == 1


def test_a_script_redis_forgot_is_loaded_again(private_redis: Any) -> None:
    connection = redis.Redis.from_url(private_redis.url)
    gateway, _transport, state = make(private_redis.url, client=connection)
    gateway.chat(ask())
    connection.script_flush()
    gateway.chat(ask())
    gateway.chat(ask())
    assert successes(state, gateway) == 3
    assert gateway.metrics.figures()[("requests", "deepseek-v3.2", "other", "ok")] == 3


def test_write_behind_calls_leave_their_figures_and_successes_for_one_later_write(trips: Trips) -> None:
    gateway, _transport, state = make(write_behind=True)
    metrics = gateway.metrics.store  # type: ignore[attr-defined]
    assert isinstance(metrics, WriteBehindMetrics)
    gateway.chat(ask())
    metrics.write()
    before = trips.count
    for _ in range(5):
        assert gateway.chat(ask()).text == "ok"
    assert trips.count - before == 5  # the breaker read only
    assert successes(state, gateway) == 1 and gateway.metrics.figures()[("requests", "deepseek-v3.2", "other", "ok")] == 1
    before = trips.count
    metrics.write()
    assert trips.count - before == 1  # one write for the five calls' figures and successes
    assert successes(state, gateway) == 6
    assert gateway.metrics.figures()[("requests", "deepseek-v3.2", "other", "ok")] == 6
    before = trips.count
    metrics.write()
    assert trips.count == before  # nothing left: no round trip


def test_write_behind_after_redis_forgot_its_scripts_loses_nothing(private_redis: Any) -> None:
    connection = redis.Redis.from_url(private_redis.url)
    gateway, _transport, state = make(private_redis.url, client=connection, write_behind=True)
    gateway.chat(ask())
    gateway.metrics.store.write()  # type: ignore[attr-defined]
    connection.script_flush()
    gateway.chat(ask())
    gateway.chat(ask())
    gateway.metrics.store.write()  # type: ignore[attr-defined]
    assert successes(state, gateway) == 3
    assert gateway.metrics.figures()[("requests", "deepseek-v3.2", "other", "ok")] == 3


def test_write_behind_with_redis_stopped_keeps_figures_and_successes_in_process(private_redis: Any) -> None:
    connection = redis.Redis.from_url(private_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    gateway, _transport, _state = make(private_redis.url, client=connection, write_behind=True)
    metrics = gateway.metrics.store  # type: ignore[attr-defined]
    assert isinstance(metrics, WriteBehindMetrics)
    gateway.chat(ask())
    riding = list(metrics._after)  # the breaker's success, left for the write
    assert len(riding) == 1 and not riding[0].done
    private_redis.stop()
    metrics.write()
    assert metrics.fallback.figures(gateway.metrics.workspace)[("requests", "deepseek-v3.2", "other", "ok")] == 1  # type: ignore[attr-defined]
    assert riding[0].done  # made on its own (in process): not dropped with the failed write


def test_write_behind_a_success_redis_refuses_costs_neither_the_write_nor_the_others() -> None:
    # A riding script Redis cannot run (here: unknown to it) is made on its own; when that fails too
    # (Redis refusing writes), the others are still made and the write does not raise into its owner.
    connection = redis.Redis.from_url(REDIS_URL)
    store = WriteBehindMetrics(connection, InProcessMetrics())
    sink = WorkspaceMetrics(store, f"wtest{uuid.uuid4().hex[:12]}")
    made: list[str] = []

    def refused() -> None:
        raise redis.exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'")

    unknown = SimpleNamespace(sha="0" * 40)
    ops = [DeferredScript(connection, unknown, ["k"], [], refused), DeferredScript(connection, unknown, ["k"], [], lambda: made.append("second"))]
    sink.record_call(CallRecord("deepseek-v3.2", "chat", "ok", 0.1, after=ops))
    assert all(op.taken and not op.done for op in ops)
    store.write()
    assert made == ["second"] and all(op.done for op in ops)
    assert sink.figures()[("requests", "deepseek-v3.2", "chat", "ok")] == 1


def test_write_behind_waits_for_the_write_in_flight_that_carries_its_figures() -> None:
    # Two owners (two jobs' flushers) share the sink: the second must not return, and go on to write
    # its results, while its figures are still in the first one's unfinished write.
    connection = redis.Redis.from_url(REDIS_URL)
    store = WriteBehindMetrics(connection, InProcessMetrics())
    sink = WorkspaceMetrics(store, f"wtest{uuid.uuid4().hex[:12]}")
    entered, release = threading.Event(), threading.Event()
    write = store._write

    def slow_first_write(*args: Any) -> None:
        if not entered.is_set():
            entered.set()
            release.wait(10)
        write(*args)

    store._write = slow_first_write  # type: ignore[method-assign]
    sink.record_call(CallRecord("deepseek-v3.2", "chat", "ok", 0.1))
    first = threading.Thread(target=store.write)
    first.start()
    assert entered.wait(10)
    sink.record_call(CallRecord("deepseek-v3.2", "chat", "ok", 0.1))  # added while the first write is out
    second = threading.Thread(target=store.write)
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waiting for a write that carries its figure
    release.set()
    first.join(10)
    second.join(10)
    assert not second.is_alive()
    assert sink.figures()[("requests", "deepseek-v3.2", "chat", "ok")] == 2


def test_redis_stopped_calls_go_on_in_process(private_redis: Any) -> None:
    connection = redis.Redis.from_url(private_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    gateway, _transport, _state = make(private_redis.url, client=connection)
    gateway.chat(ask())
    private_redis.stop()
    result = gateway.chat(ask())
    assert result.text == "ok" and result.warnings
    assert gateway.chat(ask()).text == "ok"


def test_concurrent_calls_share_writes_and_reads_and_every_figure_lands(trips: Trips) -> None:
    gateway, _transport, state = make()
    gateway.chat(ask())
    before = trips.count
    threads = [threading.Thread(target=lambda: [gateway.chat(ask()) for _ in range(10)]) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    figures = gateway.metrics.figures()
    assert figures[("requests", "deepseek-v3.2", "other", "ok")] == 201
    assert figures[("attempts", "deepseek-v3.2", "ok")] == 201
    assert successes(state, gateway) == 201
    assert trips.count - before <= 2 * 200  # never more than two round trips a call, fewer when calls overlap


def other_process() -> RedisState:
    settings = BreakerSettings(failure_threshold=2, cooldown_seconds=30)
    return RedisState(REDIS_URL, client=redis.Redis.from_url(REDIS_URL), fallback=InProcessState(), breaker_settings=settings)


def test_a_kept_gate_read_saves_the_round_trip_and_sees_another_process_breaker_once_it_is_old(trips: Trips) -> None:
    # Batch jobs keep a closed breaker read for a moment (`gate_max_age`): one round trip a request less,
    # and another process's open breaker is seen no later than that.
    gateway, transport, _state = make(gate_max_age=1.0)
    gateway.chat(ask())
    before = trips.count
    for _ in range(3):
        gateway.chat(ask())
    assert trips.count - before == 3  # the figures only: no breaker read
    other = other_process().breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys)
    for _ in range(20):  # half the calls in the window must have failed
        other.record_failure(other.acquire())
        if other.state == "open":
            break
    assert other.state == "open"
    assert gateway.chat(ask()).text == "ok"  # the read is under a second old
    time.sleep(1.05)
    sent = len(transport.sent)
    with pytest.raises(CircuitOpenError):
        gateway.chat(ask())
    assert len(transport.sent) == sent


def test_a_kept_gate_read_gives_way_at_once_to_this_process_own_429_and_failures() -> None:
    sleeps: list[float] = []
    gateway, _transport, state = make(sleeps=sleeps, gate_max_age=60.0)
    assert gateway.chat(ask()).text == "ok"  # the closed breaker, no pause: kept for a minute
    state.rate_limiter(gateway.config.base_url, gateway.config.key_digest, LimitSettings(), keys=gateway.config.keys).pause(2.0)  # a 429 here
    assert gateway.chat(ask()).text == "ok"
    assert sleeps and 1.5 < sleeps[0] <= 2.0  # waited for it: not sent on the minute-old read
    gateway, transport, _state = make(replies=[completion("ok"), status(503), status(503), status(503), status(503)], gate_max_age=60.0)
    gateway.chat(ask())
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            gateway.chat(ask())
    sent = len(transport.sent)
    with pytest.raises(CircuitOpenError):  # its own failures opened it: no request on a minute-old read
        gateway.chat(ask())
    assert len(transport.sent) == sent


def test_concurrent_callers_all_see_a_pause_and_an_open_breaker() -> None:
    gateway, _transport, state = make()
    other = RedisState(
        REDIS_URL,
        client=redis.Redis.from_url(REDIS_URL),
        fallback=InProcessState(),
        breaker_settings=BreakerSettings(failure_threshold=2, cooldown_seconds=30),
    )
    breaker = state.breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys)
    limiter = state.rate_limiter(gateway.config.base_url, gateway.config.key_digest, LimitSettings(), keys=gateway.config.keys)
    other.rate_limiter(gateway.config.base_url, gateway.config.key_digest, LimitSettings(), keys=gateway.config.keys).pause(5.0)
    seen: list[Any] = []
    lock = threading.Lock()

    def gate() -> None:
        got = breaker.acquire_gated(limiter)
        with lock:
            seen.append(got)

    threads = [threading.Thread(target=gate) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    now = time.monotonic()
    assert len(seen) == 30 and all(permit.allowed and 3.0 < until - now <= 5.0 for permit, until in seen)
    other_breaker = other.breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys)
    for _ in range(2):
        other_breaker.record_failure(other_breaker.acquire())
    seen.clear()
    threads = [threading.Thread(target=gate) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 30 and not any(permit.allowed for permit, _ in seen)
