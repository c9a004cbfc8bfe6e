"""gateway.wire.net_guard and the webhook policy: addresses judged after resolution, the socket opened to the
address that was judged (no second lookup: no DNS rebinding), webhooks only where the allowlist says."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest
import urllib3

from gateway.config import parse_webhook_allowlist
from gateway.wire import net_guard
from gateway.wire.net_guard import AddressPolicy, AddressRefused, Origin, open_url
from gateway.wire.webhooks import WebhookAllowlist, post_json


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.accepted = 0
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _answer(self) -> None:
                recorder.hosts.append(self.headers.get("Host", ""))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer

        super().__init__(("127.0.0.1", 0), Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted += 1
        super().process_request(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Names resolve to `answers`; every lookup is recorded."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        if host in answers:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(net_guard.socket, "getaddrinfo", getaddrinfo)
    return looked_up


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> None:
    looked_up = fake_dns(monkeypatch, {"files.dify.test": ["127.0.0.1"]})
    connected: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connected.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    origin = Origin("http", "files.dify.test", recorder.port)
    exchange = open_url("GET", f"{origin}/files/x", AddressPolicy((origin,)), connect_timeout=2, read_timeout=2)
    exchange.close()
    assert connected == [("127.0.0.1", recorder.port)]  # an IP, never the name: no second lookup
    assert [h for h in looked_up if not h[0].isdigit()] == ["files.dify.test"]  # the name once; the IP is numeric
    assert recorder.hosts == [f"files.dify.test:{recorder.port}"]


def test_a_name_with_one_internal_address_among_public_ones_is_refused_whole(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> None:
    fake_dns(monkeypatch, {"rebind.test": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(AddressRefused):
        open_url("GET", f"http://rebind.test:{recorder.port}/", AddressPolicy(), connect_timeout=2, read_timeout=2)
    assert recorder.accepted == 0


@pytest.mark.parametrize(
    ("address", "internal"),
    [("127.0.0.1", True), ("10.1.2.3", True), ("100.64.0.1", True), ("fc00::1", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("64:ff9b::a00:1", True), ("93.184.216.34", False), ("2606:4700::1111", False)],
)
def test_what_counts_as_internal(address: str, internal: bool) -> None:
    assert net_guard.is_internal(ipaddress.ip_address(address)) is internal


def test_metadata_is_refused_even_inside_a_trusted_network() -> None:
    policy = AddressPolicy(trusted_networks=(ipaddress.ip_network("169.254.0.0/16"),))
    reason = policy.refusal(Origin("http", "169.254.169.254", 80), ipaddress.ip_address("169.254.169.254"))
    assert reason is not None and "metadata" in reason


def deliver(url: str, allowlist: WebhookAllowlist) -> Any:
    return post_json(url, b"{}", allowlist=allowlist, connect_timeout=2, read_timeout=2)


def test_webhooks_reach_internal_targets_only_where_the_allowlist_says(recorder: Recorder) -> None:
    url = f"http://127.0.0.1:{recorder.port}/hook"
    refused = deliver(url, WebhookAllowlist())
    assert not refused.delivered and refused.http_status is None and refused.attempts == 0
    assert "not contacted" in refused.reason and "webhook_allowlist" in refused.reason
    assert not deliver(url, parse_webhook_allowlist("10.0.0.0/8, http://127.0.0.1:1")).delivered
    assert not deliver(url.replace("http:", "https:"), WebhookAllowlist()).delivered  # https does not open loopback either
    assert recorder.accepted == 0
    for entries in ("127.0.0.1", "127.0.0.0/8", f"http://127.0.0.1:{recorder.port}"):
        result = deliver(url, parse_webhook_allowlist(entries))
        assert result.delivered and result.http_status == 200, entries
    assert recorder.accepted == 3


def test_plain_http_to_a_public_host_is_refused_unless_allowlisted(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"hooks.example.test": ["93.184.216.34"]})
    result = deliver("http://hooks.example.test/x", WebhookAllowlist())
    assert not result.delivered and "plain http is allowed only for targets webhook_allowlist names" in result.reason
