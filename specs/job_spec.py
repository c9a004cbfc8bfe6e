"""JobSpec: batch_submit's settings (everything but the items), parsed in one pass and JSON-serialisable, so
a job stores it as it is (`to_dict`) and every worker builds each item's request from it (`from_dict`,
`request_for`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.models import ChatRequest
from gateway.spend.budget import BudgetPolicy
from specs.batch_spec import concurrency_param, limit_settings
from specs.chat_spec import ChatSpec, effective_budget, with_json_instruction, workflow_budget
from specs.model import ModelChoice, resolve_model
from specs.params import Params, choice_param, number_param

if TYPE_CHECKING:
    from gateway.call.batch import BatchItem
    from gateway.spend.pricing import PriceTable

MODES = ("workers", "native", "auto")
MAX_LEASE_SECONDS = 3600
MAX_DEADLINE_HOURS = 24 * 365


def budget_to_dict(policy: BudgetPolicy | None) -> dict[str, Any] | None:
    """A workflow's budget (limits, call, batch, max_tokens: a workflow sets nothing else) as JSON."""
    if policy is None:
        return None
    return {"limits": [list(limit) for limit in policy.limits], "call": policy.call, "batch": policy.batch, "max_tokens": policy.max_tokens}


def budget_from_dict(data: dict[str, Any] | None) -> BudgetPolicy | None:
    if data is None:
        return None
    limits = tuple((str(scope), str(period), float(usd)) for scope, period, usd in data["limits"])
    return BudgetPolicy(limits=limits, call=data["call"], batch=data["batch"], max_tokens=data["max_tokens"])


@dataclass(frozen=True)
class JobSpec:
    """A job's shared request settings and how it runs. `system_prompt` is final: in JSON mode it already
    says JSON (a job's prompts are not known when it is stored, so only the system prompt is looked at)."""

    model: ModelChoice = field(default_factory=ModelChoice)
    system_prompt: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None
    concurrency: int = 10
    rpm_limit: int = 0
    tpm_limit: int = 0
    lease_seconds: int = 60
    mode: str = "workers"
    deadline_hours: float = 0
    budget: BudgetPolicy | None = None  # the workflow's; the administrator's is applied when the job is submitted

    @classmethod
    def parse(cls, params: Params, prices: PriceTable, *, first_prompt: str) -> JobSpec:
        chat = ChatSpec.parse(params, prices, prompt=first_prompt)
        system_prompt = chat.system_prompt
        if chat.response_format is not None:
            system_prompt = with_json_instruction(system_prompt, mentioned_in=system_prompt)
        concurrency = concurrency_param(params)
        limits = limit_settings(params)
        return cls(
            model=chat.model,
            system_prompt=system_prompt,
            temperature=chat.temperature,
            top_p=chat.top_p,
            max_tokens=chat.max_tokens,
            seed=chat.seed,
            stop=chat.stop,
            response_format=chat.response_format,
            concurrency=concurrency,
            rpm_limit=limits.rpm,
            tpm_limit=limits.tpm,
            lease_seconds=number_param(params, "lease_seconds", default=60, minimum=2, maximum=MAX_LEASE_SECONDS, integer=True),
            mode=choice_param(params, "mode", MODES, "workers"),
            deadline_hours=number_param(params, "deadline_hours", default=0, minimum=0, maximum=MAX_DEADLINE_HOURS),
            budget=workflow_budget(params, batch="batch_budget_usd"),
        )

    def budget_under(self, admin: BudgetPolicy | None) -> BudgetPolicy | None:
        """The administrator's budgets tightened by this job's."""
        return effective_budget(admin, self.budget)

    def request_settings(self) -> dict[str, Any]:
        """The shared request settings as a job's settings have always held them (model as given)."""
        return {
            "model": self.model.name,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": list(self.stop) or None,
            "response_format": self.response_format,
        }

    def system_prompt_for(self, item: BatchItem) -> str:
        return item.system_prompt if item.system_prompt is not None else self.system_prompt

    def model_for(self, item: BatchItem, *, default_model: str, prices: PriceTable) -> str:
        """The model an item goes to: its own (free text) or the job's, resolved by `resolve_model`."""
        choice = ModelChoice(item.model, free_text=True) if item.model else self.model
        model, _routing = resolve_model(
            choice, default_model=default_model, prices=prices, prompt=item.prompt, system_prompt=self.system_prompt_for(item),
            json_output=self.response_format is not None,
        )
        return model

    def request_for(self, item: BatchItem, *, default_model: str, prices: PriceTable) -> ChatRequest:
        """One item's request: its own system_prompt, model and max_tokens win over the job's."""
        return ChatRequest.from_prompt(
            item.prompt,
            system_prompt=self.system_prompt_for(item),
            model=self.model_for(item, default_model=default_model, prices=prices),
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=item.max_tokens or self.max_tokens,
            seed=self.seed,
            stop=list(self.stop) or None,
            response_format=self.response_format,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.request_settings(),
            "model": self.model.to_dict(),
            "concurrency": self.concurrency,
            "rpm_limit": self.rpm_limit,
            "tpm_limit": self.tpm_limit,
            "lease_seconds": self.lease_seconds,
            "mode": self.mode,
            "deadline_hours": self.deadline_hours,
            "budget": budget_to_dict(self.budget),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        return cls(
            model=ModelChoice.from_dict(data["model"]),
            system_prompt=data["system_prompt"],
            temperature=data["temperature"],
            top_p=data["top_p"],
            max_tokens=data["max_tokens"],
            seed=data["seed"],
            stop=tuple(data["stop"] or ()),
            response_format=data["response_format"],
            concurrency=data["concurrency"],
            rpm_limit=data["rpm_limit"],
            tpm_limit=data["tpm_limit"],
            lease_seconds=data["lease_seconds"],
            mode=data["mode"],
            deadline_hours=data["deadline_hours"],
            budget=budget_from_dict(data["budget"]),
        )
