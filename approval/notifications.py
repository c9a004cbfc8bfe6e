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

# gateway.webhooks.post_json, handed in by the tools: (url, body, accept=, deadline=, prepare=) -> a result
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
    missing = []
    if not store_holds_request or not scope:
        missing.append("the Redis approval store (redis_url), so each link can be used once")
    if not secrets.link_secret:
        missing.append("link_secret in notification_secrets")
    if not endpoint_url:
        missing.append("approval_endpoint_url")
    warnings = []
    if missing:
        warnings.append("notifications carry no approve/reject links: they need " + ", ".join(missing))
    event = f"approval.{next_state}"
    deadline = time.monotonic() + budget_seconds
    rows: list[dict[str, Any]] = []
    for approver in approvers:
        channel = channels.get(approver.channel) if approver.channel else None
        if channel is None:
            rows.append(_row(approver, "", "", "skipped", "the policy names no channel for this approver"))
            continue
        target = secrets.channels.get(channel.id)
        if target is None:
            rows.append(_row(approver, channel.id, channel.format, "skipped", f"notification_secrets has no url for channel {channel.id!r}"))
            continue
        link: dict[str, Any] | None = None
        urls = {"approve": "", "reject": ""}
        if not missing:
            link = {
                "request_id": str(request["request_id"]), "version": version, "expires_at": int(expires_at),
                "nonces": {"approve": new_nonce(), "reject": new_nonce()}, "scope": scope,
            }
            urls = issue_links(
                request_id=link["request_id"], version=version, approver=approver, expires_at=link["expires_at"],
                link_secret=secrets.link_secret, endpoint_url=endpoint_url, nonces=link["nonces"], scope=scope,
                sla_deadline=_epoch(request.get("sla_deadline")),
            )
        notice = Notice(event, dict(request), approver, urls["approve"], urls["reject"], iso(expires_at) if link else "")
        result = deliver(channel.format, target, notice, deadline=deadline, post=post)
        signed = channel.format in SIGNED_FORMATS and bool(target.secret)
        common = {"attempts": result.attempts, "http_status": result.http_status, "links": link is not None, "signed": signed}
        if result.delivered:
            rows.append(_row(approver, channel.id, channel.format, "delivered", "ok", **common))
            continue
        payload = {
            "channel": channel.id, "format": channel.format, "event": event, "delivery_id": notice.delivery_id,
            "approver": {"id": approver.id, "name": approver.name, "level": approver.level, "channel": approver.channel,
                         "language": approver.language},
            "request": dict(request), "link": link,
        }
        if dlq is None:
            rows.append(_row(approver, channel.id, channel.format, "failed",
                             f"{result.reason}; no dead-letter queue without redis_url", **common))
            continue
        try:
            entry_id = dlq.add("notification", result.reason, payload)
        except StoreUnavailable as exc:
            rows.append(_row(approver, channel.id, channel.format, "failed", f"{result.reason}; dead-letter queue unavailable: {exc}", **common))
            continue
        rows.append(_row(approver, channel.id, channel.format, "dead_lettered", result.reason, dead_letter_id=entry_id, **common))
    attempted = [row for row in rows if row["status"] != "skipped"]
    delivered = [row for row in attempted if row["status"] == "delivered"]
    if not attempted:
        status = NOT_CONFIGURED
    elif len(delivered) == len(attempted) and len(attempted) == len(rows):
        status = SENT
    elif delivered:
        status = PARTIAL
    else:
        status = FAILED
    return NotificationReport(status, rows, warnings)


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
