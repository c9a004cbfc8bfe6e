"""The one gateway client every tool uses: the public API and the call chain.

Every call, plain or streamed, goes through one chain, written once:

    cache -> fallbacks -> budget -> breaker -> retry -> attempt

- cache (`_call`): an identical earlier reply (`gateway.spend.cache`) is the answer; it never touches the
  budgets, the breaker or the limits. Concurrent identical requests make one gateway call.
- budget (`_call`, `_reserve_budget`): each model's worst case is reserved against every budget that
  applies before anything is sent (`gateway.spend.budget`), settled with the real cost after; a refusal is
  `BudgetExceeded`, a "not sent" outcome (or a cheaper model, when the administrator allows it).
- fallbacks (`_call`): the primary model, then each fallback model while the previous one is
  unavailable (retries exhausted or circuit open); never after a 4xx, a possibly billed failure, or
  delivered content. `attempts` counts every request sent, across models.
- breaker (`_call`): one permit per model; its outcome is reported back whatever happens.
- retry (`_retrying`): tries again only what the attempt classified as retryable, waits as the gateway
  asked (or backs off), never past the deadline; once content reached the caller, never again.
- attempt (`_plain_attempt`, `_stream_attempt`, `_models_attempt`): reserve the rate limit (or, with
  none configured, wait for the adaptive pacer, `gateway.call.pacing`), send one
  request through the transport (`gateway.wire.transport`), turn the answer into a result
  (`gateway.call.results`, `gateway.wire.stream_events`). An attempt is a generator: it yields content
  (TextDelta) as it arrives, then its outcome as its last item; a plain attempt yields only the outcome.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.call.breaker import Breaker, Permit
from gateway.call.pacing import AdaptivePacer
from gateway.call.rate_limits import LimitSettings, RateLimiter, RateLimitTimeout, Reservation
from gateway.call.results import completion_result, stream_result
from gateway.call.retry import RetryPolicy
from gateway.config import GatewayConfig
from gateway.errors import (
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
from gateway.metrics import CallRecord, MetricsSink, MetricsStore, WorkspaceMetrics, log_call
from gateway.models import ChatRequest, ChatResult, CostBreakdown, ReasoningDelta, StreamCompleted, TextDelta, Usage
from gateway.spend.budget import (
    BatchBudget,
    BudgetExceeded,
    BudgetPolicy,
    BudgetStore,
    Hold,
    Identity,
    Refusal,
    charges_for,
    cost_nano,
    iso,
    worst_case_prompt_tokens,
)
from gateway.spend.cache import CACHEABLE_FINISH, ReplyCache, SingleFlight, cache_key, use_cache
from gateway.spend.pricing import ModelPrice, PriceTable
from gateway.spend.tokens import estimate_prompt_tokens
from gateway.state.shared import PROCESS_STATE, SharedState
from gateway.wire.http_transport import DEFAULT_POOL_SIZE, HTTPTransport
from gateway.wire.stream_events import StreamState, read_stream
from gateway.wire.transport import Attempt, AttemptFailed, Deadline, Endpoint, Response, Transport
from untrusted import quote

# Tokens reserved against a TPM limit for the completion when the caller sets no max_tokens.
DEFAULT_COMPLETION_RESERVE = 1024
# Shared clients kept per process (one per gateway, key and settings); the least recently used is closed.
MAX_SHARED_CLIENTS = 32

_NO_LIMITS = LimitSettings()
# Seconds a 429 pause read with the breaker's permit is trusted for; past that (the adaptive pacer held
# the call) the attempt asks the limiter again.
PAUSE_READ_FRESH = 0.05

__all__ = ["SHARED_CLIENTS", "CallOptions", "ClientRegistry", "Deadline", "GatewayClient"]


@dataclass
class CallOptions:
    """Per-call knobs a tool may set on top of the gateway configuration."""

    limits: LimitSettings = field(default_factory=LimitSettings)
    use_fallbacks: bool = True
    deadline: Deadline | None = None
    budget: BudgetPolicy | None = None  # the budgets in force (the administrator's, tightened by the workflow)
    identity: Identity = field(default_factory=Identity)  # the Dify app and user, for per-app/per-user budgets
    batch_budget: BatchBudget | None = None  # the spend of the batch this call belongs to
    cache: str = "auto"  # auto | on | off (gateway.spend.cache)
    tool: str = "other"  # the tool making the call: a metrics label
    correlation_id: str = ""  # sent as X-Request-Id; in the result, the errors and the log line


@dataclass(slots=True)
class _Call:
    """One model's share of a call: what the retry layer and its attempts share."""

    request: ChatRequest
    deadline: Deadline
    limiter: RateLimiter
    started: float
    attempts: int = 0  # requests sent (or refused by the rate limit before sending) for this model
    delivered: bool = False  # content reached the caller: nothing is sent again
    include_usage: bool = True  # ask a stream for usage (dropped when the gateway refuses it)
    paced: int = 0  # the adaptive pacer's number for the request in flight
    headers: dict[str, str] | None = None  # sent with every attempt (X-Request-Id)
    # When the gateway key's 429 pause ends (monotonic), read with the breaker's permit in the same round
    # trip (a call without buckets, Redis); the first attempt waits for it instead of asking again.
    pause_until: float | None = None


