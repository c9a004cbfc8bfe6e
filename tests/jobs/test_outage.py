"""The job engine when Redis goes away or refuses: entries a lost answer left with this process are taken up
when it returns (not after the lease), a result Redis refuses never holds back the others, and the result
files are safe to open and read back."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from gateway import GatewayConfig
from jobs import result_files
from jobs.inputs import JobItem, parse_file, parse_prompts
from jobs.queue import JobEngine
from jobs.store import JobStore, job_settings
from simulator.harness import SimulatorProcess
from specs.job_spec import JobSpec

pytestmark = pytest.mark.redis
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def config(sim: SimulatorProcess) -> Iterator[GatewayConfig]:
    yield GatewayConfig.from_credentials({"api_key": sim.api_key, "base_url": sim.base_url, "redis_url": REDIS_URL})


def make_job(config: GatewayConfig, prompts: list[str], lease: int) -> tuple[JobStore, str]:
    store = JobStore(redis.Redis.from_url(REDIS_URL), config.keys)
    items, _ = parse_prompts(json.dumps(prompts))
    settings = job_settings(JobSpec(concurrency=2, lease_seconds=lease), timeout_seconds=30, max_retries=2, budget=None)
    return store, store.create(items, base_url=config.base_url, key_digest=config.key_digest, settings=settings, mode="workers", owner_app="-")


def test_entries_a_lost_claim_answer_left_with_this_process_are_taken_up_when_redis_returns(sim: SimulatorProcess, config: GatewayConfig) -> None:
    store, job_id = make_job(config, [f"lost {i}" for i in range(5)], lease=3600)
    engine = JobEngine()
    engine.background = False
    engine.register(config)
    # The claim went through in Redis but its answer never came back (Redis stopped mid-reply): the
    # consumer group counts the entries as this process's, which never heard of them.
    store.claim_new(job_id, f"{engine.consumer}-{job_id[:8]}", 3)
    (runner,) = engine.schedule_once(until=time.monotonic() + 15, only=job_id)
    runner.lost_redis()  # what any failed Redis call does; the renewer finds Redis answering again
    assert runner.finished.wait(20)
    meta = store.meta(job_id)
    assert meta["status"] == "completed" and meta["ok"] == "5", meta  # not after the hour-long lease
    assert all(r is not None and r["attempts"] == 1 for r in store.results(job_id, list(range(5))))
    assert all(sim.stats()["chat_requests_by_prompt"][f"lost {i}"] == 1 for i in range(5))


def test_a_result_redis_refuses_does_not_hold_back_the_others(sim: SimulatorProcess, config: GatewayConfig) -> None:
    store, job_id = make_job(config, [f"refused {i}" for i in range(4)], lease=60)
    engine = JobEngine()
    engine.background = False
    engine.register(config)
    engine_store = engine.store(REDIS_URL, config.keys)
    written = engine_store.finish_many

    def refusing(job: str, done: list[tuple[str, int, dict[str, Any]]], ttl_ms: int | None = None) -> list[bool]:
        if any(index == 1 and result["status"] == "ok" for _, index, result in done):
            raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'")
        return written(job, done, ttl_ms)

    engine_store.finish_many = refusing  # type: ignore[method-assign]
    engine.work_for(config, job_id, 10)
    meta = store.meta(job_id)
    assert meta["status"] == "completed" and meta["ok"] == "3" and meta["error"] == "1", meta
    refused = store.results(job_id, [1])[0]
    assert refused["error_code"] == "result_not_stored" and "could not be stored" in refused["error"] and refused["attempts"] == 1


def test_csv_cells_a_spreadsheet_would_run_are_text_and_nul_is_never_written() -> None:
    item = JobItem(index=0, prompt="p", id="=cmd|' /C calc'!A0")
    for start in ("=1+1", "+1", "-1", "@SUM(1)", "\tx", "\rx"):
        row = result_files.file_line("csv", item, {"id": item.id, "status": "ok", "text": start, "error": "", "attempts": 1}, True, "completed")
        (parsed,) = list(csv.reader(io.StringIO(row.decode("utf-8"), newline="")))
        assert parsed[1] == "'=cmd|' /C calc'!A0" and parsed[3] == "'" + start
    odd = JobItem(index=1, prompt="p", id="a\x00b")
    row = result_files.file_line("csv", odd, {"id": odd.id, "status": "ok", "text": "x\x00y\ud800", "attempts": 1}, True, "completed")
    assert b"\x00" not in row and "a\ufffdb" in row.decode("utf-8") and "x\ufffdy\ufffd" in row.decode("utf-8")
    assert result_files.csv_row([-1.5, 3, None]) == b"-1.5,3,\r\n"  # numbers are not text: left as they are


def test_jsonl_result_lines_read_back_with_any_reader_and_ours_reads_raw_separators() -> None:
    item = JobItem(index=0, prompt="p", id="i")
    line = result_files.file_line("jsonl", item, {"id": "i", "status": "ok", "text": "a\u2028b\u2029c\u0085d=1"}, True, "completed")
    assert line.decode("utf-8").splitlines() == [line.decode("utf-8").rstrip("\n")]  # one line for every line reader
    assert json.loads(line)["text"] == "a\u2028b\u2029c\u0085d=1"  # and no spreadsheet escaping in JSONL
    raw = "".join(json.dumps({"id": f"r{i}", "prompt": f"p{i} \u2028\u2029\u0085 end"}, ensure_ascii=False) + "\r\n" for i in range(3))
    items = parse_file(raw.encode("utf-8"), "rows.jsonl")
    assert [(i.id, i.prompt) for i in items] == [(f"r{i}", f"p{i} \u2028\u2029\u0085 end") for i in range(3)]
