"""The approval link endpoint: GET /approval shows what the link would do (and changes nothing, so chat
apps' link previews and mail scanners cannot decide); POST /approval applies it once.

Settings (the endpoint's, in Dify): ``link_secret`` (verifies the links' HMAC) and ``redis_url`` (the
approval store and the single-use record; required). The decision goes through
``approval.decisions.apply_link_decision``: the same Redis store and state machine as approval_transition.

The endpoint does not know the workspace's API key, so it acts in the workspace the signed link names
(``LinkClaims.scope``), and only when that workspace signed links with this endpoint's secret
(``approval.decisions.LinkSecrets``). Otherwise the page is the one for a request that does not exist:
another workspace's records are neither shown, changed nor confirmed to exist.

The page (``approval.decision_page``) shows what is decided: requester, amount, type and department, the
request text, risk and matched rules, the SLA deadline, in the approver's language (the link's). When the
link names its sibling's nonce, the page carries both decisions: two POST forms, each with its own
single-use link token (the sibling's token is signed again here, identical to the one the notification
carried). A GET never decides.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dify_plugin import Endpoint
from werkzeug import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from approval.decision_page import (
    HEADERS,
    DecisionForm,
    PageModel,
    Words,
    closed_page,
    confirm_page,
    language_of,
    message_page,
    outcome_page,
    render,
)
from approval.decisions import (
    APPLIED,
    UNKNOWN_REQUEST,
    LinkPreview,
    LinkSecrets,
    apply_link_decision,
    last_change,
    preview_link,
)
from approval.links import BAD_SIGNATURE, LINK_EXPIRED, TOKEN_PARAM, LinkClaims, LinkError, check_secret, sign_link, verify_link
from approval.records import StoreUnavailable
from gateway.errors import register_secret
from gateway.state.keys import Keys

if TYPE_CHECKING:  # the store's module imports redis, which a request only needs once its link checks out
    from approval.redis_store import RedisApprovalStore

LINK_STATUS = {BAD_SIGNATURE: 403, LINK_EXPIRED: 410}


class ApprovalLinkEndpoint(Endpoint):
    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        try:
            return handle(r, settings)
        except Exception as exc:  # a page, never a traceback (the SDK would echo the exception text)
            return page(message_page(500, "en_US", "Something went wrong",
                                     f"The approval endpoint failed ({type(exc).__name__}); nothing was applied."))


def page(model: PageModel) -> Response:
    return Response(render(model), status=model.status, content_type="text/html; charset=utf-8", headers=HEADERS)


def setup_page(status: int, heading: str, message: str) -> Response:
    """For the administrator: the endpoint's settings (English, like the settings form)."""
    return page(message_page(status, "en_US", heading, message))


def handle(r: Request, settings: Mapping[str, Any]) -> Response:
    """Settings, then the link token, then its workspace's store: GET previews, POST decides."""
    if r.method not in ("GET", "POST"):
        return setup_page(405, "Method not allowed", "Open the link (GET), then confirm (POST).")
    configured = configured_settings(settings)
    if isinstance(configured, Response):
        return configured
    secret, redis_url = configured
    try:
        token = (r.form.get(TOKEN_PARAM) if r.method == "POST" else None) or r.args.get(TOKEN_PARAM, "")
    except RequestEntityTooLarge:  # werkzeug's max_form_parts (1,000) or max_form_memory_size: the client's doing
        return page(message_page(413, "en_US", "Request too large",
                                 "The form has more fields or data than an approval link ever sends; nothing was applied."))
    now = time.time()
    try:
        claims = verify_link(token, secret, now)
    except LinkError as exc:
        words = Words(language_of(None, r.headers.get("Accept-Language", "")))
        return page(message_page(LINK_STATUS.get(exc.code, 400), words.language, words("link_heading"),
                                 words("link_lead", reason=str(exc))))
    from approval.redis_store import RedisApprovalStore  # redis is only imported once a link checks out

    try:
        store = RedisApprovalStore.from_url(redis_url, Keys(claims.scope))
    except ValueError:
        return setup_page(503, "Approval links need Redis", "The endpoint's redis_url is not a Redis URL; use redis://:PASSWORD@host:6379/0.")
    words = Words(claims.language)
    try:
        owned = LinkSecrets(store.client, store.keys).known(secret)
        if not owned:  # the workspace named by the link never signed with this secret: as for an unknown request
            if r.method == "GET":
                return page(closed_page(claims, None, None, None, now=now))
            return page(outcome_page(claims, UNKNOWN_REQUEST, 404, "", record=None, summary=None, first=None, now=now))
        if r.method == "GET":
            return page(preview_page(claims, preview_link(store, claims), token, secret, now))
    except StoreUnavailable as exc:
        return page(message_page(503, words.language, words("unavailable_heading"), str(exc)))
    return decide(store, claims, now)


