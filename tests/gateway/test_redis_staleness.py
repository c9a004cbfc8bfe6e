"""The staleness contract of a client with redis_url set (docs/operations.md, "How late another process
sees what"): the figures a process records reach Redis within `FLUSH_EVERY` and exactly once, before a
scrape this process answers and at exit; a breaker opened or a pause set by another process is honoured
within `CLIENT_GATE_MAX_AGE`; this process's own failures count at once and after every success it made
before them; a half-open breaker still lets one probe at a time through, across processes. In steady
state a call makes no Redis round trip of its own."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.connection

from gateway import ChatRequest, GatewayClient, GatewayConfig
from gateway.call.breaker import BreakerSettings, Permit
from gateway.call.pacing import AdaptivePacer
from gateway.call.rate_limits import LimitSettings
from gateway.call.retry import RetryPolicy
from gateway.errors import CircuitOpenError, UpstreamUnavailableError
from gateway.metrics import FLUSH_EVERY, BufferedMetrics, InProcessMetrics, RedisMetrics
from gateway.state.backends import CLIENT_GATE_MAX_AGE, Backends
from gateway.state.redis_state import RedisState
from gateway.state.shared import InProcessState
from gateway.wire.transport import MemoryTransport
from tests.gateway.conftest import Trips
from tests.gateway.helpers import completion, status

REDIS_URL = "redis://127.0.0.1:6379/15"
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.redis
OK = ("requests", "deepseek-v3.2", "other", "ok")


SETTINGS = BreakerSettings(failure_threshold=2, cooldown_seconds=30)


def make(
    *, replies: Any = None, flush_every: float = FLUSH_EVERY, gate_max_age: float = CLIENT_GATE_MAX_AGE, settings: BreakerSettings = SETTINGS
) -> tuple[GatewayClient, MemoryTransport, RedisState, BufferedMetrics]:
    """A client as a tool gets one (state and metrics as `Backends` makes them), on a fresh gateway and workspace."""
    base = f"http://gateway-{uuid.uuid4().hex[:8]}.test/v1"
    connection = redis.Redis.from_url(REDIS_URL)
    state = RedisState(REDIS_URL, client=connection, fallback=InProcessState(), breaker_settings=settings, gate_max_age=gate_max_age)
    metrics = BufferedMetrics(connection, InProcessMetrics(), flush_every=flush_every)
    transport = MemoryTransport(replies if replies is not None else (), handler=None if replies is not None else (lambda m, p, b: completion("ok")))
    config = GatewayConfig.from_credentials({"api_key": f"sk-stale-test-{uuid.uuid4().hex}", "base_url": base, "max_retries": "0"})
    gateway = GatewayClient(
        config, state=state, transport=transport, metrics=metrics, retry=RetryPolicy(max_retries=0), pacer=AdaptivePacer()
    )
    return gateway, transport, state, metrics


def ask() -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": "hi"}], model="deepseek-v3.2")


def in_redis(gateway: GatewayClient) -> int:
    """The workspace's call count as Redis holds it (read directly: `figures()` would write first)."""
    connection = redis.Redis.from_url(REDIS_URL)
    raw = connection.hget(RedisMetrics.keys(gateway.metrics.workspace)[0], '["requests","deepseek-v3.2","other","ok"]')  # type: ignore[attr-defined]
    return int(raw or 0)


def successes(state: RedisState, gateway: GatewayClient) -> int:
    breaker = state.breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys)
    return int(state.client.zcard(breaker.keys[2]))


def other_process(settings: BreakerSettings = SETTINGS) -> RedisState:
    return RedisState(REDIS_URL, client=redis.Redis.from_url(REDIS_URL), fallback=InProcessState(), breaker_settings=settings)


def test_the_process_wiring_buffers_metrics_and_keeps_gate_reads_for_a_tenth_of_a_second() -> None:
    backends = Backends()
    assert isinstance(backends.metrics_for(REDIS_URL), BufferedMetrics)
    state = backends.state_for(REDIS_URL)
    assert isinstance(state, RedisState) and state.gate_max_age == CLIENT_GATE_MAX_AGE == 0.1
    assert FLUSH_EVERY == 1.0


def test_in_steady_state_a_call_makes_no_round_trip_of_its_own(trips: Trips) -> None:
    gateway, _transport, state, metrics = make()
    gateway.chat(ask())
    metrics.write()
    before, started = trips.count, time.monotonic()
    for _ in range(200):
        assert gateway.chat(ask()).text == "ok"
    elapsed = time.monotonic() - started
    # A gate read per CLIENT_GATE_MAX_AGE and a write per FLUSH_EVERY at most, whatever the number of calls.
    assert trips.count - before <= elapsed / CLIENT_GATE_MAX_AGE + elapsed / FLUSH_EVERY + 2
    assert trips.count - before < 200 / 5
    metrics.write()
    assert in_redis(gateway) == 201 and successes(state, gateway) == 201


