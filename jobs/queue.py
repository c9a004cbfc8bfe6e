"""The job queue: every plugin process that knows a job's gateway (base URL and key) works on it.

A process learns a gateway from the credentials of a job tool call (`JobEngine.register`); the key
stays in the process, Redis only ever sees a digest of it. Workers run per (Redis URL, gateway URL,
workspace scope): each workspace's jobs live under its own keys (`gateway.state.keys`), and a process works
on a workspace's jobs only with that workspace's credentials. A scheduler thread looks at the open jobs
every half second and starts a runner for each job whose gateway it knows: worker threads
(greenlets under the Dify runtime; a few more than `concurrency`) that claim items from the job's
stream, call the gateway and store each result atomically with the acknowledgement (`jobs.store`).

A process has one engine, created with the process's other long-lived services (`services.py`) and
handed to whatever starts or stops its work: the job tools (`jobs.service`) and the shutdown hooks
(`jobs.lifecycle`).

Shutdown (`JobEngine.shutdown`): stop claiming, let items in flight finish within a grace period,
flush their results, then release the rest at once (their lease is set as expired), so nothing
waits for a lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from gateway import GatewayConfig
from gateway.client import ClientRegistry
from gateway.state.keys import Keys
from gateway.state.redis_connection import redis_client
from jobs.store import RUNNING, JobStore
from jobs.worker import JobGateway, JobRunner

logger = logging.getLogger("holysheep.jobs")

SCHEDULE_EVERY = 0.5
DEFAULT_GRACE = 5.0


class JobEngine:
    """The process's job workers (one engine per process), on the process's gateway clients and stores
    (`gateway`, handed in by the wiring; an engine made alone gets its own)."""

    def __init__(self, gateway: ClientRegistry | None = None) -> None:
        self.gateway = gateway if gateway is not None else ClientRegistry()
        self.consumer = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.gateways: dict[tuple[str, str, str], JobGateway] = {}  # (redis_url, base_url, workspace scope)
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
                self.gateways[key] = JobGateway(config, self.gateway.backends)
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

    def runner_done(self, runner: JobRunner) -> None:
        with self.lock:
            if self.runners.get(runner.job.id) is runner:
                del self.runners[runner.job.id]

    def work_for(self, config: GatewayConfig, job_id: str, seconds: float, grace: float = DEFAULT_GRACE) -> None:
        """Where no background work can run (serverless): work on one job for `seconds` inside the
        caller's deadline, then finish what is in flight (within `grace`) and release the rest."""
        store = self.register(config)
        runners = self.schedule_once(until=time.monotonic() + seconds, only=job_id, only_in=store)
        if not runners:
            # This process may already work on the job (its background scheduler started a runner as the store
            # was registered): the call still gets its share of the work, and that runner is left running.
            with self.lock:
                working = self.runners.get(job_id)
            if working is not None:
                working.finished.wait(seconds)
            return
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
