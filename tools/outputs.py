"""Tool outputs as messages the Dify API accepts, whatever their size.

The Dify API refuses a variable named `text`, `json` or `files` (the tool node's built-in outputs)
and, before langgenius/dify PR #30082, any variable whose value is `None`; the daemon drops the
plugin for a stdout line of 5 MiB or more. A workflow's If/Else fails on a variable that is missing
("Variable [...] not found") before it looks at the operator, and an Answer prints a missing
variable's selector as text. So:

- replies go out as text messages (the node's `text`), cut into pieces that each fit one line;
- every variable the tool's YAML `output_schema` declares is sent on every successful run, with its
  declared type: a value that is not known goes out as that type's empty value ("", 0, false, [], {}),
  and where 0 could be mistaken for a measurement a boolean says whether it is one (`cost_known`,
  `ttft_known`); null is never sent;
- a string variable too large for one message goes out as stream-variable chunks, which Dify joins;
- JSON messages are kept under the same budget by their callers (`split_results`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Collection, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import yaml

# Budget for one message's payload. The protocol line adds the session envelope (a few hundred bytes)
# and pydantic's encoding may differ slightly from json.dumps: 1 MiB of margin under the 5 MiB limit.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# The most one character can take once JSON-encoded (a control character becomes \u00XX).
_WORST_BYTES_PER_CHAR = 6
MAX_CHUNK_CHARS = MAX_MESSAGE_BYTES // _WORST_BYTES_PER_CHAR
RESERVED_NAMES = frozenset({"text", "json", "files"})
# The empty value of each JSON type: what an unknown value becomes, so a variable is never missing.
EMPTY_VALUES: dict[str, Any] = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}
# Flags that say whether a number is known, by the number they describe: sent wherever the tool
# declares both. A price of 0 (a cache hit, a free model) is real; "no known price" is cost_known false.
KNOWN_FLAGS: dict[str, str] = {
    "cost_known": "cost_usd",
    "total_cost_known": "total_cost_usd",
    "cost_estimate_known": "cost_estimate_usd",
    "ttft_known": "ttft_ms",
}


class MessageFactory(Protocol):
    """The part of `dify_plugin.Tool` that builds messages."""

    def create_text_message(self, text: str) -> Any: ...
    def create_json_message(self, json: Mapping[str, Any]) -> Any: ...
    def create_variable_message(self, variable_name: str, variable_value: Any) -> Any: ...
    def create_stream_variable_message(self, variable_name: str, variable_value: str) -> Any: ...


def encoded_size(value: Any) -> int:
    """Bytes `value` takes in a protocol line (UTF-8 JSON, control characters escaped)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def text_pieces(text: str, max_chars: int = MAX_CHUNK_CHARS) -> Iterator[str]:
    """`text` in pieces that each fit one message even if every character needed escaping."""
    for start in range(0, len(text), max_chars):
        yield text[start : start + max_chars]


def text_messages(tool: MessageFactory, text: str) -> Iterator[Any]:
    """The node's `text` output: joined by Dify, streamed chunk by chunk to a chatflow Answer."""
    for piece in text_pieces(text):
        yield tool.create_text_message(piece)


