"""The breaker layer: one permit per model before anything is sent (CircuitOpenError, nothing sent, when
the circuit is open), and the outcome reported back whatever happens: a failure that says the upstream
is unhealthy counts against it; a bad request, a wrong key or a caller that stopped reading does not.
A success may be left for after the call (`after`), to go out with the call's metrics in one round trip."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from gateway.call.breaker import Breaker, Permit
from gateway.call.options import Call
from gateway.call.rate_limits import RateLimiter
from gateway.call.stores import Stores
from gateway.config import GatewayConfig
from gateway.errors import CircuitOpenError, GatewayError, GatewayTimeoutError, InBandStreamError, StreamInterruptedError, UpstreamUnavailableError
from gateway.models import ReasoningDelta, TextDelta
from gateway.state.shared import SharedState
from untrusted import quote

Inner = Callable[[Call], Generator[TextDelta | ReasoningDelta, None, Any]]


class BreakerStep:
    __slots__ = ("config", "state", "stores")

    def __init__(self, state: SharedState, config: GatewayConfig, stores: Stores) -> None:
        self.state = state
        self.config = config
        self.stores = stores

    def breaker_for(self, model: str) -> Breaker:
        return self.state.breaker(self.config.base_url, model, keys=self.config.keys)

    def run(self, call: Call, inner: Inner, after: list[Any] | None = None) -> Generator[TextDelta | ReasoningDelta, None, Any]:
        """`inner` (the retry loop) under the breaker of the call's model; returns its outcome."""
        model = call.request.model
        breaker, permit, call.pause_until = self.permit(model, call.limiter)
        try:
            completed = yield from inner(call)
        except GatewayError as exc:
            self._failed(model, breaker, permit, exc)
            raise
        except GeneratorExit:  # the caller stopped reading: nothing says the gateway failed
            breaker.record_success(permit)
            raise
        except BaseException:
            breaker.record_failure(permit)  # a half-open probe must always be reported back
            raise
        later = breaker.success_later(permit) if after is not None and not permit.probe and hasattr(breaker, "success_later") else None
        if later is None:
            breaker.record_success(permit)
        else:
            after.append(later)  # type: ignore[union-attr]
        if permit.probe:
            self.stores.metrics.record_breaker(model, "half_open", "closed")
        return completed

    def permit(self, model: str, limiter: RateLimiter | None = None) -> tuple[Breaker, Permit, float | None]:
        """The breaker's permission to call `model`; raises CircuitOpenError (nothing sent) when open.
        With Redis and no buckets, also when the gateway key's 429 pause ends (one round trip for both)."""
        breaker = self.breaker_for(model)
        gated = breaker.acquire_gated(limiter) if limiter is not None and hasattr(breaker, "acquire_gated") else None
        if gated is None:
            permit, pause_until = breaker.acquire(), None
        else:
            permit, pause_until = gated
        if permit.probe:
            self.stores.metrics.record_breaker(model, "open", "half_open")
        if not permit.allowed:
            self.stores.metrics.record_breaker(model, "open", "open")
            raise CircuitOpenError(
                f"circuit open for model {quote(model)} at {self.config.base_url}: recent calls failed; "
                f"not sending for another {permit.retry_in:.0f}s",
                attempts=0,
            )
        return breaker, permit, pause_until

    def _failed(self, model: str, breaker: Breaker, permit: Permit, exc: GatewayError) -> None:
        """Reports a failed call to the breaker, and any transition it caused to the metrics (the state
        is read only on this path: failures are rare, successes pay nothing)."""
        metrics = self.stores.metrics
        if permit.probe:
            failed = _record(breaker, permit, exc)
            metrics.record_breaker(model, "half_open", "open" if failed else "closed")
            return
        if not counts_against(exc):
            _record(breaker, permit, exc)
            return
        before = breaker.state
        _record(breaker, permit, exc)
        after = breaker.state
        if after != before:
            metrics.record_breaker(model, before, after)


def _record(breaker: Breaker, permit: Permit, exc: GatewayError) -> bool:
    """Reports `exc` to the breaker; True when it counted as a failure."""
    if counts_against(exc):
        breaker.record_failure(permit)
        return True
    breaker.record_success(permit)
    return False


def counts_against(exc: GatewayError) -> bool:
    # Only failures that say the upstream is unhealthy count; a bad request or wrong key does not.
    client_side = exc.status is not None and 400 <= exc.status < 500 and exc.status != 408
    return not client_side and isinstance(exc, UpstreamUnavailableError | GatewayTimeoutError | StreamInterruptedError | InBandStreamError)
