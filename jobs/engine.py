"""The workers: every plugin process that knows a job's gateway (base URL and key) works on it.

A process learns a gateway from the credentials of a job tool call (`JobEngine.register`); the key
stays in the process, Redis only ever sees a digest of it. Workers run per (Redis URL, gateway URL,
workspace scope): each workspace's jobs live under its own keys (`gateway.state.keys`), and a process works
on a workspace's jobs only with that workspace's credentials. A scheduler thread looks at the open jobs
every half second and starts a runner for each job whose gateway it knows: worker threads
(greenlets under the Dify runtime; a few more than `concurrency`) that claim items from the job's
stream, call the gateway and store each result atomically with the acknowledgement (`jobs.store`).

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
The price: a process killed outright leaves those few counted requests as "may have been sent"
(`interrupted`, never resent), and a cancel reaches them through the status watcher (every
STATUS_EVERY) instead of the count script. A process letting go in order takes the counts back.

Round trips (what one process's throughput hangs on): items are claimed PREFETCH at a time; each
request is counted just before it waits for its slot (its one round trip of its own); the breaker and
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
A result Redis refuses (rather than cannot be reached) is written alone, or replaced by an error that
says so: it never holds back the others.

Shutdown (`JobEngine.shutdown`): stop claiming, let items in flight finish within a grace period,
flush their results, then release the rest at once (their lease is set as expired), so nothing
waits for a lease.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway import CallOptions, ChatRequest, Deadline, GatewayClient, GatewayConfig, GatewayError
from gateway.call.rate_limits import LimitSettings
from gateway.call.retry import RETRYABLE_STATUSES, RetryPolicy
from gateway.call.routing import AUTO, ModelRouter
from gateway.errors import BadRequestError, GatewayTimeoutError, Redactor
from gateway.spend.budget import BudgetExceeded
from gateway.state.backends import budget_store_for, state_for, write_behind_metrics_for
from gateway.state.keys import Keys
from gateway.state.redis_connection import CONNECTION_ERRORS, redis_client
from gateway.wire.http_transport import HTTPTransport
from gateway.wire.transport import Attempt, AttemptFailed, Response
from jobs.budget import JobBudget, JobBudgetSettings, JobBudgetStore
from jobs.inputs import JobItem
from jobs.store import RUNNING, Job, JobStore

logger = logging.getLogger("holysheep.jobs")

SCHEDULE_EVERY = 0.5
IDLE_SLEEP = 0.2
RECLAIM_EVERY = 1.0
STATUS_EVERY = 0.1
DEFAULT_GRACE = 5.0
PREFETCH = 8
MAX_EXTRA_WORKERS = 16  # workers beyond `concurrency` (a quarter of it, at least 2) do the Redis work around the requests
FLUSH_IDLE = 0.5  # the flusher's longest sleep without a result to write
# The shortest time between two results writes. Each is preceded by one write of the calls' figures and
# the breaker's successes, so those cost two round trips per FLUSH_EVERY instead of two a request; the
# price is that a process killed mid-job leaves up to this much more answered-but-unwritten work (those
# items end `interrupted`, never sent twice).
FLUSH_EVERY = 0.02
# A job's requests reuse a closed breaker and 429-pause read this recent instead of reading it each: about
# one Redis round trip a request less. Another process's open breaker or 429 is seen up to this much
# later (this process's own at once); the breaker's thresholds and the pause do the rest.
GATE_MAX_AGE = 0.02
MAX_UNFLUSHED = 2000  # workers wait while this many results are not yet written (Redis slow or down)
RECOVER_EVERY = 0.25  # while Redis is away, how often a runner asks whether it is back

_context = threading.local()  # greenlet-local under gevent


class _ItemContext:
    __slots__ = ("cancelled", "index", "job_id", "queued", "redis_away", "released", "resendable", "runner", "sent", "slot", "store")

    def __init__(self, runner: JobRunner, index: int) -> None:
        self.runner, self.store, self.job_id, self.index = runner, runner.store, runner.job.id, index
        self.sent = 0
        self.cancelled = False
        self.released = False  # the process stopped before this item's request could go: give it back
        self.redis_away = False  # Redis did not answer the count before a request: it did not go, the item waits
        self.resendable = True  # False while a request is out, or once one came back other than as a retryable failure
        self.slot = False  # holds one of the runner's request slots
        self.queued = 0.0  # seconds spent waiting for a slot: this process's queue, not the gateway's latency

    def take_slot(self, timeout: float) -> float:
        """Waits for one of the runner's `concurrency` request slots; the time left for the call."""
        started = time.monotonic()
        self.runner.slots.acquire()
        self.slot = True
        waited = time.monotonic() - started
        self.queued += waited
        return timeout - waited

    def unsend(self) -> None:
        """Takes back the count of a request that did not go (a process taking the item over must not
        think it may have been billed). Left counted when Redis fails: the safe side."""
        try:
            self.store.unrecord_send(self.job_id, self.index)
        except Exception:
            return
        self.sent -= 1

    def free_slot(self) -> None:
        if self.slot:
            self.slot = False
            self.runner.slots.release()


