"""Notifications to designated approvers: what they say, how each vendor's webhook is signed, and how each
vendor's answer is read. Signing lives here; posting is ``gateway.wire.webhooks`` (the plugin's HTTP client),
which the tools hand to ``approval.notifications`` (approval/ imports nothing from gateway but the Redis
helper).

Formats and their signatures (each verified in tests/plugin/test_approval_notifications.py by a receiver
that implements the vendor's documented algorithm):

- **generic**: the notification as JSON. With a secret, two headers::

      X-HolySheep-Timestamp: <unix seconds>
      X-HolySheep-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>

  A receiver recomputes the HMAC over the timestamp, a dot and the exact body bytes it received, compares
  with a constant-time comparison, and refuses timestamps more than 5 minutes from its clock (replays).
  ``X-HolySheep-Delivery`` (the same on every retry of one notification) lets it drop duplicates.
- **feishu** / **lark** (custom bot, "signature verification" security setting): ``timestamp`` (unix
  seconds, as a string) and ``sign`` = base64(HMAC-SHA256(key = "<timestamp>\\n<secret>", message = empty))
  in the JSON body; message type ``post`` (rich text whose elements are plain text and links).
- **dingtalk** (custom robot, "加签" / sign): ``timestamp`` (unix milliseconds) and ``sign`` =
  urlencode(base64(HMAC-SHA256(key = secret, message = "<timestamp>\\n<secret>"))) appended to the webhook
  URL's query; message type ``markdown``.
- **wecom** (group robot): no signature (the ``key`` in the URL is the credential); ``markdown``.
- **slack** (incoming webhook): no signature (the URL is the credential); ``text`` plus Block Kit buttons.

Vendors that answer 200 with an error code in the body (Feishu ``code``, DingTalk and WeCom ``errcode``)
are read as such: their rate-limit codes are retried, other codes are failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

from approval.approvers import CHANNEL_FORMATS, CHANNEL_ID, Approver
from approval.links import LinkClaims, check_endpoint_url, check_secret, link_url, sign_link
from untrusted import InputError, parse_yaml, quote

GENERIC_SIGNATURE_HEADER = "X-HolySheep-Signature"
GENERIC_TIMESTAMP_HEADER = "X-HolySheep-Timestamp"
GENERIC_DELIVERY_HEADER = "X-HolySheep-Delivery"
GENERIC_EVENT_HEADER = "X-HolySheep-Event"
MAX_SECRETS_CHARS = 50_000
MAX_SUMMARY_CHARS = 500
# Vendor codes that mean "too many messages, try later".
RATE_LIMIT_CODES = {"feishu": {9499, 11232}, "lark": {9499, 11232}, "dingtalk": {130101, 660026}, "wecom": {45009}}
SIGNED_FORMATS = frozenset({"generic", "feishu", "lark", "dingtalk"})
# Statuses worth another attempt (as gateway.call.retry): timeouts, conflicts, rate limits, server errors.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
Verdict = tuple[str, str]  # ("ok" | "retry" | "fail", reason), as gateway.wire.webhooks reads it


# --------------------------------------------------------------------------- secrets


@dataclass(frozen=True)
class ChannelTarget:
    url: str
    secret: str = ""


@dataclass(frozen=True)
class NotificationSecrets:
    """What the ``notification_secrets`` parameter holds: the link-signing secret and, per channel id, the
    webhook URL and signing secret. Nothing of it ever appears in an output, a log or a dead letter."""

    link_secret: str = ""
    channels: Mapping[str, ChannelTarget] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NotificationSecrets:
        """YAML or JSON ``{link_secret: ..., channels: {<id>: {url: ..., secret: ...}}}``. Errors name the
        field and never repeat a value."""
        if not text or not text.strip():
            return cls()
        try:
            data = parse_yaml(text, max_bytes=MAX_SECRETS_CHARS)
        except InputError:
            raise ValueError(
                "notification_secrets: not valid YAML or JSON of the form "
                "{link_secret: ..., channels: {<channel id>: {url: ..., secret: ...}}}"
            ) from None
        if not isinstance(data, Mapping):
            raise ValueError("notification_secrets: must be a mapping with link_secret and channels")
        unknown = sorted(str(key) for key in data if key not in ("link_secret", "channels"))
        if unknown:
            shown = ", ".join(quote(k, 40) for k in unknown[:10])
            raise ValueError(f"notification_secrets: unknown field(s) {shown}; allowed: link_secret, channels")
        link_secret = data.get("link_secret") or ""
        if link_secret:
            link_secret = check_secret(link_secret, "notification_secrets: link_secret")
        raw_channels = data.get("channels") or {}
        if not isinstance(raw_channels, Mapping):
            raise ValueError("notification_secrets: 'channels' must be a mapping of channel id to {url, secret}")
        channels: dict[str, ChannelTarget] = {}
        for channel_id, spec in raw_channels.items():
            if not isinstance(channel_id, str) or not CHANNEL_ID.match(channel_id):
                raise ValueError(f"notification_secrets: channel id {quote(channel_id, 70)} is not a channel id")
            where = f"notification_secrets: channel {quote(channel_id)}"
            if isinstance(spec, str):
                spec = {"url": spec}
            if not isinstance(spec, Mapping) or any(key not in ("url", "secret") for key in spec):
                raise ValueError(f"{where}: must be a mapping with 'url' and optional 'secret'")
            url = spec.get("url")
            if not isinstance(url, str) or not url.strip():
                raise ValueError(f"{where}: 'url' is required (the webhook URL)")
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in url.strip()):
                raise ValueError(f"{where}: 'url' must be an http:// or https:// URL")
            secret = spec.get("secret") or ""
            if not isinstance(secret, str):
                raise ValueError(f"{where}: 'secret' must be text")
            channels[channel_id] = ChannelTarget(url.strip(), secret.strip())
        return cls(link_secret=link_secret, channels=channels)

    def values(self) -> list[str]:
        """Every secret value (link secret, signing secrets, and the parts of webhook URLs that carry a token),
        for the caller to register for redaction."""
        found = [self.link_secret] if self.link_secret else []
        for target in self.channels.values():
            found += [target.secret] if target.secret else []
            found += url_secrets(target.url)
        return found


def url_secrets(url: str) -> list[str]:
    """The parts of a webhook URL that carry its token: the password, every query value and the last path
    segment (Slack, Feishu, WeCom and DingTalk put it in one of these). Not the host, which a redactor
    would otherwise hide from every later connection message."""
    parts = urllib.parse.urlsplit(url)
    found = [parts.password or "", parts.path.rstrip("/").rsplit("/", 1)[-1]]
    found += [value for _name, value in urllib.parse.parse_qsl(parts.query)]
    return [value for value in found if len(value) >= 8]


# --------------------------------------------------------------------------- the notice


@dataclass(frozen=True)
class Notice:
    """One notification to one approver. ``request`` holds only what the route decided and the requester
    gave; ``approve_url`` / ``reject_url`` are empty when links cannot be issued."""

    event: str  # approval.pending or approval.escalated
    request: Mapping[str, Any]
    approver: Approver
    approve_url: str = ""
    reject_url: str = ""
    links_expire_at: str = ""
    delivery_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_generic(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event": self.event,
            "delivery_id": self.delivery_id,
            "request": dict(self.request),
            "approver": self.approver.to_output(),
        }
        if self.approve_url:
            body["links"] = {"approve": self.approve_url, "reject": self.reject_url, "expires_at": self.links_expire_at}
        return body

    # ----------------------------------------------------------- text forms

    def title(self) -> str:
        state = "escalated" if self.event.endswith("escalated") else "awaiting approval"
        return f"Approval request {self.request.get('request_id', '')} ({state})"

    def lines(self) -> list[tuple[str, str]]:
        r = self.request
        rows = [
            ("Request", str(r.get("request_id", ""))),
            ("Requester", str(r.get("requester_id", ""))),
            ("Type", " / ".join(str(x) for x in (r.get("request_type"), r.get("department")) if x)),
            ("Amount", f"{r.get('amount', '')} {r.get('currency', '')}".strip()),
            ("Risk", str(r.get("risk_level", ""))),
            ("Required level", str(r.get("required_level", ""))),
            ("Matched rules", ", ".join(r.get("matched_rules") or []) or "none"),
            ("SLA deadline", str(r.get("sla_deadline") or "none")),
            ("Decision deadline", str(r.get("deadline") or "none")),
            ("Approver", f"{self.approver.name or self.approver.id} ({self.approver.level})"),
            ("Summary", str(r.get("summary", ""))),
        ]
        if not self.approve_url:
            rows.append(("Decide", "in the workflow (no approval links: the approval endpoint or Redis is not configured)"))
        elif self.links_expire_at:
            rows.append(("Links expire", self.links_expire_at))
        return [(k, v) for k, v in rows if v]


def _plain(text: str) -> str:
    """Requester text made inert in markdown: no link, emphasis or heading syntax, one line."""
    cleaned = " ".join(str(text).split())
    for char in "[]()<>*_`#|~!\\":
        cleaned = cleaned.replace(char, " ")
    return " ".join(cleaned.split())


def _slack_escape(text: str) -> str:
    return _plain(text).replace("&", "&amp;")


def render(fmt: str, notice: Notice) -> dict[str, Any]:
    """The JSON body for ``fmt`` (without vendor signature fields)."""
    if fmt == "generic":
        return notice.to_generic()
    lines = notice.lines()
    if fmt in ("feishu", "lark"):
        content: list[list[dict[str, str]]] = [[{"tag": "text", "text": f"{k}: {v}"}] for k, v in lines]
        if notice.approve_url:
            content.append([
                {"tag": "a", "text": "Approve", "href": notice.approve_url},
                {"tag": "text", "text": "   "},
                {"tag": "a", "text": "Reject", "href": notice.reject_url},
            ])
        return {"msg_type": "post", "content": {"post": {"en_us": {"title": notice.title(), "content": content}}}}
    if fmt in ("dingtalk", "wecom"):
        md = [f"### {_plain(notice.title())}"] + [f"- **{k}**: {_plain(v)}" for k, v in lines]
        if notice.approve_url:
            md.append(f"[Approve]({notice.approve_url}) | [Reject]({notice.reject_url})")
        text = "\n".join(md)
        if fmt == "dingtalk":
            return {"msgtype": "markdown", "markdown": {"title": _plain(notice.title()), "text": text}}
        return {"msgtype": "markdown", "markdown": {"content": text}}
    if fmt == "slack":
        fields = "\n".join(f"*{k}:* {_slack_escape(v)}" for k, v in lines)
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": notice.title()[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": fields[:2900]}},
        ]
        if notice.approve_url:
            blocks.append({
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary", "url": notice.approve_url},
                    {"type": "button", "text": {"type": "plain_text", "text": "Reject"}, "style": "danger", "url": notice.reject_url},
                ],
            })
        return {"text": _slack_escape(notice.title()), "blocks": blocks}
    raise ValueError(f"unknown channel format {quote(fmt)}; use one of {', '.join(CHANNEL_FORMATS)}")


# --------------------------------------------------------------------------- signing


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify_generic(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None, tolerance: float = 300) -> bool:
    """What a receiver of the generic format does: recompute, compare in constant time, bound the age."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance and hmac.compare_digest(generic_signature(secret, timestamp, body), signature or "")


