"""Metrics, correlation ids and the call log through the runtime: the plugin started as the daemon starts it,
the /metrics endpoint invoked as the daemon invokes endpoints (raw HTTP through `invoke_endpoint`), the
exposition read with prometheus_client's own parser and compared with what the calls' outputs reported."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.plugin_process import PluginProcess, ToolOutcome
from gateway.metrics import RedisMetrics
from gateway.state.keys import workspace_scope
from simulator.harness import SimulatorProcess

pytestmark = pytest.mark.runtime

TOKEN = "metrics-token-0123456789abcdef"
CORRELATION = re.compile(r"correlation_id: (hs-[0-9a-f]{24})")


class LoggedPluginProcess(PluginProcess):
    """The plugin process, with the JSON call lines of its log."""

    def call_log(self) -> list[dict[str, Any]]:
        """The JSON call lines (`holysheep.calls`), parsed."""
        out = []
        for line in self.log_lines:
            try:
                message = json.loads(line["message"])
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("event") == "gateway_call":
                out.append(message)
        return out


def settings_for(credentials: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The metrics endpoint's settings for the workspace of `credentials` (its gateway API key)."""
    return {"metrics_token": TOKEN, "api_key": credentials["api_key"], **more}


def scrape(plugin: PluginProcess, settings: dict[str, Any], token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = plugin.invoke_endpoint("GET", "/metrics", headers=headers, settings=settings)
    return response.status, response.text


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)], read by prometheus_client's parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def total(figures: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> float:
    return sum(value for labels, value in figures.get(name, []) if all(labels.get(k) == v for k, v in match.items()))


def reported(outcomes: list[ToolOutcome]) -> dict[str, float]:
    """What the calls' outputs say: calls, prompt and completion tokens, cost of priced calls, unpriced calls."""
    calls = prompt = completion = cost = unpriced = 0.0
    for outcome in outcomes:
        variables = outcome.variables
        if "results" in variables:  # a batch: its items are the calls
            for item in variables["results"]:
                calls += 1
                if item["usage"]:
                    prompt += item["usage"]["prompt_tokens"]
                    completion += item["usage"]["completion_tokens"]
                    if item["cost_usd"] is None:
                        unpriced += 1
                    else:
                        cost += item["cost_usd"]
            continue
        calls += 1
        if outcome.ok and "usage" in variables:
            prompt += variables["usage"]["prompt_tokens"]
            completion += variables["usage"]["completion_tokens"]
            if variables["cost_known"]:
                cost += variables["cost_usd"]
            else:
                unpriced += 1
    return {"calls": calls, "prompt": prompt, "completion": completion, "cost": cost, "unpriced": unpriced}


def scripted_mix(plugin: PluginProcess, credentials: dict[str, Any], tag: str) -> list[ToolOutcome]:
    return [
        plugin.run_tool("chat", {"prompt": f"{tag} hello"}, credentials),
        plugin.run_tool("chat", {"prompt": f"{tag} retried [[sim: 429x1]]"}, credentials),
        plugin.run_tool("chat", {"prompt": f"{tag} broken [[sim: 503x9]]"}, credentials),
        plugin.run_tool("chat", {"prompt": f"{tag} unpriced", "custom_model": "mystery-1"}, credentials),
        plugin.run_tool("stream_chat", {"prompt": f"{tag} streamed"}, credentials),
        plugin.run_tool("batch_chat", {"prompts": json.dumps([f"{tag} a", f"{tag} b", f"{tag} c [[sim: 400x1]]"])}, credentials),
    ]


def correlation_of(outcome: ToolOutcome) -> str:
    if outcome.ok:
        return str(outcome.variables["correlation_id"])
    match = CORRELATION.search(outcome.error_message)
    assert match, outcome.error_message
    return match[1]