@cache
def _schema_of_file(yaml_path: str) -> dict[str, Any]:
    path = Path(yaml_path)
    if not path.is_file():
        return {}
    return dict((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("output_schema", {}).get("properties") or {})


def declared_outputs(tool: object) -> dict[str, Any]:
    """The `output_schema` properties of `tool`'s YAML (the file beside its module); {} for an undeclared tool."""
    invoke = getattr(type(tool), "_invoke", None)
    if invoke is None:
        return {}
    # The file of `_invoke` itself: the SDK loads tool modules from their files without registering them
    # in sys.modules, so the class cannot name its file; the (unwrapped) function's code always can.
    return _schema_of_file(str(Path(inspect.unwrap(invoke).__code__.co_filename).with_suffix(".yaml")))


def complete_outputs(outputs: Mapping[str, Any], declared: Mapping[str, Any], *, sent_already: Collection[str] = ()) -> dict[str, Any]:
    """`outputs` with every declared variable present and typed: the `*_known` flags set from the values
    they describe, then each missing or None value replaced by its declared type's empty value.
    `sent_already` names variables the tool has streamed itself (they are not repeated)."""
    completed = dict(outputs)
    for flag, source in KNOWN_FLAGS.items():
        if flag in declared and source in declared and flag not in completed:
            completed[flag] = completed.get(source) is not None
    for name, spec in declared.items():
        if name in sent_already:
            continue
        if completed.get(name) is None:
            empty = EMPTY_VALUES.get(str(spec.get("type")))
            completed[name] = empty.copy() if isinstance(empty, list | dict) else empty
    return completed


def variable_messages(tool: MessageFactory, outputs: Mapping[str, Any], *, sent_already: Collection[str] = ()) -> Iterator[Any]:
    """One variable per declared output (see `complete_outputs`) and per other output with a value; a
    string too large for one message is streamed in chunks."""
    for name, value in complete_outputs(outputs, declared_outputs(tool), sent_already=sent_already).items():
        if name in RESERVED_NAMES:
            raise ValueError(f"output {name!r} is one of the tool node's built-in outputs; Dify refuses it as a variable")
        if value is None or name in sent_already:
            continue  # null is refused by Dify before PR #30082: an undeclared output without a value is left out
        if isinstance(value, str) and len(value) > MAX_CHUNK_CHARS:
            for piece in text_pieces(value):
                yield tool.create_stream_variable_message(name, piece)
            continue
        if encoded_size(value) > MAX_MESSAGE_BYTES:
            raise ValueError(f"output {name!r} is too large for one protocol message; split it before it gets here")
        yield tool.create_variable_message(name, value)


def split_results(results: list[dict[str, Any]], budget: int = MAX_MESSAGE_BYTES) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(the `results` variable, the JSON message parts that carry every result in full).

    When every result fits one message, the variable is the full list and there is one part. Otherwise
    the variable keeps every entry with its `text` shortened (`text_truncated: true`) to fit, and the
    full entries are spread over as many parts as needed, in order; an entry whose text alone is too
    large is repeated with consecutive pieces of its text (`text_continued: true` on all but the last).
    """
    if encoded_size(results) <= budget:
        return results, [results]
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for entry in _pieces_of_entries(results, budget):
        entry_size = encoded_size(entry) + 1
        if parts[-1] and size + entry_size > budget:
            parts.append([])
            size = 0
        parts[-1].append(entry)
        size += entry_size
    return _shortened(results, budget), parts


def _pieces_of_entries(results: list[dict[str, Any]], budget: int) -> Iterator[dict[str, Any]]:
    for entry in results:
        text = entry.get("text") or ""
        if encoded_size(entry) <= budget // 2:
            yield entry
            continue
        pieces = list(text_pieces(text, max(1, (budget // 2 - encoded_size({**entry, "text": ""})) // _WORST_BYTES_PER_CHAR)))
        for number, piece in enumerate(pieces, 1):
            yield {**entry, "text": piece, "text_continued": number < len(pieces)}


def _shortened(results: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    without_text = [{**entry, "text": "", "text_truncated": bool(entry.get("text"))} for entry in results]
    room = budget - encoded_size(without_text)
    if room < 0:  # even without replies the entries are too large: their error texts are cut as well
        without_text = [{**entry, "error": (entry.get("error") or "")[:200]} for entry in without_text]
        room = max(0, budget - encoded_size(without_text))
    keep = room // max(1, len(results)) // _WORST_BYTES_PER_CHAR
    return [
        {**short, "text": (entry.get("text") or "")[:keep], "text_truncated": len(entry.get("text") or "") > keep}
        for entry, short in zip(results, without_text, strict=True)
    ]
