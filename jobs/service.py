"""What the four job tools do, without Dify: submit, status, results (page, files, failed items), cancel.
Each takes the process's job engine (`services.current().jobs` in the plugin) first.

Who sees a job: its keys are under the workspace's scope (`gateway.state.keys`), so another workspace's store
has no such job; and its meta names the app that submitted it (a digest of the app id), so with
`jobs_visible_to: app` (the default) another app of the workspace is told exactly what an id that never
existed is told, and nothing changes. `jobs_visible_to: workspace` lets every app of the workspace in.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis
import yaml

from gateway import GatewayClient, GatewayConfig, GatewayError, Usage
from gateway.call.native_batch import NativeBatchClient, batch_line
from gateway.errors import Redactor, clean_reply
from gateway.spend.budget import Identity, _id
from gateway.state.redis_connection import describe_redis_error
from jobs.inputs import JobItem
from jobs.queue import JobEngine
from jobs.result_files import CSV_COLUMNS, MAX_FILE_BYTES, csv_row, file_line, file_name, mime_type
from jobs.spend_cap import JOB_BUDGET_NAME, budget_key, policy_settings
from jobs.store import CANCELLED, COMPLETED, FAILED, RUNNING, TERMINAL, Job, JobNotFound, JobStore, job_settings, percentile
from jobs.worker import build_request
from specs.job_spec import MODES, JobSpec

PRICES_FILE = Path(__file__).resolve().parent.parent / "gateway" / "data" / "prices.yaml"
ASSUMED_COMPLETION_TOKENS = 256
NATIVE_MIN_HOURS = 24.0
WORKERS, NATIVE, AUTO_MODE = MODES  # the words of batch_submit's `mode`, as the spec reads them


class JobError(Exception):
    """What to fix, for the workflow."""


@lru_cache(maxsize=1)
def batch_discount() -> float | None:
    """The price factor of the gateway's Batch API (`batch_discount` in gateway/data/prices.yaml)."""
    data = yaml.safe_load(PRICES_FILE.read_text(encoding="utf-8"))
    value = data.get("batch_discount") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) and 0 < value <= 1 else None


def _store(engine: JobEngine, config: GatewayConfig, ttl_seconds: int | None = None) -> JobStore:
    if not config.redis_url:
        raise JobError(
            "batch jobs need the redis_url credential: a job's items, leases and results live in Redis so that every "
            "plugin process can work on it and nothing is lost when one stops. Set redis_url in the plugin's "
            "authorization (every Dify deployment runs a Redis, e.g. redis://:password@redis:6379/3), or use "
            "batch_chat for up to 1000 prompts in one call"
        )
    try:
        return engine.register(config, ttl_seconds)
    except Exception as exc:  # a malformed URL: the credential is what to fix
        raise JobError(f"redis_url cannot be used: {type(exc).__name__}") from None


def app_owner(identity: Identity) -> str:
    """What a job's meta keeps of the app that submitted it: a digest of its Dify app id, never the id
    (the same digest the app's budget counters use; `-` when Dify sent none)."""
    return _id(identity.app_id)


def not_found(config: GatewayConfig, job_id: str) -> str:
    """The one answer for a job the caller may not see, whether it never existed, expired, or belongs to
    another workspace or app: the same text in every case, so a job id proves nothing about a job."""
    who = "the workspace" if config.jobs_visible_to == "workspace" else "the app"
    return (
        f"no job {job_id} here: check the job_id batch_submit returned. A job is visible only to {who} that submitted it "
        "(with the same gateway credentials), and it expires job_ttl_hours after it ends"
    )


