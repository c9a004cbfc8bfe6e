"""Delegation-of-authority policy as data (YAML or JSON) and its evaluation.

Every rule whose conditions all hold applies; the strictest wins (highest ``min_level``, highest
``min_risk``) and all matching rule ids are reported. Money is :class:`~decimal.Decimal` throughout:
``amount_min`` is inclusive, ``amount_max`` exclusive (999.99 USD is below a 1000 band, 1000.00 is
in it), ``deadline_hours_max`` exclusive (``24`` means "needed in less than 24 hours"). Text
conditions (request types, departments) compare case-insensitively, with spaces and underscores
read as hyphens ("IT Security" == "it-security").

The data types and money rules are ``approval.policy_types``; reading a document section by section is
``approval.policy_parsing``. This module assembles and evaluates a policy; the names tools and tests use
(``Policy``, ``PolicyError``, ``PeriodLimit``, ``money``, ...) are importable from here as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from approval.approvers import Approver, Authority, Channel, authority_of
from approval.levels import APPROVER_LEVELS, RISK_LEVELS, higher_level, higher_risk, risk_rank
from approval.policy_parsing import (
    MAX_POLICY_CHARS,
    check_scales,
    check_top_level_keys,
    parse_auto_approve_section,
    parse_base_currency,
    parse_currency_rates,
    parse_default,
    parse_people,
    parse_rules,
    parse_sla_hours,
    parse_text,
    parse_version,
)
from approval.policy_types import (
    LIMIT_PERIODS,
    LIMIT_SCOPES,
    PRIORITIES,
    AutoApprove,
    PeriodLimit,
    PolicyDecision,
    PolicyError,
    RequestFacts,
    Rule,
    UnknownCurrencyError,
    decimal_text,
    money,
    normalize_name,
    parse_amount,
)
from untrusted import quote

BUNDLED_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")


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
            data = parse_text(source)
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
            return None if value is None else decimal_text(value)

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
        "amount_max": decimal_text(auto.amount_max),
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
                entry["amount"] = decimal_text(limit.amount)
            limits.setdefault(limit.scope, {})[limit.period] = entry
        canonical["limits"] = limits
    if auto.audit_sample is not None:
        canonical["audit_sample"] = decimal_text(auto.audit_sample)
    return canonical


@functools.cache
def _bundled() -> Policy:
    return Policy.load(BUNDLED_POLICY_PATH.read_text(encoding="utf-8"))



def _parse(data: Mapping[str, Any]) -> Policy:
    """The sections in document order, so the first error reported is the first one written."""
    check_top_level_keys(data)
    version = parse_version(data)
    base = parse_base_currency(data)
    rates = parse_currency_rates(data, base)
    check_scales(data)
    default_level, default_risk = parse_default(data)
    rules = parse_rules(data)
    auto = parse_auto_approve_section(data)
    sla = parse_sla_hours(data)
    people = parse_people(data)
    return Policy(
        version=version,
        base_currency=base,
        currency_rates=rates,
        rules=rules,
        default_level=default_level,
        default_risk=default_risk,
        auto_approve=auto,
        sla_hours=sla,
        approvers=people.approvers,
        channels=people.channels,
        dify_users=people.dify_users,
        language=people.language,
    )


__all__ = [
    "BUNDLED_POLICY_PATH",
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
