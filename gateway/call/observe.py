"""The outermost layer: whatever happens to a call, one CallRecord for the metrics and the log line.
What the chain left for after the call (`CallRecord.after`: the breaker's success) goes out with the
figures when the metrics sink writes to the same Redis, and is made here otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from gateway.call.stores import Stores
from gateway.errors import GatewayError, Redactor
from gateway.metrics import CallRecord, log_call
from gateway.models import ChatRequest, ChatResult, ReasoningDelta, StreamCompleted, TextDelta

Items = Iterator[TextDelta | ReasoningDelta | StreamCompleted]


class Observed:
    __slots__ = ("redact", "stores")

    def __init__(self, stores: Stores, redact: Redactor) -> None:
        self.stores = stores
        self.redact = redact

    def run(self, request: ChatRequest, tool: str, correlation_id: str, inner: Callable[[list[Any]], Items]) -> Items:
        """`inner(after)`, observed; `after` is where it may leave work for after the call."""
        record = CallRecord(request.model, tool, "ok", 0.0, correlation_id=correlation_id, after=[])
        started = time.monotonic()
        try:
            for item in inner(record.after):  # type: ignore[arg-type]
                if type(item) is StreamCompleted:
                    completed(record, item.result)
                yield item
        except GatewayError as exc:
            record.outcome, record.attempts = exc.code, exc.attempts
            record.gateway_request_id = exc.request_id or ""
            partial = getattr(exc, "partial_result", None)
            if isinstance(partial, ChatResult):  # an interrupted stream: what it delivered was billed
                completed(record, partial)
            raise
        except GeneratorExit:
            if record.usage is None:
                record.outcome = "cancelled"  # the caller stopped reading before the outcome
            raise
        except Exception:
            record.outcome = "internal"
            raise
        finally:
            record.seconds = time.monotonic() - started
            self.record(record)

    def record(self, record: CallRecord) -> None:
        """The call's figures to the metrics sink, its line to the log; never fails the call."""
        try:
            self.stores.metrics.record_call(record)
            log_call(record, self.redact)
        except Exception:  # metrics must never break a call
            pass
        for later in record.after or ():
            later.run()


def completed(record: CallRecord, result: ChatResult) -> None:
    """What a call's result tells its record (the model it was sent to, usage, cost, the gateway's id)."""
    record.model = result.requested_model
    record.attempts = result.attempts
    record.usage = result.usage
    record.cost_usd = result.cost_usd
    record.cache = result.cache
    record.gateway_request_id = result.request_id or ""
    if result.ttft_ms is not None and result.cache != "hit":
        record.ttft_seconds = result.ttft_ms / 1000
    result.correlation_id = record.correlation_id
