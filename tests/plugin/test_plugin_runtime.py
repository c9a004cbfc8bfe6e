"""The plugin starts as the daemon starts it, validates credentials, and answers through the runtime."""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devtools.plugin_process import REPO_ROOT, PluginProcess
from simulator.harness import SimulatorProcess


def test_local_mode_answers_a_chat_with_the_gateways_reply(plugin: PluginProcess, credentials: dict[str, Any]) -> None:
    outcome = plugin.run_tool("chat", {"prompt": "hello runtime", "model": "gpt-4.1"}, credentials)
    assert outcome.ok, outcome.error
    assert outcome.text == "[gpt-4.1] You said: hello runtime"
    variables = outcome.variables
    assert "text" not in variables  # the reply is the node's built-in `text` output, never a variable
    assert variables["model"] == "gpt-4.1" and variables["finish_reason"] == "stop"
    assert variables["usage"]["prompt_tokens"] > 0 and variables["attempts"] == 1
    assert variables["cost_usd"] == pytest.approx(
        (variables["usage"]["prompt_tokens"] * 2.0 + variables["usage"]["completion_tokens"] * 8.0) / 1e6
    )
    (whole,) = outcome.json
    assert whole["model"] == "gpt-4.1" and whole["latency_ms"] > 0 and whole["request_id"]


def test_twenty_concurrent_sessions_each_get_their_own_answer(plugin: PluginProcess, credentials: dict[str, Any]) -> None:
    def ask(n: int) -> str:
        return plugin.run_tool("chat", {"prompt": f"question number {n}"}, credentials).text

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert answers == [f"[deepseek-v3.2] You said: question number {n}" for n in range(20)]


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "", "/"])
def test_base_url_with_or_without_v1_is_accepted(plugin: PluginProcess, sim: SimulatorProcess, suffix: str) -> None:
    root = sim.base_url.removesuffix("/v1")
    ok, message = plugin.validate({"api_key": sim.api_key, "base_url": root + suffix})
    assert ok, message
    assert "/v1/v1" not in json.dumps(sim.stats()["requests_by_path"])


def test_key_pasted_with_quotes_and_bearer_prefix_is_accepted(plugin: PluginProcess, sim: SimulatorProcess) -> None:
    ok, message = plugin.validate({"api_key": f'  "Bearer {sim.api_key}" ', "base_url": sim.base_url})
    assert ok, message


def test_wrong_key_says_the_key_was_rejected_without_showing_it(plugin: PluginProcess, sim: SimulatorProcess) -> None:
    ok, message = plugin.validate({"api_key": "sk-wrong-SECRETSECRET-9876", "base_url": sim.base_url})
    assert not ok
    assert "rejected" in message and "api_key" in message
    assert "SECRETSECRET" not in message and "Traceback" not in message


def test_unreachable_host_says_so(plugin: PluginProcess) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    ok, message = plugin.validate({"api_key": "k-123456789", "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": "0"})
    assert not ok
    assert f"127.0.0.1:{port}" in message and "connect" in message


def test_a_website_instead_of_an_api_hints_at_v1(plugin: PluginProcess, sim: SimulatorProcess) -> None:
    sim.configure(fault="html")
    ok, message = plugin.validate({"api_key": sim.api_key, "base_url": sim.base_url})
    assert not ok
    assert "/v1" in message and "OpenAI-compatible" in message


def test_missing_key_is_named(plugin: PluginProcess, sim: SimulatorProcess) -> None:
    ok, message = plugin.validate({"api_key": "  ", "base_url": sim.base_url})
    assert not ok and "api_key" in message


