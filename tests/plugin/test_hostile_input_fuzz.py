"""Property-based fuzzing of every tool parameter and credential, through the runtime (python -m main).

Whatever a careless or hostile workflow author sends, the plugin answers within the call's own deadline
with a result or with its own clear message (never the catch-all "internal error"), every message is
one the Dify API accepts and fits the daemon's line (PluginProcess checks each one), the process keeps
answering ordinary calls, and its memory stays under the manifest's reservation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.plugin_process import PluginProcess
from simulator.harness import SimulatorProcess

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 5  # the credential: every call must end within it (plus the runtime's own overhead)
MANIFEST_MEMORY = yaml.safe_load((ROOT / "manifest.yaml").read_text())["resource"]["memory"]

LAUGHS = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)
# Values that broke the plugin before, or that parsers, formatters and clocks are known to trip on.
NASTY = [
    "\x07" * (2 * 1024 * 1024),
    "\u202e\u200b" * 50_000,
    "[" * 10_000 + "]" * 10_000,
    '{"a":' * 10_000 + "1" + "}" * 10_000,
    "- " * 5_000 + "x",
    LAUGHS,
    '"\\ud800"',
    '["\\ud800 hi"]',
    '{"type": "object", "description": "\\udfff"}',
    "version: 1\nname: \"\\ud800\"\n",
    '{"a": NaN}',
    "nan", "inf", "-inf", "1e400", "-1e400", "1e-400", "0x10", "１２", "٣", str(10**400),
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31", "2026-02-30T00:00:00Z", "now",
    "http://[::1", "http://" + "a" * 300 + ".com/v1", "http://user:SECRETPW@127.0.0.1:9/v1", "ftp://127.0.0.1/v1",
    "http://127.0.0.1:99999/v1", "http://127.0.0.1:0/v1", "://", "",
    "redis://127.0.0.1:6379/0?db=x", "redis://127.0.0.1:6379/0?socket_timeout=abc", "redis://:@127.0.0.1:1/99999999999",
    "Bearer ", "sk-" + "k" * 600_000,
    " ", "\n", "\x00", "default", "auto", "none", "rules_only",
]
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=300),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),  # the daemon cannot send NaN: JSON has none
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


# The SDK holds a request line several times over while it reads it (buffer, copy, split, parse): a
# request of N MB costs about 4N MB for a moment, before any of our code runs. So the memory property is
# checked with at most one megabyte-sized value per request (a 2 MiB value of control characters is a
# 12 MB line); several of them would measure the SDK's reader, not the plugin.
HUGE = 100_000


def is_huge(value: object) -> bool:
    return isinstance(value, str) and len(value) > HUGE


def tool_parameters(tool: str) -> list[str]:
    return [p["name"] for p in yaml.safe_load((ROOT / "tools" / f"{tool}.yaml").read_text())["parameters"]]


BASE_PARAMETERS: dict[str, dict[str, Any]] = {
    "chat": {"prompt": "hello"},
    "stream_chat": {"prompt": "hello"},
    "batch_chat": {"prompts": '["one", "two"]'},
    "approval_route": {
        "request_id": "fuzz-1", "content": "New laptop for the design team", "amount": 1200, "currency": "USD",
        "request_type": "purchase", "requester_id": "alice", "model": "rules_only",
    },
    "approval_transition": {
        "request_id": "fuzz-1", "event": "approve", "actor_id": "bob", "actor_level": "director", "state": "pending",
        "version": 1, "requester_id": "alice", "required_level": "director",
    },
    "approval_status": {"request_id": "fuzz-1"},
    "approval_dead_letters": {"action": "list"},
}
CREDENTIALS = ["api_key", "base_url", "default_model", "timeout_seconds", "max_retries", "fallback_models", "price_overrides",
               "approval_policy", "redis_url"]


@pytest.fixture(scope="module")
def fuzz_plugin() -> Iterator[PluginProcess]:
    """A process of its own: its memory and its breakers concern this module alone."""
    with PluginProcess(timeout=60) as process:
        yield process


@pytest.fixture(scope="module")
def base_credentials(simulator: SimulatorProcess) -> dict[str, Any]:
    return {"api_key": simulator.api_key, "base_url": simulator.base_url, "timeout_seconds": str(TIMEOUT_SECONDS), "max_retries": "1"}


def assert_answers_sanely(plugin: PluginProcess, tool: str, parameters: dict[str, Any], credentials: dict[str, Any]) -> str:
    """The error message, or "" on success."""
    started = time.monotonic()
    outcome = plugin.run_tool(tool, parameters, credentials, timeout=TIMEOUT_SECONDS + 25)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_SECONDS + 10, f"{tool} took {elapsed:.1f}s"
    if not outcome.ok:
        message = outcome.error_message
        assert message and "internal error" not in message and "Traceback" not in message, message[:500]
        assert len(message) <= 2100, len(message)
        return message
    return ""


FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is reproducible, never flaky
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("tool", list(BASE_PARAMETERS))
@FUZZ
@given(data=st.data())
def test_any_parameter_value_gets_a_result_or_a_clear_refusal(fuzz_plugin, base_credentials, tool: str, data: st.DataObject) -> None:
    names = data.draw(st.lists(st.sampled_from(tool_parameters(tool)), min_size=1, max_size=3, unique=True), label="parameters")
    parameters = dict(BASE_PARAMETERS[tool])
    for name in names:
        value = data.draw(VALUES, label=name)
        if is_huge(value) and any(is_huge(v) for v in parameters.values()):
            value = "x"  # one megabyte-sized value per request: see HUGE below
        parameters[name] = value
    assert_answers_sanely(fuzz_plugin, tool, parameters, base_credentials)


@FUZZ
@given(data=st.data())
def test_any_credential_value_gets_a_result_or_a_clear_refusal(fuzz_plugin, base_credentials, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(CREDENTIALS), label="credential")
    value = data.draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=200)), label=name)
    if name == "base_url" and "://" in value and value not in NASTY:
        value = "http://[::1"  # generated text is never a URL: no request may go to a host that is not this machine
    credentials = {**base_credentials, name: value}
    tool = data.draw(st.sampled_from(["chat", "batch_chat", "approval_route"]), label="tool")
    message = assert_answers_sanely(fuzz_plugin, tool, BASE_PARAMETERS[tool], credentials)
    ok, validation = fuzz_plugin.validate(credentials, timeout=TIMEOUT_SECONDS + 25)
    assert ok or ("internal error" not in validation and len(validation) <= 2100), validation[:500]
    for shown in (message, validation):  # a URL password and a key are secrets, whatever else is echoed
        assert "SECRETPW" not in shown and "k" * 100 not in shown


def test_after_the_fuzzing_the_process_answers_normally_within_its_memory(fuzz_plugin, base_credentials) -> None:
    outcome = fuzz_plugin.run_tool("chat", {"prompt": "still there?"}, base_credentials)
    assert outcome.ok, outcome.error
    assert outcome.text == "[deepseek-v3.2] You said: still there?"
    assert fuzz_plugin.peak_rss_bytes < MANIFEST_MEMORY, f"peak RSS {fuzz_plugin.peak_rss_bytes / 2**20:.0f} MiB"
    assert json.dumps(outcome.variables)
