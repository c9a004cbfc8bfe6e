"""What the client reports: one call's record and its JSON log line, the sink and store protocols, and
`WorkspaceMetrics`, which maps a call's values onto the fixed label sets and hands the figures to a store."""

from __future__ import annotations

import bisect
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gateway.metrics.catalog import (
    CUSTOM_MODEL,
    LATENCY_BUCKETS,
    TOKEN_TYPES,
    TTFT_BUCKETS,
    Figures,
    Update,
    outcome_label,
    state_label,
    status_label,
    tool_label,
)

if TYPE_CHECKING:
    from gateway.spend.pricing import PriceTable

logger = logging.getLogger("holysheep.calls")
logger.setLevel(logging.INFO)
_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False), without a new encoder per line


@dataclass(slots=True)
class CallRecord:
    """What one call did, for the figures and its log line."""

    model: str
    tool: str
    outcome: str  # "ok" or the error's code
    seconds: float
    attempts: int = 0
    ttft_seconds: float | None = None
    usage: Any = None  # gateway.models.Usage of what was delivered, or None
    cost_usd: float | None = None
    correlation_id: str = ""
    gateway_request_id: str = ""
    cache: str = "bypass"
    # Script calls to the same Redis that may go out with this call's metrics write (the breaker's
    # success, `gateway.state.redis_state.DeferredScript`); a sink marks those it sent `done` or `take`s them for a
    # later write of its own, and the client runs the rest.
    after: list[Any] | None = None

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "event": "gateway_call",
            "correlation_id": self.correlation_id,
            "tool": self.tool,
            "model": self.model,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "latency_ms": round(self.seconds * 1000, 1),
        }
        if self.gateway_request_id:
            fields["gateway_request_id"] = self.gateway_request_id
        if self.ttft_seconds is not None:
            fields["ttft_ms"] = round(self.ttft_seconds * 1000, 1)
        if self.usage is not None:
            fields["prompt_tokens"] = self.usage.prompt_tokens
            fields["completion_tokens"] = self.usage.completion_tokens
        fields["cost_usd"] = self.cost_usd
        if self.cache != "bypass":
            fields["cache"] = self.cache
        return fields


def log_call(record: CallRecord, redact: Callable[[str], str]) -> None:
    """One JSON log line per call on the `holysheep.calls` logger (the tools send it to the daemon's
    plugin log through the SDK's log handler), redacted like every message."""
    if logger.isEnabledFor(logging.INFO) and logger.handlers:
        line = redact(_JSON.encode(record.log_fields()))
        # What `logger.info(line)` does, without its walk up the stack for the caller (findCaller): the
        # caller is this frame, so the record (file, line, function) is the same and costs less.
        frame = sys._getframe()
        logger.handle(logger.makeRecord(logger.name, logging.INFO, frame.f_code.co_filename, frame.f_lineno, line, (), None, frame.f_code.co_name))


class MetricsSink(Protocol):
    """What the client reports to (`WorkspaceMetrics`): one workspace's figures."""

    scope: str  # "process" or "redis": where the figures are summed (the exposition says so)

    def record_attempt(self, model: str, outcome: str) -> None: ...
    def record_retry(self, model: str, rate_limit_wait: float) -> None: ...
    def record_call(self, record: CallRecord) -> None: ...
    def record_wait(self, model: str, seconds: float) -> None: ...
    def record_breaker(self, model: str, old: str, new: str) -> None: ...
    def record_batch(self, statuses: dict[str, int]) -> None: ...
    def figures(self) -> Figures: ...


class MetricsStore(Protocol):
    """Where figures are kept, per workspace: every addition names the workspace it belongs to."""

    scope: str

    def add(self, workspace: str, updates: list[Update]) -> None: ...
    def set_state(self, workspace: str, model: str, state: str) -> None: ...
    def flush(self, after: list[Any] | None = None) -> None: ...
    def figures(self, workspace: str) -> Figures: ...


