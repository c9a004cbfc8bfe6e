"""The circuit breaker: opens after repeated failures, fails fast, half-opens with limited probes, closes."""

from gateway.call.breaker import CLOSED, HALF_OPEN, OPEN, BreakerSettings, InProcessBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: FakeClock, **overrides: float) -> InProcessBreaker:
    settings = BreakerSettings(**{"failure_threshold": 3, "window_seconds": 10, "cooldown_seconds": 5, "half_open_probes": 1, **overrides})
    return InProcessBreaker(settings, clock=clock)


def fail(breaker: InProcessBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure(breaker.acquire())


def test_opens_after_threshold_failures_within_the_window_and_fails_fast() -> None:
    clock = FakeClock()
    breaker = make(clock)
    fail(breaker, 2)
    assert breaker.state == CLOSED
    fail(breaker, 1)
    assert breaker.state == OPEN
    permit = breaker.acquire()
    assert not permit.allowed
    assert 0 < permit.retry_in <= 5


def test_failures_spread_beyond_the_window_do_not_open_it() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(5):
        fail(breaker, 1)
        clock.now += 6  # two failures never share a 10 s window with a third
    assert breaker.state == CLOSED


def test_half_open_lets_only_the_configured_number_of_probes_through() -> None:
    clock = FakeClock()
    breaker = make(clock, half_open_probes=2)
    fail(breaker, 3)
    clock.now += 5
    assert breaker.state == HALF_OPEN
    first, second, third = breaker.acquire(), breaker.acquire(), breaker.acquire()
    assert first.allowed and first.probe and second.allowed and second.probe
    assert not third.allowed


def test_successful_probe_closes_and_failed_probe_reopens() -> None:
    clock = FakeClock()
    breaker = make(clock)
    fail(breaker, 3)
    clock.now += 5
    breaker.record_failure(breaker.acquire())
    assert breaker.state == OPEN
    clock.now += 5
    breaker.record_success(breaker.acquire())
    assert breaker.state == CLOSED
    assert breaker.acquire().allowed


def succeed(breaker: InProcessBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_success(breaker.acquire())


def test_scattered_failures_in_a_mostly_healthy_stream_do_not_open_it() -> None:
    """A busy batch with a few exhausted retries keeps going: the failure rate, not only the count, decides."""
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(10):
        succeed(breaker, 4)
        fail(breaker, 1)  # 20 % failures, 10 of them within the window
    assert breaker.state == CLOSED
    fail(breaker, 40)  # now most calls fail
    assert breaker.state == OPEN
