"""Applying a verified approve / reject link: once, through the same store and state machine as
approval_transition.

Order of events for a link whose token verified (``approval.links``):

0. the store is the workspace's the link names (``claims.scope``); a link of another workspace is "not
   found", in the words used for a request that never existed, and nothing is claimed or changed;
1. its nonce is claimed in Redis with SET NX (``Keys.approval_link(nonce)``, the nonce's digest). Taken
   already: the link was used; the first outcome is shown and nothing changes;
2. the transition is applied with ``RedisApprovalStore.transition``: compare-and-set on the version the
   approver was shown (``expected_version`` from the link), separation of duties, the level check, the
   request's deadline, all exactly as approval_transition applies them. The idempotency key is derived
   from the nonce, so even a replay from the dead-letter queue applies at most once;
3. the outcome is recorded under the nonce. A refusal (stale version, already decided, self-approval,
   level too low, expired) is final for that link: it changed nothing and the link stays used;
4. the store unavailable, or contention: nothing was applied; the nonce is released (the approver may try
   the link again) and the decision goes to the dead-letter queue.

Redis is required: without it a link could not be single-use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import redis

from approval.dead_letters import DeadLetterQueue
from approval.levels import TERMINAL_STATES
from approval.links import LinkClaims, secret_fingerprint
from approval.records import StoreUnavailable, UnknownRequest
from approval.redis_store import RedisApprovalStore
from approval.transitions import CONTENTION, ApprovalRecord, TransitionResult
from gateway.state.keys import Keys
from gateway.state.redis_connection import describe_redis_error

APPLIED = "applied"
REFUSED = "refused"
ALREADY_USED = "already_used"
UNAVAILABLE = "unavailable"
UNKNOWN_REQUEST = "unknown_request"


@dataclass(frozen=True)
class DecisionOutcome:
    status: str  # applied, refused, already_used, unavailable, unknown_request
    message: str
    result: TransitionResult | None = None
    dead_letter_id: str = ""
    first: dict[str, Any] | None = None  # for already_used: what the first use did

    @property
    def http_status(self) -> int:
        return {APPLIED: 200, REFUSED: 409, ALREADY_USED: 409, UNAVAILABLE: 503, UNKNOWN_REQUEST: 404}[self.status]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.result is not None:
            out.update(code=self.result.code, state=self.result.state, version=self.result.version, at=self.result.at)
        if self.dead_letter_id:
            out["dead_letter_id"] = self.dead_letter_id
        return out


def idempotency_key(claims: LinkClaims) -> str:
    return "link:" + hashlib.sha256(claims.nonce.encode("utf-8")).hexdigest()[:48]


def unknown_request(request_id: str) -> str:
    """The one text for a request this workspace does not hold, whether it never existed or is another
    workspace's (no existence oracle)."""
    return f"No approval request {request_id!r} is in the approval store."


class LinkSecrets:
    """The fingerprints of the link secrets a workspace signed links with (``secret_fingerprint``)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def remember(self, secret: str) -> None:
        """Recorded before links signed with ``secret`` go out (idempotent; a rotated secret is added)."""
        try:
            self.client.sadd(self.keys.approval_link_secrets(), secret_fingerprint(secret, self.keys.scope))
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(describe_redis_error(exc, self.client)) from None

    def known(self, secret: str) -> bool:
        try:
            return bool(self.client.sismember(self.keys.approval_link_secrets(), secret_fingerprint(secret, self.keys.scope)))
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(describe_redis_error(exc, self.client)) from None


class LinkNonces:
    """Which links were used, in Redis (single use), per workspace."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def key(self, nonce: str) -> str:
        return self.keys.approval_link(nonce)

    @staticmethod
    def ttl(claims: LinkClaims, now: float) -> int:
        return max(60, int(claims.expires_at - now) + 24 * 3600)

    def _do(self, call):
        try:
            return call()
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(describe_redis_error(exc, self.client)) from None

    def claim(self, claims: LinkClaims, now: float) -> dict[str, Any] | None:
        """None when claimed now; else what the earlier use recorded."""
        key = self.key(claims.nonce)
        if self._do(lambda: self.client.set(key, json.dumps({"status": "in_progress"}), nx=True, ex=self.ttl(claims, now))):
            return None
        raw = self._do(lambda: self.client.get(key))
        try:
            return json.loads(raw) if raw else {"status": "in_progress"}
        except ValueError:
            return {"status": "in_progress"}

    def used(self, claims: LinkClaims) -> dict[str, Any] | None:
        raw = self._do(lambda: self.client.get(self.key(claims.nonce)))
        return json.loads(raw) if raw else None

    def record(self, claims: LinkClaims, outcome: dict[str, Any], now: float) -> None:
        self._do(lambda: self.client.set(self.key(claims.nonce), json.dumps(outcome), ex=self.ttl(claims, now)))

    def release(self, claims: LinkClaims) -> None:
        self._do(lambda: self.client.delete(self.key(claims.nonce)))


