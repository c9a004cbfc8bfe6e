"""Reading a policy document: each section checked and turned into the data types of
``approval.policy_types``, with errors that say what and where. ``approval.policy`` calls the section
parsers in document order and assembles the :class:`~approval.policy.Policy`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from approval.approvers import (
    Approver,
    ApproversError,
    Channel,
    parse_approvers,
    parse_channels,
    parse_dify_users,
    parse_language,
)
from approval.levels import APPROVER_LEVELS, RISK_LEVELS
from approval.policy_types import (
    LIMIT_PERIODS,
    LIMIT_SCOPES,
    PRIORITIES,
    AutoApprove,
    PeriodLimit,
    PolicyError,
    Rule,
    normalize_name,
    parse_amount,
)
from untrusted import InputError, parse_yaml, quote

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
_LIMIT_KEYS = frozenset({"count", "amount"})
# Limit amounts are counted in hundredths of the base currency by a Redis script whose numbers are
# doubles: below 10^13 every sum it compares is exact (10^15 hundredths < 2^53).
MAX_LIMIT_AMOUNT = Decimal(10) ** 13
MAX_LIMIT_COUNT = 10**9
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")


def parse_text(source: str) -> Any:
    """YAML or JSON through ``untrusted.parse_yaml``: bounded size and depth, no aliases, valid Unicode;
    a syntax error says where (line and column)."""
    try:
        return parse_yaml(source, max_bytes=MAX_POLICY_CHARS)
    except InputError as exc:
        raise PolicyError(f"policy: the text {exc}") from None



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



class People(NamedTuple):
    """The policy's approvers section and what it refers to (``approval.approvers``)."""

    language: str
    channels: Mapping[str, Channel]
    approvers: Mapping[str, tuple[Approver, ...]]
    dify_users: Mapping[str, str]


def check_top_level_keys(data: Mapping[str, Any]) -> None:
    _unknown_keys("policy", data, _TOP_KEYS)


def parse_version(data: Mapping[str, Any]) -> str:
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise PolicyError('policy: \'version\' must be a non-empty string (quote it, e.g. version: "2025.1")')
    if len(version.strip()) > MAX_VERSION_CHARS or not version.strip().isprintable():
        raise PolicyError(
            f"policy: 'version' must be at most {MAX_VERSION_CHARS} printable characters, got {quote(version)}"
        )
    return version.strip()


def parse_base_currency(data: Mapping[str, Any]) -> str:
    base = data.get("base_currency")
    if not isinstance(base, str) or not _CURRENCY.match(base.strip().upper()):
        raise PolicyError("policy: 'base_currency' must be a 3-letter currency code such as USD")
    return base.strip().upper()


def parse_currency_rates(data: Mapping[str, Any], base: str) -> dict[str, Decimal]:
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
    return rates


def check_scales(data: Mapping[str, Any]) -> None:
    """``levels`` and ``risk_levels`` may be written out, but only as the fixed scales (approval.levels)."""
    for key, scale in (("levels", APPROVER_LEVELS), ("risk_levels", RISK_LEVELS)):
        if key in data and (not isinstance(data[key], list | None) or list(data[key] or []) != list(scale)):
            raise PolicyError(f"policy: {key!r} must be [{', '.join(scale)}] (lowest first), got {quote(data[key])}")


def parse_default(data: Mapping[str, Any]) -> tuple[str, str]:
    """The default (level, risk): what applies when no rule matches, and the floor when one does."""
    default = _mapping("policy: 'default'", data.get("default", {"level": APPROVER_LEVELS[0], "risk": RISK_LEVELS[0]}))
    _unknown_keys("policy: 'default'", default, frozenset({"level", "risk"}))
    default_level = _one_of("policy: 'default'", "level", default.get("level", APPROVER_LEVELS[0]), APPROVER_LEVELS)
    default_risk = _one_of("policy: 'default'", "risk", default.get("risk", RISK_LEVELS[0]), RISK_LEVELS)
    return default_level, default_risk


def parse_rules(data: Mapping[str, Any]) -> tuple[Rule, ...]:
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
    return tuple(rules)


def parse_auto_approve_section(data: Mapping[str, Any]) -> AutoApprove | None:
    return None if data.get("auto_approve") is None else _parse_auto_approve(data["auto_approve"])


def parse_sla_hours(data: Mapping[str, Any]) -> dict[str, float]:
    sla: dict[str, float] = {}
    for level, hours in _mapping("policy: 'sla_hours'", data.get("sla_hours") or {}).items():
        key = _one_of("policy: 'sla_hours'", "level", level, APPROVER_LEVELS)
        sla[key] = float(_number(f"policy: 'sla_hours' {key!r}", "hours", hours, positive=True))
    return sla


def parse_people(data: Mapping[str, Any]) -> People:
    try:
        language = parse_language(data.get("language"), "policy")
        channels = parse_channels(data.get("channels"))
        approvers = parse_approvers(data.get("approvers"), channels, language)
        dify_users = parse_dify_users(data.get("dify_users"))
    except ApproversError as exc:
        raise PolicyError(str(exc)) from None
    return People(language, channels, approvers, dify_users)


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
    "MAX_POLICY_CHARS",
    "People",
    "check_scales",
    "check_top_level_keys",
    "parse_auto_approve_section",
    "parse_base_currency",
    "parse_currency_rates",
    "parse_default",
    "parse_people",
    "parse_rules",
    "parse_sla_hours",
    "parse_text",
    "parse_version",
]
