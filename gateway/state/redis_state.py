"""Rate-limit buckets and circuit breakers kept in Redis, so every plugin process shares them.

Every read-modify-write runs as one server-side Lua script using the server's clock (`TIME`), so
processes on different hosts agree on time and nothing is read by a client and written back. Keys
come from `gateway.state.keys`: each belongs to one workspace and names the gateway by a digest of its URL,
never the API key. A gateway's buckets, 429 pause and breakers share one hash tag
(`Keys.gateway`), so every script here (the breaker-and-pause read included) touches one slot of a
Redis Cluster.

When Redis cannot be reached, each operation falls back to the in-process equivalent and the state
reports a warning that tools put in their output; Redis is tried again after a short pause.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from gateway.call.breaker import BreakerSettings, Permit
from gateway.call.rate_limits import LimitSettings, RateLimitTimeout, Reservation
from gateway.state.keys import Keys
from gateway.state.redis_connection import CONNECTION_ERRORS, describe_redis_error, redis_client
from gateway.state.shared import InProcessState

T = TypeVar("T")
RETRY_REDIS_AFTER = 5.0  # seconds without trying Redis after it failed, so calls don't each wait on it

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tokens = tonumber(ARGV[5])
local max_wait = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local paused = tonumber(redis.call('HGET', KEYS[4], 'paused_until') or '0')
local next_free = tonumber(redis.call('HGET', KEYS[3], 'next_free') or '0')
local start = math.max(now, paused, next_free)
local wait = start - now
local levels = {}
local specs = {{KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 1}, {KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tokens}}
for i, spec in ipairs(specs) do
  local key, cap, rate, amount = spec[1], spec[2], spec[3], spec[4]
  if cap > 0 then
    local level = tonumber(redis.call('HGET', key, 'level') or tostring(cap))
    local stamp = tonumber(redis.call('HGET', key, 'stamp') or tostring(now))
    level = math.min(cap, level + (now - stamp) * rate)
    levels[i] = level
    local projected = math.min(cap, level + (start - now) * rate)
    local need = math.min(amount, cap)
    if projected < need then
      wait = math.max(wait, start - now + (need - projected) / rate)
    end
  end
end
if max_wait >= 0 and wait > max_wait then
  return {0, tostring(wait)}
end
for i, spec in ipairs(specs) do
  if levels[i] ~= nil then
    redis.call('HSET', spec[1], 'level', tostring(levels[i] - spec[4]), 'stamp', tostring(now))
    redis.call('PEXPIRE', spec[1], ttl)
  end
end
redis.call('HSET', KEYS[3], 'next_free', tostring(now + wait))
redis.call('PEXPIRE', KEYS[3], ttl)
return {1, tostring(wait)}
"""

_ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local cap, rate, delta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or tostring(cap))
local stamp = tonumber(redis.call('HGET', KEYS[1], 'stamp') or tostring(now))
level = math.min(cap, math.min(cap, level + (now - stamp) * rate) + delta)
redis.call('HSET', KEYS[1], 'level', tostring(level), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if until_ms > current then redis.call('HSET', KEYS[1], 'paused_until', tostring(until_ms)) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# Breaker hash fields: state, opened_at, probes (in flight). Failures and successes in the window: two
# sorted sets scored by time.
_BREAKER_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local cooldown, max_probes = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local opened_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
if state == 'open' and now - opened_at >= cooldown then
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state, 'probes', '0')
end
if state == 'closed' then return {1, 0, '0'} end
if state == 'half_open' then
  local probes = tonumber(redis.call('HGET', KEYS[1], 'probes') or '0')
  if probes < max_probes then
    redis.call('HINCRBY', KEYS[1], 'probes', 1)
    return {1, 1, '0'}
  end
  return {0, 0, '0'}
end
return {0, 0, tostring(cooldown - (now - opened_at))}
"""

# Before a call with no rpm/tpm limit: the breaker's permit (as _BREAKER_ACQUIRE) and the gateway key's
# 429 pause (what _RESERVE would wait for without buckets), in one round trip. Returns
# {allowed, probe, retry_in ms, pause wait ms}.
_GATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local paused = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
local wait = tostring(math.max(0, paused - now))
local cooldown, max_probes = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 0, '0', wait} end
local opened_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
if state == 'open' and now - opened_at >= cooldown then
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state, 'probes', '0')
end
if state == 'half_open' then
  local probes = tonumber(redis.call('HGET', KEYS[1], 'probes') or '0')
  if probes < max_probes then
    redis.call('HINCRBY', KEYS[1], 'probes', 1)
    return {1, 1, '0', wait}
  end
  return {0, 0, '0', wait}
end
return {0, 0, tostring(cooldown - (now - opened_at)), wait}
"""

