from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from gateway import InBandStreamError, StreamCompleted, StreamInterruptedError, TextDelta
from gateway.models import ReasoningDelta
from gateway.spend.budget import BudgetExceeded
from specs.chat_spec import ChatToolSpec
from tools.outputs import text_messages, variable_messages
from tools.reporting import ids_suffix, reported_errors
from tools.spend import SPEND_VARIABLES, budget_refusal_output, call_options
from tools.support import gateway_client

VARIABLES = (
    "model", "finish_reason", "ttft_ms", "tokens_per_second", "usage", "cost_usd", "attempts", "interrupted", "error", "warnings",
    *SPEND_VARIABLES, "correlation_id", "gateway_request_id",
)


class StreamChatTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        client = gateway_client(self.runtime.credentials)
        spec = ChatToolSpec.parse(tool_parameters, client.prices, streaming=True)
        request, routing = spec.chat.request(default_model=client.config.default_model, prices=client.prices)
        options = call_options(self, client, spec.spend)
        # Reasoning stays out of the answer stream; with stream_reasoning it streams live as the
        # `reasoning` variable (a stream variable a chatflow Answer can show), never inside `text`.
        stream_reasoning = spec.stream_reasoning
        streamed_reasoning = False
        try:
            for item in client.stream_chat(request, options):
                if isinstance(item, TextDelta):
                    # Text messages are the node's `text`: a chatflow Answer that references it types live.
                    yield from text_messages(self, item.text)
                elif isinstance(item, ReasoningDelta):
                    if stream_reasoning:
                        streamed_reasoning = True
                        yield self.create_stream_variable_message("reasoning", item.text)
                elif isinstance(item, StreamCompleted):
                    result = item.result
                    result.routing = routing
                    output = result.to_dict()
                    output["tokens_per_second"] = tokens_per_second(
                        result.usage.completion_tokens, result.latency_ms, result.ttft_ms
                    )
                    output["error"] = ""
        except BudgetExceeded as exc:
            output = {**budget_refusal_output(exc, request), "interrupted": False, "error": ""}
        except (StreamInterruptedError, InBandStreamError) as exc:
            # Not a success: the partial text (already streamed) is kept and the workflow can branch on `interrupted`.
            partial = exc.partial_result
            output = partial.to_dict() if partial is not None else {
                "model": request.model, "attempts": exc.attempts, "warnings": [], "reasoning": "", "cache": "bypass",
                "cost_saved_usd": 0.0, "budget_exceeded": False,
            }
            output.update(interrupted=True, error=str(exc) + ids_suffix(options.correlation_id, exc.request_id))
            output["gateway_request_id"] = output.get("gateway_request_id") or exc.request_id
        output["correlation_id"] = options.correlation_id
        output.pop("text", None)
        yield self.create_json_message(output)
        variables = {name: output.get(name) for name in VARIABLES}
        # With stream_reasoning, `reasoning` was already sent piece by piece as the stream variable.
        yield from variable_messages(self, variables, sent_already=("reasoning",) if streamed_reasoning else ())


def tokens_per_second(completion_tokens: int, latency_ms: float, ttft_ms: float | None) -> float | None:
    """Generation speed after the first token (time to first token is reported separately)."""
    if not completion_tokens or ttft_ms is None:
        return None
    generating = (latency_ms - ttft_ms) / 1000
    return round(completion_tokens / generating, 1) if generating > 0 else None
