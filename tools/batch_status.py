import os
from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

import services
from jobs.service import JobError, status
from specs.params import number_param, text_param
from tools.correlation import caller_identity
from tools.outputs import text_messages, variable_messages
from tools.reporting import ToolInputError, reported_errors
from tools.support import gateway_config

# Without a background (serverless), a status call works on the job itself for this long by default.
SERVERLESS_WORK_SECONDS = 20


class BatchStatusTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        config = gateway_config(self.runtime.credentials)
        serverless = os.environ.get("INSTALL_METHOD", "").lower() == "serverless"
        work = number_param(
            tool_parameters, "work_seconds", default=SERVERLESS_WORK_SECONDS if serverless else 0, minimum=0, maximum=min(300, config.timeout_seconds)
        )
        try:
            job_id = text_param(tool_parameters, "job_id", required=True, max_chars=100)
            out = status(services.current().jobs, config, job_id, caller_identity(self), work_seconds=work)
        except JobError as exc:
            raise ToolInputError(str(exc)) from None
        eta = out.get("eta_seconds")
        yield from text_messages(
            self,
            f"Job {out['job_id']}: {out['status']}, {out['done']}/{out['total']} done ({out['succeeded']} ok, {out['failed']} failed)"
            + (f", about {eta:.0f} s left" if eta and not out["finished"] else "")
            + ".",
        )
        yield self.create_json_message(out)
        yield from variable_messages(self, out)
