"""Figures kept in this plugin process, per workspace (`InProcessMetrics`); the process's one is made by its wiring
(`gateway.state.backends.Backends`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from gateway.metrics.catalog import BREAKER_STATES, SERIES_TTL_SECONDS, Figures, Update, series_of


class InProcessMetrics:
    """Figures of this plugin process, per workspace; series not written for `ttl` seconds are dropped."""

    scope = "process"
    PRUNE_EVERY = 60.0  # seconds between sweeps for stale series while figures are added

    def __init__(self, ttl: float = SERIES_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._figures: dict[str, Figures] = {}
        self._changed: dict[str, dict[tuple[Any, ...], float]] = {}  # workspace -> series -> last write
        self._lock = threading.Lock()
        self._swept = clock()

    def add(self, workspace: str, updates: list[Update]) -> None:
        now = self._clock()
        with self._lock:
            figures = self._figures.setdefault(workspace, {})
            changed = self._changed.setdefault(workspace, {})
            for key, amount in updates:
                figures[key] = figures.get(key, 0) + amount
                changed[series_of(key)[0]] = now
            if now - self._swept >= min(self.PRUNE_EVERY, self.ttl):
                self._sweep(now)

    def set_state(self, workspace: str, model: str, state: str) -> None:
        now = self._clock()
        with self._lock:
            figures = self._figures.setdefault(workspace, {})
            changed = self._changed.setdefault(workspace, {})
            for name in BREAKER_STATES:
                key = ("breaker_state", model, name)
                figures[key] = 1 if name == state else 0
                changed[key] = now

    def flush(self, after: list[Any] | None = None) -> None:
        """Figures here are visible at once; the script calls of `after` are left to the client."""

    def figures(self, workspace: str) -> Figures:
        with self._lock:
            self._sweep(self._clock())
            return dict(self._figures.get(workspace, {}))

    def workspaces(self) -> list[str]:
        with self._lock:
            return list(self._figures)

    def reset(self) -> None:
        with self._lock:
            self._figures.clear()
            self._changed.clear()

    def _sweep(self, now: float) -> None:
        """Drops the series not written for `ttl` seconds, and workspaces left without any (lock held)."""
        self._swept = now
        cutoff = now - self.ttl
        for workspace in list(self._changed):
            changed = self._changed[workspace]
            stale = {series for series, at in changed.items() if at < cutoff}
            if not stale:
                continue
            figures = self._figures.get(workspace, {})
            for key in [key for key in figures if series_of(key)[0] in stale]:
                del figures[key]
            for series in stale:
                del changed[series]
            if not changed:
                del self._changed[workspace]
                self._figures.pop(workspace, None)


# One write of one workspace's figures, applied atomically (a reader never sees half a call): stamps the
# series it is told to (each process restamps a series it writes at most every `_restamp_every`
# seconds, so most writes stamp nothing), applies (op, field, value) triples to the hash and, when told
# to (`limit` > 0, about once a minute per process and workspace), drops up to `limit` series not
# stamped for `ttl` seconds (every field of each: value, sum, buckets) and keeps both keys for `ttl`

