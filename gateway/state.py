"""Where the state shared between calls lives: rate-limit buckets and circuit breakers.

`InProcessState` (the default) shares them between all invocations inside one plugin process.
`gateway.redis_state.RedisState` shares them between processes; both satisfy `SharedState`.
Which one a configuration gets is decided in one place, `gateway.backends.state_for`.
"""

from __future__ import annotations

import threading
from typing import Protocol

from gateway.breaker import Breaker, BreakerSettings, InProcessBreaker
from gateway.limits import InProcessRateLimiter, LimitSettings, PauseGate, RateLimiter


class SharedState(Protocol):
    def breaker(self, base_url: str, model: str) -> Breaker: ...
    def rate_limiter(self, base_url: str, key_digest: str, settings: LimitSettings) -> RateLimiter: ...
    def warnings(self) -> list[str]: ...


class InProcessState:
    def __init__(self, breaker_settings: BreakerSettings | None = None) -> None:
        self.breaker_settings = breaker_settings or BreakerSettings()
        self._lock = threading.Lock()
        self._breakers: dict[tuple[str, str], InProcessBreaker] = {}
        self._limiters: dict[tuple[str, str, LimitSettings], InProcessRateLimiter] = {}
        self._gates: dict[tuple[str, str], PauseGate] = {}

    def breaker(self, base_url: str, model: str) -> Breaker:
        with self._lock:
            key = (base_url, model)
            if key not in self._breakers:
                self._breakers[key] = InProcessBreaker(self.breaker_settings)
            return self._breakers[key]

    def rate_limiter(self, base_url: str, key_digest: str, settings: LimitSettings) -> RateLimiter:
        # One bucket per (gateway, key, limits): invocations that configure the same limits share it.
        # A 429's pause is per (gateway, key): it holds back every caller, with or without limits.
        with self._lock:
            key = (base_url, key_digest, settings)
            if key not in self._limiters:
                gate = self._gates.setdefault((base_url, key_digest), PauseGate())
                self._limiters[key] = InProcessRateLimiter(settings, gate=gate)
            return self._limiters[key]

    def warnings(self) -> list[str]:
        return []


PROCESS_STATE = InProcessState()
