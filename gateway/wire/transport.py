"""The HTTP layer as the call chain sees it: a `Transport` sends one request and hands back a
`Response` whose body is still to be read; `Endpoint` adds the rules every call shares (the deadline
before sending, status classification, bounded body reads, the OpenAI-compatibility checks).

`gateway.wire.http_transport.HTTPTransport` is the real transport (urllib3); `MemoryTransport` below
answers from a script, for unit tests of the chain without a server. Every failure of one attempt
leaves this layer as `AttemptFailed`, classified: whether the retry policy may try again, and how soon.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.call.retry import RETRYABLE_STATUSES, parse_retry_after
from gateway.errors import (
    AuthenticationError,
    BadRequestError,
    GatewayError,
    GatewayTimeoutError,
    NotOpenAICompatibleError,
    RateLimitedError,
    Redactor,
    UpstreamUnavailableError,
    gateway_words,
)

# Error bodies are read only this far: enough for the gateway's message, never a whole HTML page.
MAX_ERROR_BODY = 64 * 1024
# The most a JSON answer may hold: a reply of max_tokens' ceiling (1,000,000 tokens) is a few MB, so a larger
# body is a gateway that will not stop. Bounded so one workspace's base_url cannot exhaust the memory of the
# plugin process every workspace shares.
MAX_JSON_BODY = 64 * 1024 * 1024
BODY_READ_SIZE = 64 * 1024
_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False) without a new encoder per request
NOT_RETRIED_BILLED = "not retried because the gateway may already have processed (and billed) the request"


class Deadline:
    """A point in time a whole call (retries and waits included) must finish by."""

    __slots__ = ("at",)

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining <= 0


@dataclass(slots=True)
class Attempt:
    """A failed attempt, classified: whether the retry policy may try again, and how soon. `resend`: send
    again at once with a changed request (a gateway refusing stream_options), outside the retry count."""

    error: GatewayError
    retryable: bool
    retry_after: float | None = None
    resend: bool = False

    def final(self, attempts: int, *, retryable: bool | None = None) -> GatewayError:
        """The error to raise once no more attempts will be made."""
        self.error.attempts = attempts
        self.error.retryable = self.retryable if retryable is None else retryable
        if attempts > 1 and "attempt" not in self.error.message:
            self.error.message += f" (after {attempts} attempts)"
        return self.error


class AttemptFailed(Exception):
    """How one attempt's failure travels up to the retry layer; never leaves the client."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt.error.message)
        self.attempt = attempt


class BodyReadError(Exception):
    """Reading a response body failed (reset, timeout); `timed_out` tells which."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__("timed out" if timed_out else "connection broke")
        self.timed_out = timed_out


class Response(Protocol):
    """An answer whose body is still to be read. Header names are looked up in lower case."""

    status: int
    reason: str
    headers: Mapping[str, str]

    def read_chunk(self, deadline: Deadline, size: int) -> bytes:
        """What has arrived, up to `size` bytes (b"" at the end); the wait is bounded by the deadline.
        Raises BodyReadError."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    def send(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Response:
        """One request to base URL + `path`, any status back; `timeout` is the time left for the call.
        Failures before an answer arrived raise AttemptFailed, classified. A call with a correlation id
        also passes `headers=` (extra request headers, X-Request-Id): transports that send to a gateway
        accept it."""
        ...

    def ensure_pool(self, size: int) -> None:
        """Room for `size` parallel requests."""
        ...

    def close(self) -> None: ...


