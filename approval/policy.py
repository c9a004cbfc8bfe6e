"""Delegation-of-authority policy as data (YAML or JSON) and its evaluation.

Every rule whose conditions all hold applies; the strictest wins (highest ``min_level``, highest
``min_risk``) and all matching rule ids are reported. Money is :class:`~decimal.Decimal` throughout:
``amount_min`` is inclusive, ``amount_max`` exclusive (999.99 USD is below a 1000 band, 1000.00 is
in it), ``deadline_hours_max`` exclusive (``24`` means "needed in less than 24 hours"). Text
conditions (request types, departments) compare case-insensitively, with spaces and underscores
read as hyphens ("IT Security" == "it-security").
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from approval.approvers import (
    Approver,
    ApproversError,
    Authority,
    Channel,
    authority_of,
    parse_approvers,
    parse_channels,
    parse_dify_users,
    parse_language,
)
from approval.levels import APPROVER_LEVELS, RISK_LEVELS, higher_level, higher_risk, risk_rank
from untrusted import InputError, parse_yaml, quote

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
BUNDLED_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")
MAX_POLICY_CHARS = 200_000
MAX_RULES = 500
# Policy numbers (amounts, rates, hours) stay where decimal arithmetic is exact and money prints in full.
MAX_POLICY_NUMBER = Decimal(10) ** 15
MAX_DECIMAL_PLACES = 12
MAX_VERSION_CHARS = 200

_TOP_KEYS = frozenset(
    {"version", "base_currency", "currency_rates", "levels", "risk_levels", "rules", "default", "auto_approve",
     "sla_hours", "description", "name", "approvers", "channels", "dify_users", "language"}
)
_RULE_KEYS = frozenset({"id", "description", "when", "then"})
_WHEN_KEYS = frozenset(
    {"amount_min", "amount_max", "request_types", "departments", "priorities", "deadline_hours_max"}
)
_THEN_KEYS = frozenset({"min_level", "min_risk"})
_AUTO_KEYS = frozenset({"amount_max", "request_types", "max_risk", "limits", "audit_sample"})
# What auto-approval may grant, whatever any model says: per requester and in total, per UTC period.
LIMIT_SCOPES: tuple[str, ...] = ("per_requester", "total")
LIMIT_PERIODS: tuple[str, ...] = ("hour", "day", "week", "month")
_LIMIT_KEYS = frozenset({"count", "amount"})
# Limit amounts are counted in hundredths of the base currency by a Redis script whose numbers are
# doubles: below 10^13 every sum it compares is exact (10^15 hundredths < 2^53).
MAX_LIMIT_AMOUNT = Decimal(10) ** 13
MAX_LIMIT_COUNT = 10**9
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


class PolicyError(ValueError):
    """An invalid policy or a request the policy cannot evaluate; the message says what and where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownCurrencyError(PolicyError):
    pass


