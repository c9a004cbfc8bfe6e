from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.approvers import select_approvers
from approval.backends import REDIS, store_for
from approval.engine import MAX_ID_CHARS, ApprovalRequest, route
from approval.store import RecordExists, StoreUnavailable, validate_request_id
from approval.transitions import ApprovalRecord
from gateway.errors import FieldError, register_secret
from tools.approval_llm import GUARD_MAX_TOKENS, GatewayAssessmentLLM
from tools.outputs import variable_messages
from tools.support import (
    HolySheepToolError,
    ToolInputError,
    approval_policy,
    call_options,
    gateway_client,
    number_param,
    reported_errors,
    text_param,
)
from untrusted import quote

# Notification links expire with the request's deadline or its SLA, whichever is first; at most this long.
DEFAULT_LINK_HOURS = 72.0
MAX_LINK_HOURS = 24.0 * 30

# `model` values (case-insensitive) that mean "rules only, no LLM call".
RULES_ONLY_MODELS = frozenset({"none", "rules_only"})
# Longest text a currency, a priority or a number may be: anything longer is refused by its length alone.
SHORT_TEXT = 64


class ApprovalRouteTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = self.runtime.credentials
        client = gateway_client(credentials)
        policy, policy_source = approval_policy(tool_parameters, credentials)
        for name in ("amount", "deadline_hours"):  # refused by length before a message could repeat them
            text_param(tool_parameters, name, max_chars=SHORT_TEXT)
        try:
            request = ApprovalRequest(
                request_id=text_param(tool_parameters, "request_id", required=True, max_chars=MAX_ID_CHARS).strip(),
                content=text_param(tool_parameters, "content", required=True, max_chars=100_000),
                amount=required_amount(tool_parameters),
                currency=text_param(tool_parameters, "currency", default="USD", max_chars=SHORT_TEXT).strip().upper(),
                request_type=text_param(tool_parameters, "request_type", required=True, max_chars=MAX_ID_CHARS).strip(),
                department=text_param(tool_parameters, "department", max_chars=MAX_ID_CHARS).strip(),
                requester_id=text_param(tool_parameters, "requester_id", required=True, max_chars=MAX_ID_CHARS).strip(),
                priority=text_param(tool_parameters, "priority", default="normal", max_chars=SHORT_TEXT).strip(),
                deadline_hours=number_param(tool_parameters, "deadline_hours", default=None, minimum=0, maximum=87_600, allow_none=True),
            )
        except FieldError:  # a parameter's own message, named by reported_errors
            raise
        except ValueError as exc:
            raise ToolInputError(str(exc)) from None
        secrets, endpoint_url = notification_settings(tool_parameters)
        model = text_param(tool_parameters, "model", max_chars=200).strip()
        llm = guard = None
        if model.lower() not in RULES_ONLY_MODELS:
            model = model or client.config.default_model
            options = call_options(self, {}, client)
            llm = GatewayAssessmentLLM(client, model, options=options)
            guard_model = text_param(tool_parameters, "guard_model", max_chars=200).strip() or model
            guard = GatewayAssessmentLLM(client, guard_model, max_tokens=GUARD_MAX_TOKENS, options=options)
        try:
            chosen = store_for(client.config.redis_url)
        except ValueError as exc:  # a redis_url that redis-py cannot read
            raise ToolInputError(f"provider credentials: {exc}") from None
        store = chosen.store if chosen.keeps_records else None
        if store is not None:
            # Refuse a request id the store already holds before spending a model call on it. Two routes
            # racing past this check are still decided by create() (SET NX): exactly one saves.
            try:
                validate_request_id(request.request_id)
                existing = store.get(request.request_id)
            except ValueError as exc:
                raise ToolInputError(f"'request_id': {str(exc).removeprefix('request_id: ')}") from None
            except StoreUnavailable as exc:
                raise HolySheepToolError(str(exc)) from None
            if existing is not None:
                raise already_routed(request.request_id)
        try:
            outcome = route(request, policy, llm, guard=guard)
        except ValueError as exc:  # e.g. a currency the policy cannot convert
            raise ToolInputError(str(exc)) from None
        output = outcome.to_outputs()
        output["policy_source"] = policy_source
        output["audit"]["policy_source"] = policy_source
        output["version"] = 1
        output["store"] = chosen.name
        if store is not None:
            record = ApprovalRecord(
                request_id=request.request_id,
                state=output["next_state"],
                version=1,
                required_level=output["approver_level"],
                requester_id=request.requester_id,
                deadline=outcome.deadline,
            )
            try:
                store.create(record)
            except RecordExists:
                raise already_routed(request.request_id) from None
            except StoreUnavailable as exc:
                raise HolySheepToolError(str(exc)) from None
        approvers = select_approvers(policy.approvers, output["approver_level"], request.requester_id)
        output["approvers"] = [person.to_output() for person in approvers]
        report = notify(request, outcome, output, approvers, policy, secrets, endpoint_url, store if chosen.name == REDIS else None)
        output["notification_status"] = report.status
        output["notifications"] = report.entries
        output["notification_warnings"] = report.warnings
        yield self.create_json_message(output)
        yield from variable_messages(self, output)  # None values left out: Dify before PR #30082 refuses them


