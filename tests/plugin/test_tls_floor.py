"""The TLS floor through the runtime: TLS 1.2 at least by default, 1.3 with `tls_min_version: 1.3`.

A test CA and a server certificate for 127.0.0.1 are made with the openssl command at test time; two
local HTTPS gateways answer /v1/models and /v1/chat/completions, one offering only TLS 1.2, one offering
1.3. The plugin trusts the test CA through REQUESTS_CA_BUNDLE (read once by the transport), as a
deployment with a private CA would."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devtools.plugin_process import PluginProcess
from gateway.config import GatewayConfig
from gateway.errors import FieldError

pytestmark = pytest.mark.runtime

KEY = "sk-tls-test-0123456789"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=holysheep test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
             cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
             "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


class _Gateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _json(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", "req-tls")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "deepseek-v3.2", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        version = self.connection.version()  # type: ignore[attr-defined]
        self._json({
            "id": "chatcmpl-tls", "object": "chat.completion", "model": "deepseek-v3.2",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"over {version}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        })


def _serve(test_ca: Path, maximum: ssl.TLSVersion | None) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(test_ca / "server.pem", test_ca / "server.key")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if maximum is not None:
        context.maximum_version = maximum
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def tls12_only(test_ca: Path) -> Iterator[str]:
    yield from _serve(test_ca, ssl.TLSVersion.TLSv1_2)


@pytest.fixture(scope="module")
def tls13(test_ca: Path) -> Iterator[str]:
    yield from _serve(test_ca, None)


@pytest.fixture(scope="module")
def plugin(test_ca: Path) -> Iterator[PluginProcess]:
    with PluginProcess(env={"REQUESTS_CA_BUNDLE": str(test_ca / "ca.pem")}) as process:
        yield process


def test_default_floor_accepts_a_tls12_gateway(plugin: PluginProcess, tls12_only: str) -> None:
    credentials = {"api_key": KEY, "base_url": tls12_only}
    assert plugin.validate(credentials) == (True, "")
    outcome = plugin.run_tool("chat", {"prompt": "hello"}, credentials)
    assert outcome.ok, outcome.error
    assert outcome.text == "over TLSv1.2"


def test_floor_13_refuses_a_tls12_gateway_with_a_clear_message(plugin: PluginProcess, tls12_only: str) -> None:
    credentials = {"api_key": KEY, "base_url": tls12_only, "tls_min_version": "1.3"}
    ok, message = plugin.validate(credentials)
    assert not ok
    assert "does not offer TLS 1.3" in message and "tls_min_version" in message, message
    outcome = plugin.run_tool("chat", {"prompt": "hello"}, credentials)
    assert not outcome.ok and "does not offer TLS 1.3" in outcome.error_message and "correlation_id: hs-" in outcome.error_message
    assert KEY not in outcome.error_message


def test_floor_13_accepts_a_tls13_gateway(plugin: PluginProcess, tls13: str) -> None:
    credentials = {"api_key": KEY, "base_url": tls13, "tls_min_version": "1.3"}
    assert plugin.validate(credentials) == (True, "")
    outcome = plugin.run_tool("chat", {"prompt": "hello"}, credentials)
    assert outcome.ok, outcome.error
    assert outcome.text == "over TLSv1.3"


def test_a_server_the_test_ca_did_not_sign_is_still_refused(tls13: str) -> None:
    with PluginProcess() as untrusting:  # no REQUESTS_CA_BUNDLE: the floor does not weaken verification
        ok, message = untrusting.validate({"api_key": KEY, "base_url": tls13, "tls_min_version": "1.3"})
    assert not ok and "TLS" in message and "CERTIFICATE_VERIFY_FAILED" in message, message


@pytest.mark.parametrize(("raw", "expected"), [(None, "1.2"), ("", "1.2"), ("1.2", "1.2"), ("1.3", "1.3"), ("TLSv1.3", "1.3"), (" tls1.2 ", "1.2")])
def test_tls_min_version_is_parsed(raw: object, expected: str) -> None:
    assert GatewayConfig.from_credentials({"api_key": KEY, "tls_min_version": raw}).tls_min_version == expected


@pytest.mark.parametrize("raw", ["1.1", "1.0", "SSLv3", "2", "1.4"])
def test_older_or_unknown_tls_versions_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(FieldError) as refused:
        GatewayConfig.from_credentials({"api_key": KEY, "tls_min_version": raw})
    assert refused.value.field == "tls_min_version"
