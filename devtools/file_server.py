"""Serves files over HTTP on 127.0.0.1 the way Dify's file service does for a plugin: a tool's `file`
parameter arrives as {"dify_model_identity": "__dify__file__", "url": ..., ...} and the plugin
downloads the URL (`gateway.wire.file_fetch`). Used by the runtime tests and benchmarks to hand a plugin an
input file, and, with `route`, to play a hostile server (a gzip bomb, an endless body, a 1 byte/s
trickle, a redirect). `connections` counts every TCP connection accepted: a test that expects the
plugin to refuse an address reads it to prove nothing connected."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FILE_IDENTITY = "__dify__file__"
# A route writes the whole answer itself: status line, headers and body, as slowly or as badly as it likes.
Route = Callable[[BaseHTTPRequestHandler], None]


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)


class FileServer:
    """`with FileServer() as files: param = files.parameter(b"...", "input.csv", "text/csv")`."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.routes: dict[str, Route] = {}
        self.downloads = 0
        files, routes = self.files, self.routes
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                route = routes.get(path)
                if route is not None:
                    server_self.downloads += 1
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the plugin hung up: what a refusal does
                        route(self)
                    self.close_connection = True
                    return
                entry = files.get(path)
                if entry is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                server_self.downloads += 1
                body, mime = entry
                self.send_response(200)
                self.send_header("Content-Type", mime)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = _CountingServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return self.server.connections

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def parameter(self, content: bytes, filename: str, mime_type: str, *, relative: bool = False) -> dict[str, Any]:
        """The tool parameter the daemon would send for this file. `relative`: the link Dify writes when
        its FILES_URL and INTERNAL_FILES_URL are empty (`/files/...`, no host)."""
        path = f"/files/{uuid.uuid4().hex}/{filename}"
        self.files[path] = (content, mime_type)
        return file_parameter(path if relative else self.origin + path, filename, mime_type, len(content))

    def route(self, handler: Route, filename: str = "input.csv", mime_type: str = "text/csv") -> dict[str, Any]:
        """A parameter whose download `handler` answers (see the module's hostile answers below)."""
        path = f"/files/{uuid.uuid4().hex}/{filename}"
        self.routes[path] = handler
        return file_parameter(self.origin + path, filename, mime_type, 0)


def file_parameter(url: str, filename: str, mime_type: str, size: int) -> dict[str, Any]:
    """The tool parameter for a file at `url`, as the daemon sends it (a remote_url file's URL is the
    end user's, unchanged)."""
    return {
        "dify_model_identity": FILE_IDENTITY,
        "url": url,
        "mime_type": mime_type,
        "filename": filename,
        "extension": "." + filename.rsplit(".", 1)[-1],
        "size": size,
        "type": "document",
    }


def headers(handler: BaseHTTPRequestHandler, status: int, fields: dict[str, str]) -> None:
    handler.send_response(status)
    for name, value in fields.items():
        handler.send_header(name, value)
    handler.end_headers()


__all__ = ["FILE_IDENTITY", "FileServer", "Route", "file_parameter", "headers"]
