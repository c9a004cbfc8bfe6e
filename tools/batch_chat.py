from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from gateway.call.batch import BatchInputError, BatchItem, BatchProgress, BatchReport, BatchSettings, iter_batch, parse_batch_input
from gateway.call.rate_limits import LimitSettings
from gateway.models import ChatRequest
from tools.outputs import split_results, variable_messages
from tools.support import (
    ToolInputError,
    budget_policy,
    cache_mode,
    caller_identity,
    chat_request,
    correlation_id,
    gateway_client,
    number_param,
    reported_errors,
    tool_label,
)


class BatchChatTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        client = gateway_client(self.runtime.credentials)
        try:
            batch = parse_batch_input(tool_parameters.get("prompts"))
        except BatchInputError as exc:
            raise ToolInputError(str(exc)) from None
        settings = BatchSettings(
            concurrency=number_param(tool_parameters, "concurrency", default=10, minimum=1, maximum=100, integer=True),
            limits=LimitSettings(
                rpm=number_param(tool_parameters, "rpm_limit", default=0, minimum=0, maximum=1_000_000, integer=True),
                tpm=number_param(tool_parameters, "tpm_limit", default=0, minimum=0, maximum=1_000_000_000, integer=True),
            ),
            deadline_seconds=client.config.timeout_seconds,
            budget=budget_policy(tool_parameters, client, batch="batch_budget_usd"),
            identity=caller_identity(self),
            cache=cache_mode(tool_parameters),
            correlation_id=correlation_id(self),
            tool=tool_label(self),
        )

        def build_request(item: BatchItem) -> ChatRequest:
            overrides: dict[str, Any] = {"prompt": item.prompt}
            if item.system_prompt is not None:
                overrides["system_prompt"] = item.system_prompt
            if item.model:
                overrides.update({"model": item.model, "custom_model": "" if item.model in ("auto", "default") else item.model})
            if item.max_tokens is not None:
                overrides["max_tokens"] = item.max_tokens
            request, _routing = chat_request({**tool_parameters, **overrides}, client, prompt=item.prompt)
            return request

        build_request(batch.items[0])  # shared parameters are checked once, before anything is sent
        step = max(1, len(batch.items) // 20)
        report: BatchReport | None = None
        for event in iter_batch(client, batch.items, build_request, settings):
            if isinstance(event, BatchProgress):
                if event.finished % step == 0 or event.finished == event.total:
                    yield self.create_log_message(
                        label=f"batch progress {event.finished}/{event.total}",
                        data={"finished": event.finished, "total": event.total},
                    )
            else:
                report = event
        assert report is not None
        results = [{**r.to_dict(), "text_truncated": False} for r in report.results]
        summary = report.summary()
        summary.pop("http_requests")
        summary["correlation_id"] = settings.correlation_id  # each result's is this id, "-", its index
        summary["warnings"] = report.warnings + [w for w in client.state.warnings() if not any(x.startswith(w) for x in report.warnings)]
        results_variable, parts = split_results(results)
        # The node's `json`: the summary, then every result in full over as many messages as it takes.
        yield self.create_json_message({**summary, "results_parts": len(parts)})
        for number, part in enumerate(parts, 1):
            yield self.create_json_message({"results_part": number, "results": part})
        failed_items = batch.format_items(report.failed_items)
        yield from variable_messages(self, {"results": results_variable, **summary, "failed_items": failed_items})
