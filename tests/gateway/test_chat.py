"""The client against the simulated gateway: replies, usage, cost, retries and every fault."""

import pytest

from gateway import (
    AuthenticationError,
    BadRequestError,
    ChatRequest,
    GatewayClient,
    InBandStreamError,
    NotOpenAICompatibleError,
    StreamCompleted,
    StreamInterruptedError,
    TextDelta,
    UpstreamUnavailableError,
)
from simulator.harness import SimulatorProcess
from tests.gateway.helpers import make_client


def ask(prompt: str, model: str = "deepseek-v3.2", **kwargs: object) -> ChatRequest:
    return ChatRequest.from_prompt(prompt, model=model, **kwargs)  # type: ignore[arg-type]


def attempts_for(sim: SimulatorProcess, prompt: str) -> int:
    return sim.stats()["chat_requests_by_prompt"].get(prompt, 0)


def stream(client: GatewayClient, request: ChatRequest) -> tuple[str, object]:
    text, final = "", None
    for item in client.stream_chat(request):
        if isinstance(item, TextDelta):
            text += item.text
        elif isinstance(item, StreamCompleted):
            final = item.result
    return text, final


def test_reply_usage_and_cost(client: GatewayClient) -> None:
    result = client.chat(ask("hello there"))
    assert result.text == "[deepseek-v3.2] You said: hello there"
    assert result.finish_reason == "stop"
    assert result.model == "deepseek-v3.2"
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert not result.usage.estimated
    assert result.cost_usd == pytest.approx((result.usage.prompt_tokens * 0.07 + result.usage.completion_tokens * 0.42) / 1e6)
    assert result.attempts == 1
    assert result.request_id


def test_cached_prompt_tokens_are_reported_and_billed_cheaper(client: GatewayClient) -> None:
    result = client.chat(ask("cache me [[sim: cached=4]]", model="gpt-4.1"))
    assert result.usage.cached_prompt_tokens == 4
    assert result.cost is not None and result.cost.cached_prompt_tokens == 4
    assert result.cost.cached_input_usd == pytest.approx(4 * 0.5 / 1e6)


def test_429_twice_then_success_is_retried_with_the_attempts_counted(sim: SimulatorProcess, client: GatewayClient) -> None:
    prompt = "busy [[sim: 429x2, retry_after_ms=20]]"
    result = client.chat(ask(prompt))
    assert result.attempts == 3
    assert attempts_for(sim, prompt) == 3


def test_5xx_exhausted_reports_upstream_unavailable_after_max_retries(sim: SimulatorProcess, client: GatewayClient) -> None:
    prompt = "down [[sim: 503x9]]"
    with pytest.raises(UpstreamUnavailableError) as caught:
        client.chat(ask(prompt))
    assert caught.value.attempts == 3
    assert attempts_for(sim, prompt) == 3
    assert "503" in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(sim: SimulatorProcess, client: GatewayClient, status: int) -> None:
    prompt = f"bad [[sim: {status}x1]]"
    with pytest.raises((BadRequestError, AuthenticationError, NotOpenAICompatibleError)):
        client.chat(ask(prompt))
    assert attempts_for(sim, prompt) == 1


def test_wrong_key_says_the_key_was_rejected_and_never_shows_it(sim: SimulatorProcess) -> None:
    client = make_client(sim, api_key="sk-wrong-key-1234567890abcdef")
    with pytest.raises(AuthenticationError) as caught:
        client.chat(ask("hi"))
    assert "api_key" in str(caught.value)
    assert "1234567890abcdef" not in str(caught.value)


def test_unknown_model_is_a_bad_request_naming_it(client: GatewayClient) -> None:
    with pytest.raises(BadRequestError, match="no-such-model"):
        client.chat(ask("hi", model="no-such-model"))


def test_reset_before_response_is_not_retried_because_it_may_be_billed(sim: SimulatorProcess, client: GatewayClient) -> None:
    prompt = "reset [[sim: reset_beforex1]]"
    with pytest.raises(UpstreamUnavailableError, match="not retried"):
        client.chat(ask(prompt))
    assert attempts_for(sim, prompt) == 1


def test_connection_refused_is_retried_and_explained() -> None:
    from gateway import GatewayConfig
    from gateway.call.retry import RetryPolicy
    from gateway.state.shared import InProcessState

    client = GatewayClient(
        GatewayConfig.from_credentials({"api_key": "k-123", "base_url": "http://127.0.0.1:9/v1", "max_retries": "1"}),
        state=InProcessState(),
        retry=RetryPolicy(max_retries=1, base_delay=0.01),
    )
    with pytest.raises(UpstreamUnavailableError, match=r"cannot connect to '127\.0\.0\.1:9'") as caught:
        client.chat(ask("hi"))
    assert caught.value.attempts == 2


def test_html_answer_hints_at_the_v1_path(sim: SimulatorProcess, client: GatewayClient) -> None:
    sim.configure(fault="html")
    with pytest.raises(NotOpenAICompatibleError, match="/v1"):
        client.list_models()


