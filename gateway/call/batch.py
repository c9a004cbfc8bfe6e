"""Many chat calls at once with a concurrency cap, every input accounted for, in input order.

Workers are plain `threading` threads: under the Dify runtime (gevent's `patch_all`) they become
greenlets, so parallel I/O is real there too, and outside it they are ordinary threads.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.call.options import CallOptions
from gateway.call.rate_limits import LimitSettings
from gateway.config import MAX_MODEL_CHARS, GatewayConfig, model_name
from gateway.errors import FieldError, GatewayError
from gateway.metrics import MetricsSink
from gateway.models import ChatRequest, ChatResult
from gateway.spend.budget import BatchBudget, BudgetExceeded, BudgetPolicy, Identity
from gateway.wire.transport import Deadline
from untrusted import InputError, check_text, parse_json, quote

MAX_ITEMS = 1000
# Bounds on the `prompts` input: a prompt as long as a chat prompt may be, the whole as JSON at most this.
MAX_INPUT_CHARS = 20_000_000
MAX_INPUT_DEPTH = 4  # an array of objects of plain values
MAX_PROMPT_CHARS = 2_000_000
MAX_ID_CHARS = 200
MAX_ITEM_MAX_TOKENS = 1_000_000
# An item is not started with less time than this left before the batch deadline.
MIN_ITEM_SECONDS = 5.0
ITEM_KEYS = {"id", "prompt", "system_prompt", "model", "max_tokens"}
OK, ERROR, NOT_RUN = "ok", "error", "not_run"


class BatchClient(Protocol):
    """What a batch uses of its client (`gateway.client.GatewayClient`), named here so that the batch, which
    runs many client calls, does not import the client it sits above."""

    @property
    def config(self) -> GatewayConfig: ...
    @property
    def metrics(self) -> MetricsSink: ...
    def pooled(self, concurrency: int) -> AbstractContextManager[None]: ...
    def chat(self, request: ChatRequest, options: CallOptions | None = None) -> ChatResult: ...


class BatchInputError(ValueError):
    """The prompts input is unusable; the message names the problem and the position."""


@dataclass(frozen=True)
class BatchItem:
    index: int
    id: str
    prompt: str
    system_prompt: str | None = None
    model: str | None = None
    max_tokens: int | None = None

    def as_input(self, json_format: bool) -> Any:
        """The item as it can be fed back into `prompts`."""
        if not json_format:
            return self.prompt
        entry: dict[str, Any] = {"id": self.id, "prompt": self.prompt}
        for name in ("system_prompt", "model", "max_tokens"):
            if getattr(self, name) is not None:
                entry[name] = getattr(self, name)
        return entry

    def to_json(self) -> str:
        return json.dumps(self.as_input(True), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, index: int, text: str | bytes) -> BatchItem:
        data = json.loads(text)
        return cls(index, data["id"], data["prompt"], data.get("system_prompt"), data.get("model"), data.get("max_tokens"))


@dataclass(frozen=True)
class BatchInput:
    items: list[BatchItem]
    json_format: bool

    def format_items(self, items: list[BatchItem]) -> str:
        if self.json_format:
            return json.dumps([item.as_input(True) for item in items], ensure_ascii=False)
        return "\n".join(item.prompt for item in items)


def parse_batch_input(raw: object) -> BatchInput:
    """A JSON array of strings or objects (id, prompt, system_prompt, model, max_tokens), or plain
    text with one prompt per line, within batch_chat's limits."""
    return parse_prompts(raw, max_items=MAX_ITEMS, max_prompt_chars=MAX_PROMPT_CHARS, max_input_chars=MAX_INPUT_CHARS)


def parse_prompts(raw: object, *, max_items: int, max_prompt_chars: int, max_input_chars: int, split_hint: str = "per batch") -> BatchInput:
    """`prompts` as items, for batch_chat and for batch jobs (which allow more). JSON is parsed with limits
    (size, nesting); every text must be valid Unicode; a problem is a BatchInputError naming 'prompts'
    (and the item)."""
    if isinstance(raw, list):
        data: Any = raw
        json_format = True
    else:
        text = raw if isinstance(raw, str) else "" if raw is None else str(raw) if isinstance(raw, int | float) else None
        if text is None:
            raise BatchInputError(f"'prompts' must be text (a JSON array or one prompt per line), got {type(raw).__name__}")
        _checked("'prompts'", text, max_input_chars)
        text = text.strip()
        if not text:
            raise BatchInputError("'prompts' is empty: give a JSON array or one prompt per line")
        # JSON when it looks like JSON; "[urgent] call the supplier" on one line is plain text.
        after_bracket = text[1:].lstrip()[:1]  # "" when the text is just "["
        json_format = text[0] == "{" or (
            text[0] == "[" and (after_bracket in '"{[]-' or after_bracket.isdigit() or text.endswith("]"))
        )
        if json_format:
            try:
                data = parse_json(text, max_bytes=max_input_chars, max_depth=MAX_INPUT_DEPTH)
            except InputError as exc:
                raise BatchInputError(f"'prompts' {exc}") from None
            if not isinstance(data, list):
                raise BatchInputError("'prompts' must be a JSON array (of strings or objects), not a single object")
        else:
            data = [line for line in text.splitlines() if line.strip()]
    if not data:
        raise BatchInputError("'prompts' is an empty list: give at least one prompt")
    if len(data) > max_items:
        raise BatchInputError(f"'prompts' has {len(data)} items; at most {max_items} {split_hint}: split it")
    items = [parse_item(f"prompts[{index}]", index, entry, max_prompt_chars=max_prompt_chars) for index, entry in enumerate(data)]
    check_unique_ids(items, lambda item: f"prompts[{item.index}]")
    return BatchInput(items, json_format)


