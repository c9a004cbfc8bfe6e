"""batch_chat through the plugin runtime: every item accounted for, real parallelism under gevent,
RPM respected, and a failing model tripping the circuit breaker."""

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess


def run_batch(plugin: PluginProcess, credentials: dict[str, Any], prompts: list[Any], **params: Any) -> dict[str, Any]:
    outcome = plugin.run_tool("batch_chat", {"prompts": json.dumps(prompts), **params}, credentials, timeout=300)
    assert outcome.ok, outcome.error
    return outcome.variables


def test_a_thousand_items_with_injected_faults_each_get_exactly_one_result_in_order(plugin, sim: SimulatorProcess, credentials) -> None:
    sim.configure(fault_rate=0.2, fault_mix=["429", "500", "503", "reset_before"], seed=11)
    prompts = [f"ticket {i}" for i in range(1000)]
    out = run_batch(plugin, credentials, prompts, concurrency=50)
    stats = sim.stats()

    results = out["results"]
    assert [r["id"] for r in results] == [str(i) for i in range(1000)]
    assert {r["status"] for r in results} <= {"ok", "error"}
    assert out["succeeded"] + out["failed"] == 1000 and out["failed"] < 100
    for prompt, result in zip(prompts, results, strict=True):
        # The attempts reported are the requests the gateway saw: nothing sent twice behind our back.
        assert result["attempts"] == stats["chat_requests_by_prompt"][prompt], prompt
        if result["status"] == "ok":
            assert result["text"] == f"[deepseek-v3.2] You said: {prompt}"
        else:
            assert result["error"] and "Traceback" not in result["error"]
    # No duplicate billing: one successful (billed) response per succeeded item, none for failed ones.
    assert stats["responses_by_status"].get("200", 0) == out["succeeded"]
    retried = [r for r in results if r["attempts"] > 1]
    assert retried, "the injected faults were not retried"
    # A reset after sending may already be billed: such items stop there and say why.
    assert any("not retried" in (r["error"] or "") for r in results)
    # failed_items is valid `prompts` input, ready to feed back in; each keeps its original id.
    assert json.loads(out["failed_items"]) == [
        {"id": r["id"], "prompt": p} for p, r in zip(prompts, results, strict=True) if r["status"] != "ok"
    ]
    assert out["total_cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in results))


def test_fifty_items_at_200ms_run_in_parallel_under_the_gevent_runtime(plugin, sim: SimulatorProcess, credentials) -> None:
    sim.configure(latency_ms=200)
    out = run_batch(plugin, credentials, [f"parallel {i}" for i in range(50)], concurrency=50)
    assert out["succeeded"] == 50
    assert sim.stats()["max_concurrency"] >= 40  # the gateway saw them in flight together
    assert out["wall_ms"] < 0.5 * 50 * 200  # serial would take 10 s; generous bound for a noisy machine


def test_rpm_limit_set_to_the_gateways_is_never_exceeded_and_nearly_reached(plugin, sim: SimulatorProcess, credentials) -> None:
    sim.configure(rpm_limit=1200)  # 20 requests per second
    started = time.monotonic()
    out = run_batch(plugin, credentials, [f"paced {i}" for i in range(140)], concurrency=30, rpm_limit=1200)
    elapsed = time.monotonic() - started
    stats = sim.stats()
    assert stats["rate_limited"] == 0 and stats["responses_by_status"].get("429", 0) == 0
    assert out["succeeded"] == 140
    assert 140 / elapsed >= 0.9 * 20


def test_invalid_batch_input_names_the_problem(plugin, sim: SimulatorProcess, credentials) -> None:
    cases = {
        "[]": "empty",
        "[1, 2": "JSON",
        json.dumps(["ok", {"id": "x"}]): "prompts[1]",
        json.dumps(["p"] * 1001): "1000",
    }
    for prompts, named in cases.items():
        outcome = plugin.run_tool("batch_chat", {"prompts": prompts}, credentials)
        assert not outcome.ok and named in outcome.error_message, (prompts[:30], outcome.error_message)
    outcome = plugin.run_tool("batch_chat", {"prompts": '["a"]', "concurrency": 500}, credentials)
    assert not outcome.ok and "'concurrency'" in outcome.error_message
    assert sim.stats()["requests_by_path"].get("/v1/chat/completions", 0) == 0


def test_plain_text_one_prompt_per_line_comes_back_in_the_same_format(plugin, sim: SimulatorProcess, credentials) -> None:
    outcome = plugin.run_tool("batch_chat", {"prompts": "first\nsecond [[sim: 400x1]]\nthird"}, credentials)
    out = outcome.variables
    assert [r["status"] for r in out["results"]] == ["ok", "error", "ok"]
    assert out["failed_items"] == "second [[sim: 400x1]]"


# ----------------------------------------------------------------------------- circuit breaker


@pytest.fixture(scope="module")
def breaker_env() -> Iterator[tuple[PluginProcess, SimulatorProcess]]:
    """A plugin process and gateway of this module's own: breaker state lives per process and base URL."""
    with SimulatorProcess() as sim, PluginProcess() as plugin:
        yield plugin, sim


def test_breaker_opens_fails_fast_half_opens_and_closes(breaker_env) -> None:
    plugin, sim = breaker_env
    creds = {"api_key": sim.api_key, "base_url": sim.base_url, "max_retries": "0"}
    failing = [f"down {i} [[sim: 503x9]]" for i in range(30)]
    out = run_batch(plugin, creds, failing, concurrency=1)
    codes = Counter(r["error_code"] for r in out["results"])
    sent = sim.stats()["requests_by_path"]["/v1/chat/completions"]
    assert out["failed"] == 30 and len(json.loads(out["failed_items"])) == 30
    assert sent == 5  # the default threshold: after 5 failures the breaker opens ...
    assert codes["circuit_open"] == 25  # ... and the rest fail fast without being sent
    assert all(r["attempts"] == 0 for r in out["results"] if r["error_code"] == "circuit_open")

    fast = plugin.run_tool("chat", {"prompt": "still down?"}, creds)
    assert not fast.ok and "circuit open" in fast.error_message
    other_model = plugin.run_tool("chat", {"prompt": "other model", "model": "gpt-4.1"}, creds)
    assert other_model.ok  # the breaker is per (base URL, model)
    with_fallback = plugin.run_tool("chat", {"prompt": "fallback please"}, {**creds, "fallback_models": "gpt-4.1-mini"})
    assert with_fallback.ok and with_fallback.variables["model"] == "gpt-4.1-mini"

    time.sleep(15.5)  # the default cooldown: the breaker half-opens and lets one probe through
    probe = plugin.run_tool("chat", {"prompt": "probe"}, creds)
    assert probe.ok and probe.text == "[deepseek-v3.2] You said: probe"
    after = run_batch(plugin, creds, [f"healthy {i}" for i in range(10)], concurrency=5)
    assert after["succeeded"] == 10  # closed again


def test_items_that_cannot_finish_before_the_batch_deadline_are_not_run_with_the_reason(plugin, sim: SimulatorProcess, credentials) -> None:
    sim.configure(latency_ms=1500)
    out = run_batch(plugin, {**credentials, "timeout_seconds": "7"}, [f"late {i}" for i in range(4)], concurrency=1)
    statuses = [r["status"] for r in out["results"]]
    assert statuses[0] == "ok" and statuses[-1] == "not_run"
    skipped = [r for r in out["results"] if r["status"] == "not_run"]
    assert all("deadline" in r["error"] and r["attempts"] == 0 for r in skipped)
    sent = sim.stats()["requests_by_path"]["/v1/chat/completions"]
    assert sent == len(statuses) - len(skipped)  # not_run items were never sent
    assert [item["id"] for item in json.loads(out["failed_items"])] == [r["id"] for r in skipped]


def test_tpm_limit_set_to_the_gateways_is_never_exceeded_and_really_binds(plugin, sim: SimulatorProcess, credentials) -> None:
    """Tokens are reserved before sending (prompt estimate + max_tokens) and settled with the real
    usage, so the gateway's own token budget never runs dry under us."""
    sim.configure(tpm_limit=1200)  # 20 tokens per second, a minute's budget up front
    prompts = [f"token budget item {i}" for i in range(66)]
    started = time.monotonic()
    out = run_batch(plugin, credentials, prompts, concurrency=10, tpm_limit=1200, max_tokens=20)
    elapsed = time.monotonic() - started
    stats = sim.stats()
    assert stats["rate_limited"] == 0 and out["succeeded"] == 66
    used = sum(r["usage"]["total_tokens"] for r in out["results"])
    assert used > 1200  # more than the up-front budget: the limit really bound the batch
    assert used <= 1200 + 20 * elapsed + 20  # never more than the budget allowed (one reply of slack)