def test_metrics_equal_what_the_calls_reported_and_ids_go_end_to_end(sim: SimulatorProcess, credentials: dict[str, Any]) -> None:
    credentials = {**credentials, "max_retries": "2"}
    with LoggedPluginProcess() as plugin:
        outcomes = scripted_mix(plugin, credentials, "mix")
        ok, retried, broken, unpriced, streamed, batch = outcomes
        assert ok.ok and retried.ok and unpriced.ok and streamed.ok and batch.ok
        assert not broken.ok and "HTTP 503" in broken.error_message
        assert retried.variables["attempts"] == 2 and unpriced.variables["cost_known"] is False

        status, text = scrape(plugin, settings_for(credentials))
        assert status == 200
        figures = samples(text)
        want = reported(outcomes)

        # Every call counted once, by outcome; the error is counted by its code.
        assert total(figures, "holysheep_requests_total") == want["calls"] == 8
        assert total(figures, "holysheep_requests_total", outcome="ok") == 6
        assert total(figures, "holysheep_requests_total", outcome="upstream_unavailable", tool="chat") == 1
        assert total(figures, "holysheep_requests_total", outcome="bad_request", tool="batch_chat") == 1
        assert total(figures, "holysheep_requests_total", tool="stream_chat") == 1
        # Attempts are every request the gateway received for these calls; retries: 1 after the 429, 2 after the 503s.
        ours = {correlation_of(o) for o in outcomes[:5]} | {r["correlation_id"] for r in batch.variables["results"]}
        received = [entry for entry in sim.stats()["received_headers"] if entry["x_request_id"] in ours]
        assert total(figures, "holysheep_attempts_total") == len(received) == 11
        assert total(figures, "holysheep_attempts_total", outcome="http_503") == 3
        assert total(figures, "holysheep_retries_total") == 3
        assert total(figures, "holysheep_rate_limited_total") == 1
        # Tokens and cost equal the outputs (cost to the cent of a cent, and closer); unpriced apart, never 0.
        assert total(figures, "holysheep_tokens_total", type="prompt") == want["prompt"]
        assert total(figures, "holysheep_tokens_total", type="completion") == want["completion"]
        assert math.isclose(total(figures, "holysheep_cost_usd_total"), want["cost"], abs_tol=1e-9)
        assert abs(total(figures, "holysheep_cost_usd_total") - want["cost"]) < 0.0001
        # A model outside the price table is counted as `custom`, never under the name a user typed.
        assert total(figures, "holysheep_unpriced_requests_total", model="custom") == want["unpriced"] == 1
        assert not [labels for labels, _ in figures.get("holysheep_cost_usd_total", []) if labels["model"] == "custom"]
        assert "mystery-1" not in text
        assert total(figures, "holysheep_batch_items_total", status="ok") == 2
        assert total(figures, "holysheep_batch_items_total", status="error") == 1
        # Histograms: one observation per call; streams have a time to first token.
        assert total(figures, "holysheep_request_duration_seconds_count") == 8
        assert total(figures, "holysheep_time_to_first_token_seconds_count") == 1
        assert total(figures, "holysheep_metrics_scope", scope="process") == 1
        # Labels are bounded: nothing of the prompts, no ids.
        assert "mix " not in text and "hs-" not in text and "req-" not in text

        # One correlation id per call: in its outputs (or its error), in what the gateway received, in its
        # log lines, and nowhere else.
        log = plugin.call_log()
        ids = [correlation_of(o) for o in outcomes[:5]]
        items = [r["correlation_id"] for r in batch.variables["results"]]
        batch_id = batch.variables["correlation_id"]
        assert items == [f"{batch_id}-{i}" for i in range(3)]
        every = ids + items
        assert len(set(every)) == len(every) and all(re.fullmatch(r"hs-[0-9a-f]{24}(-\d+)?", i) for i in every)
        assert sorted(e["x_request_id"] for e in received) == sorted(
            [ids[0]] + [ids[1]] * 2 + [ids[2]] * 3 + [ids[3], ids[4]] + items
        ), "each request carries its call's id as X-Request-Id"
        for call_id in every:
            own = [line for line in log if line["correlation_id"] == call_id]
            assert len(own) == 1, call_id
            others = [line for line in log if line["correlation_id"] != call_id]
            assert not [line for line in others if call_id in json.dumps(line)], call_id
        # The gateway's own id: in the outputs, in the error message, in the log line, and it is what it answered.
        answered = {entry["request_id"]: entry["x_request_id"] for entry in received}
        assert answered[ok.variables["gateway_request_id"]] == ids[0]
        assert answered[batch.variables["results"][0]["gateway_request_id"]] == items[0]
        broken_gateway_id = re.search(r"gateway_request_id: (req-[0-9a-f]+)", broken.error_message)
        assert broken_gateway_id and answered[broken_gateway_id[1]] == ids[2]
        line = next(line for line in log if line["correlation_id"] == ids[0])
        assert line["gateway_request_id"] == ok.variables["gateway_request_id"] and line["outcome"] == "ok"
        assert next(line for line in log if line["correlation_id"] == ids[2])["outcome"] == "upstream_unavailable"
        # The log is redacted like everything else.
        assert credentials["api_key"] not in json.dumps(plugin.log_lines)