def read_body(response: Response, deadline: Deadline, limit: int | None = None) -> bytes:
    """The whole body (or its first `limit` bytes), every read bounded by the deadline."""
    chunks: list[bytes] = []
    size = 0
    while limit is None or size < limit:
        if deadline.expired():
            raise BodyReadError(timed_out=True)
        chunk = response.read_chunk(deadline, BODY_READ_SIZE)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class Endpoint:
    """A gateway (base URL, key) reached through a transport: sends, classifies, reads bodies."""

    __slots__ = ("base_url", "redact", "transport")

    def __init__(self, transport: Transport, base_url: str, redact: Redactor) -> None:
        self.transport = transport
        self.base_url = base_url
        self.redact = redact

    def send(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | bytes | None,
        deadline: Deadline,
        observe: Callable[[Response], None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A 2xx response whose body is still to be read; otherwise AttemptFailed, classified. `payload` is sent
        as JSON, or as it is when bytes (with its Content-Type in `headers`: the batch file's multipart body).
        `observe` sees every response first (its status and headers: the adaptive pacer reads its rate-limit headers)."""
        remaining = deadline.remaining
        if remaining <= 0:
            raise AttemptFailed(Attempt(GatewayTimeoutError("the call's deadline passed before it could be sent"), False))
        body = payload if isinstance(payload, bytes) or payload is None else _JSON.encode(payload).encode("utf-8")
        if headers:
            response = self.transport.send(method, path, body, timeout=remaining, headers=headers)  # type: ignore[call-arg]
        else:
            response = self.transport.send(method, path, body, timeout=remaining)
        if observe is not None:
            observe(response)
        if 200 <= response.status < 300:
            return response
        try:
            error_body = read_body(response, deadline, limit=MAX_ERROR_BODY)
        except BodyReadError:
            error_body = b""
        finally:
            response.close()
        raise AttemptFailed(self.classify(response, error_body))

    def read_json(self, response: Response, deadline: Deadline) -> Any:
        """The body of a 2xx answer as JSON. A failed read is not retried: the gateway may have billed it."""
        try:
            body = read_body(response, deadline, limit=MAX_JSON_BODY + 1)
        except BodyReadError as exc:
            timed_out = exc.timed_out or deadline.expired()
            error_class = GatewayTimeoutError if timed_out else UpstreamUnavailableError
            what = "the call's deadline passed while the response was arriving" if timed_out else "the connection broke while reading the response"
            raise AttemptFailed(Attempt(error_class(f"{what}; {NOT_RETRIED_BILLED}"), False)) from None
        finally:
            response.close()
        if len(body) > MAX_JSON_BODY:
            bound = f"{MAX_JSON_BODY // (1024 * 1024)} MiB"
            message = f"{self.base_url} answered with more than {bound}, more than any reply holds; {NOT_RETRIED_BILLED}"
            raise NotOpenAICompatibleError(self.redact(message))
        try:
            # Bytes, not text: JSON is UTF-8 whatever charset the server claims.
            return json.loads(body)
        except (ValueError, RecursionError):
            raise NotOpenAICompatibleError(self.not_openai_message(response, "did not answer with JSON")) from None

    def classify(self, response: Response, body: bytes) -> Attempt:
        status = response.status
        headers = response.headers
        request_id = headers.get("x-request-id")
        message = self.redact(error_message(body) or response.reason or "")
        retry_after = parse_retry_after(headers)
        where = f"gateway returned HTTP {status}"
        if status in (401, 403):
            error: GatewayError = AuthenticationError(
                f"{where}: the API key was rejected ({message}). Check the api_key credential"
                + (" and that the key may use this model." if status == 403 else "."),
                status=status,
                request_id=request_id,
            )
            return Attempt(error, False)
        if status == 429:
            error = RateLimitedError(
                f"{where}: rate limited ({message}). Lower concurrency or set rpm_limit/tpm_limit.",
                retry_after=retry_after,
                status=status,
                request_id=request_id,
            )
            return Attempt(error, True, retry_after)
        if status in (408, 504):
            error = GatewayTimeoutError(f"{where}: the gateway timed out ({message})", status=status, request_id=request_id)
            return Attempt(error, True, retry_after)
        if status == 404 and body.lstrip()[:1] not in (b"{", b"["):
            return Attempt(NotOpenAICompatibleError(self.not_openai_message(response, "answered 404"), status=status), False)
        if status >= 500 or status == 409:
            what = "conflict, try again" if status == 409 else "upstream unavailable"
            error = UpstreamUnavailableError(f"{where}: {what} ({message})", status=status, request_id=request_id)
            return Attempt(error, status in RETRYABLE_STATUSES, retry_after)
        if 300 <= status < 400:
            target = gateway_words(headers.get("location", "?"), 200)
            error = NotOpenAICompatibleError(
                self.redact(f"{where}: redirected to {target}. Set base_url to the final API address (often with /v1)"),
                status=status,
            )
            return Attempt(error, False)
        return Attempt(BadRequestError(f"{where}: {message}", status=status, request_id=request_id), False)

    def error_in_body(self, status: int, data: dict[str, Any]) -> GatewayError:
        """A 2xx answer whose JSON is an error object."""
        message = self.redact(error_message(json.dumps(data).encode()) or "unknown error")
        return BadRequestError(f"gateway returned an error with HTTP {status}: {message}", status=status)

    def not_openai_message(self, response: Response, what: str) -> str:
        content_type = response.headers.get("content-type", "unknown").split(";")[0]
        return self.redact(
            f"{self.base_url} {what} (content-type {content_type}): this does not look like an OpenAI-compatible API. "
            f"Check base_url: most gateways need the path ending in /v1 (e.g. https://api.holysheep.ai/v1)."
        )


def error_message(body: bytes) -> str:
    """The gateway's own words from an error body (JSON `error.message` and the like, or the text),
    bounded and with control characters made visible: a gateway may echo anything back."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return gateway_words(body[:4096].decode("utf-8", errors="replace"), 200)
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            words = error.get("message") or error.get("detail") or error.get("msg")
            return gateway_words(words if isinstance(words, str) else _short_json(error), 300)
        return gateway_words(error if isinstance(error, str) else _short_json(error), 300)
    return gateway_words(_short_json(data), 200)


def _short_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)[:1000]
    except (ValueError, TypeError, RecursionError):
        return type(value).__name__


# ----------------------------------------------------------------------------- in-memory transport


@dataclass
class Reply:
    """One scripted answer of MemoryTransport. `body` is a list of byte chunks (one per read) in which
    an exception instance is raised at that read instead; `fail` is raised by send() itself."""

    status: int = 200
    body: list[bytes | BaseException] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    fail: AttemptFailed | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, [json.dumps(data).encode()], {"content-type": "application/json", **(headers or {})})

    @classmethod
    def events(cls, *events: Any, done: bool = True, then: BaseException | None = None) -> Reply:
        """An SSE stream of JSON events (dicts) or raw data strings, one read each."""
        chunks: list[bytes | BaseException] = [
            f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
        ]
        if done:
            chunks.append(b"data: [DONE]\n\n")
        if then is not None:
            chunks.append(then)
        return cls(200, chunks, {"content-type": "text/event-stream"})


class MemoryResponse:
    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        self.reason = reply.reason
        self.headers = {k.lower(): v for k, v in reply.headers.items()}
        self._chunks = list(reply.body)
        self.closed = False

    def read_chunk(self, deadline: Deadline, size: int) -> bytes:
        if not self._chunks:
            return b""
        chunk = self._chunks.pop(0)
        if isinstance(chunk, BaseException):
            raise chunk
        if len(chunk) > size:
            self._chunks.insert(0, chunk[size:])
            chunk = chunk[:size]
        return chunk

    def close(self) -> None:
        self.closed = True


class MemoryTransport:
    """Answers each request from `replies` (in order) or from `handler(method, path, payload)`, and
    records what was sent, so the chain can be tested without a server."""

    def __init__(self, replies: Iterable[Reply] = (), handler: Callable[[str, str, Any], Reply] | None = None) -> None:
        self.replies: Iterator[Reply] = iter(replies)
        self.handler = handler
        self.sent: list[tuple[str, str, Any]] = []
        self.sent_headers: list[dict[str, str]] = []  # the extra headers of each request, in order
        self.responses: list[MemoryResponse] = []
        self.pool_size = 0
        self.closed = False

    def send(self, method: str, path: str, body: bytes | None, *, timeout: float, headers: dict[str, str] | None = None) -> MemoryResponse:
        try:
            payload = None if body is None else json.loads(body)
        except ValueError:  # not JSON (the batch file's multipart upload): kept as sent
            payload = body
        self.sent.append((method, path, payload))
        self.sent_headers.append(dict(headers or {}))
        reply = self.handler(method, path, payload) if self.handler else next(self.replies)
        if reply.fail is not None:
            raise reply.fail
        response = MemoryResponse(reply)
        self.responses.append(response)
        return response

    def ensure_pool(self, size: int) -> None:
        self.pool_size = max(self.pool_size, size)

    def close(self) -> None:
        self.closed = True
