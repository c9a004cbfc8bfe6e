"""Gateway settings parsed from what a user typed into the provider form.

Dify hands credentials over as strings (or numbers, or nothing): every value is coerced and
validated here, and every problem names the field to fix.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import urllib3
from requests.models import PreparedRequest

from gateway.errors import FieldError
from gateway.spend.budget import BudgetPolicy, parse_budgets
from gateway.spend.cache import DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS
from gateway.state.keys import Keys, digest
from gateway.wire.net_guard import IPNetwork, Origin
from gateway.wire.webhooks import WebhookAllowlist
from untrusted import InputError, check_text, quote

DEFAULT_BASE_URL = "https://api.holysheep.ai/v1"
DEFAULT_MODEL = "deepseek-v3.2"
DEFAULT_TIMEOUT_SECONDS = 240.0
# Dify's daemon kills a whole invocation after PLUGIN_MAX_EXECUTION_TIMEOUT (600 s by default);
# a call must give up early enough for the tool to still report why.
MAX_TIMEOUT_SECONDS = 540.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_LIMIT = 10

# Bounds on what a credential may be: far above any real value, far below what could stall the process.
MAX_API_KEY_CHARS = 512
MAX_URL_CHARS = 2048
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63
MAX_MODEL_CHARS = 200
MAX_FALLBACK_MODELS = 20
MAX_FALLBACK_CHARS = 4000
MAX_PRICE_OVERRIDES_CHARS = 100_000
MAX_BUDGETS_CHARS = 20_000
MAX_NUMBER_CHARS = 100
MAX_MAGNITUDE = 2**53  # numbers pass through float: past this they are no longer exact

_VERSION_SEGMENT = re.compile(r"^v\d+[a-z0-9]*$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$")
# Control, format (zero-width, bidi), surrogate, private-use, unassigned, line and paragraph separators.
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_ENDPOINT_SUFFIXES = ("/chat/completions", "/completions", "/models")


def normalize_base_url(raw: object) -> str:
    """`https://host`, `https://host/`, `https://host/v1/`, `https://host/v1/chat/completions` all become
    `https://host/v1`; a path that already ends in a version (`/api/v3`) is kept; `/v1/v1` collapses.

    Whatever is wrong with it is a FieldError("base_url", ...) that never repeats a user name or password
    (a URL with `user:password@` is refused: requests would send it as Basic auth instead of the key)."""
    text = _credential_text(raw, "base_url", MAX_URL_CHARS).strip("\"'").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "://" not in text:
        raise FieldError("base_url", f"{quote(_without_userinfo(text))} has no scheme: use a full URL such as {DEFAULT_BASE_URL}")
    try:
        parts = urlsplit(text)
        hostname, port = parts.hostname, parts.port  # urlsplit reads these lazily: a bad one raises here
    except ValueError as exc:
        shown = quote(_without_userinfo(text))
        raise FieldError("base_url", f"{shown} is not a valid URL ({_first_words(exc)}): use e.g. {DEFAULT_BASE_URL}") from None
    if "@" in parts.netloc:
        raise FieldError("base_url", f"must not contain a user name or password (user:password@): put the key in api_key, e.g. {DEFAULT_BASE_URL}")
    if parts.scheme not in ("http", "https") or not hostname:
        raise FieldError("base_url", f"{quote(text)} is not an http(s) URL with a host: use e.g. {DEFAULT_BASE_URL}")
    if port == 0:
        raise FieldError("base_url", f"has port 0: give the gateway's port (1 to 65535) or none, e.g. {DEFAULT_BASE_URL}")
    problem = _host_problem(parts.netloc.rsplit(":", 1)[0] if port is not None or parts.netloc.endswith(":") else parts.netloc)
    if problem:
        raise FieldError("base_url", f"has an invalid host: {problem}; use e.g. {DEFAULT_BASE_URL}")
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
    url = urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segments), "", ""))
    _check_http_libraries_accept(url)
    return url


def _host_problem(host: str) -> str | None:
    """Why requests/urllib3 (or DNS) would fail on `host` as typed, or None. `host` is the netloc without
    the port (IPv6 literals keep their brackets)."""
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1].split("%", 1)[0])
        except ValueError:
            return f"{quote(host)} is not an IPv6 address"
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return f"{quote(host)} is not a valid host name"
    if len(ascii_host.rstrip(".")) > MAX_HOST_CHARS:
        return f"the host name is too long ({len(ascii_host)} characters, at most {MAX_HOST_CHARS})"
    labels = ascii_host[:-1].split(".") if ascii_host.endswith(".") else ascii_host.split(".")
    for label in labels:
        if not label:
            return f"{quote(host)} has an empty part between dots"
        if len(label) > MAX_LABEL_CHARS:
            return f"a part of the host name is too long ({len(label)} characters, at most {MAX_LABEL_CHARS} between dots)"
        if not _HOST_LABEL.match(label):
            return f"{quote(host)} contains characters a host name cannot have"
    return None


def _check_http_libraries_accept(url: str) -> None:
    """The URL as requests will prepare it: anything it (or urllib3) refuses is a base_url error now,
    never an exception in the middle of a call."""
    try:
        urllib3.util.parse_url(url)
        PreparedRequest().prepare_url(url + "/models", None)
    except Exception as exc:  # whatever they raise, the user is told which field to fix
        raise FieldError("base_url", f"is not a URL the HTTP client can use ({_first_words(exc)}): use e.g. {DEFAULT_BASE_URL}") from None


def _without_userinfo(text: str) -> str:
    """`text` with anything before an '@' in its authority part replaced, for messages."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0], default=len(rest))
    authority = rest[:end]
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{rest[end:]}"


