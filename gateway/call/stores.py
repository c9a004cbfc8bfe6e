"""Where a client's calls are counted and remembered: its budgets, its reply cache and its metrics.

Each is the one handed in, or taken from the process's `Backends` for the configuration's `redis_url`
when first used (a client that never calls under a budget never makes a budget store; listing models
records no metrics)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from gateway.config import GatewayConfig
from gateway.metrics import MetricsSink, MetricsStore, WorkspaceMetrics
from gateway.spend.budget import BudgetStore
from gateway.spend.cache import ReplyCache
from gateway.spend.pricing import PriceTable

if TYPE_CHECKING:
    from gateway.state.backends import Backends


class Stores:
    def __init__(
        self,
        config: GatewayConfig,
        prices: PriceTable,
        backends: Backends,
        *,
        budgets: BudgetStore | None = None,
        cache: ReplyCache | None = None,
        metrics: MetricsStore | None = None,
    ) -> None:
        self.config = config
        self.prices = prices
        self.backends = backends
        # Stores given here are used; the others are taken from `backends` for redis_url when first needed.
        if budgets is not None:
            self.budgets = budgets
        if cache is not None:
            self.cache = cache
        if metrics is not None:
            self.metrics = self.workspace_metrics(metrics)

    @functools.cached_property
    def budgets(self) -> BudgetStore:
        return self.backends.budget_store_for(self.config.redis_url, self.config.keys)  # type: ignore[no-any-return]

    @functools.cached_property
    def cache(self) -> ReplyCache:
        return self.backends.cache_for(self.config.redis_url, self.config.keys)  # type: ignore[no-any-return]

    @functools.cached_property
    def metrics(self) -> MetricsSink:
        return self.workspace_metrics(self.backends.metrics_for(self.config.redis_url))

    def workspace_metrics(self, store: MetricsStore) -> WorkspaceMetrics:
        """The figures of this client's workspace (its API key's scope), model labels from its price table."""
        return WorkspaceMetrics(store, self.config.keys.scope, self.prices)
