"""Requests-per-minute and tokens-per-minute buckets shared by every call with the same gateway key.

A call reserves one request and its estimated tokens (prompt estimate + max_tokens) before it is
sent, and settles with the real usage afterwards, so parallel workers cannot all pass a check and
then all spend. A 429 from the gateway pauses the bucket for everyone until its Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# Requests are spaced evenly, 3 % under the limit: the gateway counts arrivals, and network jitter can
# bring two requests closer together than they were sent. With a spacing of 1/(0.97 x rate) no window of
# any length L holds more than rate x L + 1 requests (one-second windows included, fixed or sliding),
# while 97 % of the limit is used over a minute.
RPM_PACING = 0.97


@dataclass(frozen=True)
class LimitSettings:
    rpm: int = 0  # 0 = no limit
    tpm: int = 0

    def rpm_bucket(self) -> tuple[float, float]:
        """(capacity, refill per second) of the requests bucket: a capacity of one request, so requests are
        spaced, never bunched. A burst (even one second's worth) plus its refill would put up to twice the
        rate into the first second, which a gateway enforcing its limit over one-second windows rejects."""
        return 1.0, self.rpm / 60.0 * RPM_PACING

    def tpm_bucket(self) -> tuple[float, float]:
        """(capacity, refill per second) of the tokens bucket: a minute of tokens."""
        return float(self.tpm), self.tpm / 60.0


class RateLimitTimeout(Exception):
    """The reservation could not be granted before the caller's deadline."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limit would need a {wait:.1f}s wait, past the deadline")
        self.wait = wait


@dataclass
class Reservation:
    limiter: RateLimiter | None
    tokens: int

    def settle(self, actual_tokens: int) -> None:
        """Give back (or take more of) the difference between what was reserved and what was used."""
        if self.limiter is not None and actual_tokens != self.tokens:
            self.limiter.adjust_tokens(self.tokens - actual_tokens)
            self.tokens = actual_tokens


class RateLimiter(Protocol):
    settings: LimitSettings

    def reserve(self, tokens: int, deadline: float | None) -> Reservation: ...
    def adjust_tokens(self, delta: int) -> None: ...
    def pause(self, seconds: float) -> None: ...


class TokenBucket:
    """A bucket of `capacity` refilled at `rate` per second; the level may go negative (a debt), which
    is how a reservation larger than what is left is granted in order, not starved."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self.level = capacity
        self._stamp = clock()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now


def bucket_pair(settings: LimitSettings, clock: Callable[[], float]) -> tuple[TokenBucket | None, TokenBucket | None]:
    rpm = TokenBucket(*settings.rpm_bucket(), clock) if settings.rpm > 0 else None
    tpm = TokenBucket(*settings.tpm_bucket(), clock) if settings.tpm > 0 else None
    return rpm, tpm


class PauseGate:
    """When the gateway said 429 with a Retry-After, nobody using that gateway key sends before it ends,
    whatever limits (if any) each caller configured."""

    def __init__(self) -> None:
        self.until = 0.0
        self._lock = threading.Lock()

    def extend(self, until: float) -> None:
        with self._lock:
            self.until = max(self.until, until)


class InProcessRateLimiter:
    def __init__(
        self,
        settings: LimitSettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        gate: PauseGate | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rpm, self._tpm = bucket_pair(settings, clock)
        self._gate = gate or PauseGate()
        # Waiters are served in arrival order: a ticket system avoids a thundering herd of greenlets.
        self._next_free = 0.0

    def reserve(self, tokens: int, deadline: float | None) -> Reservation:
        if self._rpm is None and self._tpm is None:
            now = self._clock()
            wait = self._gate.until - now
            if wait > 0:
                if deadline is not None and now + wait > deadline:
                    raise RateLimitTimeout(wait)
                self._sleep(wait)
            return Reservation(None, tokens)
        with self._lock:
            now = self._clock()
            start = max(now, self._gate.until, self._next_free)
            wait = start - now
            for bucket, amount in ((self._rpm, 1.0), (self._tpm, float(tokens))):
                if bucket is None:
                    continue
                bucket.refill(now)
                # Project the bucket to `start`, then find how much longer it needs for `amount`.
                projected = min(bucket.capacity, bucket.level + (start - now) * bucket.rate)
                if projected < min(amount, bucket.capacity):
                    wait = max(wait, start - now + (min(amount, bucket.capacity) - projected) / bucket.rate)
            if deadline is not None and now + wait > deadline:
                raise RateLimitTimeout(wait)
            for bucket, amount in ((self._rpm, 1.0), (self._tpm, float(tokens))):
                if bucket is not None:
                    bucket.level -= amount
            self._next_free = now + wait
        if wait > 0:
            self._sleep(wait)
        return Reservation(self, tokens)

    def adjust_tokens(self, delta: int) -> None:
        if self._tpm is None:
            return
        with self._lock:
            self._tpm.refill(self._clock())
            self._tpm.level = min(self._tpm.capacity, self._tpm.level + delta)

    def pause(self, seconds: float) -> None:
        self._gate.extend(self._clock() + seconds)
