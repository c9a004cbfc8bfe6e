"""Gateway faults as a workflow sees them: retried where the policy allows (attempts counted by the
simulator), otherwise a clear error or an interrupted stream with the partial text kept."""

from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess
from tests.plugin.conftest import attempts_for


def chat(plugin: PluginProcess, credentials: dict[str, Any], prompt: str, **params: Any):
    return plugin.run_tool("chat", {"prompt": prompt, **params}, credentials)


def stream(plugin: PluginProcess, credentials: dict[str, Any], prompt: str, **params: Any):
    return plugin.run_tool("stream_chat", {"prompt": prompt, **params}, credentials)


def test_429_then_success_is_retried_and_reports_the_attempts(plugin, sim: SimulatorProcess, credentials) -> None:
    prompt = "rt busy [[sim: 429x2, retry_after_ms=20]]"
    outcome = chat(plugin, credentials, prompt)
    assert outcome.ok, outcome.error
    assert outcome.variables["attempts"] == 3 == attempts_for(sim, prompt)
    assert outcome.text == "[deepseek-v3.2] You said: rt busy"


def test_5xx_exhausted_is_a_clear_error_after_max_retries(plugin, sim: SimulatorProcess, credentials) -> None:
    prompt = "rt down [[sim: 503x9, retry_after_ms=10]]"
    outcome = chat(plugin, credentials, prompt)
    assert not outcome.ok
    assert "503" in outcome.error_message and "after 3 attempts" in outcome.error_message
    assert "Traceback" not in outcome.error_message
    assert attempts_for(sim, prompt) == 3


def test_wrong_key_at_invocation_is_not_retried(plugin, sim: SimulatorProcess, credentials) -> None:
    outcome = chat(plugin, {**credentials, "api_key": "sk-nope-000000000000"}, "rt wrong key")
    assert not outcome.ok and "api_key" in outcome.error_message
    assert attempts_for(sim, "rt wrong key") == 1


def test_stream_types_the_text_live_then_gives_final_variables(plugin, sim: SimulatorProcess, credentials) -> None:
    outcome = stream(plugin, credentials, "rt stream words one two three four five six")
    assert outcome.ok, outcome.error
    assert len(outcome.text_chunks) > 2  # text messages, chunk by chunk: what an Answer node types live
    variables = outcome.variables
    assert outcome.text == "[deepseek-v3.2] You said: rt stream words one two three four five six"
    assert variables["interrupted"] is False and variables["ttft_ms"] > 0
    assert variables["usage"]["estimated"] is False and variables["cost_usd"] > 0


@pytest.mark.parametrize("fault", ["crlf", "split_utf8"])
def test_stream_framing_faults_give_the_exact_text(plugin, sim: SimulatorProcess, credentials, fault: str) -> None:
    outcome = stream(plugin, credentials, f"rt framing [[sim: {fault}]]")
    assert outcome.ok, outcome.error
    expected = "[deepseek-v3.2] You said: rt framing" + (" café 🙂 中文" if fault == "split_utf8" else "")
    assert outcome.text == expected
    assert outcome.variables["interrupted"] is False


@pytest.mark.parametrize("fault", ["cut", "reset_mid", "inband_error"])
def test_broken_streams_are_interrupted_with_partial_text_and_never_retried(plugin, sim, credentials, fault: str) -> None:
    prompt = f"rt a long answer that breaks [[sim: {fault}]]"
    outcome = stream(plugin, credentials, prompt)
    assert outcome.ok  # the workflow gets variables to branch on, not a crash
    variables = outcome.variables
    assert variables["interrupted"] is True
    assert outcome.text and "[deepseek-v3.2] You said: rt a long answer that breaks".startswith(outcome.text)
    assert variables["error"]
    if fault == "inband_error":
        assert "upstream overloaded" in variables["error"]
    assert attempts_for(sim, prompt) == 1


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x", "temperature": 3}, "temperature"),
        ({"prompt": "x", "temperature": "warm"}, "temperature"),
        ({"prompt": "x", "max_tokens": 0}, "max_tokens"),
        ({"prompt": "x", "max_tokens": -5}, "max_tokens"),
        ({"prompt": "x", "model": "gpt-99-ultra"}, "model"),
        ({"prompt": "x", "json_schema": "{not json"}, "json_schema"),
        ({"prompt": "x", "json_schema": '{"type": "array"}'}, "json_schema"),
    ],
)
@pytest.mark.parametrize("tool", ["chat", "stream_chat"])
def test_invalid_parameters_name_the_parameter_and_send_nothing(plugin, sim, credentials, tool, params, named) -> None:
    outcome = plugin.run_tool(tool, params, credentials)
    assert not outcome.ok
    assert f"'{named}'" in outcome.error_message
    assert "Traceback" not in outcome.error_message
    assert sim.stats()["requests_by_path"].get("/v1/chat/completions", 0) == 0


def test_invalid_credentials_at_invocation_name_the_field(plugin, sim, credentials) -> None:
    outcome = chat(plugin, {**credentials, "timeout_seconds": "forever"}, "x")
    assert not outcome.ok and "timeout_seconds" in outcome.error_message


def test_json_output_returns_json_text(plugin, sim, credentials) -> None:
    import json

    outcome = chat(plugin, credentials, "rt give me json", json_output=True)
    assert outcome.ok, outcome.error
    assert isinstance(json.loads(outcome.text), dict)
    assert sim.stats()["received"][-1]["response_format"] == {"type": "json_object"}


def test_sampling_parameters_reach_the_gateway(plugin, sim, credentials) -> None:
    outcome = chat(plugin, credentials, "rt sampling", top_p=0.9, seed=42, stop="END\nSTOP", temperature=0.2, max_tokens=50)
    assert outcome.ok, outcome.error
    body = sim.stats()["received"][-1]
    assert (body["top_p"], body["seed"], body["stop"], body["temperature"], body["max_tokens"]) == (0.9, 42, ["END", "STOP"], 0.2, 50)


@pytest.mark.parametrize(("params", "named"), [({"top_p": 1.5}, "top_p"), ({"seed": 1.5}, "seed")])
def test_bad_sampling_parameters_are_named(plugin, sim, credentials, params, named) -> None:
    outcome = chat(plugin, credentials, "x", **params)
    assert not outcome.ok and f"'{named}'" in outcome.error_message
