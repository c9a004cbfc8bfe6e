"""Hostile input to approval_route, approval_transition and the approval_policy credential, through the
plugin runtime: each is refused with the tool's own message naming the field (never the catch-all
"internal error"), every message stays small, and the plugin answers the next call normally."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess, ToolOutcome
from tests.plugin.refusals import assert_refused_naming as refused_naming

MAX_MESSAGE_CHARS = 1_000
MAX_LINE_BYTES = 64 * 1024  # far below the daemon's 5 MiB
# 2 MiB of control characters: JSON-escaped, a message repeating it would be a 12 MB line.
CONTROL = "".join(chr(i % 32) for i in range(2 * 1024 * 1024))
SHORT_CONTROL = CONTROL[:40]
# 407 bytes that expand to 9**9 "lol"s when anything walks or prints the parsed value.
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
) + "\n"
DEEP_JSON = "[" * 10_000 + "]" * 10_000
DEEP_YAML = "- " * 10_000 + "x\n"
DEEP_JSON_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000
LONE_SURROGATE = '{"version": "\\ud800", "base_currency": "USD"}'  # escaped in JSON: parsing makes it


@pytest.fixture(scope="module")
def plugin() -> Iterator[PluginProcess]:
    """A plugin of this module's own, so its longest line is this module's."""
    with PluginProcess() as process:
        yield process


def route_params(**overrides: Any) -> dict[str, Any]:
    base = {"request_id": f"H-{uuid.uuid4().hex[:8]}", "content": "Team offsite train tickets.", "amount": 320,
            "currency": "USD", "request_type": "travel", "department": "sales", "requester_id": "amy",
            "priority": "normal", "deadline_hours": 72, "model": "rules_only"}
    return {**base, **overrides}


def carried(**overrides: Any) -> dict[str, Any]:
    base = {"request_id": f"H-{uuid.uuid4().hex[:8]}", "state": "pending", "version": 1, "requester_id": "amy",
            "required_level": "manager", "event": "claim", "actor_id": "bob", "actor_level": "manager"}
    return {**base, **overrides}


def assert_refused_naming(outcome: ToolOutcome, *names: str) -> str:
    return refused_naming(outcome, *names, max_chars=MAX_MESSAGE_CHARS)


def assert_still_answers(plugin: PluginProcess, credentials: dict[str, Any]) -> None:
    routed = plugin.run_tool("approval_route", route_params(), credentials)
    assert routed.ok, routed.error
    assert routed.variables["next_state"] == "pending" and routed.variables["approver_level"] == "manager"
    moved = plugin.run_tool("approval_transition", carried(), credentials)
    assert moved.ok and moved.variables["accepted"] is True, moved.error
    assert plugin.largest_line < MAX_LINE_BYTES


# ----------------------------------------------------------------------------- policies


POLICIES = {
    "billion-laughs": (BILLION_LAUGHS, "uses a YAML alias"),
    "deep-json": (DEEP_JSON, "nested too deeply"),
    "deep-json-object": (DEEP_JSON_OBJECT, "nested too deeply"),
    "deep-yaml": (DEEP_YAML, "nested too deeply"),
    "lone-surrogate": (LONE_SURROGATE, "lone surrogate"),
    "huge-integer": ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: ' + "9" * 5_000 + "}\n", "thousands of digits"),
    "huge-exponent": ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: "1e999999999"}\n', "'rate' must be below"),
    "tiny-exponent": ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: "1e-999999999"}\n', "decimal places"),
    "infinity": ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: .inf}\n', "not finite"),
    "nan": ('version: "1"\nbase_currency: USD\ncurrency_rates: {EUR: .nan}\n', "not finite"),
    "control-characters": ('version: "' + "\\x01" * 150 + '"\nbase_currency: USD\n', "'version' must be at most"),
    "control-character-keys": ('version: "1"\nbase_currency: USD\n"' + "\\x07" * 200 + '": 1\n', "unknown field(s) '\\x07"),
}


@pytest.mark.parametrize(("text", "what"), list(POLICIES.values()), ids=list(POLICIES))
def test_a_hostile_policy_parameter_is_refused_naming_it(plugin, sim, credentials, text: str, what: str) -> None:
    message = assert_refused_naming(plugin.run_tool("approval_route", route_params(policy=text), credentials), "'policy'")
    assert what in message
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize(("text", "what"), list(POLICIES.values()), ids=list(POLICIES))
def test_a_hostile_approval_policy_credential_is_refused_naming_it(plugin, sim, credentials, text: str, what: str) -> None:
    with_policy = {**credentials, "approval_policy": text}
    message = assert_refused_naming(plugin.run_tool("approval_route", route_params(), with_policy), "approval_policy")
    assert what in message
    ok, validation = plugin.validate(with_policy)
    # The tool's message ends with the invocation's correlation id; saving the credentials has none.
    assert not ok and message == f"{validation} [correlation_id: {correlation_id_in(message)}]" and len(validation) < MAX_MESSAGE_CHARS
    assert_still_answers(plugin, credentials)


def correlation_id_in(message: str) -> str:
    match = re.search(r"\[correlation_id: (hs-[0-9a-f]{24})\]$", message)
    assert match, message
    return match[1]


# ----------------------------------------------------------------------------- instants


@pytest.mark.parametrize("field", ["deadline", "now"])
@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_instant_pushed_off_the_calendar_by_its_offset_is_refused_naming_the_field(
    plugin, sim, credentials, field: str, instant: str
) -> None:
    message = assert_refused_naming(plugin.run_tool("approval_transition", carried(**{field: instant}), credentials), f"'{field}'")
    assert f"'{instant}' is outside the calendar once its offset is applied" in message
    assert_still_answers(plugin, credentials)


def test_instants_at_the_calendar_edges_in_utc_are_handled(plugin, sim, credentials) -> None:
    late = plugin.run_tool("approval_transition", carried(deadline="9999-12-31T23:59:59Z"), credentials)
    assert late.ok and late.variables["accepted"] is True, late.error
    early = plugin.run_tool("approval_transition", carried(deadline="0001-01-01T00:00:00Z"), credentials)
    assert early.ok and early.variables["code"] == "expired", early.error
    both = plugin.run_tool("approval_transition", carried(deadline="0001-01-01T00:00:00Z", now="9999-12-31T23:59:59+00:00"), credentials)
    assert both.ok and both.variables["code"] == "expired", both.error


# ----------------------------------------------------------------------------- long and invisible values

TRANSITION_FIELDS = ["event", "actor_level", "state", "required_level", "request_id", "requester_id", "actor_id",
                     "idempotency_key", "deadline", "now", "version", "expected_version", "persist"]
ROUTE_FIELDS = ["request_id", "requester_id", "currency", "priority", "request_type", "department", "content",
                "amount", "deadline_hours", "model"]


@pytest.mark.parametrize("field", TRANSITION_FIELDS)
def test_two_mebibytes_of_control_characters_in_a_transition_field_are_refused_naming_it(plugin, sim, credentials, field: str) -> None:
    message = assert_refused_naming(plugin.run_tool("approval_transition", carried(**{field: CONTROL}), credentials), f"'{field}'")
    assert "too long" in message
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize("field", ROUTE_FIELDS)
def test_two_mebibytes_of_control_characters_in_a_route_field_are_refused_naming_it(plugin, sim, credentials, field: str) -> None:
    message = assert_refused_naming(plugin.run_tool("approval_route", route_params(**{field: CONTROL}), credentials), f"'{field}'")
    assert "too long" in message
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize(
    ("tool", "field"),
    [("approval_transition", "event"), ("approval_transition", "actor_level"), ("approval_transition", "state"),
     ("approval_transition", "required_level"), ("approval_route", "currency"), ("approval_route", "priority")],
)
def test_a_short_value_of_control_characters_is_shown_escaped(plugin, sim, credentials, tool: str, field: str) -> None:
    params = carried(**{field: SHORT_CONTROL}) if tool == "approval_transition" else route_params(**{field: SHORT_CONTROL})
    message = assert_refused_naming(plugin.run_tool(tool, params, credentials), field)
    assert "must be" in message and "'\\x00\\x01\\x02" in message
    assert_still_answers(plugin, credentials)


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("tool", "field", "value"),
    [
        ("approval_route", "amount", "NaN"),
        ("approval_route", "amount", "1e400"),
        ("approval_route", "amount", float("inf")),
        ("approval_route", "deadline_hours", "-inf"),
        ("approval_route", "deadline_hours", 1e308),
        ("approval_transition", "version", "nan"),
        ("approval_transition", "version", 1e308),
        ("approval_transition", "expected_version", "inf"),
        ("approval_transition", "expected_version", "9" * 60),
    ],
)
def test_nan_infinities_and_huge_numbers_are_refused_naming_the_field(plugin, sim, credentials, tool, field, value) -> None:
    params = carried(**{field: value}) if tool == "approval_transition" else route_params(**{field: value})
    message = assert_refused_naming(plugin.run_tool(tool, params, credentials), f"'{field}'", field)
    assert "finite" in message or "at most" in message
    assert_still_answers(plugin, credentials)
