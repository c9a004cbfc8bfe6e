"""GET /metrics: the gateway calls' figures in the Prometheus text format, for a Prometheus to scrape.

Settings (the endpoint's, in Dify): ``metrics_token`` (required: a scrape must send
``Authorization: Bearer <metrics_token>``; compared in constant time; 401 without it, no figures) and
``redis_url`` (the same as the provider credentials': the figures summed over every plugin process;
without it, the figures of the one plugin process that answers, and the exposition says so in
``holysheep_metrics_scope``). The exposition is written by prometheus_client (`gateway.metrics`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from dify_plugin import Endpoint
from werkzeug import Request, Response

from gateway.errors import register_secret

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
MIN_TOKEN_CHARS = 16


class MetricsEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        try:
            return handle(r, settings)
        except Exception as exc:  # a short message, never a traceback or a figure
            return text(500, f"metrics failed ({type(exc).__name__})\n")


def handle(r: Request, settings: Mapping[str, Any]) -> Response:
    token = str(settings.get("metrics_token") or "").strip()
    if not token:
        return text(503, "metrics are off: set metrics_token in this endpoint's settings (Plugins > HolySheep > Endpoints)\n")
    register_secret(token)
    if len(token) < MIN_TOKEN_CHARS:
        return text(503, f"metrics_token is too short: use at least {MIN_TOKEN_CHARS} random characters (e.g. openssl rand -hex 32)\n")
    if not authorized(r.headers.get("Authorization") or "", token):
        response = text(401, "unauthorized: send Authorization: Bearer <metrics_token>\n")
        response.headers["WWW-Authenticate"] = 'Bearer realm="holysheep-metrics"'
        return response
    if r.method not in ("GET", "HEAD"):
        return text(405, "use GET\n")
    from gateway.backends import metrics_for
    from gateway.metrics import exposition

    redis_url = str(settings.get("redis_url") or "").strip()
    sink = metrics_for(redis_url)
    try:
        body = exposition(sink)
    except Exception as exc:  # Redis unreachable: say so instead of showing one process's figures as the sum
        return text(503, f"cannot read the shared metrics from Redis ({type(exc).__name__}): check the endpoint's redis_url\n")
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(body, status=200, headers={**HEADERS, "Content-Type": CONTENT_TYPE_LATEST})


def authorized(header: str, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time (as bytes: any characters)."""
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass"))


def text(status: int, message: str) -> Response:
    return Response(message, status=status, headers={**HEADERS, "Content-Type": "text/plain; charset=utf-8"})
