"""Spend control through the plugin runtime (python -m main) against the simulated gateway: budgets that
stop before they are exceeded (two plugin processes, one Redis), the reply cache, reasoning, pacing."""

import json
import time
import uuid
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from gateway.spend.pricing import PriceTable
from simulator.server import REASONING_TEXT


def real_cost(usage: dict[str, Any], model: str = "gpt-4.1") -> float:
    price = PriceTable.bundled().resolve(model)
    assert price is not None
    return (usage["prompt_tokens"] * price.input + usage["completion_tokens"] * price.output) / 1e6


def test_parallel_calls_from_two_processes_never_spend_past_a_shared_daily_budget(plugin, sim, private_redis) -> None:
    """100 calls at once, half from each of two plugin processes, against one daily budget of 3 cents in
    Redis: the real costs of the calls that ran add up to no more than the budget; every other call says
    it was refused by that budget, and was never sent."""
    creds = {
        "api_key": sim.api_key, "base_url": sim.base_url, "max_retries": "0", "redis_url": private_redis.url,
        "budgets": "plugin: {day: 0.03}",
    }
    prompt = "Summarise this. " + "lorem ipsum dolor sit amet " * 70  # ~2 KB: a reply of ~500 tokens at gpt-4.1 prices
    params = {"prompt": prompt, "model": "gpt-4.1", "max_tokens": 800}
    with PluginProcess() as second:
        running = [(plugin if n % 2 else second).invoke_tool("chat", params, creds, timeout=60) for n in range(100)]
        outcomes = [invocation.outcome() for invocation in running]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:1]
    ran = [o.variables for o in outcomes if not o.variables["budget_exceeded"]]
    refused = [o.variables for o in outcomes if o.variables["budget_exceeded"]]
    spent = sum(real_cost(v["usage"]) for v in ran)
    assert ran and refused
    assert spent <= 0.03
    assert sum(v["cost_usd"] for v in ran) == pytest.approx(spent, rel=1e-6)
    for v in refused:
        assert v["budget"] == "plugin/day" and v["budget_limit_usd"] == 0.03 and v["attempts"] == 0
        assert v["budget_spent_usd"] <= 0.03 and v["budget_resets_at"].endswith("T00:00:00Z")
        assert v["usage"] == {} and v["cost_usd"] == 0 and v["cost_known"] is True  # not sent: nothing used, nothing spent
    assert sim.stats()["requests_by_path"]["/v1/chat/completions"] == len(ran)  # refused calls were never sent
    assert min(v["budget_remaining_usd"] for v in ran) >= 0


@pytest.mark.parametrize("scope", ["user", "app"])
def test_app_and_user_budgets_are_kept_apart_by_the_ids_the_daemon_sends(plugin, sim, credentials, scope: str) -> None:
    """`app` and `user` budgets count per Dify app and per Dify user (the ids the daemon sends with the
    invocation): once one app or user has spent its budget it is refused, and the others are not."""
    other = "app" if scope == "user" else "user"
    creds = {**credentials, "budgets": f"{scope}: {{day: 0.00005}}\n{other}: {{day: 1}}"}
    params = {"prompt": "hello", "model": "deepseek-v3.2", "max_tokens": 100}  # worst case ~4.2e-5 USD a call
    run = uuid.uuid4().hex[:8]  # ids of this test's own: the counters live as long as the plugin process

    def ask(app: str, user: str) -> dict[str, Any]:
        outcome = plugin.run_tool("chat", params, creds, app_id=f"{app}-{run}", user_id=f"{user}-{run}")
        assert outcome.ok, outcome.error
        return outcome.variables

    spent = [ask("app-a", "amy")]
    while not spent[-1]["budget_exceeded"] and len(spent) < 10:
        spent.append(ask("app-a", "amy"))
    assert 1 < len(spent) < 10 and spent[-1]["budget"] == f"{scope}/day"
    if scope == "user":
        assert ask("app-b", "amy")["budget"] == "user/day"  # amy's budget follows her into another app
        assert not ask("app-a", "bob")["budget_exceeded"]  # other users of app-a are not held back
    else:
        assert ask("app-a", "bob")["budget"] == "app/day"  # the app's budget binds every user of it
        assert not ask("app-b", "amy")["budget_exceeded"]  # amy in another app is not held back
    assert sim.stats()["requests_by_path"]["/v1/chat/completions"] == len(spent)  # the refused calls were never sent


