"""The fallbacks layer: the primary model, then each fallback model while the previous one is unavailable
(retries exhausted or circuit open); never after a 4xx, a possibly billed failure, or delivered content.
Each model's call goes budget -> breaker -> retry loop -> attempt; `attempts` counts every request sent,
across models."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from gateway.call.breaker_step import BreakerStep
from gateway.call.budget_step import BudgetStep, Reserved, failed_cost, settle
from gateway.call.limits_step import LimitsStep
from gateway.call.options import Call, CallOptions
from gateway.call.retry_loop import AttemptFn, RetryLoop
from gateway.config import GatewayConfig
from gateway.errors import CircuitOpenError, GatewayError, GatewayTimeoutError, UpstreamUnavailableError
from gateway.models import ChatRequest, ReasoningDelta, StreamCompleted, TextDelta
from gateway.spend.budget import BudgetExceeded, BudgetPolicy
from gateway.wire.transport import Deadline
from untrusted import quote

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Fallbacks:
    __slots__ = ("breaker", "budget", "config", "limits", "retry")

    def __init__(self, config: GatewayConfig, limits: LimitsStep, budget: BudgetStep, breaker: BreakerStep, retry: RetryLoop) -> None:
        self.config = config
        self.limits = limits
        self.budget = budget
        self.breaker = breaker
        self.retry = retry

    def run(
        self,
        request: ChatRequest,
        options: CallOptions,
        attempt: AttemptFn,
        deadline: Deadline,
        policy: BudgetPolicy | None,
        after: list[Any] | None = None,
    ) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        """`after`: where the breaker's success may be left for after the call (`gateway.call.observe`)."""
        limiter = self.limits.limiter(options.limits)
        headers = request_headers(options.correlation_id)
        models = [request.model]
        if options.use_fallbacks:
            models += [m for m in self.config.fallback_models if m != request.model]
        tried: list[str] = []
        spent = 0  # requests already sent to earlier models: `attempts` counts every request sent
        retrying = self.retry.run
        for index, model in enumerate(models):
            reserved = self._reserve(request if model == request.model else request.with_model(model), policy, options, spent)
            call = Call(reserved.request, deadline, limiter, time.monotonic(), headers=headers)
            completed: StreamCompleted | None = None
            try:
                try:
                    completed = yield from self.breaker.run(call, lambda c: retrying(c, attempt), after)
                except GatewayError as exc:
                    if reserved.holds:
                        settle(reserved.holds, failed_cost(exc, reserved.holds[0].amount, reserved.price))
                    exc.attempts += spent
                    if call.delivered or index == len(models) - 1 or not _is_unavailable(exc):
                        raise
                    tried.append(model)
                    spent = exc.attempts
                    continue
            finally:
                if reserved.holds and completed is None:
                    settle(reserved.holds, reserved.holds[0].amount)  # stopped midway: the reservation stays counted
            yield self._served(completed, reserved, policy, model, tried, spent)  # type: ignore[arg-type]
            return

    def _reserve(self, request: ChatRequest, policy: BudgetPolicy | None, options: CallOptions, spent: int) -> Reserved:
        if policy is None:
            return Reserved(request)
        try:
            return self.budget.reserve(request, policy, options)
        except BudgetExceeded as exc:
            exc.attempts = spent  # requests already sent to the models before this one
            raise

    def _served(
        self, completed: StreamCompleted, reserved: Reserved, policy: BudgetPolicy | None, model: str, tried: list[str], spent: int
    ) -> StreamCompleted:
        """The outcome, told which model served it after which failed, and what the budgets have left."""
        result = completed.result
        result.attempts += spent
        result.fallback_from = tried
        if tried:
            result.warnings.append(f"served by fallback model {quote(model)} after {', '.join(quote(m) for m in tried)} failed")
        if policy is not None:
            self.budget.settle_result(result, reserved, policy, model)
        return completed


def request_headers(correlation_id: str) -> dict[str, str] | None:
    """The correlation id as X-Request-Id, when it is a plain token (it goes into an HTTP header)."""
    if correlation_id and _SAFE_ID.fullmatch(correlation_id):
        return {"X-Request-Id": correlation_id}
    return None


def _is_unavailable(exc: GatewayError) -> bool:
    """The primary is unavailable (retryable errors exhausted, or circuit open): a fallback may help.
    Never on 4xx, and never after a failure that may have been billed (not retryable)."""
    if isinstance(exc, CircuitOpenError):
        return True
    if exc.status is not None and 400 <= exc.status < 500:
        return False
    return exc.retryable and isinstance(exc, UpstreamUnavailableError | GatewayTimeoutError)