class WorkspaceMetrics:
    """One workspace's figures, as the client reports them: label values mapped to their fixed sets
    (the model through this workspace's price table), then handed to `store` with the workspace."""

    # Model names whose label is remembered: a plain dict lookup on the hot path for the names in use;
    # names beyond it are looked up in the price table each time (still the same label).
    _MAX_REMEMBERED = 1024

    def __init__(self, store: MetricsStore, workspace: str, prices: PriceTable | None = None) -> None:
        if prices is None:
            from gateway.spend.pricing import PriceTable

            prices = PriceTable.bundled()
        self.store = store
        self.workspace = workspace
        self.prices = prices
        self._models: dict[str, str] = {}

    @property
    def scope(self) -> str:
        return self.store.scope

    def figures(self) -> Figures:
        return self.store.figures(self.workspace)

    def model_label(self, model: str) -> str:
        """The model's canonical name in the price table (bundled and overrides), else ``custom``."""
        label = self._models.get(model)
        if label is None:
            price = self.prices.resolve(model) if isinstance(model, str) else None
            label = price.model if price is not None else CUSTOM_MODEL
            if len(self._models) < self._MAX_REMEMBERED:
                self._models[model] = label
        return label

    # ---- what the client reports

    def _add(self, updates: list[Update]) -> None:
        self.store.add(self.workspace, updates)

    def record_attempt(self, model: str, outcome: str) -> None:
        m, outcome = self.model_label(model), outcome_label(outcome)
        updates: list[Update] = [(("attempts", m, outcome), 1)]
        if outcome == "http_429":
            updates.append((("rate_limited", m), 1))
        self._add(updates)

    def record_retry(self, model: str, rate_limit_wait: float) -> None:
        """Another attempt follows; `rate_limit_wait`: the seconds a 429 made every caller wait first."""
        m = self.model_label(model)
        updates: list[Update] = [(("retries", m), 1)]
        if rate_limit_wait > 0:
            updates.append((("rate_limit_wait_seconds", m), rate_limit_wait))
        self._add(updates)

    def record_wait(self, model: str, seconds: float) -> None:
        if seconds > 0:
            self._add([(("rate_limit_wait_seconds", self.model_label(model)), seconds)])

    def record_call(self, record: CallRecord) -> None:
        m, tool, seconds = self.model_label(record.model), tool_label(record.tool), record.seconds
        updates: list[Update] = [
            (("requests", m, tool, outcome_label(record.outcome)), 1),
            (("request_duration_seconds:bucket", m, tool, bisect.bisect_left(LATENCY_BUCKETS, seconds)), 1),
            (("request_duration_seconds:sum", m, tool), seconds),
        ]
        ttft = record.ttft_seconds
        if ttft is not None:
            updates += [
                (("time_to_first_token_seconds:bucket", m, bisect.bisect_left(TTFT_BUCKETS, ttft)), 1),
                (("time_to_first_token_seconds:sum", m), ttft),
            ]
        usage = record.usage
        if usage is not None and record.cache != "hit":
            for kind, count in zip(
                TOKEN_TYPES, (usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens, usage.reasoning_tokens), strict=True
            ):
                if count:
                    updates.append((("tokens", m, kind), count))
            if record.cost_usd is None:
                updates.append((("unpriced_requests", m), 1))
            else:
                updates.append((("cost_usd", m), float(record.cost_usd)))
        self._add(updates)
        self.store.flush(record.after)

    def record_breaker(self, model: str, old: str, new: str) -> None:
        m, old, new = self.model_label(model), state_label(old), state_label(new)
        if old != new:
            self._add([(("breaker_transitions", m, old, new), 1)])
        self.store.set_state(self.workspace, m, new)  # goes out with the call's record

    def record_batch(self, statuses: dict[str, int]) -> None:
        counts: dict[str, int] = {}
        for status, count in statuses.items():
            if count:
                label = status_label(status)
                counts[label] = counts.get(label, 0) + count
        self._add([(("batch_items", status), count) for status, count in counts.items()])
        self.store.flush()
