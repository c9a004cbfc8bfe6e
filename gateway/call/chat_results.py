"""From what the gateway answered to a ChatResult: usage (reported, or estimated offline and said so),
cost at the served model's price (or the requested model's, said so; null when unknown, never 0),
and the warnings that go with them."""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.errors import NotOpenAICompatibleError, Redactor, clean_reply
from gateway.models import ChatRequest, ChatResult, Usage
from gateway.spend.pricing import PriceTable
from gateway.spend.tokens import estimate_prompt_tokens, estimate_text_tokens
from gateway.wire.reasoning import reasoning_field, split_content
from gateway.wire.stream_events import StreamState
from gateway.wire.transport import Endpoint, Response
from untrusted import quote


def completion_result(
    data: Any, request: ChatRequest, response: Response, endpoint: Endpoint, *, started: float, attempts: int, prices: PriceTable, notes: list[str]
) -> ChatResult:
    """A non-streamed completion's JSON as a result; `notes` are warnings of the call (shared state)."""
    if isinstance(data, dict) and data.get("error"):
        raise endpoint.error_in_body(response.status, data)
    try:
        choice = data["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise NotOpenAICompatibleError(endpoint.not_openai_message(response, "returned a completion without choices[0].message")) from None
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False)
    # The one place a plain reply enters: the key (and its encodings) redacted, uncarriable characters
    # replaced, before anything reads it (streamed replies: gateway.wire.stream_events).
    redact = endpoint.redact
    text, thought = split_content(clean_reply(text, redact))
    reasoning = clean_reply(reasoning_field(message), redact) or thought
    warnings: list[str] = []
    usage = Usage.from_openai(data.get("usage")) or estimated_usage(request, text, warnings, reasoning)
    warnings.extend(notes)
    return assemble(
        request,
        text=text,
        finish_reason=_request_id(choice.get("finish_reason"), redact),
        served=clean_reply(_served_model(data.get("model"), request.model), redact),
        usage=usage,
        started=started,
        attempts=attempts,
        request_id=_request_id(response.headers.get("x-request-id") or data.get("id"), redact),
        warnings=warnings,
        prices=prices,
        reasoning=reasoning,
    )


def stream_result(
    request: ChatRequest,
    state: StreamState,
    *,
    started: float,
    attempts: int,
    warnings: list[str],
    prices: PriceTable,
    notes: list[str],
    interrupted: bool = False,
) -> ChatResult:
    """What a stream delivered; `interrupted`: it broke off, and this is what it delivered and probably
    cost (the gateway bills generated tokens)."""
    usage = state.usage or estimated_usage(request, state.text, warnings, state.reasoning)
    warnings.extend(notes)
    return assemble(
        request,
        text=state.text,
        finish_reason=None if interrupted else state.finish_reason,
        served=state.model or request.model,
        usage=usage,
        started=started,
        attempts=attempts,
        request_id=state.request_id,
        warnings=warnings,
        prices=prices,
        ttft_ms=state.ttft_ms,
        interrupted=interrupted,
        reasoning=state.reasoning,
    )


def assemble(
    request: ChatRequest,
    *,
    text: str,
    finish_reason: str | None,
    served: str,
    usage: Usage,
    started: float,
    attempts: int,
    request_id: str | None,
    warnings: list[str],
    prices: PriceTable,
    ttft_ms: float | None = None,
    interrupted: bool = False,
    reasoning: str = "",
) -> ChatResult:
    cost = prices.cost(served, usage)
    if cost is None and served != request.model:
        cost = prices.cost(request.model, usage)
        if cost is not None:
            warnings.append(f"no price known for the served model {quote(served)}: cost estimated at {quote(request.model)} prices")
    if cost is None:
        warnings.append(f"no price known for model {quote(served)}: cost_usd is null. Add it with the price_overrides credential.")
    return ChatResult(
        text=text,
        finish_reason=finish_reason,
        model=served,
        requested_model=request.model,
        usage=usage,
        latency_ms=(time.monotonic() - started) * 1000,
        attempts=attempts,
        request_id=request_id,
        cost=cost,
        warnings=warnings,
        ttft_ms=ttft_ms,
        interrupted=interrupted,
        reasoning=reasoning,
    )


def _request_id(value: object, redact: Redactor) -> str | None:
    """An id (or finish reason) the gateway sent, as it may travel; None unless it is text."""
    return clean_reply(value[:200], redact) if isinstance(value, str) and value else None


def _served_model(reported: object, requested: str) -> str:
    """The model the gateway says it served, if it said so as a name."""
    return reported[:200] if isinstance(reported, str) and reported else requested


def estimated_usage(request: ChatRequest, text: str, warnings: list[str], reasoning: str = "") -> Usage:
    prompt = estimate_prompt_tokens(request.messages)
    completion = estimate_text_tokens(text)
    thought = estimate_text_tokens(reasoning).tokens if reasoning else 0
    warnings.append(f"the gateway reported no usage: token counts are estimated ({prompt.method})")
    return Usage(prompt.tokens, completion.tokens + thought, 0, estimated=True, method=prompt.method, reasoning_tokens=thought)
