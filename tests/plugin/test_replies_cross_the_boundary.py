"""Replies through the runtime (python -m main): one odd character fails nothing around it, a gateway echoing
the key leaks it nowhere (outputs, result files, Redis, the log), result files open safely in a spreadsheet
and read back as JSON lines, and a job rides out Redis stopping for a few seconds mid-run."""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from devtools.plugin_process import PluginProcess, ToolOutcome
from simulator.harness import SimulatorProcess
from tests.plugin.test_jobs_runtime import blobs
from tests.private_redis import PrivateRedis, free_port

pytestmark = [pytest.mark.redis, pytest.mark.runtime]

ODD_TAIL = " broken \ufffd and nul \ufffd end"  # the simulator's lone_surrogate suffix, as it must arrive
# A key with the characters that make its encodings differ from it (percent-encoding, base64 alignments).
KEY = "sk-echo/Key+0123=456789abcdefXYZ"


@pytest.fixture
def own_redis() -> Iterator[PrivateRedis]:
    with tempfile.TemporaryDirectory() as data:
        server = PrivateRedis(free_port(), "", data_dir=data)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def creds(sim: SimulatorProcess, redis_url: str, **extra: Any) -> dict[str, Any]:
    return {"api_key": sim.api_key, "base_url": sim.base_url, "default_model": "deepseek-v3.2", "max_retries": "2", "redis_url": redis_url, **extra}


def ran(outcome: ToolOutcome) -> dict[str, Any]:
    assert outcome.ok, outcome.error
    return outcome.variables


def finished(plugin: PluginProcess, credentials: dict[str, Any], job_id: str, timeout: float) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = ran(plugin.run_tool("batch_status", {"job_id": job_id}, credentials, timeout=60))
        if status["finished"]:
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {timeout}s")


def results_with_files(plugin: PluginProcess, credentials: dict[str, Any], job_id: str) -> tuple[ToolOutcome, dict[str, bytes]]:
    outcome = plugin.run_tool("batch_results", {"job_id": job_id, "limit": 1000}, credentials, timeout=60)
    assert outcome.ok, outcome.error
    return outcome, {name: content for name, (_mime, content) in blobs(outcome.messages).items()}


# ----------------------------------------------------------------------------- one odd character


def test_a_lone_surrogate_in_one_reply_fails_nothing_around_it(sim: SimulatorProcess, own_redis: PrivateRedis) -> None:
    credentials = creds(sim, own_redis.url)
    odd = "odd one [[sim: lone_surrogate]]"
    with PluginProcess() as plugin:
        chat = plugin.run_tool("chat", {"prompt": odd}, credentials)
        stream = plugin.run_tool("stream_chat", {"prompt": odd}, credentials)
        batch = ran(plugin.run_tool("batch_chat", {"prompts": json.dumps(["fine 1", odd, "fine 2"])}, credentials))
        job = ran(plugin.run_tool("batch_submit", {"prompts": json.dumps(["row a", odd, "row b"])}, credentials))
        status = finished(plugin, credentials, job["job_id"], 30)
        page, files = results_with_files(plugin, credentials, job["job_id"])
    assert chat.ok, chat.error
    assert chat.text == "[deepseek-v3.2] You said: odd one" + ODD_TAIL
    assert stream.ok, stream.error
    assert stream.text == "[deepseek-v3.2] You said: odd one" + ODD_TAIL
    assert [r["status"] for r in batch["results"]] == ["ok", "ok", "ok"]
    assert batch["results"][1]["text"].endswith(ODD_TAIL) and batch["results"][0]["text"] == "[deepseek-v3.2] You said: fine 1"
    assert status["status"] == "completed" and status["succeeded"] == 3
    assert page.variables["results"][1]["text"].endswith(ODD_TAIL)
    (csv_bytes,) = [v for k, v in files.items() if k.endswith(".csv")]
    (jsonl_bytes,) = [v for k, v in files.items() if k.endswith(".jsonl")]
    assert b"\x00" not in csv_bytes and ODD_TAIL in csv_bytes.decode("utf-8")
    assert json.loads(jsonl_bytes.decode("utf-8").split("\n")[1])["text"].endswith(ODD_TAIL)


# ----------------------------------------------------------------------------- the key echoed


def key_forms(key: str) -> list[str]:
    """How a gateway may echo the key (computed here, not by the code under test)."""
    return [
        key,
        base64.b64encode(f"Bearer {key}".encode()).decode().rstrip("="),
        base64.b64encode(key.encode()).decode().rstrip("="),
        urllib.parse.quote(key, safe=""),
    ]


