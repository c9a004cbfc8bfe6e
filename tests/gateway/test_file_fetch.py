"""gateway.wire.file_fetch against real sockets on loopback: what is fetched, what is refused before any
connection, and the byte, decompression and time bounds. The same behaviour through the plugin runtime
is in tests/plugin/test_file_inputs_hostile.py."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from devtools.file_server import FileServer, headers
from gateway.wire import file_fetch
from gateway.wire.file_fetch import FetchError, fetch_file
from gateway.wire.net_guard import AddressPolicy, Origin, checked_addresses

SECRET = b"DB_PASSWORD=hunter2-INTERNAL"


@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def origin_of(server: FileServer) -> Origin:
    return Origin.of(server.origin)


def test_a_file_from_the_dify_files_origin_on_loopback_is_fetched(files: FileServer) -> None:
    param = files.parameter(b"id,prompt\n1,hi\n", "in.csv", "text/csv")
    assert fetch_file(param["url"], files_origin=origin_of(files), max_bytes=1000) == b"id,prompt\n1,hi\n"


def test_a_relative_dify_link_is_fetched_from_the_dify_files_origin(files: FileServer) -> None:
    param = files.parameter(b"prompt\nhello\n", "in.csv", "text/csv", relative=True)
    assert param["url"].startswith("/files/")
    assert fetch_file(param["url"], files_origin=origin_of(files), max_bytes=1000) == b"prompt\nhello\n"


def test_loopback_outside_the_dify_files_origin_is_never_connected(files: FileServer) -> None:
    param = files.parameter(SECRET, "env.csv", "text/csv")
    with FileServer() as dify:
        for trusted in (None, origin_of(dify)):
            with pytest.raises(FetchError) as refused:
                fetch_file(param["url"], files_origin=trusted, max_bytes=1000)
            assert "internal address" in str(refused.value) and "refused" in str(refused.value)
            assert "FILES_URL" not in str(refused.value)
    assert files.connections == 0


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://100.100.100.200/x",
                                 "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/"])
def test_metadata_and_link_local_addresses_are_refused_even_for_the_dify_files_origin(url: str) -> None:
    with pytest.raises(FetchError) as refused:
        fetch_file(url, files_origin=Origin.of(url), max_bytes=1000)
    assert "link-local or cloud metadata" in str(refused.value)


def test_a_name_is_checked_after_resolution() -> None:
    # "localhost" is a name, not an address: it is resolved and its loopback addresses refused.
    with pytest.raises(Exception) as refused:
        checked_addresses(Origin("http", "localhost", 80), AddressPolicy())
    assert "internal address" in str(refused.value)


def test_a_redirect_to_loopback_is_refused_without_connecting(files: FileServer) -> None:
    with FileServer() as internal:
        target = internal.parameter(SECRET, "env.csv", "text/csv")["url"]

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            headers(handler, 302, {"Location": target, "Content-Length": "0"})

        param = files.route(redirect)
        with pytest.raises(FetchError) as refused:
            fetch_file(param["url"], files_origin=origin_of(files), max_bytes=1000)
        assert "redirect refused" in str(refused.value)
        assert internal.connections == 0


def test_a_gzip_bomb_is_cut_at_the_decompressed_cap(files: FileServer) -> None:
    bomb = gzip.compress(b"\0" * (200 * 2**20), compresslevel=9)  # ~200 KB on the wire, 200 MiB unpacked

    def send(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 200, {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))})
        handler.wfile.write(bomb)

    with pytest.raises(FetchError) as refused:
        fetch_file(files.route(send)["url"], files_origin=origin_of(files), max_bytes=8 * 2**20)
    assert "unpacks to more than 8388608 bytes" in str(refused.value)


def test_deflate_and_multi_member_gzip_are_read(files: FileServer) -> None:
    body = b"prompt\n" + b"x" * 100_000

    def deflated(handler: BaseHTTPRequestHandler) -> None:
        data = zlib.compress(body)
        headers(handler, 200, {"Content-Encoding": "deflate", "Content-Length": str(len(data))})
        handler.wfile.write(data)

    def members(handler: BaseHTTPRequestHandler) -> None:
        data = gzip.compress(body[:10]) + gzip.compress(body[10:])
        headers(handler, 200, {"Content-Encoding": "gzip", "Content-Length": str(len(data))})
        handler.wfile.write(data)

    for route in (deflated, members):
        assert fetch_file(files.route(route)["url"], files_origin=origin_of(files), max_bytes=2**20) == body


def test_a_huge_body_is_cut_while_streaming(files: FileServer) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 200, {"Transfer-Encoding": "chunked"})
        chunk = b"a" * 65536
        for _ in range(10_000):  # 640 MiB if nobody stops reading
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    with pytest.raises(FetchError) as refused:
        fetch_file(files.route(endless)["url"], files_origin=origin_of(files), max_bytes=4 * 2**20)
    assert "too big: more than 4194304 bytes" in str(refused.value)


def test_a_declared_length_over_the_cap_is_refused_before_reading(files: FileServer) -> None:
    def big(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 200, {"Content-Length": str(10**12)})

    with pytest.raises(FetchError, match=r"too big: the file is 1000000000000 bytes; at most 1000 bytes"):
        fetch_file(files.route(big)["url"], files_origin=origin_of(files), max_bytes=1000)


def test_a_one_byte_a_second_server_is_cut_by_the_total_deadline(files: FileServer) -> None:
    stop = threading.Event()

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, 200, {"Content-Length": "100000"})
        while not stop.wait(0.2):
            handler.wfile.write(b"a")
            handler.wfile.flush()

    started = time.monotonic()
    try:
        with pytest.raises(FetchError, match=r"too slow: the download did not finish within 2 s"):
            fetch_file(files.route(trickle)["url"], files_origin=origin_of(files), max_bytes=10**6, deadline_seconds=2)
    finally:
        stop.set()
    assert time.monotonic() - started < 4


@pytest.mark.parametrize(("status", "expected"), [(404, "HTTP 404"), (500, "HTTP 500"), (403, "signed link")])
def test_a_status_says_what_the_server_answered_and_never_the_body(files: FileServer, status: int, expected: str) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        headers(handler, status, {"Content-Length": str(len(SECRET))})
        handler.wfile.write(SECRET)

    with pytest.raises(FetchError) as refused:
        fetch_file(files.route(answer)["url"], files_origin=origin_of(files), max_bytes=1000)
    assert expected in str(refused.value) and "hunter2" not in str(refused.value)


def test_an_unreachable_relative_dify_link_names_files_url_and_other_failures_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(file_fetch, "DEFAULT_DIFY_FILES_ORIGIN", Origin("http", "127.0.0.1", port))
    with pytest.raises(FetchError) as no_host:
        fetch_file("/files/abc/file-preview?sign=x", files_origin=None, max_bytes=1000)
    assert "FILES_URL" in str(no_host.value) and "refused" in str(no_host.value)
    with pytest.raises(FetchError) as not_http:
        fetch_file("ftp://example.com/a.csv", files_origin=None, max_bytes=1000)
    assert "not an http(s) file link" in str(not_http.value) and "FILES_URL" not in str(not_http.value)


def test_without_dify_files_url_the_default_origin_is_trusted_only_for_its_files_routes() -> None:
    from gateway.wire.file_fetch import _policy

    default = file_fetch.DEFAULT_DIFY_FILES_ORIGIN
    assert _policy(default, "/files/x/file-preview", None).trusted_origins == (default,)
    assert _policy(default, "/console/api/setup", None).trusted_origins == ()
    assert _policy(Origin("http", "redis", 6379), "/files/x", None).trusted_origins == ()
