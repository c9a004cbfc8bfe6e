"""Spend limits that stop a call before it is sent, not after the money is gone.

A budget is a limit in USD for a scope (`plugin`: every call with this gateway key; `app`: per Dify
app; `user`: per Dify user) over a period (`hour`, `day`, `month`, calendar periods in UTC), plus a
limit per `call` and per `batch`. The administrator sets them in the `budgets` credential; a workflow
may add its own in the `budgets` parameter, which can only tighten (the lower limit wins).

A call reserves its worst case before it is sent: the prompt at one token per UTF-8 byte (no tokenizer
makes more tokens than bytes) plus `max_tokens` at the dearer of the output and reasoning prices. Under
a budget a request without `max_tokens` is sent with the budget's `max_tokens` (default 4096), so the
worst case is bounded. The reservation is checked against every budget that applies and taken from all
of them at once, atomically (one Lua script in Redis, one lock in-process); the call settles with its
real cost afterwards. So parallel calls and processes can never spend past a limit together: a
reservation that does not fit is refused and the call is not sent (`BudgetExceeded`).

Amounts are kept in integer nano-USD, so sums are exact in Redis and in Python alike.

**Unpriced models.** A model with no known price cannot be reserved for. Under any budget such a call
is refused (`budget: unpriced_model`), unless the administrator's `unpriced` entry gives a price to
count it at: `unpriced: {input: 1.0, output: 4.0}` (USD per million tokens); the result then says so.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from gateway.errors import FieldError, GatewayError
from gateway.spend.pricing import ModelPrice
from gateway.state.keys import digest
from untrusted import InputError, parse_json, parse_yaml, quote

NANO = 1_000_000_000
SCOPES = ("plugin", "app", "user")
PERIODS = ("hour", "day", "month")
DEFAULT_MAX_TOKENS = 4096
MAX_BUDGET_USD = 1_000_000.0  # in nano-USD this stays exact in Lua (doubles) and Python alike
MAX_BUDGETS_CHARS = 20_000
_TOP_KEYS = {*SCOPES, "call", "batch", "unpriced", "downgrade", "max_tokens"}
_ADMIN_ONLY = ("unpriced", "downgrade")


@dataclass(frozen=True)
class BudgetPolicy:
    """Which limits apply. `limits`: (scope, period) -> USD; `call`/`batch`: USD or None."""

    limits: tuple[tuple[str, str, float], ...] = ()
    call: float | None = None
    batch: float | None = None
    unpriced: ModelPrice | None = None  # the price an unpriced model is counted at; None: refused
    downgrade: bool = False  # a call that does not fit may be sent to a cheaper priced model
    max_tokens: int = DEFAULT_MAX_TOKENS

    @property
    def active(self) -> bool:
        return bool(self.limits) or self.call is not None or self.batch is not None

    def tightened(self, other: BudgetPolicy | None) -> BudgetPolicy:
        """The stricter of both for every limit; what only an administrator may set comes from `self`."""
        if other is None or not other.active:
            return self if other is None else replace(self, max_tokens=min(self.max_tokens, other.max_tokens))
        limits = {(s, p): v for s, p, v in self.limits}
        for scope, period, value in other.limits:
            limits[(scope, period)] = min(value, limits.get((scope, period), value))
        return replace(
            self,
            limits=tuple((s, p, v) for (s, p), v in sorted(limits.items())),
            call=_lower(self.call, other.call),
            batch=_lower(self.batch, other.batch),
            max_tokens=min(self.max_tokens, other.max_tokens),
        )


def _lower(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def parse_budgets(raw: object, *, field_name: str, admin: bool) -> BudgetPolicy | None:
    """The `budgets` credential (admin) or parameter as a policy; None when empty. YAML or JSON:

        plugin: {day: 5, month: 100}   # USD, every call with this key
        app: {day: 1}                  # per Dify app
        user: {hour: 0.1}              # per Dify user
        call: 0.05                     # per call
        batch: 2                       # per batch_chat invocation
        unpriced: {input: 1, output: 4}   # admin only; without it unpriced models are refused
        downgrade: true                # admin only: fall to a cheaper model instead of refusing
        max_tokens: 4096               # max_tokens of a request that sets none, under a budget
    """
    text = "" if raw is None else raw if isinstance(raw, str) else None
    if text is None:
        raise FieldError(field_name, f"must be YAML or JSON text, got {type(raw).__name__}")
    if not text.strip():
        return None
    parsed = _parse_budgets_text(text, field_name)
    data = _budgets_mapping(parsed, field_name, admin)
    limits = _scope_limits(data, field_name)
    max_tokens = data.get("max_tokens", DEFAULT_MAX_TOKENS)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 1_000_000:
        raise FieldError(field_name, "'max_tokens' must be a whole number from 1 to 1000000")
    downgrade = data.get("downgrade", False)
    if not isinstance(downgrade, bool):
        raise FieldError(field_name, "'downgrade' must be true or false")
    return BudgetPolicy(
        limits=tuple(limits),
        call=_usd(data["call"], "call", field_name) if data.get("call") is not None else None,
        batch=_usd(data["batch"], "batch", field_name) if data.get("batch") is not None else None,
        unpriced=_unpriced(data.get("unpriced"), field_name),
        downgrade=downgrade,
        max_tokens=max_tokens,
    )


def _parse_budgets_text(text: str, field_name: str) -> object:
    """JSON, else YAML (flow style, {day: 5}, included), bounded in size and depth."""
    try:
        try:
            return parse_json(text, max_bytes=MAX_BUDGETS_CHARS, max_depth=4)
        except InputError:
            return parse_yaml(text, max_bytes=MAX_BUDGETS_CHARS, max_depth=4)
    except InputError as exc:
        raise FieldError(field_name, str(exc)) from None
    except (ValueError, OverflowError):
        raise FieldError(field_name, "contains a number too long to read") from None


def _budgets_mapping(data: object, field_name: str, admin: bool) -> dict[str, Any]:
    """`data` checked: a non-empty mapping of known keys, the administrator's keys only in the credential."""
    example = "e.g. {plugin: {day: 5}, user: {hour: 0.1}, call: 0.05}"
    if not isinstance(data, dict) or not data:
        raise FieldError(field_name, f"must map scopes (plugin, app, user) and call/batch to limits in USD, {example}")
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise FieldError(field_name, f"has unknown keys {', '.join(quote(k, 30) for k in unknown[:5])}: use {', '.join(sorted(_TOP_KEYS))}")
    if not admin:
        for key in _ADMIN_ONLY:
            if key in data:
                raise FieldError(field_name, f"'{key}' is the administrator's: set it in the budgets credential (a workflow can only tighten)")
    return data