def apply_link_decision(
    store: RedisApprovalStore, claims: LinkClaims, *, now: float, dlq: DeadLetterQueue | None = None,
    reason_prefix: str = "",
) -> DecisionOutcome:
    """Apply a verified link once (see the module docstring). Never raises for a store problem: that is an
    ``unavailable`` outcome (and a dead letter when ``dlq`` is given and reachable)."""
    if claims.scope != store.keys.scope:  # another workspace's link: nothing of this workspace is touched
        return DecisionOutcome(UNKNOWN_REQUEST, unknown_request(claims.request_id))
    nonces = LinkNonces(store.client, store.keys)
    try:
        earlier = nonces.claim(claims, now)
    except StoreUnavailable as exc:
        return _unavailable(claims, str(exc), dlq, reason_prefix)
    if earlier is not None:
        return DecisionOutcome(ALREADY_USED, "This link was already used; it works once.", first=earlier)
    try:
        result = store.transition(
            claims.request_id, event=claims.event, actor_id=claims.approver_id, actor_level=claims.level,
            expected_version=claims.version, idempotency_key=idempotency_key(claims),
        )
    except UnknownRequest:
        outcome = DecisionOutcome(UNKNOWN_REQUEST, unknown_request(claims.request_id))
        _record(nonces, claims, outcome, now)
        return outcome
    except StoreUnavailable as exc:
        _release(nonces, claims)
        return _unavailable(claims, str(exc), dlq, reason_prefix)
    except ValueError as exc:  # an idempotency key reused for something else: cannot happen with fresh nonces
        outcome = DecisionOutcome(REFUSED, f"Refused: {exc}")
        _record(nonces, claims, outcome, now)
        return outcome
    if result.code == CONTENTION:
        _release(nonces, claims)
        return _unavailable(claims, result.reason, dlq, reason_prefix, result=result)
    if result.accepted:
        outcome = DecisionOutcome(APPLIED, f"Request {claims.request_id} is now {result.state} (version {result.version}).", result=result)
    else:
        outcome = DecisionOutcome(REFUSED, f"Refused, nothing changed: {result.reason}.", result=result)
    _record(nonces, claims, outcome, now)
    return outcome


def _record(nonces: LinkNonces, claims: LinkClaims, outcome: DecisionOutcome, now: float) -> None:
    # If this fails, the claim (in_progress) still keeps the link from being used twice.
    with contextlib.suppress(StoreUnavailable):
        nonces.record(claims, outcome.to_dict(), now)


def _release(nonces: LinkNonces, claims: LinkClaims) -> None:
    with contextlib.suppress(StoreUnavailable):
        nonces.release(claims)


def _unavailable(
    claims: LinkClaims, reason: str, dlq: DeadLetterQueue | None, prefix: str, *, result: TransitionResult | None = None
) -> DecisionOutcome:
    message = f"The decision could not be applied: {reason}"
    dead_letter_id = ""
    if dlq is not None:
        try:
            dead_letter_id = dlq.add("decision", f"{prefix}{reason}", {"link": claims.to_dict()})
            message += " It was kept in the dead-letter queue for replay."
        except StoreUnavailable:
            message += " The dead-letter queue is unreachable too: open the link again later."
    return DecisionOutcome(UNAVAILABLE, message, result=result, dead_letter_id=dead_letter_id)


@dataclass(frozen=True)
class LinkPreview:
    """What a GET shows: whether the link can still decide, the record as it is now, the summary the route
    stored with it (``RedisApprovalStore.get_summary``), and the first use of this link and of its sibling
    (the other decision's link, ``LinkClaims.sibling``)."""

    usable: bool
    message: str
    record: ApprovalRecord | None = None
    first: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    sibling_first: dict[str, Any] | None = None
    last_change: dict[str, Any] | None = None  # for a decided request: who decided, when


def last_change(store: RedisApprovalStore, record: ApprovalRecord | None) -> dict[str, Any] | None:
    """The history entry that made a decided request what it is (who, which event, when); None while the
    request is open. Read-only."""
    if record is None or record.state not in TERMINAL_STATES:
        return None
    entries = [entry for entry in store.history(record.request_id) if entry.get("kind") in ("transition", "expired")]
    return entries[-1] if entries else None


def preview_link(store: RedisApprovalStore, claims: LinkClaims) -> LinkPreview:
    """Read-only: nothing is written."""
    if claims.scope != store.keys.scope:
        return LinkPreview(False, unknown_request(claims.request_id))
    nonces = LinkNonces(store.client, store.keys)
    used = nonces.used(claims)
    record = store.get(claims.request_id)
    summary = store.get_summary(claims.request_id) if record is not None else None
    if used is not None:
        return LinkPreview(False, "This link was already used; it works once.", record=record, first=used, summary=summary,
                           last_change=last_change(store, record))
    if record is None:
        return LinkPreview(False, unknown_request(claims.request_id))
    if record.state in TERMINAL_STATES:
        return LinkPreview(False, f"The request is already {record.state}; nothing is left to decide.", record=record,
                           summary=summary, last_change=last_change(store, record))
    if record.version != claims.version:
        return LinkPreview(
            False,
            f"The request changed since this link was sent (version {claims.version}, now {record.version}, "
            f"state {record.state}); this link no longer applies.",
            record=record,
            summary=summary,
        )
    sibling = claims.sibling()
    sibling_first = nonces.used(sibling) if sibling is not None else None
    return LinkPreview(True, "", record=record, summary=summary, sibling_first=sibling_first)


__all__ = [
    "ALREADY_USED",
    "APPLIED",
    "REFUSED",
    "UNAVAILABLE",
    "UNKNOWN_REQUEST",
    "DecisionOutcome",
    "LinkNonces",
    "LinkPreview",
    "LinkSecrets",
    "apply_link_decision",
    "idempotency_key",
    "last_change",
    "preview_link",
    "unknown_request",
]
