"""The simulator itself, over plain HTTP: endpoints, framing, faults and the control API."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from simulator import DEFAULT_API_KEY, SimulatorProcess, SimulatorServer
from simulator.server import sample_for_schema, stream_pieces


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {DEFAULT_API_KEY}"
        yield session


def chat(sim: SimulatorProcess, http: requests.Session, prompt: str, **extra: Any) -> requests.Response:
    body = {"model": "deepseek-v3.2", "messages": [{"role": "user", "content": prompt}], **extra}
    return http.post(f"{sim.base_url}/chat/completions", json=body, timeout=10)


def sse_events(raw: bytes, eol: str = "\n") -> list[str]:
    """The data payloads of an SSE body (single-line data fields are enough for these tests)."""
    text = raw.decode("utf-8")
    out = []
    for block in text.split(eol + eol):
        data = [line[5:].lstrip(" ") for line in block.split(eol) if line.startswith("data:")]
        if data:
            out.append("\n".join(data))
    return out


def stream_text(events: list[str]) -> str:
    text = ""
    for event in events:
        if event == "[DONE]":
            continue
        for choice in json.loads(event)["choices"]:
            text += choice["delta"].get("content") or ""
    return text


def test_models_need_the_key(sim: SimulatorProcess, http: requests.Session) -> None:
    listing = http.get(f"{sim.base_url}/models", timeout=5)
    assert listing.status_code == 200
    assert "deepseek-v3.2" in [m["id"] for m in listing.json()["data"]]
    anonymous = requests.get(f"{sim.base_url}/models", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "invalid_api_key"
    wrong = requests.get(f"{sim.base_url}/models", headers={"Authorization": "Bearer sk-abcdefgh12345"}, timeout=5)
    assert wrong.json()["error"]["message"] == "Incorrect API key provided: sk-...2345"


def test_unknown_paths_are_404(sim: SimulatorProcess, http: requests.Session) -> None:
    assert http.get(f"{sim.root_url}/models", timeout=5).status_code == 404
    doubled = http.post(f"{sim.base_url}/v1/chat/completions", json={}, timeout=5)
    assert doubled.status_code == 404 and "Not found" in doubled.json()["error"]["message"]


def test_reply_text_and_usage(sim: SimulatorProcess, http: requests.Session) -> None:
    response = chat(sim, http, "hello there [[sim: cached=3]]")
    assert response.status_code == 200 and response.headers["x-request-id"].startswith("req-")
    data = response.json()
    assert data["choices"][0]["message"]["content"] == "[deepseek-v3.2] You said: hello there"
    assert data["choices"][0]["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert usage["prompt_tokens_details"]["cached_tokens"] == 3


def test_bad_requests(sim: SimulatorProcess, http: requests.Session) -> None:
    assert chat(sim, http, "x", model="nope").json()["error"]["code"] == "model_not_found"
    assert http.post(f"{sim.base_url}/chat/completions", data=b"{oops", timeout=5).status_code == 400
    empty = http.post(f"{sim.base_url}/chat/completions", json={"model": "gpt-4.1", "messages": []}, timeout=5)
    assert empty.status_code == 400


def test_max_tokens_truncates_with_length(sim: SimulatorProcess, http: requests.Session) -> None:
    choice = chat(sim, http, "a fairly long prompt that will not fit", max_tokens=2).json()["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["message"]["content"]) == 8


def test_stream_framing_and_usage_chunk(sim: SimulatorProcess, http: requests.Session) -> None:
    response = chat(sim, http, "stream this please", stream=True, stream_options={"include_usage": True})
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = sse_events(response.content)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert stream_text(events) == "[deepseek-v3.2] You said: stream this please"
    no_usage = sse_events(chat(sim, http, "stream this please", stream=True).content)
    assert all("usage" not in json.loads(e) for e in no_usage[:-1])


def test_429_twice_then_200_counted_by_prompt(sim: SimulatorProcess, http: requests.Session) -> None:
    prompt = "busy [[sim: 429x2, retry_after_ms=20]]"
    first, second, third = (chat(sim, http, prompt) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert first.headers["retry-after-ms"] == "20"
    assert "429" in first.json()["error"]["message"]
    stats = sim.stats()
    assert stats["chat_requests_by_prompt"][prompt] == 3
    assert stats["responses_by_status"] == {"429": 2, "200": 1}


def test_header_and_global_faults(sim: SimulatorProcess, http: requests.Session) -> None:
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    headed = http.post(f"{sim.base_url}/chat/completions", json=body, headers={"X-Sim-Fault": "503x1, retry_after=2"}, timeout=5)
    assert headed.status_code == 503 and headed.headers["Retry-After"] == "2"
    sim.configure(fault="html")
    page = http.get(f"{sim.base_url}/models", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html"
    sim.configure(fault="echo_key")
    assert DEFAULT_API_KEY in chat(sim, http, "hi").json()["error"]["message"]


def test_reset_before_resets_the_connection(sim: SimulatorProcess, http: requests.Session) -> None:
    prompt = "reset [[sim: reset_beforex1]]"
    with pytest.raises(requests.ConnectionError):
        chat(sim, http, prompt)
    assert chat(sim, http, prompt).status_code == 200


def test_crlf_framing_uses_crlf(sim: SimulatorProcess, http: requests.Session) -> None:
    raw = chat(sim, http, "line ends [[sim: crlf]]", stream=True).content
    assert b"\r\n\r\n" in raw and raw.endswith(b"data: [DONE]\r\n\r\n")
    assert stream_text(sse_events(raw, "\r\n")) == "[deepseek-v3.2] You said: line ends"


def test_split_utf8_still_decodes(sim: SimulatorProcess, http: requests.Session) -> None:
    raw = chat(sim, http, "multibyte [[sim: split_utf8]]", stream=True).content
    assert stream_text(sse_events(raw)).endswith("café 🙂 中文")


@pytest.mark.parametrize("fault", ["cut", "inband_error"])
def test_truncated_streams_have_no_done(sim: SimulatorProcess, http: requests.Session, fault: str) -> None:
    raw = chat(sim, http, f"one two three four five six seven eight nine [[sim: {fault}]]", stream=True).content
    assert b"[DONE]" not in raw and b'"finish_reason": "stop"' not in raw
    assert (b"upstream overloaded" in raw) == (fault == "inband_error")


def test_rpm_limit_produces_429(sim: SimulatorProcess, http: requests.Session) -> None:
    sim.configure(rpm_limit=60)  # a burst of one request
    assert chat(sim, http, "first").status_code == 200
    limited = chat(sim, http, "second")
    assert limited.status_code == 429 and int(limited.headers["retry-after-ms"]) > 0
    assert sim.stats()["rate_limited"] == 1


def test_reset_clears_stats_and_config(sim: SimulatorProcess, http: requests.Session) -> None:
    sim.configure(fault="500")
    assert chat(sim, http, "x").status_code == 500
    sim.reset()
    stats = sim.stats()
    assert stats["requests_by_path"] == {} and stats["chat_requests_by_prompt"] == {} and stats["received"] == []
    assert chat(sim, http, "x").status_code == 200


def test_script_replies_in_order(sim: SimulatorProcess, http: requests.Session) -> None:
    sim.script(["first reply", "second reply"])
    texts = [chat(sim, http, "anything").json()["choices"][0]["message"]["content"] for _ in range(3)]
    assert texts == ["first reply", "second reply", "[deepseek-v3.2] You said: anything"]


def test_json_schema_answer_validates(sim: SimulatorProcess, http: requests.Session) -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "score": {"type": "integer"},
            "ratio": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "inner": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
        "required": ["answer", "score"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    data = json.loads(chat(sim, http, "rate it", response_format=fmt).json()["choices"][0]["message"]["content"])
    assert data == {"answer": "sample", "score": 1, "ratio": 0.5, "ok": True, "tags": ["a"], "inner": {"n": 1}}
    as_object = chat(sim, http, "obj", response_format={"type": "json_object"}).json()["choices"][0]["message"]
    assert json.loads(as_object["content"]) == {"reply": "[deepseek-v3.2] You said: obj"}
    rejected = chat(sim, http, "no [[sim: reject_json_schema]]", response_format=fmt)
    assert rejected.status_code == 400 and "json_schema" in rejected.json()["error"]["message"]


def test_random_faults_are_reproducible(sim: SimulatorProcess, http: requests.Session) -> None:
    def run() -> list[int]:
        sim.reset()
        sim.configure(fault_rate=0.5, fault_mix=["429", "500"], seed=7)
        return [chat(sim, http, f"r{i}").status_code for i in range(12)]

    first = run()
    assert first == run() and {429, 500} & set(first) and 200 in first


def test_in_process_server_handles_many_concurrent_connections() -> None:
    with SimulatorServer(latency_ms=200) as server:
        body = json.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEFAULT_API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        statuses: list[bytes] = []

        def one() -> None:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
                conn.sendall(head + body)
                statuses.append(conn.recv(64).split(b" ")[1])

        threads = [threading.Thread(target=one) for _ in range(120)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses.count(b"200") == 120
        assert server.stats()["max_concurrency"] > 50


def test_helpers() -> None:
    reply = "  one two  three four five\nsix "
    assert "".join(stream_pieces(reply)) == reply
    assert sample_for_schema({"anyOf": [{"type": "null"}, {"type": "integer"}]}) == 1


def test_a_response_that_outlives_a_reset_is_not_counted_after_it(sim: SimulatorProcess, http: requests.Session) -> None:
    """A test that gives up on a slow answer resets the simulator; the late answer belongs to that test."""
    sim.configure(latency_ms=400)
    late: list[int] = []
    thread = threading.Thread(target=lambda: late.append(chat(sim, http, "slow").status_code))
    thread.start()
    while not sim.stats()["requests_by_path"]:
        pass
    sim.reset()
    thread.join()
    assert late == [200]
    assert sim.stats()["responses_by_status"] == {}


def test_schema_answers_are_those_of_a_sensible_model() -> None:
    from approval.llm import ASSESSMENT_SCHEMA, GUARD_SCHEMA
    from simulator.server import sample_for_schema

    assessment = sample_for_schema(ASSESSMENT_SCHEMA)
    assert assessment["risk_level"] == "low" and assessment["injection_suspected"] is False
    assert assessment["auto_approve_ok"] is True
    assert sample_for_schema(GUARD_SCHEMA)["addresses_reviewer"] is False


def test_lone_surrogate_fault_sends_the_json_escapes_a_gateway_would(sim: SimulatorProcess, http: requests.Session) -> None:
    plain = chat(sim, http, "odd [[sim: lone_surrogate]]")
    assert b"\\ud800" in plain.content and b"\\u0000" in plain.content  # escaped on the wire: valid UTF-8 bytes
    assert plain.json()["choices"][0]["message"]["content"].endswith(" broken \ud800 and nul \x00 end")
    streamed = chat(sim, http, "odd [[sim: lone_surrogate]]", stream=True)
    assert stream_text(sse_events(streamed.content)).endswith(" broken \ud800 and nul \x00 end")


def test_echo_auth_fault_puts_the_authorization_header_in_the_reply(sim: SimulatorProcess, http: requests.Session) -> None:
    text = chat(sim, http, "who am I [[sim: echo_auth]]").json()["choices"][0]["message"]["content"]
    assert f"Authorization: Bearer {DEFAULT_API_KEY}" in text
    assert base64.b64encode(f"Bearer {DEFAULT_API_KEY}".encode()).decode() in text
    assert base64.b64encode(DEFAULT_API_KEY.encode()).decode() in text
    events = sse_events(chat(sim, http, "who am I [[sim: echo_auth]]", stream=True).content)
    pieces = [json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events if e != "[DONE]" and json.loads(e)["choices"]]
    assert DEFAULT_API_KEY in "".join(pieces) and not any(DEFAULT_API_KEY in p for p in pieces)  # split across chunks