def already_routed(request_id: str) -> ToolInputError:
    return ToolInputError(
        f"'request_id' {quote(request_id)} was already routed and saved in the approval store: "
        "use a new request_id, or approval_transition to change the saved request"
    )


def required_amount(params: dict[str, Any]) -> float:
    amount = number_param(params, "amount", default=None, minimum=0, maximum=1e15, allow_none=True)
    if amount is None:
        raise ToolInputError("'amount' is required: give the amount requested, in 'currency'")
    return amount


def notification_settings(params: dict[str, Any]) -> tuple[Any, str]:
    """The notification secrets (link secret, webhook URLs and secrets per channel) and the endpoint URL.
    Refused before anything is routed when malformed; messages never repeat a secret."""
    from approval.links import check_endpoint_url
    from approval.notify import NotificationSecrets

    raw = params.get("notification_secrets")
    text = raw if isinstance(raw, str) else "" if raw is None else str(raw)
    try:
        secrets = NotificationSecrets.parse(text)
    except ValueError as exc:
        raise ToolInputError(f"'notification_secrets': {str(exc).removeprefix('notification_secrets: ')}") from None
    for value in secrets.values():
        register_secret(value)  # redacted wherever the plugin's last line of defence sees it
    url = text_param(params, "approval_endpoint_url", max_chars=2000).strip()
    if url:
        try:
            url = check_endpoint_url(url)
        except ValueError as exc:
            raise ToolInputError(f"'approval_endpoint_url': {str(exc).removeprefix('approval_endpoint_url: ')}") from None
    return secrets, url


def notify(request: ApprovalRequest, outcome: Any, output: dict[str, Any], approvers: list[Any], policy: Any,
           secrets: Any, endpoint_url: str, redis_store: Any) -> Any:
    """Tell the selected approvers (approval.notifications); never raises, the outcome is an output."""
    import time
    from datetime import UTC, datetime

    from approval.dead_letters import DeadLetterQueue
    from approval.notifications import NotificationReport, notify_routed
    from gateway.webhooks import post_json

    now = time.time()
    limits = [now + MAX_LINK_HOURS * 3600]
    sla_deadline = ""
    if output.get("sla_hours"):
        limits.append(now + float(output["sla_hours"]) * 3600)
        sla_deadline = datetime.fromtimestamp(limits[-1], UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if outcome.deadline is not None:
        limits.append(outcome.deadline.timestamp())
    expires_at = min(limits) if len(limits) > 1 else now + DEFAULT_LINK_HOURS * 3600
    summary = " ".join(request.content.split())
    facts = {
        "request_id": request.request_id,
        "requester_id": request.requester_id,
        "request_type": request.raw_request_type or request.request_type,
        "department": request.raw_department,
        "amount": str(request.amount),
        "currency": request.currency,
        "amount_base": f"{outcome.decision.amount_base:.2f} {policy.base_currency}",
        "risk_level": output["risk_level"],
        "required_level": output["approver_level"],
        "matched_rules": list(output["matched_rules"]),
        "state": output["next_state"],
        "version": 1,
        "sla_hours": output.get("sla_hours") or 0,
        "sla_deadline": sla_deadline,
        "deadline": output.get("deadline") or "",
        "summary": summary[:500] + ("…" if len(summary) > 500 else ""),
    }
    try:
        return notify_routed(
            request={k: v for k, v in facts.items() if v not in (None, "")},
            next_state=output["next_state"],
            approvers=approvers,
            channels=policy.channels,
            secrets=secrets,
            endpoint_url=endpoint_url,
            store_holds_request=redis_store is not None,
            version=1,
            expires_at=expires_at,
            dlq=DeadLetterQueue(redis_store.client, redis_store.namespace) if redis_store is not None else None,
            post=post_json,
        )
    except Exception as exc:  # never fails the routing
        return NotificationReport("failed", warnings=[f"notifications failed ({type(exc).__name__}); the routing stands"])
