"""The limits and pacing layer: before each attempt, a place in the call's rate-limit buckets (or, with
no rpm configured, the adaptive pacer's turn: `gateway.call.pacing`); after it, the answer's rate-limit
headers for the pacer. A wait past the call's deadline is a RateLimitedError, nothing sent."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.call.options import Call
from gateway.call.pacing import AdaptivePacer
from gateway.call.rate_limits import LimitSettings, RateLimiter, RateLimitTimeout, Reservation
from gateway.call.stores import Stores
from gateway.config import GatewayConfig
from gateway.errors import RateLimitedError
from gateway.spend.tokens import estimate_prompt_tokens
from gateway.state.shared import SharedState
from gateway.wire.transport import Response

# Tokens reserved against a TPM limit for the completion when the caller sets no max_tokens.
DEFAULT_COMPLETION_RESERVE = 1024
# Seconds a 429 pause read with the breaker's permit is trusted for; past that (the adaptive pacer held
# the call) the attempt asks the limiter again.
PAUSE_READ_FRESH = 0.05


class LimitsStep:
    __slots__ = ("config", "pacer", "state", "stores")

    def __init__(self, state: SharedState, config: GatewayConfig, pacer: AdaptivePacer, stores: Stores) -> None:
        self.state = state
        self.config = config
        self.pacer = pacer
        self.stores = stores

    def limiter(self, limits: LimitSettings) -> RateLimiter:
        """The call's buckets; even without limits it holds the call while the gateway's last 429 lasts."""
        config = self.config
        return self.state.rate_limiter(config.base_url, config.key_digest, limits, keys=config.keys)

    def observer(self, call: Call) -> Callable[[Response], None] | None:
        """What reads the answer's rate-limit headers for the adaptive pacer (nothing, once the gateway
        turned out to send none)."""
        if self.pacer.mode == "free" or not call.paced:
            return None
        number, pacer = call.paced, self.pacer
        return lambda response: pacer.observe(response.headers, number, rejected=response.status == 429)

    def release(self, call: Call) -> None:
        """The attempt failed before an answer: the pacer's turn is given back."""
        if call.paced:
            self.pacer.release(call.paced)

    def reserve(self, call: Call) -> Reservation:
        limiter, request = call.limiter, call.request
        tokens = 0
        if limiter.settings.tpm:  # the estimate costs a tokenizer pass: only when a TPM bucket needs it
            tokens = estimate_prompt_tokens(request.messages).tokens + (request.max_tokens or DEFAULT_COMPLETION_RESERVE)
        started = time.monotonic()
        pause_until, call.pause_until = call.pause_until, None  # read with the permit: for the first attempt only
        try:
            if not limiter.settings.rpm:  # no configured pace: the gateway's rate-limit headers set it
                call.paced = self.pacer.acquire(call.deadline.at)
            if pause_until is not None and time.monotonic() - started < PAUSE_READ_FRESH:
                reservation = limiter.wait_until(pause_until, tokens, call.deadline.at)  # type: ignore[attr-defined]
            else:  # no pause read yet, or the pacer held the call long enough for a new 429 to matter
                reservation = limiter.reserve(tokens, call.deadline.at)
            waited = time.monotonic() - started
            if waited > 0.001:
                self.stores.metrics.record_wait(request.model, waited)
            return reservation
        except RateLimitTimeout as exc:
            why = "the configured rate limit" if limiter.settings.rpm or limiter.settings.tpm else "the gateway's rate limit"
            error = RateLimitedError(
                f"not sent: waiting for {why} would take {exc.wait:.1f}s, past the call's deadline",
                retry_after=exc.wait,
                attempts=call.attempts,
            )
            error.not_sent = True  # this attempt never left: a batch reports the item as not run
            error.retryable = False  # the limit is per key: another model would not be sent sooner
            raise error from None
