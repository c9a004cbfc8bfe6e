"""RPM/TPM buckets: reservations wait their turn, settle with real usage, and a 429 pauses everyone."""

import threading

import pytest

from gateway.call.rate_limits import RPM_PACING, InProcessRateLimiter, LimitSettings, RateLimitTimeout
from gateway.state.keys import Keys


class FakeTime:
    """A clock whose sleep advances it, so waits are measured, not slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now = max(self.now, self.now + seconds)


def limiter(fake: FakeTime, rpm: int = 0, tpm: int = 0) -> InProcessRateLimiter:
    return InProcessRateLimiter(LimitSettings(rpm=rpm, tpm=tpm), clock=fake.clock, sleep=fake.sleep)


def test_requests_are_spaced_evenly_just_under_the_rpm_rate_without_a_burst() -> None:
    fake = FakeTime()
    bucket = limiter(fake, rpm=240)  # 4 per second: the first at once, then one every 1/(4 x 0.97) s
    starts = []
    for _ in range(7):
        bucket.reserve(1, None)
        starts.append(fake.now)
    spacing = 1 / (4 * RPM_PACING)  # 3 % slower than the limit, so jitter never bunches arrivals over it
    assert starts == pytest.approx([n * spacing for n in range(7)])


def simulate_minute(rpm: int, workers: int, latency: float, seconds: float = 60.0) -> list[float]:
    """Send times of `workers` callers that each reserve, send (taking `latency`), and reserve again, for
    `seconds` of virtual time: the limiter's injected clock, not the wall clock."""
    now = [0.0]
    bucket = InProcessRateLimiter(LimitSettings(rpm=rpm), clock=lambda: now[0], sleep=lambda s: None)
    free_at = [0.0] * workers  # when each worker is ready to reserve again
    sends: list[float] = []
    while True:
        worker = min(range(workers), key=lambda w: free_at[w])
        now[0] = free_at[worker]
        if now[0] >= seconds:
            return sends
        before = bucket._next_free
        bucket.reserve(1, None)
        sent = max(now[0], bucket._next_free if bucket._next_free > before else now[0])
        if sent >= seconds:
            return sends
        sends.append(sent)
        free_at[worker] = sent + latency


def most_in_any_window(sends: list[float], length: float) -> int:
    most, start = 0, 0
    for end, t in enumerate(sends):
        while t - sends[start] >= length:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize(("rpm", "workers", "latency"), [(600, 64, 0.05), (600, 10, 0.3), (60, 5, 0.02), (3000, 100, 0.2)])
def test_a_minute_of_virtual_time_never_puts_more_than_the_rate_in_any_window(rpm: int, workers: int, latency: float) -> None:
    sends = sorted(simulate_minute(rpm, workers, latency))
    per_second = rpm / 60
    for length in (1.0, 2.5, 10.0, 60.0):
        assert most_in_any_window(sends, length) <= per_second * length + 1, length
    # Fixed one-second windows, as the simulator (and gateways that count per second) enforce them.
    per_window: dict[int, int] = {}
    for t in sends:
        per_window[int(t)] = per_window.get(int(t), 0) + 1
    assert max(per_window.values()) <= per_second
    assert len(sends) >= 0.95 * rpm


def test_paced_requests_leave_the_gateways_own_bucket_a_request_of_headroom() -> None:
    """A gateway enforcing 600 RPM as a bucket of 10 refilled at 10/s always has a spare token when
    our request arrives, so arrivals bunched by up to 1/10 s of jitter are still accepted."""
    fake = FakeTime()
    bucket = limiter(fake, rpm=600)
    gateway_level, last = 10.0, 0.0
    for _ in range(300):
        bucket.reserve(1, None)
        gateway_level = min(10.0, gateway_level + (fake.now - last) * 10)
        last = fake.now
        assert gateway_level >= 2.0 - 1e-9
        gateway_level -= 1


def test_tokens_are_reserved_before_sending_and_settled_with_real_usage() -> None:
    fake = FakeTime()
    bucket = limiter(fake, tpm=6000)  # 100 tokens per second, 6000 burst
    first = bucket.reserve(5000, None)
    first.settle(1000)  # the call used far less than reserved: 4000 come back
    bucket.reserve(5000, None)
    assert fake.now == 0.0
    bucket.reserve(2000, None)  # now 0 left after refund math: 6000-1000-5000 = 0 -> wait 20 s
    assert fake.now == pytest.approx(20.0)


def test_a_reservation_that_cannot_be_granted_before_the_deadline_is_refused() -> None:
    fake = FakeTime()
    bucket = limiter(fake, rpm=60)
    bucket.reserve(1, None)
    with pytest.raises(RateLimitTimeout):
        bucket.reserve(1, deadline=0.5)


def test_a_gateway_429_pauses_every_caller_of_the_bucket() -> None:
    fake = FakeTime()
    bucket = limiter(fake, rpm=6000)
    bucket.pause(3.0)
    bucket.reserve(1, None)
    assert fake.now == pytest.approx(3.0)


def test_parallel_reservations_never_overspend() -> None:
    """No check-then-act race: 40 threads reserving at once get distinct slots."""
    fake = FakeTime()
    bucket = limiter(fake, rpm=600)  # 10/s, burst 10
    granted_at: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        bucket.reserve(1, None)
        with lock:
            granted_at.append(fake.now)

    threads = [threading.Thread(target=worker) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted_at) == 40
    # 10 immediately, the remaining 30 need at least 3 s of refill.
    assert max(granted_at) >= 3.0 - 1e-9


def test_a_429_pause_holds_every_caller_of_the_gateway_key_whatever_their_limits() -> None:
    from gateway.state.shared import InProcessState

    fake = FakeTime()
    state = InProcessState()
    limited = state.rate_limiter("https://gw/v1", "key", LimitSettings(rpm=6000), keys=Keys("w1"))
    unlimited = state.rate_limiter("https://gw/v1", "key", LimitSettings(), keys=Keys("w1"))
    other_key = state.rate_limiter("https://gw/v1", "other", LimitSettings(), keys=Keys("w1"))
    for limiter in (limited, unlimited, other_key):
        limiter._clock, limiter._sleep = fake.clock, fake.sleep  # type: ignore[attr-defined]
    limited.pause(3.0)
    unlimited.reserve(0, None)
    assert fake.now == pytest.approx(3.0)  # no limits configured, still held by the gateway's Retry-After
    other_key.reserve(0, None)
    assert fake.now == pytest.approx(3.0)  # another key is not held