def _first_words(exc: BaseException) -> str:
    """A library's exception message, short and without any URL it may repeat."""
    lines = str(exc)[:1000].splitlines()
    text = re.sub(r"\S*://\S*|\S*@\S*", "<url>", lines[0] if lines else type(exc).__name__)
    return quote(text, 120)


def _credential_text(raw: object, field: str, max_chars: int) -> str:
    """A credential as text: stripped, at most `max_chars`, valid Unicode; otherwise a FieldError."""
    text = "" if raw is None else raw if isinstance(raw, str) else str(raw) if isinstance(raw, int | float) else None
    if text is None:
        raise FieldError(field, f"must be text, got {type(raw).__name__}")
    try:
        check_text(text, max_chars=max_chars)
    except InputError as exc:
        raise FieldError(field, str(exc)) from None
    return text.strip()


def model_name(raw: object, field: str) -> str:
    """A model name as typed (stripped): at most MAX_MODEL_CHARS, no control or invisible characters."""
    name = _credential_text(raw, field, MAX_MODEL_CHARS)
    for ch in name:
        if unicodedata.category(ch) in _INVISIBLE:
            raise FieldError(field, f"contains a control or invisible character ({quote(ch)}): give a model name, got {quote(name)}")
    return name


def parse_fallback_models(raw: object) -> tuple[str, ...]:
    text = _credential_text(raw, "fallback_models", MAX_FALLBACK_CHARS)
    names = [m.strip() for m in re.split(r"[,\n]", text) if m.strip()]
    if len(names) > MAX_FALLBACK_MODELS:
        raise FieldError("fallback_models", f"lists {len(names)} models; at most {MAX_FALLBACK_MODELS}")
    return tuple(model_name(name, "fallback_models") for name in names)


def sanitize_api_key(raw: object) -> str:
    """Strips what copy-paste adds around a key: whitespace, quotes, an accidental `Bearer ` prefix."""
    if raw is not None and not isinstance(raw, str | int):
        raise FieldError("api_key", f"must be text, got {type(raw).__name__}")
    key = "" if raw is None else str(raw)
    if len(key) > MAX_API_KEY_CHARS * 2:  # checked before any work on it (and the key is never repeated)
        raise FieldError("api_key", f"is too long ({len(key)} characters, at most {MAX_API_KEY_CHARS}): paste only the key itself")
    key = key.strip()
    previous = None
    while key != previous:
        previous = key
        key = key.strip().strip("\"'`").strip()
        if key[:7].lower() == "bearer ":
            key = key[7:]
    if not key:
        raise FieldError("api_key", "is empty: paste the key from your gateway dashboard")
    if len(key) > MAX_API_KEY_CHARS:
        raise FieldError("api_key", f"is too long ({len(key)} characters, at most {MAX_API_KEY_CHARS}): paste only the key itself")
    if any(ch.isspace() for ch in key):
        raise FieldError("api_key", "contains spaces or line breaks: paste only the key itself")
    if not key.isascii() or not key.isprintable():
        raise FieldError("api_key", "contains non-ASCII or invisible characters: copy it again from the dashboard")
    return key


