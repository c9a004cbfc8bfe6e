from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.approvers import select_approvers
from approval.engine import ApprovalRequest, route
from approval.limits import AutoApprovalGate
from approval.records import RecordExists, StoreUnavailable, validate_request_id
from approval.store_choice import REDIS, ChosenStore, store_for
from approval.transitions import ApprovalRecord
from gateway import GatewayClient
from specs.approval_specs import RouteSpec
from tools.approval_llm import GUARD_MAX_TOKENS, GatewayAssessmentLLM
from tools.approval_notify import notify_route, request_summary, webhook_post
from tools.outputs import variable_messages
from tools.reporting import HolySheepToolError, ToolInputError, reported_errors
from tools.spend import call_options
from tools.support import gateway_client
from untrusted import quote


class ApprovalRouteTool(Tool):
    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = self.runtime.credentials
        client = gateway_client(credentials)
        spec = RouteSpec.parse(tool_parameters, credentials)
        post = webhook_post(credentials)  # a malformed webhook_allowlist is refused before anything is routed
        llm, guard = self._assessors(spec, client)
        chosen = approval_store(client)
        store = chosen.store if chosen.keeps_records else None
        if store is not None:
            refuse_if_routed(store, spec.request.request_id)
        # The audit sample and the limits: counted in Redis when it is configured, else in this process.
        gate = AutoApprovalGate.for_workspace(client.config.api_key, client.config.redis_url, client.config.keys)
        try:
            outcome = route(spec.request, spec.policy, llm, guard=guard, gate=gate)
        except ValueError as exc:  # e.g. a currency the policy cannot convert
            raise ToolInputError(str(exc)) from None
        output = outcome.to_outputs()
        output["policy_source"] = spec.policy_source
        output["audit"]["policy_source"] = spec.policy_source
        output["version"] = 1
        output["store"] = chosen.name
        if store is not None:
            save_route(chosen, spec, outcome, output)
        approvers = select_approvers(spec.policy.approvers, output["approver_level"], spec.request.requester_id)
        output["approvers"] = [person.to_output() for person in approvers]
        report = notify_route(spec.request, outcome, output, approvers, spec.policy, spec.secrets, spec.endpoint_url,
                              store if chosen.name == REDIS else None, post=post)
        output["notification_status"] = report.status
        output["notifications"] = report.entries
        output["notification_warnings"] = report.warnings
        yield self.create_json_message(output)
        yield from variable_messages(self, output)  # None values left out: Dify before PR #30082 refuses them

    def _assessors(self, spec: RouteSpec, client: GatewayClient) -> tuple[Any, Any]:
        """The LLM that assesses the request and its guard, or (None, None) for rules only."""
        if spec.rules_only:
            return None, None
        model, guard_model = spec.models(default_model=client.config.default_model, prices=client.prices)
        options = call_options(self, client)
        llm = GatewayAssessmentLLM(client, model, options=options)
        return llm, GatewayAssessmentLLM(client, guard_model, max_tokens=GUARD_MAX_TOKENS, options=options)


def approval_store(client: GatewayClient) -> ChosenStore:
    try:
        return store_for(client.config.redis_url, keys=client.config.keys)
    except ValueError as exc:  # a redis_url that redis-py cannot read
        raise ToolInputError(f"provider credentials: {exc}") from None


def refuse_if_routed(store: Any, request_id: str) -> None:
    """Refuse a request id the store already holds before spending a model call on it. Two routes racing
    past this check are still decided by create() (SET NX): exactly one saves."""
    try:
        validate_request_id(request_id)
        existing = store.get(request_id)
    except ValueError as exc:
        raise ToolInputError(f"'request_id': {str(exc).removeprefix('request_id: ')}") from None
    except StoreUnavailable as exc:
        raise HolySheepToolError(str(exc)) from None
    if existing is not None:
        raise already_routed(request_id)


def save_route(chosen: ChosenStore, spec: RouteSpec, outcome: Any, output: dict[str, Any]) -> None:
    request: ApprovalRequest = spec.request
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
            chosen.store.create(record, summary=request_summary(request, outcome, output, spec.policy))
        else:
            chosen.store.create(record)
    except RecordExists:
        raise already_routed(request.request_id) from None
    except StoreUnavailable as exc:
        raise HolySheepToolError(str(exc)) from None


def already_routed(request_id: str) -> ToolInputError:
    return ToolInputError(
        f"'request_id' {quote(request_id)} was already routed and saved in the approval store: "
        "use a new request_id, or approval_transition to change the saved request"
    )


__all__ = ["ApprovalRouteTool"]

