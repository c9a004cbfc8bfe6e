"""What users type into the credentials form becomes a usable gateway configuration, or a message
that names the field to fix."""

import pytest

from gateway.config import GatewayConfig, normalize_base_url, parse_number, sanitize_api_key
from gateway.errors import ConfigurationError, FieldError


@pytest.mark.parametrize(
    "typed",
    [
        "https://api.holysheep.ai",
        "https://api.holysheep.ai/",
        "https://api.holysheep.ai/v1",
        "https://api.holysheep.ai/v1/",
        "https://api.holysheep.ai/v1//",
        "https://api.holysheep.ai/v1/v1",
        "https://api.holysheep.ai/v1/chat/completions",
        "  https://api.holysheep.ai/v1  ",
        '"https://api.holysheep.ai/v1"',
    ],
)
def test_base_url_is_accepted_with_or_without_v1_and_never_doubles_it(typed: str) -> None:
    assert normalize_base_url(typed) == "https://api.holysheep.ai/v1"


def test_base_url_keeps_a_path_that_already_names_a_version() -> None:
    assert normalize_base_url("https://ark.example.com/api/v3/") == "https://ark.example.com/api/v3"
    assert normalize_base_url("http://127.0.0.1:8080/proxy/openai") == "http://127.0.0.1:8080/proxy/openai/v1"


def test_empty_base_url_means_the_default_gateway() -> None:
    assert normalize_base_url("") == "https://api.holysheep.ai/v1"


@pytest.mark.parametrize("typed", ["api.holysheep.ai/v1", "ftp://x/v1", "https:///v1", "https://h/v1?x=1"])
def test_malformed_base_url_says_what_to_fix(typed: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_base_url(typed)
    assert caught.value.field == "base_url"
    assert "https://api.holysheep.ai/v1" in str(caught.value)


@pytest.mark.parametrize(
    "typed",
    ["sk-abc123", "  sk-abc123\n", '"sk-abc123"', "'sk-abc123'", "Bearer sk-abc123", "bearer  sk-abc123", '"Bearer sk-abc123"'],
)
def test_api_key_loses_what_copy_paste_adds(typed: str) -> None:
    assert sanitize_api_key(typed) == "sk-abc123"


@pytest.mark.parametrize("typed", ["", "   ", '""', "sk-abc 123", "sk-ключ"])
def test_unusable_api_key_is_refused_without_echoing_it(typed: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        sanitize_api_key(typed)
    assert caught.value.field == "api_key"
    if typed.strip(' "'):
        assert typed.strip() not in str(caught.value)


def test_credentials_are_coerced_from_strings() -> None:
    config = GatewayConfig.from_credentials(
        {"api_key": "k-123456789", "base_url": "http://127.0.0.1:9/", "timeout_seconds": "30", "max_retries": "0",
         "fallback_models": "gpt-4.1-mini, gemini-2.5-flash"}
    )
    assert config.base_url == "http://127.0.0.1:9/v1"
    assert config.timeout_seconds == 30
    assert config.max_retries == 0
    assert config.fallback_models == ("gpt-4.1-mini", "gemini-2.5-flash")
    assert "k-123456789" not in repr(config)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timeout_seconds", "0", "at least 1"),
        ("timeout_seconds", "900", "at most 540"),
        ("timeout_seconds", "soon", "must be a number"),
        ("max_retries", "1.5", "whole number"),
        ("max_retries", "-1", "at least 0"),
    ],
)
def test_out_of_range_credentials_name_the_field(field: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        GatewayConfig.from_credentials({"api_key": "k", field: value})
    assert caught.value.field == field
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://redis:6379/0", "must start with redis://"),
        ("redis://:pw@redis:notaport/0", "port that is not a number"),
        ("redis://:pw@/0", "no host"),
        ("redis://:pw@redis:6379/three", "database must be a number"),
    ],
)
def test_a_malformed_redis_url_names_the_field_and_never_repeats_the_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as caught:
        GatewayConfig.from_credentials({"api_key": "k-123456789", "redis_url": url})
    assert caught.value.field == "redis_url" and "pw" not in str(caught.value).replace("password", "")


def test_a_well_formed_redis_url_is_kept() -> None:
    url = "redis://:difyai123456@redis:6379/3"
    assert GatewayConfig.from_credentials({"api_key": "k-123456789", "redis_url": url}).redis_url == url


@pytest.mark.parametrize(
    ("value", "limits", "problem"),
    [
        ("", {"default": None}, "is required"),
        (True, {"default": None}, "must be a number, got a boolean"),
        ("abc", {"default": None}, "must be a number, got 'abc'"),
        ("nan", {"default": None}, "must be a finite number"),
        ("2.5", {"default": None, "integer": True}, "must be a whole number, got 2.5"),
        (" 3 ", {"default": None, "maximum": 2}, "must be at most 2, got 3"),
        (-0.5, {"default": None, "minimum": 0}, "must be at least 0, got -0.5"),
    ],
)
def test_parse_number_reports_a_field_error_with_field_and_problem(value: object, limits: dict[str, object], problem: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_number(value, field="temperature", **limits)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.problem) == ("temperature", problem)
    assert str(caught.value) == f"temperature {problem}"
    assert isinstance(caught.value, ConfigurationError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("value", "limits", "expected"),
    [
        ("", {"default": 7}, 7),
        (None, {"default": None, "allow_none": True}, None),
        ("0.25", {"default": None}, 0.25),
        (3.0, {"default": None, "integer": True}, 3),
        ("10", {"default": None, "integer": True, "minimum": 1, "maximum": 10}, 10),
    ],
)
def test_parse_number_coerces_what_dify_sends(value: object, limits: dict[str, object], expected: object) -> None:
    result = parse_number(value, field="x", **limits)  # type: ignore[arg-type]
    assert result == expected and type(result) is type(expected)
