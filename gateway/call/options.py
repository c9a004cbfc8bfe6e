"""What a call carries through the chain: the caller's options, and one model's share of a call."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.call.rate_limits import LimitSettings, RateLimiter
from gateway.models import ChatRequest
from gateway.spend.budget import BatchBudget, BudgetPolicy, Identity
from gateway.wire.transport import Deadline


@dataclass
class CallOptions:
    """Per-call knobs a tool may set on top of the gateway configuration."""

    limits: LimitSettings = field(default_factory=LimitSettings)
    use_fallbacks: bool = True
    deadline: Deadline | None = None
    budget: BudgetPolicy | None = None  # the budgets in force (the administrator's, tightened by the workflow)
    identity: Identity = field(default_factory=Identity)  # the Dify app and user, for per-app/per-user budgets
    batch_budget: BatchBudget | None = None  # the spend of the batch this call belongs to
    cache: str = "auto"  # auto | on | off (gateway.spend.cache)
    tool: str = "other"  # the tool making the call: a metrics label
    correlation_id: str = ""  # sent as X-Request-Id; in the result, the errors and the log line


@dataclass(slots=True)
class Call:
    """One model's share of a call: what the retry loop and its attempts share."""

    request: ChatRequest
    deadline: Deadline
    limiter: RateLimiter
    started: float
    attempts: int = 0  # requests sent (or refused by the rate limit before sending) for this model
    delivered: bool = False  # content reached the caller: nothing is sent again
    include_usage: bool = True  # ask a stream for usage (dropped when the gateway refuses it)
    paced: int = 0  # the adaptive pacer's number for the request in flight
    headers: dict[str, str] | None = None  # sent with every attempt (X-Request-Id)
    # When the gateway key's 429 pause ends (monotonic), read with the breaker's permit in the same round
    # trip (a call without buckets, Redis); the first attempt waits for it instead of asking again.
    pause_until: float | None = None
