"""Metrics fed by the client chain (over the in-memory transport), the Redis figures, and the exposition as
prometheus_client's own parser reads it."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from gateway import GatewayClient, GatewayConfig
from gateway.call.breaker import BreakerSettings
from gateway.call.retry import RetryPolicy
from gateway.client import CallOptions
from gateway.errors import UpstreamUnavailableError
from gateway.metrics import ERROR_CODES, TOOLS, CallRecord, InProcessMetrics, RedisMetrics, WorkspaceMetrics, exposition, outcome_label
from gateway.models import ChatRequest, StreamCompleted
from gateway.spend.pricing import PriceTable
from gateway.state.shared import InProcessState
from gateway.wire.transport import MemoryTransport, Reply
from tests.gateway.helpers import completion, delta, status, usage_event

KEY = "sk-metrics-test-key-0123456789"


def client_with(
    *replies: Reply, breaker: BreakerSettings | None = None, **credentials: Any
) -> tuple[GatewayClient, MemoryTransport, Any]:
    config = GatewayConfig.from_credentials({"api_key": KEY, "base_url": "http://gateway.test/v1", "max_retries": "2", **credentials})
    transport = MemoryTransport(replies)
    sink = InProcessMetrics()
    client = GatewayClient(
        config,
        state=InProcessState(breaker_settings=breaker),
        retry=RetryPolicy(max_retries=config.max_retries, base_delay=0.001, max_delay=0.002),
        transport=transport,
        metrics=sink,
    )
    return client, transport, client.metrics  # the client's workspace's figures in `sink`


def request(prompt: str = "hi", model: str = "deepseek-v3.2") -> ChatRequest:
    return ChatRequest.from_prompt(prompt, model=model)


def parsed(sink: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(exposition(sink).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def total(figures: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> float:
    return sum(v for labels, v in figures.get(name, []) if all(labels.get(k) == want for k, want in match.items()))


def test_a_success_a_retry_and_a_failure_are_counted_as_they_happened() -> None:
    client, transport, sink = client_with(
        completion("one"),
        status(429, headers={"retry-after-ms": "5"}),
        completion("two"),
        status(503), status(503), status(503),
    )
    options = CallOptions(tool="chat", correlation_id="hs-abc")
    first = client.chat(request(), options)
    second = client.chat(request(), options)
    with pytest.raises(UpstreamUnavailableError):
        client.chat(request(), options)
    figures = parsed(sink)
    assert total(figures, "holysheep_requests_total", tool="chat", outcome="ok") == 2
    assert total(figures, "holysheep_requests_total", tool="chat", outcome="upstream_unavailable") == 1
    assert total(figures, "holysheep_attempts_total") == len(transport.sent) == 6
    assert total(figures, "holysheep_attempts_total", outcome="http_503") == 3
    assert total(figures, "holysheep_attempts_total", outcome="http_429") == total(figures, "holysheep_rate_limited_total") == 1
    assert total(figures, "holysheep_retries_total") == 3
    assert total(figures, "holysheep_rate_limit_wait_seconds_total") == pytest.approx(0.005)
    assert total(figures, "holysheep_tokens_total", type="prompt") == 20
    assert total(figures, "holysheep_tokens_total", type="completion") == 10
    assert total(figures, "holysheep_cost_usd_total", model="deepseek-v3.2") == pytest.approx(first.cost_usd + second.cost_usd, abs=1e-12)
    assert total(figures, "holysheep_request_duration_seconds_count", model="deepseek-v3.2", tool="chat") == 3
    inf = total(figures, "holysheep_request_duration_seconds_bucket", le="+Inf")
    assert inf == 3
    buckets = [v for labels, v in figures["holysheep_request_duration_seconds_bucket"]]
    assert buckets == sorted(buckets)  # cumulative
    assert total(figures, "holysheep_metrics_scope", scope="process") == 1


def test_the_correlation_id_goes_out_as_x_request_id_and_comes_back_in_the_result() -> None:
    client, transport, _ = client_with(status(500), completion("ok"))
    result = client.chat(request(), CallOptions(correlation_id="hs-0123456789abcdef01234567"))
    assert transport.sent_headers == [{"X-Request-Id": "hs-0123456789abcdef01234567"}] * 2
    assert result.correlation_id == "hs-0123456789abcdef01234567" and result.to_dict()["correlation_id"] == result.correlation_id
    assert result.to_dict()["gateway_request_id"] == "cmpl-1"


@pytest.mark.parametrize("unsafe", ["hs-1\r\nX-Evil: 1", "x" * 200, "hs 1"])
def test_an_id_that_is_not_a_plain_token_is_not_sent_as_a_header(unsafe: str) -> None:
    client, transport, _ = client_with(completion("ok"))
    client.chat(request(), CallOptions(correlation_id=unsafe))
    assert transport.sent_headers == [{}]


def test_an_unpriced_model_is_counted_apart_never_as_zero_cost() -> None:
    client, _, sink = client_with(completion("ok", model="mystery-1"))
    result = client.chat(request(model="mystery-1"))
    assert result.cost_usd is None
    figures = parsed(sink)
    assert total(figures, "holysheep_unpriced_requests_total", model="custom") == 1  # not in the price table
    assert not figures.get("holysheep_cost_usd_total")
    assert total(figures, "holysheep_tokens_total", model="custom", type="prompt") == 10
    assert "mystery-1" not in exposition(sink).decode()


def test_a_stream_records_time_to_first_token() -> None:
    client, _, sink = client_with(Reply.events(delta("a"), delta("b", finish="stop"), usage_event()))
    items = list(client.stream_chat(request(), CallOptions(tool="stream_chat")))
    assert isinstance(items[-1], StreamCompleted)
    figures = parsed(sink)
    assert total(figures, "holysheep_time_to_first_token_seconds_count", model="deepseek-v3.2") == 1
    assert total(figures, "holysheep_requests_total", tool="stream_chat", outcome="ok") == 1


def test_breaker_transitions_and_state_are_recorded() -> None:
    settings = BreakerSettings(failure_threshold=2, failure_rate=0.5, window_seconds=30, cooldown_seconds=0.05)
    client, _, sink = client_with(status(503), status(503), completion("back"), breaker=settings, max_retries="0")
    for _ in range(2):
        with pytest.raises(UpstreamUnavailableError):
            client.chat(request())
    with pytest.raises(UpstreamUnavailableError):  # open: refused without sending
        client.chat(request())
    figures = parsed(sink)
    assert total(figures, "holysheep_breaker_transitions_total", from_state="closed", to_state="open") == 1
    assert total(figures, "holysheep_breaker_state", state="open") == 1
    assert total(figures, "holysheep_requests_total", outcome="circuit_open") == 1
    import time

    time.sleep(0.06)
    client.chat(request())  # the half-open probe succeeds
    figures = parsed(sink)
    assert total(figures, "holysheep_breaker_transitions_total", from_state="open", to_state="half_open") == 1
    assert total(figures, "holysheep_breaker_transitions_total", from_state="half_open", to_state="closed") == 1
    assert total(figures, "holysheep_breaker_state", state="closed") == 1 and total(figures, "holysheep_breaker_state", state="open") == 0


def test_the_call_log_line_is_json_with_the_ids_and_redacted() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logging.getLogger("holysheep.calls").addHandler(handler)
    try:
        client, _, _ = client_with(Reply.json({"error": {"message": f"bad key {KEY}"}}, status=400))
        with pytest.raises(Exception):  # noqa: B017 - the log line is what is checked
            client.chat(request(), CallOptions(correlation_id="hs-feed"))
    finally:
        logging.getLogger("holysheep.calls").removeHandler(handler)
    import json

    line = json.loads(records[-1].getMessage())
    assert line["correlation_id"] == "hs-feed" and line["outcome"] == "bad_request" and KEY not in records[-1].getMessage()


def test_the_call_log_record_is_the_one_logger_info_would_make() -> None:
    """log_call builds its record without logging's walk up the stack: file, line and function are still
    those of the call in log_call, so a handler formatting them shows the same as before."""
    import inspect

    from gateway.metrics import calls

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    calls.logger.addHandler(handler)
    try:
        calls.log_call(calls.CallRecord("m", "chat", "ok", 0.25, attempts=1, correlation_id="hs-x"), str)
    finally:
        calls.logger.removeHandler(handler)
    (record,) = records
    source, first = inspect.getsourcelines(calls.log_call)
    call_line = first + next(i for i, text in enumerate(source) if "logger.handle(" in text)
    assert (record.pathname, record.lineno, record.funcName) == (calls.__file__, call_line, "log_call")
    assert (record.name, record.levelno, record.args, record.exc_info, record.stack_info) == ("holysheep.calls", logging.INFO, (), None, None)
    expected = '{"event": "gateway_call", "correlation_id": "hs-x", "tool": "chat", "model": "m", "outcome": "ok", '
    assert record.getMessage() == expected + '"attempts": 1, "latency_ms": 250.0, "cost_usd": null}'


# ----------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_client() -> Any:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return client


def test_two_sinks_on_one_redis_add_up(redis_client: Any) -> None:
    workspace = f"wtest{uuid.uuid4().hex[:12]}"
    try:
        one = WorkspaceMetrics(RedisMetrics(redis_client, InProcessMetrics()), workspace)
        two = WorkspaceMetrics(RedisMetrics(redis_client, InProcessMetrics()), workspace)
        for sink, cost in ((one, 0.0001234), (two, 0.0004321), (one, 0.000001)):
            sink.record_attempt("gpt-4.1", "ok")
            sink.record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3, attempts=1, usage=_usage(), cost_usd=cost))
        two.record_batch({"ok": 3, "error": 1})
        figures = parsed(one)
        assert figures == parsed(two)
        assert total(figures, "holysheep_requests_total") == 3 and total(figures, "holysheep_attempts_total") == 3
        assert total(figures, "holysheep_cost_usd_total") == pytest.approx(0.0005565, abs=1e-12)
        assert total(figures, "holysheep_request_duration_seconds_bucket", le="0.5") == 3
        assert total(figures, "holysheep_batch_items_total", status="ok") == 3
        assert total(figures, "holysheep_metrics_scope", scope="redis") == 1
    finally:
        redis_client.delete(*RedisMetrics.keys(workspace))


def test_redis_down_keeps_the_figures_in_the_process_under_their_workspace() -> None:
    fallback = InProcessMetrics()
    sink = RedisMetrics(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), fallback)
    WorkspaceMetrics(sink, "wone").record_call(CallRecord("gpt-4.1", "chat", "ok", 0.3, usage=_usage(), cost_usd=0.5))
    assert total(parsed(WorkspaceMetrics(fallback, "wone")), "holysheep_cost_usd_total") == 0.5
    assert fallback.figures("wother") == {}


def _usage() -> Any:
    from gateway.models import Usage

    return Usage(10, 5, 2)


# ----------------------------------------------------------------------------- label values


def test_every_error_code_is_a_known_outcome_label() -> None:
    # A new error class must be added to ERROR_CODES, or its calls would count as `other_error`.
    import importlib
    import pkgutil

    import gateway
    import gateway.errors
    import gateway.spend.budget

    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):  # every module that may define an error class
        importlib.import_module(module.name)

    def every(cls: type) -> list[type]:
        return [cls, *(sub for direct in cls.__subclasses__() for sub in every(direct))]

    codes = {cls.code for cls in every(gateway.errors.GatewayError)}
    assert gateway.spend.budget.BudgetExceeded.code in codes
    assert codes <= ERROR_CODES
    assert {outcome_label(code) for code in codes} == codes


def test_every_tool_of_the_plugin_is_a_tool_label() -> None:
    import yaml

    names = {yaml.safe_load(path.read_text())["identity"]["name"] for path in (Path(__file__).parents[2] / "tools").glob("*.yaml")}
    assert names and names <= TOOLS


@pytest.mark.parametrize(
    ("outcome", "label"),
    [("ok", "ok"), ("timeout", "timeout"), ("http_429", "http_429"), ("http_099", "other_error"), ("http_600", "other_error"),
     ("http_42", "other_error"), ("http_4290", "other_error"), ("bob@example.com", "other_error"), ("", "other_error")],
)
def test_outcome_labels_are_a_fixed_set(outcome: str, label: str) -> None:
    assert outcome_label(outcome) == label


def test_model_labels_are_the_price_tables_names_whatever_the_spelling() -> None:
    prices = PriceTable.bundled().with_overrides('{"house-model": {"input": 1, "output": 2, "aliases": ["house"]}}')
    sink = WorkspaceMetrics(InProcessMetrics(), "wmodels", prices)
    assert [sink.model_label(m) for m in ("gpt-4.1", "GPT-4.1", "gpt-4.1-2025-04-14", "openai/gpt-4.1")] == ["gpt-4.1"] * 4
    assert sink.model_label("house") == sink.model_label("House-Model") == "house-model"
    assert sink.model_label("ft:gpt-4.1:acme:1") == sink.model_label("alice@example.com") == "custom"
    # The bundled table alone (another workspace, no overrides): the administrator's model is custom there.
    assert WorkspaceMetrics(InProcessMetrics(), "wother").model_label("house-model") == "custom"


def test_no_per_process_cap_a_thousand_names_after_the_first_still_map_to_their_model() -> None:
    sink = WorkspaceMetrics(InProcessMetrics(), "wmany")
    for n in range(5000):
        sink.record_call(CallRecord(f"model-{n}", "chat", "ok", 0.1))
    sink.record_call(CallRecord("deepseek-v3.2", "chat", "ok", 0.1))
    models = {labels["model"] for labels, _ in parsed(sink)["holysheep_requests_total"]}
    assert models == {"custom", "deepseek-v3.2"}
