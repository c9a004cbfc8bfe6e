"""GET /metrics: one workspace's gateway-call figures in the Prometheus text format, for a Prometheus to scrape.

One plugin process serves every workspace of a Dify instance, and dify_plugin 0.10 gives an endpoint no
tenant id (an endpoint request carries its settings and the raw HTTP request only). So the endpoint learns
whose figures to show from its settings: ``api_key``, the workspace's gateway API key (the
``api_key`` of its provider credentials). Figures are kept under that key's workspace scope
(`gateway.state.keys.workspace_scope`, a keyed digest, never the key), the same scope the workspace's tools
record under, so the exposition holds that workspace's figures and nothing of any other.

Settings (the endpoint's, in Dify): ``metrics_token`` (required: a scrape must send
``Authorization: Bearer <metrics_token>``; compared in constant time; 401 without it, no figures),
``api_key`` (required: 503 saying what to set without it) and ``redis_url`` (the same as the
provider credentials': the figures summed over every plugin process; without it, the figures of the one
plugin process that answers, and the exposition says so in ``holysheep_metrics_scope``). The exposition
is written by prometheus_client (`gateway.metrics`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from dify_plugin import Endpoint
from werkzeug import Request, Response

from gateway.config import sanitize_api_key
from gateway.errors import FieldError, register_secret
from gateway.state.keys import workspace_scope

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
MIN_TOKEN_CHARS = 16
WHERE = "this endpoint's settings (Plugins > HolySheep > Endpoints)"


class MetricsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        try:
            return handle(r, settings)
        except Exception as exc:  # a short message, never a traceback or a figure
            return text(500, f"metrics failed ({type(exc).__name__})\n")


def handle(r: Request, settings: Mapping[str, Any]) -> Response:
    token = str(settings.get("metrics_token") or "").strip()
    if not token:
        return text(503, f"metrics are off: set metrics_token in {WHERE}\n")
    register_secret(token)
    if len(token) < MIN_TOKEN_CHARS:
        return text(503, f"metrics_token is too short: use at least {MIN_TOKEN_CHARS} random characters (e.g. openssl rand -hex 32)\n")
    if not authorized(r.headers.get("Authorization") or "", token):
        response = text(401, "unauthorized: send Authorization: Bearer <metrics_token>\n")
        response.headers["WWW-Authenticate"] = 'Bearer realm="holysheep-metrics"'
        return response
    if r.method not in ("GET", "HEAD"):
        return text(405, "use GET\n")
    workspace = workspace_of(settings)
    if isinstance(workspace, Response):
        return workspace
    import services
    from gateway.metrics import WorkspaceMetrics, exposition

    backends = services.current().gateway.backends  # where this process's tools count their calls
    redis_url = str(settings.get("redis_url") or "").strip()
    try:
        body = exposition(WorkspaceMetrics(backends.metrics_for(redis_url), workspace))
    except Exception as exc:  # Redis unreachable: say so instead of showing one process's figures as the sum
        return text(503, f"cannot read the shared metrics from Redis ({type(exc).__name__}): check the endpoint's redis_url\n")
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(body, status=200, headers={**HEADERS, "Content-Type": CONTENT_TYPE_LATEST})


def workspace_of(settings: Mapping[str, Any]) -> str | Response:
    """The workspace whose figures this endpoint shows: the scope of `api_key`, read as the
    provider credentials read `api_key` (so the same key gives the same scope); a 503 saying what to
    set when it is missing or unusable."""
    raw = settings.get("api_key")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return text(
            503,
            f"metrics need to know whose figures to show: set api_key in {WHERE} to this workspace's "
            "gateway API key (the same api_key as in the HolySheep provider credentials)\n",
        )
    try:  # its messages never repeat the key
        api_key = sanitize_api_key(raw)
    except FieldError as exc:
        return text(503, f"api_key (this endpoint's setting) {exc.problem}\n")
    register_secret(api_key)
    return workspace_scope(api_key)


def authorized(header: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time (as bytes: any characters)."""
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass"))


def text(status: int, message: str) -> Response:
    return Response(message, status=status, headers={**HEADERS, "Content-Type": "text/plain; charset=utf-8"})
