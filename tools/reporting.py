"""How a tool's failure reaches the workflow: one HolySheepToolError whose message says what to fix, ends
with the invocation's ids and holds no secret; and the call log sent to the daemon's plugin log."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator
from functools import wraps
from typing import Any

import redis

import services
from gateway import GatewayError
from gateway.errors import FieldError, redact_known_secrets
from specs.input_errors import ToolInputError
from tools.correlation import correlation_id

__all__ = ["HolySheepToolError", "ToolInputError", "ids_suffix", "reported_errors", "shown"]

logger = logging.getLogger("holysheep")


def _send_call_log_to_daemon() -> None:
    """The gateway's one JSON line per call (`holysheep.calls`) goes to the daemon's plugin log through
    the SDK's own log handler (a `{"event": "log"}` protocol message), not to stderr."""
    from dify_plugin.config.logger_format import plugin_logger_handler

    call_log = logging.getLogger("holysheep.calls")
    if plugin_logger_handler not in call_log.handlers:
        call_log.addHandler(plugin_logger_handler)
        call_log.propagate = False


_send_call_log_to_daemon()

# What a workflow is shown of an error at most: enough to say what to fix, far under the 5 MiB line.
MAX_ERROR_CHARS = 2000


class HolySheepToolError(Exception):
    """What a workflow sees when a tool fails: a clean message, no traceback, no secret."""


def reported_errors[T](invoke: Callable[..., Generator[T, None, None]]) -> Callable[..., Generator[T, None, None]]:
    """Turns every failure of a tool's `_invoke` into one HolySheepToolError with a message that says
    what to fix; unexpected errors are logged (redacted) for the plugin author."""

    @wraps(invoke)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[T, None, None]:
        ids = _IdsOf(args[0] if args else None)
        try:
            yield from invoke(*args, **kwargs)
        except HolySheepToolError:
            raise
        except FieldError as exc:  # a tool parameter: named as the workflow editor shows it
            raise HolySheepToolError(ids.told(shown(f"'{exc.field}': {exc.problem}"))) from None
        except (ToolInputError, GatewayError) as exc:
            raise HolySheepToolError(ids.told(shown(str(exc)), getattr(exc, "request_id", None))) from None
        except redis.RedisError as exc:  # the last line: a tool that did not word a Redis outage itself
            raise HolySheepToolError(ids.told(shown(_redis_error_message(args[0] if args else None, exc)))) from None
        except Exception as exc:
            logger.error("unexpected error in tool: %s", ids.told(shown(repr(exc))))
            raise HolySheepToolError(ids.told(shown(f"internal error in the HolySheep plugin ({type(exc).__name__}): {exc}"))) from None
        finally:
            services.flush_metrics()  # the invocation's figures are in Redis before its answer ends (docs/operations.md)

    return wrapper


def _redis_error_message(tool: Any, exc: redis.RedisError) -> str:
    """A Redis error no store worded, described for the tool's redis_url when there is one: which server or
    cluster, and what to fix (a cluster node behind a redis:// URL answering MOVED, a cluster that is down)."""
    from gateway.state.redis_connection import describe_redis_error, redis_client

    credentials = getattr(getattr(tool, "runtime", None), "credentials", None) or {}
    url = str(credentials.get("redis_url") or "") if isinstance(credentials, dict) else ""
    try:
        client = redis_client(url) if url else None
    except ValueError:  # not a URL redis-py reads (validation says so)
        client = None
    if client is None:
        what = "cannot reach Redis" if isinstance(exc, redis.ConnectionError | redis.TimeoutError) else "Redis failed"
        return f"redis_url: {what} ({type(exc).__name__}); check Redis runs, ask again"
    return f"redis_url: {describe_redis_error(exc, client)}"


class _IdsOf:
    """The ids an error message of `tool`'s invocation ends with."""

    def __init__(self, tool: Any) -> None:
        self.tool = tool

    def told(self, message: str, gateway_request_id: str | None = None) -> str:
        if self.tool is None or (getattr(self.tool, "session", None) is None and getattr(self.tool, "runtime", None) is None):
            return message
        return message + ids_suffix(correlation_id(self.tool), gateway_request_id)


def ids_suffix(correlation: str, gateway_request_id: str | None = None) -> str:
    """` [correlation_id: ..., gateway_request_id: ...]`, what every error message ends with."""
    shown_id = re.sub(r"[^A-Za-z0-9._:/-]", "?", str(gateway_request_id or ""))[:100]
    return f" [correlation_id: {correlation}" + (f", gateway_request_id: {shown_id}" if shown_id else "") + "]"


def shown(message: str) -> str:
    """A message as a user may see it: no secret, bounded, valid Unicode (a lone surrogate would make the
    SDK fail to write the answer at all)."""
    text = redact_known_secrets(message[: MAX_ERROR_CHARS * 2])
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + f"… ({len(message)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