def key_digest(api_key: str) -> str:
    """A short, stable, non-reversible name for a key: used in shared-state keys, never the key itself."""
    return digest(api_key)


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
    if isinstance(value, int) and abs(value) > MAX_MAGNITUDE:
        raise FieldError(field, f"is too large (at most {MAX_MAGNITUDE} in size)")
    if isinstance(value, str) and len(value) > MAX_NUMBER_CHARS:
        raise FieldError(field, f"must be a number, got {quote(value)}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise FieldError(field, f"must be a number, got {quote(value if isinstance(value, str | int | float) else type(value).__name__)}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FieldError(field, "must be a finite number")
    if abs(number) > MAX_MAGNITUDE:
        raise FieldError(field, f"is too large (at most {MAX_MAGNITUDE} in size)")
    if integer:
        if number != int(number):
            raise FieldError(field, f"must be a whole number, got {_fmt(number)}")
        number = int(number)
    if minimum is not None and number < minimum:
        raise FieldError(field, f"must be at least {_fmt(minimum)}, got {_fmt(number)}")
    if maximum is not None and number > maximum:
        raise FieldError(field, f"must be at most {_fmt(maximum)}, got {_fmt(number)}")
    return number


def check_redis_url(raw: object) -> str:
    """The redis_url credential, checked before anything connects: its shape, then redis-py's own URL
    parser and connection options (without connecting). redis+cluster:// and rediss+cluster:// name a
    Redis Cluster by one or more seed nodes. The message never repeats the URL, which usually holds a
    password."""
    url = _redis_url_text(raw)
    if not url:
        return ""
    hint = "use redis://:password@host:6379/0 (rediss:// for TLS; redis+cluster://:password@host1:6379,host2:6379 for a Redis Cluster)"
    from gateway.state.redis_connection import CLUSTER_URL_HINT, is_cluster_url, redis_url_problem  # redis only when configured

    if is_cluster_url(url):
        problem = redis_url_problem(url)
        if problem:
            raise FieldError("redis_url", f"{problem}: use {CLUSTER_URL_HINT} (rediss+cluster:// for TLS)")
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        raise FieldError("redis_url", f"is not a valid URL: {hint}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise FieldError("redis_url", f"must start with redis://, rediss://, unix:// or redis+cluster://: {hint}")
    if not _port_is_valid(parts):
        raise FieldError("redis_url", f"has a port that is not a number from 1 to 65535: {hint}")
    if parts.scheme != "unix" and not parts.hostname:
        raise FieldError("redis_url", f"has no host: {hint}")
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        raise FieldError("redis_url", f"is malformed: its database must be a number after the last '/': {hint}")
    problem = redis_url_problem(url)
    if problem:
        raise FieldError("redis_url", f"{problem}: {hint}")
    return url


MAX_ALLOWLIST_ENTRIES = 100


def parse_dify_files_url(raw: object) -> Origin | None:
    """The `dify_files_url` credential: the origin (scheme, host, port) of Dify's file server, or None
    when empty. Files from it are fetched whatever its address (`gateway.wire.file_fetch`)."""
    text = _credential_text(raw, "dify_files_url", MAX_URL_CHARS).strip("\"'").strip()
    if not text:
        return None
    return _origin_credential(text, "dify_files_url", "http://api:5001")


def parse_webhook_allowlist(raw: object) -> WebhookAllowlist:
    """The `webhook_allowlist` credential: comma-separated origins (https://hooks.internal:8443) and
    networks (10.0.5.0/24, 192.168.1.7) that approval webhooks may reach although they are internal."""
    text = _credential_text(raw, "webhook_allowlist", MAX_FALLBACK_CHARS)
    entries = [e.strip() for e in re.split(r"[,\s]+", text) if e.strip()]
    if len(entries) > MAX_ALLOWLIST_ENTRIES:
        raise FieldError("webhook_allowlist", f"has {len(entries)} entries; at most {MAX_ALLOWLIST_ENTRIES}: use CIDR ranges")
    origins: list[Origin] = []
    networks: list[IPNetwork] = []
    example = "https://hooks.internal:8443, 10.0.5.0/24"
    for position, entry in enumerate(entries, 1):
        if "://" in entry:
            origins.append(_origin_credential(entry, "webhook_allowlist", example, position))
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            raise FieldError(
                "webhook_allowlist",
                f"entry {position} ({quote(entry, 60)}) is neither an origin with a scheme nor an IP address or CIDR range: use e.g. {example}",
            ) from None
    return WebhookAllowlist(tuple(origins), tuple(networks))


def _origin_credential(text: str, field: str, example: str, position: int | None = None) -> Origin:
    where = f"entry {position} " if position is not None else ""
    shown = quote(_without_userinfo(text), 80)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise FieldError(field, f"{where}{shown} is not a valid URL: use e.g. {example}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FieldError(field, f"{where}{shown} is not an http(s) origin with a host: use e.g. {example}")
    if "@" in parts.netloc:
        raise FieldError(field, f"{where}must not contain a user name or password: give only scheme, host and port, e.g. {example}")
    if port == 0:
        raise FieldError(field, f"{where}{shown} has port 0: give the port (1 to 65535) or none")
    problem = _host_problem(parts.netloc.rsplit(":", 1)[0] if port is not None or parts.netloc.endswith(":") else parts.netloc)
    if problem:
        raise FieldError(field, f"{where}has an invalid host: {problem}; use e.g. {example}")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise FieldError(field, f"{where}{shown} has a path or query: give only the origin (scheme, host and port), e.g. {example}")
    return Origin.of(text)


def _redis_url_text(raw: object) -> str:
    """redis_url as text a Redis client can use: valid Unicode, no U+FFFD (what a lone surrogate becomes on
    its way through Dify), a host name that encodes. redis-py would otherwise fail at the first command
    with "Invalid character", naming no field."""
    url = _credential_text(raw, "redis_url", MAX_URL_CHARS)
    if "\ufffd" in url:
        raise FieldError(
            "redis_url", "contains U+FFFD, the replacement character: a character that was not valid text (such as a lone "
            "surrogate) was replaced on its way here; type the URL again"
        )
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return url  # the shape checks that follow say what is wrong
    if host and not host.isascii():
        try:
            host.encode("idna")
        except UnicodeError:
            raise FieldError("redis_url", "has a host name with characters a host name cannot have: use e.g. redis://redis:6379/0") from None
    return url


def _port_is_valid(parts: SplitResult) -> bool:
    try:
        return parts.port is None or parts.port > 0  # urlsplit reads the port lazily: a bad one raises here
    except ValueError:  # not a number, or out of range
        return False


TLS_VERSIONS = ("1.2", "1.3")


def parse_tls_min_version(raw: object) -> str:
    """`1.2` (the default) or `1.3`; `TLSv1.3`, `tls1.3` and `1.3` are the same. Older versions are refused."""
    text = _credential_text(raw, "tls_min_version", 20).lower().replace(" ", "")
    for prefix in ("tlsv", "tls"):
        text = text.removeprefix(prefix)
    if not text:
        return "1.2"
    if text in TLS_VERSIONS:
        return text
    if text in ("1.0", "1", "1.1"):
        raise FieldError("tls_min_version", f"TLS {text} is not allowed (broken and retired, RFC 8996): use 1.2 or 1.3")
    raise FieldError("tls_min_version", f"must be 1.2 or 1.3, got {quote(raw)}")


JOBS_VISIBLE_TO = ("app", "workspace")


def parse_jobs_visible_to(raw: object) -> str:
    """Who may read or cancel a batch job given its id: `app` (the default: only the app that submitted
    it) or `workspace` (every app of the workspace). Another workspace never can."""
    text = _credential_text(raw, "jobs_visible_to", 40).lower()
    if not text:
        return "app"
    if text in JOBS_VISIBLE_TO:
        return text
    raise FieldError(
        "jobs_visible_to", f"must be app (only the app that submitted a job) or workspace (every app of the workspace), got {quote(raw)}"
    )


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
    budgets: BudgetPolicy | None = None  # the administrator's spend limits (gateway.spend.budget)
    cache_ttl_seconds: float = DEFAULT_TTL_SECONDS  # 0: the reply cache is off (gateway.spend.cache)
    tls_min_version: str = "1.2"  # the oldest TLS an https gateway may use: 1.2 or 1.3
    jobs_visible_to: str = "app"  # who may read or cancel a batch job given its id: app | workspace

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> GatewayConfig:
        creds = credentials or {}
        return cls(
            api_key=sanitize_api_key(creds.get("api_key")),
            base_url=normalize_base_url(creds.get("base_url")),
            default_model=model_name(creds.get("default_model"), "default_model") or DEFAULT_MODEL,
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
            fallback_models=parse_fallback_models(creds.get("fallback_models")),
            price_overrides=_credential_text(creds.get("price_overrides"), "price_overrides", MAX_PRICE_OVERRIDES_CHARS),
            redis_url=check_redis_url(creds.get("redis_url")),
            budgets=parse_budgets(_credential_text(creds.get("budgets"), "budgets", MAX_BUDGETS_CHARS), field_name="budgets", admin=True),
            cache_ttl_seconds=parse_number(
                creds.get("cache_ttl_seconds"), field="cache_ttl_seconds", default=DEFAULT_TTL_SECONDS, minimum=0, maximum=MAX_TTL_SECONDS
            ),
            tls_min_version=parse_tls_min_version(creds.get("tls_min_version")),
            jobs_visible_to=parse_jobs_visible_to(creds.get("jobs_visible_to")),
        )

    @functools.cached_property
    def key_digest(self) -> str:  # computed once: every call names its shared state with it
        return key_digest(self.api_key)

    @functools.cached_property
    def keys(self) -> Keys:
        """The names of this workspace's shared state: the API key identifies the workspace (gateway.state.keys)."""
        return Keys.for_api_key(self.api_key)

    def __repr__(self) -> str:  # never print the key
        return f"GatewayConfig(base_url={self.base_url!r}, default_model={self.default_model!r})"
