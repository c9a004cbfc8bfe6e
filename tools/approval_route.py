from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.approvers import select_approvers
from approval.engine import MAX_ID_CHARS, ApprovalRequest, route
from approval.limits import AutoApprovalGate
from approval.records import RecordExists, StoreUnavailable, validate_request_id
from approval.store_choice import REDIS, store_for
from approval.transitions import ApprovalRecord
from gateway.errors import FieldError
from tools.approval_llm import GUARD_MAX_TOKENS, GatewayAssessmentLLM
from tools.approval_notify import (
    notification_settings,
    notify_route,
    request_summary,
    webhook_post,
)
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
        post = webhook_post(credentials)  # a malformed webhook_allowlist is refused before anything is routed
        model = text_param(tool_parameters, "model", max_chars=200).strip()
        llm = guard = None
        if model.lower() not in RULES_ONLY_MODELS:
            model = _named_model(model, client.config.default_model)
            options = call_options(self, {}, client)
            llm = GatewayAssessmentLLM(client, model, options=options)
            guard_model = _named_model(text_param(tool_parameters, "guard_model", max_chars=200).strip(), model)
            guard = GatewayAssessmentLLM(client, guard_model, max_tokens=GUARD_MAX_TOKENS, options=options)
        try:
            chosen = store_for(client.config.redis_url, keys=client.config.keys)
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
        # The audit sample and the limits: counted in Redis when it is configured, else in this process.
        gate = AutoApprovalGate.for_workspace(client.config.api_key, client.config.redis_url, client.config.keys)
        try:
            outcome = route(request, policy, llm, guard=guard, gate=gate)
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
                if chosen.name == REDIS:  # the summary an escalate needs to tell the next level
                    store.create(record, summary=request_summary(request, outcome, output, policy))
                else:
                    store.create(record)
            except RecordExists:
                raise already_routed(request.request_id) from None
            except StoreUnavailable as exc:
                raise HolySheepToolError(str(exc)) from None
        approvers = select_approvers(policy.approvers, output["approver_level"], request.requester_id)
        output["approvers"] = [person.to_output() for person in approvers]
        report = notify_route(request, outcome, output, approvers, policy, secrets, endpoint_url, store if chosen.name == REDIS else None,
                              post=post)
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


__all__ = ["ApprovalRouteTool"]


def _named_model(given: str, otherwise: str) -> str:
    """Empty or `default` (any case, as the chat tools' select spells it) is `otherwise`: the word
    `default` is never sent to the gateway as a model name."""
    return otherwise if not given or given.lower() == "default" else given