class GatewayClient:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        prices: PriceTable | None = None,
        state: SharedState | None = None,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        budgets: BudgetStore | None = None,
        cache: ReplyCache | None = None,
        pacer: AdaptivePacer | None = None,
        metrics: MetricsStore | None = None,
    ) -> None:
        self.config = config
        register_secret(config.api_key)
        self.redact = Redactor([config.api_key])
        self.prices = prices or PriceTable.bundled().with_overrides(config.price_overrides)
        self.state = state or PROCESS_STATE
        self.retry = retry or RetryPolicy(max_retries=config.max_retries)
        self.transport: Transport = transport or HTTPTransport(config, self.redact)
        self.endpoint = Endpoint(self.transport, config.base_url, self.redact)
        self._pooled_calls = 0  # parallel calls announced by running batches, across invocations
        self._pool_lock = threading.Lock()
        # Backends given here are used; the others are looked up for redis_url when first needed.
        if budgets is not None:
            self.budgets = budgets
        if cache is not None:
            self.cache = cache
        if metrics is not None:
            self.metrics = self._workspace_metrics(metrics)
        self.pacer = pacer or AdaptivePacer()
        self.flights = SingleFlight()
        self.namespace = f"{hashlib.sha256(config.base_url.encode()).hexdigest()[:16]}:{config.key_digest}"

    @functools.cached_property
    def budgets(self) -> BudgetStore:
        from gateway.state.backends import budget_store_for

        return budget_store_for(self.config.redis_url, self.config.keys)

    @functools.cached_property
    def cache(self) -> ReplyCache:
        from gateway.state.backends import cache_for

        return cache_for(self.config.redis_url, self.config.keys)

    @functools.cached_property
    def metrics(self) -> MetricsSink:
        from gateway.state.backends import metrics_for

        return self._workspace_metrics(metrics_for(self.config.redis_url))

    def _workspace_metrics(self, store: MetricsStore) -> WorkspaceMetrics:
        """The figures of this client's workspace (its API key's scope), model labels from its price table."""
        return WorkspaceMetrics(store, self.config.keys.scope, self.prices)

    @classmethod
    def shared(cls, config: GatewayConfig, *, state: SharedState | None = None) -> GatewayClient:
        """The process's client for `config` (see SHARED_CLIENTS)."""
        return SHARED_CLIENTS.get(config, state=state)

    def close(self) -> None:
        """Closes the connection pool. A call made afterwards opens new connections."""
        self.transport.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def pooled(self, concurrency: int) -> Iterator[None]:
        """While the block runs, the keep-alive pool has room for `concurrency` more parallel calls, on
        top of other batches running in the same process (one shared pool per gateway and key)."""
        with self._pool_lock:
            self._pooled_calls += concurrency
            wanted = self._pooled_calls + DEFAULT_POOL_SIZE
        self.transport.ensure_pool(wanted)
        try:
            yield
        finally:
            with self._pool_lock:
                self._pooled_calls -= concurrency

    def ensure_pool(self, concurrency: int) -> None:
        """Grows the keep-alive pool so `concurrency` parallel calls each get a connection."""
        self.transport.ensure_pool(concurrency)

    # ----------------------------------------------------------------- public calls

    def list_models(self, *, timeout: float = 15.0) -> list[str]:
        """GET {base}/models, through the retry policy. Raises a GatewayError that says what to fix."""
        call = _Call(None, Deadline(timeout), self._limiter(_NO_LIMITS), time.monotonic())  # type: ignore[arg-type]
        response, data = _outcome(self._retrying(call, self._models_attempt))
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise NotOpenAICompatibleError(self.endpoint.not_openai_message(response, "has no 'data' list"))
        return [str(m.get("id")) for m in models if isinstance(m, dict) and m.get("id")]

    def chat(self, request: ChatRequest, options: CallOptions | None = None) -> ChatResult:
        completed = None
        for completed in self._call(request, options or CallOptions(), self._plain_attempt):  # noqa: B007 (the last item)
            pass
        return completed.result  # type: ignore[union-attr]

    def stream_chat(self, request: ChatRequest, options: CallOptions | None = None) -> Iterator[TextDelta | StreamCompleted]:
        """Yields TextDelta pieces as they arrive, then one StreamCompleted. A stream that breaks off
        raises StreamInterruptedError (or InBandStreamError) carrying the partial text."""
        return self._call(request, options or CallOptions(), self._stream_attempt)

    def breaker_for(self, model: str) -> Breaker:
        return self.state.breaker(self.config.base_url, model, keys=self.config.keys)

    # ----------------------------------------------------------------- the chain: fallbacks and breaker

    def _call(
        self, request: ChatRequest, options: CallOptions, attempt: Callable[[_Call], Iterator[Any]]
    ) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        """The chain, observed: whatever happens, one CallRecord for the metrics and the log line."""
        record = CallRecord(request.model, options.tool, "ok", 0.0, correlation_id=options.correlation_id, after=[])
        started = time.monotonic()
        try:
            for item in self._chain(request, options, attempt, record.after):  # type: ignore[arg-type]
                if type(item) is StreamCompleted:
                    _completed(record, item.result)
                yield item
        except GatewayError as exc:
            record.outcome, record.attempts = exc.code, exc.attempts
            record.gateway_request_id = exc.request_id or ""
            partial = getattr(exc, "partial_result", None)
            if isinstance(partial, ChatResult):  # an interrupted stream: what it delivered was billed
                _completed(record, partial)
            raise
        except GeneratorExit:
            if record.usage is None:
                record.outcome = "cancelled"  # the caller stopped reading before the outcome
            raise
        except Exception:
            record.outcome = "internal"
            raise
        finally:
            record.seconds = time.monotonic() - started
            self._observed(record)

    def _observed(self, record: CallRecord) -> None:
        """The one hook: the call's figures to the metrics sink, its line to the log. Never fails the call.
        What the chain left for after the call (`record.after`: the breaker's success) goes out with the
        figures when the sink writes to the same Redis, and is made here otherwise."""
        try:
            self.metrics.record_call(record)
            log_call(record, self.redact)
        except Exception:  # metrics must never break a call
            pass
        for later in record.after or ():
            later.run()

    def _chain(
        self, request: ChatRequest, options: CallOptions, attempt: Callable[[_Call], Iterator[Any]], after: list[Any] | None = None
    ) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        started = time.monotonic()
        deadline = options.deadline or Deadline(self.config.timeout_seconds)
        policy = options.budget if options.budget is not None and (options.budget.active or options.batch_budget) else None
        notes: list[str] = []
        if policy is not None and request.max_tokens is None:
            request = replace(request, max_tokens=policy.max_tokens)  # the worst case must be bounded
            notes.append(f"max_tokens set to {policy.max_tokens} (the budgets' max_tokens): a call under a budget needs a bounded cost")
        if policy is None and (options.cache == "off" or (request.temperature is None and options.cache == "auto")):
            return self._models(request, options, attempt, deadline, None, after)  # the lean path: nothing to add
        return self._spend_controlled(request, options, attempt, deadline, policy, started, notes, after)

    def _spend_controlled(
        self,
        request: ChatRequest,
        options: CallOptions,
        attempt: Callable[[_Call], Iterator[Any]],
        deadline: Deadline,
        policy: BudgetPolicy | None,
        started: float,
        notes: list[str],
        after: list[Any] | None = None,
    ) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        key = None
        if self.config.cache_ttl_seconds > 0 and use_cache(options.cache, request, streaming=attempt == self._stream_attempt):
            key = cache_key(self.namespace, request)
            hit = self._cached(key, deadline)
            if hit is not None:
                yield from self._replay(hit, request, started)
                return
        try:
            for item in self._models(request, options, attempt, deadline, policy, after):
                if type(item) is StreamCompleted:
                    result = item.result
                    result.warnings[:0] = notes
                    if key is not None:
                        result.cache = "miss"
                        if result.finish_reason in CACHEABLE_FINISH and not result.interrupted:
                            self.cache.put(key, _cache_entry(result), self.config.cache_ttl_seconds)
                yield item
        finally:
            if key is not None:
                self.flights.land(key)

    def _cached(self, key: str, deadline: Deadline) -> dict[str, Any] | None:
        """A cached reply for `key`, waiting for an identical call in flight; None: this call is sent
        (and, if it leads the flight, lands it)."""
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        flight = self.flights.lead(key)
        if flight is None:
            return None
        flight.wait(max(0.0, deadline.remaining))
        hit = self.cache.get(key)
        if hit is None:
            self.flights.lead(key)  # the first call failed: this one goes, others may wait for it
        return hit

    def _replay(self, hit: dict[str, Any], request: ChatRequest, started: float) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        if hit.get("reasoning"):
            yield ReasoningDelta(hit["reasoning"])
        if hit.get("text"):
            yield TextDelta(hit["text"])
        served = str(hit.get("model") or request.model)
        result = ChatResult(
            text=str(hit.get("text") or ""),
            finish_reason=hit.get("finish_reason"),
            model=served,
            requested_model=request.model,
            usage=Usage(method="cache"),
            latency_ms=(time.monotonic() - started) * 1000,
            attempts=0,
            cost=CostBreakdown(served, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, "cache hit: nothing was billed"),
            warnings=[],
            reasoning=str(hit.get("reasoning") or ""),
            cache="hit",
            cost_saved_usd=hit.get("cost_usd"),
        )
        result.ttft_ms = result.latency_ms
        yield StreamCompleted(result)

    def _models(
        self,
        request: ChatRequest,
        options: CallOptions,
        attempt: Callable[[_Call], Iterator[Any]],
        deadline: Deadline,
        policy: BudgetPolicy | None,
        after: list[Any] | None = None,
    ) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        """`after`: where the breaker's success may be left for after the call (`_observed`)."""
        limiter = self._limiter(options.limits)
        headers = _request_headers(options.correlation_id)
        models = [request.model]
        if options.use_fallbacks:
            models += [m for m in self.config.fallback_models if m != request.model]
        tried: list[str] = []
        spent = 0  # requests already sent to earlier models: `attempts` counts every request sent
        for index, model in enumerate(models):
            model_request = request if model == request.model else request.with_model(model)
            holds: list[Hold] = []
            budget_notes: list[str] = []
            price: ModelPrice | None = None
            if policy is not None:
                try:
                    model_request, holds, price, budget_notes = self._reserve_budget(model_request, policy, options)
                except BudgetExceeded as exc:
                    exc.attempts = spent  # requests already sent to the models before this one
                    raise
            call = _Call(model_request, deadline, limiter, time.monotonic(), headers=headers)
            completed: StreamCompleted | None = None
            try:
                try:
                    breaker, permit, call.pause_until = self._permit(model_request.model, limiter)
                    try:
                        completed = yield from self._retrying(call, attempt)
                    except GatewayError as exc:
                        self._breaker_outcome(model_request.model, breaker, permit, exc)
                        raise
                    except GeneratorExit:  # the caller stopped reading: nothing says the gateway failed
                        breaker.record_success(permit)
                        raise
                    except BaseException:
                        breaker.record_failure(permit)  # a half-open probe must always be reported back
                        raise
                    later = breaker.success_later(permit) if after is not None and not permit.probe and hasattr(breaker, "success_later") else None
                    if later is None:
                        breaker.record_success(permit)
                    else:
                        after.append(later)  # type: ignore[union-attr]
                    if permit.probe:
                        self.metrics.record_breaker(model_request.model, "half_open", "closed")
                except GatewayError as exc:
                    if holds:
                        self._settle(holds, _failed_cost(exc, holds[0].amount, price))
                    exc.attempts += spent
                    if call.delivered or index == len(models) - 1 or not _is_unavailable(exc):
                        raise
                    tried.append(model)
                    spent = exc.attempts
                    continue
            finally:
                if holds and completed is None:
                    self._settle(holds, holds[0].amount)  # stopped midway: the reservation stays counted
            result = completed.result
            result.attempts += spent
            result.fallback_from = tried
            if tried:
                result.warnings.append(f"served by fallback model {quote(model)} after {', '.join(quote(m) for m in tried)} failed")
            if policy is not None:
                cost = result.cost_usd
                if cost is None and price is not None:
                    cost = PriceTable({price.model: price}, {}).cost(price.model, result.usage).total_usd  # type: ignore[union-attr]
                self._settle(holds, cost_nano(cost or 0.0))
                remaining = [h.remaining for h in holds if h.remaining is not None]
                if policy.call is not None:  # what this call left of its own limit
                    remaining.append(round(policy.call * 1e9) - cost_nano(cost or 0.0))
                result.budget = {"remaining_usd": round(max(0, min(remaining)) / 1e9, 9) if remaining else None}
                if model_request.model != model:
                    result.budget["downgraded_from"] = model
                result.warnings.extend(budget_notes)
            yield completed
            return

    # ----------------------------------------------------------------- budgets

    def _reserve_budget(
        self, request: ChatRequest, policy: BudgetPolicy, options: CallOptions
    ) -> tuple[ChatRequest, list[Hold], ModelPrice | None, list[str]]:
        """Reserves the request's worst case against every budget in force, or raises BudgetExceeded. With
        the administrator's `downgrade`, a request that does not fit goes to the dearest cheaper priced
        model that fits instead."""
        try:
            holds, price, notes = self._reserve_for(request, policy, options)
            return request, holds, price, notes
        except BudgetExceeded as refused:
            if not policy.downgrade:
                raise
            first = refused
        own = self.prices.resolve(request.model)
        ceiling = own.input + own.output if own else float("inf")
        cheaper = sorted(
            ((p.input + p.output, name) for name in self.prices.models if (p := self.prices.resolve(name)) and p.input + p.output < ceiling),
            reverse=True,
        )
        for _, name in cheaper:
            try:
                holds, price, notes = self._reserve_for(request.with_model(name), policy, options)
            except BudgetExceeded:
                continue
            notes.append(f"budget: sent to the cheaper model {quote(name)} instead of {quote(request.model)} ({first.message})")
            return request.with_model(name), holds, price, notes
        raise first

    def _reserve_for(self, request: ChatRequest, policy: BudgetPolicy, options: CallOptions) -> tuple[list[Hold], ModelPrice | None, list[str]]:
        notes: list[str] = []
        price = self.prices.resolve(request.model)
        if price is None:
            if policy.unpriced is None:
                raise BudgetExceeded(
                    f"not sent: model {quote(request.model)} has no known price, so its cost cannot be counted against a budget. "
                    "Add its price in price_overrides, or set 'unpriced' in the budgets credential",
                    budget="unpriced_model",
                    spent_usd=0.0,
                    limit_usd=0.0,
                    resets_at=None,
                )
            price = policy.unpriced
            notes.append(f"budget: model {quote(request.model)} has no known price; counted at the budgets' unpriced price")
        worst = cost_nano(price.worst_case_usd(worst_case_prompt_tokens(request.messages), request.max_tokens or policy.max_tokens))
        if policy.call is not None and worst > round(policy.call * 1e9):
            raise BudgetExceeded(
                f"not sent: its worst-case cost {worst / 1e9:.6f} USD is over the per-call budget of {policy.call:.6f} USD "
                "(lower max_tokens, shorten the prompt or choose a cheaper model)",
                budget="call",
                spent_usd=0.0,
                limit_usd=policy.call,
                resets_at=None,
            )
        holds: list[Hold] = []
        if options.batch_budget is not None:
            self._take(options.batch_budget.store, [options.batch_budget.charge()], worst, holds)
        self._take(self.budgets, charges_for(policy, self.namespace, options.identity, time.time()), worst, holds)
        return holds, price, notes

    def _take(self, store: BudgetStore, charges: list[Any], amount: int, holds: list[Hold]) -> None:
        if not charges:
            return
        try:
            granted = store.reserve(charges, amount)
        except GatewayError:
            self._settle(holds, 0)
            raise
        if isinstance(granted, Refusal):
            self._settle(holds, 0)
            charge = granted.charge
            resets = iso(charge.expires_at) if charge.expires_at else None
            raise BudgetExceeded(
                f"not sent: its worst-case cost {amount / 1e9:.6f} USD would pass the {charge.name} budget "
                f"({granted.spent / 1e9:.6f} of {charge.limit / 1e9:.6f} USD spent"
                + (f"; it resets at {resets})" if resets else ")"),
                budget=charge.name,
                spent_usd=granted.spent / 1e9,
                limit_usd=charge.limit / 1e9,
                resets_at=resets,
            )
        holds.append(granted)

    @staticmethod
    def _settle(holds: list[Hold], actual: int) -> None:
        for hold in holds:
            hold.store.settle(hold, actual)

    def _breaker_outcome(self, model: str, breaker: Breaker, permit: Permit, exc: GatewayError) -> None:
        """Reports a failed call to the breaker, and any transition it caused to the metrics (the state
        is read only on this path: failures are rare, successes pay nothing)."""
        if permit.probe:
            failed = _record(breaker, permit, exc)
            self.metrics.record_breaker(model, "half_open", "open" if failed else "closed")
            return
        if not _counts_against(exc):
            _record(breaker, permit, exc)
            return
        before = breaker.state
        _record(breaker, permit, exc)
        after = breaker.state
        if after != before:
            self.metrics.record_breaker(model, before, after)

    def _permit(self, model: str, limiter: RateLimiter | None = None) -> tuple[Breaker, Permit, float | None]:
        """The breaker's permission to call `model`; raises CircuitOpenError (nothing sent) when open.
        With Redis and no buckets, also when the gateway key's 429 pause ends (one round trip for both)."""
        breaker = self.breaker_for(model)
        gated = breaker.acquire_gated(limiter) if limiter is not None and hasattr(breaker, "acquire_gated") else None
        if gated is None:
            permit, pause_until = breaker.acquire(), None
        else:
            permit, pause_until = gated
        if permit.probe:
            self.metrics.record_breaker(model, "open", "half_open")
        if not permit.allowed:
            self.metrics.record_breaker(model, "open", "open")
            raise CircuitOpenError(
                f"circuit open for model {quote(model)} at {self.config.base_url}: recent calls failed; "
                f"not sending for another {permit.retry_in:.0f}s",
                attempts=0,
            )
        return breaker, permit, pause_until

    # ----------------------------------------------------------------- the chain: retries

    def _retrying(self, call: _Call, attempt: Callable[[_Call], Iterator[Any]]) -> Generator[TextDelta | ReasoningDelta, None, Any]:
        """Runs attempts until one gives its outcome (returned), passing content on as it arrives."""
        while True:
            run = attempt(call)
            try:
                for item in run:
                    if type(item) is not TextDelta and type(item) is not ReasoningDelta:
                        if call.request is not None:
                            self.metrics.record_attempt(call.request.model, "ok")
                        return item
                    call.delivered = True
                    yield item
                raise AssertionError("an attempt ended without an outcome")
            except AttemptFailed as failed:
                failure = failed.attempt
            finally:
                run.close()
            if call.request is not None:
                error = failure.error
                self.metrics.record_attempt(call.request.model, f"http_{error.status}" if error.status else error.code)
            if call.delivered:
                # Content reached the caller: sending again would repeat it (and bill it twice).
                raise failure.final(call.attempts, retryable=False) from None
            if failure.resend:
                continue
            if not failure.retryable or call.attempts >= self.retry.max_attempts:
                raise failure.final(call.attempts) from None
            self._wait_before_retry(failure, call)

    def _wait_before_retry(self, failure: Attempt, call: _Call) -> None:
        number = call.attempts
        delay = self.retry.delay(number, failure.retry_after)
        if isinstance(failure.error, RateLimitedError):
            call.limiter.pause(delay)  # every caller of this gateway key waits, not only this request
        if delay >= call.deadline.remaining:
            failure.error.message += f" (gave up after {number} attempt(s): waiting {delay:.1f}s more would pass the call's deadline)"
            raise failure.final(number) from None
        if call.request is not None:
            self.metrics.record_retry(call.request.model, delay if isinstance(failure.error, RateLimitedError) else 0.0)
        time.sleep(delay)

    # ----------------------------------------------------------------- the chain: attempts

    def _plain_attempt(self, call: _Call) -> Iterator[StreamCompleted]:
        request = call.request
        reservation = self._reserve(call)
        call.attempts += 1
        try:
            response = self.endpoint.send("POST", "/chat/completions", request.payload(), call.deadline, self._observer(call), call.headers)
        except AttemptFailed:
            reservation.settle(0)
            if call.paced:
                self.pacer.release(call.paced)
            raise
        data = self.endpoint.read_json(response, call.deadline)
        result = completion_result(
            data, request, response, self.endpoint, started=call.started, attempts=call.attempts, prices=self.prices, notes=self.state.warnings()
        )
        reservation.settle(result.usage.total_tokens)
        yield StreamCompleted(result)

    def _stream_attempt(self, call: _Call) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        request = call.request
        reservation = self._reserve(call)
        call.attempts += 1
        include_usage = call.include_usage
        state = StreamState()
        try:
            payload = request.payload(stream=True, include_usage=include_usage)
            response = self.endpoint.send("POST", "/chat/completions", payload, call.deadline, self._observer(call), call.headers)
            yield from read_stream(response, state, call.deadline, call.started, self.redact)
        except AttemptFailed as failed:
            reservation.settle(0)
            if call.paced:
                self.pacer.release(call.paced)
            error = failed.attempt.error
            if include_usage and not state.text and _refuses_stream_options(error):
                # Some OpenAI-compatible gateways reject stream_options: ask again without it.
                call.include_usage = False
                failed.attempt.resend = True
            elif isinstance(error, StreamInterruptedError | InBandStreamError):
                error.partial_text = state.text
                error.partial_result = self._stream_result(call, state, [], interrupted=True)
            raise
        warnings = [] if include_usage else ["the gateway refused stream_options.include_usage"]
        result = self._stream_result(call, state, warnings)
        reservation.settle(result.usage.total_tokens)
        yield StreamCompleted(result)

    def _stream_result(self, call: _Call, state: StreamState, warnings: list[str], *, interrupted: bool = False) -> ChatResult:
        return stream_result(
            call.request,
            state,
            started=call.started,
            attempts=call.attempts,
            warnings=warnings,
            prices=self.prices,
            notes=self.state.warnings(),
            interrupted=interrupted,
        )

    def _models_attempt(self, call: _Call) -> Iterator[tuple[Response, Any]]:
        call.attempts += 1
        response = self.endpoint.send("GET", "/models", None, call.deadline)
        yield response, self.endpoint.read_json(response, call.deadline)

    # ----------------------------------------------------------------- limits

    def _limiter(self, limits: LimitSettings) -> RateLimiter:
        """The call's buckets; even without limits it holds the call while the gateway's last 429 lasts."""
        return self.state.rate_limiter(self.config.base_url, self.config.key_digest, limits, keys=self.config.keys)

    def _observer(self, call: _Call) -> Callable[[Response], None] | None:
        """What reads the answer's rate-limit headers for the adaptive pacer (nothing, once the gateway
        turned out to send none)."""
        if self.pacer.mode == "free" or not call.paced:
            return None
        number, pacer = call.paced, self.pacer
        return lambda response: pacer.observe(response.headers, number, rejected=response.status == 429)

    def _reserve(self, call: _Call) -> Reservation:
        limiter, request = call.limiter, call.request
        tokens = 0
        if limiter.settings.tpm:  # the estimate costs a tokenizer pass: only when a TPM bucket needs it
            tokens = estimate_prompt_tokens(request.messages).tokens + (request.max_tokens or DEFAULT_COMPLETION_RESERVE)
        started = time.monotonic()
        pause_until, call.pause_until = call.pause_until, None  # read with the permit: for the first attempt only
        try:
            if not limiter.settings.rpm:  # no configured pace: the gateway's rate-limit headers set it
                call.paced = self.pacer.acquire(call.deadline.at)
            if pause_until is not None and time.monotonic() - started < PAUSE_READ_FRESH:
                reservation = limiter.wait_until(pause_until, tokens, call.deadline.at)  # type: ignore[attr-defined]
            else:  # no pause read yet, or the pacer held the call long enough for a new 429 to matter
                reservation = limiter.reserve(tokens, call.deadline.at)
            waited = time.monotonic() - started
            if waited > 0.001:
                self.metrics.record_wait(request.model, waited)
            return reservation
        except RateLimitTimeout as exc:
            why = "the configured rate limit" if limiter.settings.rpm or limiter.settings.tpm else "the gateway's rate limit"
            error = RateLimitedError(
                f"not sent: waiting for {why} would take {exc.wait:.1f}s, past the call's deadline",
                retry_after=exc.wait,
                attempts=call.attempts,
            )
            error.not_sent = True  # this attempt never left: a batch reports the item as not run
            error.retryable = False  # the limit is per key: another model would not be sent sooner
            raise error from None


