"""Telling the selected approvers: one notification per approver, to the channel the policy names for them,
in that channel's format, signed, retried, and dead-lettered when it still fails. Never raises into the
route: every outcome is a row of the tool's ``notifications`` output.

Links (approve / reject) are issued only when they can be honoured once: the Redis approval store holds the
request, and ``link_secret`` and the endpoint URL are given. Otherwise the notification still goes out and
says to decide in the workflow.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from approval.approvers import Approver, Channel
from approval.dead_letters import DeadLetterQueue
from approval.links import new_nonce
from approval.records import StoreUnavailable
from approval.webhook_formats import (
    SIGNED_FORMATS,
    ChannelTarget,
    Notice,
    NotificationSecrets,
    accept_for,
    issue_links,
    render,
    signed_request,
)

# gateway.wire.webhooks.post_json, handed in by the tools: (url, body, accept=, deadline=, prepare=) -> a result
# with delivered, attempts, http_status and reason.
Post = Callable[..., Any]

DEFAULT_BUDGET_SECONDS = 30.0
NOTIFY_STATES = ("pending", "escalated")

# notification_status values
SENT, PARTIAL, FAILED, SKIPPED, NO_APPROVERS, NOT_CONFIGURED = "sent", "partial", "failed", "skipped", "no_approvers", "not_configured"


@dataclass
class NotificationReport:
    status: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(text: Any) -> int:
    """An ISO instant (the facts' ``sla_deadline``) as unix seconds; 0 when absent or unreadable."""
    try:
        return int(datetime.fromisoformat(str(text)).timestamp()) if text else 0
    except ValueError:
        return 0


def _row(approver: Approver, channel: str, fmt: str, status: str, reason: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"approver_id": approver.id, "status": status, "reason": reason}
    if channel:
        row["channel"] = channel
    if fmt:
        row["format"] = fmt
    row.update({k: v for k, v in extra.items() if v is not None and v != ""})
    return row


def deliver(fmt: str, target: ChannelTarget, notice: Notice, *, deadline: float, post: Post) -> Any:
    body = render(fmt, notice)
    return post(
        target.url,
        b"",
        accept=accept_for(fmt),
        deadline=deadline,
        prepare=lambda: signed_request(fmt, target, body, event=notice.event, delivery_id=notice.delivery_id),
    )


def notify_routed(
    *,
    request: Mapping[str, Any],
    next_state: str,
    approvers: list[Approver],
    channels: Mapping[str, Channel],
    secrets: NotificationSecrets,
    endpoint_url: str,
    store_holds_request: bool,
    version: int,
    expires_at: float,
    dlq: DeadLetterQueue | None,
    post: Post,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
    scope: str = "",
) -> NotificationReport:
    """Tell ``approvers``; links (with ``store_holds_request``) are bound to the workspace ``scope``."""
    nothing = _nothing_to_send(next_state, approvers, channels, secrets)
    if nothing is not None:
        return nothing
    missing = _missing_for_links(store_holds_request, scope, secrets, endpoint_url)
    warnings = []
    if missing:
        warnings.append("notifications carry no approve/reject links: they need " + ", ".join(missing))
    sending = _Sending(
        request=request, event=f"approval.{next_state}", secrets=secrets, endpoint_url=endpoint_url,
        version=version, expires_at=expires_at, scope=scope, with_links=not missing, dlq=dlq, post=post,
        deadline=time.monotonic() + budget_seconds,
    )
    rows = [sending.notify(approver, channels) for approver in approvers]
    return NotificationReport(_overall_status(rows), rows, warnings)


def _nothing_to_send(next_state: str, approvers: list[Approver], channels: Mapping[str, Channel],
                     secrets: NotificationSecrets) -> NotificationReport | None:
    """The report when no notification is attempted: a state nobody is told about, nobody, or no webhooks."""
    if next_state not in NOTIFY_STATES:
        return NotificationReport(SKIPPED, warnings=[] if next_state == "approved" else [f"no notification for state {next_state}"])
    if not approvers:
        return NotificationReport(NO_APPROVERS, warnings=["the policy names no approver (other than the requester) for this level"])
    if not secrets.channels:
        return NotificationReport(NOT_CONFIGURED, [
            _row(a, a.channel, channels[a.channel].format if a.channel in channels else "", "skipped",
                 "no webhook configured: notification_secrets has no channels")
            for a in approvers
        ])
    return None


def _missing_for_links(store_holds_request: bool, scope: str, secrets: NotificationSecrets, endpoint_url: str) -> list[str]:
    """What approve/reject links need and is not given (empty: links are issued)."""
    missing = []
    if not store_holds_request or not scope:
        missing.append("the Redis approval store (redis_url), so each link can be used once")
    if not secrets.link_secret:
        missing.append("link_secret in notification_secrets")
    if not endpoint_url:
        missing.append("approval_endpoint_url")
    return missing


@dataclass(frozen=True)
class _Sending:
    """What the notifications of one routed request share: the request and its event, the secrets, where
    links point and until when, the time budget, and the dead-letter queue that keeps a failure."""

    request: Mapping[str, Any]
    event: str
    secrets: NotificationSecrets
    endpoint_url: str
    version: int
    expires_at: float
    scope: str
    with_links: bool
    dlq: DeadLetterQueue | None
    post: Post
    deadline: float

    def notify(self, approver: Approver, channels: Mapping[str, Channel]) -> dict[str, Any]:
        """One approver's row: skipped, delivered, failed or dead-lettered."""
        channel = channels.get(approver.channel) if approver.channel else None
        if channel is None:
            return _row(approver, "", "", "skipped", "the policy names no channel for this approver")
        target = self.secrets.channels.get(channel.id)
        if target is None:
            return _row(approver, channel.id, channel.format, "skipped", f"notification_secrets has no url for channel {channel.id!r}")
        link, urls = self._links(approver)
        notice = Notice(self.event, dict(self.request), approver, urls["approve"], urls["reject"], iso(self.expires_at) if link else "")
        result = deliver(channel.format, target, notice, deadline=self.deadline, post=self.post)
        signed = channel.format in SIGNED_FORMATS and bool(target.secret)
        common = {"attempts": result.attempts, "http_status": result.http_status, "links": link is not None, "signed": signed}
        if result.delivered:
            return _row(approver, channel.id, channel.format, "delivered", "ok", **common)
        return self._undelivered(approver, channel, notice, link, result.reason, common)

    def _links(self, approver: Approver) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The link's bound fields (kept for a replay) and the approve / reject URLs, when links are issued."""
        if not self.with_links:
            return None, {"approve": "", "reject": ""}
        link = {
            "request_id": str(self.request["request_id"]), "version": self.version, "expires_at": int(self.expires_at),
            "nonces": {"approve": new_nonce(), "reject": new_nonce()}, "scope": self.scope,
        }
        urls = issue_links(
            request_id=link["request_id"], version=self.version, approver=approver, expires_at=link["expires_at"],
            link_secret=self.secrets.link_secret, endpoint_url=self.endpoint_url, nonces=link["nonces"], scope=self.scope,
            sla_deadline=_epoch(self.request.get("sla_deadline")),
        )
        return link, urls

    def _undelivered(self, approver: Approver, channel: Channel, notice: Notice, link: dict[str, Any] | None,
                     reason: str, common: dict[str, Any]) -> dict[str, Any]:
        """Keep what replay_notification needs in the dead-letter queue, when there is one."""
        payload = {
            "channel": channel.id, "format": channel.format, "event": self.event, "delivery_id": notice.delivery_id,
            "approver": {"id": approver.id, "name": approver.name, "level": approver.level, "channel": approver.channel,
                         "language": approver.language},
            "request": dict(self.request), "link": link,
        }
        if self.dlq is None:
            return _row(approver, channel.id, channel.format, "failed",
                        f"{reason}; no dead-letter queue without redis_url", **common)
        try:
            entry_id = self.dlq.add("notification", reason, payload)
        except StoreUnavailable as exc:
            return _row(approver, channel.id, channel.format, "failed", f"{reason}; dead-letter queue unavailable: {exc}", **common)
        return _row(approver, channel.id, channel.format, "dead_lettered", reason, dead_letter_id=entry_id, **common)


def _overall_status(rows: list[dict[str, Any]]) -> str:
    attempted = [row for row in rows if row["status"] != "skipped"]
    delivered = [row for row in attempted if row["status"] == "delivered"]
    if not attempted:
        return NOT_CONFIGURED
    if len(delivered) == len(attempted) and len(attempted) == len(rows):
        return SENT
    if delivered:
        return PARTIAL
    return FAILED


def replay_notification(
    payload: Mapping[str, Any], secrets: NotificationSecrets, endpoint_url: str, *, post: Post, scope: str,
    budget_seconds: float = DEFAULT_BUDGET_SECONDS,
) -> Any:
    """Send a dead-lettered notification again (links signed again with the same bound fields and nonces,
    for this workspace, ``scope``: the queue is the workspace's own). Raises ValueError when the secrets
    needed are not given."""
    channel_id = str(payload.get("channel", ""))
    fmt = str(payload.get("format", ""))
    target = secrets.channels.get(channel_id)
    if target is None:
        raise ValueError(f"notification_secrets: no url for channel {channel_id!r}, which this dead letter was for")
    raw = payload.get("approver") or {}
    approver = Approver(id=str(raw.get("id", "")), level=str(raw.get("level", "manager")), name=str(raw.get("name", "")),
                        channel=str(raw.get("channel", "")), language=str(raw.get("language", "")))
    link = payload.get("link")
    urls = {"approve": "", "reject": ""}
    expires = ""
    if link:
        if int(link["expires_at"]) <= time.time():
            raise ValueError(f"the links of this notification expired at {iso(int(link['expires_at']))}; drop it and decide in the workflow")
        if not secrets.link_secret or not endpoint_url:
            raise ValueError("this notification carries approve/reject links: give link_secret in notification_secrets and approval_endpoint_url")
        urls = issue_links(
            request_id=str(link["request_id"]), version=int(link["version"]), approver=approver,
            expires_at=int(link["expires_at"]), link_secret=secrets.link_secret, endpoint_url=endpoint_url,
            nonces=dict(link["nonces"]), scope=scope, sla_deadline=_epoch((payload.get("request") or {}).get("sla_deadline")),
        )
        expires = iso(int(link["expires_at"]))
    notice = Notice(str(payload.get("event", "approval.pending")), dict(payload.get("request") or {}), approver,
                    urls["approve"], urls["reject"], expires, delivery_id=str(payload.get("delivery_id") or "") or uuid.uuid4().hex)
    return deliver(fmt, target, notice, deadline=time.monotonic() + budget_seconds, post=post)


__all__ = ["NOTIFY_STATES", "NotificationReport", "notify_routed", "replay_notification"]
