"""The retry loop: runs attempts until one gives its outcome, passing content on as it arrives. It tries
again only what the attempt classified as retryable, waits as the gateway asked (or backs off, by the
`gateway.call.retry` policy), never past the deadline; once content reached the caller, never again."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from gateway.call.options import Call
from gateway.call.retry import RetryPolicy
from gateway.call.stores import Stores
from gateway.errors import RateLimitedError
from gateway.models import ReasoningDelta, TextDelta
from gateway.wire.transport import Attempt, AttemptFailed

AttemptFn = Callable[[Call], Iterator[Any]]


class RetryLoop:
    __slots__ = ("policy", "stores")

    def __init__(self, policy: RetryPolicy, stores: Stores) -> None:
        self.policy = policy
        self.stores = stores

    def run(self, call: Call, attempt: AttemptFn) -> Generator[TextDelta | ReasoningDelta, None, Any]:
        """The outcome of the first attempt that gives one (returned); content is yielded as it arrives."""
        while True:
            run = attempt(call)
            try:
                for item in run:
                    if type(item) is not TextDelta and type(item) is not ReasoningDelta:
                        if call.request is not None:
                            self.stores.metrics.record_attempt(call.request.model, "ok")
                        return item
                    call.delivered = True
                    yield item
                raise AssertionError("an attempt ended without an outcome")
            except AttemptFailed as failed:
                failure = failed.attempt
            finally:
                run.close()
            if call.request is not None:
                error = failure.error
                self.stores.metrics.record_attempt(call.request.model, f"http_{error.status}" if error.status else error.code)
            if call.delivered:
                # Content reached the caller: sending again would repeat it (and bill it twice).
                raise failure.final(call.attempts, retryable=False) from None
            if failure.resend:
                continue
            if not failure.retryable or call.attempts >= self.policy.max_attempts:
                raise failure.final(call.attempts) from None
            self._wait(failure, call)

    def _wait(self, failure: Attempt, call: Call) -> None:
        number = call.attempts
        delay = self.policy.delay(number, failure.retry_after)
        if isinstance(failure.error, RateLimitedError):
            call.limiter.pause(delay)  # every caller of this gateway key waits, not only this request
        if delay >= call.deadline.remaining:
            failure.error.message += f" (gave up after {number} attempt(s): waiting {delay:.1f}s more would pass the call's deadline)"
            raise failure.final(number) from None
        if call.request is not None:
            self.stores.metrics.record_retry(call.request.model, delay if isinstance(failure.error, RateLimitedError) else 0.0)
        time.sleep(delay)


def outcome[T](chain: Generator[TextDelta, None, T]) -> T:
    """Runs a chain that delivers no content (a plain call) and returns its outcome."""
    try:
        next(chain)
    except StopIteration as end:
        return end.value  # type: ignore[no-any-return]
    chain.close()
    raise AssertionError("a plain call delivered content")