# The same read when the breaker is closed (nothing to write then): {closed, pause wait ms}. One call
# answers every caller that asked while the previous one was in flight (`RedisState.read_gate`).
_GATE_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local paused = tonumber(redis.call('HGET', KEYS[2], 'paused_until') or '0')
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
return {state == 'closed' and 1 or 0, tostring(math.max(0, paused - now))}
"""

# Scripts that may open the breaker or start a pause: a gate read kept for `gate_max_age` is dropped.
_CHANGES_THE_GATE = frozenset({"pause", "failure", "acquire", "gate"})

# A success; ARGV[5], when given, is how many ms ago it happened (one written later, with the metrics,
# is scored at its time, so it leaves the failure-rate window when it should).
_BREAKER_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] == '1' and state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'probes', '0')
  redis.call('DEL', KEYS[2], KEYS[3])
elseif state == 'closed' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local at = now - tonumber(ARGV[5] or '0')
  redis.call('ZADD', KEYS[3], at, tostring(at) .. ':' .. ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
end
return 1
"""

_BREAKER_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local window, threshold, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local rate = tonumber(ARGV[6])
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local function open()
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now), 'probes', '0')
  redis.call('DEL', KEYS[2], KEYS[3])
end
if ARGV[1] == '1' then
  if state == 'half_open' then open() end
elseif state == 'closed' then
  redis.call('ZADD', KEYS[2], now, tostring(now) .. ':' .. ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[2], ttl)
  local failures = redis.call('ZCARD', KEYS[2])
  local calls = failures + redis.call('ZCARD', KEYS[3])
  if failures >= threshold and failures >= rate * calls then open() end
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""

