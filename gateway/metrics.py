"""What every gateway call did, as figures Prometheus can scrape, and one structured log line per call.

The figures belong to a workspace (its ``gateway.state.keys`` scope): one plugin process serves every
workspace of a Dify instance, and each workspace's metrics endpoint shows its own figures only.

The client chain reports through a `WorkspaceMetrics` (`GatewayClient.metrics`): the client's workspace
and price table, over a store. It turns each call (`record_call`), attempt (`record_attempt`), breaker
transition and rate-limit wait into figures (a counter or a histogram bucket per metric and label values)
and hands them to the store with the workspace they belong to. Stores, chosen in
`gateway.state.backends.metrics_for`:

- `InProcessMetrics`: dicts in this process, per workspace (figures are per process);
- `RedisMetrics`: per workspace, one Redis hash shared by every plugin process (HINCRBY / HINCRBYFLOAT
  in one script call per workspace and write), keyed by metric and label values only: no secret, no
  prompt, no id. `WriteBehindMetrics` is the same, written when its owner (the jobs' flusher) says.

Label values come from fixed sets, the same in every process and after every restart, so the number of
series has a ceiling whatever users send: `model` is a model of the price table (the bundled one and the
administrator's ``price_overrides``, by its canonical name: aliases and dated names count as their model)
or ``custom``; `tool` a tool of this plugin or ``other``; `outcome` ``ok``, an error code of
`ERROR_CODES` or ``http_<status>`` (100-599), else ``other_error``; `type`, `status`, `state`,
`from_state` and `to_state` fixed sets (anything else is ``other``). The mapping is a function of the
value alone (and the price table), not a per-process cap: no id, prompt or other user text becomes a
label value, in any process.

Series that stop changing expire: a series (a counter, a gauge, or a histogram's buckets and sum
together) not written for `SERIES_TTL_SECONDS` is dropped, in Redis by the write script (a sorted set
holds each series' last stamp; the Redis here is 7.0, without HEXPIRE) and in this process when its
figures are read or added to. A workspace's two keys expire whole `SERIES_TTL_SECONDS` after its last
write, and share one hash tag, so every script call touches one slot of a Redis Cluster.

`FiguresCollector` turns a workspace's figures into metric families for prometheus_client, which writes
the exposition (`exposition()`); nothing here writes the text format by hand. Histograms keep their
bucket counts as figures, so they add up across processes like the counters do.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gateway.state.keys import Keys

if TYPE_CHECKING:
    from gateway.spend.pricing import PriceTable

# Seconds. Whole calls (retries and waits included) and time to first token of streams.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
METRIC_PREFIX = "holysheep_"  # Prometheus metric names (not Redis keys: those are gateway.state.keys)
# A series not written for this long is dropped (Prometheus sees it end; if it comes back it starts
# from 0, which rate() and increase() read as a counter reset).
SERIES_TTL_SECONDS = 7 * 24 * 3600
# Stale series dropped per Redis write at most: keeps every write short; the rest go with the next ones.
PRUNE_PER_WRITE = 200
# Seconds (at most; a tenth of the TTL when that is shorter) between a process's restamps of a series it
# keeps writing, and between its sweeps of a workspace's stale series: most writes do neither.
HOUSEKEEPING_EVERY = 60.0
# The Redis hash of a workspace's figures and the sorted set of its series' last writes (one hash tag).
FIGURES_PART, CHANGED_PART = "figures", "changed"

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

# ----------------------------------------------------------------------------- label values
# Fixed sets: a value outside them is counted under `OTHER` (or `CUSTOM_MODEL`), never as itself.
CUSTOM_MODEL = "custom"
OTHER = "other"
# The plugin's tools (tools/*.yaml; `tools.support.tool_label` names them); calls made outside a tool
# (the jobs' workers) are `other`.
TOOLS = frozenset({
    "chat", "stream_chat", "batch_chat", "batch_submit", "batch_status", "batch_results", "batch_cancel",
    "approval_route", "approval_status", "approval_transition", "approval_dead_letters", "approval_llm", "approval_notify",
})
# `GatewayError.code` of every gateway error (a test checks that none is missing), and what the client
# records for a call that ended otherwise.
ERROR_CODES = frozenset({
    "gateway_error", "configuration", "authentication", "bad_request", "not_openai_compatible", "rate_limited",
    "upstream_unavailable", "timeout", "circuit_open", "stream_interrupted", "stream_error",
    "budget_exceeded", "budget_unavailable", "cancelled", "internal",
})
OTHER_ERROR = "other_error"
BREAKER_STATES = ("closed", "open", "half_open")
TOKEN_TYPES = ("prompt", "completion", "cached_prompt", "reasoning")
BATCH_STATUSES = frozenset({"ok", "error", "not_run"})


def outcome_label(outcome: str) -> str:
    """``ok``, a known error code, ``http_<status>`` for a status 100-599, else ``other_error``."""
    if outcome == "ok" or outcome in ERROR_CODES:
        return outcome
    status = outcome.removeprefix("http_")
    if status != outcome and len(status) == 3 and status.isdigit() and 100 <= int(status) <= 599:
        return outcome
    return OTHER_ERROR


def tool_label(tool: str) -> str:
    return tool if tool in TOOLS else OTHER


def state_label(state: str) -> str:
    return state if state in BREAKER_STATES else OTHER


def status_label(status: str) -> str:
    return status if status in BATCH_STATUSES else OTHER


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
        logger.info(redact(json.dumps(record.log_fields(), ensure_ascii=False)))


Figures = dict[tuple[Any, ...], float]
Update = tuple[tuple[Any, ...], float]


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


def _series(key: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
    """(series, part) of a figure: a histogram's buckets and sum are one series (they expire together,
    so a histogram never loses some buckets and keeps others); part is ``""``, ``sum`` or the bucket."""
    name = key[0]
    if name.endswith(":bucket"):
        return (name.removesuffix(":bucket"), *key[1:-1]), str(key[-1])
    if name.endswith(":sum"):
        return (name.removesuffix(":sum"), *key[1:]), "sum"
    return key, ""


def _json(series: tuple[Any, ...]) -> str:
    return json.dumps(series, separators=(",", ":"), ensure_ascii=False)


def _figure(field: str) -> tuple[str, ...] | None:
    """The figure's key from a Redis field (``<series as JSON>`` or ``<series as JSON>|<part>``)."""
    head, bracket, part = field.rpartition("]")
    try:
        series = tuple(str(value) for value in json.loads(head + bracket))
    except (ValueError, TypeError):
        return None
    if not series or not isinstance(series[0], str):
        return None
    if part == "":
        return series
    if part == "|sum":
        return (series[0] + ":sum", *series[1:])
    if part[:1] == "|" and part[1:].isdigit():
        return (series[0] + ":bucket", *series[1:], part[1:])
    return None