def test_wrong_or_missing_token_is_401_without_figures(sim: SimulatorProcess, credentials: dict[str, Any]) -> None:
    with PluginProcess() as plugin:
        assert plugin.run_tool("chat", {"prompt": "counted"}, credentials).ok
        for token in (None, "wrong-token-0123456789abcdef", TOKEN + "x", TOKEN[:-1], ""):
            status, text = scrape(plugin, settings_for(credentials), token)
            assert status == 401 and "holysheep_" not in text, token
        response = plugin.invoke_endpoint("GET", "/metrics", headers={"Authorization": f"Basic {TOKEN}"}, settings=settings_for(credentials))
        assert response.status == 401 and response.header("WWW-Authenticate").startswith("Bearer")
        status, text = scrape(plugin, {})  # no token configured: off, and says what to set
        assert status == 503 and "metrics_token" in text and "holysheep_" not in text
        status, text = scrape(plugin, {"metrics_token": TOKEN})  # no workspace key: says what to set
        assert status == 503 and "api_key" in text and "provider credentials" in text and "holysheep_" not in text
        status, text = scrape(plugin, {"metrics_token": TOKEN, "api_key": "two words"})
        assert status == 503 and "api_key" in text and "two words" not in text and "holysheep_" not in text
        status, text = scrape(plugin, settings_for(credentials))
        assert status == 200 and total(samples(text), "holysheep_requests_total") == 1
        assert credentials["api_key"] not in text


def test_two_processes_sharing_redis_each_show_the_sum_of_both(sim: SimulatorProcess, credentials: dict[str, Any], private_redis: Any) -> None:
    shared = {**credentials, "redis_url": private_redis.url}
    settings = settings_for(credentials, redis_url=private_redis.url)
    with PluginProcess() as first, PluginProcess() as second:
        a = [first.run_tool("chat", {"prompt": "first one"}, shared), first.run_tool("chat", {"prompt": "first two [[sim: 429x1]]"}, shared)]
        b = [
            second.run_tool("chat", {"prompt": "second one", "custom_model": "mystery-1"}, shared),
            second.run_tool("batch_chat", {"prompts": '["x", "y"]'}, shared),
        ]
        assert all(o.ok for o in a + b)
        read_first, read_second = scrape(first, settings), scrape(second, settings)
        assert read_first[0] == read_second[0] == 200
        one, two = samples(read_first[1]), samples(read_second[1])
        want = reported(a + b)
        for figures in (one, two):
            assert total(figures, "holysheep_metrics_scope", scope="redis") == 1
            assert total(figures, "holysheep_requests_total") == want["calls"] == 5
            assert total(figures, "holysheep_attempts_total") == 6
            assert total(figures, "holysheep_tokens_total", type="prompt") == want["prompt"]
            assert math.isclose(total(figures, "holysheep_cost_usd_total"), want["cost"], abs_tol=1e-9)
            assert total(figures, "holysheep_unpriced_requests_total") == 1
            assert total(figures, "holysheep_batch_items_total", status="ok") == 2
            assert total(figures, "holysheep_request_duration_seconds_count") == 5
        assert {k: sorted(map(str, v)) for k, v in one.items()} == {k: sorted(map(str, v)) for k, v in two.items()}
        # The process's own figures hold none of it (everything went to Redis), and say they are per process.
        local = samples(scrape(first, settings_for(credentials))[1])
        assert total(local, "holysheep_metrics_scope", scope="process") == 1
        assert total(local, "holysheep_requests_total") == 0
        # The shared figures are the workspace's, keyed without secrets.
        import redis

        connection = redis.Redis.from_url(private_redis.url)
        figures_key, _changed = RedisMetrics.keys(workspace_scope(credentials["api_key"]))
        fields = connection.hkeys(figures_key)
        joined = " ".join([figures_key, *(f.decode() for f in fields)])
        assert fields and credentials["api_key"] not in joined and "first" not in joined and "hs-" not in joined
        assert not [key for key in connection.scan_iter("*") if credentials["api_key"].encode() in key]


