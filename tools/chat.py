from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from gateway.spend.budget import BudgetExceeded
from specs.chat_spec import ChatToolSpec
from tools.outputs import text_messages, variable_messages
from tools.reporting import reported_errors
from tools.spend import SPEND_VARIABLES, budget_refusal_output, call_options
from tools.support import gateway_client

VARIABLES = (
    "model", "finish_reason", "usage", "latency_ms", "cost_usd", "attempts", "routing", "warnings", *SPEND_VARIABLES,
    "correlation_id", "gateway_request_id",
)


class ChatTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        client = gateway_client(self.runtime.credentials)
        spec = ChatToolSpec.parse(tool_parameters, client.prices)
        request, routing = spec.chat.request(default_model=client.config.default_model, prices=client.prices)
        options = call_options(self, client, spec.spend)
        try:
            result = client.chat(request, options)
        except BudgetExceeded as exc:
            # Not sent: an outcome the workflow branches on (budget_exceeded), not an error.
            output = budget_refusal_output(exc, request)
            output["routing"] = routing.to_dict() if routing else {}
            output["correlation_id"] = options.correlation_id
            yield self.create_json_message(output)
            yield from variable_messages(self, {name: output.get(name) for name in VARIABLES})
            return
        result.routing = routing
        output = result.to_dict()
        yield from text_messages(self, output.pop("text"))  # the reply is the node's built-in `text`
        output["routing"] = output["routing"] or {}
        yield self.create_json_message(output)
        yield from variable_messages(self, {name: output.get(name) for name in VARIABLES})
