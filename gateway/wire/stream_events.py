"""From a streamed response to content: SSE bytes -> events (`gateway.wire.sse`) -> chat-completion chunks
-> text deltas, with the stream's model, usage, finish reason and request id gathered on the way.

A stream that breaks off (reset, timeout, deadline, cut before `[DONE]`) or carries an in-band error
raises AttemptFailed: retryable only while no content was delivered (the retry layer decides).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.errors import InBandStreamError, Redactor, StreamInterruptedError, StreamRedactor, clean_reply, gateway_words
from gateway.models import ReasoningDelta, TextDelta, Usage
from gateway.wire.reasoning import ThinkSplitter, reasoning_field
from gateway.wire.sse import SSEDecoder
from gateway.wire.transport import Attempt, AttemptFailed, BodyReadError, Deadline, Response

READ_SIZE = 8192  # read1: what has arrived, up to this, instead of waiting to fill a buffer


@dataclass(slots=True)
class StreamState:
    """What one streamed attempt has gathered so far."""

    text: str = ""
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage | None = None
    request_id: str | None = None
    ttft_ms: float | None = None
    reasoning: str = ""
    splitter: ThinkSplitter = field(default_factory=ThinkSplitter)
    # Content and reasoning pass these on their way in (key redacted even when split across chunks,
    # uncarriable characters replaced); set by read_stream, which knows the key.
    content: StreamRedactor | None = None
    thinking: StreamRedactor | None = None

    def flush(self) -> tuple[str, str]:
        """The content the redactors and the <think> splitter still hold, once the stream has ended."""
        answer = thought = ""
        if self.content is not None:
            answer, thought = self.splitter.feed(self.content.close())
        if self.thinking is not None:
            thought += self.thinking.close()
        closed_answer, closed_thought = self.splitter.close()
        answer, thought = answer + closed_answer, thought + closed_thought
        self.text += answer
        self.reasoning += thought
        return answer, thought


def read_stream(
    response: Response, state: StreamState, deadline: Deadline, started: float, redact: Redactor
) -> Iterator[TextDelta | ReasoningDelta]:
    """Yields the content of `response` as it arrives, gathering the rest on `state`; closes the response."""
    decoder = SSEDecoder()
    state.content, state.thinking = StreamRedactor(redact), StreamRedactor(redact)
    state.request_id = clean_reply(response.headers.get("x-request-id") or "", redact) or None
    done = False
    try:
        while not done:
            if deadline.expired():
                raise AttemptFailed(Attempt(interrupted(state, "the call's deadline passed mid-stream", redact), False))
            chunk = response.read_chunk(deadline, READ_SIZE)
            if not chunk:
                break
            for event in decoder.feed(chunk):
                if event.data.strip() == "[DONE]":
                    done = True
                    break
                delta, thought = apply_event(event.data, state, started, redact)
                if thought:
                    yield ReasoningDelta(thought)
                if delta:
                    yield TextDelta(delta)
        if not done:
            decoder.close()
        answer, thought = state.flush()
        if thought:
            yield ReasoningDelta(thought)
        if answer:
            yield TextDelta(answer)
    except BodyReadError as exc:
        if deadline.expired():
            reason = "the call's deadline passed mid-stream"
        elif exc.timed_out:
            reason = "the read timed out"
        else:
            reason = "the connection was reset or closed"
        raise AttemptFailed(Attempt(interrupted(state, reason, redact), retryable=not state.text)) from None
    finally:
        response.close()
    if not done and state.finish_reason is None:
        reason = "the stream ended without [DONE] or a finish reason"
        raise AttemptFailed(Attempt(interrupted(state, reason, redact), retryable=not state.text))


def interrupted(state: StreamState, reason: str, redact: Redactor) -> StreamInterruptedError:
    state.flush()  # what the redactors held back is part of what was received
    kept = f"; {len(state.text)} characters received before it broke are kept" if state.text else ""
    return StreamInterruptedError(redact(f"stream interrupted: {reason}{kept}"), partial_text=state.text, request_id=state.request_id)


def apply_event(data: str, state: StreamState, started: float, redact: Redactor) -> tuple[str, str]:
    """Folds one event's JSON into `state`; returns its (answer, reasoning) content (choice 0), each ""
    when it has none. A <think> block in the content is reasoning, whatever chunks it is split across."""
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError):
        return "", ""  # a malformed event carries nothing we could use: skipped, as openai-python does
    if not isinstance(chunk, dict):
        return "", ""
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        words = gateway_words(message if isinstance(message, str) else json.dumps(message)[:1000])
        state.flush()
        failure = InBandStreamError(
            redact(f"the gateway reported an error mid-stream: {words}"), partial_text=state.text, request_id=state.request_id
        )
        raise AttemptFailed(Attempt(failure, retryable=not state.text))
    model = chunk.get("model")
    if isinstance(model, str) and model:
        state.model = clean_reply(model[:200], redact)
    if not state.request_id and isinstance(chunk.get("id"), str):
        state.request_id = clean_reply(chunk["id"][:200], redact)
    usage = Usage.from_openai(chunk.get("usage"))
    if usage is not None:
        state.usage = usage  # keep the last non-null usage
    text = thought = ""
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str) and content:
            if state.ttft_ms is None:
                state.ttft_ms = (time.monotonic() - started) * 1000
            passed = state.content.feed(content) if state.content is not None else clean_reply(content, redact)
            answer, inside = state.splitter.feed(passed) if passed else ("", "")
            text += answer
            thought += inside
        field_thought = reasoning_field(delta)
        if field_thought:
            if state.ttft_ms is None:
                state.ttft_ms = (time.monotonic() - started) * 1000
            thought += state.thinking.feed(field_thought) if state.thinking is not None else clean_reply(field_thought, redact)
        if choice.get("finish_reason"):
            finish = choice["finish_reason"]
            state.finish_reason = clean_reply(finish[:100], redact) if isinstance(finish, str) else str(finish)[:100]
    if text or thought:
        state.text += text
        state.reasoning += thought
    return text, thought
