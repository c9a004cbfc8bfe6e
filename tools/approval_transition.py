from collections.abc import Generator
from datetime import datetime
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.records import StoreUnavailable, UnknownRequest
from approval.store_choice import DIFY_STORAGE, REDIS, WORKFLOW, ChosenStore, store_for
from approval.transitions import TransitionResult
from gateway.errors import FieldError
from specs.approval_specs import TransitionSpec, named
from tools.approval_notify import notify_escalation, skipped_outputs
from tools.outputs import variable_messages
from tools.reporting import HolySheepToolError, ToolInputError, reported_errors
from tools.support import gateway_config

# Events that decide a request: with the Redis store they must say which version the actor read.
DECIDING_EVENTS = ("approve", "reject")


class ApprovalTransitionTool(Tool):
    """Applies one event to an approval request.

    Where the record lives is chosen by `approval.store_choice.store_for`: the Redis approval store when
    `redis_url` is configured (atomic compare-and-set, idempotency keys, history, the server's clock; only
    request_id, expected_version (required to approve or reject), event and the actor are read from the
    caller), Dify plugin storage with `persist` (no compare-and-set: two concurrent writers can lose an
    update), otherwise the record the workflow carries in its variables (state and required_level are then
    required).

    Who acts: the `actor_id` parameter, or with the provider credential `approval_actor: dify_user` the Dify
    user the run is for (mapped to a person through the policy's `dify_users`). When the administrator's
    policy (the `approval_policy` credential) names approvers, their levels are the policy's
    (`approval.transitions`, step 6).
    """

    @reported_errors
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = self.runtime.credentials
        spec = TransitionSpec.parse(tool_parameters, credentials, getattr(self.runtime, "user_id", None))
        config = gateway_config(credentials)
        try:
            chosen = store_for(
                config.redis_url,
                keys=config.keys,
                storage=self.session.storage if spec.persist else None,
                carried=spec.carried_record,
            )
        except ValueError as exc:  # a redis_url that redis-py cannot read
            raise ToolInputError(f"provider credentials: {exc}") from None
        now = checked_now(spec, chosen.name)
        result = apply(spec, chosen, now)
        if spec.event == "escalate" and result.accepted:
            notified = notify_escalation(spec.request_id, result, chosen.store if chosen.name == REDIS else None,
                                         credentials, spec.secrets, spec.endpoint_url)
        else:
            notified = skipped_outputs()
        yield from self._emit(result, chosen.name, notified)

    def _emit(self, result: TransitionResult, store: str, notified: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        output = {**result.to_outputs(), "code": result.code, "required_level": result.required_level, "store": store,
                  "actor_id": result.actor_id, **notified}
        yield self.create_json_message(output)
        yield from variable_messages(self, output)


def checked_now(spec: TransitionSpec, store: str) -> datetime | None:
    """The `now` a workflow that carries state may give; refused where a store keeps the clock, and the
    version required where the approval store decides concurrent approvals."""
    if store == REDIS:
        if spec.now_given:
            raise ToolInputError(
                "'now' is only for workflows that carry state; the approval store uses the server clock. "
                "Leave 'now' empty"
            )
        if spec.event in DECIDING_EVENTS and spec.expected_version is None:
            raise ToolInputError(
                f"'expected_version' is required to {spec.event} with the approval store: the approval store needs "
                "the version you read, so a concurrent decision cannot be overwritten. Pass the version from "
                "approval_route or from the last approval_transition"
            )
        return None
    now = spec.now_instant()
    if spec.idempotency_key and store == WORKFLOW:
        raise ToolInputError(
            "'idempotency_key' needs persist=true or the Redis approval store (redis_url): without a store "
            "nothing remembers the first result, so a retry would apply again. Set persist or leave the key empty"
        )
    return now


def apply(spec: TransitionSpec, chosen: ChosenStore, now: datetime | None) -> TransitionResult:
    """The event applied to the request where it lives."""
    try:
        if now is not None and chosen.name == DIFY_STORAGE and chosen.store.get(spec.request_id) is not None:
            raise ToolInputError(
                "'now' is only for workflows that carry state: this request is stored (persist), and its deadline "
                "is checked against the current time. Leave 'now' empty"
            )
        return chosen.store.transition(
            spec.request_id, event=spec.event, actor_id=spec.actor_id, actor_level=spec.actor_level,
            expected_version=spec.expected_version, now=now, idempotency_key=spec.idempotency_key,
            authority=spec.policy.authority,
        )
    except UnknownRequest as exc:
        raise ToolInputError(str(exc)) from None
    except StoreUnavailable as exc:
        raise HolySheepToolError(str(exc)) from None
    except FieldError:  # a parameter's own message, named by reported_errors
        raise
    except ValueError as exc:  # e.g. an idempotency key reused for another event or actor
        raise ToolInputError(named(exc)) from None
