"""Rate limits and breaker state shared through the real Redis on 127.0.0.1:6379."""

import threading
import time
import uuid

import pytest
import redis

from gateway.call.breaker import CLOSED, HALF_OPEN, OPEN, BreakerSettings
from gateway.call.rate_limits import LimitSettings, RateLimitTimeout
from gateway.state.keys import Keys
from gateway.state.redis_state import RETRY_REDIS_AFTER, RedisState, RedisUnavailable
from gateway.state.shared import InProcessState
from tests.private_redis import PrivateRedis

REDIS_URL = "redis://127.0.0.1:6379/15"
pytestmark = pytest.mark.redis
WORKSPACE = Keys.for_api_key("sk-redis-state-workspace")


@pytest.fixture
def base_url() -> str:
    return f"http://gateway-{uuid.uuid4().hex[:8]}.test/v1"  # a fresh key space per test


def two_processes(**kwargs: object) -> tuple[RedisState, RedisState]:
    """Two independent states with their own connections and fallbacks, as two plugin processes have."""
    return (
        RedisState(REDIS_URL, client=redis.Redis.from_url(REDIS_URL), fallback=InProcessState(), **kwargs),  # type: ignore[arg-type]
        RedisState(REDIS_URL, client=redis.Redis.from_url(REDIS_URL), fallback=InProcessState(), **kwargs),  # type: ignore[arg-type]
    )


def test_two_processes_share_one_rpm_budget(base_url: str) -> None:
    first, second = two_processes()
    settings = LimitSettings(rpm=600)  # 10/s with a burst of 10
    limiters = [first.rate_limiter(base_url, "k", settings, keys=WORKSPACE), second.rate_limiter(base_url, "k", settings, keys=WORKSPACE)]
    granted: list[float] = []
    lock = threading.Lock()
    started = time.monotonic()

    def worker(n: int) -> None:
        limiters[n % 2].reserve(1, None)
        with lock:
            granted.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted.sort()
    # Together the two "processes" got 30 requests: 10 at once, then 20 more needing ~2 s of refill.
    assert granted[-1] >= 1.8
    # No sliding one-second window ever holds more than burst + rate (10 + 10).
    for i, t in enumerate(granted):
        in_window = sum(1 for u in granted[i:] if u - t < 1.0)
        assert in_window <= 20


def test_reservation_past_the_deadline_is_refused_without_spending(base_url: str) -> None:
    state = RedisState(REDIS_URL, fallback=InProcessState())
    limiter = state.rate_limiter(base_url, "k", LimitSettings(rpm=60), keys=WORKSPACE)
    limiter.reserve(1, None)
    with pytest.raises(RateLimitTimeout):
        limiter.reserve(1, time.monotonic() + 0.2)


def test_a_429_pause_in_one_process_holds_the_other(base_url: str) -> None:
    first, second = two_processes()
    settings = LimitSettings(rpm=6000)
    first.rate_limiter(base_url, "k", settings, keys=WORKSPACE).pause(0.5)
    started = time.monotonic()
    second.rate_limiter(base_url, "k", settings, keys=WORKSPACE).reserve(1, None)
    assert time.monotonic() - started >= 0.4


def test_breaker_opened_in_one_process_is_open_in_the_other(base_url: str) -> None:
    settings = BreakerSettings(failure_threshold=3, window_seconds=10, cooldown_seconds=0.5, half_open_probes=1)
    first, second = two_processes(breaker_settings=settings)
    a, b = first.breaker(base_url, "m", keys=WORKSPACE), second.breaker(base_url, "m", keys=WORKSPACE)
    for _ in range(3):
        a.record_failure(a.acquire())
    assert b.state == OPEN
    assert not b.acquire().allowed
    time.sleep(0.6)
    assert b.state == HALF_OPEN
    probe = b.acquire()
    assert probe.allowed and probe.probe
    assert not a.acquire().allowed  # only one probe across all processes
    b.record_success(probe)
    assert a.state == CLOSED


def test_shared_breaker_counts_successes_from_every_process(base_url: str) -> None:
    settings = BreakerSettings(failure_threshold=3, window_seconds=10, cooldown_seconds=5, half_open_probes=1)
    first, second = two_processes(breaker_settings=settings)
    a, b = first.breaker(base_url, "rate", keys=WORKSPACE), second.breaker(base_url, "rate", keys=WORKSPACE)
    for _ in range(4):
        for _ in range(3):
            b.record_success(b.acquire())
        a.record_failure(a.acquire())  # 4 failures, but only 25 % of the calls
    assert a.state == CLOSED
    for _ in range(10):  # 14 of 26 calls failed: over half
        a.record_failure(a.acquire())
    assert b.state == OPEN


def test_unreachable_redis_falls_back_to_in_process_with_a_warning(base_url: str) -> None:
    state = RedisState("redis://127.0.0.1:1/0", fallback=InProcessState())
    with pytest.raises(RedisUnavailable, match=r"cannot reach Redis at 127\.0\.0\.1:1/0"):
        state.ping()
    limiter = state.rate_limiter(base_url, "k", LimitSettings(rpm=600), keys=WORKSPACE)
    limiter.reserve(1, None)
    breaker = state.breaker(base_url, "m", keys=WORKSPACE)
    assert breaker.acquire().allowed
    assert any("unreachable" in w for w in state.warnings())


def test_wrong_or_missing_password_is_reported_clearly(private_redis: PrivateRedis) -> None:
    wrong = RedisState(f"redis://:wrong-password@127.0.0.1:{private_redis.port}/0")
    with pytest.raises(RedisUnavailable) as caught:
        wrong.ping()
    assert "wrong-password" not in str(caught.value)
    assert "password" in str(caught.value).lower()
    missing = RedisState(f"redis://127.0.0.1:{private_redis.port}/0")
    with pytest.raises(RedisUnavailable, match="needs a password"):
        missing.ping()
    RedisState(private_redis.url).ping()


def test_redis_stopped_mid_run_degrades_to_in_process_then_recovers(private_redis: PrivateRedis, base_url: str) -> None:
    state = RedisState(private_redis.url, fallback=InProcessState())
    limiter = state.rate_limiter(base_url, "k", LimitSettings(rpm=6000), keys=WORKSPACE)
    limiter.reserve(1, None)
    assert state.warnings() == []
    private_redis.stop()
    limiter.reserve(1, None)  # still works, per process
    assert any("unreachable" in w for w in state.warnings())
    private_redis.start()
    time.sleep(RETRY_REDIS_AFTER + 0.1)
    limiter.reserve(1, None)
    assert state.warnings() == []
