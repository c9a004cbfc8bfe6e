"""The one place that picks where shared state lives: in this process, or in Redis.

Interface modules (`gateway.state.shared`) hold the protocol and the in-process version; Redis modules
import them, never the reverse, and only this module chooses between them.

A `Backends` is what one plugin process counts and remembers in: its in-process state, reply cache and
metrics, and one backend object per Redis URL. The process's wiring (`services.Services.create`) makes
one and hands it to its clients (`gateway.client.ClientRegistry`); nothing is made at import.

Budgets and the reply cache are made per workspace (`gateway.state.keys.Keys`, from `GatewayConfig.keys`): one
process serves every workspace. The rate-limit and breaker state is one object per Redis URL, and each
call names its workspace (`SharedState.breaker(..., keys=...)`), so its health checks and grouped reads
are shared while its keys are not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.state.keys import Keys
from gateway.state.shared import InProcessState, SharedState

if TYPE_CHECKING:
    from gateway.metrics import InProcessMetrics
    from gateway.spend.cache import LRUReplyCache


# Seconds a client may reuse a read of a closed breaker and the 429 pause in Redis (`RedisState.gate_max_age`):
# a breaker opened or a pause set by ANOTHER process is honoured at most this late; this process's own
# failures and 429s are seen at once, and a half-open breaker is always asked in Redis (one probe at a
# time across processes). The staleness contract: docs/operations.md.
CLIENT_GATE_MAX_AGE = 0.1


class Backends:
    """One process's stores: `state`, `cache` and `metrics` in this process (made here unless handed in),
    and the Redis-backed ones per URL, made when first asked for and kept for the life of the object."""

    def __init__(
        self, *, state: InProcessState | None = None, cache: LRUReplyCache | None = None, metrics: InProcessMetrics | None = None
    ) -> None:
        from gateway.metrics import InProcessMetrics  # the metrics package is loaded when a process is wired, not at import
        from gateway.spend.cache import LRUReplyCache

        self.state = state if state is not None else InProcessState()
        self.cache = cache if cache is not None else LRUReplyCache()
        self.metrics = metrics if metrics is not None else InProcessMetrics()
        self._lock = threading.Lock()
        # One backend object per (kind, Redis URL, workspace scope or ""): each shares the process's one
        # connection pool for that URL (`gateway.state.redis_connection`).
        self._per_url: dict[tuple[str, str, str], Any] = {}

    def _for_url(self, kind: str, redis_url: str, make: Callable[[str], Any], scope: str = "") -> Any:
        with self._lock:
            backend = self._per_url.get((kind, redis_url, scope))
            if backend is None:
                backend = self._per_url[(kind, redis_url, scope)] = make(redis_url)
            return backend

    def state_for(self, redis_url: str, *, gate_max_age: float = CLIENT_GATE_MAX_AGE) -> SharedState:
        """In-process unless a Redis URL is configured; one RedisState per URL (and `gate_max_age`, how long a
        closed breaker read may be reused: `gateway.state.redis_state.RedisState`), falling back to `state`."""
        if not redis_url:
            return self.state

        def make(url: str) -> SharedState:
            from gateway.state.redis_state import RedisState  # redis is only imported when configured

            return RedisState(url, gate_max_age=gate_max_age, fallback=self.state)

        return self._for_url(f"state:{gate_max_age}" if gate_max_age else "state", redis_url, make)  # type: ignore[no-any-return]

    def budget_store_for(self, redis_url: str, keys: Keys) -> Any:  # gateway.spend.budget.BudgetStore
        """Where one workspace's budgets are counted: in this process, or (with a Redis URL) across every process."""
        if not redis_url:
            from gateway.spend.budget import InProcessBudgetStore

            return self._for_url("budgets", "", lambda _url: InProcessBudgetStore(), keys.scope)

        def make(url: str) -> Any:
            from gateway.spend.redis_budget import RedisBudgetStore
            from gateway.state.redis_connection import redis_client

            return RedisBudgetStore(redis_client(url), keys)

        return self._for_url("budgets", redis_url, make, keys.scope)

    def cache_for(self, redis_url: str, keys: Keys) -> Any:  # gateway.spend.cache.ReplyCache
        """Where one workspace's replies are cached: its share of `cache`, or (with a Redis URL)
        Redis, that share while Redis is down."""
        from gateway.spend.cache import ScopedReplyCache

        local = self._for_url("cache", "", lambda _url: ScopedReplyCache(self.cache, keys), keys.scope)
        if not redis_url:
            return local

        def make(url: str) -> Any:
            from gateway.spend.redis_budget import RedisReplyCache
            from gateway.state.redis_connection import redis_client

            return RedisReplyCache(redis_client(url), local, keys)

        return self._for_url("cache", redis_url, make, keys.scope)

    def metrics_for(self, redis_url: str) -> Any:  # gateway.metrics.MetricsStore
        """Where call metrics are counted, per workspace (each addition names its workspace): `metrics`,
        this process's figures, or (with a Redis URL) one Redis hash per workspace that every process adds
        to (this process's figures while Redis is down), written from this process at most once a second,
        at the end of each tool invocation, before this process answers a scrape and at exit
        (`gateway.metrics.BufferedMetrics`)."""
        if not redis_url:
            return self.metrics

        def make(url: str) -> Any:
            from gateway.metrics import BufferedMetrics
            from gateway.state.redis_connection import redis_client

            return BufferedMetrics(redis_client(url), self.metrics)

        return self._for_url("metrics", redis_url, make)

    def flush_metrics(self) -> None:
        """Writes the figures every client's Redis metrics hold (`metrics_for`) now, and returns once they are in
        Redis (or, Redis down, in this process's figures): the end of a tool invocation (its figures are shared
        before the workflow sees its answer) and process exit. Never raises."""
        with self._lock:
            stores = [backend for (kind, _, _), backend in self._per_url.items() if kind == "metrics"]
        for store in stores:
            store.write()

    def write_behind_metrics_for(self, redis_url: str) -> Any:  # gateway.metrics.WriteBehindMetrics
        """The Redis hashes of `metrics_for`, written only when the owner calls `write()`: for the jobs'
        workers, whose results writes carry their calls' figures (of every workspace the process serves)."""

        def make(url: str) -> Any:
            from gateway.metrics import WriteBehindMetrics
            from gateway.state.redis_connection import redis_client

            return WriteBehindMetrics(redis_client(url), self.metrics)

        return self._for_url("write_behind_metrics", redis_url, make)
