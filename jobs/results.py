"""A job's result records: how each outcome of an item is written down, and the writer that gathers
the workers' results and writes them to Redis in batches, off the workers' path.

The writer: a result wakes it; it writes the calls' figures and breaker successes, then everything
gathered in one script call (each result with its acknowledgement), and waits FLUSH_EVERY so the next
write carries several. So a result waits at most about FLUSH_EVERY and two round trips. An item stays
held (its lease renewed) until its result is written. A result Redis refuses (rather than cannot be
reached) is written alone, or replaced by an error that says so: it never holds back the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gateway import ChatResult
from gateway.state.redis_connection import CONNECTION_ERRORS
from jobs.inputs import JobItem
from jobs.store import Job, JobStore

logger = logging.getLogger("holysheep.jobs")

FLUSH_IDLE = 0.5  # the flusher's longest sleep without a result to write
# The shortest time between two results writes. Each is preceded by one write of the calls' figures and
# the breaker's successes, so those cost two round trips per FLUSH_EVERY instead of two a request; the
# price is that a process killed mid-job leaves up to this much more answered-but-unwritten work (those
# items end `interrupted`, never sent twice).
FLUSH_EVERY = 0.02
MAX_UNFLUSHED = 2000  # workers wait while this many results are not yet written (Redis slow or down)

Gathered = tuple[str, int, dict[str, Any]]  # (stream entry, item index, result record)


def result_record(item: JobItem, status: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": item.id,
        "status": status,
        "text": "",
        "error": "",
        "error_code": "",
        "usage": None,
        "cost_usd": None,
        "latency_ms": None,
        "attempts": 0,
        "model": item.model or "",
        "warnings": [],
    }
    base.update(fields)
    return base


def answered_record(item: JobItem, result: ChatResult, attempts: int, queued: float) -> dict[str, Any]:
    """A reply; its latency without the time the item waited for a request slot (this process's queue)."""
    return {
        "id": item.id,
        "status": "ok",
        "text": result.text,
        "error": "",
        "error_code": "",
        "usage": result.usage.to_dict(),
        "cost_usd": result.cost_usd,
        "latency_ms": round(max(0.0, result.latency_ms - queued * 1000), 1),
        "attempts": attempts,
        "model": result.model,
        "warnings": list(result.warnings),
    }


def not_stored_record(result: dict[str, Any], exc: Exception) -> dict[str, Any]:
    return {
        "id": result.get("id", ""),
        "status": "error",
        "text": "",
        "error": (
            f"its result could not be stored in Redis ({type(exc).__name__}); "
            f"it was {result.get('status')} after {result.get('attempts', 0)} request(s)"
        ),
        "error_code": "result_not_stored",
        "usage": None,
        "cost_usd": None,
        "latency_ms": result.get("latency_ms"),
        "attempts": result.get("attempts", 0),
        "model": str(result.get("model") or "")[:200],
        "warnings": [],
    }


def interrupted_record(item: JobItem, sent: int) -> dict[str, Any]:
    return result_record(
        item,
        "error",
        error=(
            "the plugin process sending this item stopped (its lease of lease_seconds ran out without renewal: the process "
            "ended, or lost Redis for that long) while its request was at the gateway or about to go; not sent again because "
            "the gateway may already have processed (and billed) it. Resubmit it from failed_items if needed"
        ),
        error_code="interrupted",
        attempts=sent,
    )


def retries_exhausted_record(item: JobItem, sent: int) -> dict[str, Any]:
    return result_record(
        item,
        "error",
        error="retries exhausted (the process sending it stopped meanwhile)",
        error_code="retries_exhausted",
        attempts=sent,
    )


def redis_lost_record(item: JobItem, sent: int, model: str) -> dict[str, Any]:
    return result_record(
        item,
        "error",
        error="Redis (redis_url) stopped answering while this item's reply was handled; not sent again because the gateway "
        "may already have processed (and billed) it. Resubmit it from failed_items if needed",
        error_code="interrupted",
        attempts=sent,
        model=model,
    )


class ResultWriter:
    """One runner's results on their way to Redis: gathered by the workers, written by the flusher."""

    def __init__(
        self,
        store: JobStore,
        job: Job,
        metrics: Any,
        *,
        written: Callable[[list[str]], None],
        lost_redis: Callable[[], None],
    ) -> None:
        self.store, self.job, self.metrics = store, job, metrics
        self._written, self._lost_redis = written, lost_redis  # the runner lets go of written items; Redis away
        self.unflushed: list[Gathered] = []  # results decided, not yet in Redis
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.wake = threading.Event()  # a result waits to be written

    def add(self, entry: str, index: int, outcome: dict[str, Any]) -> None:
        """Gathers a result for the flusher (the item stays held, its lease renewed, until written)."""
        while len(self.unflushed) >= MAX_UNFLUSHED:
            time.sleep(0.05)
        with self.lock:
            self.unflushed.append((entry, index, outcome))
        self.wake.set()

    def run(self, working: Callable[[], bool]) -> None:
        """The flusher thread: writes while the workers work, then what is left while leases would hold."""
        while working():
            self.wake.wait(FLUSH_IDLE)
            self.wake.clear()
            if self.flush() < 0:
                time.sleep(FLUSH_IDLE)  # Redis failing: do not retry on every new result
            else:
                time.sleep(FLUSH_EVERY)  # let results gather: one write for many
        # The workers are done: keep trying while our leases would still hold, then let go (Redis is
        # down; another process takes the items over once their leases expire, as after a crash).
        give_up = time.monotonic() + self.job.lease_ms / 1000
        while not self.flush_all() and time.monotonic() < give_up:
            time.sleep(min(1.0, self.job.lease_ms / 4000))
        with self.lock:
            if self.unflushed:
                logger.warning("job %s: %d results could not be written; their items go to other processes", self.job.id, len(self.unflushed))
                self.unflushed.clear()

    def flush_all(self) -> bool:
        self.flush()
        return not self.unflushed

    def flush(self) -> int:
        """Writes every result gathered so far in one script call (each with its acknowledgement), then
        lets go of those items (how many; -1 on a Redis failure: they stay gathered, and held, for the
        next flush)."""
        with self.flush_lock:
            with self.lock:
                batch, self.unflushed = self.unflushed, []
            try:
                self.metrics.write()  # first: a result in Redis means its call's figures are too
            except Exception as exc:  # figures are never worth a result
                logger.warning("writing the figures of job %s failed: %s", self.job.id, type(exc).__name__)
            if not batch:
                return 0
            try:
                self.store.finish_many(self.job.id, batch)
            except CONNECTION_ERRORS:
                self._keep(batch)
                return -1
            except Exception as exc:  # Redis answered, and refused: one result must not hold back the others
                logger.warning("writing %d results of job %s failed: %s; writing them one by one", len(batch), self.job.id, type(exc).__name__)
                batch = self._write_one_by_one(batch)
                if not batch:
                    return -1
            self._written([entry for entry, _, _ in batch])
            return len(batch)

    def _keep(self, batch: list[Gathered]) -> None:
        """Redis away: the results go back first in line, for the next flush."""
        self._lost_redis()
        with self.lock:
            self.unflushed[:0] = batch

    def _write_one_by_one(self, batch: list[Gathered]) -> list[Gathered]:
        """Writes each result alone; one Redis refuses is replaced by an error that says so (the item still
        ends, the job still completes). Returns those written; Redis going away keeps the rest for later."""
        written = []
        for number, (entry, index, result) in enumerate(batch):
            try:
                try:
                    self.store.finish(self.job.id, entry, index, result)
                except CONNECTION_ERRORS:
                    raise
                except Exception as exc:
                    logger.warning("job %s item %d: Redis refused its result: %s", self.job.id, index, type(exc).__name__)
                    self.store.finish(self.job.id, entry, index, not_stored_record(result, exc))
            except CONNECTION_ERRORS:
                self._keep(batch[number:])
                break
            except Exception as exc:  # not even the replacement: the lease runs out, another process ends it
                logger.warning("job %s item %d: no result could be stored: %s", self.job.id, index, type(exc).__name__)
                continue
            written.append((entry, index, result))
        return written