def test_figures_reach_redis_within_the_bound_and_exactly_once() -> None:
    gateway, _transport, _state, metrics = make(flush_every=0.3)
    gateway.chat(ask())
    metrics.write()  # the last write is now: the next may come FLUSH_EVERY later
    assert in_redis(gateway) == 1
    written: list[int] = []
    write = metrics._write
    metrics._write = lambda pending, *rest: (written.append(len(pending)), write(pending, *rest))  # type: ignore[method-assign,func-returns-value]
    started = time.monotonic()
    for _ in range(5):
        gateway.chat(ask())
    assert in_redis(gateway) == 1  # kept in process for now
    deadline = started + 0.3 + 0.5
    while in_redis(gateway) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert in_redis(gateway) == 6  # written by the flusher within the bound (and some scheduling slack)
    time.sleep(0.7)
    assert in_redis(gateway) == 6  # once: nothing written twice
    assert len(written) == 1  # one write for the five calls


def test_a_busy_process_writes_at_most_once_per_flush_every() -> None:
    gateway, _transport, _state, metrics = make(flush_every=0.25)
    writes: list[float] = []
    write = metrics._write

    def timed(*args: Any) -> None:
        writes.append(time.monotonic())
        write(*args)

    metrics._write = timed  # type: ignore[method-assign]
    stop = time.monotonic() + 1.0
    calls = 0
    while time.monotonic() < stop:
        gateway.chat(ask())
        calls += 1
    time.sleep(0.4)
    assert 2 <= len(writes) <= 6  # about four, never one per call
    assert all(b - a >= 0.25 - 0.01 for a, b in itertools.pairwise(writes))
    assert in_redis(gateway) == calls


def test_a_scrape_answered_by_this_process_holds_its_own_figures() -> None:
    gateway, _transport, _state, metrics = make(flush_every=60.0)
    gateway.chat(ask())
    metrics.write()
    for _ in range(3):
        gateway.chat(ask())
    assert in_redis(gateway) == 1
    assert gateway.metrics.figures()[OK] == 4  # written before the read
    assert in_redis(gateway) == 4


def test_flush_metrics_writes_what_every_client_of_the_process_holds_now() -> None:
    # What the end of a tool invocation calls (services.flush_metrics): its figures are in Redis before its answer.
    backends = Backends()
    metrics = backends.metrics_for(REDIS_URL)
    metrics.flush_every = 60.0
    metrics._last_write = time.monotonic()  # as if it had just written: the flusher would wait a minute

    def client() -> GatewayClient:
        config = GatewayConfig.from_credentials(
            {"api_key": f"sk-stale-test-{uuid.uuid4().hex}", "base_url": "http://flush.test/v1", "redis_url": REDIS_URL}
        )
        return GatewayClient(config, backends=backends, transport=MemoryTransport((), handler=lambda m, p, b: completion("ok")))

    one, two = client(), client()  # two workspaces, one store
    one.chat(ask())
    two.chat(ask())
    two.chat(ask())
    assert (in_redis(one), in_redis(two)) == (0, 0)
    backends.flush_metrics()
    assert (in_redis(one), in_redis(two)) == (1, 2)


def test_figures_survive_the_process_exit() -> None:
    workspace_key = f"sk-stale-exit-{uuid.uuid4().hex}"
    script = f"""
import time
import services
from gateway import ChatRequest, GatewayClient, GatewayConfig
from gateway.wire.transport import MemoryTransport
from tests.gateway.helpers import completion

backends = services.install(services.Services.create()).gateway.backends  # as main.py wires the process
base_url = "http://exit-{uuid.uuid4().hex[:8]}.test/v1"
config = GatewayConfig.from_credentials({{"api_key": "{workspace_key}", "base_url": base_url, "redis_url": "{REDIS_URL}"}})
metrics = backends.metrics_for("{REDIS_URL}")
metrics.flush_every = 3600
metrics._last_write = time.monotonic()  # as if it had just written: the flusher would wait an hour
client = GatewayClient(config, state=backends.state_for(config.redis_url), backends=backends, metrics=metrics,
                       transport=MemoryTransport((), handler=lambda m, p, b: completion("ok")))
for _ in range(4):
    client.chat(ChatRequest(messages=[{{"role": "user", "content": "hi"}}], model="deepseek-v3.2"))
"""  # only the exit writes them
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from gateway.state.keys import workspace_scope

    raw = redis.Redis.from_url(REDIS_URL).hget(RedisMetrics.keys(workspace_scope(workspace_key))[0], '["requests","deepseek-v3.2","other","ok"]')
    assert int(raw or 0) == 4


