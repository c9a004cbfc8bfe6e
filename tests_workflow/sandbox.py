"""A local stand-in for dify-sandbox, the service Dify's Code nodes run in, speaking its protocol:
`POST /v1/sandbox/run` with header `X-Api-Key` and body `{"language": "python3" | "nodejs", "code",
"preload", "enable_network"}`, answered `{"code": 0, "message": "success", "data": {"error", "stdout"}}`
(a program's own failure is `data.error` with code 0, as the sandbox reports it; a wrong key is 401).

graphon's Code node posts there (graphon.dsl.code_runtime), wraps the node's code in its runner and
reads the result between `<<RESULT>>` tags from stdout. The program runs here in a plain subprocess
with a timeout: the isolation of the real sandbox (seccomp, no network) is not what the tier tests.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RUN_PATH = "/v1/sandbox/run"
# dify-sandbox's default WORKER_TIMEOUT is 15 s; a recipe's wait (a Code node sleeping) stays below it.
TIMEOUT_SECONDS = 15.0


def run_program(language: str, code: str, preload: str, timeout: float = TIMEOUT_SECONDS) -> dict[str, str]:
    """`data` of the sandbox's answer: the program's stdout, and its error (stderr or a timeout) if it failed."""
    if language == "python3":
        command = [sys.executable, "-c", f"{preload}\n{code}" if preload else code]
    elif language == "nodejs" and shutil.which("node"):
        command = [str(shutil.which("node")), "-e", f"{preload}\n{code}" if preload else code]
    else:
        return {"stdout": "", "error": f"unsupported language {language!r}"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"stdout": "", "error": f"error: timeout after {timeout:g}s"}
    return {"stdout": done.stdout, "error": done.stderr if done.returncode != 0 else ""}


class SandboxServer:
    """dify-sandbox on 127.0.0.1 and a free port, for as long as the `with` block lasts."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self.api_key = secrets.token_hex(16)
        self.timeout = timeout
        self.runs: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != RUN_PATH:
                    return self._answer(HTTPStatus.NOT_FOUND, {"code": -1, "message": "not found"})
                if self.headers.get("X-Api-Key") != server.api_key:
                    return self._answer(HTTPStatus.UNAUTHORIZED, {"code": -401, "message": "Unauthorized"})
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                    language, code, preload = str(body["language"]), str(body["code"]), str(body.get("preload") or "")
                except (ValueError, KeyError, TypeError) as exc:
                    return self._answer(HTTPStatus.BAD_REQUEST, {"code": -400, "message": f"bad request: {exc}"})
                data = run_program(language, code, preload, server.timeout)
                server.runs.append({"language": language, **data})
                return self._answer(HTTPStatus.OK, {"code": 0, "message": "success", "data": data})

            def _answer(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def settings(self) -> dict[str, Any]:
        """graphon's `code` credentials (DslCodeSettings): where the Code nodes' sandbox is and its key."""
        return {"execution_endpoint": self.endpoint, "execution_api_key": self.api_key, "read_timeout": self.timeout + 5}

    def __enter__(self) -> SandboxServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