def _scope_limits(data: dict[str, Any], field_name: str) -> list[tuple[str, str, float]]:
    """(scope, period, USD) for every period of every scope (plugin, app, user) the budgets name."""
    limits: list[tuple[str, str, float]] = []
    for scope in SCOPES:
        if scope not in data:
            continue
        periods = data[scope]
        if not isinstance(periods, dict) or not periods:
            raise FieldError(field_name, f"'{scope}' must map periods (hour, day, month) to USD, e.g. {{day: 5}}")
        for period, value in periods.items():
            if period not in PERIODS:
                raise FieldError(field_name, f"'{scope}' has period {quote(period, 30)}: use hour, day or month")
            limits.append((scope, str(period), _usd(value, f"{scope}.{period}", field_name)))
    return limits


def _usd(value: object, where: str, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_BUDGET_USD or value != value:
        shown = quote(value) if isinstance(value, str | int | float) else type(value).__name__
        raise FieldError(field_name, f"'{where}' must be a number of USD from 0 to {MAX_BUDGET_USD:.0f}, got {shown}")
    return float(value)


def _unpriced(value: object, field_name: str) -> ModelPrice | None:
    if value is None or value == "refuse":
        return None
    if not isinstance(value, dict) or set(value) - {"input", "output"} or "input" not in value or "output" not in value:
        raise FieldError(field_name, "'unpriced' must be 'refuse' or {input: USD, output: USD} per million tokens")
    prices = [_usd(value[k], f"unpriced.{k}", field_name) for k in ("input", "output")]
    return ModelPrice("unpriced", prices[0], prices[1], prices[0], "budgets credential (unpriced)")


def worst_case_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """An upper bound of the prompt's tokens: one per UTF-8 byte of every text, plus a message overhead."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.encode("utf-8", "surrogatepass"))
        elif content is not None:
            total += len(str(content).encode("utf-8", "surrogatepass"))
        total += 8
    return total + 8


# ----------------------------------------------------------------------------- periods


def period_window(period: str, now: float) -> tuple[str, float]:
    """(a stamp naming the period that contains `now`, the Unix time it ends), calendar periods in UTC."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
        return start.strftime("%Y%m%d%H"), end.timestamp()
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y%m%d"), (start + timedelta(days=1)).timestamp()
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.strftime("%Y%m"), end.timestamp()


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Charge:
    """One budget a reservation is taken from: its counter key, limit (nano-USD) and when it resets."""

    key: str
    limit: int
    expires_at: float  # Unix time; 0 for counters that are not periodic (a batch)
    name: str  # e.g. "user/day"


@dataclass
class Hold:
    """A granted reservation: what was taken from which counters, to settle with the real cost."""

    charges: list[Charge]
    amount: int
    store: BudgetStore
    settled: bool = False
    remaining: int | None = None  # nano-USD left in the tightest budget after settling


@dataclass(frozen=True)
class Refusal:
    charge: Charge
    spent: int


class BudgetStore(Protocol):
    def reserve(self, charges: list[Charge], amount: int) -> Hold | Refusal: ...
    def settle(self, hold: Hold, actual: int) -> None: ...
    def warnings(self) -> list[str]: ...


class InProcessBudgetStore:
    """Budgets shared by every call of one workspace in this process (`gateway.state.backends.Backends.budget_store_for`
    makes one per workspace: the process serves them all, and none may spend from another's counters)."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, list[float]] = {}  # key -> [nano-USD, expires_at]

    def _get(self, charge: Charge, now: float) -> list[float]:
        entry = self._spent.get(charge.key)
        if entry is None or (entry[1] and entry[1] <= now):
            entry = self._spent[charge.key] = [0, charge.expires_at]
        return entry

    def reserve(self, charges: list[Charge], amount: int) -> Hold | Refusal:
        with self._lock:
            now = self._clock()
            if len(self._spent) > 10_000:
                self._spent = {k: v for k, v in self._spent.items() if not v[1] or v[1] > now}
            entries = [self._get(charge, now) for charge in charges]
            for charge, entry in zip(charges, entries, strict=True):
                if entry[0] + amount > charge.limit:
                    return Refusal(charge, int(entry[0]))
            for entry in entries:
                entry[0] += amount
            remaining = min((c.limit - int(e[0]) for c, e in zip(charges, entries, strict=True)), default=None)
        return Hold(charges, amount, self, remaining=remaining)

    def settle(self, hold: Hold, actual: int) -> None:
        if hold.settled:
            return
        hold.settled = True
        with self._lock:
            now = self._clock()
            left = []
            for charge in hold.charges:
                entry = self._get(charge, now)
                entry[0] += actual - hold.amount
                left.append(charge.limit - int(entry[0]))
        hold.remaining = min(left, default=None)

    def spent(self, key: str) -> int:
        with self._lock:
            entry = self._spent.get(key)
            return int(entry[0]) if entry else 0

    def warnings(self) -> list[str]:
        return []


class BudgetExceeded(GatewayError):
    """The call was not sent: its worst-case cost does not fit a budget. An outcome, not a failure."""

    code = "budget_exceeded"
    not_sent = True

    def __init__(self, message: str, *, budget: str, spent_usd: float, limit_usd: float, resets_at: str | None) -> None:
        super().__init__(message, attempts=0)
        self.budget = budget
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
        self.resets_at = resets_at

    def outcome(self) -> dict[str, Any]:
        """The variables a workflow branches on (resets_at left out when the budget does not reset)."""
        return {
            "budget_exceeded": True,
            "budget": self.budget,
            "budget_spent_usd": round(self.spent_usd, 9),
            "budget_limit_usd": round(self.limit_usd, 9),
            "budget_resets_at": self.resets_at,
            "budget_reason": self.message,
        }


class BudgetStoreUnavailable(GatewayError):
    code = "budget_unavailable"
    not_sent = True


@dataclass
class Identity:
    """Who is calling, as Dify tells the tool: plain strings (empty when unknown)."""

    app_id: str = ""
    user_id: str = ""


@dataclass
class BatchBudget:
    """The spend of one batch_chat invocation (in-process: a batch runs in one process)."""

    limit_usd: float
    store: InProcessBudgetStore = field(default_factory=InProcessBudgetStore)
    key: str = field(default_factory=lambda: f"batch:{time.time_ns()}")

    def charge(self) -> Charge:
        return Charge(self.key, to_nano(self.limit_usd), 0, "batch")


def to_nano(usd: float) -> int:
    return math.floor(usd * NANO + 1e-6)


def cost_nano(usd: float) -> int:
    return math.ceil(usd * NANO - 1e-6)


def _id(text: str) -> str:
    return digest(text) if text else "-"


def charges_for(policy: BudgetPolicy, namespace: str, identity: Identity, now: float) -> list[Charge]:
    """The period budgets that apply to a call now (keys name scopes by digests, never raw ids)."""
    ids = {"plugin": "all", "app": _id(identity.app_id), "user": _id(identity.user_id)}
    charges = []
    for scope, period, usd in policy.limits:
        stamp, ends = period_window(period, now)
        charges.append(Charge(f"{namespace}:{scope}:{ids[scope]}:{period}:{stamp}", to_nano(usd), ends, f"{scope}/{period}"))
    return charges


__all__ = [
    "BatchBudget",
    "BudgetExceeded",
    "BudgetPolicy",
    "BudgetStore",
    "BudgetStoreUnavailable",
    "Charge",
    "Hold",
    "Identity",
    "InProcessBudgetStore",
    "Refusal",
    "charges_for",
    "parse_budgets",
    "worst_case_prompt_tokens",
]