def test_serverless_mode_serves_health_and_invocations(simulator: SimulatorProcess) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INSTALL_METHOD": "serverless", "SERVERLESS_HOST": "127.0.0.1", "SERVERLESS_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "main"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                health = requests.get(f"{url}/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("serverless plugin never answered /health")
        assert health.status_code == 200 and health.text == "OK"
        request = {
            "session_id": "serverless-1",
            "event": "request",
            "data": {
                "type": "tool", "action": "invoke_tool", "user_id": "u1", "provider": "holysheep", "tool": "chat",
                "credentials": {"api_key": simulator.api_key, "base_url": simulator.base_url},
                "credential_type": "api-key", "tool_parameters": {"prompt": "serverless hello"},
            },
        }
        response = requests.post(f"{url}/invoke", json=request, timeout=30)
        assert response.status_code == 200
        assert "[deepseek-v3.2] You said: serverless hello" in response.text
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_package_ships_the_plugin_and_none_of_the_dev_tools() -> None:
    from devtools.package import plugin_files

    shipped = {p.relative_to(REPO_ROOT).as_posix() for p in plugin_files(REPO_ROOT)}
    assert not any(name.startswith(("simulator/", "devtools/", "tests/", "bench/")) for name in shipped)
    assert {"main.py", "manifest.yaml", "requirements.txt", "PRIVACY.md", "_assets/icon.svg"} <= shipped


def test_a_gateway_that_does_not_answer_in_time_says_it_timed_out(plugin: PluginProcess, sim: SimulatorProcess) -> None:
    sim.configure(latency_ms=1500)
    ok, message = plugin.validate({"api_key": sim.api_key, "base_url": sim.base_url, "timeout_seconds": "1"})
    assert not ok and "no response within" in message


def test_https_to_a_plain_http_port_is_a_tls_failure_with_a_hint(plugin: PluginProcess, sim: SimulatorProcess) -> None:
    ok, message = plugin.validate({"api_key": sim.api_key, "base_url": sim.base_url.replace("http://", "https://")})
    assert not ok and "TLS" in message and "https vs http" in message


# Variables that exist only under a budget (remaining) or when it refused a call (which, spent, limit, reset).
NOT_REFUSED = {"budget", "budget_spent_usd", "budget_limit_usd", "budget_resets_at"}
NO_BUDGET = {"budget_remaining_usd", *NOT_REFUSED}
JSON_TYPES = {"string": str, "integer": int, "number": int | float, "boolean": bool, "object": dict, "array": list}


@pytest.mark.parametrize(
    ("tool", "params", "unknown"),
    [
        ("chat", {"prompt": "schema check"}, NO_BUDGET),
        ("chat", {"prompt": "schema check", "custom_model": "mystery-1"}, {"cost_usd", *NO_BUDGET}),
        ("chat", {"prompt": "schema check", "max_cost_usd": 1}, NOT_REFUSED),
        ("chat", {"prompt": "schema check", "max_cost_usd": 0.0000001}, {"finish_reason", "usage", "latency_ms", "budget_remaining_usd",
                                                                          "budget_resets_at", "gateway_request_id"}),
        ("stream_chat", {"prompt": "schema check"}, NO_BUDGET),
        ("stream_chat", {"prompt": "schema check [[sim: cut]]"}, {"finish_reason", "tokens_per_second", *NO_BUDGET}),
        ("stream_chat", {"prompt": "schema check [[sim: reasoning]]", "budgets": "user: {day: 1}"}, {*NOT_REFUSED}),
        ("batch_chat", {"prompts": '["a", "b [[sim: 400x1]]"]'}, NO_BUDGET),
        ("batch_chat", {"prompts": '["a", "b"]', "batch_budget_usd": 0.0000001}, {"latency_p50_ms", "latency_p95_ms",
                                                                                   "latency_p99_ms", "budget_remaining_usd",
                                                                                   "budget_resets_at"}),
    ],
)
def test_every_output_schema_variable_is_emitted_with_its_declared_type(plugin, credentials, tool, params, unknown) -> None:
    """Stable names and types: every declared variable is emitted with its declared type; a value that is not
    known is its type's empty value (Dify before PR #30082 refuses null, and a workflow fails on a missing one)."""
    import yaml

    declared = yaml.safe_load((REPO_ROOT / "tools" / f"{tool}.yaml").read_text())["output_schema"]["properties"]
    outcome = plugin.run_tool(tool, params, credentials)
    assert outcome.ok, outcome.error
    emitted = outcome.variables
    assert set(emitted) == set(declared)
    assert all(emitted[name] in ("", 0, False, [], {}) for name in unknown), {name: emitted[name] for name in unknown}
    for name, value in emitted.items():
        assert isinstance(value, JSON_TYPES[declared[name]["type"]]), (name, value)
    if tool == "batch_chat":
        item_schema = declared["results"]["items"]["properties"]
        assert all(set(result) == set(item_schema) for result in emitted["results"])
