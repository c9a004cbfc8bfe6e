"""The golden replay compares what a workflow receives, not what varies from run to run: a changed byte in a
message fails it, a new port, id, time or duration does not."""

from __future__ import annotations

from devtools import golden


def entry(text: str, latency_ms: int = 12, url: str = "http://127.0.0.1:41234/v1") -> dict:
    messages = [
        {"type": "text", "message": {"text": text}},
        {"type": "variable", "message": {"variable_name": "latency_ms", "variable_value": latency_ms}},
        {"url": url},
    ]
    return {"key": "tests/runtime/test_x.py::test_y#abc#1", "messages": golden.normalise(messages), "error": None}


def test_a_changed_message_is_a_difference() -> None:
    recorded = {e["key"]: e for e in [entry("Hello")]}
    assert golden.differences([entry("Hello!")], recorded) == ["tests/runtime/test_x.py::test_y#abc#1"]


def test_ports_ids_and_durations_are_not_differences() -> None:
    recorded = {e["key"]: e for e in [entry("job 3f2a9c1e0b7d4e21 done", latency_ms=12)]}
    again = entry("job 9a8b7c6d5e4f3a21 done", latency_ms=480, url="http://127.0.0.1:50999/v1")
    assert golden.differences([again], recorded) == []


def test_invocations_the_golden_file_does_not_hold_are_not_compared() -> None:
    assert golden.differences([entry("anything")], {}) == []


def test_a_large_answer_is_kept_as_a_fingerprint_and_still_compared_byte_for_byte() -> None:
    big = entry("x" * 10_000)
    kept = golden.stored(big)
    assert "messages" not in kept
    assert golden.differences([big], {kept["key"]: kept}) == []
    assert golden.differences([entry("x" * 9_999 + "y")], {kept["key"]: kept}) == [kept["key"]]


def test_a_test_whose_answer_depends_on_the_clock_is_not_compared() -> None:
    timed = {**entry("cut by the deadline"), "key": "tests/runtime/test_f.py::test_refused_in_bounded_time[gzip]#abc#1"}
    recorded = {timed["key"]: {**timed, "messages": []}}
    assert golden.differences([timed], recorded) == []
