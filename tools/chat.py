from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from tools.outputs import text_messages, variable_messages
from tools.support import chat_request, gateway_client, reported_errors

VARIABLES = ("model", "finish_reason", "usage", "latency_ms", "cost_usd", "attempts", "routing", "warnings")


class ChatTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        client = gateway_client(self.runtime.credentials)
        request, routing = chat_request(tool_parameters, client)
        result = client.chat(request)
        result.routing = routing
        output = result.to_dict()
        yield from text_messages(self, output.pop("text"))  # the reply is the node's built-in `text`
        output["routing"] = output["routing"] or {}
        yield self.create_json_message(output)
        yield from variable_messages(self, {name: output[name] for name in VARIABLES})
