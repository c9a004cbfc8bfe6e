"""ChatSpec: the chat parameters chat, stream_chat, batch_chat and batch_submit share (prompt, system_prompt,
model/custom_model, temperature, top_p, max_tokens, json_output/json_schema, seed, stop) and the spend
options (budgets, max_cost_usd, batch_budget_usd, cache), parsed in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gateway.errors import FieldError
from gateway.models import ChatRequest
from gateway.spend.budget import BudgetPolicy, parse_budgets
from gateway.spend.cache import MODES as CACHE_MODES
from specs.model import ModelChoice, model_choice, resolve_model
from specs.params import Params, bool_param, choice_param, number_param, text_param
from untrusted import InputError, parse_json

if TYPE_CHECKING:
    from gateway.call.batch import BatchItem
    from gateway.models import RoutingDecision
    from gateway.spend.pricing import PriceTable

# OpenAI-compatible JSON mode refuses a request whose messages never mention JSON.
JSON_ONLY = "Respond with a JSON object only."
MAX_SCHEMA_CHARS = 100_000
MAX_BUDGETS_CHARS = 20_000
MAX_STOP_SEQUENCES = 4


def with_json_instruction(system_prompt: str, *, mentioned_in: str) -> str:
    """The system prompt of a JSON-mode request, told to answer in JSON unless `mentioned_in` (the
    messages the request sends) already says JSON."""
    if "json" in mentioned_in.lower():
        return system_prompt
    return (system_prompt + "\n\n" if system_prompt else "") + JSON_ONLY


def response_format_param(params: Params) -> dict[str, Any] | None:
    """`json_schema` (a JSON Schema of an object) or `json_output` as the request's response_format."""
    schema_text = text_param(params, "json_schema", max_chars=MAX_SCHEMA_CHARS).strip()
    if schema_text:
        try:
            schema = parse_json(schema_text, max_bytes=MAX_SCHEMA_CHARS, max_depth=32)
        except InputError as exc:
            raise FieldError("json_schema", str(exc)) from None
        if not isinstance(schema, dict):
            raise FieldError("json_schema", "must be a JSON object describing the output (a JSON Schema)")
        if "schema" in schema and isinstance(schema["schema"], dict):
            name, inner = str(schema.get("name") or "output"), schema["schema"]
        else:
            name, inner = "output", schema
        if inner.get("type", "object") != "object":
            raise FieldError("json_schema", 'must describe an object: its top-level "type" must be "object"')
        if "properties" in inner and not isinstance(inner["properties"], dict):
            raise FieldError("json_schema", '"properties" must be an object mapping names to schemas')
        return {"type": "json_schema", "json_schema": {"name": name, "schema": inner, "strict": False}}
    if bool_param(params, "json_output"):
        return {"type": "json_object"}
    return None


def workflow_budget(params: Params, *, per_call: str = "max_cost_usd", batch: str | None = None) -> BudgetPolicy | None:
    """The workflow's `budgets`, tightened by `max_cost_usd` (per call; per item in a batch) and the
    batch's or job's `batch_budget_usd`; None when the workflow sets none."""
    workflow = parse_budgets(text_param(params, "budgets", max_chars=MAX_BUDGETS_CHARS), field_name="budgets", admin=False)
    call_limit = number_param(params, per_call, default=None, minimum=0, maximum=1_000_000, allow_none=True)
    batch_limit = number_param(params, batch, default=None, minimum=0, maximum=1_000_000, allow_none=True) if batch else None
    if call_limit is not None or batch_limit is not None:
        workflow = (workflow or BudgetPolicy()).tightened(BudgetPolicy(call=call_limit, batch=batch_limit))
    return workflow


def effective_budget(admin: BudgetPolicy | None, workflow: BudgetPolicy | None) -> BudgetPolicy | None:
    """The administrator's budgets (the credential) tightened by the workflow's: a workflow never loosens."""
    if admin is None:
        return workflow if workflow is not None and workflow.active else None
    return admin.tightened(workflow)


def cache_mode(params: Params) -> str:
    return choice_param(params, "cache", CACHE_MODES, "auto")


