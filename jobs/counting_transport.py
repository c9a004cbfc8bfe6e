"""The transport a job's requests go through: each chat request counted in Redis before it leaves
and each retryable failure counted when it comes back, and each holding one of the runner's request
slots from the moment it leaves to the end of its body (`jobs.worker` explains why both).

Which item a request belongs to is greenlet-local (`current.item`): the gateway client knows nothing
of jobs, the worker sets it around each item's call.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from gateway import Deadline, GatewayError
from gateway.call.retry import RETRYABLE_STATUSES
from gateway.errors import BadRequestError, GatewayTimeoutError
from gateway.state.redis_connection import CONNECTION_ERRORS
from gateway.wire.transport import Attempt, AttemptFailed, Response
from jobs.store import Job, JobStore

# Items next in line whose first request is counted with a worker's own: a round trip each saved, for up
# to this many more counted requests a killed process leaves `interrupted` (see `_count`).
COUNT_AHEAD = 3
current = threading.local()  # `current.item`: the ItemContext of the item this worker sends (greenlet-local under gevent)


class Sender(Protocol):
    """What the transport needs of the runner whose item it sends (`jobs.worker.JobRunner`)."""

    store: JobStore
    job: Job
    slots: threading.BoundedSemaphore
    ahead: threading.BoundedSemaphore
    running: bool

    def stopping(self) -> bool: ...

    def lost_redis(self) -> None: ...

    def count_ahead(self, limit: int) -> list[tuple[str, int, Any]]: ...

    def counted_ahead(self, taken: list[tuple[str, int, Any]], counted: bool) -> None: ...

    def take_counted(self, index: int) -> bool: ...


class ItemContext:
    """One item's call as the transport sees it: its requests counted, its slot, why it did not go."""

    __slots__ = (
        "cancelled", "index", "job_id", "offset", "queued", "redis_away", "released", "resendable", "runner", "sent", "slot", "started", "store",
    )

    def __init__(self, runner: Sender, index: int, sent: int = 0) -> None:
        self.runner, self.store, self.job_id, self.index = runner, runner.store, runner.job.id, index
        self.offset = self.sent = sent  # requests made for the item before this call (another process's, or before an outage)
        self.started = time.monotonic()
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


class SlotResponse:
    """A response that gives its request slot back when it is closed (body read or abandoned)."""

    __slots__ = ("_ctx", "_inner", "headers", "reason", "status")

    def __init__(self, inner: Response, ctx: ItemContext) -> None:
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
        ctx: ItemContext | None = getattr(current, "item", None)
        if ctx is None or not path.startswith("/chat/"):
            return self.inner.send(method, path, body, timeout=timeout)
        runner = ctx.runner
        counted_ahead = runner.take_counted(ctx.index)  # counted with an earlier item's request
        if counted_ahead:
            ctx.sent += 1
        if runner.stopping():
            ctx.released = True
            if counted_ahead:
                ctx.unsend()
            raise _not_sent(BadRequestError(RELEASED))
        # Counted before it waits for a slot, by a few workers at a time (`runner.ahead`): a slot then
        # holds the request alone, with no Redis round trip in it.
        with runner.ahead:
            if not counted_ahead:
                _count(ctx, runner)
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
        return SlotResponse(response, ctx)

    def ensure_pool(self, size: int) -> None:
        self.inner.ensure_pool(size)

    def close(self) -> None:
        self.inner.close()


RELEASED = "not sent: this process is stopping; the item goes back to the job"
CANCELLED = "not sent: the job was cancelled"
REDIS_AWAY = "not sent yet: Redis (redis_url) is not answering; the item is sent once it is back"


def _count(ctx: ItemContext, runner: Sender) -> None:
    """Counts the item's request in Redis, with the first requests of up to COUNT_AHEAD items next in
    line (one round trip for them all: each of those, when its turn comes, is counted already). Those
    are counted a little earlier than they leave, never later; what a count ahead risks is that a
    process killed outright leaves them `interrupted` (as it does a request waiting for a slot), and
    one letting go in order, or an item that never reaches the transport, takes its count back."""
    ahead = runner.count_ahead(COUNT_AHEAD)
    try:
        counted = ctx.store.record_send(ctx.job_id, ctx.index, *[index for _, index, _ in ahead])
    except CONNECTION_ERRORS:
        # Nothing goes uncounted: the item stays with this process and goes once Redis is back.
        runner.counted_ahead(ahead, False)
        ctx.redis_away = True
        runner.lost_redis()
        raise _not_sent(BadRequestError(REDIS_AWAY)) from None
    except BaseException:
        runner.counted_ahead(ahead, False)
        raise
    runner.counted_ahead(ahead, counted >= 0)
    if counted < 0:
        ctx.cancelled = True
        raise _not_sent(BadRequestError(CANCELLED))
    ctx.sent += 1


def _retryable_answer(ctx: ItemContext) -> None:
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

