"""Cost estimates from a price table kept as data (`data/prices.yaml`), extensible by the user."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from gateway.errors import FieldError
from gateway.models import CostBreakdown, Usage
from untrusted import InputError, parse_json, parse_yaml, quote

_PRICES_FILE = Path(__file__).parent.parent / "data" / "prices.yaml"
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
MILLION = 1_000_000
# Bounds on the price_overrides credential: far above any real price table.
MAX_OVERRIDES_CHARS = 100_000
MAX_OVERRIDES_DEPTH = 8
MAX_OVERRIDE_MODELS = 1000
MAX_ALIASES = 50
MAX_NAME_CHARS = 200
MAX_PRICE = 1_000_000  # USD per million tokens
_ENTRY_KEYS = ("input", "output", "cached_input", "reasoning_output", "source", "aliases", "label")
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@dataclass(frozen=True)
class ModelPrice:
    model: str
    input: float
    output: float
    cached_input: float
    source: str = ""
    reasoning_output: float | None = None  # reasoning tokens, when the vendor bills them apart from output

    @property
    def reasoning(self) -> float:
        return self.output if self.reasoning_output is None else self.reasoning_output

    def worst_case_usd(self, prompt_tokens: int, max_completion_tokens: int) -> float:
        """The most a call can cost: every prompt token uncached, every completion token at the dearer of
        the output and reasoning prices."""
        return (prompt_tokens * self.input + max_completion_tokens * max(self.output, self.reasoning)) / MILLION


class PriceTable:
    """Per-model prices with aliases. `cost()` returns None for an unknown model, never a silent 0."""

    # Names whose price is remembered (a table never changes: overrides make a new one), so a call's
    # look-ups are one dict access; names beyond it are resolved each time (same answer).
    _MAX_REMEMBERED = 1024

    def __init__(self, prices: dict[str, ModelPrice], aliases: dict[str, str]) -> None:
        self._prices = prices
        self._aliases = aliases
        self._resolved: dict[str, ModelPrice | None] = {}

    @classmethod
    def bundled(cls) -> PriceTable:
        return _bundled_table()

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    def resolve(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        try:
            return self._resolved[model]
        except KeyError:
            pass
        except TypeError:  # not a name (unhashable): resolved the long way, which says so
            return self._resolve(model)
        price = self._resolve(model)
        if len(self._resolved) < self._MAX_REMEMBERED:
            self._resolved[model] = price
        return price

    def _resolve(self, model: str) -> ModelPrice | None:
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
        reasoning = max(0, min(usage.reasoning_tokens, usage.completion_tokens))
        input_usd = uncached * price.input / MILLION
        cached_usd = cached * price.cached_input / MILLION
        # Reasoning tokens are part of completion_tokens (as OpenAI and DeepSeek report and bill them).
        output_usd = (usage.completion_tokens - reasoning) * price.output / MILLION
        reasoning_usd = reasoning * price.reasoning / MILLION
        return CostBreakdown(
            model=price.model,
            input_usd=round(input_usd, 10),
            cached_input_usd=round(cached_usd, 10),
            output_usd=round(output_usd, 10),
            total_usd=round(input_usd + cached_usd + output_usd + reasoning_usd, 10),
            uncached_prompt_tokens=uncached,
            cached_prompt_tokens=cached,
            completion_tokens=usage.completion_tokens,
            source=price.source,
            reasoning_usd=round(reasoning_usd, 10),
            reasoning_tokens=reasoning,
        )

    def with_overrides(self, text: str) -> PriceTable:
        """A copy extended by user prices given as YAML or JSON:
        `{"model": {"input": 0.5, "output": 1.5, "cached_input": 0.1, "aliases": [...]}}`."""
        if not text.strip():
            return self
        try:
            if text.lstrip().startswith("{"):
                data = parse_json(text, max_bytes=MAX_OVERRIDES_CHARS, max_depth=MAX_OVERRIDES_DEPTH)
            else:
                data = parse_yaml(text, max_bytes=MAX_OVERRIDES_CHARS, max_depth=MAX_OVERRIDES_DEPTH)
        except InputError as exc:
            problem = str(exc)
            if problem.startswith("is not valid JSON"):
                problem = "is not valid YAML or JSON" + problem[len("is not valid JSON") :]
            raise FieldError("price_overrides", problem) from None
        except (ValueError, OverflowError):  # PyYAML's int() of a number over 4300 digits
            raise FieldError("price_overrides", "contains a number too long to read: write prices as ordinary numbers") from None
        if isinstance(data, dict) and isinstance(data.get("models"), dict):
            data = data["models"]
        if not isinstance(data, dict) or not data:
            raise FieldError("price_overrides", 'must map model names to prices, e.g. {"my-model": {"input": 0.5, "output": 1.5}}')
        if len(data) > MAX_OVERRIDE_MODELS:
            raise FieldError("price_overrides", f"prices {len(data)} models; at most {MAX_OVERRIDE_MODELS}")
        prices = dict(self._prices)
        aliases = dict(self._aliases)
        for name, entry in data.items():
            if not isinstance(name, str | int | float) or isinstance(name, bool):
                raise FieldError("price_overrides", f"has a {type(name).__name__} where a model name should be: use names as keys")
            price, entry_aliases = _parse_entry(_name(name, "a model name"), entry, source="price_overrides credential")
            prices[price.model] = price
            for alias in entry_aliases:
                aliases[alias] = price.model
            aliases.pop(price.model, None)
        return PriceTable(prices, aliases)


def _parse_entry(name: str, entry: object, *, source: str) -> tuple[ModelPrice, list[str]]:
    model = name.strip().lower()
    where = f"entry for model {quote(name)}"
    if not isinstance(entry, dict):
        raise FieldError("price_overrides", f"{where} must be a mapping with input and output prices")
    unknown = [key for key in entry if key not in _ENTRY_KEYS]
    if unknown:
        shown = ", ".join(quote(key, 30) for key in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise FieldError("price_overrides", f"{where} has unknown keys {shown}: use input, output, cached_input, reasoning_output, aliases")
    values: dict[str, float] = {}
    for key in ("input", "output", "cached_input", "reasoning_output"):
        raw = entry.get(key)
        if raw is None:
            if key == "cached_input":
                values[key] = values["input"]
                continue
            if key == "reasoning_output":
                continue
            raise FieldError("price_overrides", f"{where} is missing '{key}' (USD per million tokens)")
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= MAX_PRICE:
            problem = f"'{key}' must be a non-negative number of USD per million tokens (at most {MAX_PRICE}), got {_shown(raw)}"
            raise FieldError("price_overrides", f"{where}: {problem}")
        values[key] = float(raw)
    aliases = entry.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise FieldError("price_overrides", f"{where}: 'aliases' must be a list of names")
    if len(aliases) > MAX_ALIASES:
        raise FieldError("price_overrides", f"{where}: 'aliases' has {len(aliases)} names; at most {MAX_ALIASES}")
    entry_source = entry.get("source", source)
    if not isinstance(entry_source, str) or len(entry_source) > MAX_NAME_CHARS:
        raise FieldError("price_overrides", f"{where}: 'source' must be a short text (at most {MAX_NAME_CHARS} characters)")
    return (
        ModelPrice(model, values["input"], values["output"], values["cached_input"], entry_source, values.get("reasoning_output")),
        [_name(a, "an alias").strip().lower() for a in aliases],
    )


def _name(raw: str | int | float, what: str) -> str:
    """A model name or alias from the overrides: short, no control or invisible characters."""
    name = str(raw)
    if len(name) > MAX_NAME_CHARS or any(unicodedata.category(ch) in _INVISIBLE for ch in name):
        raise FieldError("price_overrides", f"{quote(name)} is not usable as {what}: at most {MAX_NAME_CHARS} characters, no control characters")
    return name


def _shown(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**18:
        return "a number too large to use"
    return quote(value) if isinstance(value, str | int | float) else f"a {type(value).__name__}"


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
