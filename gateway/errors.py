"""The one error hierarchy every gateway failure is reported through.

Each error carries a message a workflow author can act on and a stable `code` that tools put in
their outputs. Messages are redacted before they are stored: an error object never holds the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

# A run of key-like characters: what a gateway echoes back ("Incorrect API key provided: sk-ab...").
_TOKEN = re.compile(r"[A-Za-z0-9_\-\.~+/=]{6,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


class Redactor:
    """Removes secrets from text, including partial echoes of at least eight characters of a secret."""

    MIN_ECHO = 8

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, REDACTED)
        out = _BEARER.sub(lambda m: m.group(1) + REDACTED, out)
        if self._secrets:
            out = _TOKEN.sub(self._mask_echo, out)
        return out

    def _mask_echo(self, match: re.Match[str]) -> str:
        token = match.group(0)
        for secret in self._secrets:
            if len(secret) >= self.MIN_ECHO and _shares_run(token, secret, self.MIN_ECHO):
                return REDACTED
        return token


def _shares_run(token: str, secret: str, size: int) -> bool:
    """True when `token` contains any `size`-character slice of `secret` (a prefix or suffix echo)."""
    if len(token) < size:
        return False
    return any(secret[i : i + size] in token for i in range(len(secret) - size + 1))


_known_secrets: set[str] = set()


def register_secret(secret: str) -> None:
    """Remembers a key so that the last line of defence (the runtime's error reporting) can redact it."""
    if secret:
        _known_secrets.add(secret)


def redact_known_secrets(text: object) -> str:
    return Redactor(_known_secrets)(text)


class GatewayError(Exception):
    """Base of every error the gateway client raises. `str(error)` is safe to show to a user."""

    code = "gateway_error"
    retryable = False
    not_sent = False  # True when this call never reached the gateway (e.g. held back by the rate limit)

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class ConfigurationError(GatewayError):
    """A credential or parameter is invalid before anything was sent. `field` names what to fix."""

    code = "configuration"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FieldError(ConfigurationError, ValueError):
    """One value is invalid: `field` names it, `problem` says what is wrong and how to fix it.

    `str()` is the one formatting, "<field> <problem>" (e.g. "max_retries must be at least 0, got -1");
    a caller that words it its own way (a tool quoting a parameter) uses the two parts, never the string."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", field=field)
        self.field: str = field
        self.problem = problem


class AuthenticationError(GatewayError):
    """401/403: the key is wrong, revoked, or lacks access to the model."""

    code = "authentication"


class BadRequestError(GatewayError):
    """400/404/409/413/422 that retrying cannot fix: the gateway's own message says why."""

    code = "bad_request"


class NotOpenAICompatibleError(GatewayError):
    """The base URL answered, but not like an OpenAI-compatible API (HTML, non-JSON, 404 on /models)."""

    code = "not_openai_compatible"


class RateLimitedError(GatewayError):
    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class UpstreamUnavailableError(GatewayError):
    """5xx, connection refused or reset, DNS or TLS failure: the gateway could not serve the call."""

    code = "upstream_unavailable"
    retryable = True


class GatewayTimeoutError(GatewayError):
    code = "timeout"
    retryable = True


class CircuitOpenError(UpstreamUnavailableError):
    """The breaker for (base URL, model) is open: the call failed fast without being sent."""

    code = "circuit_open"
    retryable = False


class StreamInterruptedError(GatewayError):
    """A stream ended before `[DONE]` or a finish reason. The text received so far is kept."""

    code = "stream_interrupted"

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text
        self.partial_result: Any = None  # a ChatResult with estimated usage and cost, when known


class InBandStreamError(GatewayError):
    """The gateway sent `data: {"error": ...}` inside a 200 stream."""

    code = "stream_error"

    def __init__(self, message: str, *, partial_text: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text
        self.partial_result: Any = None  # a ChatResult with estimated usage and cost, when known
