"""Figures summed over every process sharing a Redis, per workspace: one write script per workspace and
write (`RedisMetrics`), group-committed, or left for the owner's write (`WriteBehindMetrics`), or kept in
process and written at most once a second (`BufferedMetrics`, the clients' store; `gateway.state.backends.Backends.flush_metrics` writes them now)."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import weakref
from typing import Any

from gateway.metrics.catalog import (
    BREAKER_STATES,
    HOUSEKEEPING_EVERY,
    LATENCY_BUCKETS,
    PRUNE_PER_WRITE,
    SERIES_TTL_SECONDS,
    TTFT_BUCKETS,
    Figures,
    Update,
    series_of,
)
from gateway.metrics.process_store import InProcessMetrics
from gateway.state.keys import Keys

# The logger's name from before metrics became a package, so log configuration naming it keeps working.
_log = logging.getLogger("gateway.metrics")

# The Redis hash of a workspace's figures and the sorted set of its series' last writes (one hash tag).
FIGURES_PART, CHANGED_PART = "figures", "changed"
# Figures read back as floats even when whole (the others are counts: ints).
_FLOAT_METRICS = {"cost_usd", "rate_limit_wait_seconds"}


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
            of, part = series_of(key)
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
                    pipe.evalsha(op.script.sha, len(op.keys), *op.keys, *op.arguments())
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


# Seconds at most between a figure recorded in a process with `BufferedMetrics` and its write to Redis
# (the staleness contract, docs/operations.md: what another process's scrape may lack).
FLUSH_EVERY = 1.0

class BufferedMetrics(WriteBehindMetrics):
    """`WriteBehindMetrics` that writes itself: a call's figures (and the breaker's success riding with
    them) stay in this process until a write, which carries everything pending in one round trip: at most
    `flush_every` seconds after the first figure waiting (a flusher thread, at most one write per
    `flush_every` of its own), when `write()` is called (`Backends.flush_metrics`: the end of a tool
    invocation, process exit), and before `figures()` reads Redis (a scrape answered by this process
    holds its own figures). A figure goes out once: a write takes what is pending under the lock; one
    that fails leaves its figures in `fallback`, as `RedisMetrics` does.

    The breaker's successes waiting here are written before a failure this process reports to the same
    Redis (`RedisBreaker.record_failure`), so that failure's rate counts every success made before it."""

    def __init__(self, client: Any, fallback: InProcessMetrics, ttl: float = SERIES_TTL_SECONDS, *, flush_every: float = FLUSH_EVERY) -> None:
        super().__init__(client, fallback, ttl)
        self.flush_every = flush_every
        self._due = False  # figures wait for the flusher (it has been woken for them)
        self._last_write = -math.inf  # monotonic: when the last write started
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._flusher_pid = 0  # a thread does not survive a fork: the child starts its own
        self._flusher_lock = threading.Lock()

    def add(self, workspace: str, updates: list[Update]) -> None:
        with self._lock:
            self._pending.extend((workspace, key, amount) for key, amount in updates)
            due, self._due = self._due, True
        if not due:
            self._start_flusher()

    def set_state(self, workspace: str, model: str, state: str) -> None:
        with self._lock:
            self._states.append((workspace, model, state))
            due, self._due = self._due, True
        if not due:
            self._start_flusher()

    def flush(self, after: list[Any] | None = None) -> None:
        """The call's figures are already added; the script calls of `after` are kept for the write, and
        their breaker told who holds them (so a failure it records writes them first)."""
        if not after:
            return
        with self._cond:
            for op in self._for_this_redis(after):
                op.take(self)
                self._after.append(op)
            due, self._due = self._due, True
        if not due:
            self._start_flusher()

    def write(self) -> None:
        with self._cond:
            self._due = False  # what is added from now on wakes the flusher again
        self._last_write = time.monotonic()
        super().write()

    def figures(self, workspace: str) -> Figures:
        self.write()
        return super().figures(workspace)

    def _start_flusher(self) -> None:
        """Wakes the flusher for newly pending figures (started on first use, again after a fork)."""
        if self._flusher is None or self._flusher_pid != os.getpid():
            with self._flusher_lock:
                if self._flusher is None or self._flusher_pid != os.getpid():
                    self._flusher_pid = os.getpid()
                    self._wake = threading.Event()
                    self._flusher = threading.Thread(target=_flush_loop, args=(weakref.ref(self),), name="holysheep-metrics-flusher", daemon=True)
                    self._flusher.start()
        self._wake.set()


def _flush_loop(ref: weakref.ReferenceType[BufferedMetrics]) -> None:
    """The flusher of one `BufferedMetrics` (held weakly: a store no longer used ends it): each time
    figures become pending, writes them once `flush_every` has passed since the last write."""
    while True:
        store = ref()
        if store is None:
            return
        wake = store._wake
        del store
        if not wake.wait(60.0):
            continue
        wake.clear()
        store = ref()
        if store is None:
            return
        delay = store._last_write + store.flush_every - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            store.write()
        except Exception as exc:  # never raises by contract; a thread that died would stop the flushing
            _log.warning("writing metrics failed: %s", type(exc).__name__)
        del store
