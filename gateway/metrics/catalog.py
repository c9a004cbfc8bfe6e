"""What is measured: metric names and help, histogram buckets, series lifetimes, the fixed label sets and
the mapping of any value onto them, and how a figure's key names its series."""

from __future__ import annotations

import functools
from typing import Any

# Seconds. Whole calls (retries and waits included) and time to first token of streams.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
METRIC_PREFIX = "holysheep_"  # Prometheus metric names (not Redis keys: those are gateway.state.keys)
# A series not written for this long is dropped (Prometheus sees it end; if it comes back it starts
# from 0, which rate() and increase() read as a counter reset).
SERIES_TTL_SECONDS = 7 * 24 * 3600
# Stale series dropped per Redis write at most: keeps every write short; the rest go with the next ones.
PRUNE_PER_WRITE = 200
# Seconds (at most; a tenth of the TTL when that is shorter) between a process's restamps of a series it
# keeps writing, and between its sweeps of a workspace's stale series: most writes do neither.
HOUSEKEEPING_EVERY = 60.0

# name -> (kind, help, label names). Counters are named without `_total` (prometheus_client adds it).
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "requests": (
        "counter", "Gateway calls by model, tool and outcome (ok or the error code); a call includes its retries and fallbacks.",
        ("model", "tool", "outcome"),
    ),
    "attempts": ("counter", "HTTP requests sent to the gateway by model and outcome (ok, http_<status> or an error code).", ("model", "outcome")),
    "retries": ("counter", "Attempts that were followed by another attempt of the same call (retries).", ("model",)),
    "request_duration_seconds": ("histogram", "Wall time of a call, retries and waits included.", ("model", "tool")),
    "time_to_first_token_seconds": ("histogram", "Time to the first streamed token (streaming calls).", ("model",)),
    "tokens": ("counter", "Tokens by model and type (prompt, completion, cached_prompt, reasoning) as the calls reported.", ("model", "type")),
    "cost_usd": (
        "counter", "Estimated cost in USD of priced calls, by model (unpriced calls: holysheep_unpriced_requests_total, never counted as 0).",
        ("model",),
    ),
    "unpriced_requests": ("counter", "Calls that returned usage for a model without a known price (their cost is unknown).", ("model",)),
    "rate_limited": ("counter", "HTTP 429 answers received from the gateway.", ("model",)),
    "rate_limit_wait_seconds": (
        "counter", "Seconds calls waited for a rate limit (configured buckets, the gateway's 429 pause, adaptive pacing).", ("model",),
    ),
    "breaker_transitions": ("counter", "Circuit breaker transitions seen by calls, by model.", ("model", "from_state", "to_state")),
    "breaker_state": ("gauge", "Circuit breaker state per model as last seen by a call (1 for the current state).", ("model", "state")),
    "batch_items": ("counter", "batch_chat items by final status (ok, error, not_run).", ("status",)),
}

# ----------------------------------------------------------------------------- label values
# Fixed sets: a value outside them is counted under `OTHER` (or `CUSTOM_MODEL`), never as itself.
CUSTOM_MODEL = "custom"
OTHER = "other"
# The plugin's tools (tools/*.yaml; `tools.support.tool_label` names them); calls made outside a tool
# (the jobs' workers) are `other`.
TOOLS = frozenset({
    "chat", "stream_chat", "batch_chat", "batch_submit", "batch_status", "batch_results", "batch_cancel",
    "approval_route", "approval_status", "approval_transition", "approval_dead_letters", "approval_llm", "approval_notify",
})
# `GatewayError.code` of every gateway error (a test checks that none is missing), and what the client
# records for a call that ended otherwise.
ERROR_CODES = frozenset({
    "gateway_error", "configuration", "authentication", "bad_request", "not_openai_compatible", "rate_limited",
    "upstream_unavailable", "timeout", "circuit_open", "stream_interrupted", "stream_error",
    "budget_exceeded", "budget_unavailable", "cancelled", "internal",
})
OTHER_ERROR = "other_error"
BREAKER_STATES = ("closed", "open", "half_open")
TOKEN_TYPES = ("prompt", "completion", "cached_prompt", "reasoning")
BATCH_STATUSES = frozenset({"ok", "error", "not_run"})


def outcome_label(outcome: str) -> str:
    """``ok``, a known error code, ``http_<status>`` for a status 100-599, else ``other_error``."""
    if outcome == "ok" or outcome in ERROR_CODES:
        return outcome
    status = outcome.removeprefix("http_")
    if status != outcome and len(status) == 3 and status.isdigit() and 100 <= int(status) <= 599:
        return outcome
    return OTHER_ERROR


def tool_label(tool: str) -> str:
    return tool if tool in TOOLS else OTHER


def state_label(state: str) -> str:
    return state if state in BREAKER_STATES else OTHER


def status_label(status: str) -> str:
    return status if status in BATCH_STATUSES else OTHER


Figures = dict[tuple[Any, ...], float]
Update = tuple[tuple[Any, ...], float]


# Remembered for the keys in use (label values come from fixed sets, so few): a look-up per figure written
# instead of string work.
@functools.lru_cache(maxsize=4096)
def series_of(key: tuple[Any, ...]) -> tuple[tuple[Any, ...], str]:
    """(series, part) of a figure: a histogram's buckets and sum are one series (they expire together,
    so a histogram never loses some buckets and keeps others); part is ``""``, ``sum`` or the bucket."""
    name = key[0]
    if name.endswith(":bucket"):
        return (name.removesuffix(":bucket"), *key[1:-1]), str(key[-1])
    if name.endswith(":sum"):
        return (name.removesuffix(":sum"), *key[1:]), "sum"
    return key, ""
