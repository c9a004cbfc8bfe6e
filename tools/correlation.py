"""The ids and names an invocation is known by: its correlation id, the tool's metrics label and the
Dify app and user calling it."""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from typing import Any

from gateway.spend.budget import Identity


def correlation_id(tool: Any) -> str:
    """The invocation's correlation id: `hs-` and 24 hex digits of a SHA-256 over what Dify sends about it
    (the session id; the app, conversation, message and user ids when present), so the same invocation
    always gets the same id and none of those ids leaves the plugin. It goes to the gateway as
    X-Request-Id, into the outputs, every error message and every log line of the invocation; batch items
    add `-<index>`. Without a session id (a caller outside the daemon) a random part keeps it unique."""
    known = getattr(tool, "_holysheep_correlation_id", None)
    if known:
        return str(known)
    session = getattr(tool, "session", None)
    runtime = getattr(tool, "runtime", None)
    session_id = getattr(session, "session_id", None) or getattr(runtime, "session_id", None) or ""
    parts = [
        str(session_id),
        str(getattr(session, "app_id", None) or ""),
        str(getattr(session, "conversation_id", None) or ""),
        str(getattr(session, "message_id", None) or ""),
        str(getattr(runtime, "user_id", None) or ""),
    ]
    if not session_id:
        parts.append(uuid.uuid4().hex)
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]
    value = f"hs-{digest}"
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        tool._holysheep_correlation_id = value  # one id for the whole invocation
    return value


def tool_label(tool: Any) -> str:
    """The tool's name as a metrics label: ChatTool -> chat, StreamChatTool -> stream_chat."""
    name = type(tool).__name__.removesuffix("Tool") or "other"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()[:40]


def caller_identity(tool: Any) -> Identity:
    """The Dify app and user calling the tool, as plain strings (empty when the daemon gives none)."""
    session = getattr(tool, "session", None)
    runtime = getattr(tool, "runtime", None)
    app_id = getattr(session, "app_id", None) or ""
    user_id = getattr(runtime, "user_id", None) or ""
    return Identity(app_id=str(app_id)[:200], user_id=str(user_id)[:200])