@dataclass(frozen=True)
class SpendSpec:
    """The workflow's spend options: its budget (None: the administrator's alone) and the reply cache mode."""

    budget: BudgetPolicy | None = None
    cache: str = "auto"

    @classmethod
    def parse(cls, params: Params, *, batch: str | None = None) -> SpendSpec:
        return cls(budget=workflow_budget(params, batch=batch), cache=cache_mode(params))

    def budget_under(self, admin: BudgetPolicy | None) -> BudgetPolicy | None:
        return effective_budget(admin, self.budget)


@dataclass(frozen=True)
class ChatSpec:
    """One chat request as the workflow asked for it; `request` resolves the model and builds it."""

    prompt: str
    system_prompt: str = ""
    model: ModelChoice = field(default_factory=ModelChoice)
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None

    @classmethod
    def parse(cls, params: Params, prices: PriceTable, *, prompt: str | None = None) -> ChatSpec:
        """The shared chat parameters, in the order they were always checked (the first bad one is named).
        `prompt`: a batch's first prompt, for tools without a `prompt` parameter."""
        prompt = text_param(params, "prompt", required=True) if prompt is None else prompt
        system_prompt = text_param(params, "system_prompt")
        response_format = response_format_param(params)
        model = model_choice(params, prices)
        stop = text_param(params, "stop")
        return cls(
            prompt=prompt,
            system_prompt=system_prompt,
            model=model,
            temperature=number_param(params, "temperature", default=None, minimum=0, maximum=2, allow_none=True),
            top_p=number_param(params, "top_p", default=None, minimum=0, maximum=1, allow_none=True),
            max_tokens=number_param(params, "max_tokens", default=None, minimum=1, maximum=1_000_000, integer=True, allow_none=True),
            seed=number_param(params, "seed", default=None, integer=True, allow_none=True),
            stop=tuple([s for s in stop.split("\n") if s][:MAX_STOP_SEQUENCES]),
            response_format=response_format,
        )

    def for_item(self, item: BatchItem) -> ChatSpec:
        """This spec with a batch item's prompt and its own system_prompt, model and max_tokens."""
        changes: dict[str, Any] = {"prompt": item.prompt}
        if item.system_prompt is not None:
            changes["system_prompt"] = text_param({"system_prompt": item.system_prompt}, "system_prompt")
        if item.model:
            changes["model"] = ModelChoice(
                text_param({"custom_model": item.model}, "custom_model", max_chars=200).strip() or item.model, free_text=True
            )
        if item.max_tokens is not None:
            changes["max_tokens"] = number_param(
                {"max_tokens": item.max_tokens}, "max_tokens", default=None, minimum=1, maximum=1_000_000, integer=True, allow_none=True
            )
        return replace(self, **changes)

    def request(self, *, default_model: str, prices: PriceTable) -> tuple[ChatRequest, RoutingDecision | None]:
        """The request sent to the gateway, with the model resolved (specs.model) and, in JSON mode,
        the system prompt told to answer in JSON when no message mentions it."""
        json_output = self.response_format is not None
        model, routing = resolve_model(
            self.model, default_model=default_model, prices=prices, prompt=self.prompt, system_prompt=self.system_prompt, json_output=json_output
        )
        system_prompt = self.system_prompt
        if json_output:
            system_prompt = with_json_instruction(system_prompt, mentioned_in=f"{system_prompt}\n{self.prompt}")
        request = ChatRequest.from_prompt(
            self.prompt,
            system_prompt=system_prompt,
            model=model,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            stop=list(self.stop) or None,
            response_format=self.response_format,
        )
        return request, routing


@dataclass(frozen=True)
class ChatToolSpec:
    """chat and stream_chat: the request, the spend options and (stream_chat) whether reasoning streams live."""

    chat: ChatSpec
    spend: SpendSpec
    stream_reasoning: bool = False

    @classmethod
    def parse(cls, params: Params, prices: PriceTable, *, streaming: bool = False) -> ChatToolSpec:
        chat = ChatSpec.parse(params, prices)
        spend = SpendSpec.parse(params)
        return cls(chat, spend, bool_param(params, "stream_reasoning") if streaming else False)
