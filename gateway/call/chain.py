"""The call chain, composed: observed -> (cache) -> fallbacks -> budget -> breaker -> retry loop -> attempt.

A call under no budget that the cache would not serve takes the lean path straight to the fallbacks;
a call under a budget first gets a bounded max_tokens (its worst case must have a price)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from gateway.call.cache_step import CacheStep
from gateway.call.fallbacks import Fallbacks
from gateway.call.observe import Observed
from gateway.call.options import CallOptions
from gateway.call.retry_loop import AttemptFn
from gateway.config import GatewayConfig
from gateway.models import ChatRequest, ReasoningDelta, StreamCompleted, TextDelta
from gateway.wire.transport import Deadline

Items = Iterator[TextDelta | ReasoningDelta | StreamCompleted]


class Chain:
    __slots__ = ("cache", "config", "fallbacks", "observed")

    def __init__(self, config: GatewayConfig, observed: Observed, cache: CacheStep, fallbacks: Fallbacks) -> None:
        self.config = config
        self.observed = observed
        self.cache = cache
        self.fallbacks = fallbacks

    def call(self, request: ChatRequest, options: CallOptions, attempt: AttemptFn, *, streaming: bool) -> Items:
        """One call through every layer: content as it arrives, then one StreamCompleted."""
        return self.observed.run(request, options.tool, options.correlation_id, lambda after: self.run(request, options, attempt, streaming, after))

    def run(self, request: ChatRequest, options: CallOptions, attempt: AttemptFn, streaming: bool, after: list[Any] | None = None) -> Items:
        """The chain below the observation: budgets and cache when they apply, then the fallbacks."""
        started = time.monotonic()
        deadline = options.deadline or Deadline(self.config.timeout_seconds)
        policy = options.budget if options.budget is not None and (options.budget.active or options.batch_budget) else None
        notes: list[str] = []
        if policy is not None and request.max_tokens is None:
            request = replace(request, max_tokens=policy.max_tokens)  # the worst case must be bounded
            notes.append(f"max_tokens set to {policy.max_tokens} (the budgets' max_tokens): a call under a budget needs a bounded cost")
        if policy is None and (options.cache == "off" or (request.temperature is None and options.cache == "auto")):
            return self.fallbacks.run(request, options, attempt, deadline, None, after)  # the lean path: nothing to add
        fallbacks = self.fallbacks

        def inner() -> Items:
            return fallbacks.run(request, options, attempt, deadline, policy, after)

        return self.cache.run(request, options.cache, streaming, deadline, started, notes, inner)
