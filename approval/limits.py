"""The bound on a fooled model: limits on what auto-approval may grant, and the audit sample.

No screen knows every attack, and both model calls can be fooled. So a would-be auto-approval (the
policy allows it, the assessment agrees, the guard is clear) still has to pass two steps that no text
can talk its way past:

1. **The audit sample** (``auto_approve.audit_sample``): a keyed hash (HMAC-SHA256) of the workspace and
   the request id picks this fraction of would-be auto-approvals for a person. The key is derived from
   the gateway API key, which a requester does not know, so nobody can tell in advance which ids are
   drawn; the same request id is always drawn or always not, so routing it again changes nothing.
2. **The limits** (``auto_approve.limits``): the auto-approval takes one from the count and its amount
   (in the base currency, rounded up to the hundredth) from every limit that applies: each
   ``per_requester`` period for this requester (the id folded as separation of duties folds it, so
   "Amy", "аmy" with a Cyrillic а and "amy\u200b" are one requester) and each ``total`` period. It takes
   from all of them or from none, atomically: one Redis script over keys of one hash tag. A request over
   any limit goes to a person, and ``decision_factors`` names the limit (``limit:per_requester.day.count``).

Periods are UTC calendar periods (hour, day, week from Monday, month); each counter expires after its
period ends. Only auto-approvals are counted: a request a person decides counts for nothing. The same
request (same id and fields) counts once: a marker per request, kept for the longest period, makes a
second route of it take nothing (it is granted again only if it was granted before).

Where the counters live:

- ``redis_url`` configured: in Redis, shared by every plugin process. Redis unreachable or failing: no
  auto-approval (``limit:unavailable``), a person decides; never an uncounted auto-approval.
- No ``redis_url``: in this plugin process's memory. Each process counts on its own and a restarted
  process starts again, so the worst case is N processes x each limit (and once more per restart).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Protocol

from approval.policy import AutoApprove, PeriodLimit, money
from approval.transitions import person_key

# A counter outlives its period by this much, so a clock a little behind another host's still finds it.
EXPIRY_MARGIN_SECONDS = 3600
_SAMPLE_KEY = b"holysheep/audit-sample/v1"
_HUNDREDTHS = Decimal("0.01")

# KEYS[1] the request's marker, KEYS[2..] counter hashes (fields count, amount).
# ARGV[1] the amount in hundredths, ARGV[2] the marker's expiry (unix seconds), then per counter: the
# count limit, the amount limit (-1: none) and the counter's expiry.
# Returns {status, count, amount, count, amount, ...}: status 1 taken, 0 refused, 2 already taken by
# this request; the counts and amounts are the ones read before taking.
_TAKE = """
local usage = {}
for i = 2, #KEYS do
  local values = redis.call('HMGET', KEYS[i], 'count', 'amount')
  usage[#usage + 1] = tonumber(values[1] or '0')
  usage[#usage + 1] = tonumber(values[2] or '0')
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {2, unpack(usage)} end
local amount = tonumber(ARGV[1])
for i = 2, #KEYS do
  local base = 3 + (i - 2) * 3
  local max_count, max_amount = tonumber(ARGV[base]), tonumber(ARGV[base + 1])
  local count, spent = usage[(i - 2) * 2 + 1], usage[(i - 2) * 2 + 2]
  if (max_count >= 0 and count + 1 > max_count) or (max_amount >= 0 and spent + amount > max_amount) then
    return {0, unpack(usage)}
  end
end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'count', 1)
  redis.call('HINCRBY', KEYS[i], 'amount', ARGV[1])
  redis.call('EXPIREAT', KEYS[i], ARGV[3 + (i - 2) * 3 + 2])
end
redis.call('SET', KEYS[1], '1')
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return {1, unpack(usage)}
"""

TAKEN, REFUSED, REPLAYED = "taken", "refused", "replayed"


class LimitsUnavailable(RuntimeError):
    """The counters could not be read or written: no auto-approval. The message says what went wrong."""


def hundredths(amount: Decimal, *, up: bool) -> int:
    """An amount in whole hundredths of the base currency: a request's rounded up (never counted
    short), a limit's rounded down (never granted past)."""
    return int(amount.quantize(_HUNDREDTHS, rounding=ROUND_CEILING if up else ROUND_FLOOR) * 100)


