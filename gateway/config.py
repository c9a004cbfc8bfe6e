"""Gateway settings parsed from what a user typed into the provider form.

Dify hands credentials over as strings (or numbers, or nothing): every value is coerced and
validated here, and every problem names the field to fix.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from gateway.errors import FieldError

DEFAULT_BASE_URL = "https://api.holysheep.ai/v1"
DEFAULT_MODEL = "deepseek-v3.2"
DEFAULT_TIMEOUT_SECONDS = 240.0
# Dify's daemon kills a whole invocation after PLUGIN_MAX_EXECUTION_TIMEOUT (600 s by default);
# a call must give up early enough for the tool to still report why.
MAX_TIMEOUT_SECONDS = 540.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_LIMIT = 10

_VERSION_SEGMENT = re.compile(r"^v\d+[a-z0-9]*$")
_ENDPOINT_SUFFIXES = ("/chat/completions", "/completions", "/models")


def normalize_base_url(raw: object) -> str:
    """`https://host`, `https://host/`, `https://host/v1/`, `https://host/v1/chat/completions` all become
    `https://host/v1`; a path that already ends in a version (`/api/v3`) is kept; `/v1/v1` collapses."""
    text = str(raw or "").strip().strip("\"'").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "://" not in text:
        raise FieldError("base_url", f"'{text}' has no scheme: use a full URL such as {DEFAULT_BASE_URL}")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError("base_url", f"'{text}' is not an http(s) URL with a host: use e.g. {DEFAULT_BASE_URL}")
    if parts.query or parts.fragment:
        raise FieldError("base_url", "must not contain '?' or '#': give only the API root, e.g. " + DEFAULT_BASE_URL)
    path = re.sub(r"/+", "/", parts.path).rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)].rstrip("/")
    segments = [s for s in path.split("/") if s]
    while len(segments) >= 2 and segments[-1] == segments[-2] and _VERSION_SEGMENT.match(segments[-1]):
        segments.pop()
    if not segments or not _VERSION_SEGMENT.match(segments[-1]):
        segments.append("v1")
    return urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segments), "", ""))


def sanitize_api_key(raw: object) -> str:
    """Strips what copy-paste adds around a key: whitespace, quotes, an accidental `Bearer ` prefix."""
    key = str(raw or "").strip()
    previous = None
    while key != previous:
        previous = key
        key = key.strip().strip("\"'`").strip()
        if key[:7].lower() == "bearer ":
            key = key[7:]
    if not key:
        raise FieldError("api_key", "is empty: paste the key from your gateway dashboard")
    if any(ch.isspace() for ch in key):
        raise FieldError("api_key", "contains spaces or line breaks: paste only the key itself")
    if not key.isascii() or not key.isprintable():
        raise FieldError("api_key", "contains non-ASCII or invisible characters: copy it again from the dashboard")
    return key


def key_digest(api_key: str) -> str:
    """A short, stable, non-reversible name for a key: used in shared-state keys, never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def parse_number(
    value: object,
    *,
    field: str,
    default: float | None,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    allow_none: bool = False,
) -> Any:
    """The one number parser: coerces a Dify value (float, int, numeric string, empty) and checks its
    range. Every problem is a FieldError naming `field`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None and not allow_none:
            raise FieldError(field, "is required")
        return default
    if isinstance(value, bool):
        raise FieldError(field, "must be a number, got a boolean")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FieldError(field, f"must be a number, got '{value}'") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FieldError(field, "must be a finite number")
    if integer:
        if number != int(number):
            raise FieldError(field, f"must be a whole number, got {value}")
        number = int(number)
    if minimum is not None and number < minimum:
        raise FieldError(field, f"must be at least {_fmt(minimum)}, got {_fmt(number)}")
    if maximum is not None and number > maximum:
        raise FieldError(field, f"must be at most {_fmt(maximum)}, got {_fmt(number)}")
    return number


def check_redis_url(raw: object) -> str:
    """The redis_url credential, checked for shape before anything connects. The message never repeats
    the URL, which usually holds a password."""
    url = str(raw or "").strip()
    if not url:
        return ""
    hint = "use redis://:password@host:6379/0 (rediss:// for TLS)"
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise FieldError("redis_url", f"must start with redis://, rediss:// or unix://: {hint}")
    if not _port_is_valid(parts):
        raise FieldError("redis_url", f"has a port that is not a number: {hint}")
    if parts.scheme != "unix" and not parts.hostname:
        raise FieldError("redis_url", f"has no host: {hint}")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise FieldError("redis_url", f"is malformed: its database must be a number after the last '/': {hint}")
    return url


def _port_is_valid(parts: SplitResult) -> bool:
    try:
        return parts.port is None or parts.port > 0  # urlsplit reads the port lazily: a bad one raises here
    except ValueError:
        return False


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything a client needs to reach one gateway with one key."""

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    default_model: str = DEFAULT_MODEL
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    connect_timeout_seconds: float = 10.0
    max_retries: int = DEFAULT_MAX_RETRIES
    fallback_models: tuple[str, ...] = ()
    price_overrides: str = ""
    redis_url: str = ""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> GatewayConfig:
        creds = credentials or {}
        fallbacks = tuple(
            m.strip() for m in re.split(r"[,\n]", str(creds.get("fallback_models") or "")) if m.strip()
        )
        return cls(
            api_key=sanitize_api_key(creds.get("api_key")),
            base_url=normalize_base_url(creds.get("base_url")),
            default_model=str(creds.get("default_model") or "").strip() or DEFAULT_MODEL,
            timeout_seconds=parse_number(
                creds.get("timeout_seconds"),
                field="timeout_seconds",
                default=DEFAULT_TIMEOUT_SECONDS,
                minimum=1,
                maximum=MAX_TIMEOUT_SECONDS,
            ),
            max_retries=parse_number(
                creds.get("max_retries"),
                field="max_retries",
                default=DEFAULT_MAX_RETRIES,
                minimum=0,
                maximum=MAX_RETRIES_LIMIT,
                integer=True,
            ),
            fallback_models=fallbacks,
            price_overrides=str(creds.get("price_overrides") or "").strip(),
            redis_url=check_redis_url(creds.get("redis_url")),
        )

    @property
    def key_digest(self) -> str:
        return key_digest(self.api_key)

    def __repr__(self) -> str:  # never print the key
        return f"GatewayConfig(base_url={self.base_url!r}, default_model={self.default_model!r})"
