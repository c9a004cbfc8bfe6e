"""One corpus case: a request text, its language and style, and any fields it overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    lang: str
    style: str
    content: str
    fields: dict[str, Any] = field(default_factory=dict)

    def params(self, index: int, prefix: str) -> dict[str, Any]:
        base = {
            "request_id": f"{prefix}-{index:03d}",
            "content": self.content,
            "amount": 120 + (index * 7) % 300,
            "currency": "USD",
            "request_type": ("expense", "travel", "software")[index % 3],
            "department": "sales",
            "requester_id": f"emp-{index:03d}",
            "priority": "normal",
            "deadline_hours": 96,
        }
        return {**base, **self.fields}
