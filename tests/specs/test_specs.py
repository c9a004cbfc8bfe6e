"""specs/: a tool's parameters parsed once into a spec, and the model resolved in one function."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from gateway.call.batch import BatchItem
from gateway.errors import FieldError
from gateway.spend.pricing import PriceTable
from specs.approval_specs import RouteSpec
from specs.chat_spec import JSON_ONLY, ChatSpec, ChatToolSpec
from specs.job_spec import JobSpec
from specs.model import ModelChoice, model_choice, resolve_model

ROOT = Path(__file__).resolve().parents[2]
PRICES = PriceTable.bundled()
DEFAULT_MODEL = "deepseek-v3.2"


def resolved(choice: ModelChoice, prompt: str = "hi") -> str:
    return resolve_model(choice, default_model=DEFAULT_MODEL, prices=PRICES, prompt=prompt)[0]


@pytest.mark.parametrize("word", ["default", "DEFAULT", " Default ", ""])
def test_default_in_any_case_is_the_providers_default_model(word: str) -> None:
    assert resolved(ModelChoice(word, free_text=True)) == DEFAULT_MODEL
    assert resolved(model_choice({"model": word}, PRICES)) == DEFAULT_MODEL


def test_custom_model_wins_over_the_select() -> None:
    assert resolved(model_choice({"model": "gpt-4.1", "custom_model": " my-model "}, PRICES)) == "my-model"


def test_auto_routes_by_the_prompt_and_says_why() -> None:
    model, decision = resolve_model(ModelChoice("auto"), default_model="never-this", prices=PRICES, prompt="hello")
    assert decision is not None and model == decision.model and model in PRICES.models


def test_an_unknown_select_value_is_refused_naming_the_known_models() -> None:
    with pytest.raises(FieldError) as refused:
        model_choice({"model": "nope"}, PRICES)
    assert refused.value.field == "model"
    assert refused.value.problem.startswith("must be one of default, auto, ") and "(or set 'custom_model'); got 'nope'" in refused.value.problem


def test_json_mode_tells_the_model_once_and_only_when_no_message_says_json() -> None:
    request, _ = ChatSpec.parse({"prompt": "hi", "json_output": True}, PRICES).request(default_model=DEFAULT_MODEL, prices=PRICES)
    assert request.messages[0] == {"role": "system", "content": JSON_ONLY}
    request, _ = ChatSpec.parse({"prompt": "answer in JSON", "json_output": True}, PRICES).request(default_model=DEFAULT_MODEL, prices=PRICES)
    assert [m["role"] for m in request.messages] == ["user"]


def test_a_batch_item_brings_its_own_model_and_max_tokens() -> None:
    shared = ChatSpec.parse({"prompt": "x", "model": "gpt-4.1", "max_tokens": 50}, PRICES)
    request, _ = shared.for_item(BatchItem(0, "a", "p", model="default", max_tokens=7)).request(default_model=DEFAULT_MODEL, prices=PRICES)
    assert (request.model, request.max_tokens, request.messages[-1]["content"]) == (DEFAULT_MODEL, 7, "p")


def test_the_chat_tool_spec_reads_spend_and_stream_options() -> None:
    spec = ChatToolSpec.parse({"prompt": "hi", "cache": "off", "max_cost_usd": 0.5, "stream_reasoning": "true"}, PRICES, streaming=True)
    assert (spec.spend.cache, spec.spend.budget.call, spec.stream_reasoning) == ("off", 0.5, True)


def test_a_job_spec_survives_json_as_it_is() -> None:
    params = {"model": "auto", "system_prompt": "be brief", "json_output": True, "temperature": 0.2, "stop": "a\nb",
              "budgets": "{user: {day: 2}}", "max_cost_usd": 0.1, "batch_budget_usd": 3, "mode": "auto", "lease_seconds": 30}
    spec = JobSpec.parse(params, PRICES, first_prompt="p")
    again = JobSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert spec.system_prompt.endswith(JSON_ONLY)
    item = BatchItem(3, "x", "write a haiku", model="DEFAULT")
    assert again.request_for(item, default_model=DEFAULT_MODEL, prices=PRICES).model == DEFAULT_MODEL


def test_approval_route_resolves_default_through_the_one_function() -> None:
    params = {"request_id": "r1", "content": "laptop", "amount": 10, "request_type": "purchase", "requester_id": "a", "model": "DEFAULT"}
    spec = RouteSpec.parse(params, {})
    assert spec.models(default_model=DEFAULT_MODEL, prices=PRICES) == (DEFAULT_MODEL, DEFAULT_MODEL)
    assert RouteSpec.parse({**params, "model": "none"}, {}).rules_only


def _string_constants(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


@pytest.mark.parametrize("package", ["tools", "jobs"])
def test_nothing_outside_specs_reads_custom_model_or_decides_what_default_and_auto_mean(package: str) -> None:
    """Every tool and the jobs (submit, its estimate, the workers, the native batch) resolve a model through
    specs.model: no module in tools/ or jobs/ names `custom_model`, the reserved words, the router or a
    model of the price table as a decision of its own (the jobs once priced `auto` as a fixed model)."""
    models = set(PRICES.models)
    paths = sorted((ROOT / package).glob("*.py"))
    assert paths
    for path in paths:
        text = path.read_text(encoding="utf-8")
        constants = _string_constants(path)
        assert "custom_model" not in constants, path.name
        assert not {"default", "auto"} & constants, f"{path.name} compares a model with default or auto"
        assert not models & constants, f"{path.name} names a model of its own: {sorted(models & constants)}"
        assert "ModelRouter" not in text and "routing import AUTO" not in text, path.name


def test_the_jobs_build_every_request_from_the_stored_spec() -> None:
    """The workers, submit's check of the first item and the native batch's lines all go through
    `JobSpec.request_for` (jobs.worker.build_request), and the estimate through `JobSpec.model_for`."""
    worker = (ROOT / "jobs" / "worker.py").read_text(encoding="utf-8")
    service = (ROOT / "jobs" / "service.py").read_text(encoding="utf-8")
    assert "job.spec.request_for(" in worker and "ChatRequest.from_prompt" not in worker
    assert "spec.request_for(" in service and "spec.model_for(" in service and "ChatRequest" not in service


@pytest.mark.parametrize("tool", ["chat", "stream_chat", "batch_chat", "batch_submit", "approval_route"])
def test_every_model_tool_builds_its_request_from_a_spec(tool: str) -> None:
    text = (ROOT / "tools" / f"{tool}.py").read_text(encoding="utf-8")
    assert "Spec.parse(" in text and "from specs." in text, tool
