"""Notification settings and calls shared by approval_route (a routed request) and approval_transition (an
accepted escalate): the same formats, signing, links, dead-letter queue and outputs (approval.notifications).

The route stores a bounded summary of the request with the Redis record (``request_summary``); an escalate
reads it back to tell the approvers of the new required level. Nothing here fails the route or the transition:
every outcome is the ``notification_status`` / ``notifications`` / ``notification_warnings`` outputs.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

# Notification links expire with the request's deadline or its SLA, whichever is first; at most this long.
DEFAULT_LINK_HOURS = 72.0
MAX_LINK_HOURS = 24.0 * 30
# What the stored summary may hold: the request's text is cut to this many characters, and at most this
# many matched rules are kept (each a policy rule id).
SUMMARY_CHARS = 500
MAX_SUMMARY_RULES = 50
SUMMARY_BUDGET_BYTES = 12 * 1024  # under approval.redis_store.MAX_SUMMARY_BYTES


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def link_expiry(now: float, sla_hours: float | None, deadline: float | None) -> tuple[float, str]:
    """When links expire (the deadline or the SLA, whichever is first; 72 h without either, 30 days at most)
    and the SLA deadline as text ("" without an SLA)."""
    limits = [now + MAX_LINK_HOURS * 3600]
    sla_deadline = ""
    if sla_hours:
        limits.append(now + float(sla_hours) * 3600)
        sla_deadline = _iso(limits[-1])
    if deadline is not None:
        limits.append(deadline)
    return (min(limits) if len(limits) > 1 else now + DEFAULT_LINK_HOURS * 3600), sla_deadline


def request_summary(request: Any, outcome: Any, output: dict[str, Any], policy: Any) -> dict[str, Any]:
    """What approvers are told about a request, bounded (ids are at most 200 characters, the text 500, the
    rules 50): stored with the Redis record at route time so an escalate can tell the next level."""
    text = " ".join(request.content.split())
    summary = {
        "request_id": request.request_id,
        "requester_id": request.requester_id,
        "request_type": request.raw_request_type or request.request_type,
        "department": request.raw_department,
        "amount": str(request.amount),
        "currency": request.currency,
        "amount_base": f"{outcome.decision.amount_base:.2f} {policy.base_currency}",
        "risk_level": output["risk_level"],
        "matched_rules": [str(rule)[:200] for rule in output["matched_rules"][:MAX_SUMMARY_RULES]],
        "deadline": output.get("deadline") or "",
        "summary": text[:SUMMARY_CHARS] + ("…" if len(text) > SUMMARY_CHARS else ""),
        "policy_sha256": output.get("policy_sha256") or "",
    }
    summary = {k: v for k, v in summary.items() if v not in (None, "")}
    # The store refuses a summary over MAX_SUMMARY_BYTES: drop matched rules from the end until it fits.
    while len(json.dumps(summary, sort_keys=True, separators=(",", ":")).encode()) > SUMMARY_BUDGET_BYTES and summary.get("matched_rules"):
        summary["matched_rules"] = summary["matched_rules"][:-1]
    return summary


def _facts(summary: dict[str, Any], *, state: str, version: int, required_level: str, sla_hours: float | None,
           sla_deadline: str) -> dict[str, Any]:
    facts = {k: v for k, v in summary.items() if k != "policy_sha256"}
    facts.update({"required_level": required_level, "state": state, "version": version,
                  "sla_hours": sla_hours or 0, "sla_deadline": sla_deadline})
    return {k: v for k, v in facts.items() if v not in (None, "")}


def _dlq(redis_store: Any) -> Any:
    from approval.dead_letters import DeadLetterQueue

    return DeadLetterQueue(redis_store.client, redis_store.keys) if redis_store is not None else None


def link_scope(redis_store: Any, secrets: Any, endpoint_url: str) -> tuple[str, list[str]]:
    """The workspace scope links are bound to ("" = no links) and a warning. Before links signed with the
    link secret go out, the store records that this workspace signs with it: the endpoint honours a link
    only for a workspace that did (approval.links)."""
    from approval.decisions import LinkSecrets
    from approval.records import StoreUnavailable

    if redis_store is None or not secrets.link_secret or not endpoint_url:
        return (redis_store.keys.scope if redis_store is not None else ""), []
    try:
        LinkSecrets(redis_store.client, redis_store.keys).remember(secrets.link_secret)
    except StoreUnavailable as exc:
        return "", [f"notifications carry no approve/reject links: {exc}"]
    return redis_store.keys.scope, []


def webhook_post(credentials: dict[str, Any]) -> Any:
    """Webhook posting bound to the provider's `webhook_allowlist` (internal targets and plain http only
    where it says). A malformed allowlist is a FieldError naming it, raised before anything is routed."""
    from gateway.config import parse_webhook_allowlist
    from gateway.wire.webhooks import poster

    return poster(parse_webhook_allowlist((credentials or {}).get("webhook_allowlist")))


def notify_route(request: Any, outcome: Any, output: dict[str, Any], approvers: list[Any], policy: Any,
                 secrets: Any, endpoint_url: str, redis_store: Any, post: Any = None) -> Any:
    """Tell the approvers selected by approval_route; never raises, the outcome is an output. `post`:
    webhook_post(credentials); without it, public https targets only."""
    from approval.notifications import NotificationReport, notify_routed
    from gateway.wire.webhooks import post_json

    deadline = outcome.deadline.timestamp() if outcome.deadline is not None else None
    expires_at, sla_deadline = link_expiry(time.time(), output.get("sla_hours"), deadline)
    facts = _facts(request_summary(request, outcome, output, policy), state=output["next_state"], version=1,
                   required_level=output["approver_level"], sla_hours=output.get("sla_hours"), sla_deadline=sla_deadline)
    try:
        scope, warnings = link_scope(redis_store, secrets, endpoint_url) if approvers else ("", [])
        report = notify_routed(
            request=facts, next_state=output["next_state"], approvers=approvers, channels=policy.channels,
            secrets=secrets, endpoint_url=endpoint_url, store_holds_request=redis_store is not None, version=1,
            expires_at=expires_at, dlq=_dlq(redis_store), post=post or post_json, scope=scope,
        )
        report.warnings[:0] = warnings
        return report
    except Exception as exc:  # never fails the routing
        return NotificationReport("failed", warnings=[f"notifications failed ({type(exc).__name__}); the routing stands"])


def skipped_outputs(warning: str = "") -> dict[str, Any]:
    return {"approvers": [], "notification_status": "skipped", "notifications": [],
            "notification_warnings": [warning] if warning else []}


def notify_escalation(request_id: str, result: Any, redis_store: Any, credentials: dict[str, Any], secrets: Any,
                      endpoint_url: str) -> dict[str, Any]:
    """After an accepted escalate: tell the approvers of the new required level (``_notify_escalation``).
    Never raises: the transition stands whatever happens."""
    try:
        return _notify_escalation(request_id, result, redis_store, credentials, secrets, endpoint_url)
    except Exception as exc:
        return {**skipped_outputs(), "notification_status": "failed",
                "notification_warnings": [f"notifications failed ({type(exc).__name__}); the escalation stands"]}


def _claim_once(redis_store: Any, request_id: str, version: int, outputs: dict[str, Any], warnings: list[str]) -> dict[str, Any] | None:
    """None when this version's notifications are this escalate's to send; otherwise the outputs saying why not."""
    from approval.records import StoreUnavailable

    try:
        first = redis_store.claim_notification(request_id, version)
    except StoreUnavailable as exc:
        return {**outputs, "notification_status": "failed", "notifications": [],
                "notification_warnings": [*warnings, f"notifications failed: {exc}; the escalation stands"]}
    if not first:  # a retry with the same idempotency_key returns the first outcome: tell nobody twice
        return {**outputs, "notification_status": "skipped", "notifications": [],
                "notification_warnings": [*warnings, f"version {version} was already notified (a retried escalate)"]}
    return None


def _summary_deadline(summary: dict[str, Any]) -> float | None:
    if summary.get("deadline"):
        try:
            return datetime.fromisoformat(str(summary["deadline"])).timestamp()
        except ValueError:
            return None
    return None


def _notify_escalation(request_id: str, result: Any, redis_store: Any, credentials: dict[str, Any], secrets: Any,
                       endpoint_url: str) -> dict[str, Any]:
    """After an accepted escalate: tell the approvers of the new required level, with links bound to the new
    version. Needs the summary the route stored in Redis; without it (no Redis, routed before summaries were
    stored) nobody is told and the warning says why."""
    from approval.approvers import select_approvers
    from approval.notifications import NotificationReport, notify_routed
    from approval.records import StoreUnavailable
    from specs.approval_specs import approval_policy
    from specs.input_errors import ToolInputError

    level = result.required_level
    if redis_store is None:
        return skipped_outputs(f"the approvers of {level} were not told: notifications on escalate need the Redis "
                               "approval store (redis_url), which keeps the request's summary")
    try:
        policy, _source = approval_policy({}, credentials)
    except ToolInputError as exc:
        return {**skipped_outputs(), "notification_status": "failed",
                "notification_warnings": [f"notifications failed: {exc}; the escalation stands"]}
    try:
        summary = redis_store.get_summary(request_id)
    except StoreUnavailable as exc:
        return {**skipped_outputs(), "notification_status": "failed",
                "notification_warnings": [f"notifications failed: {exc}; the escalation stands"]}
    if summary is None:
        return skipped_outputs(f"the approvers of {level} were not told: the approval store holds no summary of "
                               "this request (it was routed before summaries were stored); tell them in the workflow")
    approvers = select_approvers(policy.approvers, level, str(summary.get("requester_id", "")))
    outputs: dict[str, Any] = {"approvers": [person.to_output() for person in approvers]}
    warnings: list[str] = []
    if summary.get("policy_sha256") and summary["policy_sha256"] != policy.sha256:
        warnings.append("the provider's approval policy is not the one that routed this request: its approvers were told")
    if approvers and secrets.channels:
        refused = _claim_once(redis_store, request_id, result.version, outputs, warnings)
        if refused is not None:
            return refused
    sla_hours = policy.sla_for(level)
    expires_at, sla_deadline = link_expiry(time.time(), sla_hours, _summary_deadline(summary))
    facts = _facts(summary, state=result.state, version=result.version, required_level=level, sla_hours=sla_hours,
                   sla_deadline=sla_deadline)
    try:
        scope, link_warnings = link_scope(redis_store, secrets, endpoint_url) if approvers else ("", [])
        warnings.extend(link_warnings)
        report = notify_routed(
            request=facts, next_state=result.state, approvers=approvers, channels=policy.channels, secrets=secrets,
            endpoint_url=endpoint_url, store_holds_request=True, version=result.version, expires_at=expires_at,
            dlq=_dlq(redis_store), post=webhook_post(credentials), scope=scope,
        )
    except Exception as exc:  # never fails the transition
        report = NotificationReport("failed", warnings=[f"notifications failed ({type(exc).__name__}); the escalation stands"])
    return {**outputs, "notification_status": report.status, "notifications": report.entries,
            "notification_warnings": [*warnings, *report.warnings]}


__all__ = [
    "DEFAULT_LINK_HOURS",
    "MAX_LINK_HOURS",
    "link_expiry",
    "notify_escalation",
    "notify_route",
    "request_summary",
    "skipped_outputs",
    "webhook_post",
]
