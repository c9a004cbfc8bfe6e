"""The job engine in this process against the simulator and the real Redis: a taken-over item is sent
again only when every request it had sent failed retryably; an item whose request's outcome is unknown
ends as `interrupted`, never resent; released items are taken at once; serverless work inside a call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from gateway import GatewayConfig
from gateway.metrics import InProcessMetrics, RedisMetrics, WriteBehindMetrics
from gateway.spend.budget import Identity
from gateway.state.backends import Backends
from gateway.state.keys import workspace_scope
from jobs import service
from jobs.inputs import parse_prompts
from jobs.queue import JobEngine
from jobs.results import FLUSH_EVERY
from jobs.store import JobStore, job_settings, percentile
from simulator.harness import SimulatorProcess
from specs.job_spec import JobSpec

pytestmark = pytest.mark.redis
REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def config(sim: SimulatorProcess) -> Iterator[GatewayConfig]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    yield GatewayConfig.from_credentials({"api_key": sim.api_key, "base_url": sim.base_url, "redis_url": REDIS_URL})


def make_job(config: GatewayConfig, prompts: list[str], lease: int = 2) -> tuple[JobStore, str]:
    store = JobStore(redis.Redis.from_url(REDIS_URL), config.keys)
    items, _ = parse_prompts(json.dumps(prompts))
    settings = job_settings(JobSpec(concurrency=4, lease_seconds=lease), timeout_seconds=30, max_retries=2, budget=None)
    job_id = store.create(items, base_url=config.base_url, key_digest=config.key_digest, settings=settings, mode="workers", owner_app="-")
    return store, job_id


def work_through(config: GatewayConfig, store: JobStore, job_id: str, seconds: float = 20) -> None:
    """Works on the job in this process (no background threads) until it has completed."""
    engine = JobEngine()
    engine.background = False
    engine.work_for(config, job_id, seconds)
    assert store.meta(job_id)["status"] == "completed"


def test_taken_over_items_follow_the_retry_policy(sim: SimulatorProcess, config: GatewayConfig) -> None:
    store, job_id = make_job(config, ["unknown outcome", "failed retryably", "never sent", "spent its retries"])
    claimed = store.claim_new(job_id, "dead-process", 4)
    assert len(claimed) == 4
    store.record_send(job_id, 0)  # sent, no answer recorded: the gateway may have run it
    store.record_send(job_id, 1)
    store.record_retryable_answer(job_id, 1)  # a 503 came back: the retry policy would retry
    for _ in range(3):
        store.record_send(job_id, 3)
        store.record_retryable_answer(job_id, 3)
    engine = JobEngine()
    engine.background = False
    engine.register(config)
    time.sleep(2.1)  # the dead process's leases expire
    engine.work_for(config, job_id, 5)
    results = store.results(job_id, [0, 1, 2, 3])
    assert results[0]["status"] == "error" and results[0]["error_code"] == "interrupted" and results[0]["attempts"] == 1
    assert results[1]["status"] == "ok" and results[1]["attempts"] == 2  # one before, one now
    assert results[2]["status"] == "ok" and results[2]["attempts"] == 1
    assert results[3]["status"] == "error" and results[3]["attempts"] == 3
    seen = sim.stats()["chat_requests_by_prompt"]
    assert seen.get("unknown outcome", 0) == 0 and seen["failed retryably"] == 1 and seen["never sent"] == 1
    assert store.meta(job_id)["status"] == "completed"


def test_released_items_are_taken_at_once_not_after_the_lease(sim: SimulatorProcess, config: GatewayConfig) -> None:
    store, job_id = make_job(config, [f"r {i}" for i in range(6)], lease=3600)
    claimed = store.claim_new(job_id, "stopping-process", 6)
    store.release(job_id, [entry for entry, _, _ in claimed])
    engine = JobEngine()
    engine.background = False
    started = time.monotonic()
    engine.work_for(config, job_id, 5)
    assert store.meta(job_id)["status"] == "completed" and time.monotonic() - started < 5


def test_a_status_call_works_on_the_job_with_the_runner_this_process_already_has(sim: SimulatorProcess, config: GatewayConfig) -> None:
    # The background scheduler may start the job's runner as the status call registers its store: the call
    # must still wait for the work (seen in CI as "0/4 done" answered at once), and leave that runner running.
    store, job_id = make_job(config, [f"b {i}" for i in range(4)])
    engine = JobEngine()
    engine.background = False
    registered = engine.register(config)
    [running] = engine.schedule_once(only=job_id, only_in=registered)  # as the background scheduler would
    engine.work_for(config, job_id, 20)
    assert store.meta(job_id)["status"] == "completed" and running.finished.is_set()


def test_serverless_status_works_on_the_job_within_its_call(sim: SimulatorProcess, config: GatewayConfig) -> None:
    engine = JobEngine()
    engine.background = False
    items, json_format = parse_prompts(json.dumps([f"s {i}" for i in range(40)]))
    job = service.submit(engine, config, items, json_format, JobSpec(concurrency=8), 3600)
    assert service.status(engine, config, job["job_id"], Identity())["done"] == 0  # nothing runs in the background
    status = service.status(engine, config, job["job_id"], Identity(), work_seconds=5)
    assert status["finished"] and status["succeeded"] == 40


def test_concurrency_is_the_number_of_requests_at_the_gateway_at_once(sim: SimulatorProcess, config: GatewayConfig) -> None:
    # Workers beyond the concurrency claim and write results around the requests; the gateway never
    # sees more than `concurrency` (4) of this process's requests at once, and does see that many.
    sim.configure(latency_ms=60)
    store, job_id = make_job(config, [f"c {i}" for i in range(40)])
    work_through(config, store, job_id)
    assert sim.stats()["max_concurrency"] == 4
    results = store.results(job_id, list(range(40)))
    assert all(r["status"] == "ok" and r["attempts"] == 1 for r in results)
    # The wait for a free slot (this process's queue) is left out of the latency, the gateway's is not.
    assert min(r["latency_ms"] for r in results) >= 60, [r["latency_ms"] for r in results]


def test_a_jobs_call_figures_and_breaker_successes_go_out_with_its_results(
    sim: SimulatorProcess, config: GatewayConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One results write carries the figures (and the breaker's successes) of every call it has results
    # for: far fewer round trips than calls, and nothing missing once the results are in.
    writes = {"results": 0, "figures": 0}
    finish_many, write = JobStore.finish_many, WriteBehindMetrics._write

    def finish_counted(self: JobStore, *args: Any) -> Any:
        writes["results"] += 1
        return finish_many(self, *args)

    def write_counted(self: WriteBehindMetrics, *args: Any) -> None:
        writes["figures"] += 1
        write(self, *args)

    monkeypatch.setattr(JobStore, "finish_many", finish_counted)
    monkeypatch.setattr(WriteBehindMetrics, "_write", write_counted)
    sim.configure(latency_ms=5)
    store, job_id = make_job(config, [f"f {i}" for i in range(200)])
    started = time.monotonic()
    work_through(config, store, job_id, 30)
    elapsed = time.monotonic() - started
    figures = RedisMetrics(redis.Redis.from_url(REDIS_URL), InProcessMetrics()).figures(workspace_scope(config.api_key))
    assert sum(v for k, v in figures.items() if k[0] == "requests") == 200
    assert sum(v for k, v in figures.items() if k[0] == "attempts") == 200
    breaker = Backends().state_for(REDIS_URL).breaker(config.base_url, config.default_model, keys=config.keys)
    assert store.r.zcard(breaker.keys[2]) == 200  # every success recorded, none twice
    # At most one results write per FLUSH_EVERY (and a last one), however slow the machine: fewer than calls.
    assert 0 < writes["results"] <= elapsed / FLUSH_EVERY + 2, (writes, elapsed)
    assert 0 < writes["figures"] <= writes["results"] + 2, writes  # one with each results write (and the last)
    assert writes["results"] < 200


def counted(store: JobStore, job_id: str) -> int:
    """Requests counted in Redis for the job (the `sent` hash without its `<i>:r` answers)."""
    return sum(int(v) for k, v in store.r.hgetall(store.key(job_id, "sent")).items() if b":" not in k)


def requests_waiting_for_the_slot(sim: SimulatorProcess, config: GatewayConfig) -> tuple[JobStore, str, JobEngine, threading.Thread]:
    """A 6-item job with one slot and 600 ms requests, worked in a thread; returns once one request is
    out and the next ones are counted and waiting for its slot."""
    sim.configure(latency_ms=600)
    store = JobStore(redis.Redis.from_url(REDIS_URL), config.keys)
    items, _ = parse_prompts(json.dumps([f"w {i}" for i in range(6)]))
    settings = job_settings(JobSpec(concurrency=1, lease_seconds=3600), timeout_seconds=30, max_retries=2, budget=None)
    job_id = store.create(items, base_url=config.base_url, key_digest=config.key_digest, settings=settings, mode="workers", owner_app="-")
    engine = JobEngine()
    engine.background = False
    worker = threading.Thread(target=engine.work_for, args=(config, job_id, 30))
    worker.start()
    deadline = time.monotonic() + 5
    while counted(store, job_id) < 3:
        assert time.monotonic() < deadline, "no request was counted while waiting for the slot"
        time.sleep(0.01)
    return store, job_id, engine, worker


def test_items_waiting_for_a_slot_when_the_process_lets_go_go_back_unsent(sim: SimulatorProcess, config: GatewayConfig) -> None:
    # When the process shuts down, the request out finishes and the items counted but still waiting for
    # the slot go back with their counts taken back (not `not_run`, not `interrupted` for whoever takes
    # them next), so the next process sends each exactly once.
    store, job_id, engine, worker = requests_waiting_for_the_slot(sim, config)
    engine.shutdown(grace=5)
    worker.join(15)
    assert int(store.meta(job_id).get("not_run", 0)) == 0
    later = JobEngine()
    later.background = False
    later.work_for(config, job_id, 20)
    assert store.meta(job_id)["status"] == "completed"  # leases of an hour: the others came back at once
    assert all(r["status"] == "ok" and r["attempts"] == 1 for r in store.results(job_id, list(range(6))))
    assert all(n == 1 for n in sim.stats()["chat_requests_by_prompt"].values())


def test_a_cancel_reaches_requests_counted_and_waiting_for_a_slot(sim: SimulatorProcess, config: GatewayConfig) -> None:
    # Cancelled while they wait, the counted requests are never sent and their counts are taken back
    # (counted == sent, exactly); only the request already out completes.
    store, job_id, _, worker = requests_waiting_for_the_slot(sim, config)
    at_cancel = counted(store, job_id)
    store.cancel(job_id)
    worker.join(15)
    sent = sum(sim.stats()["chat_requests_by_prompt"].values())
    assert sent < at_cancel, "a request counted before the cancel and still waiting for its slot was sent"
    assert counted(store, job_id) == sent
    assert store.meta(job_id)["status"] == "cancelled"


def test_percentiles_from_the_histogram() -> None:
    from jobs.store import latency_bucket

    histogram: dict[int, int] = {}
    for ms in range(1, 1001):
        bucket = latency_bucket(ms)
        histogram[bucket] = histogram.get(bucket, 0) + 1
    assert percentile(histogram, 50) == pytest.approx(500, rel=0.06)
    assert percentile(histogram, 99) == pytest.approx(990, rel=0.06)
    assert percentile({}, 50) is None


def test_a_job_stored_by_the_previous_version_runs_as_it_was_submitted(sim: SimulatorProcess, config: GatewayConfig) -> None:
    # Before the spec was stored, a job kept the request's settings flat beside its own (model as the
    # workflow gave it): such jobs are still in Redis after an upgrade and still run.
    store = JobStore(redis.Redis.from_url(REDIS_URL), config.keys)
    items, _ = parse_prompts(json.dumps([{"prompt": "old one"}, {"prompt": "old two", "model": "default", "max_tokens": 9}]))
    settings = {
        "model": "gpt-4.1", "system_prompt": "be brief", "temperature": 0.2, "top_p": None, "max_tokens": 50, "seed": None,
        "stop": None, "response_format": None, "concurrency": 2, "rpm_limit": 0, "tpm_limit": 0, "lease_seconds": 30,
        "timeout_seconds": 30, "max_retries": 2,
    }
    job_id = store.create(items, base_url=config.base_url, key_digest=config.key_digest, settings=settings, mode="workers", owner_app="-")
    work_through(config, store, job_id)
    results = store.results(job_id, [0, 1])
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert [r["model"] for r in results] == ["gpt-4.1", config.default_model]


def test_items_next_in_line_have_their_first_request_counted_with_another_s(
    sim: SimulatorProcess, config: GatewayConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every request is still counted before it leaves, exactly once; several in one round trip.
    trips: list[int] = []
    record_send = JobStore.record_send

    def counting(self: JobStore, job_id: str, index: int, *ahead: int) -> int:
        trips.append(1 + len(ahead))
        return record_send(self, job_id, index, *ahead)

    monkeypatch.setattr(JobStore, "record_send", counting)
    store, job_id = make_job(config, [f"a {i}" for i in range(40)])
    work_through(config, store, job_id)
    assert sum(trips) == 40 == counted(store, job_id) == sum(sim.stats()["chat_requests_by_prompt"].values())
    assert len(trips) < 30 and max(trips) > 1