class ClientRegistry:
    """The clients shared across invocations in this process, one per configuration (gateway, key and
    settings), so that each keeps its warm keep-alive pool. Bounded: past `limit` configurations the
    least recently used client is closed and dropped (a call still using it finishes normally)."""

    def __init__(self, limit: int = MAX_SHARED_CLIENTS) -> None:
        self.limit = limit
        self._clients: OrderedDict[GatewayConfig, GatewayClient] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, config: GatewayConfig, *, state: SharedState | None = None) -> GatewayClient:
        register_secret(config.api_key)  # a key in use stays among the last line of defence's recent keys
        with self._lock:
            client = self._clients.get(config)
            if client is None:
                client = self._clients[config] = GatewayClient(config, state=state)
                evicted = self._clients.popitem(last=False)[1] if len(self._clients) > self.limit else None
            else:
                self._clients.move_to_end(config)
                if state is not None:
                    client.state = state
                evicted = None
        if evicted is not None:
            evicted.close()
        return client

    def clear(self) -> None:
        """Closes and drops every shared client."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()

    def __len__(self) -> int:
        return len(self._clients)


SHARED_CLIENTS = ClientRegistry()


def _outcome[T](chain: Generator[TextDelta, None, T]) -> T:
    """Runs a chain that delivers no content (a plain call) and returns its outcome."""
    try:
        next(chain)
    except StopIteration as end:
        return end.value  # type: ignore[no-any-return]
    chain.close()
    raise AssertionError("a plain call delivered content")


def _record(breaker: Breaker, permit: Permit, exc: GatewayError) -> bool:
    """Reports `exc` to the breaker; True when it counted as a failure."""
    if _counts_against(exc):
        breaker.record_failure(permit)
        return True
    breaker.record_success(permit)
    return False


def _counts_against(exc: GatewayError) -> bool:
    # Only failures that say the upstream is unhealthy count; a bad request or wrong key does not.
    client_side = exc.status is not None and 400 <= exc.status < 500 and exc.status != 408
    return not client_side and isinstance(exc, UpstreamUnavailableError | GatewayTimeoutError | StreamInterruptedError | InBandStreamError)


def _completed(record: CallRecord, result: ChatResult) -> None:
    """What a call's result tells its record (the model it was sent to, usage, cost, the gateway's id)."""
    record.model = result.requested_model
    record.attempts = result.attempts
    record.usage = result.usage
    record.cost_usd = result.cost_usd
    record.cache = result.cache
    record.gateway_request_id = result.request_id or ""
    if result.ttft_ms is not None and result.cache != "hit":
        record.ttft_seconds = result.ttft_ms / 1000
    result.correlation_id = record.correlation_id


_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _request_headers(correlation_id: str) -> dict[str, str] | None:
    """The correlation id as X-Request-Id, when it is a plain token (it goes into an HTTP header)."""
    if correlation_id and _SAFE_ID.fullmatch(correlation_id):
        return {"X-Request-Id": correlation_id}
    return None


def _is_unavailable(exc: GatewayError) -> bool:
    """The primary is unavailable (retryable errors exhausted, or circuit open): a fallback may help.
    Never on 4xx, and never after a failure that may have been billed (not retryable)."""
    if isinstance(exc, CircuitOpenError):
        return True
    if exc.status is not None and 400 <= exc.status < 500:
        return False
    return exc.retryable and isinstance(exc, UpstreamUnavailableError | GatewayTimeoutError)


def _failed_cost(exc: GatewayError, reserved: int, price: ModelPrice | None) -> int:
    """What a failed call is counted at: nothing when the gateway answered with an error status or it
    was never sent; what an interrupted stream delivered; otherwise (the gateway may have billed a reply
    we never read) the whole reservation."""
    if exc.not_sent or exc.status is not None:
        return 0
    partial = getattr(exc, "partial_result", None)
    if isinstance(partial, ChatResult):
        cost = partial.cost_usd
        if cost is None and price is not None:
            breakdown = PriceTable({price.model: price}, {}).cost(price.model, partial.usage)
            cost = breakdown.total_usd if breakdown else None
        return cost_nano(cost) if cost is not None else reserved
    return reserved


def _cache_entry(result: ChatResult) -> dict[str, Any]:
    return {
        "text": result.text,
        "reasoning": result.reasoning,
        "finish_reason": result.finish_reason,
        "model": result.model,
        "cost_usd": result.cost_usd,
        "usage": result.usage.to_dict(),
    }


def _refuses_stream_options(error: GatewayError) -> bool:
    # As a 400/422, or as an in-band error event on a 200 stream, depending on the gateway.
    return isinstance(error, BadRequestError | InBandStreamError) and "stream_options" in error.message