def _redis_reported[**P, R](tool: Callable[P, R]) -> Callable[P, R]:
    """A Redis that stops answering (or refuses) mid-call becomes a JobError naming redis_url and saying
    what happens to the job meanwhile, never an internal error. Generators are covered while they run.
    The tool's first two arguments are the engine and the gateway config."""

    def told(engine: JobEngine, config: GatewayConfig, exc: Exception) -> JobError:
        where = describe_redis_error(exc, engine.store(config.redis_url, config.keys).r)
        if tool.__name__ == "submit":
            after = "No job was started: submit again once Redis answers."
        else:
            after = (
                "The job's items and results stay in Redis: ask again once it answers. Plugin processes working on the job "
                "keep their items meanwhile and write their results when it is back."
            )
        return JobError(f"redis_url: {where}. {after}")

    if inspect.isgeneratorfunction(tool):

        @functools.wraps(tool)
        def generator(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                yield from tool(*args, **kwargs)  # type: ignore[misc]
            except redis.RedisError as exc:
                raise told(args[0], args[1], exc) from None  # type: ignore[arg-type]

        return generator  # type: ignore[return-value]

    @functools.wraps(tool)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return tool(*args, **kwargs)
        except redis.RedisError as exc:
            raise told(args[0], args[1], exc) from None  # type: ignore[arg-type]

    return call


def _owned(store: JobStore, config: GatewayConfig, job_id: str, caller: Identity) -> tuple[Job, dict[str, str]]:
    job_id = (job_id or "").strip()
    if not job_id or len(job_id) > 64 or not job_id.isalnum():
        raise JobError(f"'job_id' must be the job_id batch_submit returned (32 letters and digits), got {job_id[:70]!r}")
    try:
        meta = store.meta(job_id)
    except JobNotFound:
        raise JobError(not_found(config, job_id)) from None
    visible = (
        meta.get("owner_scope") == store.names.scope
        and meta["base_url"] == config.base_url
        and meta["key_digest"] == config.key_digest
        and (config.jobs_visible_to == "workspace" or meta.get("owner_app") == app_owner(caller))
    )
    if not visible:
        raise JobError(not_found(config, job_id))
    return store.job(job_id, meta), meta


def estimate_cost(items: list[JobItem], spec: JobSpec, client: GatewayClient, factor: float = 1.0) -> tuple[float | None, list[str]]:
    """Prompt tokens by a character count (about 4 per token), completion at max_tokens or an assumed 256;
    each item priced at the model it goes to (`JobSpec.model_for`: `auto` routed by its prompt)."""
    tokens: dict[str, list[int]] = {}
    default_model, prices = client.config.default_model, client.prices
    for item in items:
        model = spec.model_for(item, default_model=default_model, prices=prices)
        prompt_tokens = (len(item.prompt) + len(spec.system_prompt_for(item))) // 4 + 8
        completion = item.max_tokens or spec.max_tokens or ASSUMED_COMPLETION_TOKENS
        entry = tokens.setdefault(model, [0, 0])
        entry[0] += prompt_tokens
        entry[1] += completion
    total = 0.0
    warnings = []
    for model, (prompt, completion) in tokens.items():
        cost = prices.cost(model, Usage(prompt_tokens=prompt, completion_tokens=completion))
        if cost is None:
            warnings.append(f"no known price for model {model!r}: the estimate leaves it out")
            continue
        total += cost.total_usd
    basis = "prompt tokens estimated from characters; completion at max_tokens" + (
        "" if spec.max_tokens else f" or an assumed {ASSUMED_COMPLETION_TOKENS} tokens"
    )
    warnings.append(f"cost estimate: {basis}")
    return (round(total * factor, 6) if len(warnings) == 1 or total else None), warnings


@_redis_reported
def submit(
    engine: JobEngine, config: GatewayConfig, items: list[JobItem], json_format: bool, spec: JobSpec, ttl_seconds: int,
    identity: Identity | None = None,
) -> dict[str, Any]:
    """A new job of `items` run as `spec` says, stored with the spec as it is. `identity`: the submitter
    (Dify app and user), for the app and user budgets and who may see the job."""
    identity = identity or Identity()
    store = _store(engine, config, ttl_seconds)
    client = engine.gateway.client(config)
    for item in items[:1]:  # a request the client refuses to build is refused here, not by every item
        spec.request_for(item, default_model=client.config.default_model, prices=client.prices)
    warnings: list[str] = []
    budget = policy_settings(spec.budget_under(config.budgets), identity)
    mode, native = _choose_mode(config, spec, budget, warnings)
    factor = (batch_discount() or 1.0) if mode == NATIVE else 1.0
    estimate, estimate_warnings = estimate_cost(items, spec, client, factor)
    warnings.extend(estimate_warnings)
    job_limit = budget.get("job") if budget else None
    if job_limit is not None and estimate is not None and estimate > job_limit:
        warnings.append(
            f"the cost estimate {estimate:.6f} USD is over the job budget of {job_limit:.6f} USD: items whose worst-case cost no longer "
            "fits are not run (not_run, error_code budget_exceeded) and come back in failed_items"
        )
    settings = job_settings(spec, timeout_seconds=config.timeout_seconds, max_retries=config.max_retries, budget=budget)
    extra: dict[str, Any] = {"json_format": int(json_format)}
    if mode == NATIVE:
        assert native is not None
        extra.update(_start_native(native, config, settings, items, client))
    elif native is not None:
        native.close()
    job_id = store.create(
        items,
        base_url=config.base_url,
        key_digest=config.key_digest,
        settings=settings,
        mode=mode,
        owner_app=app_owner(identity),
        extra=extra,
    )
    if job_limit is not None:  # the job's counter lives as long as the job (INCRBY keeps the TTL)
        store.r.set(store.names.budget(budget_key(job_id)), 0, px=store.ttl_ms, nx=True)
    out: dict[str, Any] = {
        "job_id": job_id,
        "items": len(items),
        "mode": mode,
        "status": RUNNING,
        "cost_estimate_usd": estimate,
        "warnings": warnings,
    }
    if mode == NATIVE:
        out["native_batch_id"] = extra["native_batch_id"]
    if job_limit is not None:
        out["budget_usd"] = job_limit
        if estimate is not None:
            out["estimate_exceeds_budget"] = estimate > job_limit
    return out


def _choose_mode(
    config: GatewayConfig, spec: JobSpec, budget: dict[str, Any] | None, warnings: list[str]
) -> tuple[str, NativeBatchClient | None]:
    """The mode the job runs in (workers or native; auto decided here), and the Batch API client when it
    was asked (the caller closes it). Says why in `warnings` when auto chose the workers."""
    mode = spec.mode
    if budget is not None and mode == NATIVE:
        raise JobError(
            "mode native: the gateway's Batch API runs every item at once, so a budget cannot stop items once it is spent; "
            "use mode workers (or auto) with a budget, or leave the budgets out"
        )
    if budget is not None and mode == AUTO_MODE:
        mode = WORKERS
        warnings.append("mode auto: a budget applies, so the job runs on the plugin's workers (each item is reserved against it before it is sent)")
    if mode not in (NATIVE, AUTO_MODE):
        return mode, None
    native = NativeBatchClient(config)
    has_batches = native.supported(timeout=min(15.0, config.timeout_seconds))
    if mode == NATIVE and not has_batches:
        native.close()
        raise JobError(f"mode native: the gateway at {config.base_url} does not serve /batches (OpenAI Batch API); use mode workers or auto")
    if mode == AUTO_MODE:
        fits = spec.deadline_hours == 0 or spec.deadline_hours >= NATIVE_MIN_HOURS
        mode = NATIVE if has_batches and fits else WORKERS
        if not has_batches:
            warnings.append("mode auto: the gateway has no Batch API; the job runs on the plugin's workers")
        elif not fits:
            warnings.append(
                f"mode auto: the Batch API may take up to {NATIVE_MIN_HOURS:.0f} h, past deadline_hours; the job runs on the plugin's workers"
            )
    return mode, native


def _start_native(
    native: NativeBatchClient, config: GatewayConfig, settings: dict[str, Any], items: list[JobItem], client: GatewayClient
) -> dict[str, Any]:
    """Uploads every item's request (built from the job's spec as stored) and creates the gateway's batch;
    what the job's meta keeps of it."""
    job_view = Job("native", config.base_url, config.key_digest, settings, len(items), NATIVE)
    content = b"".join(batch_line(str(item.index), build_request(job_view, item, client).payload()) for item in items)
    try:
        file_id = native.upload(content, "holysheep-job.jsonl")
        batch = native.create(file_id, metadata={"source": "holysheep-dify-plugin"})
    finally:
        native.close()
    return {"native_batch_id": batch.id, "native_input_file_id": file_id, "native_status": batch.status}


@_redis_reported
def status(engine: JobEngine, config: GatewayConfig, job_id: str, caller: Identity, *, work_seconds: float = 0.0) -> dict[str, Any]:
    store = _store(engine, config)
    job, meta = _owned(store, config, job_id, caller)
    warnings: list[str] = []
    if job.mode == NATIVE and meta["status"] == RUNNING:
        warnings += _poll_native(store, config, job, meta, engine.gateway.client(config))
        meta = store.meta(job.id)
    elif meta["status"] == RUNNING and work_seconds > 0:
        engine.work_for(config, job.id, work_seconds)
        meta = store.meta(job.id)
    return _status_view(store, job, meta, warnings)


def _status_view(store: JobStore, job: Job, meta: dict[str, str], warnings: list[str]) -> dict[str, Any]:
    total, done = int(meta["total"]), int(meta.get("done", 0))
    ok, error, not_run = int(meta.get("ok", 0)), int(meta.get("error", 0)), int(meta.get("not_run", 0))
    state = meta["status"]
    pending = total - done
    in_flight = store.in_flight(job.id) if state == RUNNING and job.mode == WORKERS else 0
    first, last = int(meta.get("first_at", 0) or 0), int(meta.get("last_at", 0) or 0)
    created = int(meta.get("created_at", 0) or 0)
    elapsed_ms = (int(meta.get("finished_at", 0) or 0) or int(time.time() * 1000)) - created
    rate = round(done / ((last - first) / 1000), 2) if done > 1 and last > first else None
    eta = round(pending / rate, 1) if rate and state == RUNNING else (0.0 if state in TERMINAL else None)
    histogram = store.latency_histogram(job.id)
    cost = None if int(meta.get("cost_unknown", 0) or 0) else round(float(meta.get("cost", 0) or 0), 8)
    if cost is None:
        warnings.append(f"{meta.get('cost_unknown')} succeeded items have a model with no known price: cost_usd left out")
    out: dict[str, Any] = {
        "job_id": job.id,
        "status": state,
        "finished": state in TERMINAL,
        "mode": job.mode,
        "total": total,
        "done": done,
        "succeeded": ok,
        "failed": error + not_run + (pending if state in TERMINAL else 0),
        "counts": {
            "ok": ok,
            "error": error,
            "not_run": not_run + (pending if state in TERMINAL else 0),
            "pending": 0 if state in TERMINAL else pending - in_flight,
            "in_flight": in_flight,
        },
        "progress": round(done / total, 4) if total else 1.0,
        "cost_usd": cost,
        "requests_per_second": rate,
        "eta_seconds": eta,
        "elapsed_seconds": round(elapsed_ms / 1000, 1),
        "latency_p50_ms": percentile(histogram, 50),
        "latency_p95_ms": percentile(histogram, 95),
        "latency_p99_ms": percentile(histogram, 99),
        "warnings": warnings,
    }
    if job.mode == NATIVE:
        out["native_batch_id"] = meta.get("native_batch_id", "")
        out["native_status"] = meta.get("native_status", "")
    limit = (job.settings.get("budget") or {}).get(JOB_BUDGET_NAME)
    if limit is not None:
        spent = store.r.get(store.names.budget(budget_key(job.id)))
        out["budget_usd"] = limit
        out["budget_spent_usd"] = round(int(spent or 0) / 1e9, 9)  # what ran, plus what items in flight hold reserved
    return out


def _poll_native(store: JobStore, config: GatewayConfig, job: Job, meta: dict[str, str], client: GatewayClient) -> list[str]:
    native = NativeBatchClient(config)
    try:
        batch = native.retrieve(meta["native_batch_id"])
        store.set_fields(job.id, native_status=batch.status)
        if not batch.terminal:
            return []
        results: dict[int, dict[str, Any]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                for index, result in _native_results(native.content(file_id), job, config, client):
                    results.setdefault(index, result)
    except GatewayError as exc:
        return [f"the gateway's Batch API did not answer this time ({exc}); asking again on the next status call"]
    finally:
        native.close()
    missing_status = "error" if batch.status == "completed" else "not_run"
    for index in range(job.total):
        if index not in results:
            results[index] = {
                "id": "",
                "status": missing_status,
                "text": "",
                "error": f"no result for this item in the gateway's batch (batch status {batch.status})",
                "error_code": f"batch_{batch.status}",
                "usage": None,
                "cost_usd": None,
                "latency_ms": None,
                "attempts": 0 if missing_status == "not_run" else 1,
                "model": "",
                "warnings": [],
            }
    ids = {}
    for chunk in store.pages(job.id, job.total):
        ids.update({item.index: item.id for item, _ in chunk})
    ordered = [(index, {**result, "id": ids.get(index, result["id"])}) for index, result in sorted(results.items())]
    for start in range(0, len(ordered), 1000):
        store.store_results(job.id, ordered[start : start + 1000])
    store.end(job.id, COMPLETED if batch.status == "completed" else (CANCELLED if batch.status == "cancelled" else FAILED))
    return []


def _native_results(content: bytes, job: Job, config: GatewayConfig, client: GatewayClient) -> Iterator[tuple[int, dict[str, Any]]]:
    factor = batch_discount()
    redact = Redactor([config.api_key])  # the batch output file is where these replies enter: as chat replies do
    for line in content.splitlines():
        try:
            data = json.loads(line)
            index = int(data["custom_id"])
        except (ValueError, KeyError, TypeError):
            continue
        if not 0 <= index < job.total:
            continue
        response = data.get("response") if isinstance(data.get("response"), dict) else {}
        body = response.get("body") if isinstance(response.get("body"), dict) else {}
        error = data.get("error") or body.get("error")
        base = {"id": "", "error": "", "error_code": "", "usage": None, "cost_usd": None, "latency_ms": None, "attempts": 1, "warnings": []}
        if response.get("status_code") == 200 and not error:
            try:
                text = body["choices"][0]["message"].get("content") or ""
            except (KeyError, IndexError, TypeError, AttributeError):
                text = None
            if isinstance(text, str):
                text = clean_reply(text, redact)
                usage = Usage.from_openai(body.get("usage")) or Usage()
                model = clean_reply(str(body.get("model") or "")[:200], redact)
                cost = client.prices.cost(model, usage)
                usd = round(cost.total_usd * factor, 10) if cost is not None and factor is not None else None
                warnings = [] if factor is not None else ["no batch_discount in the price table: cost_usd left out"]
                yield index, {**base, "status": "ok", "text": text, "usage": usage.to_dict(), "cost_usd": usd, "model": model, "warnings": warnings}
                continue
        message = error.get("message") if isinstance(error, dict) else str(error or f"HTTP {response.get('status_code')}")
        yield (
            index,
            {
                **base,
                "status": "error",
                "error": clean_reply(str(message)[:2000], redact),
                "error_code": "batch_item_failed",
                "model": clean_reply(str(body.get("model") or "")[:200], redact),
            },
        )


@_redis_reported
def results_page(
    engine: JobEngine, config: GatewayConfig, job_id: str, caller: Identity, offset: int, limit: int
) -> tuple[Job, dict[str, str], list[dict[str, Any]]]:
    store = _store(engine, config)
    job, meta = _owned(store, config, job_id, caller)
    items = store.items(job.id, offset, limit) if offset < job.total else []
    terminal = meta["status"] in TERMINAL
    out = []
    for item, result in zip(items, store.results(job.id, [i.index for i in items]), strict=True):
        if result is None:
            result = {
                "id": item.id,
                "status": "not_run" if terminal else "pending",
                "text": "",
                "error": "not run: the job was " + meta["status"] if terminal else "",
                "error_code": meta["status"] if terminal else "",
                "attempts": 0,
            }
        out.append({"index": item.index, **result})
    return job, meta, out


@_redis_reported
def result_files(engine: JobEngine, config: GatewayConfig, job_id: str, caller: Identity, kinds: tuple[str, ...]) -> Iterator[tuple[str, str, bytes]]:
    """(filename, mime type, content) of the whole job's results, in input order, each file at most
    MAX_FILE_BYTES (a job too large for one file is cut into numbered parts)."""
    store = _store(engine, config)
    job, meta = _owned(store, config, job_id, caller)
    terminal = meta["status"] in TERMINAL
    stem = f"job-{job.id[:12]}-results"
    for kind in kinds:
        parts: list[bytes] = []
        size = 0
        header = csv_row(CSV_COLUMNS) if kind == "csv" else b""
        number = 1
        for chunk in store.pages(job.id, job.total):
            for item, result in chunk:
                line = file_line(kind, item, result, terminal, meta["status"])
                if size + len(line) > MAX_FILE_BYTES - len(header) and parts:
                    yield file_name(stem, kind, number), mime_type(kind), header + b"".join(parts)
                    number += 1
                    parts, size = [], 0
                parts.append(line)
                size += len(line)
        yield file_name(stem, kind, number if number > 1 else 0), mime_type(kind), header + b"".join(parts)


@_redis_reported
def failed_items(engine: JobEngine, config: GatewayConfig, job_id: str, caller: Identity) -> tuple[str, int]:
    """The inputs that did not succeed, as `prompts` input for a new job (or batch_chat), and how many."""
    store = _store(engine, config)
    job, meta = _owned(store, config, job_id, caller)
    json_format = meta.get("json_format", "1") == "1"
    failed: list[JobItem] = []
    for chunk in store.pages(job.id, job.total):
        failed.extend(item for item, result in chunk if result is None or result.get("status") != "ok")
    if json_format:
        return "[" + ",".join(item.to_json() for item in failed) + "]", len(failed)
    return "\n".join(item.prompt for item in failed), len(failed)


@_redis_reported
def cancel(engine: JobEngine, config: GatewayConfig, job_id: str, caller: Identity) -> dict[str, Any]:
    store = _store(engine, config)
    job, meta = _owned(store, config, job_id, caller)
    warnings: list[str] = []
    if job.mode == NATIVE and meta["status"] == RUNNING:
        native = NativeBatchClient(config)
        try:
            native.cancel(meta["native_batch_id"])
        except GatewayError as exc:
            warnings.append(f"the gateway did not confirm cancelling its batch: {exc}")
        finally:
            native.close()
    previous = meta["status"]
    state = store.cancel(job.id)
    view = _status_view(store, job, store.meta(job.id), warnings)
    view["cancelled"] = previous == RUNNING and state == CANCELLED
    if previous in TERMINAL:
        warnings.append(f"the job had already {previous}: nothing to cancel")
    return view

