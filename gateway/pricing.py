"""Cost estimates from a price table kept as data (`data/prices.yaml`), extensible by the user."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from gateway.errors import FieldError
from gateway.models import CostBreakdown, Usage

_PRICES_FILE = Path(__file__).parent / "data" / "prices.yaml"
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
MILLION = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    model: str
    input: float
    output: float
    cached_input: float
    source: str = ""


class PriceTable:
    """Per-model prices with aliases. `cost()` returns None for an unknown model, never a silent 0."""

    def __init__(self, prices: dict[str, ModelPrice], aliases: dict[str, str]) -> None:
        self._prices = prices
        self._aliases = aliases

    @classmethod
    def bundled(cls) -> PriceTable:
        return _bundled_table()

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    def resolve(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        name = model.strip().lower()
        for candidate in (name, _DATE_SUFFIX.sub("", name), name.rsplit("/", 1)[-1]):
            canonical = self._aliases.get(candidate, candidate)
            if canonical in self._prices:
                return self._prices[canonical]
        return None

    def cheapest(self, candidates: list[str]) -> str | None:
        """The candidate with the lowest input+output price; unpriced candidates are ignored."""
        priced = [(p.input + p.output, name) for name in candidates if (p := self.resolve(name))]
        return min(priced)[1] if priced else None

    def cost(self, model: str | None, usage: Usage) -> CostBreakdown | None:
        price = self.resolve(model)
        if price is None:
            return None
        cached = max(0, min(usage.cached_prompt_tokens, usage.prompt_tokens))
        uncached = usage.prompt_tokens - cached
        input_usd = uncached * price.input / MILLION
        cached_usd = cached * price.cached_input / MILLION
        output_usd = usage.completion_tokens * price.output / MILLION
        return CostBreakdown(
            model=price.model,
            input_usd=round(input_usd, 10),
            cached_input_usd=round(cached_usd, 10),
            output_usd=round(output_usd, 10),
            total_usd=round(input_usd + cached_usd + output_usd, 10),
            uncached_prompt_tokens=uncached,
            cached_prompt_tokens=cached,
            completion_tokens=usage.completion_tokens,
            source=price.source,
        )

    def with_overrides(self, text: str) -> PriceTable:
        """A copy extended by user prices given as YAML or JSON:
        `{"model": {"input": 0.5, "output": 1.5, "cached_input": 0.1, "aliases": [...]}}`."""
        if not text.strip():
            return self
        try:
            data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise FieldError("price_overrides", f"is not valid YAML or JSON: {str(exc).splitlines()[0]}") from None
        if isinstance(data, dict) and isinstance(data.get("models"), dict):
            data = data["models"]
        if not isinstance(data, dict) or not data:
            raise FieldError("price_overrides", 'must map model names to prices, e.g. {"my-model": {"input": 0.5, "output": 1.5}}')
        prices = dict(self._prices)
        aliases = dict(self._aliases)
        for name, entry in data.items():
            price, entry_aliases = _parse_entry(str(name), entry, source="price_overrides credential")
            prices[price.model] = price
            for alias in entry_aliases:
                aliases[alias] = price.model
            aliases.pop(price.model, None)
        return PriceTable(prices, aliases)


def _parse_entry(name: str, entry: object, *, source: str) -> tuple[ModelPrice, list[str]]:
    model = name.strip().lower()
    where = f"entry for model '{name}'"
    if not isinstance(entry, dict):
        raise FieldError("price_overrides", f"{where} must be a mapping with input and output prices")
    unknown = set(entry) - {"input", "output", "cached_input", "source", "aliases", "label"}
    if unknown:
        raise FieldError("price_overrides", f"{where} has unknown keys {sorted(unknown)}: use input, output, cached_input, aliases")
    values: dict[str, float] = {}
    for key in ("input", "output", "cached_input"):
        raw = entry.get(key)
        if raw is None:
            if key == "cached_input":
                values[key] = values["input"]
                continue
            raise FieldError("price_overrides", f"{where} is missing '{key}' (USD per million tokens)")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            raise FieldError("price_overrides", f"{where}: '{key}' must be a non-negative number, got {raw!r}")
        values[key] = float(raw)
    aliases = entry.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise FieldError("price_overrides", f"{where}: 'aliases' must be a list of names")
    return (
        ModelPrice(model, values["input"], values["output"], values["cached_input"], str(entry.get("source", source))),
        [a.strip().lower() for a in aliases],
    )


@lru_cache(maxsize=1)
def _bundled_table() -> PriceTable:
    data = yaml.safe_load(_PRICES_FILE.read_text(encoding="utf-8"))
    prices: dict[str, ModelPrice] = {}
    aliases: dict[str, str] = {}
    for name, entry in data["models"].items():
        price, entry_aliases = _parse_entry(name, entry, source="bundled")
        prices[price.model] = price
        aliases.update({alias: price.model for alias in entry_aliases})
    return PriceTable(prices, aliases)