def window(period: str, now: datetime) -> tuple[str, datetime]:
    """The UTC calendar period holding ``now``: its label (part of the counter's key) and its end."""
    now = now.astimezone(UTC)
    if period == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return start.strftime("h%Y%m%d%H"), start + timedelta(hours=1)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day.strftime("d%Y%m%d"), day + timedelta(days=1)
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return monday.strftime("w%Y%m%d"), monday + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start.strftime("m%Y%m"), end
    raise ValueError(f"unknown period {period!r}")


@dataclass(frozen=True)
class Counter:
    """One counter a take touches: which limit, its key part, when it expires (unix seconds)."""

    limit: PeriodLimit
    key_part: str
    expires_at: int


@dataclass(frozen=True)
class Take:
    status: str  # TAKEN, REFUSED or REPLAYED
    usage: tuple[tuple[int, int], ...]  # (count, hundredths) per counter, read before the take


class LimitKeys(Protocol):
    """The workspace's key names (``gateway.state.keys.Keys``, which the tool passes in: approval/ imports only
    the Redis helper from gateway)."""

    @property
    def scope(self) -> str: ...

    def approval_limits(self, part: str) -> str: ...


class LimitStore(Protocol):
    name: str  # "redis" or "process": where the counters live

    def take(self, marker: str, counters: list[Counter], amount: int, marker_expires_at: int) -> Take: ...


def requester_parts(requester_id: str) -> list[str]:
    """The requester's key parts: a digest of the folded id (see ``approval.transitions.person_key``)."""
    folded = person_key(requester_id) or requester_id
    return [hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]]


def counters_for(limits: tuple[PeriodLimit, ...], requester_id: str, now: datetime) -> list[Counter]:
    counters = []
    for limit in limits:
        label, end = window(limit.period, now)
        expires = int(end.timestamp()) + EXPIRY_MARGIN_SECONDS
        if limit.scope == "total":
            counters.append(Counter(limit, f"total:{label}", expires))
        else:
            counters.extend(Counter(limit, f"req:{label}:{part}", expires) for part in requester_parts(requester_id))
    return counters


def exceeded(counters: list[Counter], usage: tuple[tuple[int, int], ...], amount: int) -> list[str]:
    """The limits this take would pass, as ``decision_factors`` names them (first one of each)."""
    names: list[str] = []
    for counter, (count, spent) in zip(counters, usage, strict=True):
        limit = counter.limit
        if limit.count is not None and count + 1 > limit.count:
            names.append(f"{limit.name}.count")
        if limit.amount is not None and spent + amount > hundredths(limit.amount, up=False):
            names.append(f"{limit.name}.amount")
    return list(dict.fromkeys(names))


def _limit_args(counter: Counter) -> list[int]:
    limit = counter.limit
    return [
        -1 if limit.count is None else limit.count,
        -1 if limit.amount is None else hundredths(limit.amount, up=False),
        counter.expires_at,
    ]


class RedisLimitStore:
    """The counters in Redis, under ``Keys.approval_limits`` (one hash tag: one script takes from all)."""

    name = "redis"

    def __init__(self, client: Any, keys: LimitKeys) -> None:
        self.client = client
        self.keys = keys
        self._take = client.register_script(_TAKE)

    def take(self, marker: str, counters: list[Counter], amount: int, marker_expires_at: int) -> Take:
        import redis  # only imported when Redis is configured

        from gateway.state.redis_connection import describe_redis_error

        key_names = [self.keys.approval_limits(f"taken:{marker}")]
        key_names += [self.keys.approval_limits(counter.key_part) for counter in counters]
        args: list[int] = [amount, marker_expires_at]
        for counter in counters:
            args += _limit_args(counter)
        try:
            reply = self._take(keys=key_names, args=args)
        except (redis.RedisError, OSError) as exc:
            raise LimitsUnavailable(describe_redis_error(exc, self.client)) from None
        status = {1: TAKEN, 0: REFUSED, 2: REPLAYED}[int(reply[0])]
        values = [int(value) for value in reply[1:]]
        return Take(status, tuple(zip(values[0::2], values[1::2], strict=True)))