_BREAKER_STATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local opened_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
if state == 'open' and now - opened_at >= tonumber(ARGV[1]) then return 'half_open' end
return state
"""


class RedisUnavailable(Exception):
    pass


class RedisState:
    """SharedState in Redis, with in-process fallback while Redis is unreachable."""

    def __init__(
        self,
        url: str,
        *,
        client: redis.Redis | None = None,
        breaker_settings: BreakerSettings | None = None,
        fallback: InProcessState | None = None,
        sleep: Callable[[float], None] = time.sleep,
        gate_max_age: float = 0.0,
    ) -> None:
        self.url = url
        # A closed breaker and the 429 pause, once read, are reused for this many seconds (0: every call
        # reads them). What this process records itself (a failure, a pause) is seen at once; what
        # another process records, up to this much later.
        self.gate_max_age = gate_max_age
        self._seen: dict[tuple[str, str], tuple[float, tuple[bool, float]]] = {}
        self._gate_epoch = 0  # counts the gate-changing scripts this process ran
        self.client = client if client is not None else redis_client(url)
        self.breaker_settings = breaker_settings or BreakerSettings()
        self.fallback = fallback if fallback is not None else InProcessState()  # the process's, as its Backends hands it in
        self._sleep = sleep
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._reads: dict[tuple[str, str], _SharedRead] = {}
        self._reads_cond = threading.Condition()
        self._last_failure = 0.0
        # Sinks that hold successes of this state's breakers for a later write (`DeferredScript.take`):
        # written before this process reports a failure (`write_deferred`). One per metrics store: few.
        self._holders: weakref.WeakSet[Any] = weakref.WeakSet()
        self._scripts = {
            name: self.client.register_script(source)
            for name, source in {
                "reserve": _RESERVE,
                "adjust": _ADJUST,
                "pause": _PAUSE,
                "acquire": _BREAKER_ACQUIRE,
                "gate": _GATE,
                "peek": _GATE_PEEK,
                "success": _BREAKER_SUCCESS,
                "failure": _BREAKER_FAILURE,
                "state": _BREAKER_STATE,
            }.items()
        }

    # ------------------------------------------------------------------ plumbing

    def ping(self) -> None:
        """Raises RedisUnavailable with a message that says what to fix."""
        try:
            self.client.ping()
        except (redis.RedisError, OSError) as exc:
            raise RedisUnavailable(describe_redis_error(exc, self.client)) from None

    def call(self, script: str, keys: list[str], args: list[Any], fallback: Callable[[], T], convert: Callable[[Any], T]) -> T:
        with self._lock:
            skip = self._down_since is not None and time.monotonic() - self._last_failure < RETRY_REDIS_AFTER
        if skip:
            return fallback()
        try:
            value = convert(self._scripts[script](keys=keys, args=args))
        except CONNECTION_ERRORS:
            with self._lock:
                now = time.monotonic()
                self._down_since = self._down_since or now
                self._last_failure = now
            return fallback()
        finally:
            if script in _CHANGES_THE_GATE:
                self._gate_epoch += 1  # a gate read in flight meanwhile may predate it: not kept
                self._seen.clear()
        with self._lock:
            self._down_since = None
        return value

    def read_gate(self, breaker_key: str, pause_key: str) -> tuple[bool, float] | None:
        """(breaker closed, when the pause ends, monotonic) for (breaker, pause), or None (Redis down).
        Group read: callers that ask while a read of the same keys is in flight share the next read,
        made after they asked, so each answer is as fresh as a read of its own (or, with `gate_max_age`,
        a closed breaker read that recently)."""
        key = (breaker_key, pause_key)
        if self.gate_max_age:
            seen = self._seen.get(key)
            if seen is not None and time.monotonic() - seen[0] < self.gate_max_age:
                return seen[1]
        with self._reads_cond:
            shared = self._reads.get(key)
            if shared is None:
                shared = self._reads[key] = _SharedRead()
            if shared.reading:
                batch = shared.batch
                batch.waiters += 1
                while not batch.done:
                    self._reads_cond.wait()
                return batch.result
            shared.reading = True
        mine: tuple[bool, float] | None = None
        first = True
        try:
            while True:
                with self._reads_cond:
                    batch, shared.batch = shared.batch, _ReadBatch()
                asked, epoch = time.monotonic(), self._gate_epoch
                result = self.call(
                    "peek",
                    [breaker_key, pause_key],
                    [],
                    fallback=lambda: None,
                    convert=lambda r, asked=asked: (int(r[0]) == 1, asked + float(r[1]) / 1000),
                )
                if first:
                    mine, first = result, False
                    if self.gate_max_age and result is not None and result[0] and epoch == self._gate_epoch:
                        self._seen[key] = (asked, result)
                with self._reads_cond:
                    batch.result, batch.done = result, True
                    self._reads_cond.notify_all()
                    if not shared.batch.waiters:
                        shared.reading = False
                        return mine
        except BaseException:
            with self._reads_cond:
                shared.batch.done = True
                shared.batch = _ReadBatch()
                shared.reading = False
                self._reads_cond.notify_all()
            raise

    def write_deferred(self) -> None:
        """Writes the successes this process's sinks hold for later (and whatever figures go with them), so
        a failure recorded next is counted against every success made before it. Never raises."""
        for holder in list(self._holders):
            holder.write()

    @property
    def reachable(self) -> bool:
        """False while Redis is being skipped after a failure (operations go to the in-process state)."""
        return self._down_since is None

    def warnings(self) -> list[str]:
        with self._lock:
            down = self._down_since is not None
        if down:
            return ["Redis (redis_url) is unreachable: rate limits and the circuit breaker are enforced per process until it is back"]
        return []

    # ------------------------------------------------------------------ SharedState

    def breaker(self, base_url: str, model: str, *, keys: Keys) -> RedisBreaker:
        return RedisBreaker(self, keys.gateway(base_url, f"breaker:{model}"), base_url, model, keys)

    def rate_limiter(self, base_url: str, key_digest: str, settings: LimitSettings, *, keys: Keys) -> RedisRateLimiter:
        # The pause (per gateway and key) and the buckets (per limits too) share the breaker's tag.
        gateway_key = keys.gateway(base_url, f"rl:{key_digest}")
        return RedisRateLimiter(self, gateway_key, f"{gateway_key}:{settings.rpm}:{settings.tpm}", base_url, key_digest, settings, keys)


class _ReadBatch:
    __slots__ = ("done", "result", "waiters")

    def __init__(self) -> None:
        self.done = False
        self.result: tuple[bool, float] | None = None
        self.waiters = 0


class _SharedRead:
    __slots__ = ("batch", "reading")

    def __init__(self) -> None:
        self.reading = False
        self.batch = _ReadBatch()


class RedisRateLimiter:
    TTL_MS = 180_000  # idle buckets expire: a full bucket is the same as no bucket

    def __init__(
        self, state: RedisState, gateway_key: str, key: str, base_url: str, key_digest: str, settings: LimitSettings, scope: Keys
    ) -> None:
        self.store = state
        # Buckets and their queue per (gateway, key, limits); the 429 pause per (gateway, key), for everyone.
        self.keys = [f"{key}:rpm", f"{key}:tpm", f"{key}:meta", f"{gateway_key}:pause"]
        self.settings = settings
        self._fallback = lambda: state.fallback.rate_limiter(base_url, key_digest, settings, keys=scope)

    def _args(self) -> list[float]:
        # Same buckets as in-process (LimitSettings), with rates per millisecond; capacity 0 = no limit.
        rpm_cap, rpm_rate = self.settings.rpm_bucket() if self.settings.rpm else (0, 0.0)
        tpm_cap, tpm_rate = self.settings.tpm_bucket() if self.settings.tpm else (0, 0.0)
        return [rpm_cap, rpm_rate / 1000, tpm_cap, tpm_rate / 1000]

    def reserve(self, tokens: int, deadline: float | None) -> Reservation:
        max_wait = -1.0 if deadline is None else max(0.0, (deadline - time.monotonic()) * 1000)
        result = self.store.call(
            "reserve",
            self.keys,
            [*self._args(), tokens, max_wait, self.TTL_MS],
            fallback=lambda: None,
            convert=lambda r: (int(r[0]), float(r[1])),
        )
        if result is None:
            return self._fallback().reserve(tokens, deadline)
        granted, wait_ms = result
        if not granted:
            raise RateLimitTimeout(wait_ms / 1000)
        if wait_ms > 0:
            self.store._sleep(wait_ms / 1000)
        return Reservation(self, tokens)

    def adjust_tokens(self, delta: int) -> None:
        if not self.settings.tpm:
            return
        cap, rate = self.settings.tpm_bucket()
        self.store.call("adjust", [self.keys[1]], [cap, rate / 1000, delta, self.TTL_MS], fallback=lambda: 0, convert=int)

    def wait_until(self, until: float, tokens: int, deadline: float | None) -> Reservation:
        """The reservation of a call without buckets whose pause was read with its breaker permit
        (`RedisBreaker.acquire_gated`): waits until `until` (monotonic), as `reserve` would have."""
        wait = until - time.monotonic()
        if wait > 0:
            if deadline is not None and wait > max(0.0, deadline - time.monotonic()):
                raise RateLimitTimeout(wait)
            self.store._sleep(wait)
        return Reservation(self, tokens)

    def pause(self, seconds: float) -> None:
        self.store.call(
            "pause", [self.keys[3]], [seconds * 1000, self.TTL_MS], fallback=lambda: self._fallback().pause(seconds), convert=int
        )


class DeferredScript:
    """A script call to be made after a call: sent with another write to the same Redis when one goes out
    (`done` then), otherwise by `run()`. A sink that writes later (`gateway.metrics.WriteBehindMetrics`)
    `take`s it: `run()` leaves it alone, and the sink calls `fall_back()` if its write did not carry it.
    `aged`: the script takes, as its last argument, how many ms ago the call ended (added when sent).
    `origin`: the RedisState whose breaker made it; a sink that takes it is remembered there
    (`RedisState.write_deferred`)."""

    __slots__ = ("_run", "aged", "args", "at", "client", "done", "keys", "origin", "script", "taken")

    def __init__(
        self,
        client: redis.Redis,
        script: Any,
        keys: list[str],
        args: list[Any],
        run: Callable[[], None],
        *,
        aged: bool = False,
        origin: RedisState | None = None,
    ) -> None:
        self.client, self.script, self.keys, self.args, self._run = client, script, keys, args, run
        self.aged, self.origin = aged, origin
        self.at = time.monotonic()
        self.done = False
        self.taken = False

    def arguments(self) -> list[Any]:
        """The script's arguments as sent now."""
        if not self.aged:
            return self.args
        return [*self.args, round(max(0.0, time.monotonic() - self.at) * 1000, 3)]

    def run(self) -> None:
        if not self.done and not self.taken:
            self.done = True
            self._run()

    def take(self, holder: Any = None) -> None:
        """A sink keeps it for a later write; `holder` (with `write()`) is told to its origin."""
        self.taken = True
        if holder is not None and self.origin is not None:
            self.origin._holders.add(holder)

    def fall_back(self) -> None:
        if not self.done:
            self.done = True
            self._run()