WORKSPACE_B_KEY = "sk-sim-workspace-b-0123456789abcdef"
EMAIL = "alice.secret@example.com"


@pytest.mark.parametrize("with_redis", [False, True], ids=["process", "redis"])
def test_each_workspace_endpoint_shows_its_own_figures_only(
    sim: SimulatorProcess, credentials: dict[str, Any], private_redis: Any, with_redis: bool
) -> None:
    # Two workspaces (two gateway API keys) in the one plugin process the daemon runs for both, and on
    # one Redis: each endpoint shows its workspace's calls and nothing of the other's.
    shared = {"redis_url": private_redis.url} if with_redis else {}
    with SimulatorProcess(api_key=WORKSPACE_B_KEY) as sim_b, LoggedPluginProcess() as plugin:
        a = {**credentials, **shared}
        b = {"api_key": WORKSPACE_B_KEY, "base_url": sim_b.base_url, "default_model": "deepseek-v3.2", "max_retries": "2", **shared}
        ran_a = [
            plugin.run_tool("chat", {"prompt": f"write to {EMAIL}", "model": "gpt-4.1"}, a),
            plugin.run_tool("chat", {"prompt": "a custom one", "custom_model": EMAIL}, a),
            plugin.run_tool("chat", {"prompt": "a retried one [[sim: 429x1]]", "model": "gpt-4.1"}, a),
        ]
        ran_b = [plugin.run_tool("chat", {"prompt": "b one"}, b), plugin.run_tool("batch_chat", {"prompts": '["b x", "b y"]'}, b)]
        # The gateway does not know the e-mail address as a model (404): a call all the same, counted as `custom`.
        assert [o.ok for o in ran_a + ran_b] == [True, False, True, True, True] and "HTTP 404" in ran_a[1].error_message
        extra = {"redis_url": private_redis.url} if with_redis else {}
        status_a, text_a = scrape(plugin, settings_for(a, **extra))
        status_b, text_b = scrape(plugin, settings_for(b, **extra))
        assert status_a == status_b == 200
        one, two = samples(text_a), samples(text_b)
        scope = "redis" if with_redis else "process"
        assert total(one, "holysheep_metrics_scope", scope=scope) == total(two, "holysheep_metrics_scope", scope=scope) == 1
        # A: its three calls (one under `custom`), four attempts; nothing of B's.
        assert total(one, "holysheep_requests_total") == 3 and total(one, "holysheep_attempts_total") == 4
        assert total(one, "holysheep_requests_total", model="gpt-4.1") == 2 and total(one, "holysheep_requests_total", model="custom") == 1
        assert total(one, "holysheep_rate_limited_total") == 1
        assert not figures_of(one, "holysheep_batch_items_total") and not figures_of(one, "holysheep_requests_total", model="deepseek-v3.2")
        # B: its two calls and batch items (three calls in all); nothing of A's.
        assert total(two, "holysheep_requests_total") == 3 and total(two, "holysheep_attempts_total") == 3
        assert total(two, "holysheep_batch_items_total", status="ok") == 2
        assert total(two, "holysheep_tokens_total", type="prompt") == reported(ran_b)["prompt"]
        assert not figures_of(two, "holysheep_requests_total", model="gpt-4.1") and not figures_of(two, "holysheep_rate_limited_total")
        assert math.isclose(total(two, "holysheep_cost_usd_total"), reported(ran_b)["cost"], abs_tol=1e-9)
        # No user text, e-mail address, id or key in either exposition.
        for text in (text_a, text_b):
            assert EMAIL not in text and "example.com" not in text and "hs-" not in text and "req-" not in text
            assert credentials["api_key"] not in text and WORKSPACE_B_KEY not in text


def figures_of(figures: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> list[tuple[dict[str, str], float]]:
    """The non-zero samples of `name` whose labels match."""
    return [(labels, v) for labels, v in figures.get(name, []) if v and all(labels.get(k) == want for k, want in match.items())]
