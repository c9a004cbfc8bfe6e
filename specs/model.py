"""The one place that decides which model a call goes to.

Every tool and the jobs' workers resolve a model here: `custom_model` (free text) wins over the `model`
select; empty or `default` is the provider's default model (or, for approval_route's guard, the main
model); `auto` routes by the prompt (gateway.call.routing.ModelRouter). The reserved words are read in any case
and with surrounding spaces (approval_route's free-text `model` always did), so the word `default` or
`auto` is never sent to the gateway as a model name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.call.routing import AUTO, ModelRouter
from gateway.errors import FieldError
from specs.params import Params, text_param
from untrusted import quote

if TYPE_CHECKING:
    from gateway.models import RoutingDecision
    from gateway.spend.pricing import PriceTable

DEFAULT = "default"
MAX_MODEL_PARAM_CHARS = 200


@dataclass(frozen=True)
class ModelChoice:
    """A model as the workflow gave it, before it is resolved: `default`, `auto` or a model name.
    `free_text`: any name the gateway serves (custom_model, approval_route's model, a batch item's model);
    otherwise one of the select's values, checked against the price table when parsed."""

    name: str = DEFAULT
    free_text: bool = False

    @property
    def is_default(self) -> bool:
        return not self.name.strip() or self.name.strip().lower() == DEFAULT

    @property
    def is_auto(self) -> bool:
        return self.name.strip().lower() == AUTO

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "free_text": self.free_text}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelChoice:
        return cls(str(data.get("name") or DEFAULT), bool(data.get("free_text")))


def model_choice(params: Params, prices: PriceTable) -> ModelChoice:
    """The `custom_model` and `model` parameters; a select value the price table does not know is refused."""
    custom = text_param(params, "custom_model", max_chars=MAX_MODEL_PARAM_CHARS).strip()
    choice = ModelChoice(custom or str(params.get("model") or "").strip() or DEFAULT, free_text=bool(custom))
    if not choice.free_text and not choice.is_default and not choice.is_auto and prices.resolve(choice.name) is None:
        known = ", ".join([DEFAULT, AUTO, *prices.models])
        raise FieldError("model", f"must be one of {known} (or set 'custom_model'); got {quote(choice.name)}")
    return choice


def resolve_model(
    choice: ModelChoice, *, default_model: str, prices: PriceTable, prompt: str, system_prompt: str = "", json_output: bool = False
) -> tuple[str, RoutingDecision | None]:
    """The model name sent to the gateway, and the routing decision when `auto` chose it."""
    if choice.is_default:
        return default_model, None
    if choice.is_auto:
        decision = ModelRouter.bundled().choose(prompt, system_prompt=system_prompt, json_output=json_output, prices=prices)
        return decision.model, decision
    return choice.name, None
