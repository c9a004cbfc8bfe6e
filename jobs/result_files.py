"""A job's results as files (CSV and JSONL, in input order): what batch_results attaches. Safe to open
in a spreadsheet and to read back line by line."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from gateway.errors import carriable
from jobs.inputs import JobItem

MAX_FILE_BYTES = 8 * 1024 * 1024  # per result file; the Dify API takes at most 10 MiB per file
CSV_COLUMNS = [
    "index",
    "id",
    "status",
    "text",
    "error",
    "error_code",
    "model",
    "attempts",
    "cost_usd",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
]


def file_name(stem: str, kind: str, number: int) -> str:
    return f"{stem}{f'-part{number}' if number else ''}.{kind}"


def mime_type(kind: str) -> str:
    return "text/csv" if kind == "csv" else "application/jsonl"


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection"): such a text
# cell gets a leading "'", which every spreadsheet shows as text. CSV only: JSONL keeps the text as it is.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# JSON allows these raw inside a string, but many line readers (str.splitlines, JavaScript before ES2019)
# end a line at them: the JSONL file carries them escaped.
_LINE_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\u0085": "\\u0085"})


def _csv_cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = carriable(value)  # NUL never written; a lone surrogate cannot be encoded
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_row(values: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_csv_cell(value) for value in values])
    return buffer.getvalue().encode("utf-8")


def jsonl_line(record: dict[str, Any]) -> bytes:
    """One JSON object on one line that any JSON parser and any line reader read back as written."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")).translate(_LINE_SEPARATORS)
    return carriable(text).encode("utf-8") + b"\n"


def file_line(kind: str, item: JobItem, result: dict[str, Any] | None, terminal: bool, state: str) -> bytes:
    if result is None:
        result = {"id": item.id, "status": "not_run" if terminal else "pending", "error": f"not run: the job was {state}" if terminal else ""}
    if kind == "jsonl":
        return jsonl_line({"index": item.index, **result})
    usage = result.get("usage") or {}
    row = [
        item.index,
        item.id,
        result.get("status", ""),
        result.get("text", ""),
        result.get("error", ""),
        result.get("error_code", ""),
        result.get("model", ""),
        result.get("attempts", 0),
        "" if result.get("cost_usd") is None else result["cost_usd"],
        "" if result.get("latency_ms") is None else result["latency_ms"],
        usage.get("prompt_tokens", ""),
        usage.get("completion_tokens", ""),
    ]
    return csv_row(row)
