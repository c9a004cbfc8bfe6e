"""A job keeps its JobSpec as it is and every worker builds its items' requests from it; jobs stored by the
previous version (the request's settings flat in the job's settings) are read into the same spec."""

from __future__ import annotations

import json

from gateway.call.batch import BatchItem
from gateway.spend.pricing import PriceTable
from jobs.store import Job, job_settings, stored_spec
from specs.job_spec import JobSpec
from specs.model import ModelChoice, resolve_model

PRICES = PriceTable.bundled()
DEFAULT_MODEL = "deepseek-v3.2"

# What the previous version's batch_submit stored for `custom_model: my-model`, a system prompt, JSON mode
# and a stop sequence, with the job's own settings beside them (jobs.service._job_settings then).
PREVIOUS_SHAPE = {
    "model": "my-model",
    "system_prompt": "be brief\n\nRespond with a JSON object only.",
    "temperature": 0.2,
    "top_p": None,
    "max_tokens": 50,
    "seed": 7,
    "stop": ["END"],
    "response_format": {"type": "json_object"},
    "concurrency": 4,
    "rpm_limit": 60,
    "tpm_limit": 0,
    "lease_seconds": 30,
    "timeout_seconds": 30,
    "max_retries": 2,
}


def request_of(settings: dict[str, object], item: BatchItem) -> dict[str, object]:
    stored = json.loads(json.dumps(settings))  # as it comes back from Redis
    spec = Job("j", "https://gw", "d", stored, 1, "workers").spec
    return spec.request_for(item, default_model=DEFAULT_MODEL, prices=PRICES).payload()


def test_a_job_stores_its_spec_as_it_is() -> None:
    spec = JobSpec(model=ModelChoice("auto"), system_prompt="s", max_tokens=20, stop=("x",), concurrency=3, lease_seconds=9, mode="auto")
    settings = job_settings(spec, timeout_seconds=30, max_retries=2, budget={"job": 1.0})
    assert settings["spec"] == spec.to_dict()
    assert stored_spec(json.loads(json.dumps(settings))) == spec
    assert (settings["timeout_seconds"], settings["max_retries"], settings["budget"]) == (30, 2, {"job": 1.0})


def test_a_job_of_the_previous_version_builds_the_request_it_always_did() -> None:
    assert request_of(PREVIOUS_SHAPE, BatchItem(0, "a", "hello")) == {
        "model": "my-model",
        "messages": [{"role": "system", "content": PREVIOUS_SHAPE["system_prompt"]}, {"role": "user", "content": "hello"}],
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["END"],
        "seed": 7,
        "response_format": {"type": "json_object"},
    }
    spec = stored_spec(PREVIOUS_SHAPE)
    assert (spec.concurrency, spec.rpm_limit, spec.tpm_limit, spec.lease_seconds) == (4, 60, 0, 30)
    assert Job("j", "https://gw", "d", PREVIOUS_SHAPE, 1, "workers").lease_ms == 30_000


def test_an_item_of_a_previous_job_brings_its_own_model_system_prompt_and_max_tokens() -> None:
    item = BatchItem(1, "b", "hi", system_prompt="", model="DEFAULT", max_tokens=5)
    request = request_of(PREVIOUS_SHAPE, item)
    assert (request["model"], request["messages"], request["max_tokens"]) == (DEFAULT_MODEL, [{"role": "user", "content": "hi"}], 5)


def test_the_words_default_and_auto_of_a_previous_job_are_resolved_by_the_one_function() -> None:
    item = BatchItem(0, "a", "hello")
    for word in ("default", "auto", " Auto "):
        expected, _ = resolve_model(
            ModelChoice(word), default_model=DEFAULT_MODEL, prices=PRICES, prompt="hello", system_prompt=str(PREVIOUS_SHAPE["system_prompt"]),
            json_output=True,
        )
        assert request_of({**PREVIOUS_SHAPE, "model": word}, item)["model"] == expected
    assert request_of({"model": "default"}, item)["model"] == DEFAULT_MODEL  # the least the previous version stored
