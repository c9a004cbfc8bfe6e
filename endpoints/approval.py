"""The approval link endpoint: GET /approval shows what the link would do (and changes nothing, so chat
apps' link previews and mail scanners cannot decide); POST /approval applies it once.

Settings (the endpoint's, in Dify): ``link_secret`` (verifies the links' HMAC) and ``redis_url`` (the
approval store and the single-use record; required). The decision goes through
``approval.decisions.apply_link_decision``: the same Redis store and state machine as approval_transition.

The endpoint does not know the workspace's API key, so it acts in the workspace the signed link names
(``LinkClaims.scope``), and only when that workspace signed links with this endpoint's secret
(``approval.decisions.LinkSecrets``). Otherwise the page is the one for a request that does not exist:
another workspace's records are neither shown, changed nor confirmed to exist.
"""

from __future__ import annotations

import html
import time
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dify_plugin import Endpoint
from werkzeug import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from approval.decisions import (
    APPLIED,
    UNKNOWN_REQUEST,
    DecisionOutcome,
    LinkPreview,
    LinkSecrets,
    apply_link_decision,
    preview_link,
    unknown_request,
)
from approval.links import BAD_SIGNATURE, LINK_EXPIRED, TOKEN_PARAM, LinkClaims, LinkError, check_secret, verify_link
from approval.store import StoreUnavailable
from gateway.errors import register_secret
from gateway.keys import Keys

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
}
LINK_STATUS = {BAD_SIGNATURE: 403, LINK_EXPIRED: 410}
VERB = {"approve": "Approve", "reject": "Reject"}


class ApprovalLinkEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        try:
            return handle(r, settings)
        except Exception as exc:  # a page, never a traceback (the SDK would echo the exception text)
            return page(500, "Something went wrong", f"The approval endpoint failed ({type(exc).__name__}); nothing was applied.")


def handle(r: Request, settings: Mapping[str, Any]) -> Response:
    if r.method not in ("GET", "POST"):
        return page(405, "Method not allowed", "Open the link (GET), then confirm (POST).")
    secret_setting = str(settings.get("link_secret") or "").strip()
    redis_url = str(settings.get("redis_url") or "").strip()
    if not secret_setting:
        return page(503, "Approval links are not set up", "This endpoint has no link_secret in its settings: set the same "
                    "link_secret that approval_route signs with (Plugins > HolySheep > Endpoints).")
    try:
        secret = check_secret(secret_setting)
    except ValueError as exc:
        return page(503, "Approval links are not set up", f"The endpoint's {exc}.")
    register_secret(secret)
    if not redis_url:
        return page(503, "Approval links need Redis", "This endpoint has no redis_url in its settings. Links are single-use "
                    "and decisions go to the Redis approval store: set the same redis_url as the provider's credentials.")
    password = urllib.parse.urlsplit(redis_url).password if "://" in redis_url else None
    if password:
        register_secret(password)  # the password only: the host and port are what an error should name
    try:
        token = (r.form.get(TOKEN_PARAM) if r.method == "POST" else None) or r.args.get(TOKEN_PARAM, "")
    except RequestEntityTooLarge:  # werkzeug's max_form_parts (1,000) or max_form_memory_size: the client's doing
        return page(413, "Request too large", "The form has more fields or data than an approval link ever sends; nothing was applied.")
    now = time.time()
    try:
        claims = verify_link(token, secret, now)
    except LinkError as exc:
        return page(LINK_STATUS.get(exc.code, 400), "This link cannot be used", f"Refused, nothing changed: {exc}.")
    from approval.dead_letters import DeadLetterQueue
    from approval.redis_store import RedisApprovalStore

    try:
        store = RedisApprovalStore.from_url(redis_url, Keys(claims.scope))
    except ValueError:
        return page(503, "Approval links need Redis", "The endpoint's redis_url is not a Redis URL; use redis://:PASSWORD@host:6379/0.")
    try:
        owned = LinkSecrets(store.client, store.keys).known(secret)
        preview = preview_link(store, claims) if r.method == "GET" and owned else None
    except StoreUnavailable as exc:
        return page(503, "Approval store unavailable", f"{exc}")
    if not owned:  # the workspace named by the link never signed with this secret: as for an unknown request
        outcome = DecisionOutcome(UNKNOWN_REQUEST, unknown_request(claims.request_id))
        if r.method == "GET":
            return confirmation_page(claims, LinkPreview(False, outcome.message), token)
    elif preview is not None:
        return confirmation_page(claims, preview, token)
    else:
        outcome = apply_link_decision(store, claims, now=now, dlq=DeadLetterQueue(store.client, store.keys))
    title = {
        APPLIED: f"{'Approved' if claims.event == 'approve' else 'Rejected'}",
        "refused": "Refused",
        "already_used": "Link already used",
        "unavailable": "Not applied",
        "unknown_request": "Unknown request",
    }[outcome.status]
    rows = details(claims)
    if outcome.result is not None:
        rows.append(("State now", f"{outcome.result.state} (version {outcome.result.version})"))
    if outcome.first and outcome.first.get("status"):
        rows.append(("First use", f"{outcome.first.get('status')}: {outcome.first.get('message', '')}"))
    return page(outcome.http_status, title, outcome.message, rows)


def details(claims: LinkClaims) -> list[tuple[str, str]]:
    return [
        ("Request", claims.request_id),
        ("Decision", VERB[claims.event]),
        ("Approver", f"{claims.approver_id} ({claims.level})"),
        ("Link valid until", datetime.fromtimestamp(claims.expires_at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")),
    ]


def confirmation_page(claims: LinkClaims, preview: LinkPreview, token: str) -> Response:
    rows = details(claims)
    if preview.record is not None:
        rows.append(("State now", f"{preview.record.state} (version {preview.record.version}), needs {preview.record.required_level}"))
    if not preview.usable:
        if preview.first and preview.first.get("status"):
            rows.append(("First use", f"{preview.first.get('status')}: {preview.first.get('message', '')}"))
        return page(409, "This link cannot be used", preview.message, rows)
    # The token is in the page's URL already; the form repeats it as a field, so the POST carries it even
    # where something drops the query string. No action attribute: the form posts to this same URL.
    form = (
        '<form method="post">'
        + f'<input type="hidden" name="{TOKEN_PARAM}" value="{html.escape(token, quote=True)}">'
        + f'<button type="submit" class="{claims.event}">{VERB[claims.event]} request {html.escape(claims.request_id)}</button>'
        + "</form>"
    )
    return page(200, f"{VERB[claims.event]} this request?", "Nothing has been decided yet. Confirm below; the link works once.",
                rows, form=form)


def page(status: int, title: str, message: str, rows: list[tuple[str, str]] | None = None, *, form: str = "") -> Response:
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows or [])
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}}
th{{text-align:left;padding:.25rem 1rem .25rem 0;color:#555}}td{{padding:.25rem 0}}
button{{font-size:1.1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;color:#fff;cursor:pointer}}
.approve{{background:#1a7f37}}.reject{{background:#b42318}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p><table>{table}</table>{form}</body></html>
"""
    return Response(body, status=status, content_type="text/html; charset=utf-8", headers=HEADERS)


__all__ = ["ApprovalLinkEndpoint"]
