"""Serves files over HTTP on 127.0.0.1 the way Dify's file service does for a plugin: a tool's `file`
parameter arrives as {"dify_model_identity": "__dify__file__", "url": ..., ...} and the SDK downloads
the URL (`File.blob`). Used by the runtime tests and benchmarks to hand a plugin an input file."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FILE_IDENTITY = "__dify__file__"


class FileServer:
    """`with FileServer() as files: param = files.parameter(b"...", "input.csv", "text/csv")`."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.downloads = 0
        files = self.files
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                entry = files.get(self.path.split("?", 1)[0])
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def parameter(self, content: bytes, filename: str, mime_type: str) -> dict[str, Any]:
        """The tool parameter the daemon would send for this file."""
        path = f"/files/{uuid.uuid4().hex}/{filename}"
        self.files[path] = (content, mime_type)
        return {
            "dify_model_identity": FILE_IDENTITY,
            "url": f"http://127.0.0.1:{self.server.server_address[1]}{path}",
            "mime_type": mime_type,
            "filename": filename,
            "extension": "." + filename.rsplit(".", 1)[-1],
            "size": len(content),
            "type": "document",
        }