def test_a_workflow_can_tighten_but_not_loosen_the_administrators_budget(plugin, sim, credentials) -> None:
    admin = {**credentials, "budgets": "call: 0.001"}
    loosened = plugin.run_tool("chat", {"prompt": "hi", "model": "gpt-4.1", "max_tokens": 1000, "max_cost_usd": 5}, admin)
    assert loosened.ok and loosened.variables["budget_exceeded"] and loosened.variables["budget"] == "call"
    tightened = plugin.run_tool("chat", {"prompt": "hi", "max_tokens": 10, "budgets": "call: 0.0000001"}, admin)
    assert tightened.variables["budget_exceeded"] and tightened.variables["budget_limit_usd"] == 0.0000001
    refused = plugin.run_tool("chat", {"prompt": "hi", "budgets": "downgrade: true"}, admin)
    assert not refused.ok and "administrator" in refused.error_message
    assert sim.stats()["requests_by_path"].get("/v1/chat/completions", 0) == 0


def test_an_unpriced_model_is_refused_under_a_budget_unless_the_administrator_prices_it(plugin, sim, credentials) -> None:
    params = {"prompt": "hi", "custom_model": "mystery-1", "max_tokens": 50}
    refused = plugin.run_tool("chat", params, {**credentials, "budgets": "user: {day: 1}"})
    assert refused.variables["budget_exceeded"] and refused.variables["budget"] == "unpriced_model"
    counted = plugin.run_tool("chat", params, {**credentials, "budgets": "{user: {day: 1}, unpriced: {input: 1, output: 4}}"})
    assert not counted.variables["budget_exceeded"] and counted.variables["budget_remaining_usd"] < 1
    assert any("unpriced price" in w for w in counted.variables["warnings"])


def test_a_call_over_budget_falls_to_a_cheaper_model_when_the_administrator_allows_it(plugin, sim, credentials) -> None:
    creds = {**credentials, "budgets": "{call: 0.002, downgrade: true}"}
    outcome = plugin.run_tool("chat", {"prompt": "hi", "model": "claude-sonnet-4.5", "max_tokens": 1000}, creds)
    assert not outcome.variables["budget_exceeded"]
    assert outcome.variables["model"] != "claude-sonnet-4.5"
    assert any("cheaper model" in w for w in outcome.variables["warnings"])


def test_batch_items_over_the_batch_budget_are_not_run_and_fed_back(plugin, sim, credentials) -> None:
    prompts = json.dumps([{"id": f"p{n}", "prompt": f"item {n} " + "x " * 400} for n in range(20)])  # ~0.002 USD each
    outcome = plugin.run_tool(
        "batch_chat", {"prompts": prompts, "model": "gpt-4.1", "max_tokens": 400, "batch_budget_usd": 0.02, "concurrency": 4}, credentials
    )
    v = outcome.variables
    assert 0 < v["succeeded"] < 20 and v["budget_exceeded"] and v["budget"] == "batch"
    not_run = [r for r in v["results"] if r["status"] == "not_run"]
    assert not_run and all(r["error_code"] == "budget_exceeded" and r["attempts"] == 0 for r in not_run)
    assert {item["id"] for item in json.loads(v["failed_items"])} == {r["id"] for r in not_run}
    assert v["total_cost_usd"] <= 0.02


