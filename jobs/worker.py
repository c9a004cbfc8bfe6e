"""A runner: this process's workers on one job. Worker threads (greenlets under the Dify runtime; a few
more than `concurrency`) claim items from the job's stream, call the gateway through the counting
transport (`jobs.counting_transport`) and hand each result to the result writer (`jobs.results`).

Leases: an item claimed stays in the consumer group's pending list; its lease is renewed every third
of `lease_seconds` while this process works on it. A process that dies stops renewing, and after
`lease_seconds` any other worker takes the item with XAUTOCLAIM. Whether it may be sent again is
decided like the retry policy decides: every request is counted in Redis before it is sent, and
counted again when it came back with a retryable failure (429, 5xx, connection refused). A taken-over
item whose requests all failed retryably goes on with the retries it has left; one with a request
whose outcome is unknown (the gateway may have run and billed it) is not sent again and ends as an
error that says so (`error_code: interrupted`), with `attempts` the requests counted.

Concurrency: `concurrency` is the number of requests at the gateway at once. A runner has that many
request slots and a few more workers than slots; a slot is held from the moment a request leaves to
the end of its body, so claiming, the breaker read, metrics and result writes happen outside it and a
slot is taken again as soon as it is free. A request is counted (one script, also the cancel check)
before it waits for a slot, by at most `ahead` workers at a time (an eighth of `concurrency`, at
least 2): the slot then holds no Redis round trip, which is what let one process match a bare pool.
The same script counts the first requests of up to COUNT_AHEAD items next in line (fresh from a claim),
which then go without a count of their own (`jobs.counting_transport._count`).
The price: a process killed outright leaves those few counted requests as "may have been sent"
(`interrupted`, never resent), and a cancel reaches them through the status watcher (every
STATUS_EVERY) instead of the count script. A process letting go in order takes the counts back, and so
does a runner whose job was cancelled, for the items counted ahead that never went.

Round trips (what one process's throughput hangs on): items are claimed PREFETCH at a time; requests
are counted just before they wait for their slots, up to 1 + COUNT_AHEAD in one script call; the breaker and
429-pause read is reused while it is under GATE_MAX_AGE old; results are written by a flusher, off the
workers' path: a result wakes it, it writes the calls' figures and breaker successes, then everything
gathered in one script call (each result with its acknowledgement), and waits FLUSH_EVERY so the next
write carries several. So a result waits at most about FLUSH_EVERY and two round trips. An item stays
held (its lease renewed) until its result is written, so a result not yet written when a process
is killed is treated like a request in flight: its send count says so, and the item ends
`interrupted`, never resent and never with two results.

Redis going away (stopped, restarted, unreachable for a while): a live process keeps every item it
holds. A request whose count Redis did not confirm is not sent; the item is put back, first in line,
with the requests it already made; results wait in memory; workers pause. The lease renewer asks every
RECOVER_EVERY whether Redis is back; when it is, it re-asserts every lease this process holds (XCLAIM to
itself: idle time reset, so no other process takes them over), takes up entries the consumer group
counts as this process's that a lost answer never brought here, and lets the workers and the flusher go
on. An outage costs its own length, not a lease; only a process that dies leaves `interrupted` items.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from typing import Any, Protocol

from gateway import CallOptions, ChatRequest, Deadline, GatewayClient, GatewayConfig, GatewayError
from gateway.call.rate_limits import LimitSettings
from gateway.call.retry import RetryPolicy
from gateway.errors import Redactor
from gateway.spend.budget import BudgetExceeded
from gateway.state.backends import Backends
from gateway.state.redis_connection import CONNECTION_ERRORS
from gateway.wire.http_transport import HTTPTransport
from jobs.counting_transport import CountingTransport, ItemContext, current
from jobs.inputs import JobItem
from jobs.results import (
    ResultWriter,
    answered_record,
    interrupted_record,
    redis_lost_record,
    result_record,
    retries_exhausted_record,
)
from jobs.spend_cap import JobBudget, JobBudgetSettings, JobBudgetStore
from jobs.store import RUNNING, Job, JobStore

logger = logging.getLogger("holysheep.jobs")

IDLE_SLEEP = 0.2
RECLAIM_EVERY = 1.0
STATUS_EVERY = 0.1
PREFETCH = 8
MAX_EXTRA_WORKERS = 16  # workers beyond `concurrency` (a quarter of it, at least 2) do the Redis work around the requests
# A job's requests reuse a closed breaker and 429-pause read this recent instead of reading it each: about
# one Redis round trip a request less. Another process's open breaker or 429 is seen up to this much
# later (this process's own at once); the breaker's thresholds and the pause do the rest.
GATE_MAX_AGE = 0.02
RECOVER_EVERY = 0.25  # while Redis is away, how often a runner asks whether it is back


class Scheduler(Protocol):
    """What a runner needs of the engine that started it (`jobs.queue.JobEngine`)."""

    consumer: str
    stopping: bool
    processed: int

    def runner_done(self, runner: JobRunner) -> None: ...


class JobGateway:
    """One gateway and key as this process knows it: the config and clients per retry budget."""

    def __init__(self, config: GatewayConfig, backends: Backends) -> None:
        self.config = config
        self.backends = backends  # the process's stores (`jobs.queue.JobEngine.gateway`)
        self.transport = CountingTransport(HTTPTransport(config, Redactor([config.api_key])))
        # The calls' figures (and the breaker's successes) go out with the results writes (`jobs.results.ResultWriter.flush`).
        self.metrics = backends.write_behind_metrics_for(config.redis_url)
        self._clients: dict[tuple[int, float], GatewayClient] = {}
        self._lock = threading.Lock()

    def client(self, max_retries: int, timeout: float) -> GatewayClient:
        with self._lock:
            key = (max_retries, timeout)
            client = self._clients.get(key)
            if client is None:
                config = dataclasses.replace(self.config, max_retries=max_retries, timeout_seconds=timeout)
                client = GatewayClient(
                    config,
                    state=self.backends.state_for(config.redis_url, gate_max_age=GATE_MAX_AGE),
                    retry=RetryPolicy(max_retries=max_retries),
                    transport=self.transport,
                    metrics=self.metrics,
                    backends=self.backends,
                )
                self._clients[key] = client
            return client


def build_request(job: Job, item: JobItem, client: GatewayClient) -> ChatRequest:
    """The item's request from the job's spec as it was stored (its model resolved in `specs.model`)."""
    return job.spec.request_for(item, default_model=client.config.default_model, prices=client.prices)


class JobRunner:
    """This process's workers on one job."""

    def __init__(self, engine: Scheduler, store: JobStore, job: Job, gateway: JobGateway, *, until: float | None = None) -> None:
        self.engine, self.store, self.job, self.gateway = engine, store, job, gateway
        self.consumer = f"{engine.consumer}-{job.id[:8]}"
        self.until = until
        self.held: set[str] = set()  # entries claimed and not yet finished (their leases are ours)
        self.workers: list[threading.Thread] = []
        self.ready: deque[tuple[str, int, JobItem]] = deque()
        self._reclaimed: set[str] = set()  # taken over from another consumer: the sent counters decide
        self._resume: dict[str, int] = {}  # put back while Redis was away: requests this process already sent
        self._counted: set[int] = set()  # items in line whose first request was counted with another's (`count_ahead`)
        self.redis_away = False  # a Redis call failed to connect: workers wait, the renewer asks until it is back
        self._renewed = 0.0
        self.lock = threading.Lock()
        self.cursor = "0-0"
        self.last_reclaim = 0.0
        self.running = True  # False once the job is no longer running (finished, cancelled) or we let go
        self.letting_go = False
        self.exhausted = False
        self.threads: list[threading.Thread] = []
        self.finished = threading.Event()
        self.settings = job.settings
        self.concurrency = max(1, int(job.spec.concurrency or 10))
        self.slots = threading.BoundedSemaphore(self.concurrency)
        self.ahead = threading.BoundedSemaphore(max(2, self.concurrency // 8))  # counted, waiting for a slot
        self.limits = LimitSettings(rpm=int(job.spec.rpm_limit or 0), tpm=int(job.spec.tpm_limit or 0))
        self.timeout = float(self.settings.get("timeout_seconds") or gateway.config.timeout_seconds)
        self.max_retries = int(self.settings.get("max_retries", gateway.config.max_retries))
        budget = JobBudgetSettings.from_settings(self.settings.get("budget"))
        self.budget: dict[str, Any] = {}
        if budget is not None:
            namespace = gateway.client(self.max_retries, self.timeout).namespace
            spent = JobBudgetStore(gateway.backends.budget_store_for(gateway.config.redis_url, gateway.config.keys), budget, namespace, job.id)
            self.budget = {"budget": budget.policy, "batch_budget": JobBudget(spent)}
        self.results = ResultWriter(store, job, gateway.metrics, written=self._written, lost_redis=self.lost_redis)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.gateway.transport.ensure_pool(self.concurrency + 16)
        # More workers than slots: while `concurrency` requests are out, the others claim, read the
        # breaker, write metrics and results, so a slot is taken again as soon as it is free.
        workers = self.concurrency + min(MAX_EXTRA_WORKERS, max(2, self.concurrency // 4))
        name = f"job-{self.job.id[:8]}"
        self.workers = [threading.Thread(target=self._worker, daemon=True, name=f"{name}-{n}") for n in range(workers)]
        self.threads = [
            *self.workers,
            threading.Thread(target=self._renewer, daemon=True, name=f"{name}-lease"),
            threading.Thread(target=self._watcher, daemon=True, name=f"{name}-status"),
            threading.Thread(target=self.results.run, args=(self._working,), daemon=True, name=f"{name}-results"),
        ]
        for thread in self.threads:
            thread.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for thread in self.threads:
            thread.join()
        self.results.flush()
        self._uncount_left()  # cancelled, or let go: items counted ahead that never went
        self.finished.set()
        self.engine.runner_done(self)

    def _working(self) -> bool:
        return any(t.is_alive() for t in self.workers)

    def stop_claiming(self) -> None:
        self.letting_go = True
        self.running = False

    def release_held(self) -> int:
        """Writes the results gathered, then gives back every other item held at once."""
        self.results.flush()
        with self.lock:
            held = list(self.held)
            self.held.clear()
            self.ready.clear()
        self._uncount_left()
        try:
            self.store.release(self.job.id, held)
        except Exception as exc:  # Redis gone: the leases expire on their own
            logger.warning("releasing %d items of job %s failed: %s", len(held), self.job.id, type(exc).__name__)
        return len(held)

    # ------------------------------------------------------------------ claiming

    def stopping(self) -> bool:
        """This process lets go of the job (SIGTERM, the daemon closing the pipe, the end of a serverless
        call's share): items not yet sent go back to the job."""
        return self.letting_go or self.engine.stopping or (self.until is not None and time.monotonic() >= self.until)

    def _keep_going(self) -> bool:
        return self.running and not self.stopping()

    def _watcher(self) -> None:
        """Reads the job's status every STATUS_EVERY: a cancel stops the workers, and the requests
        counted but still waiting for a slot, within that time."""
        while self._working():
            try:
                if not self.redis_away and self.store.status(self.job.id) != RUNNING:
                    self.running = False
            except CONNECTION_ERRORS:
                self.lost_redis()
            except Exception as exc:
                logger.warning("reading the status of job %s failed: %s", self.job.id, type(exc).__name__)
            time.sleep(STATUS_EVERY)

    # ------------------------------------------------------------------ requests counted ahead

    def count_ahead(self, limit: int) -> list[tuple[str, int, JobItem]]:
        """Up to `limit` items next in line, fresh from a claim (not taken over, not put back: their send
        counters decide first), taken out of line while their first requests are counted with this
        worker's; `counted_ahead` puts them back."""
        with self.lock:
            if not self.ready or limit <= 0:
                return []
            taken = [q for q in self.ready if q[1] not in self._counted and q[0] not in self._reclaimed and q[0] not in self._resume][:limit]
            for queued in taken:
                self.ready.remove(queued)
            return taken

    def counted_ahead(self, taken: list[tuple[str, int, JobItem]], counted: bool) -> None:
        """Puts the items of `count_ahead` back first in line; `counted`: their first requests are counted
        (each takes its count with `take_counted` instead of a round trip of its own)."""
        if not taken:
            return
        with self.lock:
            if counted:
                self._counted.update(index for _, index, _ in taken)
            if taken[0][0] in self.held:  # not given back meanwhile (release_held lets go of every item at once)
                self.ready.extendleft(reversed(taken))
                return
        if counted:
            self._uncount([index for _, index, _ in taken])

    def take_counted(self, index: int) -> bool:
        with self.lock:
            if index in self._counted:
                self._counted.discard(index)
                return True
            return False

    def _uncount(self, indexes: list[int]) -> None:
        """Takes back counts of requests that will not go from here. Redis failing: left counted, the safe side."""
        with self.lock:
            self._counted.difference_update(indexes)
        try:
            self.store.unrecord_send(self.job.id, *indexes)
        except Exception as exc:
            logger.warning("job %s: taking back %d request counts failed: %s", self.job.id, len(indexes), type(exc).__name__)

    def _uncount_left(self) -> None:
        with self.lock:
            left = list(self._counted)
        if left:
            self._uncount(left)

    def _claim(self) -> tuple[str, int, JobItem] | None:
        with self.lock:
            if self.ready:
                return self.ready.popleft()
            now = time.monotonic()
            reclaim = now - self.last_reclaim >= RECLAIM_EVERY
            if reclaim:
                self.last_reclaim = now
        if reclaim:
            self.cursor, taken = self.store.reclaim(self.job.id, self.consumer, self.job.lease_ms, self.cursor, 32)
            with self.lock:
                taken = [t for t in taken if t[0] not in self.held]  # already ours (kept through an outage)
            if taken:
                with self.lock:
                    self.held.update(e for e, _, _ in taken)
                    self.ready.extend((e, i, item) for e, i, item in taken)
                    self._reclaimed.update(e for e, _, _ in taken)
                    return self.ready.popleft()
        if self.exhausted:
            return None
        # A few at a time, so most items start without a round trip to Redis (their leases are renewed).
        claimed = self.store.claim_new(self.job.id, self.consumer, PREFETCH)
        if not claimed:
            self.exhausted = True
            return None
        with self.lock:
            claimed = [c for c in claimed if c[0] not in self.held]  # taken up by _recover meanwhile
            if not claimed:
                return None
            self.held.update(e for e, _, _ in claimed)
            self.ready.extend(claimed[1:])
        return claimed[0]

    def _worker(self) -> None:
        while self._keep_going():
            if self.redis_away:  # nothing can be claimed, counted or written: wait for the renewer's word
                time.sleep(RECOVER_EVERY / 2)
                continue
            try:
                entry = self._claim()
            except CONNECTION_ERRORS:
                self.lost_redis()
                continue
            except Exception as exc:
                logger.warning("claiming from job %s failed: %s", self.job.id, type(exc).__name__)
                time.sleep(1.0)
                continue
            if entry is None:
                try:
                    if self.store.status(self.job.id) != RUNNING:
                        return
                except CONNECTION_ERRORS:
                    self.lost_redis()
                    continue
                time.sleep(IDLE_SLEEP)  # new items never come back; released or expired ones do, via XAUTOCLAIM
                continue
            try:
                self._process(*entry)
            except CONNECTION_ERRORS:
                # Redis went away around this item, with nothing sent by this call (what can fail after a
                # send is handled in _process): it stays this process's, taken up again once Redis is back,
                # when the send counters decide (a result may already be stored).
                self._put_back(*entry, reclaimed=True)
            except Exception as exc:  # not Redis being away: the lease expires and another worker takes it
                logger.warning("job %s item %d: %s", self.job.id, entry[1], type(exc).__name__)
                with self.lock:
                    self.held.discard(entry[0])

    def _put_back(self, entry: str, index: int, item: JobItem, sent: int | None = None, *, reclaimed: bool = False) -> None:
        """Keeps an item this process could not go on with while Redis is away: still held (its lease is
        re-asserted when Redis is back), first in line, with the requests it already sent."""
        with self.lock:
            self.held.add(entry)
            if sent is not None:
                self._resume[entry] = sent
            if reclaimed:
                self._reclaimed.add(entry)
            self.ready.appendleft((entry, index, item))
        self.lost_redis()

    def lost_redis(self) -> None:
        if not self.redis_away:
            self.redis_away = True
            logger.warning("job %s: Redis is not answering; this process keeps its %d items and goes on when it is back", self.job.id, len(self.held))

    def _recover(self) -> None:
        """Once Redis answers again: re-asserts every lease this process holds (their idle time reset, so
        no other process takes them over), takes up entries the consumer group counts as ours that a
        lost answer never brought here, and lets the workers and the flusher go on."""
        with self.lock:
            held = list(self.held)
        try:
            self.store.renew(self.job.id, self.consumer, held)
            known = set(held)
            unknown = [e for e in self.store.own_pending(self.job.id, self.consumer) if e not in known]
            taken = self.store.claim_entries(self.job.id, self.consumer, unknown)
        except CONNECTION_ERRORS:
            return  # still away
        except Exception as exc:  # answering, but not as expected (the job's keys gone with a Redis that kept nothing)
            logger.warning("job %s: taking up its items after Redis came back failed: %s", self.job.id, type(exc).__name__)
            taken = []
        with self.lock:
            for entry, index, item in taken:
                if entry not in self.held:
                    self.held.add(entry)
                    self._reclaimed.add(entry)  # a claim whose answer was lost: the sent counters decide
                    self.ready.append((entry, index, item))
        self._renewed = time.monotonic()
        self.redis_away = False
        logger.warning("job %s: Redis answers again; %d leases re-asserted, %d items taken up", self.job.id, len(held), len(taken))
        self.results.wake.set()  # the results that waited go out now

    def _renewer(self) -> None:
        period = max(0.5, self.job.lease_ms / 3000)
        while self._working() or self.results.unflushed:
            time.sleep(RECOVER_EVERY if self.redis_away else min(period, 0.5))
            if self.redis_away:
                self._recover()
                continue
            if time.monotonic() - self._renewed < period:
                continue
            self._renewed = time.monotonic()
            with self.lock:
                held = list(self.held)
            try:
                self.store.renew(self.job.id, self.consumer, held)
            except CONNECTION_ERRORS:
                self.lost_redis()
            except Exception as exc:
                logger.warning("renewing leases of job %s failed: %s", self.job.id, type(exc).__name__)

    # ------------------------------------------------------------------ one item

    def _process(self, entry: str, index: int, item: JobItem) -> None:
        start = self._start_point(entry, index, item)
        if start is None:
            return
        outcome = self._send(entry, index, item, *start)
        if outcome is not None:
            self.results.add(entry, index, outcome)

    def _start_point(self, entry: str, index: int, item: JobItem) -> tuple[int, int] | None:
        """The requests already made for the item and the retries it has left; None when it needs no
        request (its result stored, or decided from its send counters, or put back while Redis is away)."""
        with self.lock:
            reclaimed = entry in self._reclaimed
            self._reclaimed.discard(entry)
            resumed = self._resume.pop(entry, None)
        if not reclaimed:
            # Put back while Redis was away: goes on with the retries it has left.
            return (0, self.max_retries) if resumed is None else (resumed, self.max_retries - resumed)
        try:
            sent, answered, stored = self.store.sends(self.job.id, index)
        except CONNECTION_ERRORS:
            self._put_back(entry, index, item, resumed, reclaimed=True)
            return None
        if stored:
            self.store.ack(self.job.id, [entry])
            self._done(entry)
            return None
        if sent > answered:
            self.results.add(entry, index, interrupted_record(item, sent))
            return None
        if self.max_retries - sent < 0:
            self.results.add(entry, index, retries_exhausted_record(item, sent))
            return None
        return sent, self.max_retries - sent

    def _send(self, entry: str, index: int, item: JobItem, offset: int, retries: int) -> dict[str, Any] | None:
        """The item's call; its result record, or None when it has none yet (put back, cancelled, released)."""
        client = self.gateway.client(retries, self.timeout)
        ctx = ItemContext(self, index, offset)
        current.item = ctx
        model = item.model or ""
        try:
            request = build_request(self.job, item, client)
            model = request.model
            result = client.chat(request, CallOptions(limits=self.limits, deadline=Deadline(self.timeout), **self.budget))
        except GatewayError as exc:
            return self._refused(entry, index, item, ctx, exc, model)
        except ValueError as exc:  # a request the client refuses to build
            return result_record(item, "error", error=str(exc), error_code="bad_request", attempts=ctx.sent)
        except CONNECTION_ERRORS:
            if ctx.resendable:  # nothing this call sent can have been processed: taken up again later
                self._put_back(entry, index, item, ctx.sent)
                return None
            self.lost_redis()
            return redis_lost_record(item, ctx.sent, model)
        finally:
            current.item = None
            ctx.free_slot()  # a response nobody closed (an error between send and read)
            if index in self._counted and self.take_counted(index):  # refused before it reached the transport
                self._uncount([index])
        return answered_record(item, result, ctx.sent, ctx.queued)

    def _refused(self, entry: str, index: int, item: JobItem, ctx: ItemContext, exc: GatewayError, model: str) -> dict[str, Any] | None:
        """The record of a call that ended in a gateway error, or None for one that has no result yet."""
        if ctx.redis_away:  # not sent: taken up again, with the requests already made, once Redis is back
            self._put_back(entry, index, item, ctx.sent)
            return None
        if ctx.cancelled:
            self.store.ack(self.job.id, [entry])
            self._done(entry)
            return None
        if ctx.released:  # stays held: release_held gives it back with the others
            return None
        not_run = exc.not_sent and ctx.sent == ctx.offset
        outcome = result_record(
            item,
            "not_run" if not_run else "error",
            error=str(exc),
            error_code=exc.code,
            latency_ms=round((time.monotonic() - ctx.started - ctx.queued) * 1000, 1),
            attempts=ctx.sent,
            model=model,
        )
        if isinstance(exc, BudgetExceeded):
            outcome["budget"] = exc.budget
        return outcome

    def _written(self, entries: list[str]) -> None:
        """The result writer stored these items' results: this process lets go of them."""
        with self.lock:
            for entry in entries:
                self.held.discard(entry)
        self.engine.processed += len(entries)

    def _done(self, entry: str) -> None:
        with self.lock:
            self.held.discard(entry)
        self.engine.processed += 1
