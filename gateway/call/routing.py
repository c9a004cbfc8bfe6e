"""`model: auto`: simple prompts go to the cheapest candidate, complex ones to a stronger model.
The rules are data (`data/routing.yaml`); the decision names the rule that fired."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gateway.models import RoutingDecision
from gateway.spend.pricing import PriceTable
from gateway.spend.tokens import estimate_text_tokens

AUTO = "auto"
_RULES_FILE = Path(__file__).parent.parent / "data" / "routing.yaml"


@dataclass(frozen=True)
class RoutingRule:
    id: str
    reason: str
    json_output: bool | None = None
    prompt_tokens_over: int | None = None
    pattern: re.Pattern[str] | None = None

    def matches(self, text: str, json_output: bool) -> bool:
        if self.json_output is not None and json_output == self.json_output:
            return True
        if self.prompt_tokens_over is not None and estimate_text_tokens(text).tokens > self.prompt_tokens_over:
            return True
        return bool(self.pattern and self.pattern.search(text))


@dataclass(frozen=True)
class ModelRouter:
    candidates: tuple[str, ...]
    strong_model: str
    rules: tuple[RoutingRule, ...]

    @classmethod
    def bundled(cls) -> ModelRouter:
        return _bundled_router()

    def choose(self, prompt: str, *, system_prompt: str = "", json_output: bool = False, prices: PriceTable) -> RoutingDecision:
        text = f"{system_prompt}\n{prompt}" if system_prompt else prompt
        for rule in self.rules:
            if rule.matches(text, json_output):
                return RoutingDecision(AUTO, self.strong_model, f"complex: {rule.reason} (rule '{rule.id}')")
        cheapest = prices.cheapest(list(self.candidates)) or self.candidates[0]
        return RoutingDecision(AUTO, cheapest, "simple prompt: cheapest priced candidate")


def _rule(entry: dict[str, Any]) -> RoutingRule:
    when = entry.get("when") or {}
    pattern = when.get("pattern")
    return RoutingRule(
        id=str(entry["id"]),
        reason=str(entry.get("reason", entry["id"])),
        json_output=when.get("json_output"),
        prompt_tokens_over=when.get("prompt_tokens_over"),
        pattern=re.compile(pattern) if pattern else None,
    )


@lru_cache(maxsize=1)
def _bundled_router() -> ModelRouter:
    data = yaml.safe_load(_RULES_FILE.read_text(encoding="utf-8"))
    return ModelRouter(
        candidates=tuple(data["candidates"]),
        strong_model=str(data["strong_model"]),
        rules=tuple(_rule(r) for r in data["rules"]),
    )
