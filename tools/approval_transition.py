import functools
from collections.abc import Generator, Mapping
from datetime import datetime
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from approval.levels import APPROVER_LEVELS, EVENTS, STATES
from approval.policy import Policy
from approval.records import StoreUnavailable, UnknownRequest, validate_idempotency_key, validate_request_id
from approval.store_choice import DIFY_STORAGE, REDIS, WORKFLOW, store_for
from approval.transitions import LEVEL_GATED_EVENTS, ApprovalRecord, TransitionResult, parse_instant
from gateway.errors import FieldError
from tools.approval_notify import notification_settings, notify_escalation, skipped_outputs
from tools.outputs import variable_messages
from tools.support import (
    HolySheepToolError,
    ToolInputError,
    approval_policy,
    bool_param,
    choice_param,
    gateway_config,
    number_param,
    reported_errors,
    text_param,
)

# Events that decide a request: with the Redis store they must say which version the actor read.
DECIDING_EVENTS = ("approve", "reject")
# Longest text a choice, a number, a flag or an instant parameter may be: anything longer is refused by its
# length before it is read, so no message repeats it.
SHORT_TEXT = 64
MAX_VERSION = 1_000_000_000
# The provider credential `approval_actor`: who acts is the actor_id parameter, or the Dify user running the run.
ACTOR_SOURCES = ("parameter", "dify_user")


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
        params = tool_parameters
        try:
            request_id = validate_request_id(text_param(params, "request_id", required=True, max_chars=200).strip())
            idempotency_key = validate_idempotency_key(text_param(params, "idempotency_key", max_chars=200).strip() or None)
        except FieldError:  # a parameter's own message, named by reported_errors
            raise
        except ValueError as exc:
            raise ToolInputError(_named(exc)) from None
        if not short_text(params, "event").strip():
            raise ToolInputError(f"'event' is required: one of {', '.join(EVENTS)}")
        event = choice_param(params, "event", EVENTS, default="")
        policy = administrators_policy(str(self.runtime.credentials.get("approval_policy") or "").strip())
        authority = policy.authority
        actor_id = actor_param(params, self.runtime.credentials, getattr(self.runtime, "user_id", None), policy.dify_users)
        actor_level = actor_level_param(params, event, level_from_policy=authority is not None)
        short_text(params, "expected_version")
        expected = number_param(params, "expected_version", default=None, minimum=1, maximum=MAX_VERSION, integer=True, allow_none=True)
        now_given = bool(short_text(params, "now").strip())
        short_text(params, "persist")
        persist = bool_param(params, "persist")
        secrets, endpoint_url = notification_settings(params)  # refused before anything is applied
        config = gateway_config(self.runtime.credentials)
        try:
            chosen = store_for(
                config.redis_url,
                keys=config.keys,
                storage=self.session.storage if persist else None,
                carried=lambda rid: record_from_parameters(rid, params),
            )
        except ValueError as exc:  # a redis_url that redis-py cannot read
            raise ToolInputError(f"provider credentials: {exc}") from None
        now: datetime | None = None
        if chosen.name == REDIS:
            if now_given:
                raise ToolInputError(
                    "'now' is only for workflows that carry state; the approval store uses the server clock. "
                    "Leave 'now' empty"
                )
            if event in DECIDING_EVENTS and expected is None:
                raise ToolInputError(
                    f"'expected_version' is required to {event} with the approval store: the approval store needs "
                    "the version you read, so a concurrent decision cannot be overwritten. Pass the version from "
                    "approval_route or from the last approval_transition"
                )
        else:
            now = instant_param(params, "now")
            if idempotency_key and chosen.name == WORKFLOW:
                raise ToolInputError(
                    "'idempotency_key' needs persist=true or the Redis approval store (redis_url): without a store "
                    "nothing remembers the first result, so a retry would apply again. Set persist or leave the key empty"
                )
        try:
            if now is not None and chosen.name == DIFY_STORAGE and chosen.store.get(request_id) is not None:
                raise ToolInputError(
                    "'now' is only for workflows that carry state: this request is stored (persist), and its deadline "
                    "is checked against the current time. Leave 'now' empty"
                )
            result = chosen.store.transition(
                request_id, event=event, actor_id=actor_id, actor_level=actor_level,
                expected_version=expected, now=now, idempotency_key=idempotency_key, authority=authority,
            )
        except UnknownRequest as exc:
            raise ToolInputError(str(exc)) from None
        except StoreUnavailable as exc:
            raise HolySheepToolError(str(exc)) from None
        except FieldError:  # a parameter's own message, named by reported_errors
            raise
        except ValueError as exc:  # e.g. an idempotency key reused for another event or actor
            raise ToolInputError(_named(exc)) from None
        if event == "escalate" and result.accepted:
            notified = notify_escalation(request_id, result, chosen.store if chosen.name == REDIS else None,
                                         self.runtime.credentials, secrets, endpoint_url)
        else:
            notified = skipped_outputs()
        yield from self._emit(result, chosen.name, notified)

    def _emit(self, result: TransitionResult, store: str, notified: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        output = {**result.to_outputs(), "code": result.code, "required_level": result.required_level, "store": store,
                  "actor_id": result.actor_id, **notified}
        yield self.create_json_message(output)
        yield from variable_messages(self, output)


def record_from_parameters(request_id: str, params: dict[str, Any]) -> ApprovalRecord:
    """The record the workflow carries. No store holds it, so nothing may be guessed: state and
    required_level are required."""
    state = required_choice(
        params, "state", STATES,
        "the state the workflow carries (approval_route's next_state, then each transition's state)",
    )
    required_level = required_choice(
        params, "required_level", APPROVER_LEVELS,
        "approval_route's approver_level (then each transition's required_level)",
    )
    short_text(params, "version")
    try:
        return ApprovalRecord(
            request_id=request_id,
            state=state,
            version=number_param(params, "version", default=1, minimum=1, maximum=MAX_VERSION, integer=True),
            required_level=required_level,
            requester_id=required_text(params, "requester_id", "who asked for the approval, so self-approval can be refused"),
            deadline=instant_param(params, "deadline"),
        )
    except FieldError:  # a parameter's own message, named by reported_errors
        raise
    except ValueError as exc:
        raise ToolInputError(_named(exc)) from None


def instant_param(params: dict[str, Any], name: str) -> datetime | None:
    """An ISO 8601 instant, or None when empty. Dates at the calendar's edges whose offset would move them
    out of it are refused, naming the parameter."""
    text = short_text(params, name).strip()
    if not text:
        return None
    try:
        return parse_instant(text, name)
    except ValueError as exc:
        raise ToolInputError(_named(exc)) from None


def short_text(params: dict[str, Any], name: str) -> str:
    """A parameter read as text and refused by its length alone when longer than a choice, a number, a flag
    or an instant can be, so that no message ever repeats a long value."""
    return text_param(params, name, max_chars=SHORT_TEXT)


@functools.lru_cache(maxsize=16)  # parsed once per policy text and process, not on every transition (~14 ms at 100 approvers)
def administrators_policy(text: str) -> Policy:
    """The administrator's policy (the approval_policy credential; the bundled one without it), never a
    workflow's: it says who may decide at which level. An invalid one is refused naming the credential."""
    policy, _source = approval_policy({}, {"approval_policy": text})
    return policy


def actor_param(params: dict[str, Any], credentials: dict[str, Any], dify_user_id: object, dify_users: Mapping[str, str]) -> str:
    """Who acts. With `approval_actor: dify_user` the Dify user the run is for (the daemon's user_id), as the
    person the policy's `dify_users` maps it to (the id itself when unmapped); the actor_id parameter is then
    ignored, so nothing in the workflow can speak for someone else. Otherwise the actor_id parameter."""
    source = str(credentials.get("approval_actor") or "parameter").strip() or "parameter"
    if source not in ACTOR_SOURCES:
        raise ToolInputError(
            f"provider credentials: approval_actor must be one of {', '.join(ACTOR_SOURCES)}. Fix it in the plugin's "
            "authorization settings."
        )
    if source == "parameter":
        return text_param(params, "actor_id", required=True, max_chars=200).strip()
    user = str(dify_user_id or "").strip()
    if not user:
        raise ToolInputError(
            "provider credentials: approval_actor is dify_user, but Dify sent no user for this run; run the workflow "
            "as a signed-in user, or set approval_actor to parameter and pass actor_id"
        )
    return dify_users.get(user, user)[:200]


def actor_level_param(params: dict[str, Any], event: str, *, level_from_policy: bool = False) -> str | None:
    """The actor's level; None when empty, which only escalate and cancel allow, or any event when the
    administrator's policy names approvers (the level is then the policy's)."""
    if not short_text(params, "actor_level").strip():
        if event in LEVEL_GATED_EVENTS and not level_from_policy:
            raise ToolInputError(
                f"'actor_level' is required to {event}: give the actor's approver level "
                f"({', '.join(APPROVER_LEVELS)}); only escalate and cancel may leave it empty"
            )
        return None
    return choice_param(params, "actor_level", APPROVER_LEVELS, default="")


def required_choice(params: dict[str, Any], name: str, choices: tuple[str, ...], what: str) -> str:
    required_text(params, name, what)
    return choice_param(params, name, choices, default="")


def required_text(params: dict[str, Any], name: str, what: str) -> str:
    """A parameter the workflow must carry when no store holds the request."""
    if not str(params.get(name) or "").strip():
        raise ToolInputError(
            f"'{name}' is required when no approval store holds the request (no redis_url, and nothing "
            f"persisted for this request_id yet): pass {what}"
        )
    return text_param(params, name, max_chars=200).strip()


def _named(exc: ValueError) -> str:
    """A ValueError from approval/ ("field: what is wrong") with the parameter quoted, as tools name them."""
    text = str(exc)
    name, sep, rest = text.partition(": ")
    if sep and name.isidentifier():
        return f"'{name}': {rest}"
    return text