class InProcessMetrics:
    """Figures of this plugin process, per workspace; series not written for `ttl` seconds are dropped."""

    scope = "process"
    PRUNE_EVERY = 60.0  # seconds between sweeps for stale series while figures are added

    def __init__(self, ttl: float = SERIES_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._figures: dict[str, Figures] = {}
        self._changed: dict[str, dict[tuple[Any, ...], float]] = {}  # workspace -> series -> last write
        self._lock = threading.Lock()
        self._swept = clock()

    def add(self, workspace: str, updates: list[Update]) -> None:
        now = self._clock()
        with self._lock:
            figures = self._figures.setdefault(workspace, {})
            changed = self._changed.setdefault(workspace, {})
            for key, amount in updates:
                figures[key] = figures.get(key, 0) + amount
                changed[_series(key)[0]] = now
            if now - self._swept >= min(self.PRUNE_EVERY, self.ttl):
                self._sweep(now)

    def set_state(self, workspace: str, model: str, state: str) -> None:
        now = self._clock()
        with self._lock:
            figures = self._figures.setdefault(workspace, {})
            changed = self._changed.setdefault(workspace, {})
            for name in BREAKER_STATES:
                key = ("breaker_state", model, name)
                figures[key] = 1 if name == state else 0
                changed[key] = now

    def flush(self, after: list[Any] | None = None) -> None:
        """Figures here are visible at once; the script calls of `after` are left to the client."""

    def figures(self, workspace: str) -> Figures:
        with self._lock:
            self._sweep(self._clock())
            return dict(self._figures.get(workspace, {}))

    def workspaces(self) -> list[str]:
        with self._lock:
            return list(self._figures)

    def reset(self) -> None:
        with self._lock:
            self._figures.clear()
            self._changed.clear()

    def _sweep(self, now: float) -> None:
        """Drops the series not written for `ttl` seconds, and workspaces left without any (lock held)."""
        self._swept = now
        cutoff = now - self.ttl
        for workspace in list(self._changed):
            changed = self._changed[workspace]
            stale = {series for series, at in changed.items() if at < cutoff}
            if not stale:
                continue
            figures = self._figures.get(workspace, {})
            for key in [key for key in figures if _series(key)[0] in stale]:
                del figures[key]
            for series in stale:
                del changed[series]
            if not changed:
                del self._changed[workspace]
                self._figures.pop(workspace, None)


# One write of one workspace's figures, applied atomically (a reader never sees half a call): stamps the
# series it is told to (each process restamps a series it writes at most every `_restamp_every`
# seconds, so most writes stamp nothing), applies (op, field, value) triples to the hash and, when told
# to (`limit` > 0, about once a minute per process and workspace), drops up to `limit` series not
# stamped for `ttl` seconds (every field of each: value, sum, buckets) and keeps both keys for `ttl`
# (a workspace that stops writing disappears whole). Both keys share one hash tag (Redis Cluster).
# One script call instead of a MULTI of one command per field: about half the client's CPU per write.
# KEYS: figures (hash), changed (sorted set: series -> last stamp, Redis's clock in seconds).
# ARGV: ttl, limit, highest bucket index, n, n series to stamp, then the triples.
_WRITE = """
local figures, changed = KEYS[1], KEYS[2]
local ttl, limit, buckets, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = 0
if n > 0 or limit > 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
for i = 5, 4 + n do redis.call('ZADD', changed, now, ARGV[i]) end
for i = 5 + n, #ARGV, 3 do
  local op = ARGV[i]
  if op == 'i' then redis.call('HINCRBY', figures, ARGV[i + 1], ARGV[i + 2])
  elseif op == 'f' then redis.call('HINCRBYFLOAT', figures, ARGV[i + 1], ARGV[i + 2])
  else redis.call('HSET', figures, ARGV[i + 1], ARGV[i + 2]) end
end
if limit == 0 then return 0 end
local stale = redis.call('ZRANGEBYSCORE', changed, '-inf', '(' .. (now - ttl), 'LIMIT', 0, limit)
for _, series in ipairs(stale) do
  local fields = {series, series .. '|sum'}
  for b = 0, buckets do fields[#fields + 1] = series .. '|' .. b end
  redis.call('HDEL', figures, unpack(fields))
  redis.call('ZREM', changed, series)
end
local ms = math.ceil(ttl * 1000)
redis.call('PEXPIRE', figures, ms)
redis.call('PEXPIRE', changed, ms)
return #stale
"""
_HIGHEST_BUCKET = max(len(LATENCY_BUCKETS), len(TTFT_BUCKETS))


class RedisMetrics:
    """Figures summed over every process that uses this Redis, per workspace: each write's increments
    go out in one script call per workspace (HINCRBY for counts, HINCRBYFLOAT for seconds and dollars) on
    that workspace's hash (`Keys.metrics`), whose fields are the metric and its label values as JSON.
    When Redis cannot be reached the figures go to `fallback` (this process's), so a call never fails
    for its metrics."""

    scope = "redis"

    def __init__(self, client: Any, fallback: InProcessMetrics, ttl: float = SERIES_TTL_SECONDS) -> None:
        self.client = client
        self.fallback = fallback
        self.ttl = ttl
        from redis.exceptions import NoScriptError  # redis is only imported when configured

        self._script = client.register_script(_WRITE)
        self._no_script = NoScriptError
        self._pending: list[tuple[str, tuple[Any, ...], float]] = []
        self._states: list[tuple[str, str, str]] = []
        self._after: list[Any] = []  # script calls to send with the next write (gateway.state.redis_state.DeferredScript)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._writing = False  # a write is in flight: later callers wait for the next one
        self._collecting = 1  # the number of the write that will carry what is added now
        self._written = 0  # the last write done
        self._wanted = 0  # the last write a waiting caller needs
        # Only the one writer in flight touches these (`_commit`). A series' stamp may lag its last write
        # by `_restamp_every`, far below `ttl`: a series still written is never taken for stale.
        self._restamp_every = min(HOUSEKEEPING_EVERY, ttl / 10)
        self._stamped: dict[str, dict[str, float]] = {}  # workspace -> series -> when this process stamped it
        self._kept: dict[str, float] = {}  # workspace -> when this process last dropped its stale series
        self._names: dict[tuple[Any, ...], str] = {}  # series -> its JSON name (bounded: label values are)

    @staticmethod
    def keys(workspace: str) -> list[str]:
        """The workspace's figures hash and its series' last writes (one hash tag)."""
        names = Keys(workspace)
        return [names.metrics(FIGURES_PART), names.metrics(CHANGED_PART)]

    def add(self, workspace: str, updates: list[Update]) -> None:
        with self._lock:
            self._pending.extend((workspace, key, amount) for key, amount in updates)

    def set_state(self, workspace: str, model: str, state: str) -> None:
        with self._lock:
            self._states.append((workspace, model, state))

    def _for_this_redis(self, after: list[Any]) -> list[Any]:
        """The script calls of `after` not yet made that can ride with a write to this Redis (same pool; a
        cluster client, which has no one pool, by identity: `redis_client` gives one client per URL)."""
        pool = getattr(self.client, "connection_pool", self.client)
        return [op for op in after if not op.done and getattr(op.client, "connection_pool", op.client) is pool]

    def flush(self, after: list[Any] | None = None) -> None:
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

    def _name(self, series: tuple[Any, ...]) -> str:
        name = self._names.get(series)
        if name is None:
            name = self._names[series] = _json(series)
        return name

    def _arguments(
        self, workspace: str, updates: dict[tuple[Any, ...], float], states: list[tuple[str, str]], now: float
    ) -> tuple[list[Any], list[str]]:
        """The write script's ARGV for one workspace (figures summed per field; the series due a stamp;
        whether to drop stale series), and the series it stamps."""
        stamped = self._stamped.get(workspace, {})
        due: dict[str, None] = {}
        triples: list[Any] = []
        for key, amount in updates.items():
            of, part = _series(key)
            name = self._name(of)
            if now - stamped.get(name, -math.inf) >= self._restamp_every:
                due[name] = None
            triples += ("i" if isinstance(amount, int) else "f", f"{name}|{part}" if part else name, amount)
        for model, state in states:
            for s in BREAKER_STATES:
                name = self._name(("breaker_state", model, s))
                if now - stamped.get(name, -math.inf) >= self._restamp_every:
                    due[name] = None
                triples += ("s", name, int(s == state))
        housekeeping = now - self._kept.get(workspace, -math.inf) >= self._restamp_every
        return [self.ttl, PRUNE_PER_WRITE if housekeeping else 0, _HIGHEST_BUCKET, len(due), *due, *triples], list(due)

    def _stamped_now(self, workspace: str, series: list[str], args: list[Any], now: float) -> None:
        """Remembers what a successful write stamped (and when it last dropped stale series)."""
        stamped = self._stamped.setdefault(workspace, {})
        for name in series:
            stamped[name] = now
        if args[1]:
            self._kept[workspace] = now
            for name in [name for name, at in stamped.items() if now - at > self.ttl]:  # gone from Redis by now
                del stamped[name]
            for gone in [w for w, at in self._kept.items() if now - at > self.ttl]:  # workspaces no longer written
                del self._kept[gone]
                self._stamped.pop(gone, None)

    def _write(self, pending: list[tuple[str, tuple[Any, ...], float]], states: list[tuple[str, str, str]], riding: list[Any]) -> None:
        """One round trip: the scripts riding along, then each workspace's figures in one script call."""
        totals: dict[str, dict[tuple[Any, ...], float]] = {}
        for workspace, key, amount in pending:
            mine = totals.setdefault(workspace, {})
            mine[key] = mine.get(key, 0) + amount
        by_workspace: dict[str, list[tuple[str, str]]] = {}
        for workspace, model, state in states:
            by_workspace.setdefault(workspace, []).append((model, state))
            totals.setdefault(workspace, {})
        now = time.monotonic()
        calls: dict[str, list[Any]] = {}
        stamps: dict[str, list[str]] = {}
        for workspace, updates in totals.items():
            calls[workspace], stamps[workspace] = self._arguments(workspace, updates, by_workspace.get(workspace, []), now)
        written: set[str] = set()
        try:
            if riding or len(calls) > 1:
                pipe = self.client.pipeline(transaction=False)
                for op in riding:
                    pipe.evalsha(op.script.sha, len(op.keys), *op.keys, *op.args)
                for workspace, args in calls.items():
                    pipe.evalsha(self._script.sha, 2, *self.keys(workspace), *args)
                replies = pipe.execute(raise_on_error=False)
                for op, reply in zip(riding, replies, strict=False):
                    if not isinstance(reply, Exception):  # a script Redis did not know yet: its caller runs it
                        op.done = True
                for workspace, reply in zip(calls, replies[len(riding) :], strict=False):
                    if not isinstance(reply, Exception):
                        written.add(workspace)
                        self._stamped_now(workspace, stamps[workspace], calls[workspace], now)
                    elif not isinstance(reply, self._no_script):
                        raise reply
            for workspace, args in calls.items():
                if workspace not in written:
                    self._script(keys=self.keys(workspace), args=args)  # loads the script when Redis does not know it
                    written.add(workspace)
                    self._stamped_now(workspace, stamps[workspace], args, now)
        except Exception:  # Redis down or refusing: this process keeps the figures not written
            for workspace, key, amount in pending:
                if workspace not in written:
                    self.fallback.add(workspace, [(key, amount)])
            for workspace, model, state in states:
                if workspace not in written:
                    self.fallback.set_state(workspace, model, state)

    def figures(self, workspace: str) -> Figures:
        """The workspace's figures from every process (raises when Redis cannot be read: the endpoint says so)."""
        raw = self.client.hgetall(self.keys(workspace)[0])
        out: Figures = {}
        for field, value in raw.items():
            key = _figure(field.decode("utf-8", "replace") if isinstance(field, bytes) else str(field))
            try:
                number = float(value)
            except (ValueError, TypeError):
                continue
            if key is None:
                continue
            out[key] = int(number) if number.is_integer() and not key[0].endswith(":sum") and key[0] not in _FLOAT_METRICS else number
        return out


class WriteBehindMetrics(RedisMetrics):
    """`RedisMetrics` whose calls do not write: their figures, and the breaker's success riding with them,
    wait for `write()`. For a caller that makes a write of its own soon after each call anyway (the jobs'
    flusher writes results every few tens of milliseconds and calls `write()` first, so a result in Redis
    means its figures are too): one round trip for many calls instead of one each."""

    def flush(self, after: list[Any] | None = None) -> None:
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

    def _write(self, pending: list[tuple[str, tuple[Any, ...], float]], states: list[tuple[str, str, str]], riding: list[Any]) -> None:
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
    """Metric families for prometheus_client from one workspace's figures, read at each scrape."""

    def __init__(self, figures: Callable[[], Figures], scope: str) -> None:
        self._figures = figures
        self.scope = scope

    def describe(self) -> list[Any]:
        return []  # collected at each scrape; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        figures = self._figures()
        info = GaugeMetricFamily(
            METRIC_PREFIX + "metrics_scope",
            "Where these figures come from (they are this endpoint's workspace's only): scope=redis is the sum over "
            "every plugin process sharing the Redis; scope=process is the one plugin process that answered this scrape.",
            labels=["scope"],
        )
        info.add_metric([self.scope], 1)
        yield info
        by_name: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for key, value in figures.items():
            by_name.setdefault(key[0], []).append((key[1:], value))
        for name, (kind, help_text, labels) in METRICS.items():
            if kind == "counter":
                family: Any = CounterMetricFamily(METRIC_PREFIX + name, help_text, labels=list(labels))
                for values, value in sorted(by_name.get(name, [])):
                    family.add_metric(list(values), value)
            elif kind == "gauge":
                family = GaugeMetricFamily(METRIC_PREFIX + name, help_text, labels=list(labels))
                for values, value in sorted(by_name.get(name, [])):
                    family.add_metric(list(values), value)
            else:
                family = HistogramMetricFamily(METRIC_PREFIX + name, help_text, labels=list(labels))
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