class ProcessLimitStore:
    """The counters in this process's memory (no ``redis_url``): the same rules, one process's count."""

    name = "process"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, int, int]] = {}  # key part -> (count, hundredths, expires)
        self._markers: dict[str, int] = {}  # marker -> expires
        self._clock = clock
        self._next_sweep = 0.0

    def take(self, marker: str, counters: list[Counter], amount: int, marker_expires_at: int) -> Take:
        with self._lock:
            self._sweep()
            usage = tuple(self._counters.get(c.key_part, (0, 0, 0))[:2] for c in counters)
            if marker in self._markers:
                return Take(REPLAYED, usage)
            if exceeded(counters, usage, amount):
                return Take(REFUSED, usage)
            for counter, (count, spent) in zip(counters, usage, strict=True):
                self._counters[counter.key_part] = (count + 1, spent + amount, counter.expires_at)
            self._markers[marker] = marker_expires_at
            return Take(TAKEN, usage)

    def _sweep(self) -> None:
        """Forget counters and markers whose period is over (at most once a minute)."""
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60
        self._counters = {key: value for key, value in self._counters.items() if value[2] > now}
        self._markers = {key: expires for key, expires in self._markers.items() if expires > now}


_process_stores: dict[str, ProcessLimitStore] = {}
_process_lock = threading.Lock()


def process_store(scope: str) -> ProcessLimitStore:
    """This process's counters for one workspace (kept for the life of the process)."""
    with _process_lock:
        return _process_stores.setdefault(scope, ProcessLimitStore())


def sample_point(secret: bytes, scope: str, request_id: str) -> int:
    """Where a request falls in [0, 2**64): HMAC-SHA256 of the workspace and request id. Without the
    secret nobody can tell; with it, the same request id always falls in the same place."""
    message = f"{scope}\n{request_id}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big")


def sampled(fraction: Decimal | None, point: int) -> bool:
    """Exact: 1 draws every point, 0 none, 0.05 the lowest 5 % of the 2**64 points."""
    return fraction is not None and Decimal(point) < fraction * Decimal(2**64)


