"""Signed, single-use approve / reject links.

A link carries a token that binds everything the decision depends on: the workspace that routed the request
(its scope, ``gateway.state.keys``: the endpoint knows only its own settings, not the API key, so the link says
whose record it decides), the request id, the version the approver was shown (``expected_version``), the
event (approve or reject), the approver's id and level, an expiry and a random nonce. The token is::

    base64url(payload JSON) "." base64url(HMAC-SHA256(link_secret, "holysheep.approval-link.v1." + base64url(payload)))

Three fields are optional, written only when set (links issued before them verify as they always did):
the approver's page language (``g``, ``approval.approvers.LANGUAGES``), the request's SLA deadline for this
level (``s``, unix seconds: the page shows it) and the nonce of the link for the other decision (``o``):
with it the endpoint signs the sibling link again (``LinkClaims.sibling``) and puts approve and reject on
one page. The sibling is byte for byte the link the notification carried (same claims, same nonce), so a
page never adds a third link, and each of the two stays single-use.

Changing any bound field changes the payload and so the MAC: the endpoint refuses it (``bad_signature``).
The MAC is compared with ``hmac.compare_digest``. The payload is not encrypted (it holds nothing secret:
ids, a version, an expiry); it is only authenticated.

A link signed with a secret is honoured only for a workspace that signed links with that secret
(``secret_fingerprint``, recorded when notifications go out): another workspace's administrator, who knows
their own endpoint's secret and could read a scope off a link, cannot sign a link that acts on this
workspace's records. Links issued before workspaces were scoped carry no scope and are refused as damaged.

Single use is the endpoint's job (``approval.decisions``): the nonce is claimed in Redis with SET NX before
the transition is applied, so a second click finds it taken.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from approval.approvers import LANGUAGES
from approval.levels import APPROVER_LEVELS

LINK_EVENTS: tuple[str, ...] = ("approve", "reject")
MAC_CONTEXT = b"holysheep.approval-link.v1."
OWNER_CONTEXT = b"holysheep.approval-link-owner.v1."
MIN_SECRET_CHARS = 16
MAX_TOKEN_CHARS = 4096
TOKEN_PARAM = "t"

# Refusal codes of a link (LinkError.code).
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
LINK_EXPIRED = "link_expired"


class LinkError(ValueError):
    """A link that cannot be used; ``code`` is one of malformed, bad_signature, link_expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LinkClaims:
    request_id: str
    version: int
    event: str
    approver_id: str
    level: str
    expires_at: int  # unix seconds
    nonce: str
    scope: str  # the workspace (gateway.state.keys.Keys.scope) whose record the link decides
    language: str = ""  # the approver's page language (approval.approvers.LANGUAGES); "" = English
    sla_deadline: int = 0  # unix seconds; 0 = no SLA for this level
    other_nonce: str = ""  # the nonce of the link for the other decision; "" = not known (older links)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "k": 1,
            "w": self.scope,
            "r": self.request_id,
            "v": self.version,
            "e": self.event,
            "a": self.approver_id,
            "l": self.level,
            "x": self.expires_at,
            "n": self.nonce,
        }
        # Written only when set, so a link without them is the token it always was.
        for key, value in (("g", self.language), ("s", self.sla_deadline), ("o", self.other_nonce)):
            if value:
                payload[key] = value
        return payload

    def sibling(self) -> LinkClaims | None:
        """The link for the other decision, as the notification carried it; None when this link does not
        name its nonce."""
        if not self.other_nonce:
            return None
        other = next(event for event in LINK_EVENTS if event != self.event)
        return replace(self, event=other, nonce=self.other_nonce, other_nonce=self.nonce)

    def to_dict(self) -> dict[str, Any]:
        """Readable form (dead-letter entries, pages): nothing secret in it."""
        return {
            "request_id": self.request_id,
            "version": self.version,
            "event": self.event,
            "approver_id": self.approver_id,
            "level": self.level,
            "expires_at": self.expires_at,
            "nonce": self.nonce,
            "scope": self.scope,
            "language": self.language,
            "sla_deadline": self.sla_deadline,
            "other_nonce": self.other_nonce,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkClaims:
        return cls(
            request_id=str(data["request_id"]),
            version=int(data["version"]),
            event=str(data["event"]),
            approver_id=str(data["approver_id"]),
            level=str(data["level"]),
            expires_at=int(data["expires_at"]),
            nonce=str(data["nonce"]),
            scope=str(data["scope"]),
            language=str(data.get("language") or ""),
            sla_deadline=int(data.get("sla_deadline") or 0),
            other_nonce=str(data.get("other_nonce") or ""),
        )


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def check_secret(secret: object, what: str = "link_secret") -> str:
    if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_CHARS:
        raise ValueError(f"{what}: must be at least {MIN_SECRET_CHARS} characters (a random string; keep it secret)")
    return secret.strip()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload_b64: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), MAC_CONTEXT + payload_b64.encode("ascii"), hashlib.sha256).digest()


