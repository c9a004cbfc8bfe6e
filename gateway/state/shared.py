"""Where the state shared between calls lives: rate-limit buckets and circuit breakers.

`InProcessState` (the default) shares them between all invocations inside one plugin process (the process's
one is made by its wiring: `gateway.state.backends.Backends`).
`gateway.state.redis_state.RedisState` shares them between processes; both satisfy `SharedState`.
Which one a configuration gets is decided in one place, `gateway.state.backends.Backends.state_for`.

One process (and one Redis) serves every workspace of a Dify instance, so every breaker, bucket and
pause belongs to one workspace: callers pass its `Keys` (`GatewayConfig.keys`), and one workspace's
failures or 429s never open another's breaker or pause its calls.
"""

from __future__ import annotations

import threading
from typing import Protocol

from gateway.call.breaker import Breaker, BreakerSettings, InProcessBreaker
from gateway.call.rate_limits import InProcessRateLimiter, LimitSettings, PauseGate, RateLimiter
from gateway.state.keys import Keys


class SharedState(Protocol):
    def breaker(self, base_url: str, model: str, *, keys: Keys) -> Breaker: ...
    def rate_limiter(self, base_url: str, key_digest: str, settings: LimitSettings, *, keys: Keys) -> RateLimiter: ...
    def warnings(self) -> list[str]: ...


class InProcessState:
    def __init__(self, breaker_settings: BreakerSettings | None = None) -> None:
        self.breaker_settings = breaker_settings or BreakerSettings()
        self._lock = threading.Lock()
        # Every map is keyed by the workspace's scope first: one process serves every workspace.
        self._breakers: dict[tuple[str, str, str], InProcessBreaker] = {}
        self._limiters: dict[tuple[str, str, str, LimitSettings], InProcessRateLimiter] = {}
        self._gates: dict[tuple[str, str, str], PauseGate] = {}

    def breaker(self, base_url: str, model: str, *, keys: Keys) -> Breaker:
        with self._lock:
            key = (keys.scope, base_url, model)
            if key not in self._breakers:
                self._breakers[key] = InProcessBreaker(self.breaker_settings)
            return self._breakers[key]

    def rate_limiter(self, base_url: str, key_digest: str, settings: LimitSettings, *, keys: Keys) -> RateLimiter:
        # One bucket per (workspace, gateway, key, limits): invocations that configure the same limits share it.
        # A 429's pause is per (workspace, gateway, key): it holds back every caller, with or without limits.
        with self._lock:
            key = (keys.scope, base_url, key_digest, settings)
            if key not in self._limiters:
                gate = self._gates.setdefault((keys.scope, base_url, key_digest), PauseGate())
                self._limiters[key] = InProcessRateLimiter(settings, gate=gate)
            return self._limiters[key]

    def warnings(self) -> list[str]:
        return []

