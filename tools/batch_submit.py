from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

import services
from gateway.config import parse_dify_files_url
from gateway.file_fetch import FetchError, fetch_file
from jobs.inputs import MAX_INPUT_BYTES, JobInputError, parse_file, parse_prompts
from jobs.service import JobError, Settings, submit
from tools.outputs import text_messages, variable_messages
from tools.support import (
    ToolInputError,
    budget_policy,
    caller_identity,
    chat_request,
    choice_param,
    gateway_client,
    gateway_config,
    number_param,
    reported_errors,
    response_format_param,
    text_param,
)

MAX_TTL_HOURS = 24 * 30


def job_ttl_seconds(credentials: dict[str, Any]) -> int:
    """The administrator's `job_ttl_hours` credential (default 72 h, 1 h to 30 days)."""
    hours = number_param(credentials or {}, "job_ttl_hours", default=72, minimum=1, maximum=MAX_TTL_HOURS)
    return int(hours * 3600)


def download(upload: Any, credentials: dict[str, Any]) -> bytes:
    """The `file` parameter's bytes. Never File.blob: it fetches any address, unbounded (gateway.file_fetch)."""
    try:
        return fetch_file(getattr(upload, "url", None), files_origin=parse_dify_files_url(credentials.get("dify_files_url")),
                          max_bytes=MAX_INPUT_BYTES)
    except FetchError as exc:
        raise ToolInputError(f"'file' could not be read: {exc}") from None


class BatchSubmitTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = self.runtime.credentials
        config = gateway_config(credentials)
        ttl = job_ttl_seconds(credentials)
        upload = tool_parameters.get("file")
        try:
            if upload is not None and not isinstance(upload, str | dict):
                # Passed straight in: parse_file holds the only reference, so the bytes go once the items exist.
                items = parse_file(
                    download(upload, credentials),
                    str(getattr(upload, "filename", "") or getattr(upload, "extension", "") or ""),
                    prompt_column=text_param(tool_parameters, "prompt_column", max_chars=200).strip() or "prompt",
                    id_column=text_param(tool_parameters, "id_column", max_chars=200).strip() or "id",
                )
                json_format = True
            elif str(tool_parameters.get("prompts") or "").strip():
                items, json_format = parse_prompts(tool_parameters.get("prompts"))
            else:
                raise ToolInputError("give 'prompts' (a JSON array or one prompt per line) or a 'file' (JSONL, CSV or XLSX)")
        except JobInputError as exc:
            raise ToolInputError(str(exc)) from None
        client = gateway_client(credentials)
        request, _routing = chat_request(tool_parameters, client, prompt=items[0].prompt)  # checks every shared parameter
        custom = text_param(tool_parameters, "custom_model", max_chars=200).strip()
        model = custom or str(tool_parameters.get("model") or "").strip() or "default"
        system_prompt = text_param(tool_parameters, "system_prompt")
        response_format = response_format_param(tool_parameters)
        if response_format is not None and "json" not in system_prompt.lower():
            system_prompt = (system_prompt + "\n\n" if system_prompt else "") + "Respond with a JSON object only."
        settings = Settings(
            request={
                "model": model,
                "system_prompt": system_prompt,
                "temperature": request.temperature,
                "top_p": request.top_p,
                "max_tokens": request.max_tokens,
                "seed": request.seed,
                "stop": request.stop,
                "response_format": response_format,
            },
            concurrency=number_param(tool_parameters, "concurrency", default=10, minimum=1, maximum=100, integer=True),
            rpm_limit=number_param(tool_parameters, "rpm_limit", default=0, minimum=0, maximum=1_000_000, integer=True),
            tpm_limit=number_param(tool_parameters, "tpm_limit", default=0, minimum=0, maximum=1_000_000_000, integer=True),
            lease_seconds=number_param(tool_parameters, "lease_seconds", default=60, minimum=2, maximum=3600, integer=True),
            mode=choice_param(tool_parameters, "mode", ("workers", "native", "auto"), "workers"),
            deadline_hours=number_param(tool_parameters, "deadline_hours", default=0, minimum=0, maximum=24 * 365),
            budget=budget_policy(tool_parameters, client, batch="batch_budget_usd"),
            identity=caller_identity(self),
        )
        try:
            out = submit(services.current().jobs, config, items, json_format, settings, ttl)
        except JobError as exc:
            raise ToolInputError(str(exc)) from None
        cost = out.get("cost_estimate_usd")
        yield from text_messages(
            self,
            f"Job {out['job_id']} accepted: {out['items']} items, mode {out['mode']}"
            + (f", estimated cost {cost:.6f} USD" if cost is not None else "")
            + (f" (over the job budget of {out['budget_usd']:.6f} USD)" if out.get("estimate_exceeds_budget") else "")
            + ". Poll it with batch_status; read it with batch_results.",
        )
        yield self.create_json_message(out)
        yield from variable_messages(self, out)
