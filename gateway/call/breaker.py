"""Circuit breaker per (base URL, model): closed -> open when, within `window_seconds`, at least
`failure_threshold` calls failed AND they are at least `failure_rate` of the calls made (a count alone
would trip a busy batch on a few scattered faults, as resilience4j's minimum-calls rule avoids); after
`cooldown_seconds` half-open, letting at most `half_open_probes` calls through;
a successful probe closes it, a failed one opens it again. No lock is held while a call is in flight:
`acquire()` decides and returns, the caller reports the outcome later."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 5
    failure_rate: float = 0.5
    window_seconds: float = 30.0
    cooldown_seconds: float = 15.0
    half_open_probes: int = 1


@dataclass(frozen=True)
class Permit:
    """What `acquire()` hands out. `probe` is True for a half-open trial call."""

    allowed: bool
    probe: bool = False
    retry_in: float = 0.0


class Breaker(Protocol):
    def acquire(self) -> Permit: ...
    def record_success(self, permit: Permit) -> None: ...
    def record_failure(self, permit: Permit) -> None: ...
    @property
    def state(self) -> str: ...


class InProcessBreaker:
    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._outcomes: deque[tuple[float, bool]] = deque(maxlen=10_000)  # (time, failed) of calls in the window
        self._opened_at = 0.0
        self._probes_in_flight = 0

    @property
    def state(self) -> str:
        with self._lock:
            self._advance(self._clock())
            return self._state

    def _advance(self, now: float) -> None:
        if self._state == OPEN and now - self._opened_at >= self.settings.cooldown_seconds:
            self._state = HALF_OPEN
            self._probes_in_flight = 0

    def acquire(self) -> Permit:
        with self._lock:
            now = self._clock()
            self._advance(now)
            if self._state == CLOSED:
                return Permit(True)
            if self._state == HALF_OPEN and self._probes_in_flight < self.settings.half_open_probes:
                self._probes_in_flight += 1
                return Permit(True, probe=True)
            wait = self.settings.cooldown_seconds - (now - self._opened_at) if self._state == OPEN else 0.0
            return Permit(False, retry_in=max(0.0, wait))

    def record_success(self, permit: Permit) -> None:
        with self._lock:
            if permit.probe and self._state == HALF_OPEN:
                self._state = CLOSED
                self._outcomes.clear()
                self._probes_in_flight = 0
            elif self._state == CLOSED:
                self._note(self._clock(), failed=False)

    def record_failure(self, permit: Permit) -> None:
        with self._lock:
            now = self._clock()
            if permit.probe:
                if self._state == HALF_OPEN:
                    self._open(now)
                return
            if self._state != CLOSED:
                return
            self._note(now, failed=True)
            failures = sum(1 for _, failed in self._outcomes if failed)
            if failures >= self.settings.failure_threshold and failures >= self.settings.failure_rate * len(self._outcomes):
                self._open(now)

    def _note(self, now: float, *, failed: bool) -> None:
        self._outcomes.append((now, failed))
        while self._outcomes and now - self._outcomes[0][0] > self.settings.window_seconds:
            self._outcomes.popleft()

    def _open(self, now: float) -> None:
        self._state = OPEN
        self._opened_at = now
        self._outcomes.clear()
        self._probes_in_flight = 0