class RedisBreaker:
    def __init__(self, state: RedisState, key: str, base_url: str, model: str, scope: Keys) -> None:
        self.store = state
        self.keys = [key, f"{key}:failures", f"{key}:successes"]
        self.settings = state.breaker_settings
        self._fallback = lambda: state.fallback.breaker(base_url, model, keys=scope)
        self._ttl_ms = int(max(self.settings.window_seconds, self.settings.cooldown_seconds) * 1000 * 10)

    @property
    def state(self) -> str:
        return self.store.call(
            "state", [self.keys[0]], [self.settings.cooldown_seconds * 1000], fallback=lambda: self._fallback().state,
            convert=lambda r: r.decode() if isinstance(r, bytes) else str(r),
        )

    def acquire(self) -> Permit:
        result = self.store.call(
            "acquire",
            [self.keys[0]],
            [self.settings.cooldown_seconds * 1000, self.settings.half_open_probes],
            fallback=lambda: None,
            convert=lambda r: Permit(bool(int(r[0])), probe=bool(int(r[1])), retry_in=max(0.0, float(r[2]) / 1000)),
        )
        return result if result is not None else self._fallback().acquire()

    def acquire_gated(self, limiter: object) -> tuple[Permit, float] | None:
        """The permit and, in the same round trip, when the gateway key's 429 pause ends (monotonic) for a
        `limiter` without buckets. None: not possible here (Redis down, another store, buckets
        configured): use `acquire` and the limiter's `reserve`."""
        if not isinstance(limiter, RedisRateLimiter) or limiter.store is not self.store or limiter.settings.rpm or limiter.settings.tpm:
            return None
        peeked = self.store.read_gate(self.keys[0], limiter.keys[3])
        if peeked is not None and peeked[0]:  # closed: a permit, nothing to write
            return Permit(True), peeked[1]
        asked = time.monotonic()
        result = self.store.call(
            "gate",
            [self.keys[0], limiter.keys[3]],
            [self.settings.cooldown_seconds * 1000, self.settings.half_open_probes],
            fallback=lambda: None,
            convert=lambda r: (
                Permit(bool(int(r[0])), probe=bool(int(r[1])), retry_in=max(0.0, float(r[2]) / 1000)),
                asked + float(r[3]) / 1000,
            ),
        )
        return result

    def _success_args(self, permit: Permit) -> list[Any]:
        return ["1" if permit.probe else "0", self.settings.window_seconds * 1000, self._ttl_ms, f"{time.time_ns()}-{id(permit)}"]

    def record_success(self, permit: Permit) -> None:
        self.store.call(
            "success", self.keys, self._success_args(permit), fallback=lambda: self._fallback().record_success(permit), convert=int
        )

    def success_later(self, permit: Permit) -> DeferredScript | None:
        """`record_success` as a script call that can go out with the call's metrics write (one round
        trip for both, `gateway.metrics.RedisMetrics`); whoever holds it must `run()` it if nothing did.
        None while Redis is unreachable (record at once, in process)."""
        if not self.store.reachable:
            return None
        script = self.store._scripts["success"]
        return DeferredScript(
            self.store.client, script, self.keys, self._success_args(permit), lambda: self.record_success(permit), aged=True, origin=self.store
        )

    def record_failure(self, permit: Permit) -> None:
        if not permit.probe:  # a closed breaker's failure rate: this process's earlier successes count
            self.store.write_deferred()
        self.store.call(
            "failure",
            self.keys,
            [
                "1" if permit.probe else "0",
                self.settings.window_seconds * 1000,
                self.settings.failure_threshold,
                self._ttl_ms,
                f"{time.time_ns()}-{id(permit)}",
                self.settings.failure_rate,
            ],
            fallback=lambda: self._fallback().record_failure(permit),
            convert=int,
        )


__all__ = ["DeferredScript", "RedisBreaker", "RedisRateLimiter", "RedisState", "RedisUnavailable"]
