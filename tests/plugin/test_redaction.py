"""The API key never leaves: not in outputs, error messages, logs or exception text, on any error
path, even when the gateway echoes it back."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess

KEY = "sk-live-REDACTME0123456789abcdefXYZ"
# Any run of 8 characters of the key is a leak (a gateway may echo part of it).
FRAGMENTS = {KEY[i : i + 8] for i in range(0, len(KEY) - 7)} - {"sk-live-"}


@pytest.fixture(scope="module")
def keyed_sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(api_key=KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def fresh_plugin() -> Iterator[PluginProcess]:
    with PluginProcess() as process:
        yield process


def leaks(text: str) -> list[str]:
    return sorted(fragment for fragment in FRAGMENTS if fragment in text)


CHAT_FAULTS = ["echo_key", "503x9", "reset_beforex1", "html", "400x1", "404x1"]
STREAM_FAULTS = ["echo_key", "cut", "reset_mid", "inband_error", "malformed", "reject_stream_options"]


def test_no_error_path_leaks_the_key(fresh_plugin: PluginProcess, keyed_sim: SimulatorProcess) -> None:
    creds: dict[str, Any] = {"api_key": f"  Bearer {KEY} ", "base_url": keyed_sim.base_url, "max_retries": "1"}
    outcomes = []
    for fault in CHAT_FAULTS:
        outcomes.append(fresh_plugin.run_tool("chat", {"prompt": f"leak? [[sim: {fault}, retry_after_ms=5]]"}, creds))
    for fault in STREAM_FAULTS:
        outcomes.append(fresh_plugin.run_tool("stream_chat", {"prompt": f"leak? [[sim: {fault}]]"}, creds))
    outcomes.append(fresh_plugin.run_tool("chat", {"prompt": "slow [[sim: latency=3000]]"}, {**creds, "timeout_seconds": "1"}))
    outcomes.append(fresh_plugin.run_tool("chat", {"prompt": "x"}, {**creds, "base_url": "http://127.0.0.1:9/v1"}))
    outcomes.append(fresh_plugin.run_tool("chat", {"prompt": "x", "temperature": KEY}, creds))
    batch = json.dumps(["fine", "bad [[sim: echo_key]]", "down [[sim: 503x9, retry_after_ms=5]]"])
    outcomes.append(fresh_plugin.run_tool("batch_chat", {"prompts": batch}, creds))
    keyed_sim.configure(fault="echo_key")
    approval = {"request_id": "R-1", "content": "buy chairs", "amount": 10, "request_type": "purchase", "requester_id": "amy"}
    outcomes.append(fresh_plugin.run_tool("approval_route", approval, creds))
    validations = [fresh_plugin.validate(creds)]
    keyed_sim.reset()

    failures = [o for o in outcomes if not o.ok]
    assert len(failures) >= 6, "the error paths were not exercised"
    assert any("api_key" in o.error_message for o in failures)  # the echoing 401 became a clear message
    assert validations[0][0] is False and not leaks(validations[0][1])
    for outcome in outcomes:
        everything = json.dumps({"messages": outcome.messages, "error": outcome.error}, ensure_ascii=False)
        assert not leaks(everything), everything[:500]
    assert not leaks(fresh_plugin.stderr_text())