def check_unique_ids(items: list[BatchItem], where: Callable[[BatchItem], str], *, echo: bool = True) -> None:
    """`echo=False` for items read from a downloaded file: the message says where, not what it holds."""
    seen: dict[str, BatchItem] = {}
    for item in items:
        if item.id in seen:
            shown = f"id {quote(item.id)}" if echo else "its id"
            raise BatchInputError(f"{where(item)}: {shown} is used twice (also {where(seen[item.id])})")
        seen[item.id] = item


def _checked(where: str, text: str, max_chars: int) -> str:
    try:
        return check_text(text, max_chars=max_chars)
    except InputError as exc:
        raise BatchInputError(f"{where} {exc}") from None


def parse_item(where: str, index: int, entry: Any, *, max_prompt_chars: int = MAX_PROMPT_CHARS, echo: bool = True) -> BatchItem:
    """One item: a prompt string, or an object with `prompt` and optional id, system_prompt, model and
    max_tokens. `where` names it in a BatchInputError ("prompts[3]", "line 4"). `echo=False` for items
    read from a downloaded file: no message repeats what the file holds."""
    if isinstance(entry, str):
        _checked(where, entry, max_prompt_chars)
        if not entry.strip():
            raise BatchInputError(f"{where} is an empty prompt")
        return BatchItem(index, str(index), entry)
    if not isinstance(entry, dict):
        raise BatchInputError(f"{where} must be a string or an object with 'prompt', got {type(entry).__name__}")
    unknown = [key for key in entry if key not in ITEM_KEYS]
    if unknown:
        if echo:
            shown = "unknown keys " + ", ".join(quote(key, 30) for key in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        else:
            shown = f"{len(unknown)} unknown key{'s' if len(unknown) != 1 else ''}"
        raise BatchInputError(f"{where} has {shown}: allowed are {sorted(ITEM_KEYS)}")
    prompt = entry.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BatchInputError(f"{where} needs a non-empty string 'prompt'")
    _checked(f"{where}.prompt", prompt, max_prompt_chars)
    max_tokens = entry.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_ITEM_MAX_TOKENS
    ):
        raise BatchInputError(f"{where}: 'max_tokens' must be a whole number from 1 to {MAX_ITEM_MAX_TOKENS}")
    for name, limit in (("system_prompt", max_prompt_chars), ("model", MAX_MODEL_CHARS)):
        if entry.get(name) is not None:
            if not isinstance(entry[name], str):
                raise BatchInputError(f"{where}: '{name}' must be a string")
            _checked(f"{where}.{name}", entry[name], limit)
    model = entry.get("model") or None
    if model is not None:
        try:
            model = model_name(model, "model") or None
        except FieldError as exc:
            problem = exc.problem if echo else f"is not a valid model name (at most {MAX_MODEL_CHARS} characters, no control characters)"
            raise BatchInputError(f"{where}.model {problem}") from None
    item_id = entry.get("id", index)
    if isinstance(item_id, bool) or not isinstance(item_id, str | int) or (isinstance(item_id, int) and abs(item_id) > 2**63):
        raise BatchInputError(f"{where}: 'id' must be a string or a number")
    if isinstance(item_id, str):
        _checked(f"{where}.id", item_id, MAX_ID_CHARS)
    return BatchItem(
        index,
        str(item_id),
        prompt,
        system_prompt=entry.get("system_prompt"),
        model=model,
        max_tokens=max_tokens,
    )