def sign_link(claims: LinkClaims, secret: str) -> str:
    payload = json.dumps(claims.to_payload(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    payload_b64 = _b64(payload.encode("utf-8"))
    return f"{payload_b64}.{_b64(_mac(secret, payload_b64))}"


def verify_link(token: object, secret: str, now: float) -> LinkClaims:
    """The claims of a genuine, unexpired token; LinkError otherwise. The MAC is checked before anything in
    the payload is believed."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise LinkError(MALFORMED, "the link is incomplete or damaged (no valid token in it)")
    payload_b64, mac_b64 = token.split(".")
    try:
        payload_bytes = _unb64(payload_b64)
        mac = _unb64(mac_b64)
    except (binascii.Error, ValueError):
        raise LinkError(MALFORMED, "the link is incomplete or damaged (the token is not base64url)") from None
    if not payload_b64.isascii() or not hmac.compare_digest(mac, _mac(secret, payload_b64)):
        raise LinkError(BAD_SIGNATURE, "the link's signature does not match: it was changed, or signed with another secret")
    try:
        data = json.loads(payload_bytes.decode("utf-8"))
        unscoped = isinstance(data, dict) and data.get("k") == 1 and "w" not in data
        claims = None if unscoped else LinkClaims(
            request_id=str(data["r"]),
            version=int(data["v"]),
            event=str(data["e"]),
            approver_id=str(data["a"]),
            level=str(data["l"]),
            expires_at=int(data["x"]),
            nonce=str(data["n"]),
            scope=str(data["w"]),
            language=str(data.get("g") or ""),
            sla_deadline=int(data.get("s") or 0),
            other_nonce=str(data.get("o") or ""),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise LinkError(MALFORMED, "the link's content cannot be read") from None
    if claims is None:
        raise LinkError(MALFORMED, "the link was issued before approval records belonged to a workspace; "
                        "ask for a new link (approval_transition escalate, or route the request again)")
    if (
        data.get("k") != 1
        or claims.event not in LINK_EVENTS
        or claims.level not in APPROVER_LEVELS
        or not claims.scope
        or not claims.scope.isprintable()
        or "{" in claims.scope
        or "}" in claims.scope
        or (claims.language and claims.language not in LANGUAGES)
        or claims.sla_deadline < 0
        or claims.other_nonce == claims.nonce
    ):
        raise LinkError(MALFORMED, "the link's content is not an approval decision this plugin issues")
    if now >= claims.expires_at:
        raise LinkError(LINK_EXPIRED, "the link has expired")
    return claims


def secret_fingerprint(secret: str, scope: str) -> str:
    """What the store records of a link secret a workspace signs with: an HMAC keyed by the secret over the
    workspace's scope (never the secret, and different in every workspace)."""
    return hmac.new(secret.encode("utf-8"), OWNER_CONTEXT + scope.encode("utf-8"), hashlib.sha256).hexdigest()


def link_url(endpoint_url: str, token: str) -> str:
    """The endpoint URL with the token as its ``t`` query parameter (other query parameters kept)."""
    parts = urlsplit(endpoint_url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query + urlencode({TOKEN_PARAM: token}), ""))


def check_endpoint_url(url: object) -> str:
    """An http(s) URL without credentials or a fragment: the approval endpoint as Dify shows it."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("approval_endpoint_url: empty")
    text = url.strip()
    if len(text) > 2000 or not text.isprintable() or any(char.isspace() for char in text):
        raise ValueError("approval_endpoint_url: not a URL (at most 2000 characters, no spaces)")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("approval_endpoint_url: must be an http:// or https:// URL, such as https://dify.example.com/e/abc123/approval")
    if parts.username or parts.password:
        raise ValueError("approval_endpoint_url: must not contain a user name or password")
    if parts.fragment:
        raise ValueError("approval_endpoint_url: must not contain a #fragment")
    return text


__all__ = [
    "BAD_SIGNATURE",
    "LINK_EVENTS",
    "LINK_EXPIRED",
    "MALFORMED",
    "TOKEN_PARAM",
    "LinkClaims",
    "LinkError",
    "check_endpoint_url",
    "check_secret",
    "link_url",
    "new_nonce",
    "secret_fingerprint",
    "sign_link",
    "verify_link",
]
