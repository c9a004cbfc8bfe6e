"""The one gateway client every tool uses: the only code in the project that speaks HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import requests
import urllib3
from requests.adapters import HTTPAdapter

from gateway.breaker import Breaker, Permit
from gateway.config import GatewayConfig
from gateway.errors import (
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    GatewayError,
    GatewayTimeoutError,
    InBandStreamError,
    NotOpenAICompatibleError,
    RateLimitedError,
    Redactor,
    StreamInterruptedError,
    UpstreamUnavailableError,
    register_secret,
)
from gateway.limits import LimitSettings, RateLimiter, RateLimitTimeout, Reservation
from gateway.models import ChatRequest, ChatResult, StreamCompleted, TextDelta, Usage
from gateway.pricing import PriceTable
from gateway.retry import RetryPolicy, parse_retry_after
from gateway.sse import SSEDecoder
from gateway.state import PROCESS_STATE, SharedState
from gateway.tokens import estimate_prompt_tokens, estimate_text_tokens

USER_AGENT = "holysheep-dify-plugin/0.1.0"
DEFAULT_POOL_SIZE = 16
# Tokens reserved against a TPM limit for the completion when the caller sets no max_tokens.
DEFAULT_COMPLETION_RESERVE = 1024
# Error bodies are read only this far: enough for the gateway's message, never a whole HTML page.
MAX_ERROR_BODY = 64 * 1024

T = TypeVar("T")


class Deadline:
    """A point in time a whole call (retries and waits included) must finish by."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining <= 0


@dataclass
class _Attempt:
    """A failed attempt, classified: whether the retry policy may try again, and how soon."""

    error: GatewayError
    retryable: bool
    retry_after: float | None = None

    def final(self, attempts: int, *, retryable: bool | None = None) -> GatewayError:
        """The error to raise once no more attempts will be made."""
        self.error.attempts = attempts
        self.error.retryable = self.retryable if retryable is None else retryable
        if attempts > 1 and "attempt" not in self.error.message:
            self.error.message += f" (after {attempts} attempts)"
        return self.error


class _AttemptFailed(Exception):
    def __init__(self, attempt: _Attempt) -> None:
        super().__init__(attempt.error.message)
        self.attempt = attempt


@dataclass
class CallOptions:
    """Per-call knobs a tool may set on top of the gateway configuration."""

    limits: LimitSettings = field(default_factory=LimitSettings)
    use_fallbacks: bool = True
    deadline: Deadline | None = None