@dataclass
class ItemResult:
    id: str
    status: str
    text: str = ""
    error: str = ""
    error_code: str = ""
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    attempts: int = 0
    model: str = ""
    warnings: list[str] = field(default_factory=list)
    reasoning: str = ""
    cache: str = "bypass"
    cost_saved_usd: float | None = 0.0
    correlation_id: str = ""  # the batch's id and the item's index: `<batch id>-<index>`
    gateway_request_id: str = ""  # the gateway's id of the item's (last) request; empty when unknown
    budget_remaining_usd: float | None = field(default=None, repr=False)  # summarised, not an item field
    refusal: dict[str, Any] | None = field(default=None, repr=False)  # a budget's outcome, summarised

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.pop("budget_remaining_usd")
        out.pop("refusal")
        return out


@dataclass
class BatchReport:
    results: list[ItemResult]
    wall_ms: float
    failed_items: list[BatchItem] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Each distinct item warning once, with how many items it concerned."""
        counts = Counter(warning for result in self.results for warning in result.warnings)
        return [warning if n == 1 else f"{warning} ({n} items)" for warning, n in counts.items()]

    @property
    def succeeded(self) -> int:
        return sum(r.status == OK for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.succeeded

    @property
    def total_cost_usd(self) -> float | None:
        """Sum over succeeded items; None when any of them had no known price (never a silent 0)."""
        costs = [r.cost_usd for r in self.results if r.status == OK]
        if any(c is None for c in costs):
            return None
        return round(sum(c for c in costs if c is not None), 10)

    def latency_percentile(self, pct: float) -> float | None:
        values = sorted(r.latency_ms for r in self.results if r.latency_ms is not None and r.attempts > 0)
        if not values:
            return None
        rank = max(0, min(len(values) - 1, round(pct / 100 * len(values) + 0.5) - 1))  # nearest-rank
        return round(values[rank], 1)

    @property
    def requests_per_second(self) -> float:
        finished = sum(r.status != NOT_RUN for r in self.results)
        return round(finished / (self.wall_ms / 1000), 2) if self.wall_ms > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "total_cost_usd": self.total_cost_usd,
            "latency_p50_ms": self.latency_percentile(50),
            "latency_p95_ms": self.latency_percentile(95),
            "latency_p99_ms": self.latency_percentile(99),
            "requests_per_second": self.requests_per_second,
            "wall_ms": round(self.wall_ms, 1),
            "http_requests": sum(r.attempts for r in self.results),
            "cache_hits": sum(r.cache == "hit" for r in self.results),
            "cost_saved_usd": round(sum(r.cost_saved_usd or 0.0 for r in self.results if r.status == OK), 10),
            **self.budget_summary(),
        }

    def budget_summary(self) -> dict[str, Any]:
        """budget_exceeded (and the first refusal's budget, spent, limit, reset) and what is left."""
        refusal = next((r.refusal for r in self.results if r.refusal), None)
        remaining = [r.budget_remaining_usd for r in self.results if r.budget_remaining_usd is not None]
        out: dict[str, Any] = {"budget_exceeded": refusal is not None}
        if refusal:
            out.update({k: v for k, v in refusal.items() if k not in ("budget_exceeded", "budget_reason")})
        out["budget_remaining_usd"] = min(remaining) if remaining else (refusal or {}).get("budget_remaining_usd")
        return out


@dataclass(frozen=True)
class BatchSettings:
    concurrency: int = 10
    limits: LimitSettings = field(default_factory=LimitSettings)
    deadline_seconds: float = 540.0
    budget: BudgetPolicy | None = None  # in force for every item; its `batch` limit is this batch's
    identity: Identity = field(default_factory=Identity)
    cache: str = "auto"
    correlation_id: str = ""  # the batch's; each item's is `<batch id>-<index>`
    tool: str = "batch_chat"


@dataclass(frozen=True)
class BatchProgress:
    finished: int
    total: int
    result: ItemResult


def iter_batch(
    client: BatchClient,
    items: list[BatchItem],
    build_request: Callable[[BatchItem], ChatRequest],
    settings: BatchSettings,
) -> Iterator[BatchProgress | BatchReport]:
    """Runs every item (each at most as often as the retry policy allows), yielding progress as items
    finish, then one BatchReport with one result per item in input order. Items not started before
    the batch deadline are `not_run`."""
    started = time.monotonic()
    batch_deadline = Deadline(settings.deadline_seconds)
    results: list[ItemResult | None] = [None] * len(items)
    options = _shared_options(settings)

    def run_item(item: BatchItem) -> ItemResult:
        item_id = f"{settings.correlation_id}-{item.index}" if settings.correlation_id else ""
        result = _run_item(client, item, build_request, batch_deadline, options, item_id)
        if settings.correlation_id:
            result.correlation_id = f"{settings.correlation_id}-{item.index}"
        return result

    workers = max(1, min(settings.concurrency, len(items)))
    with client.pooled(workers):
        yield from _run_workers(items, results, run_item, workers)
    final = _final_results(items, results, settings.correlation_id)
    with contextlib.suppress(Exception):  # metrics never fail a batch
        client.metrics.record_batch(dict(Counter(r.status for r in final)))
    report = BatchReport(final, (time.monotonic() - started) * 1000)
    report.failed_items = [item for item, result in zip(items, final, strict=True) if result.status != OK]
    yield report


def _shared_options(settings: BatchSettings) -> dict[str, Any]:
    """The call options every item shares: one batch budget for the whole batch."""
    policy = settings.budget
    batch_budget = BatchBudget(policy.batch) if policy is not None and policy.batch is not None else None
    return dict(
        limits=settings.limits, budget=policy, identity=settings.identity, batch_budget=batch_budget, cache=settings.cache, tool=settings.tool
    )


def _run_item(
    client: BatchClient,
    item: BatchItem,
    build_request: Callable[[BatchItem], ChatRequest],
    batch_deadline: Deadline,
    options: dict[str, Any],
    item_id: str,
) -> ItemResult:
    """One item: built, sent under the smaller of the call's and the batch's deadline, and its outcome."""
    if batch_deadline.remaining < MIN_ITEM_SECONDS:
        # Sending now would be cut off by the batch deadline after the gateway had started (and billed) it.
        return ItemResult(item.id, NOT_RUN, error="not started: the batch deadline was about to pass", error_code="deadline")
    try:
        request = build_request(item)
    except (GatewayError, ValueError) as exc:
        return ItemResult(item.id, ERROR, error=str(exc), error_code="bad_request", model=item.model or "")
    call_deadline = Deadline(min(client.config.timeout_seconds, batch_deadline.remaining))
    item_started = time.monotonic()
    try:
        result = client.chat(request, CallOptions(deadline=call_deadline, correlation_id=item_id, **options))
    except BudgetExceeded as exc:
        return ItemResult(
            item.id, NOT_RUN, error=str(exc), error_code=exc.code, attempts=exc.attempts, model=request.model, refusal=exc.outcome()
        )
    except GatewayError as exc:
        return _failed_item(item, request, exc, item_started)
    return _answered_item(item, result)


def _failed_item(item: BatchItem, request: ChatRequest, exc: GatewayError, item_started: float) -> ItemResult:
    """An item the gateway did not answer: `not_run` when nothing was sent, else `error`."""
    return ItemResult(
        item.id,
        NOT_RUN if exc.not_sent and exc.attempts == 0 else ERROR,
        error=str(exc),
        error_code=exc.code,
        latency_ms=round((time.monotonic() - item_started) * 1000, 1),
        attempts=exc.attempts,
        model=request.model,
        gateway_request_id=exc.request_id or "",
    )


def _answered_item(item: BatchItem, result: ChatResult) -> ItemResult:
    return ItemResult(
        item.id,
        OK,
        text=result.text,
        usage=result.usage.to_dict(),
        cost_usd=result.cost_usd,
        latency_ms=round(result.latency_ms, 1),
        attempts=result.attempts,
        model=result.model,
        warnings=list(result.warnings),
        reasoning=result.reasoning,
        cache=result.cache,
        cost_saved_usd=result.cost_saved_usd,
        budget_remaining_usd=(result.budget or {}).get("remaining_usd"),
        gateway_request_id=result.request_id or "",
    )


def _final_results(items: list[BatchItem], results: list[ItemResult | None], correlation_id: str) -> list[ItemResult]:
    """One result per item in input order: an item no worker reached is `not_run`."""
    final = [r if r is not None else ItemResult(items[i].id, NOT_RUN, error="not run", error_code="internal") for i, r in enumerate(results)]
    for index, result in enumerate(final):
        if correlation_id and not result.correlation_id:
            result.correlation_id = f"{correlation_id}-{index}"
    return final


def _run_workers(
    items: list[BatchItem], results: list[ItemResult | None], run_item: Callable[[BatchItem], ItemResult], workers: int
) -> Iterator[BatchProgress]:
    """`workers` threads (greenlets under the Dify runtime) take items in order; yields as each finishes."""
    next_index = iter(range(len(items)))
    take_lock = threading.Lock()
    done = queue.SimpleQueue[int]()

    def worker() -> None:
        while True:
            with take_lock:
                index = next(next_index, None)
            if index is None:
                return
            try:
                results[index] = run_item(items[index])
            except Exception as exc:  # a bug must not lose the item: report it as that item's error
                error = f"internal error: {type(exc).__name__}: {quote(str(exc), 200)}"
                results[index] = ItemResult(items[index].id, ERROR, error=error, error_code="internal")
            finally:
                done.put(index)  # even if the greenlet is killed: the batch must not wait forever

    threads = [threading.Thread(target=worker, daemon=True, name=f"batch-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for finished in range(1, len(items) + 1):
        index = done.get()
        yield BatchProgress(finished, len(items), results[index])  # type: ignore[arg-type]
    for thread in threads:
        thread.join()
