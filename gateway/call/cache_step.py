"""The cache layer: an identical earlier reply (`gateway.spend.cache`) is the answer, replayed as it was; it
never touches the budgets, the breaker or the limits. Concurrent identical requests make one gateway
call (single flight: the others wait for its reply). A complete reply is stored for the next call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from gateway.call.stores import Stores
from gateway.config import GatewayConfig
from gateway.models import ChatRequest, ChatResult, CostBreakdown, ReasoningDelta, StreamCompleted, TextDelta, Usage
from gateway.spend.cache import CACHEABLE_FINISH, SingleFlight, cache_key, use_cache
from gateway.wire.transport import Deadline

Items = Iterator[TextDelta | ReasoningDelta | StreamCompleted]


class CacheStep:
    __slots__ = ("config", "flights", "namespace", "stores")

    def __init__(self, config: GatewayConfig, stores: Stores, flights: SingleFlight, namespace: str) -> None:
        self.config = config
        self.stores = stores
        self.flights = flights
        self.namespace = namespace  # the gateway and key: part of every entry's key

    def run(
        self, request: ChatRequest, mode: str, streaming: bool, deadline: Deadline, started: float, notes: list[str], inner: Callable[[], Items]
    ) -> Items:
        """The cached reply, or `inner`'s (stored when complete). `notes` go first in the result's warnings."""
        key = None
        ttl = self.config.cache_ttl_seconds
        if ttl > 0 and use_cache(mode, request, streaming=streaming):
            key = cache_key(self.namespace, request)
            hit = self.lookup(key, deadline)
            if hit is not None:
                yield from replay(hit, request, started)
                return
        try:
            for item in inner():
                if type(item) is StreamCompleted:
                    result = item.result
                    result.warnings[:0] = notes
                    if key is not None:
                        result.cache = "miss"
                        if result.finish_reason in CACHEABLE_FINISH and not result.interrupted:
                            self.stores.cache.put(key, _cache_entry(result), ttl)
                yield item
        finally:
            if key is not None:
                self.flights.land(key)

    def lookup(self, key: str, deadline: Deadline) -> dict[str, Any] | None:
        """A cached reply for `key`, waiting for an identical call in flight; None: this call is sent
        (and, if it leads the flight, lands it)."""
        cache = self.stores.cache
        hit = cache.get(key)
        if hit is not None:
            return hit
        flight = self.flights.lead(key)
        if flight is None:
            # Leading now. The call that led before may have stored its reply and landed between the miss above
            # and this lead (a Redis read lets other calls run): read again rather than send the request twice.
            hit = cache.get(key)
            if hit is not None:
                self.flights.land(key)
            return hit
        flight.wait(max(0.0, deadline.remaining))
        hit = cache.get(key)
        if hit is None:
            self.flights.lead(key)  # the first call failed: this one goes, others may wait for it
        return hit


def replay(hit: dict[str, Any], request: ChatRequest, started: float) -> Items:
    """A cached reply as the call's content and outcome: nothing billed, no attempt made."""
    if hit.get("reasoning"):
        yield ReasoningDelta(hit["reasoning"])
    if hit.get("text"):
        yield TextDelta(hit["text"])
    served = str(hit.get("model") or request.model)
    result = ChatResult(
        text=str(hit.get("text") or ""),
        finish_reason=hit.get("finish_reason"),
        model=served,
        requested_model=request.model,
        usage=Usage(method="cache"),
        latency_ms=(time.monotonic() - started) * 1000,
        attempts=0,
        cost=CostBreakdown(served, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, "cache hit: nothing was billed"),
        warnings=[],
        reasoning=str(hit.get("reasoning") or ""),
        cache="hit",
        cost_saved_usd=hit.get("cost_usd"),
    )
    result.ttft_ms = result.latency_ms
    yield StreamCompleted(result)


def _cache_entry(result: ChatResult) -> dict[str, Any]:
    return {
        "text": result.text,
        "reasoning": result.reasoning,
        "finish_reason": result.finish_reason,
        "model": result.model,
        "cost_usd": result.cost_usd,
        "usage": result.usage.to_dict(),
    }
