"""The plugin started exactly as the Dify daemon starts it: `python -m main` with
`INSTALL_METHOD=local`, requests and responses as JSON lines over stdin/stdout.

Used by the local runner, the demo, the benchmarks and the runtime tests, so all of them see what
a workflow would receive.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.dify_api_rules import DifyAPIRefusal, MessageRules, check_line
from devtools.golden import RECORDER

REPO_ROOT = Path(__file__).resolve().parent.parent
PROVIDER = "holysheep"
_END = object()


class PluginProcessError(RuntimeError):
    """The plugin process died or did not answer in time."""


__all__ = ["DifyAPIRefusal", "Invocation", "PluginProcess", "PluginProcessError", "ToolOutcome"]


@dataclass
class ToolOutcome:
    """What a workflow node receives from one tool invocation."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The node's built-in `text` output: every text message, joined."""
        return "".join(self.text_chunks)

    @property
    def text_chunks(self) -> list[str]:
        """Text messages as they arrived: what a chatflow Answer node streams."""
        return [m["message"]["text"] for m in self.messages if m.get("type") == "text"]

    @property
    def json(self) -> list[Any]:
        return [m["message"]["json_object"] for m in self.messages if m.get("type") == "json"]

    @property
    def variables(self) -> dict[str, Any]:
        """Final variables; streamed variables are concatenated, as Dify concatenates them."""
        out: dict[str, Any] = {}
        for m in self.messages:
            if m.get("type") != "variable":
                continue
            body = m["message"]
            name, value = body["variable_name"], body["variable_value"]
            if body.get("stream"):
                out[name] = out.get(name, "") + value
            else:
                out[name] = value
        return out

    @property
    def node_outputs(self) -> dict[str, Any]:
        """The tool node's outputs in a workflow: the built-in `text`, `json` and `files`, then the variables."""
        return {"text": self.text, "json": self.json, "files": [], **self.variables}

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [m["message"] for m in self.messages if m.get("type") == "log"]

    @property
    def error_message(self) -> str:
        return "" if self.error is None else str(self.error.get("message", ""))


class Invocation:
    """One session: iterate to get messages as they arrive, or call `outcome()`."""

    def __init__(
        self, session_id: str, inbox: queue.Queue[Any], timeout: float, *, tool_messages: bool = True, request: dict[str, Any] | None = None
    ) -> None:
        self.session_id = session_id
        self._request = request or {}
        self._inbox = inbox
        self._timeout = timeout
        self._outcome = ToolOutcome()
        self._finished = False
        # Tool invocations answer with tool messages, which the Dify API validates; validation answers do not.
        self._rules = MessageRules() if tool_messages else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + self._timeout
        while not self._finished:
            try:
                item = self._inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise PluginProcessError(f"session {self.session_id}: no answer within {self._timeout:.0f}s") from None
            if item is _END:
                self._finished = True
                if self._rules is not None:
                    self._rules.finish()
                RECORDER.record(self._request, self._outcome.messages, self._outcome.error)
                return
            if isinstance(item, PluginProcessError | DifyAPIRefusal):
                self._finished = True
                raise item
            data = item["data"]
            if data.get("type") == "error":
                self._outcome.error = data.get("data") or {}
                continue
            if data.get("type") == "stream":
                message = data["data"]
                if self._rules is not None:
                    self._rules.check(message)  # what the Dify API would refuse fails here, in every caller
                self._outcome.messages.append(message)
                yield message

    def outcome(self) -> ToolOutcome:
        for _ in self:
            pass
        return self._outcome


