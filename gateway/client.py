"""The one gateway client every tool uses: the public API and the composition of the call chain.

Every call, plain or streamed, goes through one chain of layers (`gateway.call`), each handed its
collaborators here, the way httpx composes `send` -> auth -> redirects -> single request:

    observed -> cache -> fallbacks -> budget -> breaker -> limits and pacing -> retry loop -> attempt -> transport

- observed (`gateway.call.observe`): one CallRecord per call for the metrics and the log line.
- cache (`gateway.call.cache_step`): an identical earlier reply is the answer; concurrent identical
  requests make one gateway call. Never touches the budgets, the breaker or the limits.
- fallbacks (`gateway.call.fallbacks`): the primary model, then each fallback model while the previous
  one is unavailable; `attempts` counts every request sent, across models.
- budget (`gateway.call.budget_step`): each model's worst case reserved before sending, settled after.
- breaker (`gateway.call.breaker_step`): one permit per model; its outcome is reported back whatever happens.
- retry loop (`gateway.call.retry_loop`): tries again only what the attempt classified as retryable.
- attempt (`gateway.call.attempt`) with limits and pacing (`gateway.call.limits_step`): a place in the
  rate limit (or the adaptive pacer's turn), one request through the transport (`gateway.wire.transport`),
  the answer turned into a result.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator

from gateway.call.attempt import Attempts
from gateway.call.breaker import Breaker
from gateway.call.breaker_step import BreakerStep
from gateway.call.budget_step import BudgetStep
from gateway.call.cache_step import CacheStep
from gateway.call.chain import Chain
from gateway.call.fallbacks import Fallbacks
from gateway.call.limits_step import LimitsStep
from gateway.call.observe import Observed
from gateway.call.options import Call, CallOptions
from gateway.call.pacing import AdaptivePacer
from gateway.call.rate_limits import LimitSettings
from gateway.call.retry import RetryPolicy
from gateway.call.retry_loop import RetryLoop, outcome
from gateway.call.stores import Stores
from gateway.config import GatewayConfig
from gateway.errors import NotOpenAICompatibleError, Redactor, register_secret
from gateway.metrics import MetricsSink, MetricsStore
from gateway.models import ChatRequest, ChatResult, StreamCompleted, TextDelta
from gateway.spend.budget import BudgetStore
from gateway.spend.cache import ReplyCache, SingleFlight
from gateway.spend.pricing import PriceTable
from gateway.state.backends import Backends
from gateway.state.shared import SharedState
from gateway.wire.http_transport import DEFAULT_POOL_SIZE, HTTPTransport
from gateway.wire.transport import Deadline, Endpoint, Transport

# Shared clients kept per process (one per gateway, key and settings); the least recently used is closed.
MAX_SHARED_CLIENTS = 32

_NO_LIMITS = LimitSettings()

__all__ = ["CallOptions", "ClientRegistry", "Deadline", "GatewayClient"]


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
        backends: Backends | None = None,
    ) -> None:
        self._config = config
        # The process's stores (`ClientRegistry` hands them in); a client made alone gets stores of its own.
        self.backends = backends if backends is not None else Backends()
        register_secret(config.api_key)
        self.redact = Redactor([config.api_key])
        self.prices = prices or PriceTable.bundled().with_overrides(config.price_overrides)
        self._state = state or self.backends.state
        self.retry = retry or RetryPolicy(max_retries=config.max_retries)
        self.transport: Transport = transport or HTTPTransport(config, self.redact)
        self.endpoint = Endpoint(self.transport, config.base_url, self.redact)
        self._pooled_calls = 0  # parallel calls announced by running batches, across invocations
        self._pool_lock = threading.Lock()
        self.stores = Stores(config, self.prices, self.backends, budgets=budgets, cache=cache, metrics=metrics)
        self.pacer = pacer or AdaptivePacer()
        self.flights = SingleFlight()
        self.namespace = f"{hashlib.sha256(config.base_url.encode()).hexdigest()[:16]}:{config.key_digest}"
        self._compose()

    def _compose(self) -> None:
        """The chain, each layer handed what it uses; made again when the configuration or state is replaced."""
        config, state, stores = self._config, self._state, self.stores
        self._limits = LimitsStep(state, config, self.pacer, stores)
        self._attempts = Attempts(self.endpoint, self._limits, self.prices, state.warnings, self.redact)
        self._retry_loop = RetryLoop(self.retry, stores)
        self._breakers = BreakerStep(state, config, stores)
        budget = BudgetStep(stores, self.prices, self.namespace)
        fallbacks = Fallbacks(config, self._limits, budget, self._breakers, self._retry_loop)
        self._chain = Chain(config, Observed(stores, self.redact), CacheStep(config, stores, self.flights, self.namespace), fallbacks)

    @property
    def config(self) -> GatewayConfig:
        return self._config

    @config.setter
    def config(self, config: GatewayConfig) -> None:
        self._config = self.stores.config = config
        self._compose()

    @property
    def state(self) -> SharedState:
        return self._state

    @state.setter
    def state(self, state: SharedState) -> None:
        if state is not self._state:
            self._state = state
            self._compose()

    @property
    def metrics(self) -> MetricsSink:
        return self.stores.metrics

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
        call = Call(None, Deadline(timeout), self._limits.limiter(_NO_LIMITS), time.monotonic())  # type: ignore[arg-type]
        response, data = outcome(self._retry_loop.run(call, self._attempts.models))
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise NotOpenAICompatibleError(self.endpoint.not_openai_message(response, "has no 'data' list"))
        return [str(m.get("id")) for m in models if isinstance(m, dict) and m.get("id")]

    def chat(self, request: ChatRequest, options: CallOptions | None = None) -> ChatResult:
        completed = None
        for completed in self._chain.call(request, options or CallOptions(), self._attempts.plain, streaming=False):  # noqa: B007 (the last item)
            pass
        return completed.result  # type: ignore[union-attr]

    def stream_chat(self, request: ChatRequest, options: CallOptions | None = None) -> Iterator[TextDelta | StreamCompleted]:
        """Yields TextDelta pieces as they arrive, then one StreamCompleted. A stream that breaks off
        raises StreamInterruptedError (or InBandStreamError) carrying the partial text."""
        return self._chain.call(request, options or CallOptions(), self._attempts.stream, streaming=True)  # type: ignore[return-value]

    def breaker_for(self, model: str) -> Breaker:
        return self._breakers.breaker_for(model)


class ClientRegistry:
    """The clients shared across invocations in this process, one per configuration (gateway, key and
    settings), so that each keeps its warm keep-alive pool, and the stores they count in (`backends`:
    in-process state, reply cache and metrics, and the Redis-backed ones per URL). The process's wiring
    makes one (`services.Services.create`). Bounded: past `limit` configurations the least recently used
    client is closed and dropped (a call still using it finishes normally)."""

    def __init__(self, backends: Backends | None = None, *, limit: int = MAX_SHARED_CLIENTS) -> None:
        self.backends = backends if backends is not None else Backends()
        self.limit = limit
        self._clients: OrderedDict[GatewayConfig, GatewayClient] = OrderedDict()
        self._lock = threading.Lock()

    def client(self, config: GatewayConfig) -> GatewayClient:
        """The process's client for `config`, on the shared state its `redis_url` picks."""
        return self.get(config, state=self.backends.state_for(config.redis_url))

    def get(self, config: GatewayConfig, *, state: SharedState | None = None) -> GatewayClient:
        register_secret(config.api_key)  # a key in use stays among the last line of defence's recent keys
        with self._lock:
            client = self._clients.get(config)
            if client is None:
                client = self._clients[config] = GatewayClient(config, state=state, backends=self.backends)
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

