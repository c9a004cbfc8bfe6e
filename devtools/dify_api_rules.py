"""What the Dify API refuses after the daemon has passed a message on.

The daemon forwards whatever the plugin writes; the Dify API then parses every tool message with
pydantic (`api/core/tools/entities/tool_entities.py`, `ToolInvokeMessage`) and merges blob chunks
(`merge_blob_chunks`). A refused message fails the whole tool node even when the plugin succeeded,
so every test that drives the plugin checks each message against these rules.

The rules are those of the oldest Dify this plugin declares (`minimum_dify_version`): a variable
value of `None` is refused there (it is accepted only since langgenius/dify PR #30082).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

# The daemon refuses (and drops the plugin for) a stdout line at this size or over.
MAX_LINE_BYTES = 5 * 1024 * 1024
RESERVED_VARIABLE_NAMES = frozenset({"text", "json", "files"})
MESSAGE_TYPES = frozenset(
    {"text", "image", "link", "blob", "json", "image_link", "binary_link", "variable", "file", "log", "blob_chunk", "retriever_resources"}
)
LOG_STATUSES = frozenset({"start", "error", "success"})
# merge_blob_chunks: a chunk of at most 8 KiB; TOOL_FILE_MAX_SIZE defaults to 10 MiB in a Dify deployment.
MAX_BLOB_CHUNK_BYTES = 8192
MAX_BLOB_BYTES = 10 * 1024 * 1024


class DifyAPIRefusal(AssertionError):
    """A message the Dify API would refuse: the tool node fails in a real workflow."""


class MessageRules:
    """Checks one session's messages in order (blob chunks need the messages before them)."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[int, int]] = {}  # id -> (bytes so far, next sequence)

    def check(self, message: Any) -> None:
        """Raises DifyAPIRefusal with the API's reason when the API would refuse `message`."""
        if not isinstance(message, Mapping):
            raise DifyAPIRefusal(f"a tool message must be an object, got {type(message).__name__}")
        kind = message.get("type", "text")
        if kind not in MESSAGE_TYPES:
            raise DifyAPIRefusal(f"unknown message type {kind!r}")
        body = message.get("message")
        meta = message.get("meta")
        if meta is not None and not isinstance(meta, Mapping):
            raise DifyAPIRefusal(f"'meta' must be an object or null, got {type(meta).__name__}")
        checker = getattr(self, f"_check_{kind}", None)
        if checker is not None:
            checker(body)

    def finish(self) -> None:
        """At the end of the session: a blob whose last chunk never came is lost."""
        if self._blobs:
            raise DifyAPIRefusal(f"blob chunks without an end chunk: {sorted(self._blobs)}")

    @staticmethod
    def _check_text(body: Any) -> None:
        if not isinstance(body, Mapping) or not isinstance(body.get("text"), str):
            raise DifyAPIRefusal("a text message needs a string 'text'")

    @staticmethod
    def _check_json(body: Any) -> None:
        # Lists are accepted only by newer releases; the oldest we support takes an object.
        if not isinstance(body, Mapping) or not isinstance(body.get("json_object"), Mapping):
            raise DifyAPIRefusal("a JSON message needs 'json_object' to be an object")

    @staticmethod
    def _check_variable(body: Any) -> None:
        if not isinstance(body, Mapping):
            raise DifyAPIRefusal("a variable message needs an object body")
        name, value = body.get("variable_name"), body.get("variable_value")
        if not isinstance(name, str):
            raise DifyAPIRefusal(f"variable name must be a string, got {name!r}")
        if name in RESERVED_VARIABLE_NAMES:
            raise DifyAPIRefusal(f"The variable name '{name}' is reserved.")
        if not isinstance(value, dict | list | str | int | float | bool):
            # None included: refused by every Dify release before PR #30082.
            raise DifyAPIRefusal(f"variable {name!r}: Only basic types and lists are allowed (got {type(value).__name__})")
        if body.get("stream") and not isinstance(value, str):
            raise DifyAPIRefusal(f"variable {name!r}: When 'stream' is True, 'variable_value' must be a string.")

    @staticmethod
    def _check_log(body: Any) -> None:
        if not isinstance(body, Mapping):
            raise DifyAPIRefusal("a log message needs an object body")
        if not isinstance(body.get("id"), str) or not isinstance(body.get("label"), str):
            raise DifyAPIRefusal("a log message needs string 'id' and 'label'")
        if body.get("status") not in LOG_STATUSES:
            raise DifyAPIRefusal(f"log status must be one of {sorted(LOG_STATUSES)}, got {body.get('status')!r}")
        if not isinstance(body.get("data"), Mapping):
            raise DifyAPIRefusal("a log message needs an object 'data'")

    def _check_blob_chunk(self, body: Any) -> None:
        if not isinstance(body, Mapping):
            raise DifyAPIRefusal("a blob chunk needs an object body")
        chunk_id, sequence, total, end = body.get("id"), body.get("sequence"), body.get("total_length"), body.get("end")
        if not isinstance(chunk_id, str) or not isinstance(sequence, int) or not isinstance(total, int) or not isinstance(end, bool):
            raise DifyAPIRefusal("a blob chunk needs 'id' (string), 'sequence' and 'total_length' (integers) and 'end' (boolean)")
        try:
            data = base64.b64decode(body.get("blob") or "", validate=True)
        except (binascii.Error, ValueError):
            raise DifyAPIRefusal(f"blob chunk {chunk_id!r}: 'blob' is not base64") from None
        if not 0 < total <= MAX_BLOB_BYTES:
            raise DifyAPIRefusal(f"blob {chunk_id!r}: total_length {total} must be positive and at most {MAX_BLOB_BYTES}")
        written, expected = self._blobs.get(chunk_id, (0, 0))
        if sequence != expected:
            raise DifyAPIRefusal(f"blob {chunk_id!r}: chunk {sequence} arrived where chunk {expected} was due")
        if len(data) > MAX_BLOB_CHUNK_BYTES:
            raise DifyAPIRefusal(f"blob {chunk_id!r}: File chunk is too large which reached the limit of 8KB")
        if written + len(data) > total:
            raise DifyAPIRefusal(f"blob {chunk_id!r}: more bytes than its total_length {total}")
        if end:
            self._blobs.pop(chunk_id, None)
        else:
            self._blobs[chunk_id] = (written + len(data), sequence + 1)


def check_line(raw: bytes) -> None:
    """One stdout line as the daemon reads it."""
    if len(raw) >= MAX_LINE_BYTES:
        raise DifyAPIRefusal(f"a stdout line of {len(raw)} bytes: the daemon stops the plugin at {MAX_LINE_BYTES}")