@dataclass(frozen=True)
class AutoApprovalGate:
    """Where the counters live and the secret the audit sample is keyed with, for one workspace."""

    store: LimitStore
    sample_secret: bytes = field(repr=False)
    scope: str

    @classmethod
    def for_workspace(cls, api_key: str, redis_url: str | None, keys: LimitKeys) -> AutoApprovalGate:
        """Redis counters when ``redis_url`` is set (one client per URL), else this process's, under the
        workspace's ``keys`` (``gateway.state.keys.Keys.for_api_key``). The sample is keyed with a digest of the
        API key (never the key itself, and not the scope's digest)."""
        secret = hmac.new(_SAMPLE_KEY, api_key.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
        url = (redis_url or "").strip()
        if url:
            from gateway.state.redis_connection import redis_client

            return cls(RedisLimitStore(redis_client(url), keys), secret, keys.scope)
        return cls(process_store(keys.scope), secret, keys.scope)

    @classmethod
    def in_process(cls) -> AutoApprovalGate:
        """For callers of ``route`` that give no gate: this process's counters and a secret of the process
        (the sample then holds within one process only)."""
        return _DEFAULT_GATE


_DEFAULT_GATE = AutoApprovalGate(process_store("default"), os.urandom(32), "default")


@dataclass
class GateDecision:
    allowed: bool
    factors: list[str]
    audit: dict[str, Any]


def check(gate: AutoApprovalGate, auto: AutoApprove, request_id: str, requester_id: str, inputs_digest: str,
          amount_base: Decimal, currency: str, now: datetime) -> GateDecision:
    """The audit sample, then the limits, for a request everything else would auto-approve."""
    audit: dict[str, Any] = {"store": gate.store.name, "audit_sample": None if auto.audit_sample is None
                             else float(auto.audit_sample), "limits": [limit.name for limit in auto.limits]}
    if sampled(auto.audit_sample, sample_point(gate.sample_secret, gate.scope, request_id)):
        audit["result"] = "sampled"
        return GateDecision(False, [f"audit_sample: drawn for a person's review (the policy sends {float(auto.audit_sample or 0) * 100:g} % "
                                    "of would-be auto-approvals to a person); no auto-approval"], audit)
    if not auto.limits:
        audit["result"] = "no_limits"
        return GateDecision(True, [], audit)
    counters = counters_for(auto.limits, requester_id, now)
    amount = hundredths(amount_base, up=True)
    marker_expires = max(counter.expires_at for counter in counters)
    try:
        taken = gate.store.take(inputs_digest, counters, amount, marker_expires)
    except LimitsUnavailable as exc:
        audit["result"] = "unavailable"
        return GateDecision(False, [f"limit:unavailable: the auto-approval limits are kept in Redis, which failed "
                                    f"({exc}); no auto-approval, a person decides"], audit)
    audit["result"] = taken.status
    audit["usage"] = _usage(counters, taken, amount, currency)
    if taken.status == REFUSED:
        names = exceeded(counters, taken.usage, amount)
        audit["exceeded"] = names
        return GateDecision(False, [f"limit:{name}: {_over(name, counters, taken, currency)}; a person decides"
                                    for name in names], audit)
    if taken.status == REPLAYED:
        return GateDecision(True, ["limits: this request was already counted; not counted again"], audit)
    where = "this process only (no redis_url)" if gate.store.name == "process" else "all plugin processes (Redis)"
    return GateDecision(True, [f"limits: within {', '.join(limit.name for limit in auto.limits)}, counted across {where}"],
                        audit)


def _usage(counters: list[Counter], taken: Take, amount: int, currency: str) -> dict[str, dict[str, Any]]:
    """Each limit's count and amount after this request (before it, when it was not counted)."""
    after = 1 if taken.status == TAKEN else 0
    usage: dict[str, dict[str, Any]] = {}
    for counter, (count, spent) in zip(counters, taken.usage, strict=True):
        limit = counter.limit
        usage[limit.name] = {
            "count": count + after, "count_limit": limit.count,
            "amount": money(Decimal(spent + amount * after) / 100),
            "amount_limit": None if limit.amount is None else money(limit.amount), "currency": currency,
        }
    return usage


def _over(name: str, counters: list[Counter], taken: Take, currency: str) -> str:
    scope_period, kind = name.rsplit(".", 1)
    scope, period = scope_period.split(".")
    whose = "this requester's" if scope == "per_requester" else "the workspace's"
    for counter, (count, spent) in zip(counters, taken.usage, strict=True):
        if counter.limit.name == scope_period:
            if kind == "count":
                return f"{whose} {count} of {counter.limit.count} auto-approvals this {period} (UTC) are used"
            limit_amount = counter.limit.amount or Decimal(0)
            return (f"{whose} auto-approvals this {period} (UTC) total {money(Decimal(spent) / 100)} of "
                    f"{money(limit_amount)} {currency}; this request would pass it")
    return name


__all__ = [
    "AutoApprovalGate",
    "Counter",
    "GateDecision",
    "LimitKeys",
    "LimitStore",
    "LimitsUnavailable",
    "ProcessLimitStore",
    "RedisLimitStore",
    "Take",
    "check",
    "counters_for",
    "hundredths",
    "process_store",
    "sample_point",
    "sampled",
    "window",
]
