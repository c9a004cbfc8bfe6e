"""The checks every runtime test applies are the Dify API's: what it refuses, these refuse, and the tool
output helpers never produce a refused message."""

import base64
from typing import Any

import pytest

from devtools.dify_api_rules import MAX_LINE_BYTES, DifyAPIRefusal, MessageRules, check_line
from tools.outputs import MAX_CHUNK_CHARS, encoded_size, split_results, text_messages, variable_messages


def variable(name: str, value: Any, stream: bool = False) -> dict[str, Any]:
    return {"type": "variable", "message": {"variable_name": name, "variable_value": value, "stream": stream}}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (variable("text", "hi"), "The variable name 'text' is reserved."),
        (variable("json", {}), "The variable name 'json' is reserved."),
        (variable("files", []), "The variable name 'files' is reserved."),
        (variable("cost_usd", None), "Only basic types and lists are allowed"),
        (variable("when", object()), "Only basic types and lists are allowed"),
        (variable("chunk", 3, stream=True), "must be a string"),
        ({"type": "json", "message": {"json_object": [1, 2]}}, "'json_object' to be an object"),
        ({"type": "text", "message": {"text": None}}, "string 'text'"),
        ({"type": "log", "message": {"id": "1", "label": "x", "status": "done", "data": {}}}, "log status"),
        ({"type": "telepathy", "message": {}}, "unknown message type"),
    ],
)
def test_messages_the_api_refuses_are_refused_with_its_reason(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(DifyAPIRefusal, match=reason.replace("(", r"\(").replace(".", r"\.")):
        MessageRules().check(message)


def test_messages_the_api_accepts_pass() -> None:
    rules = MessageRules()
    for message in (
        variable("model", "gpt-4.1"),
        variable("usage", {"prompt_tokens": 1, "cached": None}),  # None inside an object is fine
        variable("chunk", "a", stream=True),
        {"type": "json", "message": {"json_object": {"a": None}}},
        {"type": "text", "message": {"text": ""}},
        {"type": "log", "message": {"id": "1", "label": "x", "status": "success", "data": {}}},
    ):
        rules.check(message)
    rules.finish()


def blob_chunk(sequence: int, data: bytes, total: int, end: bool) -> dict[str, Any]:
    body = {"id": "f1", "sequence": sequence, "total_length": total, "blob": base64.b64encode(data).decode(), "end": end}
    return {"type": "blob_chunk", "message": body}


def test_blob_chunks_must_come_in_sequence_small_and_end() -> None:
    rules = MessageRules()
    rules.check(blob_chunk(0, b"a" * 10, 20, False))
    with pytest.raises(DifyAPIRefusal, match="chunk 2 arrived where chunk 1 was due"):
        rules.check(blob_chunk(2, b"b", 20, False))
    with pytest.raises(DifyAPIRefusal, match="8KB"):
        MessageRules().check(blob_chunk(0, b"c" * 9000, 20_000, False))
    unfinished = MessageRules()
    unfinished.check(blob_chunk(0, b"a", 5, False))
    with pytest.raises(DifyAPIRefusal, match="without an end chunk"):
        unfinished.finish()


def test_a_line_of_5_mib_is_refused_and_one_byte_less_is_not() -> None:
    check_line(b"x" * (MAX_LINE_BYTES - 1))
    with pytest.raises(DifyAPIRefusal, match="5242880"):
        check_line(b"x" * MAX_LINE_BYTES)


class Recorder:
    """Builds messages the way dify_plugin.Tool does, as plain dicts."""

    def create_text_message(self, text: str) -> dict[str, Any]:
        return {"type": "text", "message": {"text": text}}

    def create_json_message(self, json: Any) -> dict[str, Any]:
        return {"type": "json", "message": {"json_object": json}}

    def create_variable_message(self, variable_name: str, variable_value: Any) -> dict[str, Any]:
        return variable(variable_name, variable_value)

    def create_stream_variable_message(self, variable_name: str, variable_value: str) -> dict[str, Any]:
        return variable(variable_name, variable_value, stream=True)


def test_outputs_leave_unknown_values_out_and_stream_huge_strings() -> None:
    huge = "\x00" * (MAX_CHUNK_CHARS * 2 + 5)
    messages = list(variable_messages(Recorder(), {"cost_usd": None, "model": "m", "failed_items": huge}))
    rules = MessageRules()
    for message in messages:
        rules.check(message)
        assert encoded_size(message) < MAX_LINE_BYTES
    assert [m["message"]["variable_name"] for m in messages] == ["model"] + ["failed_items"] * 3
    assert "".join(m["message"]["variable_value"] for m in messages[1:]) == huge
    with pytest.raises(ValueError, match="built-in outputs"):
        list(variable_messages(Recorder(), {"text": "reply"}))


def test_text_is_cut_into_pieces_that_join_back() -> None:
    text = "é\x01🙂" * (MAX_CHUNK_CHARS // 2)
    pieces = [m["message"]["text"] for m in text_messages(Recorder(), text)]
    assert len(pieces) > 1 and "".join(pieces) == text
    assert max(encoded_size(piece) for piece in pieces) < MAX_LINE_BYTES


def test_split_results_keeps_every_entry_even_one_larger_than_a_message() -> None:
    budget = 10_000
    results = [{"id": str(n), "text": ("z" * 50_000 if n == 3 else f"reply {n}"), "error": ""} for n in range(40)]
    variable_value, parts = split_results(results, budget)
    assert all(encoded_size(part) <= budget for part in parts) and len(parts) > 2
    joined: list[dict[str, Any]] = []
    for entry in (entry for part in parts for entry in part):
        if joined and joined[-1].get("text_continued"):
            joined[-1] = {**entry, "text": joined[-1]["text"] + entry["text"]}
        else:
            joined.append(entry)
    assert [(e["id"], e["text"]) for e in joined] == [(r["id"], r["text"]) for r in results]
    assert encoded_size(variable_value) <= budget and [e["id"] for e in variable_value] == [r["id"] for r in results]
    assert variable_value[3]["text_truncated"] and results[3]["text"].startswith(variable_value[3]["text"])
