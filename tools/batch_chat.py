from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from gateway.call.batch import BatchItem, BatchProgress, BatchReport, BatchSettings, iter_batch
from gateway.models import ChatRequest
from specs.batch_spec import BatchSpec
from tools.correlation import caller_identity, correlation_id, tool_label
from tools.outputs import split_results, variable_messages
from tools.reporting import reported_errors
from tools.support import gateway_client


class BatchChatTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        client = gateway_client(self.runtime.credentials)
        spec = BatchSpec.parse(tool_parameters, client.prices)
        batch = spec.batch
        settings = BatchSettings(
            concurrency=spec.concurrency,
            limits=spec.limits,
            deadline_seconds=client.config.timeout_seconds,
            budget=spec.spend.budget_under(client.config.budgets),
            identity=caller_identity(self),
            cache=spec.spend.cache,
            correlation_id=correlation_id(self),
            tool=tool_label(self),
        )

        def build_request(item: BatchItem) -> ChatRequest:
            request, _routing = spec.chat.for_item(item).request(default_model=client.config.default_model, prices=client.prices)
            return request

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
