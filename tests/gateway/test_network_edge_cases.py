"""The client at the edges of the network, through real sockets: deadlines while reading, attempts across
fallbacks, redirects, in-band refusals, 4xx and fallbacks, the breaker's half-open probe, proxies, DNS."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gateway import (
    ChatRequest,
    GatewayTimeoutError,
    NotOpenAICompatibleError,
    RateLimitedError,
    StreamInterruptedError,
    TextDelta,
    UpstreamUnavailableError,
)
from gateway.call.breaker import HALF_OPEN, BreakerSettings
from gateway.state.shared import InProcessState
from simulator.harness import SimulatorProcess
from tests.gateway.helpers import make_client


def ask(prompt: str, model: str = "deepseek-v3.2") -> ChatRequest:
    return ChatRequest.from_prompt(prompt, model=model)


class TricklingServer:
    """Answers 200 and then sends one byte of body every `interval` seconds, forever."""

    def __init__(self, *, streaming: bool, interval: float = 0.5) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.streaming = streaming
        self.interval = interval
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:  # the client hangs up at its deadline: that is the point
            conn.recv(65536)
            kind = "text/event-stream" if self.streaming else "application/json"
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: 100000\r\n\r\n".encode())
            if self.streaming:
                conn.sendall(b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n')
            while not self.stop.wait(self.interval):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def trickle() -> Iterator[type[TricklingServer]]:
    servers: list[TricklingServer] = []

    def start(**kwargs: object) -> TricklingServer:
        server = TricklingServer(**kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def test_a_gateway_trickling_bytes_cannot_outlive_the_calls_deadline(sim: SimulatorProcess, trickle) -> None:
    server = trickle(streaming=False)
    client = make_client(sim, base_url=f"http://127.0.0.1:{server.port}/v1", timeout_seconds="2")
    started = time.monotonic()
    with pytest.raises(GatewayTimeoutError, match="deadline"):
        client.chat(ask("slow body"))
    assert time.monotonic() - started < 3.5


def test_a_stalled_stream_ends_at_the_deadline_with_the_partial_text(sim: SimulatorProcess, trickle) -> None:
    server = trickle(streaming=True, interval=0.4)
    client = make_client(sim, base_url=f"http://127.0.0.1:{server.port}/v1", timeout_seconds="2")
    received = ""
    started = time.monotonic()
    with pytest.raises(StreamInterruptedError, match="deadline") as caught:
        for item in client.stream_chat(ask("stalls")):
            if isinstance(item, TextDelta):
                received += item.text
    assert time.monotonic() - started < 3.5
    # A tail that could begin an echo of the key is held back until more arrives (here maybe "i"):
    # the partial text has everything received.
    assert caught.value.partial_text == "Hi" and received in ("H", "Hi")


def test_attempts_count_every_request_including_those_to_the_failed_primary(sim: SimulatorProcess) -> None:
    client = make_client(sim, fallback_models="gpt-4.1-mini")
    prompt = "primary down [[sim: 503x3, retry_after_ms=5]]"
    result = client.chat(ask(prompt))
    assert result.model == "gpt-4.1-mini" and result.fallback_from == ["deepseek-v3.2"]
    assert result.attempts == 4 == sim.stats()["chat_requests_by_prompt"][prompt]
    assert any("fallback" in w for w in result.warnings)


def test_an_exhausted_429_is_not_sent_to_a_fallback_model(sim: SimulatorProcess) -> None:
    """Fallbacks are for an unavailable primary, never for 4xx (a rate limit is per key, not per model)."""
    client = make_client(sim, fallback_models="gpt-4.1-mini")
    prompt = "limited [[sim: 429x9, retry_after_ms=5]]"
    with pytest.raises(RateLimitedError):
        client.chat(ask(prompt))
    assert sim.stats()["chat_requests_by_prompt"][prompt] == 3
    assert all(body["model"] == "deepseek-v3.2" for body in sim.stats()["received"])


def test_a_redirect_to_a_url_carrying_the_key_is_redacted(sim: SimulatorProcess) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            location = f"https://elsewhere.example/v1?key={sim.api_key}"
            conn.sendall(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode())

    threading.Thread(target=answer, daemon=True).start()
    client = make_client(sim, base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(NotOpenAICompatibleError) as caught:
        client.chat(ask("x"))
    listener.close()
    assert "redirected" in str(caught.value) and sim.api_key not in str(caught.value)


def test_a_stream_options_refusal_inside_the_200_stream_is_asked_again_without_it(sim: SimulatorProcess) -> None:
    client = make_client(sim)
    prompt = "in-band refusal [[sim: reject_stream_options_inband]]"
    text = "".join(item.text for item in client.stream_chat(ask(prompt)) if isinstance(item, TextDelta))
    assert text == "[deepseek-v3.2] You said: in-band refusal"
    assert sim.stats()["chat_requests_by_prompt"][prompt] == 2


def test_a_half_open_probe_that_dies_is_reported_so_the_breaker_does_not_stick(sim: SimulatorProcess) -> None:
    state = InProcessState(breaker_settings=BreakerSettings(failure_threshold=1, cooldown_seconds=0.05, half_open_probes=1))
    client = make_client(sim)
    client.state = state
    with pytest.raises(UpstreamUnavailableError):
        client.chat(ask("open it [[sim: 503x9, retry_after_ms=1]]"))
    time.sleep(0.1)
    assert client.breaker_for("deepseek-v3.2").state == HALF_OPEN
    stream = client.stream_chat(ask("probe"))
    next(stream)
    with pytest.raises(KeyboardInterrupt):
        stream.throw(KeyboardInterrupt())
    time.sleep(0.1)  # the failed probe reopened it; after the cooldown a new probe is allowed
    assert client.chat(ask("recovered")).text == "[deepseek-v3.2] You said: recovered"


def test_proxy_settings_from_the_environment_are_honoured_and_read_once(sim: SimulatorProcess, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = make_client(sim, base_url="http://gateway.example/v1")
    assert proxied.transport.proxies.get("http") == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = make_client(sim)
    assert direct.transport.proxies == {}
    assert proxied.transport.proxies.get("http") == "http://proxy.internal:3128"  # read once, at creation
    assert direct.chat(ask("no proxy for localhost")).text.endswith("no proxy for localhost")


def test_a_429_slows_every_concurrent_call_on_the_key_not_only_its_own(sim: SimulatorProcess) -> None:
    client = make_client(sim)
    busy_results: list[object] = []
    busy = threading.Thread(target=lambda: busy_results.append(client.chat(ask("busy [[sim: 429x1, retry_after=1]]")).attempts))
    busy.start()
    time.sleep(0.3)  # the 429 has arrived and paused the key
    started = time.monotonic()
    client.chat(ask("another call"))
    assert time.monotonic() - started >= 0.5
    busy.join(timeout=30)
    assert busy_results == [2]


def test_a_host_that_does_not_resolve_is_a_dns_message_naming_it(sim: SimulatorProcess, monkeypatch) -> None:
    """The resolver is stubbed (no test may send a DNS query); everything above it is the real stack."""

    def no_such_host(host: str, *args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    client = make_client(sim, base_url="http://no-such-host.invalid/v1", max_retries="1")
    with pytest.raises(UpstreamUnavailableError, match=r"cannot resolve host 'no-such-host\.invalid'.*DNS") as caught:
        client.list_models()
    assert caught.value.attempts == 2  # nothing was sent, so it was retried
