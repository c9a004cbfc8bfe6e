"""The policy's vocabulary: the errors, the money and name rules, and the frozen data types a parsed policy
is made of (rules, auto-approval and its limits, a decision). ``approval.policy_parsing`` builds them from a
document; ``approval.policy`` holds them together and evaluates requests.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from untrusted import quote

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
# What auto-approval may grant, whatever any model says: per requester and in total, per UTC period.
LIMIT_SCOPES: tuple[str, ...] = ("per_requester", "total")
LIMIT_PERIODS: tuple[str, ...] = ("hour", "day", "week", "month")


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


def decimal_text(value: Decimal) -> str:
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


__all__ = [
    "LIMIT_PERIODS",
    "LIMIT_SCOPES",
    "PRIORITIES",
    "AutoApprove",
    "PeriodLimit",
    "PolicyDecision",
    "PolicyError",
    "RequestFacts",
    "Rule",
    "UnknownCurrencyError",
    "decimal_text",
    "money",
    "normalize_name",
    "parse_amount",
]