def configured_settings(settings: Mapping[str, Any]) -> tuple[str, str] | Response:
    """(link secret, redis_url) from the endpoint's settings, both registered for redaction; or the page
    that tells the administrator what to set."""
    secret_setting = str(settings.get("link_secret") or "").strip()
    redis_url = str(settings.get("redis_url") or "").strip()
    if not secret_setting:
        return setup_page(503, "Approval links are not set up", "This endpoint has no link_secret in its settings: set the same "
                          "link_secret that approval_route signs with (Plugins > HolySheep > Endpoints).")
    try:
        secret = check_secret(secret_setting)
    except ValueError as exc:
        return setup_page(503, "Approval links are not set up", f"The endpoint's {exc}.")
    register_secret(secret)
    if not redis_url:
        return setup_page(503, "Approval links need Redis", "This endpoint has no redis_url in its settings. Links are single-use "
                          "and decisions go to the Redis approval store: set the same redis_url as the provider's credentials.")
    password = urllib.parse.urlsplit(redis_url).password if "://" in redis_url else None
    if password:
        register_secret(password)  # the password only: the host and port are what an error should name
    return secret, redis_url


def decide(store: RedisApprovalStore, claims: LinkClaims, now: float) -> Response:
    """A POST with a valid link of a workspace that signed it: apply it once, then show what stands."""
    from approval.dead_letters import DeadLetterQueue

    outcome = apply_link_decision(store, claims, now=now, dlq=DeadLetterQueue(store.client, store.keys))
    record = summary = change = None
    if outcome.status != UNKNOWN_REQUEST:
        try:  # what the approver just decided, shown again; the decision stands without it
            record = store.get(claims.request_id)
            summary = store.get_summary(claims.request_id) if record is not None else None
            change = last_change(store, record) if outcome.status != APPLIED else None
        except StoreUnavailable:
            pass
    result = outcome.result
    return page(outcome_page(
        claims, outcome.status, outcome.http_status, outcome.message, record=record, summary=summary, first=outcome.first,
        state=result.state if result is not None else "", version=result.version if result is not None else 0, now=now,
        last_change=change,
    ))


def preview_page(claims: LinkClaims, preview: LinkPreview, token: str, secret: str, now: float) -> PageModel:
    """A GET: both decisions when the link can decide (its sibling signed again, as the notification carried
    it), else why it cannot."""
    if not preview.usable or preview.record is None:
        return closed_page(claims, preview.record, preview.summary, preview.first, now=now, last_change=preview.last_change)
    forms = {claims.event: DecisionForm(claims.event, token)}
    sibling = claims.sibling()
    if sibling is not None and preview.sibling_first is None:
        forms[sibling.event] = DecisionForm(sibling.event, sign_link(sibling, secret))
    ordered = [forms[event] for event in ("approve", "reject") if event in forms]
    return confirm_page(claims, preview.record, preview.summary, ordered, now=now, sibling_first=preview.sibling_first)


__all__ = ["ApprovalLinkEndpoint"]