class _SlotResponse:
    """A response that gives its request slot back when it is closed (body read or abandoned)."""

    __slots__ = ("_ctx", "_inner", "headers", "reason", "status")

    def __init__(self, inner: Response, ctx: _ItemContext) -> None:
        self._inner, self._ctx = inner, ctx
        self.status, self.reason, self.headers = inner.status, inner.reason, inner.headers

    def read_chunk(self, deadline: Deadline, size: int) -> bytes:
        return self._inner.read_chunk(deadline, size)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._ctx.free_slot()


class CountingTransport:
    """The HTTP transport with each chat request counted in Redis before it leaves, and each retryable
    failure counted when it comes back: what lets another process decide whether an item it takes over
    may be sent again. Nothing is counted for a job that no longer runs, and a counted request that
    finds the job stopped (or this process letting go) when its slot comes is taken back, unsent."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def send(self, method: str, path: str, body: bytes | None, *, timeout: float) -> Response:
        ctx: _ItemContext | None = getattr(_context, "item", None)
        if ctx is None or not path.startswith("/chat/"):
            return self.inner.send(method, path, body, timeout=timeout)
        runner = ctx.runner
        if runner.stopping():
            ctx.released = True
            raise _not_sent(BadRequestError(RELEASED))
        # Counted before it waits for a slot, by a few workers at a time (`runner.ahead`): a slot then
        # holds the request alone, with no Redis round trip in it.
        with runner.ahead:
            try:
                counted = ctx.store.record_send(ctx.job_id, ctx.index)
            except CONNECTION_ERRORS:
                # Nothing goes uncounted: the item stays with this process and goes once Redis is back.
                ctx.redis_away = True
                runner.lost_redis()
                raise _not_sent(BadRequestError(REDIS_AWAY)) from None
            if counted < 0:
                ctx.cancelled = True
                raise _not_sent(BadRequestError(CANCELLED))
            ctx.sent += 1
            timeout = ctx.take_slot(timeout)
        unsent: GatewayError | None = None
        if runner.stopping():
            ctx.released = True
            unsent = BadRequestError(RELEASED)
        elif not runner.running:  # cancelled while it waited (the watcher reads the status every 0.1 s)
            ctx.cancelled = True
            unsent = BadRequestError(CANCELLED)
        elif timeout <= 0:
            unsent = GatewayTimeoutError("the call's deadline passed while it waited for a free request slot (concurrency)")
        if unsent is not None:
            ctx.free_slot()
            ctx.unsend()
            raise _not_sent(unsent)
        try:
            ctx.resendable = False
            try:
                response = self.inner.send(method, path, body, timeout=timeout)
            except AttemptFailed as failed:
                if failed.attempt.retryable:
                    _retryable_answer(ctx)
                raise
            if response.status in RETRYABLE_STATUSES:
                _retryable_answer(ctx)
        except BaseException:
            ctx.free_slot()
            raise
        return _SlotResponse(response, ctx)

    def ensure_pool(self, size: int) -> None:
        self.inner.ensure_pool(size)

    def close(self) -> None:
        self.inner.close()


RELEASED = "not sent: this process is stopping; the item goes back to the job"
CANCELLED = "not sent: the job was cancelled"
REDIS_AWAY = "not sent yet: Redis (redis_url) is not answering; the item is sent once it is back"


def _retryable_answer(ctx: _ItemContext) -> None:
    """Counts a retryable failure in Redis. Redis away: left uncounted, the safe side (were this process
    to die, another would see a request with an unknown outcome and not send the item again)."""
    ctx.resendable = True
    try:
        ctx.store.record_retryable_answer(ctx.job_id, ctx.index)
    except CONNECTION_ERRORS:
        ctx.runner.lost_redis()


def _not_sent(error: GatewayError) -> AttemptFailed:
    """How a request that never left fails its attempt: not retried, and the item not counted as sent."""
    error.not_sent = True
    return AttemptFailed(Attempt(error, False))


class _Gateway:
    """One gateway and key as this process knows it: the config and clients per retry budget."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.transport = CountingTransport(HTTPTransport(config, Redactor([config.api_key])))
        # The calls' figures (and the breaker's successes) go out with the results writes (`JobRunner.flush`).
        self.metrics = write_behind_metrics_for(config.redis_url)
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
                    state=state_for(config.redis_url, gate_max_age=GATE_MAX_AGE),
                    retry=RetryPolicy(max_retries=max_retries),
                    transport=self.transport,
                    metrics=self.metrics,
                )
                self._clients[key] = client
            return client


