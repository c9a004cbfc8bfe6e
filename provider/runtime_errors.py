"""Keeps tracebacks and secrets out of what the Dify runtime sends back for a failed invocation.

The SDK (dify_plugin 0.10) puts `traceback.format_exc()` into every error it reports to the daemon,
which shows it to workflow authors. Our errors already carry a message that says what to fix; the
traceback goes to stderr (the plugin's log), redacted, and the daemon gets none.
"""

from __future__ import annotations

import sys
import traceback as _traceback
from types import SimpleNamespace

from gateway.errors import redact_known_secrets


def _format_exc_for_logs_only(*_args: object, **_kwargs: object) -> str:
    sys.stderr.write(redact_known_secrets(_traceback.format_exc()))
    sys.stderr.flush()
    return ""


def install_error_reporting() -> None:
    from dify_plugin.core.server import io_server

    io_server.traceback = SimpleNamespace(format_exc=_format_exc_for_logs_only)  # type: ignore[attr-defined]
