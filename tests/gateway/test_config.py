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


# ----------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "url",
    ["http://user:SECRETPW@gateway.example/v1", "https://:SECRETPW@gateway.example", "http://SECRETPW@gateway.example/v1"],
)
def test_base_url_with_a_user_name_or_password_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(FieldError) as caught:
        normalize_base_url(url)
    assert caught.value.field == "base_url"
    assert "user name or password" in caught.value.problem and "api_key" in caught.value.problem
    assert "SECRETPW" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1", "not a valid URL"),
        ("http://u:SECRETPW@[::1/v1", "not a valid URL"),
        ("http://" + "a" * 300 + ".example/v1", "too long"),
        ("http://" + "a" * 64 + ".example/v1", "at most 63"),
        ("http://gateway.example:70000/v1", "not a valid URL"),
        ("http://gateway.example:0/v1", "port 0"),
        ("http://gate way.example/v1", "characters a host name cannot have"),
        ("http://gate\x00way.example/v1", "characters a host name cannot have"),
        ("http://.example/v1", "empty part"),
        ("http://[zz]/v1", "not a valid URL"),
        ("http://\ud800.example/v1", "lone surrogate"),
        ("http://gateway.example/" + "v" * 3_000_000, "too long"),
    ],
)
def test_malformed_base_url_is_a_field_error_never_a_library_exception(url: str, problem: str) -> None:
    with pytest.raises(FieldError) as caught:
        normalize_base_url(url)
    assert caught.value.field == "base_url" and problem in caught.value.problem
    assert "SECRETPW" not in str(caught.value) and len(str(caught.value)) < 400


@pytest.mark.parametrize("url", ["http://münchen.example/v1", "http://[::1]:8080/v1", "http://my_gateway:8080", "http://localhost."])
def test_unusual_but_valid_base_urls_are_kept(url: str) -> None:
    assert normalize_base_url(url).endswith("/v1")


def test_an_over_long_api_key_is_refused_before_anything_is_done_with_it() -> None:
    for key in ("sk-" + "a" * 600, "sk-" + "\x07" * (2 << 20)):
        with pytest.raises(FieldError) as caught:
            sanitize_api_key(key)
        assert caught.value.field == "api_key" and "too long" in caught.value.problem
        assert "aaaaaaaa" not in str(caught.value) and "\x07" not in str(caught.value)
    assert sanitize_api_key("sk-" + "a" * 509) == "sk-" + "a" * 509


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://:pw-SECRET@redis:6379/0?db=x", "Invalid value for 'db'"),
        ("redis://:pw-SECRET@redis:6379/0?socket_timeout=abc", "socket_timeout"),
        ("redis://:pw-SECRET@redis:6379/0?socket_timeout=nan", "socket_timeout"),
        ("redis://:pw-SECRET@redis:6379/0?no_such_option=1", "no_such_option"),
        ("redis://:pw-SECRET@redis:6379/0?protocol=9", "protocol"),
        ("redis://:pw-SECRET@redis:99999/0", "port"),
        ("redis://:pw-SECRET@[::1/0", "not a valid URL"),
        ("rediss://:pw-SECRET@redis:6379/0?ssl_cert_reqs=maybe", "SSL"),
        ("redis://:pw-SECRET@redis:6379/0?db=" + "\x07" * (2 << 20), "too long"),
    ],
)
def test_every_redis_py_url_error_is_the_credentials_message(url: str, problem: str) -> None:
    with pytest.raises(FieldError) as caught:
        GatewayConfig.from_credentials({"api_key": "k-123456789", "redis_url": url})
    assert caught.value.field == "redis_url" and problem in caught.value.problem
    assert "SECRET" not in str(caught.value) and len(str(caught.value)) < 400


def test_a_unix_socket_redis_url_is_accepted() -> None:
    url = "unix:///var/run/redis.sock?db=2"
    assert GatewayConfig.from_credentials({"api_key": "k-123456789", "redis_url": url}).redis_url == url


@pytest.mark.parametrize("field", ["default_model", "fallback_models"])
@pytest.mark.parametrize("value", ["\x07" * (2 << 20), "gpt\x00-4.1", "model\u202e", "m\ud800"])
def test_model_names_with_control_characters_or_megabytes_are_refused(field: str, value: str) -> None:
    with pytest.raises(FieldError) as caught:
        GatewayConfig.from_credentials({"api_key": "k-123456789", field: value})
    assert caught.value.field == field
    assert len(str(caught.value)) < 400 and "\x07" not in str(caught.value) and "\x00" not in str(caught.value)


def test_too_many_fallback_models_are_refused() -> None:
    with pytest.raises(FieldError, match="at most"):
        GatewayConfig.from_credentials({"api_key": "k-123456789", "fallback_models": ",".join(f"m{n}" for n in range(50))})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("inf", "finite"),
        ("-Infinity", "finite"),
        (float("nan"), "finite"),
        ("1e400", "finite"),
        (10**400, "too large"),
        ("9" * 5000, "must be a number"),
        (1e300, "too large"),
        ("\x07" * 1000, "must be a number"),
    ],
)
def test_numbers_that_are_not_finite_or_are_huge_are_refused_naming_the_field(value: object, problem: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_number(value, field="seed", default=None, integer=True)
    assert caught.value.field == "seed" and problem in caught.value.problem
    assert len(str(caught.value)) < 400 and "\x07" not in str(caught.value)
