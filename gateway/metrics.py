"""What every gateway call did, as figures Prometheus can scrape, and one structured log line per call.

The client chain feeds a `MetricsSink` through one small hook (`GatewayClient._observed`): once per
call (`record_call`) and once per attempt (`record_attempt`), plus breaker transitions and rate-limit
waits as they happen. A sink keeps plain figures: a counter or a histogram bucket per (metric, label
values). Two sinks, chosen in `gateway.backends.metrics_for`:

- `InProcessMetrics`: a dict in this process (figures are per process);
- `RedisMetrics`: one Redis hash shared by every plugin process (HINCRBY / HINCRBYFLOAT in one
  script call per write), keyed by metric and label values only: no secret, no prompt, no id.

`FiguresCollector` turns either into metric families for prometheus_client, which writes the
exposition (`exposition()`); nothing here writes the text format by hand. Histograms keep their bucket
counts as figures, so they add up across processes like the counters do.

Labels are bounded: `model` (the first MAX_MODEL_LABELS distinct names a process sees, then `other`),
`tool` (the tool's name), `outcome` (`ok` or an error code), `status` and `state` (fixed sets).
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

# Seconds. Whole calls (retries and waits included) and time to first token of streams.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
MAX_MODEL_LABELS = 100
_MODEL_LABEL = re.compile(r"[A-Za-z0-9._:/@+-]{1,100}")
REDIS_KEY = "holysheep:metrics:v1"
PREFIX = "holysheep_"

# name -> (kind, help, label names). Counters are named without `_total` (prometheus_client adds it).
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "requests": (
        "counter", "Gateway calls by model, tool and outcome (ok or the error code); a call includes its retries and fallbacks.",
        ("model", "tool", "outcome"),
    ),
    "attempts": ("counter", "HTTP requests sent to the gateway by model and outcome (ok, http_<status> or an error code).", ("model", "outcome")),
    "retries": ("counter", "Attempts that were followed by another attempt of the same call (retries).", ("model",)),
    "request_duration_seconds": ("histogram", "Wall time of a call, retries and waits included.", ("model", "tool")),
    "time_to_first_token_seconds": ("histogram", "Time to the first streamed token (streaming calls).", ("model",)),
    "tokens": ("counter", "Tokens by model and type (prompt, completion, cached_prompt, reasoning) as the calls reported.", ("model", "type")),
    "cost_usd": (
        "counter", "Estimated cost in USD of priced calls, by model (unpriced calls: holysheep_unpriced_requests_total, never counted as 0).",
        ("model",),
    ),
    "unpriced_requests": ("counter", "Calls that returned usage for a model without a known price (their cost is unknown).", ("model",)),
    "rate_limited": ("counter", "HTTP 429 answers received from the gateway.", ("model",)),
    "rate_limit_wait_seconds": (
        "counter", "Seconds calls waited for a rate limit (configured buckets, the gateway's 429 pause, adaptive pacing).", ("model",),
    ),
    "breaker_transitions": ("counter", "Circuit breaker transitions seen by calls, by model.", ("model", "from_state", "to_state")),
    "breaker_state": ("gauge", "Circuit breaker state per model as last seen by a call (1 for the current state).", ("model", "state")),
    "batch_items": ("counter", "batch_chat items by final status (ok, error, not_run).", ("status",)),
}
BREAKER_STATES = ("closed", "open", "half_open")

logger = logging.getLogger("holysheep.calls")
logger.setLevel(logging.INFO)
_log = logging.getLogger(__name__)


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
    # success, `gateway.redis_state.DeferredScript`); a sink marks those it sent `done` or `take`s them for a
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
        logger.info(redact(json.dumps(record.log_fields(), ensure_ascii=False)))


class MetricsSink(Protocol):
    scope: str  # "process" or "redis"

    def record_attempt(self, model: str, outcome: str) -> None: ...
    def record_retry(self, model: str, rate_limit_wait: float) -> None: ...
    def record_call(self, record: CallRecord) -> None: ...
    def record_wait(self, model: str, seconds: float) -> None: ...
    def record_breaker(self, model: str, old: str, new: str) -> None: ...
    def record_batch(self, statuses: dict[str, int]) -> None: ...
    def figures(self) -> dict[tuple[Any, ...], float]: ...


Figures = dict[tuple[Any, ...], float]


class _FigureSink:
    """The figures every sink keeps; subclasses say where an increment goes (`_add`, `_set`, `_flush`)."""

    scope = "process"

    def __init__(self) -> None:
        self._labels: dict[str, str] = {}
        self._labels_lock = threading.Lock()

    # ---- what the client reports

    def model_label(self, model: str) -> str:
        label = self._labels.get(model)
        if label is None:
            with self._labels_lock:
                label = self._labels.get(model)
                if label is None:
                    ok = len(self._labels) < MAX_MODEL_LABELS and _MODEL_LABEL.fullmatch(model) is not None
                    label = model if ok else "other"
                    if ok or len(self._labels) < MAX_MODEL_LABELS * 10:
                        self._labels[model] = label
        return label

    def record_attempt(self, model: str, outcome: str) -> None:
        m = self.model_label(model)
        self._add(("attempts", m, outcome), 1)
        if outcome == "http_429":
            self._add(("rate_limited", m), 1)

    def record_retry(self, model: str, rate_limit_wait: float) -> None:
        """Another attempt follows; `rate_limit_wait`: the seconds a 429 made every caller wait first."""
        m = self.model_label(model)
        self._add(("retries", m), 1)
        if rate_limit_wait > 0:
            self._add(("rate_limit_wait_seconds", m), rate_limit_wait)

    def record_wait(self, model: str, seconds: float) -> None:
        if seconds > 0:
            self._add(("rate_limit_wait_seconds", self.model_label(model)), seconds)

    def record_call(self, record: CallRecord) -> None:
        m, tool, seconds = self.model_label(record.model), record.tool, record.seconds
        updates: list[tuple[tuple[Any, ...], float]] = [
            (("requests", m, tool, record.outcome), 1),
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
            if usage.prompt_tokens:
                updates.append((("tokens", m, "prompt"), usage.prompt_tokens))
            if usage.completion_tokens:
                updates.append((("tokens", m, "completion"), usage.completion_tokens))
            if usage.cached_prompt_tokens:
                updates.append((("tokens", m, "cached_prompt"), usage.cached_prompt_tokens))
            if usage.reasoning_tokens:
                updates.append((("tokens", m, "reasoning"), usage.reasoning_tokens))
            if record.cost_usd is None:
                updates.append((("unpriced_requests", m), 1))
            else:
                updates.append((("cost_usd", m), float(record.cost_usd)))
        self._add_many(updates)
        self._flush(record.after)

    def record_breaker(self, model: str, old: str, new: str) -> None:
        m = self.model_label(model)
        if old != new:
            self._add(("breaker_transitions", m, old, new), 1)
        self._set_state(m, new)  # goes out with the call's record

    def record_batch(self, statuses: dict[str, int]) -> None:
        for status, count in statuses.items():
            if count:
                self._add(("batch_items", status), count)
        self._flush()

    # ---- where figures go

    def _add(self, key: tuple[Any, ...], amount: float) -> None:
        self._add_many([(key, amount)])

    def _add_many(self, updates: list[tuple[tuple[Any, ...], float]]) -> None:
        raise NotImplementedError

    def _set_state(self, model: str, state: str) -> None:
        raise NotImplementedError

    def _flush(self, after: list[Any] | None = None) -> None:
        """Makes what was added visible to readers (Redis: one round trip, with the script calls of
        `after` that go to the same Redis)."""


class InProcessMetrics(_FigureSink):
    """Figures of this plugin process."""

    scope = "process"

    def __init__(self) -> None:
        super().__init__()
        self._figures: Figures = {}
        self._lock = threading.Lock()

    def _add_many(self, updates: list[tuple[tuple[Any, ...], float]]) -> None:
        figures = self._figures
        with self._lock:
            for key, amount in updates:
                figures[key] = figures.get(key, 0) + amount

    def _set_state(self, model: str, state: str) -> None:
        with self._lock:
            for name in BREAKER_STATES:
                self._figures[("breaker_state", model, name)] = 1 if name == state else 0

    def figures(self) -> Figures:
        with self._lock:
            return dict(self._figures)

    def reset(self) -> None:
        with self._lock:
            self._figures.clear()


# One write of figures: (op, field, value) triples on the hash, applied atomically (a reader never sees
# half a call). One script call instead of a MULTI of one command per field: one reply to parse
# instead of two per field, about half the client's CPU per write.
_WRITE = """
local key = KEYS[1]
for i = 1, #ARGV, 3 do
  local op = ARGV[i]
  if op == 'i' then redis.call('HINCRBY', key, ARGV[i + 1], ARGV[i + 2])
  elseif op == 'f' then redis.call('HINCRBYFLOAT', key, ARGV[i + 1], ARGV[i + 2])
  else redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2]) end