class GatewayClient:
    _registry: ClassVar[dict[GatewayConfig, GatewayClient]] = {}
    _registry_lock = threading.Lock()

    def __init__(
        self,
        config: GatewayConfig,
        *,
        prices: PriceTable | None = None,
        state: SharedState | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        register_secret(config.api_key)
        self.redact = Redactor([config.api_key])
        self.prices = prices or PriceTable.bundled().with_overrides(config.price_overrides)
        self.state = state or PROCESS_STATE
        self.retry = retry or RetryPolicy(max_retries=config.max_retries)
        self._pool_size = 0
        self._pooled_calls = 0  # parallel calls announced by running batches, across invocations
        self._pool_lock = threading.Lock()
        self.session = requests.Session()
        # trust_env makes requests re-read the proxy variables and ~/.netrc on every call (a tenth of the
        # client's CPU per call, measured), and a netrc entry would silently replace our Authorization
        # header. The environment is read once instead: HTTP(S)_PROXY/NO_PROXY and the CA bundle variables.
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(config.base_url)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.headers.update(
            {
                "Authorization": f"Bearer {config.api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                "User-Agent": USER_AGENT,
            }
        )
        self.ensure_pool(DEFAULT_POOL_SIZE)

    @classmethod
    def shared(cls, config: GatewayConfig, *, state: SharedState | None = None) -> GatewayClient:
        """One client (and connection pool) per configuration, reused across invocations."""
        with cls._registry_lock:
            client = cls._registry.get(config)
            if client is None:
                client = cls._registry[config] = cls(config, state=state)
            elif state is not None:
                client.state = state
            return client

    @contextlib.contextmanager
    def pooled(self, concurrency: int) -> Iterator[None]:
        """While the block runs, the keep-alive pool has room for `concurrency` more parallel calls, on
        top of other batches running in the same process (one shared pool per gateway and key)."""
        with self._pool_lock:
            self._pooled_calls += concurrency
            wanted = self._pooled_calls + DEFAULT_POOL_SIZE
        self.ensure_pool(wanted)
        try:
            yield
        finally:
            with self._pool_lock:
                self._pooled_calls -= concurrency

    def ensure_pool(self, concurrency: int) -> None:
        """Grows the keep-alive pool so `concurrency` parallel calls each get a connection."""
        with self._pool_lock:
            if concurrency <= self._pool_size:
                return
            self._pool_size = concurrency
            # max_retries=0: our RetryPolicy decides; urllib3 retrying too would stack retries (LiteLLM's 3x bug).
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=concurrency, max_retries=0, pool_block=False)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    # ----------------------------------------------------------------- public calls

    def list_models(self, *, timeout: float = 15.0) -> list[str]:
        """GET {base}/models. Raises a GatewayError that says what to fix."""
        deadline = Deadline(timeout)
        attempts = 0

        def attempt() -> tuple[requests.Response, Any]:
            nonlocal attempts
            attempts += 1
            response = self._send("GET", "/models", None, deadline=deadline)
            return response, self._json_body(response, deadline)

        # Through the retry policy like every call: a GatewayError (never the internal _AttemptFailed) comes out.
        response, data = self._retrying(attempt, deadline, self._limiter(CallOptions()), lambda: attempts)
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise NotOpenAICompatibleError(self._not_openai_message(response, "has no 'data' list"))
        return [str(m.get("id")) for m in models if isinstance(m, dict) and m.get("id")]

    def chat(self, request: ChatRequest, options: CallOptions | None = None) -> ChatResult:
        options = options or CallOptions()
        deadline = options.deadline or Deadline(self.config.timeout_seconds)
        return self._with_fallbacks(request, options, lambda req: self._chat_once(req, options, deadline))

    def stream_chat(self, request: ChatRequest, options: CallOptions | None = None) -> Iterator[TextDelta | StreamCompleted]:
        """Yields TextDelta pieces as they arrive, then one StreamCompleted. A stream that breaks off
        raises StreamInterruptedError (or InBandStreamError) carrying the partial text."""
        options = options or CallOptions()
        deadline = options.deadline or Deadline(self.config.timeout_seconds)
        models = self._model_chain(request.model, options)
        tried: list[str] = []
        spent = 0
        for index, model in enumerate(models):
            delivered = False
            try:
                for item in self._stream_once(request.with_model(model), options, deadline):
                    delivered = True
                    if isinstance(item, StreamCompleted):
                        _note_fallback(item.result, model, tried, spent)
                    yield item
                return
            except GatewayError as exc:
                exc.attempts += spent
                if delivered or index == len(models) - 1 or not _is_unavailable(exc):
                    raise
                tried.append(model)
                spent = exc.attempts

    # ----------------------------------------------------------------- fallbacks and breaker

    def _model_chain(self, model: str, options: CallOptions) -> list[str]:
        chain = [model]
        if options.use_fallbacks:
            chain += [m for m in self.config.fallback_models if m != model]
        return chain

    def _with_fallbacks(self, request: ChatRequest, options: CallOptions, call: Callable[[ChatRequest], ChatResult]) -> ChatResult:
        models = self._model_chain(request.model, options)
        tried: list[str] = []
        spent = 0  # HTTP requests already made for earlier models: `attempts` counts every request sent
        for index, model in enumerate(models):
            try:
                result = call(request.with_model(model))
            except GatewayError as exc:
                exc.attempts += spent
                if index == len(models) - 1 or not _is_unavailable(exc):
                    raise
                tried.append(model)
                spent = exc.attempts
                continue
            return _note_fallback(result, model, tried, spent)
        raise AssertionError("unreachable")

    def breaker_for(self, model: str) -> Breaker:
        return self.state.breaker(self.config.base_url, model)

    def _permit(self, model: str) -> tuple[Breaker, Permit]:
        """The breaker's permission to call `model`; raises CircuitOpenError (nothing sent) when open."""
        breaker = self.breaker_for(model)
        permit = breaker.acquire()
        if not permit.allowed:
            raise CircuitOpenError(
                f"circuit open for model '{model}' at {self.config.base_url}: recent calls failed; "
                f"not sending for another {permit.retry_in:.0f}s",
                attempts=0,
            )
        return breaker, permit

    def _guarded(self, model: str, call: Callable[[], T]) -> T:
        breaker, permit = self._permit(model)
        try:
            result = call()
        except GatewayError as exc:
            self._record(breaker, permit, exc)
            raise
        except BaseException:
            breaker.record_failure(permit)  # a half-open probe must always be reported back
            raise
        breaker.record_success(permit)
        return result

    @staticmethod
    def _record(breaker: Breaker, permit: Permit, exc: GatewayError) -> None:
        # Only failures that say the upstream is unhealthy count; a bad request or wrong key does not.
        client_side = exc.status is not None and 400 <= exc.status < 500 and exc.status != 408
        if not client_side and isinstance(exc, UpstreamUnavailableError | GatewayTimeoutError | StreamInterruptedError | InBandStreamError):
            breaker.record_failure(permit)
        else:
            breaker.record_success(permit)

    # ----------------------------------------------------------------- non-streaming

    def _chat_once(self, request: ChatRequest, options: CallOptions, deadline: Deadline) -> ChatResult:
        started = time.monotonic()
        limiter = self._limiter(options)
        attempts = 0

        def attempt() -> ChatResult:
            nonlocal attempts
            reservation = self._reserve(limiter, request, deadline, sent=attempts)
            attempts += 1
            try:
                response = self._send("POST", "/chat/completions", request.payload(), deadline=deadline)
            except _AttemptFailed:
                reservation.settle(0)
                raise
            data = self._json_body(response, deadline)
            result = self._parse_completion(data, request, response, started)
            reservation.settle(result.usage.total_tokens)
            return result

        def run() -> ChatResult:
            result = self._retrying(attempt, deadline, limiter, lambda: attempts)
            result.attempts = attempts
            return result

        return self._guarded(request.model, run)

    def _parse_completion(self, data: Any, request: ChatRequest, response: requests.Response, started: float) -> ChatResult:
        if isinstance(data, dict) and data.get("error"):
            raise self._error_from_body(response.status_code, data, response)
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
            text = message.get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise NotOpenAICompatibleError(
                self._not_openai_message(response, "returned a completion without choices[0].message")
            ) from None
        if not isinstance(text, str):
            text = json.dumps(text, ensure_ascii=False)
        served = str(data.get("model") or request.model)
        warnings: list[str] = []
        usage = Usage.from_openai(data.get("usage")) or self._estimate_usage(request, text, warnings)
        return self._finish(
            text=text,
            finish_reason=choice.get("finish_reason"),
            served=served,
            request=request,
            usage=usage,
            started=started,
            request_id=response.headers.get("x-request-id") or data.get("id"),
            warnings=warnings,
        )

    def _finish(
        self,
        *,
        text: str,
        finish_reason: str | None,
        served: str,
        request: ChatRequest,
        usage: Usage,
        started: float,
        request_id: str | None,
        warnings: list[str],
        ttft_ms: float | None = None,
        interrupted: bool = False,
    ) -> ChatResult:
        warnings.extend(self.state.warnings())
        cost = self.prices.cost(served, usage)
        if cost is None and served != request.model:
            cost = self.prices.cost(request.model, usage)
            if cost is not None:
                warnings.append(f"no price known for the served model '{served}': cost estimated at '{request.model}' prices")
        if cost is None:
            warnings.append(
                f"no price known for model '{served}': cost_usd is null. Add it with the price_overrides credential."
            )
        return ChatResult(
            text=text,
            finish_reason=finish_reason,
            model=served,
            requested_model=request.model,
            usage=usage,
            latency_ms=(time.monotonic() - started) * 1000,
            attempts=1,
            request_id=request_id,
            cost=cost,
            warnings=warnings,
            ttft_ms=ttft_ms,
            interrupted=interrupted,
        )

    def _estimate_usage(self, request: ChatRequest, text: str, warnings: list[str]) -> Usage:
        prompt = estimate_prompt_tokens(request.messages, request.model)
        completion = estimate_text_tokens(text, request.model)
        warnings.append(f"the gateway reported no usage: token counts are estimated ({prompt.method})")
        return Usage(prompt.tokens, completion.tokens, 0, estimated=True, method=prompt.method)

    # ----------------------------------------------------------------- streaming

    def _stream_once(self, request: ChatRequest, options: CallOptions, deadline: Deadline) -> Iterator[TextDelta | StreamCompleted]:
        breaker, permit = self._permit(request.model)
        try:
            yield from self._stream_attempts(request, options, deadline)
        except GatewayError as exc:
            self._record(breaker, permit, exc)
            raise
        except GeneratorExit:
            breaker.record_success(permit)
            raise
        except BaseException:
            breaker.record_failure(permit)  # a half-open probe must always be reported back
            raise
        breaker.record_success(permit)

    def _stream_attempts(self, request: ChatRequest, options: CallOptions, deadline: Deadline) -> Iterator[TextDelta | StreamCompleted]:
        started = time.monotonic()
        limiter = self._limiter(options)
        include_usage = True
        attempts = 0
        while True:
            reservation = self._reserve(limiter, request, deadline, sent=attempts)
            attempts += 1
            state = _StreamState()
            try:
                response = self._send(
                    "POST",
                    "/chat/completions",
                    request.payload(stream=True, include_usage=include_usage),
                    deadline=deadline,
                )
                yield from self._read_stream(response, state, deadline, started)
            except _AttemptFailed as failed:
                reservation.settle(0)
                error = failed.attempt.error
                if include_usage and not state.delivered and _refuses_stream_options(error):
                    # Some OpenAI-compatible gateways reject stream_options: ask again without it.
                    include_usage = False
                    continue
                if state.delivered or not failed.attempt.retryable or attempts >= self.retry.max_attempts:
                    if isinstance(error, StreamInterruptedError | InBandStreamError):
                        error.partial_text = state.text
                        error.partial_result = self._partial_result(request, state, started, attempts)
                    raise failed.attempt.final(attempts, retryable=failed.attempt.retryable and not state.delivered) from None
                self._wait_before_retry(failed.attempt, attempts, deadline, limiter)
                continue
            warnings = [] if include_usage else ["the gateway refused stream_options.include_usage"]
            result = self._stream_result(request, state, started, attempts, warnings)
            reservation.settle(result.usage.total_tokens)
            yield StreamCompleted(result)
            return

    def _partial_result(self, request: ChatRequest, state: _StreamState, started: float, attempts: int) -> ChatResult:
        """What an interrupted stream delivered and probably cost: the gateway bills generated tokens."""
        return self._stream_result(request, state, started, attempts, [], interrupted=True)

    def _stream_result(
        self, request: ChatRequest, state: _StreamState, started: float, attempts: int, warnings: list[str], *, interrupted: bool = False
    ) -> ChatResult:
        usage = state.usage or self._estimate_usage(request, state.text, warnings)
        result = self._finish(
            text=state.text,
            finish_reason=None if interrupted else state.finish_reason,
            served=state.model or request.model,
            request=request,
            usage=usage,
            started=started,
            request_id=state.request_id,
            warnings=warnings,
            ttft_ms=state.ttft_ms,
            interrupted=interrupted,
        )
        result.attempts = attempts
        return result

    def _read_stream(self, response: requests.Response, state: _StreamState, deadline: Deadline, started: float) -> Iterator[TextDelta]:
        decoder = SSEDecoder()
        state.request_id = response.headers.get("x-request-id")
        done = False
        try:
            raw = response.raw
            while not done:
                if deadline.expired():
                    raise _AttemptFailed(_Attempt(self._interrupted(state, "the call's deadline passed mid-stream"), False))
                # read1: return what has arrived (up to 8 KiB) instead of waiting to fill the buffer.
                _bound_next_read(response, deadline)
                chunk = raw.read1(8192, decode_content=True)
                if not chunk:
                    break
                for event in decoder.feed(chunk):
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    delta = self._apply_event(event.data, state, started)
                    if delta:
                        state.delivered = True
                        yield TextDelta(delta)
            if not done:
                decoder.close()
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired():
                reason = "the call's deadline passed mid-stream"
            elif _is_timeout(exc):
                reason = "the read timed out"
            else:
                reason = "the connection was reset or closed"
            raise _AttemptFailed(
                _Attempt(self._interrupted(state, reason), retryable=not state.delivered)
            ) from None
        finally:
            response.close()
        if not done and state.finish_reason is None:
            raise _AttemptFailed(
                _Attempt(
                    self._interrupted(state, "the stream ended without [DONE] or a finish reason"),
                    retryable=not state.delivered,
                )
            )

    def _interrupted(self, state: _StreamState, reason: str) -> StreamInterruptedError:
        kept = f"; {len(state.text)} characters received before it broke are kept" if state.text else ""
        return StreamInterruptedError(
            self.redact(f"stream interrupted: {reason}{kept}"), partial_text=state.text, request_id=state.request_id
        )

    def _apply_event(self, data: str, state: _StreamState, started: float) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            state.malformed += 1
            return ""
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise _AttemptFailed(
                _Attempt(
                    InBandStreamError(
                        self.redact(f"the gateway reported an error mid-stream: {message}"),
                        partial_text=state.text,
                        request_id=state.request_id,
                    ),
                    retryable=not state.delivered,
                )
            )
        state.model = chunk.get("model") or state.model
        state.request_id = state.request_id or chunk.get("id")
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            state.usage = usage  # keep the last non-null usage
        text = ""
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                text += content
            if choice.get("finish_reason"):
                state.finish_reason = choice["finish_reason"]
        if text:
            if state.ttft_ms is None:
                state.ttft_ms = (time.monotonic() - started) * 1000
            state.text += text
        return text

    # ----------------------------------------------------------------- limits

    def _limiter(self, options: CallOptions) -> RateLimiter:
        """The call's buckets; even without limits it holds the call while the gateway's last 429 lasts."""
        return self.state.rate_limiter(self.config.base_url, self.config.key_digest, options.limits)

    def _reserve(self, limiter: RateLimiter, request: ChatRequest, deadline: Deadline, *, sent: int) -> Reservation:
        tokens = 0
        if limiter.settings.tpm:  # the estimate costs a tokenizer pass: only when a TPM bucket needs it
            tokens = estimate_prompt_tokens(request.messages, request.model).tokens + (request.max_tokens or DEFAULT_COMPLETION_RESERVE)
        try:
            return limiter.reserve(tokens, time.monotonic() + deadline.remaining)
        except RateLimitTimeout as exc:
            why = "the configured rate limit" if limiter.settings.rpm or limiter.settings.tpm else "the gateway's last 429"
            error = RateLimitedError(
                f"not sent: waiting for {why} would take {exc.wait:.1f}s, past the call's deadline",
                retry_after=exc.wait,
                attempts=sent,
            )
            error.not_sent = True  # this attempt never left: a batch reports the item as not run
            error.retryable = False  # the limit is per key: another model would not be sent sooner
            raise error from None

    # ----------------------------------------------------------------- retries

    def _retrying(self, attempt: Callable[[], T], deadline: Deadline, limiter: RateLimiter, count: Callable[[], int]) -> T:
        while True:
            try:
                return attempt()
            except _AttemptFailed as failed:
                if not failed.attempt.retryable or count() >= self.retry.max_attempts:
                    raise failed.attempt.final(count()) from None
                self._wait_before_retry(failed.attempt, count(), deadline, limiter)

    def _wait_before_retry(self, attempt: _Attempt, number: int, deadline: Deadline, limiter: RateLimiter) -> None:
        delay = self.retry.delay(number, attempt.retry_after)
        if isinstance(attempt.error, RateLimitedError):
            limiter.pause(delay)  # every caller of this gateway key waits, not only this request
        if delay >= deadline.remaining:
            attempt.error.message += f" (gave up after {number} attempt(s): waiting {delay:.1f}s more would pass the call's deadline)"
            raise attempt.final(number) from None
        time.sleep(delay)

    # ----------------------------------------------------------------- HTTP

    def _send(self, method: str, path: str, payload: dict[str, Any] | None, *, deadline: Deadline) -> requests.Response:
        """One HTTP exchange. Returns a 2xx response whose body is still to be read (every read bounded by
        the deadline); otherwise raises _AttemptFailed, classified."""
        remaining = deadline.remaining
        if remaining <= 0:
            raise _AttemptFailed(_Attempt(GatewayTimeoutError("the call's deadline passed before it could be sent"), False))
        url = self.config.base_url + path
        try:
            response = self.session.request(
                method,
                url,
                data=None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                stream=True,
                timeout=(min(self.config.connect_timeout_seconds, remaining), remaining),
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            # Not retried: certificate and protocol failures do not clear up, and a TLS error while reading
            # the response would mean a second, billed, completion.
            raise _AttemptFailed(_Attempt(self._connection_error("TLS handshake failed", exc), False)) from None
        except requests.exceptions.ConnectTimeout as exc:
            raise _AttemptFailed(_Attempt(self._connection_error("connecting timed out", exc, timeout=True), True)) from None
        except requests.exceptions.ReadTimeout:
            raise _AttemptFailed(
                _Attempt(
                    GatewayTimeoutError(
                        f"no response within {remaining:.0f}s; not retried because the gateway may already have "
                        "processed (and billed) the request. Raise timeout_seconds or lower max_tokens."
                    ),
                    False,
                )
            ) from None
        except requests.exceptions.ConnectionError as exc:
            if _not_sent(exc):
                raise _AttemptFailed(_Attempt(self._connection_error("cannot connect", exc), True)) from None
            raise _AttemptFailed(
                _Attempt(
                    UpstreamUnavailableError(
                        "the connection was reset after the request was sent; not retried because the gateway "
                        "may already have processed (and billed) it"
                    ),
                    False,
                )
            ) from None
        except requests.RequestException as exc:
            raise _AttemptFailed(_Attempt(UpstreamUnavailableError(self.redact(f"request failed: {exc}")), False)) from None
        if 200 <= response.status_code < 300:
            return response
        try:
            body = _read_body(response, deadline, limit=MAX_ERROR_BODY)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            body = b""
        finally:
            response.close()
        raise _AttemptFailed(self._classify_status(response, body))

    def _connection_error(self, what: str, exc: Exception, *, timeout: bool = False) -> GatewayError:
        host = self.config.base_url.split("/")[2]
        detail = _root_cause(exc)
        if "Name or service not known" in detail or "NameResolution" in detail or "getaddrinfo" in detail:
            message = f"cannot resolve host '{host}': check the base_url credential (DNS lookup failed)"
        elif what.startswith("TLS"):
            message = f"TLS handshake with '{host}' failed ({detail}): check that base_url uses the right scheme (https vs http) and port"
        elif timeout:
            message = f"connecting to '{host}' timed out: the host is unreachable or a firewall drops the traffic"
        else:
            message = f"cannot connect to '{host}' ({detail}): check the base_url credential and that the gateway is up"
        cls = GatewayTimeoutError if timeout else UpstreamUnavailableError
        return cls(self.redact(message))

    def _classify_status(self, response: requests.Response, body: bytes) -> _Attempt:
        status = response.status_code
        request_id = response.headers.get("x-request-id")
        message = self.redact(_error_message(body) or response.reason or "")
        retry_after = parse_retry_after(response.headers)
        where = f"gateway returned HTTP {status}"
        if status in (401, 403):
            error: GatewayError = AuthenticationError(
                f"{where}: the API key was rejected ({message}). Check the api_key credential"
                + (" and that the key may use this model." if status == 403 else "."),
                status=status,
                request_id=request_id,
            )
            return _Attempt(error, False)
        if status == 429:
            return _Attempt(
                RateLimitedError(
                    f"{where}: rate limited ({message}). Lower concurrency or set rpm_limit/tpm_limit.",
                    retry_after=retry_after,
                    status=status,
                    request_id=request_id,
                ),
                True,
                retry_after,
            )
        if status in (408, 504):
            error = GatewayTimeoutError(f"{where}: the gateway timed out ({message})", status=status, request_id=request_id)
            return _Attempt(error, True, retry_after)
        if status == 404 and not _looks_json(body):
            return _Attempt(NotOpenAICompatibleError(self._not_openai_message(response, "answered 404"), status=status), False)
        if status >= 500 or status == 409:
            what = "conflict, try again" if status == 409 else "upstream unavailable"
            return _Attempt(
                UpstreamUnavailableError(f"{where}: {what} ({message})", status=status, request_id=request_id),
                self.retry.is_retryable_status(status),
                retry_after,
            )
        if 300 <= status < 400:
            target = response.headers.get("location", "?")
            return _Attempt(
                NotOpenAICompatibleError(
                    self.redact(f"{where}: redirected to {target}. Set base_url to the final API address (often with /v1)"),
                    status=status,
                ),
                False,
            )
        return _Attempt(BadRequestError(f"{where}: {message}", status=status, request_id=request_id), False)

    def _error_from_body(self, status: int, data: dict[str, Any], response: requests.Response) -> GatewayError:
        message = self.redact(_error_message(json.dumps(data).encode()) or "unknown error")
        return BadRequestError(f"gateway returned an error with HTTP {status}: {message}", status=status)

    def _json_body(self, response: requests.Response, deadline: Deadline) -> Any:
        try:
            body = _read_body(response, deadline)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            timed_out = deadline.expired() or _is_timeout(exc)
            error_class = GatewayTimeoutError if timed_out else UpstreamUnavailableError
            what = "the call's deadline passed while the response was arriving" if timed_out else "the connection broke while reading the response"
            reason = "not retried because the gateway may already have processed (and billed) the request"
            raise _AttemptFailed(_Attempt(error_class(f"{what}; {reason}"), False)) from None
        finally:
            response.close()
        try:
            # Bytes, not response.text: JSON is UTF-8 whatever charset the server claims.
            return json.loads(body)
        except ValueError:
            raise NotOpenAICompatibleError(self._not_openai_message(response, "did not answer with JSON")) from None

    def _not_openai_message(self, response: requests.Response, what: str) -> str:
        content_type = response.headers.get("content-type", "unknown").split(";")[0]
        base = self.config.base_url
        return self.redact(
            f"{base} {what} (content-type {content_type}): this does not look like an OpenAI-compatible API. "
            f"Check base_url: most gateways need the path ending in /v1 (e.g. https://api.holysheep.ai/v1)."
        )


@dataclass
class _StreamState:
    text: str = ""
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage | None = None
    request_id: str | None = None
    ttft_ms: float | None = None
    delivered: bool = False
    malformed: int = 0


def _note_fallback(result: ChatResult, model: str, tried: list[str], spent: int) -> ChatResult:
    """Records on `result` the models that failed before `model` served it, and their requests."""
    result.attempts += spent
    result.fallback_from = list(tried)
    if tried:
        result.warnings.append(f"served by fallback model '{model}' after {', '.join(tried)} failed")
    return result


def _is_unavailable(exc: GatewayError) -> bool:
    """The primary is unavailable (retryable errors exhausted, or circuit open): a fallback may help.
    Never on 4xx, and never after a failure that may have been billed (not retryable)."""
    if isinstance(exc, CircuitOpenError):
        return True
    if exc.status is not None and 400 <= exc.status < 500:
        return False
    return exc.retryable and isinstance(exc, UpstreamUnavailableError | GatewayTimeoutError)


def _refuses_stream_options(error: GatewayError) -> bool:
    # As a 400/422, or as an in-band error event on a 200 stream, depending on the gateway.
    return isinstance(error, BadRequestError | InBandStreamError) and "stream_options" in error.message


def _looks_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", errors="replace").strip()
        return " ".join(text.split())[:200]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error.get("msg") or json.dumps(error)[:200])
        return str(error)[:300]
    return str(data)[:200]


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while True:
        inner = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
        if inner is None or inner is seen:
            break
        seen = inner
        if not isinstance(seen, Exception):
            break
    if isinstance(exc.args[0] if exc.args else None, urllib3.exceptions.MaxRetryError):
        reason = exc.args[0].reason
        if reason is not None:
            seen = reason
    return f"{type(seen).__name__}: {seen}"[:300]


def _not_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the request never reached the gateway: DNS, refused, TLS or connect failures."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def _bound_next_read(response: requests.Response, deadline: Deadline) -> None:
    """Caps the next socket read at the time left. requests' read timeout applies per read and was
    fixed when the request was sent, so a gateway trickling bytes could otherwise outlive the deadline."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        sock.settimeout(max(0.001, deadline.remaining))


def _read_body(response: requests.Response, deadline: Deadline, limit: int | None = None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while limit is None or size < limit:
        if deadline.expired():
            raise TimeoutError("deadline passed while reading the response")
        _bound_next_read(response, deadline)
        chunk = response.raw.read1(65536, decode_content=True)  # what has arrived, not a full 64 KiB
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError)
