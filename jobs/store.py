"""A job in Redis: its items in a Stream read by one consumer group, its results, its counters.

Keys (`gateway.state.keys.Keys.job(<id>, part)`, under the workspace's scope), all with the TTL the
administrator set, renewed when the job ends:

- `meta`  hash: status (running, completed, cancelled, failed), mode, total, done, ok, error, not_run,
          cost, the gateway (base URL and a digest of the key, never the key), the settings (JSON),
          the owner: the workspace scope and a digest of the submitting Dify app's id (`jobs.service`
          shows a job only to its owner).
- `items` stream: item i is entry `<i+1>-0` with its input as JSON; consumer group `w`. An entry is
          claimed with XREADGROUP (or reclaimed with XAUTOCLAIM once its lease expired) and acknowledged
          in the same script that stores its result, so a result is written once and never lost.
- `res`   hash: item index -> result JSON (first writer wins).
- `sent`  hash: item index -> requests sent for it; `<i>:r` -> of those, answered with a retryable
          failure (429, 5xx, refused connection). sent > answered means a request's outcome is unknown.
- `lat`   hash: latency histogram (5 % buckets) for the percentiles.
- `Keys.jobs_open()` set: the workspace's jobs that workers look at.

A store belongs to one workspace: a job id from another workspace names no key of this store. Every
key of a workspace's jobs and its open set share one hash tag, so the scripts below (which touch a
job's keys and the open set together) run on one slot of a Redis Cluster.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis

from gateway.errors import carriable
from gateway.state.keys import Keys
from jobs.inputs import JobItem
from specs.job_spec import JobSpec
from specs.model import DEFAULT, ModelChoice

GROUP = "w"
RUNNING, COMPLETED, CANCELLED, FAILED = "running", "completed", "cancelled", "failed"
TERMINAL = frozenset({COMPLETED, CANCELLED, FAILED})
LAT_BASE = 1.05
ADD_CHUNK = 1000
# A released entry's idle time: far past any lease, so the next XAUTOCLAIM takes it at once.
RELEASED_IDLE_MS = 10 * 24 * 3600 * 1000

_FINISH = """
-- KEYS: meta res items lat open sent ; ARGV: job ttl_ms, then 6 per item: index entry result status cost latency_bucket
-- Many items in one call (results are written in batches): each result stored unless one is there
-- (first writer wins), counted once, its entry acknowledged; the job completes when the last is in.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stored = {}
local fresh = 0
for i = 3, #ARGV, 6 do
  local ok = redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 2])
  stored[#stored + 1] = ok
  if ok == 1 then
    fresh = fresh + 1
    redis.call('HINCRBY', KEYS[1], ARGV[i + 3], 1)
    if ARGV[i + 4] ~= '' then
      redis.call('HINCRBYFLOAT', KEYS[1], 'cost', ARGV[i + 4])
    elseif ARGV[i + 3] == 'ok' then
      redis.call('HINCRBY', KEYS[1], 'cost_unknown', 1)
    end
    if ARGV[i + 5] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[i + 5], 1) end
  end
  redis.call('XACK', KEYS[3], 'w', ARGV[i + 1])
end
if fresh > 0 then
  local done = redis.call('HINCRBY', KEYS[1], 'done', fresh)
  redis.call('HSETNX', KEYS[1], 'first_at', now)
  redis.call('HSET', KEYS[1], 'last_at', now)
  local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
  if done >= total and redis.call('HGET', KEYS[1], 'status') == 'running' then
    redis.call('HSET', KEYS[1], 'status', 'completed', 'finished_at', now)
    redis.call('SREM', KEYS[5], ARGV[1])
    for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
    redis.call('PEXPIRE', KEYS[6], ARGV[2])
  end
