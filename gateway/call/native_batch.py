"""The gateway's own Batch API (OpenAI format: /v1/files and /v1/batches), for jobs in native mode.

Built on the same transport layer as chat calls (`gateway.wire.transport.Endpoint`: deadline, status
classification, redaction); the multipart file upload is sent as bytes through that same endpoint.
Nothing here retries on its own: a job polls again on its next status call.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from gateway.config import GatewayConfig
from gateway.errors import GatewayError, NotOpenAICompatibleError, Redactor, UpstreamUnavailableError, register_secret
from gateway.wire.http_transport import HTTPTransport
from gateway.wire.transport import AttemptFailed, BodyReadError, Deadline, Endpoint, read_body
from untrusted import quote

CHAT_URL = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
# An output file larger than this is not read (a job holds at most MAX job items of bounded size).
MAX_OUTPUT_BYTES = 512 * 1024 * 1024
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

__all__ = ["COMPLETION_WINDOW", "TERMINAL", "NativeBatch", "NativeBatchClient", "batch_line"]


@dataclass(frozen=True)
class NativeBatch:
    """The gateway's view of one batch."""

    id: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    request_counts: dict[str, int]

    @classmethod
    def from_json(cls, data: Any) -> NativeBatch:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("status"), str):
            raise NotOpenAICompatibleError(f"the gateway's batch object is not in the OpenAI format: {quote(str(data)[:200])}")
        counts = data.get("request_counts") if isinstance(data.get("request_counts"), dict) else {}
        return cls(
            data["id"],
            data["status"],
            data.get("output_file_id") if isinstance(data.get("output_file_id"), str) else None,
            data.get("error_file_id") if isinstance(data.get("error_file_id"), str) else None,
            {k: int(v) for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)},
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def batch_line(custom_id: str, payload: dict[str, Any]) -> bytes:
    """One line of a batch input file."""
    line = {"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": payload}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class NativeBatchClient:
    """Files and batches on one gateway with one key."""

    def __init__(self, config: GatewayConfig, transport: HTTPTransport | None = None) -> None:
        register_secret(config.api_key)
        self.config = config
        self.redact = Redactor([config.api_key])
        self.transport = transport or HTTPTransport(config, self.redact)
        self.endpoint = Endpoint(self.transport, config.base_url, self.redact)

    def close(self) -> None:
        self.transport.close()

    def _json(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | bytes | None,
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> Any:
        deadline = Deadline(timeout)
        try:
            response = self.endpoint.send(method, path, payload, deadline, headers=headers)
            return self.endpoint.read_json(response, deadline)
        except AttemptFailed as failed:
            raise failed.attempt.error from None

    def supported(self, timeout: float = 15.0) -> bool:
        """True when the gateway serves the Batch API (GET /batches answers a list)."""
        try:
            data = self._json("GET", "/batches?limit=1", None, timeout)
        except GatewayError as exc:
            if exc.status in (404, 405, 501) or isinstance(exc, NotOpenAICompatibleError):
                return False
            raise
        return isinstance(data, dict) and isinstance(data.get("data"), list)

    def upload(self, content: bytes, filename: str, timeout: float = 120.0) -> str:
        """POST /files (multipart, purpose=batch); the file id."""
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'.encode(),
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode(),
                b"Content-Type: application/jsonl\r\n\r\n",
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        data = self._json("POST", "/files", body, timeout, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise NotOpenAICompatibleError(f"{self.config.base_url}/files did not answer with a file object")
        return str(data["id"])

    def create(self, input_file_id: str, metadata: dict[str, str] | None = None, timeout: float = 30.0) -> NativeBatch:
        payload: dict[str, Any] = {"input_file_id": input_file_id, "endpoint": CHAT_URL, "completion_window": COMPLETION_WINDOW}
        if metadata:
            payload["metadata"] = metadata
        return NativeBatch.from_json(self._json("POST", "/batches", payload, timeout))

    def retrieve(self, batch_id: str, timeout: float = 30.0) -> NativeBatch:
        return NativeBatch.from_json(self._json("GET", f"/batches/{_safe_id(batch_id)}", None, timeout))

    def cancel(self, batch_id: str, timeout: float = 30.0) -> NativeBatch:
        return NativeBatch.from_json(self._json("POST", f"/batches/{_safe_id(batch_id)}/cancel", None, timeout))

    def content(self, file_id: str, timeout: float = 300.0) -> bytes:
        """GET /files/{id}/content: the whole file."""
        deadline = Deadline(timeout)
        try:
            response = self.endpoint.send("GET", f"/files/{_safe_id(file_id)}/content", None, deadline)
        except AttemptFailed as failed:
            raise failed.attempt.error from None
        try:
            return read_body(response, deadline, limit=MAX_OUTPUT_BYTES)
        except BodyReadError:
            raise UpstreamUnavailableError("the connection broke while downloading the batch output") from None
        finally:
            response.close()


def _safe_id(value: str) -> str:
    if not value or not all(c.isalnum() or c in "-_." for c in value) or len(value) > 200:
        raise NotOpenAICompatibleError(f"the gateway gave an unusable id {quote(value, 60)}")
    return value