class RequestFacts(Protocol):
    """What a policy looks at (``approval.engine.ApprovalRequest`` provides it)."""

    @property
    def amount(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def request_type(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def priority(self) -> str: ...
    @property
    def deadline_hours(self) -> float | None: ...


def normalize_name(value: str) -> str:
    """Canonical form of a request type or department: lower case, spaces/underscores as hyphens."""
    return re.sub(r"[\s_]+", "-", value.strip().lower())


def parse_amount(value: Any, field: str = "amount") -> Decimal:
    """A finite, non-negative Decimal. Floats go through ``str`` so 999.99 stays 999.99."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{field} must be a number, got {quote(value)}")
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, int):
            result = Decimal(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{field} must be a finite number, got {quote(value)}")
            result = Decimal(repr(value))
        elif isinstance(value, str):
            if len(value) > 100:
                raise ValueError(f"{field} must be a number, got {quote(value)}")
            result = Decimal(value.strip().replace(",", "").replace("_", ""))
        else:
            raise ValueError(f"{field} must be a number, got {type(value).__name__}")
    except (InvalidOperation, ValueError):  # ValueError: an int past Python's 4300-digit conversion limit
        raise ValueError(f"{field} must be a number, got {quote(value)}") from None
    if not result.is_finite():
        raise ValueError(f"{field} must be a finite number, got {quote(value)}")
    if result < 0:
        raise ValueError(f"{field} must not be negative, got {quote(value)}")
    return result


def _decimal_text(value: Decimal) -> str:
    """``1000``, ``1000.0`` and ``1E+3`` all as ``"1000"``."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    amount_min: Decimal | None
    amount_max: Decimal | None
    request_types: frozenset[str] | None
    departments: frozenset[str] | None
    priorities: frozenset[str] | None
    deadline_hours_max: Decimal | None
    min_level: str | None
    min_risk: str | None

    def matches(self, amount_base: Decimal, request_type: str, department: str, priority: str,
                deadline_hours: Decimal | None) -> bool:
        if self.amount_min is not None and amount_base < self.amount_min:
            return False
        if self.amount_max is not None and amount_base >= self.amount_max:
            return False
        if self.request_types is not None and request_type not in self.request_types:
            return False
        if self.departments is not None and department not in self.departments:
            return False
        if self.priorities is not None and priority not in self.priorities:
            return False
        return self.deadline_hours_max is None or (
            deadline_hours is not None and deadline_hours < self.deadline_hours_max
        )

    def effect(self) -> str:
        parts = []
        if self.min_level:
            parts.append(f"min level {self.min_level}")
        if self.min_risk:
            parts.append(f"min risk {self.min_risk}")
        return ", ".join(parts)


@dataclass(frozen=True)
class PeriodLimit:
    """At most ``count`` auto-approvals and ``amount`` (base currency) in one UTC ``period``, for each
    requester (``per_requester``) or for the whole workspace (``total``). ``None``: not limited."""

    scope: str
    period: str
    count: int | None
    amount: Decimal | None

    @property
    def name(self) -> str:
        """``per_requester.day``: what ``decision_factors`` names (with ``.count`` or ``.amount``)."""
        return f"{self.scope}.{self.period}"


@dataclass(frozen=True)
class AutoApprove:
    amount_max: Decimal
    request_types: frozenset[str]
    max_risk: str
    limits: tuple[PeriodLimit, ...] = ()
    # The fraction of would-be auto-approvals sent to a person instead; None when the policy sets none.
    audit_sample: Decimal | None = None


@dataclass(frozen=True)
class PolicyDecision:
    approver_level: str
    risk_level: str
    matched_rules: list[str]
    auto_approve_eligible: bool
    factors: list[str]
    amount_base: Decimal
    sla_hours: float | None


@dataclass(frozen=True)
class Policy:
    version: str
    base_currency: str
    currency_rates: Mapping[str, Decimal]
    rules: tuple[Rule, ...]
    default_level: str
    default_risk: str
    auto_approve: AutoApprove | None
    sla_hours: Mapping[str, float]
    # Designated approvers per level and the channels that notify them (approval.approvers); empty when the
    # policy names none.
    approvers: Mapping[str, tuple[Approver, ...]] = field(default_factory=dict)
    channels: Mapping[str, Channel] = field(default_factory=dict)
    # Dify user id -> person id, for the provider setting approval_actor: dify_user (approval.approvers).
    dify_users: Mapping[str, str] = field(default_factory=dict)
    # The approval page's language for approvers whose entry and channel name none ("" = English).
    language: str = ""

    @property
    def authority(self) -> Authority | None:
        """Who may decide at which level, when the policy names approvers; None when it names none."""
        return authority_of(self.approvers)

    # --- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, source: str | bytes | Mapping[str, Any]) -> Policy:
        """Build a policy from YAML/JSON text or an already parsed mapping. Raises :class:`PolicyError`."""
        if isinstance(source, bytes):
            try:
                source = source.decode("utf-8")
            except UnicodeDecodeError:
                raise PolicyError("policy: the text is not UTF-8") from None
        if isinstance(source, str):
            if not source.strip():
                raise PolicyError("policy: the text is empty")
            if len(source) > MAX_POLICY_CHARS:
                raise PolicyError(f"policy: the text is longer than {MAX_POLICY_CHARS} characters")
            data = _parse_text(source)
        else:
            data = source
        if not isinstance(data, Mapping):
            raise PolicyError("policy: the document must be a mapping with version, base_currency, rules, ...")
        return _parse(data)

    @classmethod
    def bundled(cls) -> Policy:
        """The default policy shipped in ``approval/default_policy.yaml``."""
        return _bundled()

    # --- provenance ------------------------------------------------------------------------------

    def canonical(self) -> dict[str, Any]:
        """The policy as parsed, as plain JSON values: what decides, independent of how it was written
        (YAML or JSON, key order, comments, quoting, ``1000`` vs ``1000.00``). Rules keep their order
        (it is the order ``matched_rules`` reports); sets are sorted; amounts are normalised decimals."""

        def dec(value: Decimal | None) -> str | None:
            return None if value is None else _decimal_text(value)

        def names(value: frozenset[str] | None) -> list[str] | None:
            return None if value is None else sorted(value)

        canonical = {
            "version": self.version,
            "base_currency": self.base_currency,
            "currency_rates": {code: dec(rate) for code, rate in sorted(self.currency_rates.items())},
            "default": {"level": self.default_level, "risk": self.default_risk},
            "rules": [
                {
                    "id": rule.id,
                    "description": rule.description,
                    "amount_min": dec(rule.amount_min),
                    "amount_max": dec(rule.amount_max),
                    "request_types": names(rule.request_types),
                    "departments": names(rule.departments),
                    "priorities": names(rule.priorities),
                    "deadline_hours_max": dec(rule.deadline_hours_max),
                    "min_level": rule.min_level,
                    "min_risk": rule.min_risk,
                }
                for rule in self.rules
            ],
            "auto_approve": None if self.auto_approve is None else _auto_canonical(self.auto_approve),
            "sla_hours": {level: self.sla_hours[level] for level in APPROVER_LEVELS if level in self.sla_hours},
        }
        # Only when present, so the hash of a policy without approvers is what it always was.
        if self.approvers:
            canonical["approvers"] = {
                level: [person.canonical() for person in people] for level, people in self.approvers.items()
            }
        if self.channels:
            canonical["channels"] = {cid: channel.canonical() for cid, channel in sorted(self.channels.items())}
        if self.dify_users:
            canonical["dify_users"] = dict(sorted(self.dify_users.items()))
        if self.language:
            canonical["language"] = self.language
        return canonical

    @functools.cached_property
    def sha256(self) -> str:
        """sha256 (hex) of ``canonical()`` as compact JSON with sorted keys: which policy decided."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # --- evaluation ------------------------------------------------------------------------------

    @property
    def currencies(self) -> list[str]:
        return list(self.currency_rates)

    def to_base(self, amount: Decimal, currency: str) -> Decimal:
        """Convert to the base currency. An unknown currency is an error, never a guess."""
        code = currency.strip().upper()
        rate = self.currency_rates.get(code)
        if rate is None:
            raise UnknownCurrencyError(
                f"unknown currency {quote(currency)}: the policy converts {', '.join(self.currency_rates)}"
            )
        return amount * rate

    def sla_for(self, level: str) -> float | None:
        return self.sla_hours.get(level)

    def evaluate(self, request: RequestFacts) -> PolicyDecision:
        amount = parse_amount(request.amount)
        currency = request.currency.strip().upper()
        amount_base = self.to_base(amount, currency)
        request_type = normalize_name(request.request_type or "")
        department = normalize_name(request.department or "")
        priority = (request.priority or "normal").strip().lower()
        deadline = None if request.deadline_hours is None else parse_amount(request.deadline_hours,
                                                                             "deadline_hours")
        factors = [
            f"amount {money(amount)} {currency} = {money(amount_base)} {self.base_currency}"
            if currency != self.base_currency
            else f"amount {money(amount)} {currency}"
        ]
        matched = [
            rule for rule in self.rules if rule.matches(amount_base, request_type, department, priority, deadline)
        ]
        if matched:
            level, risk = APPROVER_LEVELS[0], RISK_LEVELS[0]
            for rule in matched:
                if rule.min_level:
                    level = higher_level(level, rule.min_level)
                if rule.min_risk:
                    risk = higher_risk(risk, rule.min_risk)
                factors.append(f"rule {quote(rule.id)}: {rule.effect()}")
            # The default is the floor when it is stricter than what the rules say.
            level = higher_level(level, self.default_level)
            risk = higher_risk(risk, self.default_risk)
        else:
            level, risk = self.default_level, self.default_risk
            factors.append(f"no rule matched: default level {level}, risk {risk}")
        eligible, why = self._auto_eligibility(amount_base, request_type, risk)
        factors.append("policy allows auto-approval" if eligible else f"policy forbids auto-approval: {why}")
        return PolicyDecision(
            approver_level=level,
            risk_level=risk,
            matched_rules=[rule.id for rule in matched],
            auto_approve_eligible=eligible,
            factors=factors,
            amount_base=amount_base,
            sla_hours=self.sla_for(level),
        )

    def _auto_eligibility(self, amount_base: Decimal, request_type: str, risk: str) -> tuple[bool, str]:
        auto = self.auto_approve
        if auto is None:
            return False, "the policy has no auto_approve section"
        reasons = []
        if amount_base >= auto.amount_max:
            reasons.append(f"amount {money(amount_base)} {self.base_currency} is not below {money(auto.amount_max)}")
        if request_type not in auto.request_types:
            reasons.append(f"type {quote(request_type)} is not one of {', '.join(sorted(auto.request_types))}")
        if risk_rank(risk) > risk_rank(auto.max_risk):
            reasons.append(f"risk {risk} is above {auto.max_risk}")
        return not reasons, "; ".join(reasons)


def _auto_canonical(auto: AutoApprove) -> dict[str, Any]:
    canonical: dict[str, Any] = {
        "amount_max": _decimal_text(auto.amount_max),
        "request_types": sorted(auto.request_types),
        "max_risk": auto.max_risk,
    }
    # Only when present, so the hash of a policy without limits or a sample is what it always was.
    if auto.limits:
        limits: dict[str, dict[str, dict[str, Any]]] = {}
        for limit in auto.limits:
            entry: dict[str, Any] = {}
            if limit.count is not None:
                entry["count"] = limit.count
            if limit.amount is not None:
                entry["amount"] = _decimal_text(limit.amount)
            limits.setdefault(limit.scope, {})[limit.period] = entry
        canonical["limits"] = limits
    if auto.audit_sample is not None:
        canonical["audit_sample"] = _decimal_text(auto.audit_sample)
    return canonical


def _parse_text(source: str) -> Any:
    """YAML or JSON through ``untrusted.parse_yaml``: bounded size and depth, no aliases, valid Unicode;
    a syntax error says where (line and column)."""
    try:
        return parse_yaml(source, max_bytes=MAX_POLICY_CHARS)
    except InputError as exc:
        raise PolicyError(f"policy: the text {exc}") from None


@functools.cache
def _bundled() -> Policy:
    return Policy.load(BUNDLED_POLICY_PATH.read_text(encoding="utf-8"))


# --- parsing ---------------------------------------------------------------------------------------


def _one_of(where: str, key: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise PolicyError(f"{where}: {key!r} must be one of {', '.join(allowed)}, got {quote(value)}")
    return value.strip().lower()


def _number(where: str, key: str, value: Any, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PolicyError(f"{where}: {key!r} must be a number, got {quote(value)}")
    try:
        result = parse_amount(value, key)
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    if positive and result <= 0:
        raise PolicyError(f"{where}: {key!r} must be greater than 0, got {quote(value)}")
    if result >= MAX_POLICY_NUMBER:
        raise PolicyError(f"{where}: {key!r} must be below {MAX_POLICY_NUMBER:,f}, got {quote(value)}")
    if _decimal_places(result) > MAX_DECIMAL_PLACES:
        raise PolicyError(f"{where}: {key!r} has more than {MAX_DECIMAL_PLACES} decimal places, got {quote(value)}")
    return result


def _decimal_places(value: Decimal) -> int:
    """Digits after the point once trailing zeros are dropped (1.500 has 1; 1E-20 has 20), without the
    decimal context, which would round 1E-999999999 to 0."""
    if value == 0:
        return 0
    _sign, digits, exponent = value.as_tuple()
    kept = list(digits)
    while isinstance(exponent, int) and exponent < 0 and len(kept) > 1 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _names(where: str, key: str, value: Any, allowed: Iterable[str] | None = None) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise PolicyError(f"{where}: {key!r} must be a non-empty list of strings")
    result = set()
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise PolicyError(f"{where}: {key!r} must be a non-empty list of strings, got item {quote(item)}")
        result.add(_one_of(where, key, item, allowed) if allowed is not None else normalize_name(item))
    return frozenset(result)


def _unknown_keys(where: str, data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = [key for key in data if key not in allowed]
    if unknown:
        shown = ", ".join(_field_name(key) for key in sorted(unknown[:10], key=_field_name))
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise PolicyError(f"{where}: unknown field(s) {shown}{more}; allowed: {', '.join(sorted(allowed))}")


def _field_name(key: object) -> str:
    """A field name as written, or quoted (short, control characters shown) when it is anything unusual."""
    text = key if isinstance(key, str) else None
    return text if text is not None and len(text) <= 40 and text.isidentifier() else quote(key, 40)


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _parse(data: Mapping[str, Any]) -> Policy:
    _unknown_keys("policy", data, _TOP_KEYS)
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise PolicyError('policy: \'version\' must be a non-empty string (quote it, e.g. version: "2025.1")')
    if len(version.strip()) > MAX_VERSION_CHARS or not version.strip().isprintable():
        raise PolicyError(
            f"policy: 'version' must be at most {MAX_VERSION_CHARS} printable characters, got {quote(version)}"
        )
    base = data.get("base_currency")
    if not isinstance(base, str) or not _CURRENCY.match(base.strip().upper()):
        raise PolicyError("policy: 'base_currency' must be a 3-letter currency code such as USD")
    base = base.strip().upper()

    rates_raw = _mapping("policy: 'currency_rates'", data.get("currency_rates", {base: 1}))
    rates: dict[str, Decimal] = {}
    for code, rate in rates_raw.items():
        if not isinstance(code, str) or not _CURRENCY.match(code.strip().upper()):
            raise PolicyError(f"policy: 'currency_rates': {quote(code)} is not a 3-letter currency code")
        rates[code.strip().upper()] = _number(f"currency_rates {quote(code)}", "rate", rate, positive=True)
    if base not in rates:
        rates[base] = Decimal(1)
    elif rates[base] != 1:
        raise PolicyError(f"policy: 'currency_rates': the base currency {base} must have rate 1, got {rates[base]}")

    for key, scale in (("levels", APPROVER_LEVELS), ("risk_levels", RISK_LEVELS)):
        if key in data and (not isinstance(data[key], list | None) or list(data[key] or []) != list(scale)):
            raise PolicyError(f"policy: {key!r} must be [{', '.join(scale)}] (lowest first), got {quote(data[key])}")

    default = _mapping("policy: 'default'", data.get("default", {"level": APPROVER_LEVELS[0], "risk": RISK_LEVELS[0]}))
    _unknown_keys("policy: 'default'", default, frozenset({"level", "risk"}))
    default_level = _one_of("policy: 'default'", "level", default.get("level", APPROVER_LEVELS[0]), APPROVER_LEVELS)
    default_risk = _one_of("policy: 'default'", "risk", default.get("risk", RISK_LEVELS[0]), RISK_LEVELS)

    rules_raw = data.get("rules", [])
    if not isinstance(rules_raw, list):
        raise PolicyError("policy: 'rules' must be a list")
    if len(rules_raw) > MAX_RULES:
        raise PolicyError(f"policy: at most {MAX_RULES} rules, got {len(rules_raw)}")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(rules_raw, start=1):
        rule = _parse_rule(index, raw)
        if rule.id in seen:
            raise PolicyError(f"rule {quote(rule.id)} (#{index}): duplicate rule id")
        seen.add(rule.id)
        rules.append(rule)

    auto = None if data.get("auto_approve") is None else _parse_auto_approve(data["auto_approve"])

    sla: dict[str, float] = {}
    for level, hours in _mapping("policy: 'sla_hours'", data.get("sla_hours") or {}).items():
        key = _one_of("policy: 'sla_hours'", "level", level, APPROVER_LEVELS)
        sla[key] = float(_number(f"policy: 'sla_hours' {key!r}", "hours", hours, positive=True))

    try:
        language = parse_language(data.get("language"), "policy")
        channels = parse_channels(data.get("channels"))
        approvers = parse_approvers(data.get("approvers"), channels, language)
        dify_users = parse_dify_users(data.get("dify_users"))
    except ApproversError as exc:
        raise PolicyError(str(exc)) from None

    return Policy(
        version=version.strip(),
        base_currency=base,
        currency_rates=rates,
        rules=tuple(rules),
        default_level=default_level,
        default_risk=default_risk,
        auto_approve=auto,
        sla_hours=sla,
        approvers=approvers,
        channels=channels,
        dify_users=dify_users,
        language=language,
    )


def _parse_auto_approve(raw: Any) -> AutoApprove:
    where = "policy: 'auto_approve'"
    auto_raw = _mapping(where, raw)
    _unknown_keys(where, auto_raw, _AUTO_KEYS)
    if "amount_max" not in auto_raw or "request_types" not in auto_raw:
        raise PolicyError(f"{where} needs 'amount_max' and 'request_types'")
    sample = None
    if auto_raw.get("audit_sample") is not None:
        sample = _number(where, "audit_sample", auto_raw["audit_sample"])
        if sample > 1:
            raise PolicyError(
                f"{where}: 'audit_sample' is the fraction of would-be auto-approvals a person reviews, from 0 to 1 "
                f"(0.05 is 5 %), got {quote(auto_raw['audit_sample'])}"
            )
    return AutoApprove(
        amount_max=_number(where, "amount_max", auto_raw["amount_max"]),
        request_types=_names(where, "request_types", auto_raw["request_types"]),
        max_risk=_one_of(where, "max_risk", auto_raw.get("max_risk", "low"), RISK_LEVELS),
        limits=_parse_limits(auto_raw.get("limits")),
        audit_sample=sample,
    )


def _parse_limits(raw: Any) -> tuple[PeriodLimit, ...]:
    """``{per_requester: {day: {count: 3, amount: 800}, ...}, total: {...}}`` -> one PeriodLimit each."""
    if raw is None:
        return ()
    where = "policy: 'auto_approve.limits'"
    scopes = _mapping(where, raw)
    _unknown_keys(where, scopes, frozenset(LIMIT_SCOPES))
    if not scopes:
        raise PolicyError(f"{where}: name per_requester and/or total, e.g. per_requester: {{day: {{count: 3}}}}")
    limits: list[PeriodLimit] = []
    for scope in LIMIT_SCOPES:
        if scope not in scopes:
            continue
        periods = _mapping(f"policy: 'auto_approve.limits.{scope}'", scopes[scope])
        _unknown_keys(f"policy: 'auto_approve.limits.{scope}'", periods, frozenset(LIMIT_PERIODS))
        if not periods:
            raise PolicyError(f"policy: 'auto_approve.limits.{scope}': name a period ({', '.join(LIMIT_PERIODS)})")
        for period in LIMIT_PERIODS:
            if period in periods:
                limits.append(_parse_period_limit(scope, period, periods[period]))
    return tuple(limits)


def _parse_period_limit(scope: str, period: str, raw: Any) -> PeriodLimit:
    where = f"policy: 'auto_approve.limits.{scope}.{period}'"
    entry = _mapping(where, raw)
    _unknown_keys(where, entry, _LIMIT_KEYS)
    if entry.get("count") is None and entry.get("amount") is None:
        raise PolicyError(f"{where}: give 'count' (auto-approvals) and/or 'amount' (in the base currency)")
    count = None
    if entry.get("count") is not None:
        value = entry["count"]
        number = _number(where, "count", value)
        if number != number.to_integral_value() or number >= MAX_LIMIT_COUNT:
            raise PolicyError(
                f"{where}: 'count' must be a whole number of auto-approvals from 0 to {MAX_LIMIT_COUNT - 1:,}, "
                f"got {quote(value)}"
            )
        count = int(number)
    amount = None
    if entry.get("amount") is not None:
        amount = _number(where, "amount", entry["amount"])
        if amount >= MAX_LIMIT_AMOUNT:
            raise PolicyError(f"{where}: 'amount' must be below {MAX_LIMIT_AMOUNT:,f}, got {quote(entry['amount'])}")
    return PeriodLimit(scope=scope, period=period, count=count, amount=amount)


def _parse_rule(index: int, raw: Any) -> Rule:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"rule #{index}: must be a mapping with id, when, then")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise PolicyError(
            f"rule #{index}: 'id' must be a short name (letters, digits, - _ . :), got {quote(rule_id)}"
        )
    where = f"rule {quote(rule_id)} (#{index})"
    _unknown_keys(where, raw, _RULE_KEYS)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise PolicyError(f"{where}: 'description' must be a string")
    when = _mapping(f"{where}: 'when'", raw.get("when") or {})
    _unknown_keys(f"{where}: 'when'", when, _WHEN_KEYS)
    then = _mapping(f"{where}: 'then'", raw.get("then") or {})
    _unknown_keys(f"{where}: 'then'", then, _THEN_KEYS)
    if not then:
        raise PolicyError(f"{where}: 'then' needs 'min_level' and/or 'min_risk'")

    amount_min = _number(where, "amount_min", when["amount_min"]) if "amount_min" in when else None
    amount_max = _number(where, "amount_max", when["amount_max"]) if "amount_max" in when else None
    if amount_min is not None and amount_max is not None and amount_min >= amount_max:
        raise PolicyError(f"{where}: 'amount_min' ({amount_min}) must be below 'amount_max' ({amount_max})")
    deadline = (
        _number(where, "deadline_hours_max", when["deadline_hours_max"], positive=True)
        if "deadline_hours_max" in when
        else None
    )
    return Rule(
        id=rule_id,
        description=description,
        amount_min=amount_min,
        amount_max=amount_max,
        request_types=_names(where, "request_types", when["request_types"]) if "request_types" in when else None,
        departments=_names(where, "departments", when["departments"]) if "departments" in when else None,
        priorities=_names(where, "priorities", when["priorities"], PRIORITIES) if "priorities" in when else None,
        deadline_hours_max=deadline,
        min_level=_one_of(where, "min_level", then["min_level"], APPROVER_LEVELS) if "min_level" in then else None,
        min_risk=_one_of(where, "min_risk", then["min_risk"], RISK_LEVELS) if "min_risk" in then else None,
    )


__all__ = [
    "LIMIT_PERIODS",
    "LIMIT_SCOPES",
    "PRIORITIES",
    "AutoApprove",
    "PeriodLimit",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "RequestFacts",
    "Rule",
    "UnknownCurrencyError",
    "money",
    "normalize_name",
    "parse_amount",
]