class PluginProcess:
    """Start with `with PluginProcess() as plugin:`; `plugin.invoke_tool(...)` / `plugin.validate(...)`."""

    def __init__(
        self,
        root: Path | str = REPO_ROOT,
        *,
        python: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.root = Path(root)
        self.python = python or sys.executable
        self.extra_env = env or {}
        self.timeout = timeout
        self._sessions: dict[str, queue.Queue[Any]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.heartbeats = 0
        self.largest_line = 0  # bytes of the longest stdout line so far (the daemon's limit is 5 MiB)
        # What the SDK's log handler sends (`{"event": "log"}`): the daemon writes it to the plugin's log.
        self.log_lines: list[dict[str, Any]] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        # What the daemon keeps for `self.session.storage`: per plugin, bytes by key.
        self.storage: dict[str, bytes] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PluginProcess:
        env = {**os.environ, "INSTALL_METHOD": "local", "PYTHONUNBUFFERED": "1", **self.extra_env}
        env.pop("REMOTE_INSTALL_URL", None)
        self.process = subprocess.Popen(
            [self.python, "-m", "main"],
            cwd=self.root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._reader = threading.Thread(target=self._read_stdout, name="plugin-stdout", daemon=True)
        self._reader.start()
        return self

    def close(self) -> None:
        # Closing stdin would make the SDK's reader spin on EOF: stop the process instead, as the daemon does.
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)  # it reads stderr once stdout ends: close stderr after it
        self._stderr.close()

    def __enter__(self) -> PluginProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def rss_bytes(self) -> int:
        """Resident memory of the plugin process now (Linux)."""
        return self._status_kib("VmRSS") * 1024

    @property
    def peak_rss_bytes(self) -> int:
        """The most resident memory the plugin process has used (Linux)."""
        return self._status_kib("VmHWM") * 1024

    @property
    def cpu_seconds(self) -> float:
        """CPU time (user and system) the plugin process has used so far (Linux)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _status_kib(self, field: str) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        return 0

    def stderr_text(self) -> str:
        if self._stderr.closed:  # the reader thread may ask after close()
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ requests

    def invoke_tool(
        self,
        tool: str,
        parameters: dict[str, Any],
        credentials: dict[str, Any],
        *,
        timeout: float | None = None,
        user_id: str = "local-runner",
        app_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
    ) -> Invocation:
        """As the daemon invokes a tool for a workflow: `user_id` in the request, and the app, conversation and
        message ids (when the call comes from an app) beside it, where the SDK puts them on `self.session`."""
        context = {"app_id": app_id, "conversation_id": conversation_id, "message_id": message_id}
        return self._request(
            {
                "type": "tool",
                "action": "invoke_tool",
                "user_id": user_id,
                "provider": PROVIDER,
                "tool": tool,
                "credentials": credentials,
                "credential_type": "api-key",
                "tool_parameters": parameters,
            },
            timeout,
            context={k: v for k, v in context.items() if v is not None},
        )

    def run_tool(self, tool: str, parameters: dict[str, Any], credentials: dict[str, Any], **kwargs: Any) -> ToolOutcome:
        return self.invoke_tool(tool, parameters, credentials, **kwargs).outcome()

    def validate(self, credentials: dict[str, Any], *, timeout: float | None = None) -> tuple[bool, str]:
        """(True, "") when the credentials are accepted, else (False, the message a user would see)."""
        outcome = self._request(
            {
                "type": "tool",
                "action": "validate_tool_credentials",
                "user_id": "local-runner",
                "provider": PROVIDER,
                "credentials": credentials,
            },
            timeout,
        ).outcome()
        if outcome.error is not None:
            return False, outcome.error_message
        accepted = any(m.get("result") is True for m in outcome.messages)
        return accepted, "" if accepted else json.dumps(outcome.messages)

    def _request(self, data: dict[str, Any], timeout: float | None, *, context: dict[str, str] | None = None) -> Invocation:
        if self.process is None or self.process.poll() is not None:
            raise PluginProcessError(f"the plugin process is not running\n{self.stderr_text()[-4000:]}")
        session_id = f"s{next(self._ids)}-{os.getpid()}"
        inbox: queue.Queue[Any] = queue.Queue()
        with self._lock:
            self._sessions[session_id] = inbox
        # The daemon (Go) cannot carry a lone surrogate: its JSON encoder writes U+FFFD instead. Do the same.
        line = json.dumps({"session_id": session_id, **(context or {}), "event": "request", "data": data}, ensure_ascii=False)
        line = line.encode("utf-8", "surrogatepass").decode("utf-8", "replace") + "\n"
        with self._write_lock:
            assert self.process.stdin is not None
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
        return Invocation(session_id, inbox, timeout or self.timeout, tool_messages=data["action"] == "invoke_tool", request=data)

    def _answer_backwards_invocation(self, session_id: str, invocation: dict[str, Any]) -> None:
        """Plays the daemon's side of a backwards invocation. Only plugin storage is emulated; anything
        else is answered with an error, as a daemon without that feature would."""
        request_id = invocation.get("backwards_request_id", "")
        request = invocation.get("request") or {}
        replies: list[dict[str, Any]] = []
        if invocation.get("type") == "storage":
            key, opt = str(request.get("key", "")), request.get("opt")
            if opt == "set":
                self.storage[key] = bytes.fromhex(request.get("value", ""))
                replies.append({"event": "response", "message": "", "data": {"data": "ok"}})
            elif opt == "get" and key in self.storage:
                replies.append({"event": "response", "message": "", "data": {"data": self.storage[key].hex()}})
            elif opt == "get":
                replies.append({"event": "error", "message": f"key not found: {key}", "data": None})
            elif opt == "exist":
                replies.append({"event": "response", "message": "", "data": {"data": key in self.storage}})
            elif opt == "del":
                self.storage.pop(key, None)
                replies.append({"event": "response", "message": "", "data": {"data": "ok"}})
        if not replies:
            replies.append({"event": "error", "message": f"unsupported backwards invocation {invocation.get('type')!r}", "data": None})
        replies.append({"event": "end", "message": "", "data": None})
        lines = "".join(
            json.dumps({"session_id": session_id, "event": "backwards_response", "data": {"backwards_request_id": request_id, **reply}})
            + "\n"
            for reply in replies
        )
        with self._write_lock:
            assert self.process is not None and self.process.stdin is not None
            self.process.stdin.write(lines.encode())
            self.process.stdin.flush()

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            self.largest_line = max(self.largest_line, len(raw))
            try:
                check_line(raw)
            except DifyAPIRefusal as refusal:
                self._refuse_line(raw, refusal)
                continue
            try:
                message = json.loads(raw)
            except ValueError:
                # Not JSON: the daemon logs the line and drops it. A stray print is harmless; a protocol
                # line that arrives cut is a message lost (say, a tool's variable): fail the sessions.
                if raw.startswith(b'{"') and raw.endswith(b"\n"):  # (no newline: the process died mid-line, said below)
                    self._refuse_line(raw, PluginProcessError(f"a protocol line arrived cut ({len(raw)} bytes, not valid JSON): the daemon drops it"))
                continue
            if message.get("event") == "heartbeat":
                self.heartbeats += 1
                continue
            if message.get("event") == "log":
                self.log_lines.append(message.get("data") or {})
                continue
            session_id = message.get("session_id")
            with self._lock:
                inbox = self._sessions.get(session_id)
            if inbox is None or message.get("event") != "session":
                continue
            if message["data"].get("type") == "invoke":
                self._answer_backwards_invocation(session_id, message["data"].get("data") or {})
                continue
            inbox.put(message)
            if message["data"].get("type") == "end":  # the SDK sends "end" after an "error" too
                inbox.put(_END)
                with self._lock:
                    self._sessions.pop(session_id, None)
        died = PluginProcessError(f"the plugin process exited\n{self.stderr_text()[-4000:]}")
        with self._lock:
            for inbox in self._sessions.values():
                inbox.put(died)
            self._sessions.clear()

    def _refuse_line(self, raw: bytes, refusal: DifyAPIRefusal | PluginProcessError) -> None:
        """The daemon would drop this line (or the plugin for it): fail the session that wrote it (every
        open session when the line does not say which)."""
        try:
            session_id = json.loads(raw).get("session_id")
        except ValueError:
            session_id = None
        with self._lock:
            inboxes = [self._sessions[session_id]] if session_id in self._sessions else list(self._sessions.values())
        for inbox in inboxes:
            inbox.put(refusal)

    def invoke_endpoint(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        settings: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        hook_id: str = "local-hook",
        timeout: float | None = None,
    ) -> EndpointResponse:
        """One HTTP request to the plugin's endpoints, as the daemon sends it: the request rewritten to the
        endpoint's path (``/e/<hook id>`` removed), ``Dify-Hook-Id`` and ``Dify-Hook-Url`` added, serialised
        as raw HTTP/1.1 and hex-encoded in an ``invoke_endpoint`` request with the endpoint's (decrypted)
        settings. The answer is the SDK's stream: status and headers, then the body in hex chunks. ``path``
        may carry a query string. Works for any path and method the manifest declares."""
        target = path if path.startswith("/") else "/" + path
        lines = [f"{method.upper()} {target} HTTP/1.1", f"Host: {host}"]
        sent = {"host"}
        for name, value in (headers or {}).items():
            if name.lower() in ("host", "content-length", "transfer-encoding"):
                continue
            lines.append(f"{name}: {value}")
            sent.add(name.lower())
        if "user-agent" not in sent:
            lines.append("User-Agent: holysheep-devtools")
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        lines.append(f"Dify-Hook-Id: {hook_id}")
        if "dify-hook-url" not in sent:
            lines.append(f"Dify-Hook-Url: http://{host}/e/{hook_id}{target.split('?', 1)[0]}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
        invocation = self._request(
            {"type": "endpoint", "action": "invoke_endpoint", "settings": settings or {}, "raw_http_request": raw.hex()},
            timeout,
        )
        outcome = invocation.outcome()
        if outcome.error is not None:
            raise PluginProcessError(f"endpoint invocation failed: {outcome.error_message}")
        response = EndpointResponse()
        for message in outcome.messages:
            if "status" in message:
                response.status = int(message["status"])
            if "headers" in message:
                response.headers.update({str(k): str(v) for k, v in (message.get("headers") or {}).items()})
            if message.get("result"):
                response.body += bytes.fromhex(message["result"])
        return response


@dataclass
class EndpointResponse:
    """What the daemon relays to the HTTP client for one endpoint invocation."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")
