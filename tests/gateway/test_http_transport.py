"""HTTPTransport on real sockets: what it sends, when it reuses a connection, how it goes through a proxy,
and how each way of failing is classified (retryable only when nothing reached the gateway)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import urllib3.util.connection

from gateway.config import GatewayConfig
from gateway.errors import GatewayTimeoutError, Redactor, UpstreamUnavailableError
from gateway.wire.http_transport import USER_AGENT, HTTPTransport
from gateway.wire.transport import Attempt, AttemptFailed, Deadline

KEY = "sk-transport-test-0123456789"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    head: str
    body: bytes
    connection: int

    @property
    def request_line(self) -> str:
        return self.head.split("\r\n", 1)[0]

    def header(self, name: str) -> list[str]:
        return [line.split(":", 1)[1].strip() for line in self.head.split("\r\n")[1:] if line.lower().startswith(name.lower() + ":")]


@dataclass
class RawGateway:
    """Reads HTTP/1.1 requests (keep-alive) and answers by path: /hang never answers, /drop closes the
    connection, /gather waits until `gather` requests are in; anything else gets JSON naming the path."""

    gather: int = 0
    received: list[Received] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.listener.getsockname()[1]
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn, conn.makefile("rb") as reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                text = head.decode("latin-1")
                length = next((int(v.split(":", 1)[1]) for v in text.split("\r\n") if v.lower().startswith("content-length:")), 0)
                request = Received(text, reader.read(length) if length else b"", number)
                self.received.append(request)
                path = request.request_line.split()[1]
                if path.endswith("/hang"):
                    time.sleep(5)
                    return
                if path.endswith("/drop"):
                    return
                if path.endswith("/bye"):  # answered as if kept alive, then closed: the next request needs a new connection
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                    time.sleep(0.2)
                    return
                if path.endswith("/gather"):
                    self.arrived.release()
                    self.release.wait(10)
                body = json.dumps({"path": path}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: session=abc\r\nX-Twice: a\r\nx-twice: b\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.release.set()
        self.listener.close()


@pytest.fixture
def gateway() -> Iterator[RawGateway]:
    server = RawGateway()
    yield server
    server.close()


def transport_for(base_url: str, pool_size: int = 16, connect_timeout: float = 10.0) -> HTTPTransport:
    config = GatewayConfig.from_credentials({"api_key": KEY, "base_url": base_url})
    config = GatewayConfig(api_key=config.api_key, base_url=config.base_url, connect_timeout_seconds=connect_timeout)
    return HTTPTransport(config, Redactor([KEY]), pool_size=pool_size)


def exchange(transport: HTTPTransport, path: str = "/chat/completions", body: bytes | None = b'{"x":1}', **kwargs: object) -> bytes:
    response = transport.send("POST" if body is not None else "GET", path, body, timeout=kwargs.pop("timeout", 5.0), **kwargs)  # type: ignore[arg-type]
    deadline = Deadline(5)
    data = b""
    while chunk := response.read_chunk(deadline, 65536):
        data += chunk
    response.close()
    return data


def failure(transport: HTTPTransport, path: str = "/chat/completions", **kwargs: object) -> Attempt:
    with pytest.raises(AttemptFailed) as caught:
        transport.send("POST", path, b"{}", timeout=kwargs.pop("timeout", 5.0), **kwargs)  # type: ignore[arg-type]
    assert KEY not in str(caught.value.attempt.error)
    return caught.value.attempt


def test_each_request_carries_the_key_our_headers_and_the_body_length(gateway: RawGateway) -> None:
    transport = transport_for(gateway.url())
    assert json.loads(exchange(transport)) == {"path": "/v1/chat/completions"}
    exchange(transport, "/models", None)
    post, get = gateway.received
    assert post.request_line == "POST /v1/chat/completions HTTP/1.1"
    assert post.header("Authorization") == [f"Bearer {KEY}"]
    assert post.header("User-Agent") == [USER_AGENT]
    assert post.header("Accept") == ["application/json, text/event-stream"]
    assert post.header("Content-Type") == ["application/json"]
    assert post.header("Content-Length") == ["7"] and post.body == b'{"x":1}'
    assert "gzip" in post.header("Accept-Encoding")[0]
    assert get.request_line == "GET /v1/models HTTP/1.1" and get.header("Content-Length") == []


def test_a_call_s_headers_join_ours_and_replace_one_of_ours_whatever_its_case(gateway: RawGateway) -> None:
    transport = transport_for(gateway.url())
    exchange(transport, headers={"X-Request-Id": "hs-1", "content-type": "text/plain"})
    exchange(transport)  # the next call is back to our own headers
    first, second = gateway.received
    assert first.header("X-Request-Id") == ["hs-1"]
    assert first.header("Content-Type") == ["text/plain"]
    assert second.header("X-Request-Id") == [] and second.header("Content-Type") == ["application/json"]


def test_no_cookie_set_by_the_gateway_is_sent_back(gateway: RawGateway) -> None:
    transport = transport_for(gateway.url())
    exchange(transport)
    exchange(transport)
    assert [r.header("Cookie") for r in gateway.received] == [[], []]


def test_response_headers_are_case_insensitive_and_a_repeated_one_reads_joined(gateway: RawGateway) -> None:
    response = transport_for(gateway.url()).send("GET", "/models", None, timeout=5)
    assert (response.status, response.reason) == (200, "OK")
    assert response.headers.get("content-type") == response.headers.get("Content-Type") == "application/json"
    assert response.headers.get("X-TWICE") == "a, b"
    response.close()


def test_a_connection_is_reused_once_its_answer_was_read_and_dropped_when_it_was_not(gateway: RawGateway) -> None:
    transport = transport_for(gateway.url())
    for _ in range(3):
        exchange(transport)
    assert gateway.connections == 1
    unread = transport.send("GET", "/models", None, timeout=5)
    unread.close()  # the body is still on the wire: that connection cannot carry another request
    exchange(transport)
    assert [r.connection for r in gateway.received] == [1, 1, 1, 1, 2]


def test_a_kept_alive_connection_the_gateway_closed_is_not_reused(gateway: RawGateway) -> None:
    # Sending on it would fail after the request left (not retried: it may have been billed); the check before
    # reuse sees the close and opens a new connection instead.
    transport = transport_for(gateway.url())
    assert exchange(transport, "/bye") == b"{}"
    time.sleep(0.5)  # the gateway has closed the idle connection
    assert json.loads(exchange(transport)) == {"path": "/v1/chat/completions"}
    assert [r.connection for r in gateway.received] == [1, 2]


def test_the_check_before_reuse_does_not_wait_under_gevent() -> None:
    # The Dify runtime monkey-patches select; the check must use the OS's poll (a zero timeout never waits).
    code = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import select\n"
        "from gateway.wire.http_transport import _OS_POLL\n"
        "assert select.poll is not _OS_POLL, 'gevent did not patch select.poll'\n"
        "assert _OS_POLL.__module__ == 'select', _OS_POLL.__module__\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_more_parallel_calls_than_the_pool_holds_are_not_held_back(gateway: RawGateway) -> None:
    transport = transport_for(gateway.url(), pool_size=2)
    gateway.gather = 3
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(exchange(transport, "/gather"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(3):  # all three reached the gateway at once: a third call did not wait for a free connection
        assert gateway.arrived.acquire(timeout=5)
    gateway.release.set()
    for thread in threads:
        thread.join(5)
    assert len(results) == 3


def test_ensure_pool_only_grows_the_pool(gateway: RawGateway) -> None:
    transport = transport_for(gateway.url(), pool_size=4)
    transport.ensure_pool(2)
    assert transport.pool_size == 4
    transport.ensure_pool(40)
    assert transport.pool_size == 40
    assert json.loads(exchange(transport)) == {"path": "/v1/chat/completions"}


def test_a_refused_connection_is_retryable_and_names_the_host() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempt = failure(transport_for(f"http://127.0.0.1:{port}/v1"))
    assert attempt.retryable and isinstance(attempt.error, UpstreamUnavailableError)
    assert str(attempt.error).startswith(f"cannot connect to '127.0.0.1:{port}' (NewConnectionError: ")
    assert "Connection refused" in str(attempt.error)


def test_connecting_too_slowly_is_a_retryable_timeout(gateway: RawGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    def never_connects(*args: object, **kwargs: object) -> socket.socket:
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", never_connects)
    attempt = failure(transport_for(gateway.url()))
    assert attempt.retryable and isinstance(attempt.error, GatewayTimeoutError)
    assert str(attempt.error) == f"connecting to '127.0.0.1:{gateway.port}' timed out: the host is unreachable or a firewall drops the traffic"


def test_no_answer_in_time_is_not_retried(gateway: RawGateway) -> None:
    started = time.monotonic()
    attempt = failure(transport_for(gateway.url()), "/hang", timeout=0.5)
    assert time.monotonic() - started < 3
    assert not attempt.retryable and isinstance(attempt.error, GatewayTimeoutError)
    assert str(attempt.error).startswith("no response within 0s; not retried because the gateway may already have processed")


def test_a_connection_closed_after_the_request_was_sent_is_not_retried(gateway: RawGateway) -> None:
    attempt = failure(transport_for(gateway.url()), "/drop")
    assert not attempt.retryable and isinstance(attempt.error, UpstreamUnavailableError)
    assert str(attempt.error).startswith("the connection was reset after the request was sent; not retried")


def test_tls_spoken_to_a_plain_http_port_is_a_tls_error_not_retried() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_in_plain_http() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.5)

    threading.Thread(target=answer_in_plain_http, daemon=True).start()
    with listener:
        attempt = failure(transport_for(f"https://127.0.0.1:{port}/v1"))
    assert not attempt.retryable and isinstance(attempt.error, UpstreamUnavailableError)
    assert str(attempt.error).startswith(f"TLS handshake with '127.0.0.1:{port}' failed (SSLError: ")
    assert str(attempt.error).endswith("check that base_url uses the right scheme (https vs http) and port")


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent(gateway: RawGateway) -> None:
    attempt = failure(transport_for(gateway.url()), headers={"X-Request-Id": "a\r\nX-Injected: 1"})
    assert not attempt.retryable
    assert str(attempt.error).startswith("request failed: Invalid leading whitespace, reserved character(s), or return character(s)")
    assert gateway.received == []


def test_an_http_gateway_is_reached_through_the_proxy_with_the_proxy_s_credentials(gateway: RawGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://user:s3cret@127.0.0.1:{gateway.port}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    transport = transport_for("http://gateway.example/v1")
    monkeypatch.delenv("HTTP_PROXY")  # read once, when the transport was made
    assert json.loads(exchange(transport)) == {"path": "http://gateway.example/v1/chat/completions"}
    (request,) = gateway.received
    assert request.request_line == "POST http://gateway.example/v1/chat/completions HTTP/1.1"
    assert request.header("Proxy-Authorization") == ["Basic dXNlcjpzM2NyZXQ="]  # user:s3cret
    assert request.header("Authorization") == [f"Bearer {KEY}"]


def test_a_proxy_that_cannot_be_reached_is_not_retried_as_requests_did(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    attempt = failure(transport_for("http://gateway.example/v1"))
    assert not attempt.retryable
    assert str(attempt.error).startswith("the connection was reset after the request was sent")
