from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

import services
from jobs.service import JobError, failed_items, result_files, results_page
from jobs.store import TERMINAL
from specs.params import choice_param, number_param, text_param
from tools.correlation import caller_identity
from tools.outputs import split_results, text_messages, variable_messages
from tools.reporting import ToolInputError, reported_errors
from tools.support import gateway_config

FILE_KINDS = {"both": ("jsonl", "csv"), "jsonl": ("jsonl",), "csv": ("csv",), "none": ()}


class BatchResultsTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        config = gateway_config(self.runtime.credentials)
        job_id = text_param(tool_parameters, "job_id", required=True, max_chars=100)
        offset = number_param(tool_parameters, "offset", default=0, minimum=0, maximum=10_000_000, integer=True)
        limit = number_param(tool_parameters, "limit", default=100, minimum=1, maximum=1000, integer=True)
        kinds = FILE_KINDS[choice_param(tool_parameters, "files", tuple(FILE_KINDS), "both")]
        caller = caller_identity(self)  # the job shows itself only to the app that submitted it (jobs_visible_to)
        engine = services.current().jobs
        try:
            job, meta, page = results_page(engine, config, job_id, caller, offset, limit)
            finished = meta["status"] in TERMINAL
            # The whole job's failed items: with the first page only, so paging through a large job stays cheap.
            failed_text, failed_count = failed_items(engine, config, job.id, caller) if finished and offset == 0 else ("", None)
            files = list(result_files(engine, config, job.id, caller, kinds)) if finished else []
        except JobError as exc:
            raise ToolInputError(str(exc)) from None
        # Where the next page starts; `total` after the last one, so "offset < total" ends a paging loop.
        next_offset = min(offset + len(page), job.total) if page else max(offset, job.total)
        results_variable, parts = split_results(page)
        summary: dict[str, Any] = {
            "job_id": job.id,
            "status": meta["status"],
            "finished": finished,
            "total": job.total,
            "offset": offset,
            "next_offset": next_offset,
            "failed_count": failed_count,
            "files_attached": [name for name, _, _ in files],
            "warnings": [] if finished else ["the job is still running: result files and failed_items come once it has finished"],
        }
        yield from text_messages(
            self,
            f"Job {job.id} ({meta['status']}): results {offset} to {offset + len(page) - 1} of {job.total}"
            + (f"; {len(files)} result file(s) attached" if files else "")
            + ".",
        )
        yield self.create_json_message({**summary, "results_parts": len(parts)})
        for number, part in enumerate(parts, 1):
            yield self.create_json_message({"results_part": number, "results": part})
        yield from variable_messages(
            self, {"results": results_variable, **summary, "failed_items": failed_text if finished and offset == 0 else None}
        )
        # Files last: the variables are out even where a runtime cannot store a tool's files (graphon's DSL runtime).
        for name, mime, content in files:
            yield self.create_blob_message(content, meta={"mime_type": mime, "filename": name})
