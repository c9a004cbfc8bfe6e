from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

import services
from jobs.service import JobError, cancel
from specs.params import text_param
from tools.correlation import caller_identity
from tools.outputs import text_messages, variable_messages
from tools.reporting import ToolInputError, reported_errors
from tools.support import gateway_config


class BatchCancelTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        config = gateway_config(self.runtime.credentials)
        try:
            out = cancel(services.current().jobs, config, text_param(tool_parameters, "job_id", required=True, max_chars=100), caller_identity(self))
        except JobError as exc:
            raise ToolInputError(str(exc)) from None
        yield from text_messages(self, f"Job {out['job_id']}: {out['status']}; {out['done']} of {out['total']} items had finished.")
        yield self.create_json_message(out)
        yield from variable_messages(self, out)