def test_a_batch_of_repeated_prompts_makes_one_call_per_distinct_prompt_and_redis_shares_the_cache(plugin, sim, private_redis) -> None:
    creds = {"api_key": sim.api_key, "base_url": sim.base_url, "redis_url": private_redis.url}
    prompts = json.dumps([{"id": f"i{n}", "prompt": f"question {n % 50}"} for n in range(200)])
    params = {"prompts": prompts, "temperature": 0, "concurrency": 20}
    first = plugin.run_tool("batch_chat", params, creds).variables
    assert first["succeeded"] == 200
    assert sim.stats()["requests_by_path"]["/v1/chat/completions"] == 50
    assert first["cache_hits"] == 150 and first["cost_saved_usd"] > 0
    hits = [r for r in first["results"] if r["cache"] == "hit"]
    assert all(r["cost_usd"] == 0 and r["attempts"] == 0 and r["cost_saved_usd"] > 0 for r in hits)
    assert first["total_cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in first["results"] if r["cache"] == "miss"))
    with PluginProcess() as other:
        second = other.run_tool("batch_chat", params, creds).variables
    assert second["cache_hits"] == 200 and second["total_cost_usd"] == 0
    assert sim.stats()["requests_by_path"]["/v1/chat/completions"] == 50
    # Sampled requests are not cached unless asked.
    sampled = plugin.run_tool("chat", {"prompt": "question 1", "temperature": 0.7}, creds).variables
    assert sampled["cache"] == "bypass"
    forced = plugin.run_tool("chat", {"prompt": "question 1", "temperature": 0.7, "cache": "on"}, creds).variables
    again = plugin.run_tool("chat", {"prompt": "question 1", "temperature": 0.7, "cache": "on"}, creds).variables
    assert (forced["cache"], again["cache"]) == ("miss", "hit")


@pytest.mark.parametrize("marker", ["reasoning", "think"])
def test_reasoning_is_a_separate_output_priced_and_kept_out_of_the_answer(plugin, sim, credentials, marker) -> None:
    outcome = plugin.run_tool("chat", {"prompt": f"why? [[sim: {marker}]]", "model": "gpt-4.1"}, credentials)
    v = outcome.variables
    assert v["reasoning"] == REASONING_TEXT
    assert outcome.text == "[gpt-4.1] You said: why?"
    assert v["usage"]["reasoning_tokens"] > 0
    assert v["cost_usd"] == pytest.approx(real_cost(v["usage"]))


@pytest.mark.parametrize("marker", ["reasoning", "think"])
def test_streamed_reasoning_stays_out_of_the_answer_stream_unless_asked(plugin, sim, credentials, marker) -> None:
    quiet = plugin.run_tool("stream_chat", {"prompt": f"why? [[sim: {marker}]]"}, credentials)
    assert quiet.text == "[deepseek-v3.2] You said: why?"
    assert not any("<" in chunk or "think" in chunk for chunk in quiet.text_chunks)  # no tag, not even cut in two
    assert quiet.variables["reasoning"] == REASONING_TEXT
    loud = plugin.run_tool("stream_chat", {"prompt": f"why? [[sim: {marker}]]", "stream_reasoning": True}, credentials)
    streamed = [m for m in loud.messages if m.get("type") == "variable" and m["message"].get("stream")]
    assert len(streamed) >= 1 and loud.variables["reasoning"] == REASONING_TEXT
    assert loud.text == quiet.text


def fixed_window_counts(arrivals: list[float]) -> list[int]:
    counts: dict[int, int] = {}
    for t in arrivals:
        counts[int(t)] = counts.get(int(t), 0) + 1
    return list(counts.values())


def test_a_configured_rpm_limit_is_never_rejected_by_a_gateway_counting_per_second(plugin, sim, credentials) -> None:
    """The short real check (the minute-long one is bench/bench_pacing.py): rpm_limit 300 against a gateway
    that accepts 5 per fixed second, 40 requests: no rejection, and the rate used is close to the limit."""
    sim.configure(window_limit=5, window_seconds=1)
    prompts = json.dumps([f"paced {n}" for n in range(40)])
    outcome = plugin.run_tool("batch_chat", {"prompts": prompts, "rpm_limit": 300, "concurrency": 10}, {**credentials, "timeout_seconds": "238"})
    stats = sim.stats()
    assert outcome.variables["succeeded"] == 40
    assert stats["window_rejections"] == 0 and stats["rate_limited"] == 0
    arrivals = sorted(stats["arrivals"])
    assert max(fixed_window_counts(arrivals)) <= 5
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) >= 0.95 * 5


def test_without_a_limit_the_gateways_rate_limit_headers_set_the_pace(plugin, sim, credentials) -> None:
    """No rpm_limit: the simulator accepts 5 per fixed second and says so in x-ratelimit-* headers. The
    client starts with one request, learns the budget, and keeps to it: at most one 429, >= 80 % used."""
    sim.configure(window_limit=5, window_seconds=1, ratelimit_headers=True)
    prompts = json.dumps([f"adaptive {n}" for n in range(40)])
    started = time.monotonic()
    outcome = plugin.run_tool("batch_chat", {"prompts": prompts, "concurrency": 10}, {**credentials, "timeout_seconds": "237"})
    stats = sim.stats()
    assert outcome.variables["succeeded"] == 40
    assert stats["rate_limited"] <= 1
    arrivals = sorted(stats["arrivals"])
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) >= 0.8 * 5
    assert time.monotonic() - started < 15
