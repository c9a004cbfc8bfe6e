"""The Batch API's file upload goes through the same endpoint as every call: the multipart body as it is,
the same headers, deadline and classification of failures (no second HTTP stack beside the transport)."""

from __future__ import annotations

import pytest

from gateway.call.native_batch import NativeBatchClient
from gateway.config import GatewayConfig
from gateway.errors import AuthenticationError, NotOpenAICompatibleError
from gateway.wire.transport import MemoryTransport, Reply
from tests.gateway.helpers import status

KEY = "sk-native-upload-0123456789"


def client(*replies: Reply) -> tuple[NativeBatchClient, MemoryTransport]:
    transport = MemoryTransport(replies)
    config = GatewayConfig.from_credentials({"api_key": KEY, "base_url": "http://gateway.test/v1"})
    return NativeBatchClient(config, transport=transport), transport  # type: ignore[arg-type]


def test_the_file_is_posted_as_multipart_and_its_id_returned() -> None:
    batches, transport = client(Reply.json({"id": "file-abc", "object": "file"}))
    assert batches.upload(b'{"custom_id":"0"}\n', "job.jsonl") == "file-abc"
    [(method, path, body)] = transport.sent
    [headers] = transport.sent_headers
    boundary = headers["Content-Type"].removeprefix("multipart/form-data; boundary=")
    assert (method, path) == ("POST", "/files") and boundary != headers["Content-Type"]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert b'name="purpose"\r\n\r\nbatch\r\n' in body and b'filename="job.jsonl"' in body and b'{"custom_id":"0"}\n' in body


def test_a_refused_upload_is_classified_like_any_call_and_never_shows_the_key() -> None:
    batches, _ = client(status(401, f"invalid key {KEY}"))
    with pytest.raises(AuthenticationError) as caught:
        batches.upload(b"{}\n", "job.jsonl")
    assert KEY not in str(caught.value)


def test_an_answer_that_is_not_a_file_object_says_so() -> None:
    batches, _ = client(Reply.json({"object": "file"}))
    with pytest.raises(NotOpenAICompatibleError, match="did not answer with a file object"):
        batches.upload(b"{}\n", "job.jsonl")