def test_a_breaker_opened_by_another_process_is_honoured_within_the_bound() -> None:
    gateway, transport, _state, _metrics = make()
    gateway.chat(ask())  # the closed breaker, read now, may be reused for CLIENT_GATE_MAX_AGE
    other = other_process().breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys)
    for _ in range(20):
        other.record_failure(other.acquire())
        if other.state == "open":
            break
    assert other.state == "open"
    opened = time.monotonic()
    while True:  # calls may still go out on the kept read, for CLIENT_GATE_MAX_AGE at most
        try:
            gateway.chat(ask())
        except CircuitOpenError:
            break
        assert time.monotonic() - opened < CLIENT_GATE_MAX_AGE + 0.05
    sent = len(transport.sent)
    with pytest.raises(CircuitOpenError):
        gateway.chat(ask())
    assert len(transport.sent) == sent  # refused, nothing sent


def test_a_pause_set_by_another_process_is_honoured_within_the_bound() -> None:
    sleeps: list[float] = []
    gateway, _transport, state, _metrics = make()
    state._sleep = sleeps.append  # type: ignore[method-assign]
    gateway.chat(ask())
    other = other_process()
    other.rate_limiter(gateway.config.base_url, gateway.config.key_digest, LimitSettings(), keys=gateway.config.keys).pause(5.0)
    time.sleep(CLIENT_GATE_MAX_AGE + 0.01)
    assert gateway.chat(ask()).text == "ok"
    assert sleeps and 4.0 < sleeps[0] <= 5.0  # the next call waited for the other process's 429


def test_this_process_failures_open_its_breaker_at_once_on_a_kept_read() -> None:
    gateway, transport, _state, _metrics = make(replies=[completion("ok"), status(503), status(503), status(503)], gate_max_age=60.0)
    gateway.chat(ask())
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            gateway.chat(ask())
    sent = len(transport.sent)
    with pytest.raises(CircuitOpenError):
        gateway.chat(ask())
    assert len(transport.sent) == sent


def test_a_failure_counts_after_every_success_this_process_made_before_it() -> None:
    # Threshold 2 and rate 0.5: two failures after ten successes leave the breaker closed; had the
    # successes still been waiting in this process, Redis would have seen 2 failures of 2 calls and opened.
    replies = [completion("ok")] * 10 + [status(503), status(503), completion("ok")]
    gateway, _transport, state, metrics = make(replies=replies, flush_every=60.0)
    gateway.chat(ask())
    metrics.write()
    for _ in range(9):
        gateway.chat(ask())
    assert successes(state, gateway) == 1  # the others still in process
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            gateway.chat(ask())
    assert successes(state, gateway) == 10
    assert state.breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys).state == "closed"
    assert gateway.chat(ask()).text == "ok"


def test_a_success_written_later_is_scored_when_it_happened() -> None:
    gateway, _transport, state, metrics = make(flush_every=60.0)
    metrics._last_write = time.monotonic()  # as if it had just written: the flusher waits a minute
    gateway.chat(ask())
    called = time.time()
    time.sleep(0.5)
    metrics.write()
    breaker = state.breaker(gateway.config.base_url, "deepseek-v3.2", keys=gateway.config.keys)
    (_member, score), = state.client.zrange(breaker.keys[2], 0, -1, withscores=True)
    assert abs(score / 1000 - called) < 0.2  # not half a second later, when it was written


def test_a_half_open_probe_is_one_at_a_time_across_processes() -> None:
    settings = BreakerSettings(failure_threshold=2, cooldown_seconds=0.3)
    gateway, _transport, mine, _metrics = make(settings=settings)
    theirs = RedisState(
        REDIS_URL, client=redis.Redis.from_url(REDIS_URL), fallback=InProcessState(), breaker_settings=settings, gate_max_age=CLIENT_GATE_MAX_AGE
    )
    base, keys = gateway.config.base_url, gateway.config.keys
    limiters = [s.rate_limiter(base, gateway.config.key_digest, LimitSettings(), keys=keys) for s in (mine, theirs)]
    breakers = [s.breaker(base, "deepseek-v3.2", keys=keys) for s in (mine, theirs)]
    for breaker, limiter in zip(breakers, limiters, strict=True):
        gated = breaker.acquire_gated(limiter)
        assert gated is not None and gated[0].allowed and not gated[0].probe  # both keep a closed read now
    for _ in range(2):
        breakers[1].record_failure(Permit(True))
    assert breakers[1].state == "open"
    time.sleep(0.35)  # cooldown over, and both kept reads are older than CLIENT_GATE_MAX_AGE
    permits: list[Permit] = []
    lock = threading.Lock()
    barrier = threading.Barrier(40)

    def gate(index: int) -> None:
        barrier.wait()
        got = breakers[index % 2].acquire_gated(limiters[index % 2])
        assert got is not None
        with lock:
            permits.append(got[0])

    threads = [threading.Thread(target=gate, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(permits) == 40
    assert sum(p.probe for p in permits) == 1 and sum(p.allowed for p in permits) == 1  # one probe, the rest refused
    # While the probe is out no read is kept: the breaker is not closed, so every call asks Redis.
    again = breakers[0].acquire_gated(limiters[0])
    assert again is not None and not again[0].allowed