def leaks(text: str, forms: list[str]) -> list[str]:
    """Forms of which the middle half (a run no redaction boundary can excuse) appears in `text`."""
    return [form for form in forms if form[len(form) // 4 : 3 * len(form) // 4] in text]


def redis_values(client: redis.Redis) -> str:
    """Every key and value in the (private) Redis, as text."""
    out: list[str] = []
    for name in client.scan_iter(count=1000):
        kind = client.type(name).decode()
        if kind == "string":
            values: Any = client.get(name)
        elif kind == "hash":
            values = client.hgetall(name)
        elif kind == "stream":
            values = client.xrange(name)
        elif kind == "set":
            values = client.smembers(name)
        elif kind == "zset":
            values = client.zrange(name, 0, -1, withscores=True)
        elif kind == "list":
            values = client.lrange(name, 0, -1)
        else:
            values = kind
        out.append(f"{name!r} {values!r}")
    return "\n".join(out).replace("\\'", "'")


def test_a_gateway_echoing_the_key_in_replies_leaks_it_nowhere(own_redis: PrivateRedis) -> None:
    forms = key_forms(KEY)
    with SimulatorProcess(api_key=KEY) as sim, PluginProcess() as plugin:
        credentials = creds(sim, own_redis.url)
        echo = "who am I [[sim: echo_auth]]"
        outcomes = [
            plugin.run_tool("chat", {"prompt": echo}, credentials),
            plugin.run_tool("stream_chat", {"prompt": echo}, credentials),
            plugin.run_tool("batch_chat", {"prompts": json.dumps(["fine", echo, "fine too"])}, credentials),
        ]
        job = ran(plugin.run_tool("batch_submit", {"prompts": json.dumps([echo, "plain", f"again {echo}"])}, credentials))
        finished(plugin, credentials, job["job_id"], 30)
        page, files = results_with_files(plugin, credentials, job["job_id"])
        # The gateway's own Batch API: its output file is where those replies enter.
        native = ran(plugin.run_tool("batch_submit", {"prompts": json.dumps([echo, "plain"]), "mode": "native"}, credentials))
        finished(plugin, credentials, native["job_id"], 30)
        native_page, native_files = results_with_files(plugin, credentials, native["job_id"])
        stderr = plugin.stderr_text()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    # The echo arrived (the simulator put every form in the reply) and was redacted where it entered.
    assert "Authorization: Bearer [REDACTED]" in outcomes[0].text
    assert "[REDACTED]" in outcomes[1].text and "[REDACTED]" in outcomes[2].variables["results"][1]["text"]
    assert "[REDACTED]" in page.variables["results"][0]["text"] and "[REDACTED]" in native_page.variables["results"][0]["text"]
    shown = json.dumps([o.messages for o in [*outcomes, page, native_page]], ensure_ascii=False)
    assert not leaks(shown, forms), leaks(shown, forms)
    every_file = [*files.values(), *native_files.values()]
    assert len(every_file) == 4 and not any(leaks(content.decode("utf-8"), forms) for content in every_file)
    stored = redis_values(redis.Redis.from_url(own_redis.url))
    assert job["job_id"] in stored and not leaks(stored, forms), leaks(stored, forms)
    assert not leaks(stderr, forms)


# ----------------------------------------------------------------------------- result files


FORMULAS = ["=1+1", "+SUM(A1:A2)", "-2+3", "@cmd", "\tTAB", "\rCR"]


def test_result_files_open_as_text_in_a_spreadsheet_and_read_back_as_json_lines(sim: SimulatorProcess, own_redis: PrivateRedis) -> None:
    credentials = creds(sim, own_redis.url)
    items = [{"id": formula, "prompt": f"formula {n} [[sim: separators]]"} for n, formula in enumerate(FORMULAS)]
    sim.script(["=HYPERLINK(\"http://x.test\")", "+1", "-1", "@SUM(1)", "\tx", "\rx"])  # replies a spreadsheet would run
    with PluginProcess() as plugin:
        job = ran(plugin.run_tool("batch_submit", {"prompts": json.dumps(items), "concurrency": 1}, credentials))
        finished(plugin, credentials, job["job_id"], 30)
        page, files = results_with_files(plugin, credentials, job["job_id"])
    replies = [r["text"] for r in page.variables["results"]]
    scripted = ["=HYPERLINK(\"http://x.test\")", "+1", "-1", "@SUM(1)", "\tx", "\rx"]
    assert sorted(replies) == sorted(reply + " a\u2028b\u0085c" for reply in scripted)  # `separators`: JSON allows them raw
    (csv_bytes,) = [v for k, v in files.items() if k.endswith(".csv")]
    table = list(csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"), newline="")))
    # Every id and reply that a spreadsheet would run as a formula starts with "'": shown as text.
    assert [row["id"] for row in table] == ["'" + formula for formula in FORMULAS]
    assert [row["text"] for row in table] == ["'" + reply for reply in replies]
    assert all(row["status"] == "ok" for row in table)
    (jsonl_bytes,) = [v for k, v in files.items() if k.endswith(".jsonl")]
    lines = jsonl_bytes.decode("utf-8").splitlines()  # str.splitlines also ends lines at U+2028 and U+0085
    assert [json.loads(line)["id"] for line in lines] == FORMULAS  # JSONL keeps the text as it is
    assert [json.loads(line)["text"] for line in lines] == replies


def test_the_jsonl_reader_reads_what_json_allows_inside_strings(sim: SimulatorProcess, own_redis: PrivateRedis) -> None:
    from devtools.file_server import FileServer

    credentials = creds(sim, own_redis.url)
    content = "".join(json.dumps({"id": f"L{i}", "prompt": f"line {i} a\u2028b\u2029c\u0085d"}, ensure_ascii=False) + "\n" for i in range(3))
    with FileServer() as files, PluginProcess() as plugin:
        credentials = {**credentials, "dify_files_url": files.origin}  # Dify's file server, here on loopback
        parameter = files.parameter(content.encode("utf-8"), "rows.jsonl", "application/jsonl")
        job = ran(plugin.run_tool("batch_submit", {"file": parameter}, credentials))
        assert job["items"] == 3
        finished(plugin, credentials, job["job_id"], 30)
        page, _files = results_with_files(plugin, credentials, job["job_id"])
    assert [r["text"] for r in page.variables["results"]] == [f"[deepseek-v3.2] You said: line {i} a\u2028b\u2029c\u0085d" for i in range(3)]


# ----------------------------------------------------------------------------- Redis stops mid-job


def test_redis_stopped_for_five_seconds_mid_job_costs_seconds_not_a_lease(sim: SimulatorProcess, own_redis: PrivateRedis) -> None:
    sim.configure(latency_ms=150)
    credentials = creds(sim, own_redis.url)
    prompts = [f"blip {i}" for i in range(200)]
    outage_errors: list[str] = []
    with PluginProcess() as first, PluginProcess() as second:
        job = ran(first.run_tool("batch_submit", {"prompts": json.dumps(prompts), "concurrency": 4}, credentials))
        job_id = job["job_id"]
        ran(second.run_tool("batch_status", {"job_id": job_id}, credentials))  # the second process joins
        while ran(second.run_tool("batch_status", {"job_id": job_id}, credentials))["done"] < 30:
            time.sleep(0.05)
        own_redis.stop()
        stopped = time.monotonic()
        others = [
            first.run_tool("batch_results", {"job_id": job_id}, credentials, timeout=30),
            second.run_tool("batch_submit", {"prompts": json.dumps(["later"])}, credentials, timeout=30),
        ]
        while time.monotonic() - stopped < 5:
            outcome = first.run_tool("batch_status", {"job_id": job_id}, credentials, timeout=30)
            assert not outcome.ok, "batch_status answered without Redis"
            outage_errors.append(outcome.error_message)
            time.sleep(0.5)
        own_redis.start()
        back = time.monotonic()
        status = finished(second, credentials, job_id, 40)
        took = time.monotonic() - back
        page = ran(first.run_tool("batch_results", {"job_id": job_id, "limit": 1000, "files": "none"}, credentials, timeout=60))
    assert outage_errors and all("redis_url" in e and "internal error" not in e for e in outage_errors), outage_errors[:2]
    assert "cannot reach Redis" in outage_errors[0] and "ask again once it answers" in outage_errors[0]
    assert all(not o.ok and "redis_url" in o.error_message and "internal error" not in o.error_message for o in others)
    assert "No job was started" in others[1].error_message
    assert took < 20, f"the job took {took:.1f}s after Redis returned: something waited for a lease"
    assert status["status"] == "completed" and status["succeeded"] == 200, status
    results = page["results"]
    assert [r["id"] for r in results] == [str(i) for i in range(200)]
    assert {r["status"] for r in results} == {"ok"} and {r["attempts"] for r in results} == {1}
    seen = sim.stats()["chat_requests_by_prompt"]
    assert all(seen.get(prompt) == 1 for prompt in prompts), "an item was sent twice (or never)"