end
return 1
"""


class RedisMetrics(_FigureSink):
    """Figures summed over every process that uses this Redis: each write's increments go out in one
    script call (HINCRBY for counts, HINCRBYFLOAT for seconds and dollars) on one hash, `REDIS_KEY`,
    whose fields are the metric and its label values as JSON. When Redis cannot be reached the figures
    go to `fallback` (this process's), so a call never fails for its metrics."""

    scope = "redis"

    def __init__(self, client: Any, fallback: InProcessMetrics, key: str = REDIS_KEY) -> None:
        super().__init__()
        self.client = client
        self.fallback = fallback
        self.key = key
        from redis.exceptions import NoScriptError  # redis is only imported when configured

        self._script = client.register_script(_WRITE)
        self._no_script = NoScriptError
        self._pending: list[tuple[tuple[Any, ...], float]] = []
        self._states: list[tuple[str, str]] = []
        self._after: list[Any] = []  # script calls to send with the next write (gateway.redis_state.DeferredScript)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._writing = False  # a write is in flight: later callers wait for the next one
        self._collecting = 1  # the number of the write that will carry what is added now
        self._written = 0  # the last write done
        self._wanted = 0  # the last write a waiting caller needs

    def _add_many(self, updates: list[tuple[tuple[Any, ...], float]]) -> None:
        with self._lock:
            self._pending.extend(updates)

    def _set_state(self, model: str, state: str) -> None:
        with self._lock:
            self._states.append((model, state))

    def _for_this_redis(self, after: list[Any]) -> list[Any]:
        """The script calls of `after` not yet made that can ride with a write to this Redis."""
        from gateway.redis_connection import same_redis  # redis is only imported when configured

        return [op for op in after if not op.done and same_redis(op.client, self.client)]

    def _flush(self, after: list[Any] | None = None) -> None:
        self._commit(after, drain=True)

    def _commit(self, after: list[Any] | None, *, drain: bool) -> None:
        """Group commit: when no write is in flight this caller writes what is pending (its own figures and
        whatever other calls added); otherwise it leaves its figures (and `after`) to the next write and
        waits for it. Either way they are in Redis (or, Redis down, in `fallback`) when this returns.
        `drain`: the writer also writes what was added while it wrote, until nothing is left (callers
        that add always wait; a write-behind owner writes only what was there when it asked)."""
        with self._cond:
            if after:
                self._after.extend(self._for_this_redis(after))
            mine = self._collecting  # the write that will carry what this caller added
            if self._writing:
                self._wanted = max(self._wanted, mine)
                while self._written < mine:
                    self._cond.wait()
                return
            self._writing = True
        try:
            while True:
                with self._cond:
                    pending, self._pending = self._pending, []
                    states, self._states = self._states, []
                    riding, self._after = self._after, []
                    batch = self._collecting
                    self._collecting += 1
                if pending or states or riding:
                    self._write(pending, states, riding)
                with self._cond:
                    self._written = batch
                    self._cond.notify_all()
                    if self._wanted <= batch and (not drain or not (self._pending or self._states or self._after)):
                        self._writing = False
                        return
        except BaseException:
            with self._cond:
                self._written = self._collecting
                self._writing = False
                self._cond.notify_all()
            raise

    def _write(self, pending: list[tuple[tuple[Any, ...], float]], states: list[tuple[str, str]], riding: list[Any]) -> None:
        """One round trip: the scripts riding along, then the figures (summed per field) in one script."""
        totals: dict[tuple[Any, ...], float] = {}
        for key, amount in pending:
            totals[key] = totals.get(key, 0) + amount
        args: list[Any] = []
        for key, amount in totals.items():
            args += ("i" if isinstance(amount, int) else "f", json.dumps(key, separators=(",", ":")), amount)
        for model, state in states:
            for s in BREAKER_STATES:
                args += ("s", json.dumps(("breaker_state", model, s), separators=(",", ":")), int(s == state))
        try:
            if riding:
                pipe = self.client.pipeline(transaction=False)
                for op in riding:
                    pipe.evalsha(op.script.sha, len(op.keys), *op.keys, *op.args)
                if args:
                    pipe.evalsha(self._script.sha, 1, self.key, *args)
                replies = pipe.execute(raise_on_error=False)
                for op, reply in zip(riding, replies, strict=False):
                    if not isinstance(reply, Exception):  # a script Redis did not know yet: its caller runs it
                        op.done = True
                if not args:
                    return
                written = replies[-1]
                if not isinstance(written, Exception):
                    return
                if not isinstance(written, self._no_script):
                    raise written
            if args:
                self._script(keys=[self.key], args=args)  # loads the script when Redis does not know it
        except Exception:  # Redis down or refusing: this process keeps the figures
            self.fallback._add_many(pending)
            for model, state in states:
                self.fallback._set_state(model, state)

    def figures(self) -> Figures:
        """Every process's figures (raises when Redis cannot be read: the endpoint says so)."""
        raw = self.client.hgetall(self.key)
        out: Figures = {}
        for field, value in raw.items():
            try:
                key = tuple(str(part) for part in json.loads(field))
                number = float(value)
            except (ValueError, TypeError):
                continue
            out[key] = int(number) if number.is_integer() and not key[0].endswith(":sum") and key[0] not in _FLOAT_METRICS else number
        return out


class WriteBehindMetrics(RedisMetrics):
    """`RedisMetrics` whose calls do not write: their figures, and the breaker's success riding with them,
    wait for `write()`. For a caller that makes a write of its own soon after each call anyway (the jobs'
    flusher writes results every few tens of milliseconds and calls `write()` first, so a result in Redis
    means its figures are too): one round trip for many calls instead of one each."""

    def _flush(self, after: list[Any] | None = None) -> None:
        if not after:
            return
        with self._cond:
            for op in self._for_this_redis(after):
                op.take()  # ours now: the client leaves it to us
                self._after.append(op)

    def write(self) -> None:
        """Writes what the calls left so far: to Redis, or to `fallback` while Redis cannot be reached.
        When another owner's write is in flight it waits for the write that carries these figures, so
        they are in Redis when this returns whoever wrote them. Never raises."""
        self._commit(None, drain=False)

    def _write(self, pending: list[tuple[tuple[Any, ...], float]], states: list[tuple[str, str]], riding: list[Any]) -> None:
        try:
            super()._write(pending, states, riding)
        finally:
            for op in riding:  # those the write did not carry: made on their own (in process while Redis is down)
                try:
                    op.fall_back()
                except Exception as exc:  # Redis refusing (OOM, read-only replica): that success is not recorded
                    _log.warning("recording a breaker success failed: %s", type(exc).__name__)


_FLOAT_METRICS = {"cost_usd", "rate_limit_wait_seconds"}


# ----------------------------------------------------------------------------- exposition


class FiguresCollector:
    """Metric families for prometheus_client from a sink's figures, read at each scrape."""

    def __init__(self, figures: Callable[[], Figures], scope: str) -> None:
        self._figures = figures
        self.scope = scope

    def describe(self) -> list[Any]:
        return []  # collected at each scrape; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        figures = self._figures()
        info = GaugeMetricFamily(
            PREFIX + "metrics_scope",
            "Where these figures come from: scope=redis is the sum over every plugin process sharing the Redis; "
            "scope=process is the one plugin process that answered this scrape.",
            labels=["scope"],
        )
        info.add_metric([self.scope], 1)
        yield info
        by_name: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for key, value in figures.items():
            by_name.setdefault(key[0], []).append((key[1:], value))
        for name, (kind, help_text, labels) in METRICS.items():
            if kind == "counter":
                family: Any = CounterMetricFamily(PREFIX + name, help_text, labels=list(labels))
                for values, value in sorted(by_name.get(name, [])):
                    family.add_metric(list(values), value)
            elif kind == "gauge":
                family = GaugeMetricFamily(PREFIX + name, help_text, labels=list(labels))
                for values, value in sorted(by_name.get(name, [])):
                    family.add_metric(list(values), value)
            else:
                family = HistogramMetricFamily(PREFIX + name, help_text, labels=list(labels))
                buckets = LATENCY_BUCKETS if name == "request_duration_seconds" else TTFT_BUCKETS
                for values, total, counts in _histograms(by_name, name, len(buckets)):
                    cumulative, running = [], 0.0
                    for bound, n in zip([*map(_bound, buckets), "+Inf"], counts, strict=True):
                        running += n
                        cumulative.append((bound, running))
                    family.add_metric(list(values), cumulative, total)  # its _count is the +Inf bucket
            yield family


def _bound(value: float) -> str:
    return repr(float(value))


def _histograms(
    by_name: dict[str, list[tuple[tuple[str, ...], float]]], name: str, size: int
) -> Iterable[tuple[tuple[str, ...], float, list[float]]]:
    """(label values, sum, per-bucket counts) of each series of histogram `name`."""
    counts: dict[tuple[str, ...], list[float]] = {}
    for values, value in by_name.get(f"{name}:bucket", []):
        labels, index = values[:-1], int(values[-1])
        row = counts.setdefault(labels, [0.0] * (size + 1))
        if 0 <= index <= size:
            row[index] += value
    sums = dict(by_name.get(f"{name}:sum", []))
    for labels in sorted(counts):
        yield labels, sums.get(labels, 0.0), counts[labels]


def exposition(sink: MetricsSink) -> bytes:
    """The Prometheus text exposition of `sink`'s figures, written by prometheus_client."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(sink.figures, sink.scope))  # type: ignore[arg-type]
    return generate_latest(registry)


PROCESS_METRICS = InProcessMetrics()