def build_request(job: Job, item: JobItem, client: GatewayClient) -> ChatRequest:
    s = job.settings
    system_prompt = item.system_prompt if item.system_prompt is not None else s.get("system_prompt") or ""
    model = item.model or s["model"]
    if model == "default":
        model = client.config.default_model
    elif model == AUTO:
        model = (
            ModelRouter.bundled()
            .choose(item.prompt, system_prompt=system_prompt, json_output=bool(s.get("response_format")), prices=client.prices)
            .model
        )
    return ChatRequest.from_prompt(
        item.prompt,
        system_prompt=system_prompt,
        model=model,
        temperature=s.get("temperature"),
        top_p=s.get("top_p"),
        max_tokens=item.max_tokens or s.get("max_tokens"),
        seed=s.get("seed"),
        stop=s.get("stop"),
        response_format=s.get("response_format"),
    )


class JobRunner:
    """This process's workers on one job."""

    def __init__(self, engine: JobEngine, store: JobStore, job: Job, gateway: _Gateway, *, until: float | None = None) -> None:
        self.engine, self.store, self.job, self.gateway = engine, store, job, gateway
        self.consumer = f"{engine.consumer}-{job.id[:8]}"
        self.until = until
        self.held: set[str] = set()  # entries claimed and not yet finished (their leases are ours)
        self.unflushed: list[tuple[str, int, dict[str, Any]]] = []  # results decided, not yet in Redis
        self.flush_lock = threading.Lock()
        self.wake = threading.Event()  # a result waits to be written
        self.workers: list[threading.Thread] = []
        self.ready: deque[tuple[str, int, JobItem]] = deque()
        self._reclaimed: set[str] = set()  # taken over from another consumer: the sent counters decide
        self._resume: dict[str, int] = {}  # put back while Redis was away: requests this process already sent
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
        self.concurrency = max(1, int(self.settings.get("concurrency") or 10))
        self.slots = threading.BoundedSemaphore(self.concurrency)
        self.ahead = threading.BoundedSemaphore(max(2, self.concurrency // 8))  # counted, waiting for a slot
        self.limits = LimitSettings(rpm=int(self.settings.get("rpm_limit") or 0), tpm=int(self.settings.get("tpm_limit") or 0))
        self.timeout = float(self.settings.get("timeout_seconds") or gateway.config.timeout_seconds)
        self.max_retries = int(self.settings.get("max_retries", gateway.config.max_retries))
        budget = JobBudgetSettings.from_settings(self.settings.get("budget"))
        self.budget: dict[str, Any] = {}
        if budget is not None:
            namespace = gateway.client(self.max_retries, self.timeout).namespace
            store = JobBudgetStore(budget_store_for(gateway.config.redis_url, gateway.config.keys), budget, namespace, job.id)
            self.budget = {"budget": budget.policy, "batch_budget": JobBudget(store)}

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
            threading.Thread(target=self._flusher, daemon=True, name=f"{name}-results"),
        ]
        for thread in self.threads:
            thread.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for thread in self.threads:
            thread.join()
        self.flush()
        self.finished.set()
        self.engine._runner_done(self)

    def _working(self) -> bool:
        return any(t.is_alive() for t in self.workers)

    def stop_claiming(self) -> None:
        self.letting_go = True
        self.running = False

    def release_held(self) -> int:
        """Writes the results gathered, then gives back every other item held at once."""
        self.flush()
        with self.lock:
            held = list(self.held)
            self.held.clear()
            self.ready.clear()
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
        self.wake.set()  # the results that waited go out now

    def _renewer(self) -> None:
        period = max(0.5, self.job.lease_ms / 3000)
        while self._working() or self.unflushed:
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

    # ------------------------------------------------------------------ results

    def _flusher(self) -> None:
        while self._working():
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
                self.gateway.metrics.write()  # first: a result in Redis means its call's figures are too
            except Exception as exc:  # figures are never worth a result
                logger.warning("writing the figures of job %s failed: %s", self.job.id, type(exc).__name__)
            if not batch:
                return 0
            try:
                self.store.finish_many(self.job.id, batch)
            except CONNECTION_ERRORS:
                self.lost_redis()
                with self.lock:
                    self.unflushed[:0] = batch
                return -1
            except Exception as exc:  # Redis answered, and refused: one result must not hold back the others
                logger.warning("writing %d results of job %s failed: %s; writing them one by one", len(batch), self.job.id, type(exc).__name__)
                batch = self._write_one_by_one(batch)
                if not batch:
                    return -1
            with self.lock:
                for entry, _, _ in batch:
                    self.held.discard(entry)
            self.engine.processed += len(batch)
            return len(batch)

    def _write_one_by_one(self, batch: list[tuple[str, int, dict[str, Any]]]) -> list[tuple[str, int, dict[str, Any]]]:
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
                    replaced = _result_not_stored(result, exc)
                    self.store.finish(self.job.id, entry, index, replaced)
            except CONNECTION_ERRORS:
                self.lost_redis()
                with self.lock:
                    self.unflushed[:0] = batch[number:]
                break
            except Exception as exc:  # not even the replacement: the lease runs out, another process ends it
                logger.warning("job %s item %d: no result could be stored: %s", self.job.id, index, type(exc).__name__)
                continue
            written.append((entry, index, result))
        return written

    # ------------------------------------------------------------------ one item

    def _process(self, entry: str, index: int, item: JobItem) -> None:
        with self.lock:
            reclaimed = entry in self._reclaimed
            self._reclaimed.discard(entry)
            resumed = self._resume.pop(entry, None)
        offset = 0
        retries = self.max_retries
        if resumed is not None:  # put back while Redis was away: goes on with the retries it has left
            offset, retries = resumed, self.max_retries - resumed
        if reclaimed:
            try:
                sent, answered, stored = self.store.sends(self.job.id, index)
            except CONNECTION_ERRORS:
                self._put_back(entry, index, item, resumed, reclaimed=True)
                return
            if stored:
                self.store.ack(self.job.id, [entry])
                self._done(entry)
                return
            if sent > answered:
                self._finish(entry, index, _interrupted(item, sent))
                return
            offset = sent
            retries = self.max_retries - sent
            if retries < 0:
                self._finish(
                    entry,
                    index,
                    _result(
                        item,
                        "error",
                        error="retries exhausted (the process sending it stopped meanwhile)",
                        error_code="retries_exhausted",
                        attempts=sent,
                    ),
                )
                return
        client = self.gateway.client(retries, self.timeout)
        ctx = _ItemContext(self, index)
        ctx.sent = offset
        _context.item = ctx
        started = time.monotonic()
        model = item.model or ""
        try:
            request = build_request(self.job, item, client)
            model = request.model
            result = client.chat(request, CallOptions(limits=self.limits, deadline=Deadline(self.timeout), **self.budget))
        except GatewayError as exc:
            if ctx.redis_away:  # not sent: taken up again, with the requests already made, once Redis is back
                self._put_back(entry, index, item, ctx.sent)
                return
            if ctx.cancelled:
                self.store.ack(self.job.id, [entry])
                self._done(entry)
                return
            if ctx.released:  # stays held: release_held gives it back with the others
                return
            not_run = exc.not_sent and ctx.sent == offset
            outcome = _result(
                item,
                "not_run" if not_run else "error",
                error=str(exc),
                error_code=exc.code,
                latency_ms=round((time.monotonic() - started - ctx.queued) * 1000, 1),
                attempts=ctx.sent,
                model=model,
            )
            if isinstance(exc, BudgetExceeded):
                outcome["budget"] = exc.budget
        except ValueError as exc:  # a request the client refuses to build
            outcome = _result(item, "error", error=str(exc), error_code="bad_request", attempts=ctx.sent)
        except CONNECTION_ERRORS:
            if ctx.resendable:  # nothing this call sent can have been processed: taken up again later
                self._put_back(entry, index, item, ctx.sent)
                return
            self.lost_redis()
            outcome = _result(
                item,
                "error",
                error="Redis (redis_url) stopped answering while this item's reply was handled; not sent again because the gateway "
                "may already have processed (and billed) it. Resubmit it from failed_items if needed",
                error_code="interrupted",
                attempts=ctx.sent,
                model=model,
            )
        else:
            outcome = {
                "id": item.id,
                "status": "ok",
                "text": result.text,
                "error": "",
                "error_code": "",
                "usage": result.usage.to_dict(),
                "cost_usd": result.cost_usd,
                "latency_ms": round(max(0.0, result.latency_ms - ctx.queued * 1000), 1),
                "attempts": ctx.sent,
                "model": result.model,
                "warnings": list(result.warnings),
            }
        finally:
            _context.item = None
            ctx.free_slot()  # a response nobody closed (an error between send and read)
        self._finish(entry, index, outcome)

    def _finish(self, entry: str, index: int, outcome: dict[str, Any]) -> None:
        """Gathers the result for the flusher (the item stays held, its lease renewed, until written)."""
        while len(self.unflushed) >= MAX_UNFLUSHED:
            time.sleep(0.05)
        with self.lock:
            self.unflushed.append((entry, index, outcome))
        self.wake.set()

    def _done(self, entry: str) -> None:
        with self.lock:
            self.held.discard(entry)
        self.engine.processed += 1


def _result(item: JobItem, status: str, **fields: Any) -> dict[str, Any]:
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


def _result_not_stored(result: dict[str, Any], exc: Exception) -> dict[str, Any]:
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


def _interrupted(item: JobItem, sent: int) -> dict[str, Any]:
    return _result(
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


class JobEngine:
    """The process's job workers (one engine per process)."""

    def __init__(self) -> None:
        self.consumer = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.gateways: dict[tuple[str, str, str], _Gateway] = {}  # (redis_url, base_url, workspace scope)
        self.stores: dict[tuple[str, str], JobStore] = {}  # (redis_url, workspace scope)
        self.runners: dict[str, JobRunner] = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.scheduler: threading.Thread | None = None
        self.background = os.environ.get("INSTALL_METHOD", "local").lower() != "serverless"
        self.processed = 0
        self.on_idle: Callable[[], None] | None = None

    def store(self, redis_url: str, keys: Keys, ttl_seconds: int | None = None) -> JobStore:
        """The workspace's jobs in that Redis (one store per workspace, with the workspace's job TTL)."""
        with self.lock:
            store = self.stores.get((redis_url, keys.scope))
            if store is None:
                store = self.stores[(redis_url, keys.scope)] = JobStore(redis_client(redis_url), keys)
            if ttl_seconds:
                store.ttl_ms = int(ttl_seconds * 1000)
            return store

    def register(self, config: GatewayConfig, ttl_seconds: int | None = None) -> JobStore:
        """Makes this process work on open jobs of this gateway and workspace (in the background where it can)."""
        store = self.store(config.redis_url, config.keys, ttl_seconds)
        key = (config.redis_url, config.base_url, config.keys.scope)
        with self.lock:
            if key not in self.gateways or self.gateways[key].config != config:
                self.gateways[key] = _Gateway(config)
            start = self.background and self.scheduler is None and not self.stopping
            if start:
                self.scheduler = threading.Thread(target=self._schedule, daemon=True, name="job-scheduler")
        if start:
            self.scheduler.start()  # type: ignore[union-attr]
        return store

    def _schedule(self) -> None:
        while not self.stopping:
            try:
                self.schedule_once()
            except Exception as exc:
                logger.warning("job scheduler: %s", type(exc).__name__)
            time.sleep(SCHEDULE_EVERY)

    def schedule_once(self, *, until: float | None = None, only: str | None = None, only_in: JobStore | None = None) -> list[JobRunner]:
        """Starts runners for open jobs (or job `only`, of the workspace store `only_in`)."""
        started: list[JobRunner] = []
        for (redis_url, scope), store in list(self.stores.items()):
            if only_in is not None and store is not only_in:
                continue
            try:
                self._start_runners(redis_url, scope, store, only, until, started)
            except Exception as exc:
                if only_in is not None:
                    raise
                # One workspace's Redis failing (down, or a cluster node behind a redis:// URL answering
                # MOVED) must not keep the jobs of the stores after it from starting.
                logger.warning("job scheduler: %s", type(exc).__name__)
        return started

    def _start_runners(self, redis_url: str, scope: str, store: JobStore, only: str | None, until: float | None,
                       started: list[JobRunner]) -> None:
        for job_id in store.open_jobs() if only is None else [only]:
            if self.stopping or job_id in self.runners:
                continue
            try:
                meta = store.meta(job_id)
            except LookupError:
                store.forget(job_id)  # expired
                continue
            if meta.get("status") != RUNNING or meta.get("mode", "workers") != "workers":
                continue
            gateway = self.gateways.get((redis_url, meta["base_url"], scope))
            if gateway is None or gateway.config.key_digest != meta["key_digest"]:
                continue
            runner = JobRunner(self, store, store.job(job_id, meta), gateway, until=until)
            with self.lock:
                if job_id in self.runners or self.stopping:
                    continue
                self.runners[job_id] = runner
            runner.start()
            started.append(runner)

    def _runner_done(self, runner: JobRunner) -> None:
        with self.lock:
            if self.runners.get(runner.job.id) is runner:
                del self.runners[runner.job.id]

    def work_for(self, config: GatewayConfig, job_id: str, seconds: float, grace: float = DEFAULT_GRACE) -> None:
        """Where no background work can run (serverless): work on one job for `seconds` inside the
        caller's deadline, then finish what is in flight (within `grace`) and release the rest."""
        store = self.register(config)
        runners = self.schedule_once(until=time.monotonic() + seconds, only=job_id, only_in=store)
        for runner in runners:
            runner.finished.wait(seconds + grace)
            runner.stop_claiming()
            runner.release_held()

    def shutdown(self, grace: float = DEFAULT_GRACE) -> int:
        """Stop claiming; give items in flight `grace` seconds; release the rest at once. Returns the
        number of items released."""
        self.stopping = True
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.stop_claiming()
        end = time.monotonic() + grace
        for runner in runners:
            runner.finished.wait(max(0.0, end - time.monotonic()))
        return sum(runner.release_held() for runner in runners)


ENGINE = JobEngine()
