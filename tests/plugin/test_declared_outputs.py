"""Every tool's successful outputs, through the plugin runtime, against its YAML `output_schema`: every
declared variable is present with its declared JSON type, on every successful run, known or not. A
workflow's If/Else fails on a missing variable ("Variable [...] not found") and an Answer prints a
missing variable's selector, so "unknown" is told by a value, never by absence: the type's empty value
("", 0, false, [], {}) and, where 0 could pass for a measurement, a `*_known` flag. Null is never sent
(the Dify API before langgenius/dify PR #30082 refuses it and fails the node)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.plugin_process import PluginProcess, ToolOutcome

pytestmark = [pytest.mark.redis, pytest.mark.runtime]

TOOLS = Path(__file__).resolve().parents[2] / "tools"
REDIS_URL = "redis://127.0.0.1:6379/15"  # jobs and approvals are scoped by workspace; ids below are unique
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "object": (dict,), "array": (list,),
}


def declared(tool: str) -> dict[str, Any]:
    return yaml.safe_load((TOOLS / f"{tool}.yaml").read_text(encoding="utf-8"))["output_schema"]["properties"]


def assert_every_declared_output(tool: str, outcome: ToolOutcome) -> dict[str, Any]:
    """The outcome succeeded and carries each declared variable with its declared type, and no null."""
    assert outcome.ok, outcome.error
    schema = declared(tool)
    variables = outcome.variables
    missing = set(schema) - set(variables)
    assert not missing, f"{tool}: declared outputs not emitted: {sorted(missing)}"
    for name, value in variables.items():
        assert value is not None, (tool, name)
        if name not in schema:
            continue
        kind = schema[name]["type"]
        ok = isinstance(value, JSON_TYPES[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))
        assert ok, f"{tool}: {name} = {value!r} is not a JSON {kind}"
    return variables


def with_redis(credentials: dict[str, Any]) -> dict[str, Any]:
    return {**credentials, "redis_url": REDIS_URL}


@pytest.mark.parametrize(
    ("tool", "params"),
    [
        ("chat", {"prompt": "schema check"}),
        ("chat", {"prompt": "schema check", "max_cost_usd": 0.0000001}),  # refused by the call budget: not sent
        ("stream_chat", {"prompt": "schema check"}),
        ("stream_chat", {"prompt": "schema check [[sim: reasoning]]", "stream_reasoning": True, "budgets": "user: {day: 1}"}),
        ("batch_chat", {"prompts": '["a", "b [[sim: 400x1]]"]'}),
        ("batch_chat", {"prompts": '["a", "b"]', "batch_budget_usd": 0.0000001}),
        ("approval_route", {"request_id": "OUT-route", "content": "Two train tickets.", "amount": 320, "currency": "USD",
                            "request_type": "travel", "requester_id": "amy"}),
        ("approval_route", {"request_id": "OUT-rules", "content": "Two train tickets.", "amount": 320, "currency": "USD",
                            "request_type": "travel", "requester_id": "amy", "model": "none"}),
        ("approval_status", {"request_id": "OUT-never-stored"}),
        ("approval_transition", {"request_id": "OUT-carried", "state": "pending", "version": 1, "requester_id": "amy",
                                 "required_level": "manager", "event": "claim", "actor_id": "bob", "actor_level": "manager"}),
        ("approval_dead_letters", {"action": "list"}),
    ],
)
def test_every_declared_output_is_present_with_its_type(plugin: PluginProcess, credentials, tool: str, params: dict[str, Any]) -> None:
    if tool.startswith("approval_") and "request_id" in params:
        params = {**params, "request_id": f"{params['request_id']}-{uuid.uuid4().hex[:8]}"}
    # approval_transition here carries the request's state itself (a workflow without a store); the rest use Redis.
    creds = credentials if tool == "approval_transition" else with_redis(credentials)
    assert_every_declared_output(tool, plugin.run_tool(tool, params, creds, timeout=120))


def test_an_unknown_price_is_cost_known_false_and_zero(plugin: PluginProcess, credentials) -> None:
    unpriced = assert_every_declared_output("chat", plugin.run_tool("chat", {"prompt": "price?", "custom_model": "mystery-1"}, credentials))
    assert (unpriced["cost_known"], unpriced["cost_usd"]) == (False, 0)
    priced = assert_every_declared_output("chat", plugin.run_tool("chat", {"prompt": "price?"}, credentials))
    assert priced["cost_known"] is True and priced["cost_usd"] > 0
    batch = assert_every_declared_output("batch_chat", plugin.run_tool("batch_chat", {"prompts": '["a"]', "custom_model": "mystery-1"}, credentials))
    assert (batch["total_cost_known"], batch["total_cost_usd"]) == (False, 0)


def test_an_interrupted_stream_has_an_empty_finish_reason(plugin: PluginProcess, credentials) -> None:
    cut = assert_every_declared_output("stream_chat", plugin.run_tool("stream_chat", {"prompt": "tell me [[sim: cut]]"}, credentials))
    assert cut["interrupted"] is True and cut["finish_reason"] == "" and cut["error"]
    whole = assert_every_declared_output("stream_chat", plugin.run_tool("stream_chat", {"prompt": "tell me"}, credentials))
    assert whole["interrupted"] is False and whole["finish_reason"] == "stop"
    assert whole["ttft_known"] is True and whole["ttft_ms"] > 0


def test_job_tools_declare_everything_they_emit_and_variables_come_before_files(plugin: PluginProcess, credentials) -> None:
    creds = with_redis(credentials)
    submitted = assert_every_declared_output("batch_submit", plugin.run_tool(
        "batch_submit", {"prompts": json.dumps([f"outputs item {n} {uuid.uuid4().hex}" for n in range(3)])}, creds, timeout=120))
    job_id = submitted["job_id"]
    deadline = time.monotonic() + 90
    while True:
        status = assert_every_declared_output("batch_status", plugin.run_tool("batch_status", {"job_id": job_id}, creds, timeout=120))
        if status["finished"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status["finished"], status
    results = plugin.run_tool("batch_results", {"job_id": job_id}, creds, timeout=120)
    page = assert_every_declared_output("batch_results", results)
    assert page["next_offset"] == page["total"] == 3 and len(page["results"]) == 3 and page["files_attached"]
    kinds = [m["type"] for m in results.messages]
    assert "blob_chunk" in kinds or "blob" in kinds, kinds
    last_variable = max(i for i, kind in enumerate(kinds) if kind == "variable")
    first_file = min(i for i, kind in enumerate(kinds) if kind.startswith("blob"))
    assert last_variable < first_file, "a runtime that stores no tool files must still get every variable first"
    assert_every_declared_output("batch_cancel", plugin.run_tool("batch_cancel", {"job_id": job_id}, creds, timeout=120))
