from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

import services
from gateway.config import parse_dify_files_url
from gateway.wire.file_fetch import FetchError, fetch_file
from jobs.inputs import MAX_INPUT_BYTES, JobInputError, JobItem, parse_file, parse_prompts
from jobs.service import JobError, submit
from specs.job_spec import JobSpec
from specs.params import number_param, text_param
from tools.correlation import caller_identity
from tools.outputs import text_messages, variable_messages
from tools.reporting import ToolInputError, reported_errors
from tools.support import gateway_client, gateway_config

MAX_TTL_HOURS = 24 * 30


def job_ttl_seconds(credentials: dict[str, Any]) -> int:
    """The administrator's `job_ttl_hours` credential (default 72 h, 1 h to 30 days)."""
    hours = number_param(credentials or {}, "job_ttl_hours", default=72, minimum=1, maximum=MAX_TTL_HOURS)
    return int(hours * 3600)


def download(upload: Any, credentials: dict[str, Any]) -> bytes:
    """The `file` parameter's bytes. Never File.blob: it fetches any address, unbounded (gateway.wire.file_fetch)."""
    try:
        return fetch_file(getattr(upload, "url", None), files_origin=parse_dify_files_url(credentials.get("dify_files_url")),
                          max_bytes=MAX_INPUT_BYTES)
    except FetchError as exc:
        raise ToolInputError(f"'file' could not be read: {exc}") from None


def job_items(params: dict[str, Any], credentials: dict[str, Any]) -> tuple[list[JobItem], bool]:
    """The items from the `file` parameter (JSONL, CSV or XLSX) or from `prompts`; True when they are JSON."""
    upload = params.get("file")
    try:
        if upload is not None and not isinstance(upload, str | dict):
            # Passed straight in: parse_file holds the only reference, so the bytes go once the items exist.
            items = parse_file(
                download(upload, credentials),
                str(getattr(upload, "filename", "") or getattr(upload, "extension", "") or ""),
                prompt_column=text_param(params, "prompt_column", max_chars=200).strip() or "prompt",
                id_column=text_param(params, "id_column", max_chars=200).strip() or "id",
            )
            return items, True
        if str(params.get("prompts") or "").strip():
            return parse_prompts(params.get("prompts"))
    except JobInputError as exc:
        raise ToolInputError(str(exc)) from None
    raise ToolInputError("give 'prompts' (a JSON array or one prompt per line) or a 'file' (JSONL, CSV or XLSX)")


def accepted_text(out: dict[str, Any]) -> str:
    cost = out.get("cost_estimate_usd")
    return (
        f"Job {out['job_id']} accepted: {out['items']} items, mode {out['mode']}"
        + (f", estimated cost {cost:.6f} USD" if cost is not None else "")
        + (f" (over the job budget of {out['budget_usd']:.6f} USD)" if out.get("estimate_exceeds_budget") else "")
        + ". Poll it with batch_status; read it with batch_results."
    )


class BatchSubmitTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = self.runtime.credentials
        config = gateway_config(credentials)
        ttl = job_ttl_seconds(credentials)
        items, json_format = job_items(tool_parameters, credentials)
        client = gateway_client(credentials)
        spec = JobSpec.parse(tool_parameters, client.prices, first_prompt=items[0].prompt)
        try:
            out = submit(services.current().jobs, config, items, json_format, spec, ttl, caller_identity(self))
        except JobError as exc:
            raise ToolInputError(str(exc)) from None
        yield from text_messages(self, accepted_text(out))
        yield self.create_json_message(out)
        yield from variable_messages(self, out)