def test_json_schema_output_is_valid_json(client: GatewayClient) -> None:
    import json

    schema = {"type": "object", "properties": {"answer": {"type": "string"}, "score": {"type": "integer"}}, "required": ["answer", "score"]}
    result = client.chat(ask("rate it", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}))
    data = json.loads(result.text)
    assert isinstance(data["answer"], str) and isinstance(data["score"], int)


def test_missing_usage_is_estimated_offline_and_says_so(client: GatewayClient) -> None:
    result = client.chat(ask("no usage here [[sim: no_usage]]"))
    assert result.usage.estimated
    assert result.usage.completion_tokens > 0
    assert any("estimated" in w for w in result.warnings)


def test_unknown_model_price_gives_null_cost_and_a_warning(client: GatewayClient) -> None:
    result = client.chat(ask("unpriced", model="mystery-1"))
    assert result.cost_usd is None and result.cost is None  # never a silent 0
    assert any("no price known for model 'mystery-1'" in w and "price_overrides" in w for w in result.warnings)


def test_an_unpriced_served_model_is_costed_at_the_requested_models_price_and_says_so(client: GatewayClient) -> None:
    result = client.chat(ask("which model [[sim: served_model=mystery-1]]", model="gpt-4.1"))
    assert result.model == "mystery-1"
    assert result.cost_usd == pytest.approx((result.usage.prompt_tokens * 2.0 + result.usage.completion_tokens * 8.0) / 1e6)
    assert any("'mystery-1'" in w and "'gpt-4.1' prices" in w for w in result.warnings)


def test_price_overrides_price_a_model_the_table_does_not_know(sim: SimulatorProcess) -> None:
    result = make_client(sim, price_overrides='{"mystery-1": {"input": 1, "output": 2}}').chat(ask("now priced", model="mystery-1"))
    assert result.cost_usd == pytest.approx((result.usage.prompt_tokens * 1 + result.usage.completion_tokens * 2) / 1e6)


# ----------------------------------------------------------------------------- streaming


def test_stream_yields_pieces_then_the_full_result_with_usage(sim: SimulatorProcess, client: GatewayClient) -> None:
    text, result = stream(client, ask("stream this please"))
    assert text == "[deepseek-v3.2] You said: stream this please"
    assert result.text == text and result.finish_reason == "stop"
    assert not result.usage.estimated and result.usage.completion_tokens > 0
    assert result.ttft_ms is not None and result.cost_usd is not None
    body = sim.stats()["received"][-1]
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    "fault",
    ["crlf", "cr", "keepalive", "split_utf8", "multiline_data", "separators", "no_charset", "event_field", "malformed", "trickle=1"],
)
def test_stream_framing_variants_decode_to_the_same_text(client: GatewayClient, fault: str) -> None:
    plain_text, _ = stream(client, ask(f"same words [[sim: {fault}]]"))
    assert plain_text
    reference, _ = stream(client, ask("same words"))
    if fault in ("split_utf8", "separators"):
        assert plain_text != reference  # these faults change the reply on purpose (multibyte / separators)
        assert "\ufffd" not in plain_text
    else:
        assert plain_text == reference


def test_separators_inside_content_survive(client: GatewayClient) -> None:
    text, _ = stream(client, ask("seps [[sim: separators]]"))
    assert "\u2028" in text and "\u0085" in text


def test_cut_stream_is_interrupted_with_partial_text_and_never_success(client: GatewayClient) -> None:
    received = ""
    with pytest.raises(StreamInterruptedError) as caught:
        for item in client.stream_chat(ask("please cut [[sim: cut]]")):
            if isinstance(item, TextDelta):
                received += item.text
    assert received and caught.value.partial_text == received
    assert "without [DONE]" in str(caught.value)


def test_reset_mid_stream_after_content_is_not_retried(sim: SimulatorProcess, client: GatewayClient) -> None:
    prompt = "reset in the middle [[sim: reset_mid]]"
    with pytest.raises(StreamInterruptedError) as caught:
        stream(client, ask(prompt))
    assert caught.value.partial_text
    assert attempts_for(sim, prompt) == 1


def test_in_band_error_raises_with_the_gateway_message(client: GatewayClient) -> None:
    with pytest.raises(InBandStreamError, match="upstream overloaded") as caught:
        stream(client, ask("in band [[sim: inband_error]]"))
    assert caught.value.partial_text


def test_stream_429_before_content_is_retried(sim: SimulatorProcess, client: GatewayClient) -> None:
    prompt = "stream busy [[sim: 429x1, retry_after_ms=10]]"
    text, result = stream(client, ask(prompt))
    assert result.attempts == 2 and text
    assert attempts_for(sim, prompt) == 2


def test_gateway_refusing_stream_options_is_asked_again_without_and_usage_estimated(sim: SimulatorProcess, client: GatewayClient) -> None:
    prompt = "old gateway [[sim: reject_stream_options]]"
    text, result = stream(client, ask(prompt))
    assert text.endswith("old gateway")
    assert result.usage.estimated
    assert attempts_for(sim, prompt) == 2
