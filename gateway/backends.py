"""The one place that picks where shared state lives: in this process, or in Redis.

Interface modules (`gateway.state`) hold the protocol and the in-process version; Redis modules
import them, never the reverse, and only this module chooses between them.
"""

from __future__ import annotations

import threading
from typing import Any

from gateway.state import PROCESS_STATE, SharedState

_redis_states: dict[str, SharedState] = {}
_lock = threading.Lock()


def state_for(redis_url: str) -> SharedState:
    """In-process unless a Redis URL is configured; one RedisState per URL for the life of the process
    (its connection pool is the process's one pool for that URL, `gateway.redis_connection`)."""
    if not redis_url:
        return PROCESS_STATE
    with _lock:
        state = _redis_states.get(redis_url)
        if state is None:
            from gateway.redis_state import RedisState  # redis is only imported when configured

            state = _redis_states[redis_url] = RedisState(redis_url)
        return state


_PROCESS_BUDGETS: Any = None
_redis_budgets: dict[str, Any] = {}
_redis_caches: dict[str, Any] = {}


def budget_store_for(redis_url: str) -> Any:  # gateway.budget.BudgetStore
    """Where budgets are counted: in this process, or (with a Redis URL) across every process."""
    global _PROCESS_BUDGETS
    from gateway.budget import InProcessBudgetStore

    with _lock:
        if not redis_url:
            if _PROCESS_BUDGETS is None:
                _PROCESS_BUDGETS = InProcessBudgetStore()
            return _PROCESS_BUDGETS
        store = _redis_budgets.get(redis_url)
        if store is None:
            from gateway.redis_budget import RedisBudgetStore
            from gateway.redis_connection import redis_client

            store = _redis_budgets[redis_url] = RedisBudgetStore(redis_client(redis_url))
        return store


def cache_for(redis_url: str) -> Any:  # gateway.cache.ReplyCache
    """Where replies are cached: the process's LRU, or (with a Redis URL) Redis, the LRU while it is down."""
    from gateway.cache import PROCESS_CACHE

    if not redis_url:
        return PROCESS_CACHE
    with _lock:
        cache = _redis_caches.get(redis_url)
        if cache is None:
            from gateway.redis_budget import RedisReplyCache
            from gateway.redis_connection import redis_client

            cache = _redis_caches[redis_url] = RedisReplyCache(redis_client(redis_url), PROCESS_CACHE)
        return cache


_redis_metrics: dict[str, Any] = {}


def metrics_for(redis_url: str) -> Any:  # gateway.metrics.MetricsSink
    """Where call metrics are counted: this process's figures, or (with a Redis URL) one Redis hash that
    every process adds to (this process's figures while Redis is down)."""
    from gateway.metrics import PROCESS_METRICS

    if not redis_url:
        return PROCESS_METRICS
    with _lock:
        sink = _redis_metrics.get(redis_url)
        if sink is None:
            from gateway.metrics import RedisMetrics
            from gateway.redis_connection import redis_client

            sink = _redis_metrics[redis_url] = RedisMetrics(redis_client(redis_url), PROCESS_METRICS)
        return sink
