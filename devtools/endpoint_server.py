"""The plugin's endpoints on 127.0.0.1, served as the Dify daemon serves them.

Every HTTP request that reaches this server is handed to the plugin process through the runtime protocol
(``PluginProcess.invoke_endpoint``: raw HTTP, hex-encoded, with the endpoint's settings), and the
plugin's answer (status, headers, body) is written back. Any path and method the manifest's endpoint
group declares works (GET/POST /approval today, GET /metrics later). The daemon serves endpoints under
``/e/<hook id>/...``; this server accepts both that form and the bare path.

    ./dev run serve-endpoints --settings '{"link_secret": "...", "redis_url": "redis://127.0.0.1:6379/0"}' --port 8790
"""

from __future__ import annotations

import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devtools.plugin_process import PluginProcess, PluginProcessError

HOOK_PREFIX = re.compile(r"^/e/([A-Za-z0-9_-]+)(/.*)?$")
MAX_BODY = 10 * 1024 * 1024  # the daemon reads at most 10 MB of a request body
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class EndpointServer:
    """``with EndpointServer(plugin, settings) as server:`` then ``server.url``; or ``serve_forever()``."""

    def __init__(self, plugin: PluginProcess, settings: dict[str, Any] | None = None, *, port: int = 0, hook_id: str = "local") -> None:
        self.plugin = plugin
        self.settings = dict(settings or {})
        self.hook_id = hook_id
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                server.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                sys.stderr.write("endpoint %s\n" % (format % args))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint_url(self, path: str) -> str:
        """The URL Dify would show for an endpoint path: ``http://127.0.0.1:PORT/e/<hook id><path>``."""
        return f"{self.url}/e/{self.hook_id}{path}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        target = request.path
        path, _, query = target.partition("?")
        match = HOOK_PREFIX.match(path)
        if match:  # as the daemon: the endpoint sees its own path
            path = match.group(2) or "/"
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(request, 413, {"Content-Type": "text/plain"}, b"request body too large")
            return
        body = request.rfile.read(length) if length else b""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP and "_" not in k}
        hook_url = f"http://{request.headers.get('Host') or f'127.0.0.1:{self.port}'}/e/{self.hook_id}{path}"
        headers.setdefault("Dify-Hook-Url", hook_url)
        try:
            answer = self.plugin.invoke_endpoint(
                request.command, path + (f"?{query}" if query else ""), headers=headers, body=body,
                settings=self.settings, host=request.headers.get("Host") or "127.0.0.1", hook_id=self.hook_id,
            )
        except PluginProcessError as exc:
            self._reply(request, 502, {"Content-Type": "text/plain"}, f"plugin error: {exc}".encode()[:2000])
            return
        self._reply(request, answer.status or 500, answer.headers, answer.body, head=request.command == "HEAD")

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes, *, head: bool = False) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in HOP_BY_HOP:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if not head:
            request.wfile.write(body)

    def start(self) -> EndpointServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="endpoint-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> EndpointServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.httpd.server_close()


def serve(settings: dict[str, Any], port: int) -> int:
    """Start the plugin as the daemon does and serve its endpoints until interrupted."""
    with PluginProcess() as plugin:
        server = EndpointServer(plugin, settings, port=port)
        print(f"serving the plugin's endpoints on {server.url} (Ctrl-C to stop)")
        print(f"approval endpoint URL (approval_route's approval_endpoint_url): {server.endpoint_url('/approval')}")
        sys.stdout.flush()
        server.serve_forever()
    return 0


__all__ = ["EndpointServer", "serve"]