end
return stored
"""

_SEND = """
-- KEYS: meta sent ; ARGV: the indexes of requests about to be sent. The first's count, or -1 when the
-- job no longer runs (then nothing is counted: nothing may be sent for it)
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return -1 end
local first = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
for i = 2, #ARGV do redis.call('HINCRBY', KEYS[2], ARGV[i], 1) end
return first
"""

_CANCEL = """
-- KEYS: meta open ; ARGV: job ttl_ms
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'running' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  redis.call('SREM', KEYS[2], ARGV[1])
end
return redis.call('HGET', KEYS[1], 'status')
"""


class JobNotFound(LookupError):
    pass


def entry_id(index: int) -> str:
    return f"{index + 1}-0"


def index_of(entry: str | bytes) -> int:
    text = entry.decode() if isinstance(entry, bytes) else entry
    return int(text.split("-", 1)[0]) - 1


def latency_bucket(ms: float) -> int:
    return max(0, int(math.log(max(ms, 1.0), LAT_BASE)))


def job_settings(spec: JobSpec, *, timeout_seconds: float, max_retries: int, budget: dict[str, Any] | None) -> dict[str, Any]:
    """What a job keeps in its meta for the workers: the spec as it is, the gateway's timeout and retries
    at submit, and the budget in force (the administrator's tightened by the workflow's, with the
    submitter's scope ids: `jobs.spend_cap.policy_settings`)."""
    settings: dict[str, Any] = {"spec": spec.to_dict(), "timeout_seconds": timeout_seconds, "max_retries": max_retries}
    if budget is not None:
        settings["budget"] = budget
    return settings


def stored_spec(settings: dict[str, Any]) -> JobSpec:
    """The spec of a job's settings, in either shape: `{"spec": ...}`, or the shape jobs were stored in
    before the spec (still in Redis after an upgrade, up to job_ttl_hours): the request's settings flat
    beside the job's, the model as the workflow gave it (select value, `custom_model` or `default`)."""
    if "spec" in settings:
        return JobSpec.from_dict(settings["spec"])
    return JobSpec(
        model=ModelChoice(str(settings.get("model") or DEFAULT), free_text=True),
        system_prompt=settings.get("system_prompt") or "",
        temperature=settings.get("temperature"),
        top_p=settings.get("top_p"),
        max_tokens=settings.get("max_tokens"),
        seed=settings.get("seed"),
        stop=tuple(settings.get("stop") or ()),
        response_format=settings.get("response_format"),
        concurrency=int(settings.get("concurrency") or 10),
        rpm_limit=int(settings.get("rpm_limit") or 0),
        tpm_limit=int(settings.get("tpm_limit") or 0),
        lease_seconds=settings.get("lease_seconds", 60),
    )


@dataclass(frozen=True)
class Job:
    """A job's identity and settings, as the workers need them."""

    id: str
    base_url: str
    key_digest: str
    settings: dict[str, Any]
    total: int
    mode: str

    @cached_property
    def spec(self) -> JobSpec:
        """Read once per Job: every item's request is built from it."""
        return stored_spec(self.settings)

    @property
    def lease_ms(self) -> int:
        return int(self.spec.lease_seconds * 1000)


class JobStore:
    """One workspace's jobs in one Redis."""

    def __init__(self, client: redis.Redis, names: Keys, ttl_seconds: int = 72 * 3600) -> None:
        self.r = client
        self.names = names
        self.open_set = names.jobs_open()
        self.ttl_ms = int(ttl_seconds * 1000)
        self._finish = client.register_script(_FINISH)
        self._send = client.register_script(_SEND)
        self._cancel = client.register_script(_CANCEL)

    # ------------------------------------------------------------------ keys

    def key(self, job_id: str, part: str) -> str:
        return self.names.job(job_id, part)

    def keys(self, job_id: str) -> list[str]:
        return [self.key(job_id, p) for p in ("meta", "res", "items", "lat", "sent")]

    # ------------------------------------------------------------------ create

    def create(
        self,
        items: list[JobItem],
        *,
        base_url: str,
        key_digest: str,
        settings: dict[str, Any],
        mode: str,
        owner_app: str,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A new job; `owner_app` is the digest of the submitting app's id (`jobs.service.app_owner`)."""
        job_id = uuid.uuid4().hex
        meta_key, items_key = self.key(job_id, "meta"), self.key(job_id, "items")
        meta = {
            "status": RUNNING,
            "mode": mode,
            "total": len(items),
            "done": 0,
            "ok": 0,
            "error": 0,
            "not_run": 0,
            "cost": 0,
            "base_url": base_url,
            "key_digest": key_digest,
            "settings": json.dumps(settings, separators=(",", ":")),
            "created_at": int(time.time() * 1000),
            "ttl_ms": self.ttl_ms,
            "owner_scope": self.names.scope,
            "owner_app": owner_app,
            **(extra or {}),
        }
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(meta_key, mapping=meta)
        pipe.pexpire(meta_key, self.ttl_ms)
        pipe.execute()
        for start in range(0, len(items), ADD_CHUNK):
            pipe = self.r.pipeline(transaction=False)
            for item in items[start : start + ADD_CHUNK]:
                pipe.xadd(items_key, {"d": item.to_json()}, id=entry_id(item.index))
            pipe.execute()
        pipe = self.r.pipeline(transaction=False)
        pipe.xgroup_create(items_key, GROUP, id="0", mkstream=True)
        for key in self.keys(job_id)[1:]:
            pipe.pexpire(key, self.ttl_ms)
        if mode == "workers":
            pipe.sadd(self.open_set, job_id)
        pipe.execute()
        return job_id

    def set_fields(self, job_id: str, **fields: Any) -> None:
        self.r.hset(self.key(job_id, "meta"), mapping=fields)

    # ------------------------------------------------------------------ read

    def meta(self, job_id: str) -> dict[str, str]:
        raw = self.r.hgetall(self.key(job_id, "meta"))
        if not raw:
            raise JobNotFound(job_id)
        return {k.decode(): v.decode() for k, v in raw.items()}

    def job(self, job_id: str, meta: dict[str, str] | None = None) -> Job:
        meta = meta or self.meta(job_id)
        return Job(job_id, meta["base_url"], meta["key_digest"], json.loads(meta["settings"]), int(meta["total"]), meta.get("mode", "workers"))

    def status(self, job_id: str) -> str | None:
        value = self.r.hget(self.key(job_id, "meta"), "status")
        return value.decode() if value is not None else None

    def open_jobs(self) -> list[str]:
        return sorted(v.decode() for v in self.r.smembers(self.open_set))

    def forget(self, job_id: str) -> None:
        self.r.srem(self.open_set, job_id)

    def latency_histogram(self, job_id: str) -> dict[int, int]:
        return {int(k): int(v) for k, v in self.r.hgetall(self.key(job_id, "lat")).items()}

    def in_flight(self, job_id: str) -> int:
        try:
            info = self.r.xpending(self.key(job_id, "items"), GROUP)
        except redis.ResponseError:
            return 0
        return int(info.get("pending", 0))

    def items(self, job_id: str, start: int, count: int) -> list[JobItem]:
        entries = self.r.xrange(self.key(job_id, "items"), entry_id(start), "+", count=count)
        return [JobItem.from_json(index_of(eid), fields[b"d"]) for eid, fields in entries]

    def results(self, job_id: str, indexes: list[int]) -> list[dict[str, Any] | None]:
        if not indexes:
            return []
        raw = self.r.hmget(self.key(job_id, "res"), [str(i) for i in indexes])
        return [json.loads(v) if v is not None else None for v in raw]

    def pages(self, job_id: str, total: int, chunk: int = 1000) -> Iterator[list[tuple[JobItem, dict[str, Any] | None]]]:
        """Every item with its result, in input order, `chunk` at a time (memory bounded by the chunk)."""
        for start in range(0, total, chunk):
            items = self.items(job_id, start, chunk)
            yield list(zip(items, self.results(job_id, [i.index for i in items]), strict=True))

    # ------------------------------------------------------------------ work

    def claim_new(self, job_id: str, consumer: str, count: int) -> list[tuple[str, int, JobItem]]:
        reply = self.r.xreadgroup(GROUP, consumer, {self.key(job_id, "items"): ">"}, count=count)
        return [(eid.decode(), index_of(eid), JobItem.from_json(index_of(eid), f[b"d"])) for _, entries in reply for eid, f in entries]

    def reclaim(self, job_id: str, consumer: str, min_idle_ms: int, start: str, count: int) -> tuple[str, list[tuple[str, int, JobItem]]]:
        """Entries whose lease expired (or that were released), now ours; and the cursor to go on from."""
        reply = self.r.xautoclaim(self.key(job_id, "items"), GROUP, consumer, min_idle_ms, start_id=start, count=count)
        cursor, entries = reply[0], reply[1]
        cursor = cursor.decode() if isinstance(cursor, bytes) else cursor
        out = []
        for eid, fields in entries:
            if fields is None:  # deleted meanwhile
                continue
            out.append((eid.decode(), index_of(eid), JobItem.from_json(index_of(eid), fields[b"d"])))
        return cursor, out

    def renew(self, job_id: str, consumer: str, entries: list[str]) -> None:
        """Resets the lease of entries we hold (XCLAIM to ourselves, JUSTID: the delivery count stays)."""
        if entries:
            self.r.xclaim(self.key(job_id, "items"), GROUP, consumer, 0, entries, justid=True)

    def own_pending(self, job_id: str, consumer: str, count: int = 1000) -> list[str]:
        """The entries the consumer group counts as `consumer`'s (claimed, not yet acknowledged): after an
        outage, what this process holds even if a claim's answer was lost on the way."""
        rows = self.r.xpending_range(self.key(job_id, "items"), GROUP, min="-", max="+", count=count, consumername=consumer)
        return [row["message_id"].decode() if isinstance(row["message_id"], bytes) else str(row["message_id"]) for row in rows]

    def claim_entries(self, job_id: str, consumer: str, entries: list[str]) -> list[tuple[str, int, JobItem]]:
        """Entries taken (or kept) by `consumer` with their items, their leases starting now."""
        if not entries:
            return []
        reply = self.r.xclaim(self.key(job_id, "items"), GROUP, consumer, 0, entries)
        return [(eid.decode(), index_of(eid), JobItem.from_json(index_of(eid), f[b"d"])) for eid, f in reply if f]

    def release(self, job_id: str, entries: list[str]) -> None:
        """Gives entries back at once: their idle time is set far past any lease, so any worker's next
        XAUTOCLAIM takes them."""
        if entries:
            self.r.xclaim(self.key(job_id, "items"), GROUP, "released", 0, entries, idle=RELEASED_IDLE_MS, justid=True)

    def sends(self, job_id: str, index: int) -> tuple[int, int, bool]:
        """(requests sent, of those answered with a retryable failure, result stored) for item `index`."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(self.key(job_id, "sent"), [str(index), f"{index}:r"])
        pipe.hexists(self.key(job_id, "res"), str(index))
        (sent, answered), stored = pipe.execute()
        return int(sent or 0), int(answered or 0), bool(stored)

    def record_send(self, job_id: str, index: int, *ahead: int) -> int:
        """Counts one request about to be sent (and one each for `ahead`, the first requests of items
        about to go: one round trip for them all); -1 (nothing counted) when the job no longer runs."""
        return int(self._send(keys=[self.key(job_id, "meta"), self.key(job_id, "sent")], args=[index, *ahead]))

    def unrecord_send(self, job_id: str, *indexes: int) -> None:
        """Takes back `record_send`s whose requests were not sent after all."""
        if len(indexes) == 1:
            self.r.hincrby(self.key(job_id, "sent"), str(indexes[0]), -1)
            return
        pipe = self.r.pipeline(transaction=False)
        for index in indexes:
            pipe.hincrby(self.key(job_id, "sent"), str(index), -1)
        pipe.execute()

    def record_retryable_answer(self, job_id: str, index: int) -> None:
        self.r.hincrby(self.key(job_id, "sent"), f"{index}:r", 1)

    def finish(self, job_id: str, entry: str, index: int, result: dict[str, Any], ttl_ms: int | None = None) -> bool:
        """Stores the result (unless one is already there), counts it and acknowledges the entry, atomically."""
        return self.finish_many(job_id, [(entry, index, result)], ttl_ms)[0]

    def finish_many(self, job_id: str, done: list[tuple[str, int, dict[str, Any]]], ttl_ms: int | None = None) -> list[bool]:
        """`finish` for many items in one round trip (one script: atomic for all of them). Returns, per
        item, whether its result was stored now (False: another worker's was already there)."""
        if not done:
            return []
        keys = [
            self.key(job_id, "meta"),
            self.key(job_id, "res"),
            self.key(job_id, "items"),
            self.key(job_id, "lat"),
            self.open_set,
            self.key(job_id, "sent"),
        ]
        args: list[Any] = [job_id, ttl_ms or self.ttl_ms]
        for entry, index, result in done:
            cost = result.get("cost_usd")
            status = result["status"]
            latency = result.get("latency_ms")
            args += [
                index,
                entry,
                result_json(result),
                status,
                repr(float(cost)) if status == "ok" and cost is not None else "",
                str(latency_bucket(latency)) if latency is not None and result.get("attempts") else "",
            ]
        return [bool(x) for x in self._finish(keys=keys, args=args)]

    def ack(self, job_id: str, entries: list[str]) -> None:
        if entries:
            self.r.xack(self.key(job_id, "items"), GROUP, *entries)

    def cancel(self, job_id: str) -> str:
        status = self._cancel(keys=[self.key(job_id, "meta"), self.open_set], args=[job_id, self.ttl_ms])
        if status is None:
            raise JobNotFound(job_id)
        return status.decode() if isinstance(status, bytes) else str(status)

    def end(self, job_id: str, status: str) -> None:
        """Marks a job terminal (native mode, or failed) and renews every key's TTL from now."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(self.key(job_id, "meta"), mapping={"status": status, "finished_at": int(time.time() * 1000)})
        pipe.srem(self.open_set, job_id)
        for key in self.keys(job_id):
            pipe.pexpire(key, self.ttl_ms)
        pipe.execute()

    def store_results(self, job_id: str, results: list[tuple[int, dict[str, Any]]]) -> None:
        """Native mode: results written in bulk (first writer wins), with the counters."""
        meta_key = self.key(job_id, "meta")
        pipe = self.r.pipeline(transaction=False)
        for index, result in results:
            pipe.hsetnx(self.key(job_id, "res"), str(index), result_json(result))
        written = pipe.execute()
        pipe = self.r.pipeline(transaction=False)
        for (_index, result), fresh in zip(results, written, strict=True):
            if not fresh:
                continue
            pipe.hincrby(meta_key, "done", 1)
            pipe.hincrby(meta_key, result["status"], 1)
            if result["status"] == "ok":
                if result.get("cost_usd") is None:
                    pipe.hincrby(meta_key, "cost_unknown", 1)
                else:
                    pipe.hincrbyfloat(meta_key, "cost", result["cost_usd"])
        pipe.execute()


def result_json(result: dict[str, Any]) -> str:
    """A result as stored: JSON that Redis (UTF-8) always takes, whatever the reply held (a lone
    surrogate or NUL that got past the gateway layer is replaced, never the reason a write fails)."""
    return carriable(json.dumps(result, ensure_ascii=False, separators=(",", ":")))


def percentile(histogram: dict[int, int], pct: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(pct / 100 * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(LAT_BASE ** (bucket + 0.5), 1)
    return None
