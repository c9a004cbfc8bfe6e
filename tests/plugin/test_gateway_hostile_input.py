"""Hostile or careless input to the gateway side of the plugin (credentials, chat and batch parameters),
through the plugin as Dify starts it: each is refused with a message naming the field (never the
catch-all "internal error"), every message stays small, no password or key leaves in any form, and the
plugin answers the next call at its usual speed and memory."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess, ToolOutcome
from tests.plugin.refusals import assert_refused_naming as refused_naming

MAX_MESSAGE_CHARS = 2_500
MAX_LINE_BYTES = 64 * 1024  # far below the daemon's 5 MiB
# 2 MiB of control characters: JSON-escaped, a message repeating it would be a 12 MB line.
CONTROL = "".join(chr(i % 32) for i in range(2 * 1024 * 1024))
BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
) + "\n"
DEEP_JSON = "[" * 10_000 + "]" * 10_000
DEEP_JSON_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000
PASSWORD = "pw-VERYSECRET-4711"


@pytest.fixture(scope="module")
def plugin() -> Iterator[PluginProcess]:
    """A plugin of this module's own, so its longest line and its memory are this module's."""
    with PluginProcess() as process:
        yield process


def assert_refused_naming(outcome: ToolOutcome, *names: str) -> str:
    return refused_naming(outcome, *names, max_chars=MAX_MESSAGE_CHARS)


def assert_still_answers(plugin: PluginProcess, credentials: dict[str, Any]) -> None:
    outcome = plugin.run_tool("chat", {"prompt": "still there?"}, credentials)
    assert outcome.ok, outcome.error_message
    assert outcome.text


def timed(call: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def encodings(secret: str) -> list[str]:
    """The forms a secret may leak in: raw, base64 of it and of user:secret, percent-encoded."""
    forms = [secret, urllib.parse.quote(secret, safe="")]
    for text in (secret, f"user:{secret}", f":{secret}"):
        forms.append(base64.b64encode(text.encode()).decode().rstrip("="))
    return forms


def test_a_2_mib_key_and_many_long_keys_do_not_slow_the_next_error(plugin: PluginProcess, credentials: dict[str, Any]) -> None:
    wrong = {**credentials, "api_key": "sk-wrong-0123456789abcdef", "timeout_seconds": "1", "max_retries": "0"}

    def baseline() -> float:
        return min(timed(lambda: plugin.run_tool("chat", {"prompt": "hi"}, wrong))[0] for _ in range(3))

    plugin.run_tool("chat", {"prompt": "warm up"}, credentials)
    before = baseline()
    huge = plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "api_key": "sk-" + "k" * (2 << 20)})
    message = assert_refused_naming(huge, "api_key")
    assert "too long" in message and "kkkkkkkk" not in message
    for n in range(40):  # keys as long as allowed, each seen by the process
        outcome = plugin.run_tool("chat", {"prompt": "hi"}, {**wrong, "api_key": f"sk-{n:03d}-" + "Zq7x" * 126})
        assert not outcome.ok and "api_key" in outcome.error_message
    after = baseline()
    assert after < before * 3 + 0.5, (before, after)  # generous: only noise apart
    assert plugin.largest_line < MAX_LINE_BYTES
    assert_still_answers(plugin, credentials)


def test_base_url_with_userinfo_is_refused_and_the_password_never_appears(plugin: PluginProcess, credentials: dict[str, Any]) -> None:
    base = credentials["base_url"]
    with_userinfo = base.replace("://", f"://user:{PASSWORD}@", 1)
    outcomes = [
        plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "base_url": with_userinfo}),
        plugin.run_tool("stream_chat", {"prompt": "hi"}, {**credentials, "base_url": with_userinfo}),
        plugin.run_tool("batch_chat", {"prompts": '["a", "b"]'}, {**credentials, "base_url": with_userinfo}),
        plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "base_url": f"http://user:{PASSWORD}@[::1/v1"}),
        plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "base_url": f"user:{PASSWORD}@example.com/v1"}),
    ]
    for outcome in outcomes:
        assert_refused_naming(outcome, "base_url")
    assert "user name or password" in outcomes[0].error_message
    accepted, validation = plugin.validate({**credentials, "base_url": with_userinfo})
    assert not accepted and "base_url" in validation
    everything = json.dumps([[o.messages, o.error] for o in outcomes] + [validation], ensure_ascii=False) + plugin.stderr_text()
    for form in encodings(PASSWORD):
        assert form not in everything, form
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("http://[::1", "not a valid URL"),
        ("http://" + "a" * 300 + ".example/v1", "too long"),
        ("http://" + "b" * 70 + ".example/v1", "at most 63"),
        ("http://127.0.0.1:99999/v1", "not a valid URL"),
        ("http://gate way.example/v1", "host"),
        ("http://" + "\x07" * (2 << 20), "too long"),
    ],
)
def test_malformed_base_url_is_refused_naming_the_field(
    plugin: PluginProcess, credentials: dict[str, Any], base_url: str, problem: str
) -> None:
    outcome = plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "base_url": base_url})
    assert problem in assert_refused_naming(outcome, "base_url")
    accepted, validation = plugin.validate({**credentials, "base_url": base_url})
    assert not accepted and "base_url" in validation and "internal error" not in validation and len(validation) < MAX_MESSAGE_CHARS
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize("query", ["db=x", "socket_timeout=abc", "socket_timeout=nan", "no_such_option=1", "protocol=9"])
def test_redis_url_options_redis_py_rejects_are_the_credentials_message(
    plugin: PluginProcess, credentials: dict[str, Any], query: str
) -> None:
    redis_url = f"redis://:{PASSWORD}@127.0.0.1:6379/0?{query}"
    outcome = plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "redis_url": redis_url})
    assert_refused_naming(outcome, "redis_url")
    accepted, validation = plugin.validate({**credentials, "redis_url": redis_url})
    assert not accepted and "redis_url" in validation and "internal error" not in validation
    everything = json.dumps([outcome.messages, outcome.error, validation]) + plugin.stderr_text()
    assert PASSWORD not in everything
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize(
    "price_overrides",
    [BILLION_LAUGHS, DEEP_JSON, DEEP_JSON_OBJECT, "- " * 10_000 + "x\n", '{"m": {"input": NaN, "output": 1}}', "m: {input: .inf, output: 1}"],
    ids=["billion-laughs", "deep-json", "deep-json-object", "deep-yaml", "nan", "infinity"],
)
def test_hostile_price_overrides_are_refused_without_expanding_them(
    plugin: PluginProcess, credentials: dict[str, Any], price_overrides: str
) -> None:
    rss_before = plugin.rss_bytes
    elapsed, outcome = timed(lambda: plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "price_overrides": price_overrides}))
    assert_refused_naming(outcome, "price_overrides")
    assert elapsed < 10
    assert plugin.rss_bytes - rss_before < 100 * 1024 * 1024
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize(
    ("prompts", "problem"),
    [
        (DEEP_JSON, "nested too deeply"),
        (DEEP_JSON_OBJECT, "nested too deeply"),
        ('["fine", "\\ud800 lone surrogate"]', "lone surrogate"),
        ('[{"id": "\\udfff", "prompt": "x"}]', "lone surrogate"),
        ('["x", 1e999]', "not finite"),
        (json.dumps([{"prompt": "x", "id": CONTROL}]), "too long"),
        (json.dumps([{"prompt": "x", "model": CONTROL[:150]}]), "model"),
    ],
    ids=["deep-array", "deep-object", "lone-surrogate", "lone-surrogate-id", "infinity", "control-id", "control-model"],
)
def test_hostile_batch_prompts_are_refused_naming_the_parameter(
    plugin: PluginProcess, credentials: dict[str, Any], prompts: str, problem: str
) -> None:
    outcome = plugin.run_tool("batch_chat", {"prompts": prompts}, credentials)
    assert problem in assert_refused_naming(outcome, "prompts")
    assert plugin.largest_line < MAX_LINE_BYTES
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize(
    ("where", "name"),
    [("credentials", "fallback_models"), ("credentials", "default_model"), ("parameters", "custom_model"), ("parameters", "model")],
)
def test_2_mib_of_control_characters_are_refused_with_a_short_message(
    plugin: PluginProcess, credentials: dict[str, Any], where: str, name: str
) -> None:
    params: dict[str, Any] = {"prompt": "hi"}
    creds = dict(credentials)
    (creds if where == "credentials" else params)[name] = CONTROL
    elapsed, outcome = timed(lambda: plugin.run_tool("chat", params, creds))
    assert_refused_naming(outcome, name)
    assert elapsed < 10
    assert plugin.largest_line < MAX_LINE_BYTES
    assert_still_answers(plugin, credentials)


@pytest.mark.parametrize(
    ("name", "value"),
    [("temperature", "NaN"), ("top_p", "-Infinity"), ("max_tokens", "1e400"), ("seed", "9" * 5000), ("seed", "1e300")],
)
def test_numbers_that_are_not_finite_or_huge_name_the_field(
    plugin: PluginProcess, credentials: dict[str, Any], name: str, value: str
) -> None:
    outcome = plugin.run_tool("chat", {"prompt": "hi", name: value}, credentials)
    assert_refused_naming(outcome, name)
    outcome = plugin.run_tool("chat", {"prompt": "hi"}, {**credentials, "timeout_seconds": value})
    assert_refused_naming(outcome, "timeout_seconds")
    assert_still_answers(plugin, credentials)
