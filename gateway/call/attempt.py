"""One attempt: a place in the limits (`gateway.call.limits_step`), one request through the endpoint
(`gateway.wire.transport`), its answer turned into a result (`gateway.call.chat_results`, `gateway.wire.stream_events`).
An attempt is a generator: it yields content (TextDelta, ReasoningDelta) as it arrives, then its outcome
as its last item; a plain attempt yields only the outcome. A failure leaves as AttemptFailed, classified."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from gateway.call.chat_results import completion_result, stream_result
from gateway.call.limits_step import LimitsStep
from gateway.call.options import Call
from gateway.errors import BadRequestError, GatewayError, InBandStreamError, Redactor, StreamInterruptedError
from gateway.models import ChatResult, ReasoningDelta, StreamCompleted, TextDelta
from gateway.spend.pricing import PriceTable
from gateway.wire.stream_events import StreamState, read_stream
from gateway.wire.transport import AttemptFailed, Endpoint, Response


class Attempts:
    """The three kinds of attempt (plain, streamed, model list) over one endpoint. `warnings`: what the
    shared state has to say (Redis down) for each result's notes."""

    __slots__ = ("endpoint", "limits", "prices", "redact", "warnings")

    def __init__(self, endpoint: Endpoint, limits: LimitsStep, prices: PriceTable, warnings: Callable[[], list[str]], redact: Redactor) -> None:
        self.endpoint = endpoint
        self.limits = limits
        self.prices = prices
        self.warnings = warnings
        self.redact = redact

    def plain(self, call: Call) -> Iterator[StreamCompleted]:
        request = call.request
        reservation = self.limits.reserve(call)
        call.attempts += 1
        try:
            response = self.endpoint.send("POST", "/chat/completions", request.payload(), call.deadline, self.limits.observer(call), call.headers)
        except AttemptFailed:
            reservation.settle(0)
            self.limits.release(call)
            raise
        data = self.endpoint.read_json(response, call.deadline)
        result = completion_result(
            data, request, response, self.endpoint, started=call.started, attempts=call.attempts, prices=self.prices, notes=self.warnings()
        )
        reservation.settle(result.usage.total_tokens)
        yield StreamCompleted(result)

    def stream(self, call: Call) -> Iterator[TextDelta | ReasoningDelta | StreamCompleted]:
        request = call.request
        reservation = self.limits.reserve(call)
        call.attempts += 1
        include_usage = call.include_usage
        state = StreamState()
        try:
            payload = request.payload(stream=True, include_usage=include_usage)
            response = self.endpoint.send("POST", "/chat/completions", payload, call.deadline, self.limits.observer(call), call.headers)
            yield from read_stream(response, state, call.deadline, call.started, self.redact)
        except AttemptFailed as failed:
            reservation.settle(0)
            self.limits.release(call)
            error = failed.attempt.error
            if include_usage and not state.text and _refuses_stream_options(error):
                # Some OpenAI-compatible gateways reject stream_options: ask again without it.
                call.include_usage = False
                failed.attempt.resend = True
            elif isinstance(error, StreamInterruptedError | InBandStreamError):
                error.partial_text = state.text
                error.partial_result = self._stream_result(call, state, [], interrupted=True)
            raise
        warnings = [] if include_usage else ["the gateway refused stream_options.include_usage"]
        result = self._stream_result(call, state, warnings)
        reservation.settle(result.usage.total_tokens)
        yield StreamCompleted(result)

    def models(self, call: Call) -> Iterator[tuple[Response, Any]]:
        call.attempts += 1
        response = self.endpoint.send("GET", "/models", None, call.deadline)
        yield response, self.endpoint.read_json(response, call.deadline)

    def _stream_result(self, call: Call, state: StreamState, warnings: list[str], *, interrupted: bool = False) -> ChatResult:
        return stream_result(
            call.request,
            state,
            started=call.started,
            attempts=call.attempts,
            warnings=warnings,
            prices=self.prices,
            notes=self.warnings(),
            interrupted=interrupted,
        )


def _refuses_stream_options(error: GatewayError) -> bool:
    # As a 400/422, or as an in-band error event on a 200 stream, depending on the gateway.
    return isinstance(error, BadRequestError | InBandStreamError) and "stream_options" in error.message
