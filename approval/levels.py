"""The ordinal scales every part of approval shares."""

from __future__ import annotations

from untrusted import quote

APPROVER_LEVELS: tuple[str, ...] = ("manager", "director", "vp", "executive")
RISK_LEVELS: tuple[str, ...] = ("low", "medium", "high")
STATES: tuple[str, ...] = ("pending", "under_review", "approved", "rejected", "escalated", "expired", "cancelled")
EVENTS: tuple[str, ...] = ("claim", "approve", "reject", "escalate", "cancel")
TERMINAL_STATES: frozenset[str] = frozenset({"approved", "rejected", "expired", "cancelled"})


def level_rank(level: str) -> int:
    """Position of an approver level (manager = 0). Raises ValueError naming the allowed values."""
    try:
        return APPROVER_LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown approver level {quote(level)}: use one of {', '.join(APPROVER_LEVELS)}") from None


def risk_rank(risk: str) -> int:
    try:
        return RISK_LEVELS.index(risk)
    except ValueError:
        raise ValueError(f"unknown risk level {quote(risk)}: use one of {', '.join(RISK_LEVELS)}") from None


def higher_level(a: str, b: str) -> str:
    return a if level_rank(a) >= level_rank(b) else b


def higher_risk(a: str, b: str) -> str:
    return a if risk_rank(a) >= risk_rank(b) else b