def feishu_sign(secret: str, timestamp: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """base64 of the HMAC, before URL encoding."""
    message = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_request(
    fmt: str, target: ChannelTarget, body: Mapping[str, Any], *, event: str, delivery_id: str, now: float | None = None
) -> tuple[str, bytes, dict[str, str]]:
    """(url, body bytes, headers) for one attempt, signed with a fresh timestamp as ``fmt`` requires."""
    moment = time.time() if now is None else now
    url, headers, payload = target.url, {}, dict(body)
    if fmt == "generic":
        raw = _dumps(payload)
        headers = {GENERIC_EVENT_HEADER: event, GENERIC_DELIVERY_HEADER: delivery_id}
        if target.secret:
            timestamp = str(int(moment))
            headers[GENERIC_TIMESTAMP_HEADER] = timestamp
            headers[GENERIC_SIGNATURE_HEADER] = generic_signature(target.secret, timestamp, raw)
        return url, raw, headers
    if fmt in ("feishu", "lark") and target.secret:
        timestamp = str(int(moment))
        payload = {"timestamp": timestamp, "sign": feishu_sign(target.secret, timestamp), **payload}
    if fmt == "dingtalk" and target.secret:
        timestamp_ms = str(int(moment * 1000))
        sign = urlquote(dingtalk_sign(target.secret, timestamp_ms), safe="")
        url = f"{url}{'&' if urlsplit(url).query else '?'}timestamp={timestamp_ms}&sign={sign}"
    return url, _dumps(payload), headers


# --------------------------------------------------------------------------- answers


def status_verdict(status: int) -> Verdict:
    """2xx delivered; 408, 409, 429 and 5xx worth another attempt; any other status a failure."""
    if 200 <= status < 300:
        return "ok", "ok"
    return ("retry" if status in RETRY_STATUSES or status >= 500 else "fail"), f"HTTP {status}"


def accept_for(fmt: str) -> Callable[[int, bytes], Verdict]:
    """How ``fmt``'s answer is read: vendors that answer 200 with an error code in the body are failures
    (their rate-limit codes are retried)."""
    if fmt in ("generic", "slack"):
        return lambda status, _body: status_verdict(status)

    def accept(status: int, body: bytes) -> Verdict:
        if not 200 <= status < 300:
            return status_verdict(status)
        try:
            data = json.loads(body.decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            return "fail", f"{fmt} answered HTTP {status} with a body that is not JSON"
        if not isinstance(data, dict):
            return "fail", f"{fmt} answered HTTP {status} with unexpected JSON"
        code = data.get("code", data.get("StatusCode")) if fmt in ("feishu", "lark") else data.get("errcode")
        if code in (0, None, "0"):
            return "ok", "ok"
        message = str(data.get("msg") or data.get("StatusMessage") or data.get("errmsg") or "")
        words = " ".join(message.split())[:200]
        try:
            number = int(code)
        except (TypeError, ValueError):
            number = -1
        verdict = "retry" if number in RATE_LIMIT_CODES.get(fmt, set()) else "fail"
        shown = str(number) if isinstance(code, int) else quote(code, 20)
        return verdict, f"{fmt} error code {shown}" + (f": {quote(words, 200)}" if words else "")

    return accept


# --------------------------------------------------------------------------- links


def issue_links(
    *, request_id: str, version: int, approver: Approver, expires_at: int, link_secret: str, endpoint_url: str,
    nonces: Mapping[str, str], scope: str, sla_deadline: int = 0,
) -> dict[str, str]:
    """{"approve": url, "reject": url} bound to this workspace (``scope``), approver, version and expiry, with
    the given nonces. Each names the other's nonce, so the page either opens offers both decisions; both
    carry the approver's page language and the SLA deadline the page shows."""
    endpoint = check_endpoint_url(endpoint_url)
    urls = {}
    for event, other in (("approve", "reject"), ("reject", "approve")):
        claims = LinkClaims(
            request_id=request_id, version=version, event=event, approver_id=approver.id, level=approver.level,
            expires_at=expires_at, nonce=nonces[event], scope=scope, language=approver.language,
            sla_deadline=max(0, int(sla_deadline)), other_nonce=nonces[other],
        )
        urls[event] = link_url(endpoint, sign_link(claims, link_secret))
    return urls


__all__ = [
    "GENERIC_DELIVERY_HEADER",
    "GENERIC_EVENT_HEADER",
    "GENERIC_SIGNATURE_HEADER",
    "GENERIC_TIMESTAMP_HEADER",
    "SIGNED_FORMATS",
    "ChannelTarget",
    "Notice",
    "NotificationSecrets",
    "accept_for",
    "dingtalk_sign",
    "feishu_sign",
    "generic_signature",
    "issue_links",
    "render",
    "signed_request",
    "verify_generic",
]
